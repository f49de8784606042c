"""Typed configuration for features: stored with every dataset and checkpoint."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T")


def dataclass_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types are errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        default = (
            getattr(cls, name, None) if fields[name].default is not dataclasses.MISSING else None
        )
        kwargs[name] = _coerce(cls.__name__, name, value, default)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from exc


def _coerce(owner: str, name: str, value: Any, default: Any) -> Any:
    """Accept ints for float fields and lists for tuple fields; reject other mismatches."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{owner}.{name}: expected bool, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    if not isinstance(value, type(default)):
        raise ConfigError(
            f"{owner}.{name}: expected {type(default).__name__}, got {type(value).__name__} {value!r}"
        )
    return value


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Log-mel settings. Defaults are the report's: 16 kHz, 64 bands, n_fft 2048, hop 512.

    ``ref`` is "peak" (power_to_db with ref=max per chunk, the report's) or "absolute"
    (ref=1.0). Each 1-s chunk is featurised on its own, so the peak is per chunk.
    """

    sample_rate: int = 16000
    n_mels: int = 64
    n_fft: int = 2048
    hop_length: int = 512
    win_length: int = 0  # 0 means n_fft
    f_min: float = 0.0
    f_max: float = 0.0  # 0 means sample_rate / 2
    top_db: float = 80.0
    ref: str = "peak"
    chunk_s: float = 1.0

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.n_mels <= 0 or self.n_fft <= 0 or self.hop_length <= 0:
            raise ConfigError("FeatureConfig: sample_rate, n_mels, n_fft, hop_length must be > 0")
        if self.win_length < 0 or self.win_length > self.n_fft:
            raise ConfigError("FeatureConfig: win_length must be in [0, n_fft]")
        if self.ref not in ("peak", "absolute"):
            raise ConfigError(f"FeatureConfig.ref must be 'peak' or 'absolute', got {self.ref!r}")
        if self.n_mels % 8:
            raise ConfigError("FeatureConfig.n_mels must be a multiple of 8 (three 2x pools)")
        if self.chunk_s <= 0:
            raise ConfigError("FeatureConfig.chunk_s must be > 0")

    @property
    def win(self) -> int:
        return self.win_length or self.n_fft

    @property
    def fmax(self) -> float:
        return self.f_max or self.sample_rate / 2

    @property
    def chunk_samples(self) -> int:
        return int(round(self.chunk_s * self.sample_rate))

    @property
    def frames_per_chunk(self) -> int:
        return n_frames(self.chunk_samples, self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        return dataclass_from_dict(cls, data)

    @classmethod
    def from_json(cls, text: str) -> FeatureConfig:
        return cls.from_dict(json.loads(text))

    @classmethod
    def preset(cls, name: str) -> FeatureConfig:
        """``report``: the course report's features (32 frames/s, 64 bands).
        ``speaker``: the usual speaker-model setting (25 ms window, 10 ms hop, 80 bands)."""
        if name == "report":
            return cls()
        if name == "speaker":
            return cls(
                n_mels=80, n_fft=512, win_length=400, hop_length=160, f_min=20.0, f_max=7600.0
            )
        raise ConfigError(f"unknown feature preset {name!r}; known: report, speaker")


def n_frames(n_samples: int, cfg: FeatureConfig) -> int:
    """Number of (centered) STFT frames for ``n_samples`` samples."""
    return 1 + n_samples // cfg.hop_length
