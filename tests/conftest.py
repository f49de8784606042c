"""Shared test helpers: synthetic audio (tones, noise, silence, speech-like voiced signals),
a WAV writer, and the path of the real data set (tests that need it skip when it is absent)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

SR = 16000
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Formant centre frequencies (Hz) of a few vowels (adult male, roughly Peterson & Barney).
VOWELS: dict[str, tuple[float, float, float]] = {
    "a": (730.0, 1090.0, 2440.0),
    "i": (270.0, 2290.0, 3010.0),
    "u": (300.0, 870.0, 2240.0),
    "e": (530.0, 1840.0, 2480.0),
    "o": (570.0, 840.0, 2410.0),
}


def tone(freq: float = 440.0, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    """Sine tone, float32 (round(seconds * sr),)."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def white_noise(seconds: float = 1.0, sr: int = SR, amp: float = 0.1, seed: int = 0) -> np.ndarray:
    """Gaussian white noise with standard deviation ``amp``, clipped to [-1, 1], float32."""
    rng = np.random.default_rng(seed)
    x = amp * rng.standard_normal(int(round(seconds * sr)))
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def silence(seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    """Digital silence, float32 zeros."""
    return np.zeros(int(round(seconds * sr)), dtype=np.float32)


def voiced(
    f0: float = 120.0,
    formants: Sequence[float] = VOWELS["a"],
    seconds: float = 1.0,
    sr: int = SR,
    *,
    syllable_hz: float = 4.0,
    amp: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """Speech-like voiced signal, float32 (round(seconds * sr),), peak ``amp``.

    A glottal pulse train at ``f0`` Hz (with slow vibrato and jitter) through second-order
    resonators at ``formants`` (Hz), amplitude-modulated at ``syllable_hz`` syllables per
    second with short dips between syllables, plus faint aspiration noise. webrtcvad
    classifies it as speech.
    """
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    drift = 0.01 * rng.standard_normal(n).cumsum() / max(1.0, np.sqrt(n))
    inst_f0 = f0 * (1.0 + 0.03 * np.sin(2 * np.pi * 5.0 * t) + drift)
    phase = np.cumsum(inst_f0) / sr
    # Rosenberg-like glottal flow derivative approximated by a differentiated skewed pulse.
    frac = phase - np.floor(phase)
    flow = np.where(frac < 0.6, np.sin(np.pi * frac / 0.6) ** 2, 0.0)
    source = np.diff(flow, prepend=0.0) + 0.01 * rng.standard_normal(n)
    x = np.zeros(n)
    for i, fc in enumerate(formants):
        bw = 60.0 + 40.0 * i  # bandwidths grow with formant number
        r = np.exp(-np.pi * bw / sr)
        theta = 2 * np.pi * fc / sr
        a = [1.0, -2 * r * np.cos(theta), r * r]
        x += lfilter([1.0 - r], a, source) / (i + 1)
    # Syllable envelope: raised-cosine bumps with short near-silent gaps.
    env = 0.5 - 0.5 * np.cos(2 * np.pi * syllable_hz * t)
    env = np.clip(env * 1.25, 0.0, 1.0) ** 0.5
    x *= env
    peak = np.max(np.abs(x)) or 1.0
    return (amp * x / peak).astype(np.float32)


def write_wav(
    tmp_path: Path, name: str, wave: np.ndarray, sr: int = SR, subtype: str | None = None
) -> Path:
    """Write ``wave`` ((N,) or (N, C)) to ``tmp_path / name`` with soundfile; returns the path."""
    import soundfile as sf

    path = Path(tmp_path) / name
    sf.write(str(path), wave, sr, subtype=subtype)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def shared_data() -> Path:
    """The real data directory (../shared/data); skips the test when it is absent."""
    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
