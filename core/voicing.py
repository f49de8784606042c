"""Is this voiced human speech? A pitch (YIN) and spectral check on top of webrtcvad.

webrtcvad flags loud noise as speech. Human speech has voiced stretches whose pitch lies in
the range of a voice and moves, carried by several harmonics; noise has no pitch, a tone or
a chirp has a single partial, hum has a pitch that does not move. :func:`voicing_stats`
measures that per 1-s window; :func:`is_voiced_speech` is the rule the scoring path and
enrollment apply, and :func:`rejection_reason` names what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "VoicingStats",
    "voicing_stats",
    "is_voiced_speech",
    "rejection_reason",
    "REASON_SILENCE",
    "REASON_NOISE",
    "REASON_TONE",
    "REASON_HUM",
    "REASON_CLIPPING",
    "REASON_BANDLIMITED",
]

REASON_SILENCE = "silence"
REASON_NOISE = "noise, not a voice"
REASON_TONE = "a tone or whistle, not a voice"
REASON_HUM = "a steady hum or music-like sound, not a voice"
REASON_CLIPPING = "clipping (too loud)"
REASON_BANDLIMITED = "band-limited (telephone-quality) audio, which the threshold is not valid for"

FRAME_S = 0.04
HOP_S = 0.04
F0_MIN_HZ = 60.0
F0_MAX_HZ = 400.0
SILENCE_DBFS = -55.0
APERIODICITY_MAX = 0.3  # YIN's cumulative-mean-normalised difference at the pitch lag
MIN_VOICED_FRACTION = 0.15  # of the window's active frames
MAX_PEAK_FRACTION = 0.97  # share of a voiced frame's power in its strongest partial (median)
MIN_PITCH_SPREAD_OCT = 0.015  # std of log2 f0 over the window's voiced frames
CLIP_LEVEL = 0.99
MAX_CLIPPED_FRACTION = 0.002
# Energy at 4.3-7.5 kHz relative to 0.1-4 kHz. Telephone-band audio (8 kHz recordings
# upsampled) sits near -60 dB, wideband speech near -24 dB (0.2 % of LibriSpeech windows
# below -55). On narrowband audio the model cannot tell voices apart (35 % FAR on FSDD at
# the shipped threshold), so such windows are not scored. docs/benchmarks.md.
MIN_HIGH_BAND_DB = -55.0


@dataclass(frozen=True)
class VoicingStats:
    """Per-window measures. active: frames above -55 dBFS; voiced_fraction of active frames;
    peak_fraction: median share of the strongest partial (±2 FFT bins) in voiced frames;
    pitch_spread_oct: std of log2 f0 over voiced frames; clipped_fraction of samples;
    high_band_db: energy at 4.3-7.5 kHz relative to 0.1-4 kHz (0 below a 16 kHz rate)."""

    active_fraction: float
    voiced_fraction: float
    peak_fraction: float
    pitch_spread_oct: float
    clipped_fraction: float
    high_band_db: float = 0.0


def _frames(x: np.ndarray, n: int, hop: int) -> np.ndarray:
    if x.size < n:
        x = np.pad(x, (0, n - x.size))
    k = 1 + (x.size - n) // hop
    idx = np.arange(n)[None, :] + hop * np.arange(k)[:, None]
    return x[idx]


def _yin(frames: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(aperiodicity (F,), f0 Hz (F,)) of frames (F, n) by YIN's normalised difference."""
    f, n = frames.shape
    lag_min, lag_max = int(sr / F0_MAX_HZ), int(sr / F0_MIN_HZ)
    w = n - lag_max  # the integration window, so every lag sees w samples
    size = 1 << int(np.ceil(np.log2(n + w)))
    spec_x = np.fft.rfft(frames, size)
    spec_w = np.fft.rfft(frames[:, :w], size)
    corr = np.fft.irfft(np.conj(spec_w) * spec_x, size)[:, : lag_max + 1]  # r(tau)
    sq = np.cumsum(np.square(frames, dtype=np.float64), axis=1)
    sq = np.concatenate([np.zeros((f, 1)), sq], axis=1)
    e0 = sq[:, w : w + 1]  # energy of x[0:w]
    taus = np.arange(lag_max + 1)
    etau = sq[:, taus + w] - sq[:, taus]  # energy of x[tau:tau+w]
    d = np.maximum(e0 + etau - 2.0 * corr, 0.0)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(cum, 1e-12)
    seg = cmnd[:, lag_min : lag_max + 1]
    best = np.argmin(seg, axis=1)
    aper = seg[np.arange(f), best]
    return aper, sr / (best + lag_min)


