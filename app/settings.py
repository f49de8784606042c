"""The client's settings in one place: a defaults dict over QSettings."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings

from voxgate.core.live_config import (
    DEFAULT_DECISION_S,
    DEFAULT_HOP_S,
    DEFAULT_VAD_AGGRESSIVENESS,
)

ORGANIZATION = "voxgate"
APPLICATION = "voxgate"

# Every persisted setting, with its default; the default's type is the setting's type.
DEFAULTS: dict[str, Any] = {
    "vad_aggressiveness": DEFAULT_VAD_AGGRESSIVENESS,  # webrtcvad mode 0 (lenient) .. 3 (strict)
    "hop_s": DEFAULT_HOP_S,  # seconds between scored 1-s windows
    "decision_s": DEFAULT_DECISION_S,  # seconds of speech a decision aggregates
    "mc_passes": 10,  # MC-dropout passes when scoring is "mc"
    "scoring": "deterministic",  # "deterministic" | "mc"
    "mode": "authentication",
    "input_device": "",  # device name; "" = system default
    "model_path": "",  # last model loaded from the menu; "" = shipped model
}


class Settings:
    """Typed access to QSettings with :data:`DEFAULTS` as fallback.

    Pass a ``QSettings`` (tests use an ini file in a temporary directory); the default
    is the user's native settings store for organisation/application "voxgate".
    """

    def __init__(self, qsettings: QSettings | None = None):
        self.qsettings = qsettings or QSettings(ORGANIZATION, APPLICATION)

    def get(self, key: str) -> Any:
        """The stored value of ``key`` converted to its default's type (the default if unset)."""
        default = DEFAULTS[key]
        value = self.qsettings.value(key, default)
        try:
            if isinstance(default, bool):
                return value if isinstance(value, bool) else str(value).lower() in ("1", "true")
            return type(default)(value)
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` for ``key`` (a key of :data:`DEFAULTS`)."""
        if key not in DEFAULTS:
            raise KeyError(f"unknown setting {key!r}; known: {sorted(DEFAULTS)}")
        self.qsettings.setValue(key, value)

    def reset(self) -> None:
        """Forget every stored value (back to :data:`DEFAULTS`)."""
        for key in DEFAULTS:
            self.qsettings.remove(key)

    def sync(self) -> None:
        self.qsettings.sync()

    def as_dict(self) -> dict[str, Any]:
        return {key: self.get(key) for key in DEFAULTS}
