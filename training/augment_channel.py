"""Channel augmentation for training chunks: the telephone and the room.

What changes here does not identify a speaker: the band a phone line passes and its codec,
and the room's reverberation. Both are offline (the dataset build) and deterministic given
the ``numpy.random.Generator``. Waveforms are float32 (N,) at 16 kHz; the output has the
input's length.

- ``telephone``: G.711-style narrowband: resampled to 8 kHz (so nothing above 4 kHz
  survives), a 300 Hz high-pass, 8-bit mu-law companding (the codec's quantisation), back
  to 16 kHz.
- ``reverb``: a synthetic room impulse response (a direct path, then exponentially decaying
  Gaussian noise, RT60 drawn from ``RT60_RANGE_S``), the classic statistical model of late
  reverberation (Polack 1993), convolved and rescaled to the input's peak.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

__all__ = [
    "RT60_RANGE_S", "MU_LAW_BITS", "channel_augment", "telephone", "mu_law", "room_impulse", "reverb",
]  # fmt: skip

RT60_RANGE_S = (0.2, 0.8)  # living rooms to offices
MU_LAW_BITS = 8
_TELEPHONE_HIGHPASS_HZ = 300.0
_DIRECT_TO_REVERB_DB = (0.0, 10.0)  # energy of the direct path over the tail


def mu_law(wave: np.ndarray, bits: int = MU_LAW_BITS) -> np.ndarray:
    """Mu-law compress, quantise to ``bits`` and expand (the G.711 codec's loss), in [-1, 1]."""
    mu = float(2**bits - 1)
    x = np.clip(wave, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round((y + 1.0) / 2.0 * mu) / mu * 2.0 - 1.0
    return (np.sign(q) * np.expm1(np.abs(q) * np.log1p(mu)) / mu).astype(np.float32)


def telephone(wave: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """A phone line: band-limited to 300 Hz - 4 kHz with mu-law quantisation; same length."""
    x = np.asarray(wave, dtype=np.float32)
    if x.size == 0:
        return x.copy()
    narrow = signal.resample_poly(x, 1, 2)
    sos = signal.butter(4, _TELEPHONE_HIGHPASS_HZ, btype="highpass", fs=sample_rate // 2, output="sos")
    narrow = signal.sosfilt(sos, narrow)
    peak = float(np.max(np.abs(narrow))) or 1.0
    coded = mu_law(narrow / peak) * peak
    out = signal.resample_poly(coded, 2, 1)[: x.size]
    return np.pad(out, (0, x.size - out.size)).astype(np.float32)


def room_impulse(rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """A synthetic room impulse response: direct path + decaying noise tail, unit peak."""
    rt60 = float(rng.uniform(*RT60_RANGE_S))
    n = int(rt60 * sample_rate)
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # -60 dB at rt60
    tail[: int(0.0025 * sample_rate)] = 0.0  # the first reflections arrive after the direct path
    drr = 10.0 ** (float(rng.uniform(*_DIRECT_TO_REVERB_DB)) / 10.0)
    tail *= np.sqrt(1.0 / (drr * max(float(np.sum(tail**2)), 1e-12)))
    rir = tail
    rir[0] = 1.0
    return (rir / np.max(np.abs(rir))).astype(np.float32)


def reverb(wave: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """``wave`` heard in a random room (see ``room_impulse``); same length and peak."""
    x = np.asarray(wave, dtype=np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return x.copy()
    y = signal.fftconvolve(x, room_impulse(rng, sample_rate))[: x.size]
    return (y * (peak / max(float(np.max(np.abs(y))), 1e-12))).astype(np.float32)


def channel_augment(
    tag: str, wave: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000
) -> np.ndarray:
    """The channel augmentation ``tag`` ("telephone" or "reverb") of ``wave``."""
    if tag == "telephone":
        return telephone(wave, sample_rate)
    if tag == "reverb":
        return reverb(wave, rng, sample_rate)
    raise ValueError(f"not a channel augmentation: {tag!r}")