def voicing_stats(wave: np.ndarray, sample_rate: int) -> VoicingStats:
    """The measures of :class:`VoicingStats` for float32 ``wave`` (N,) in [-1, 1]."""
    x = np.asarray(wave, dtype=np.float32).reshape(-1)
    if x.size == 0:
        return VoicingStats(0.0, 0.0, 0.0, 0.0, 0.0)
    clipped = float(np.mean(np.abs(x) >= CLIP_LEVEL))
    high_db = _high_band_db(x, sample_rate)
    n, hop = int(FRAME_S * sample_rate), int(HOP_S * sample_rate)
    frames = _frames(x.astype(np.float64), n, hop)
    rms = np.sqrt(np.mean(np.square(frames), axis=1))
    active = 20 * np.log10(rms + 1e-12) > SILENCE_DBFS
    if not active.any():
        return VoicingStats(0.0, 0.0, 0.0, 0.0, clipped, high_db)
    fr = frames[active] - frames[active].mean(axis=1, keepdims=True)
    aper, f0 = _yin(fr, sample_rate)
    voiced = aper < APERIODICITY_MAX
    peak, spread = 0.0, 0.0
    if voiced.any():
        power = np.abs(np.fft.rfft(fr[voiced] * _hann(n), axis=1)) ** 2
        total = power.sum(axis=1) + 1e-20
        top = np.argmax(power, axis=1)
        lo, hi = np.maximum(top - 2, 0), np.minimum(top + 3, power.shape[1])
        cum = np.concatenate([np.zeros((len(top), 1)), np.cumsum(power, axis=1)], axis=1)
        rows = np.arange(len(top))
        near = cum[rows, hi] - cum[rows, lo]  # power of bins lo .. hi - 1
        peak = float(np.median(near / total))
        spread = float(np.std(np.log2(f0[voiced]))) if voiced.sum() > 1 else 0.0
    return VoicingStats(
        active_fraction=float(active.mean()),
        voiced_fraction=float(voiced.mean()),
        peak_fraction=peak,
        pitch_spread_oct=spread,
        clipped_fraction=clipped,
        high_band_db=high_db,
    )


@lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    """np.hanning(n), computed once per length (every window asks for the same ones)."""
    w = np.hanning(n)
    w.flags.writeable = False
    return w


@lru_cache(maxsize=8)
def _bands(n: int, sample_rate: int) -> tuple[slice, slice]:
    """rfft bins of an n-sample signal in [4.3, 7.5) kHz (high) and [0.1, 4) kHz (low)."""
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)

    def span(lo: float, hi: float) -> slice:
        idx = np.flatnonzero((f >= lo) & (f < hi))
        return slice(int(idx[0]), int(idx[-1]) + 1) if idx.size else slice(0, 0)

    return span(4300.0, 7500.0), span(100.0, 4000.0)


def _high_band_db(x: np.ndarray, sample_rate: int) -> float:
    if sample_rate < 16000:
        return 0.0
    power = np.abs(np.fft.rfft(x * _hann(x.size))) ** 2
    high, low = _bands(x.size, sample_rate)
    return float(10 * np.log10((power[high].sum() + 1e-20) / (power[low].sum() + 1e-20)))


def rejection_reason(stats: VoicingStats) -> str | None:
    """Why a window is not voiced human speech (one of the REASON_* strings), or None."""
    if stats.clipped_fraction > MAX_CLIPPED_FRACTION:
        return REASON_CLIPPING
    if stats.active_fraction < 0.2:
        return REASON_SILENCE
    if stats.voiced_fraction < MIN_VOICED_FRACTION:
        return REASON_NOISE
    if stats.peak_fraction > MAX_PEAK_FRACTION:
        return REASON_TONE
    if stats.pitch_spread_oct < MIN_PITCH_SPREAD_OCT:
        return REASON_HUM
    if stats.high_band_db < MIN_HIGH_BAND_DB:
        return REASON_BANDLIMITED
    return None


def is_voiced_speech(window: np.ndarray, sample_rate: int) -> bool:
    """True when a window (about 1 s, float32) sounds like voiced human speech."""
    return rejection_reason(voicing_stats(window, sample_rate)) is None
