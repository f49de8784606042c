"""Failed-attempt throttling and lockout (NIST SP 800-63B's rules for biometrics).

After ``DELAY_AFTER`` (5) consecutive failed attempts on a key, the next attempt must wait
``BASE_DELAY_S`` (30 s), doubling with every further failure up to ``MAX_DELAY_S``; after
``DISABLE_AFTER`` (50) consecutive failures voice authentication is disabled for that key
until ``voxgate profiles unlock``. A key is a profile name (``verify --user``) or
:data:`DEVICE_KEY` (any-profile authentication and identification). An accepted attempt
resets its key. The state lives in the profile store (``ProfileStore.LOCKOUT_NAME``), updated
under the store lock with an atomic write, and so survives restarts and concurrent commands.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import LockedOutError, ProfileError
from .fileio import atomic_write
from .profiles import ProfileStore

__all__ = [
    "DEVICE_KEY",
    "DELAY_AFTER",
    "DISABLE_AFTER",
    "BASE_DELAY_S",
    "MAX_DELAY_S",
    "AttemptState",
    "Lockout",
    "lockout_key",
]

DEVICE_KEY = "*device*"
DELAY_AFTER = 5
DISABLE_AFTER = 50
BASE_DELAY_S = 30.0
MAX_DELAY_S = 15 * 60.0
_VERSION = 1


def lockout_key(user: str | None, mode: str = "authentication") -> str:
    """The key an attempt counts against: the profile for ``--user`` when authenticating it,
    else the device (identification, or any authorized voice)."""
    return user if user is not None and mode == "authentication" else DEVICE_KEY


@dataclass(frozen=True)
class AttemptState:
    """failures: consecutive failed attempts; wait_s: seconds before the next attempt is
    allowed (0: now); disabled: locked until unlocked; left: attempts before the next
    delay or before disabling."""

    key: str
    failures: int
    wait_s: float
    disabled: bool
    left: int

    def describe(self) -> str:
        who = "this device" if self.key == DEVICE_KEY else f"profile {self.key!r}"
        if self.disabled:
            return (
                f"voice authentication is disabled for {who} after {self.failures} failed "
                f"attempts; unlock it with: voxgate profiles unlock "
                f"{'--device' if self.key == DEVICE_KEY else repr(self.key)}"
            )
        if self.wait_s > 0:
            return f"too many failed attempts for {who}: wait {math.ceil(self.wait_s)} s"
        return f"{self.left} attempt(s) left for {who} before a delay"


def delay_s(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive failures (0 below DELAY_AFTER)."""
    if failures < DELAY_AFTER:
        return 0.0
    return min(MAX_DELAY_S, BASE_DELAY_S * 2.0 ** (failures - DELAY_AFTER))


class Lockout:
    """Attempt bookkeeping of one profile store. ``clock``: seconds (wall time, persisted)."""

    def __init__(self, store: ProfileStore, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock

    @property
    def path(self):  # noqa: ANN201 - a Path
        return self.store.root / ProfileStore.LOCKOUT_NAME

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProfileError(f"{self.path}: unreadable lockout state ({exc})") from exc
        keys = data.get("keys") if isinstance(data, dict) else None
        if data.get("version") != _VERSION or not isinstance(keys, dict):
            raise ProfileError(f"{self.path}: invalid lockout state; fix or remove it")
        for key, entry in keys.items():
            ok = isinstance(entry, dict) and isinstance(entry.get("failures"), int)
            ok = ok and isinstance(entry.get("last_failure_s"), (int, float))
            if not ok or entry["failures"] < 0:
                raise ProfileError(f"{self.path}: invalid lockout entry for {key!r}")
        return keys

    def _write(self, keys: dict[str, dict[str, Any]]) -> None:
        text = json.dumps({"version": _VERSION, "keys": keys}, indent=1) + "\n"
        atomic_write(self.path, text, mode=0o600)

    def _state(self, key: str, entry: dict[str, Any] | None) -> AttemptState:
        failures = int(entry["failures"]) if entry else 0
        last = float(entry["last_failure_s"]) if entry else 0.0
        wait = max(0.0, last + delay_s(failures) - self.clock()) if failures else 0.0
        disabled = failures >= DISABLE_AFTER
        nxt = DELAY_AFTER if failures < DELAY_AFTER else DISABLE_AFTER
        return AttemptState(key, failures, wait, disabled, max(0, nxt - failures))

    def status(self, key: str) -> AttemptState:
        """The current state of ``key`` (no lock needed: the file is replaced atomically)."""
        if not self.store.check():
            return self._state(key, None)
        return self._state(key, self._read().get(key))

    def check(self, key: str) -> AttemptState:
        """Raise LockedOutError when an attempt on ``key`` is not allowed now."""
        state = self.status(key)
        if state.disabled or state.wait_s > 0:
            raise LockedOutError(state.describe(), wait_s=state.wait_s, disabled=state.disabled)
        return state

    def record(self, key: str, accepted: bool) -> AttemptState:
        """Count one finished attempt on ``key``; returns the new state."""
        with self.store.lock():
            keys = self._read()
            if accepted:
                keys.pop(key, None)
            else:
                entry = keys.get(key) or {"failures": 0, "last_failure_s": 0.0}
                keys[key] = {"failures": entry["failures"] + 1, "last_failure_s": self.clock()}
            self._write(keys)
            return self._state(key, keys.get(key))

    def unlock(self, key: str | None = None) -> None:
        """Clear ``key`` (None: every key)."""
        with self.store.lock():
            keys = self._read()
            if key is None:
                keys = {}
            else:
                keys.pop(key, None)
            self._write(keys)
