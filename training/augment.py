"""Data augmentation for training chunks: waveform noise, speed, VTLP and SpecAugment masks.

Every function is deterministic given its arguments; random ones take a ``numpy.random.Generator``.
Waveforms are float32 (N,) at 16 kHz; features are log-mel dB arrays (T, M).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from voxgate.core.errors import ConfigError

__all__ = [
    "AUG_TAGS",
    "DEFAULT_AUGMENTATIONS",
    "KNOWN_AUGMENTATIONS",
    "CHANNEL_AUGMENTATIONS",
    "WAVE_AUGMENTATIONS",
    "SPEC_AUGMENTATIONS",
    "SPEED_AUGMENTATIONS",
    "NOISE_SNR_DB",
    "parse_augmentations",
    "add_noise",
    "add_noise_snr",
    "speed_perturb",
    "speed_window",
    "vtlp_warp",
    "vtlp",
    "mask_time",
    "mask_freq",
    "random_time_mask",
    "random_freq_mask",
]

# Index in this tuple = the value stored in the HDF5 ``aug`` column (0 = original chunk).
AUG_TAGS: tuple[str, ...] = (
    "none",
    "noise_low",
    "noise_high",
    "specaug_time",
    "specaug_freq",
    "speed_0.9",
    "speed_1.1",
    "vtlp",
    "telephone",
    "reverb",
)
KNOWN_AUGMENTATIONS: tuple[str, ...] = AUG_TAGS[1:]
# The report's augmentations are the default; the channel ones (augment_channel.py) are opt-in.
CHANNEL_AUGMENTATIONS = frozenset({"telephone", "reverb"})
DEFAULT_AUGMENTATIONS: tuple[str, ...] = tuple(
    t for t in KNOWN_AUGMENTATIONS if t not in CHANNEL_AUGMENTATIONS
)
WAVE_AUGMENTATIONS = frozenset({"noise_low", "noise_high", "vtlp"}) | CHANNEL_AUGMENTATIONS
SPEC_AUGMENTATIONS = frozenset({"specaug_time", "specaug_freq"})
SPEED_AUGMENTATIONS: dict[str, float] = {"speed_0.9": 0.9, "speed_1.1": 1.1}
# SNR ranges (dB) of the two noise levels; each copy draws uniformly from its range.
NOISE_SNR_DB: dict[str, tuple[float, float]] = {
    "noise_low": (20.0, 30.0),
    "noise_high": (5.0, 10.0),
}
VTLP_RANGE = (0.9, 1.1)
VTLP_F_HI_HZ = (
    4800.0  # upper boundary frequency of the piecewise-linear warp (Jaitly & Hinton 2013)
)


def parse_augmentations(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Parse ``"noise_low,vtlp"`` (or ``"all"`` = the report's set, ``"none"``, a list) into
    known tags, in AUG_TAGS order."""
    if spec is None:
        return DEFAULT_AUGMENTATIONS
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    items = [s.strip() for s in items if s.strip()]
    if items == ["all"]:
        return DEFAULT_AUGMENTATIONS
    if items in ([], ["none"]):
        return ()
    unknown = sorted(set(items) - set(KNOWN_AUGMENTATIONS))
    if unknown:
        raise ConfigError(
            f"unknown augmentation(s) {unknown}; known: {list(KNOWN_AUGMENTATIONS)}"
        )
    return tuple(t for t in KNOWN_AUGMENTATIONS if t in items)


# --------------------------------------------------------------------------- noise


def add_noise_snr(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise at ``snr_db`` dB relative to the mean power of ``wave``.

    wave: float32 (N,). Returns a new float32 (N,) array (not clipped). A silent input is
    returned unchanged (its SNR is undefined).
    """
    x = np.asarray(wave, dtype=np.float32)
    power = float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0
    if power <= 0.0:
        return x.copy()
    sigma = np.sqrt(power / (10.0 ** (snr_db / 10.0)))
    return (x + sigma * rng.standard_normal(x.shape)).astype(np.float32)


def add_noise(wave: np.ndarray, level: str, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Noise augmentation ``level`` ("noise_low" or "noise_high"): returns (noisy float32 (N,), snr_db)."""
    lo, hi = NOISE_SNR_DB[level]
    snr = float(rng.uniform(lo, hi))
    return add_noise_snr(wave, snr, rng), snr


# --------------------------------------------------------------------------- speed


def speed_perturb(wave: np.ndarray, factor: float) -> np.ndarray:
    """Speed perturbation (pitch and tempo, like sox ``speed``): float32 (round(N / factor),).

    Implemented as a polyphase resampling by ``1 / factor`` (factor 0.9 = slower, longer).
    """
    if factor <= 0:
        raise ConfigError(f"speed factor must be > 0, got {factor}")
    from scipy.signal import resample_poly

    x = np.asarray(wave, dtype=np.float32)
    frac = Fraction(factor).limit_denominator(100)  # 0.9 -> 9/10: up 10, down 9
    if frac == 1:
        return x.copy()
    y = resample_poly(x.astype(np.float64), frac.denominator, frac.numerator)
    n = int(round(len(x) / factor))
    if len(y) < n:
        y = np.pad(y, (0, n - len(y)))
    return y[:n].astype(np.float32)


def speed_window(perturbed: np.ndarray, start: int, factor: float, n: int) -> np.ndarray:
    """The ``n``-sample window of a speed-perturbed recording that matches the original chunk
    starting at sample ``start`` (so chunk ``i`` and its speed copy hold the same words).
    Zero-padded at the end; float32 (n,)."""
    s = int(round(start / factor))
    out = np.zeros(n, dtype=np.float32)
    seg = perturbed[s : s + n]
    out[: len(seg)] = seg
    return out


# --------------------------------------------------------------------------- VTLP


def vtlp_warp(freqs_hz: np.ndarray, alpha: float, sample_rate: int = 16000) -> np.ndarray:
    """Piecewise-linear VTLP warp of frequencies (Hz): ``f * alpha`` below a boundary, then a
    straight line to Nyquist (so the warp maps [0, sr/2] onto itself)."""
    nyq = sample_rate / 2.0
    f0 = VTLP_F_HI_HZ * min(alpha, 1.0) / alpha
    f = np.asarray(freqs_hz, dtype=np.float64)
    upper = nyq - (nyq - alpha * f0) / (nyq - f0) * (nyq - f)
    return np.where(f <= f0, f * alpha, upper)


def vtlp(
    wave: np.ndarray, alpha: float, sample_rate: int = 16000, n_fft: int = 512, hop: int = 128
) -> np.ndarray:
    """Vocal-tract length perturbation of a waveform: float32 (N,) -> float32 (N,).

    The STFT is warped along frequency (content at f moves to ``vtlp_warp(f)``; alpha > 1
    raises formants and pitch) and resynthesised by inverse STFT. Magnitudes are interpolated
    at each bin's pre-image; phases are re-accumulated from the warped instantaneous
    frequencies (a phase vocoder), so a partial really lands at the warped frequency. Done on
    the waveform because ``log_mel`` (the one feature function) has no warp hook.
    """
    import torch

    x = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    n = x.shape[0]
    if alpha == 1.0 or n == 0:
        return np.asarray(wave, dtype=np.float32).copy()
    window = torch.hann_window(n_fft, dtype=torch.float32)
    spec = torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True).numpy()
    mag, phase = np.abs(spec), np.angle(spec)  # (F, T)
    n_bins = mag.shape[0]
    freqs = np.linspace(0.0, sample_rate / 2.0, n_bins)
    # out(g) = in(w^-1(g)): fractional source bin of each output bin.
    src = np.interp(freqs, vtlp_warp(freqs, alpha, sample_rate), freqs) / freqs[1]
    lo = np.clip(np.floor(src).astype(int), 0, n_bins - 1)
    hi = np.clip(lo + 1, 0, n_bins - 1)
    w = (src - lo)[:, None]
    new_mag = (1.0 - w) * mag[lo] + w * mag[hi]
    # Instantaneous frequency (rad/sample) of every source bin, from frame-to-frame phase steps.
    omega = 2.0 * np.pi * np.arange(n_bins) / n_fft
    dphi = np.diff(phase, axis=1) - hop * omega[:, None]
    dphi = (dphi + np.pi) % (2.0 * np.pi) - np.pi
    inst = omega[:, None] + dphi / hop  # (F, T-1)
    near = np.clip(np.round(src).astype(int), 0, n_bins - 1)
    inst_hz = np.clip(inst[near] * sample_rate / (2.0 * np.pi), 0.0, sample_rate / 2.0)
    warped = vtlp_warp(inst_hz, alpha, sample_rate) * 2.0 * np.pi / sample_rate
    new_phase = np.concatenate(
        [phase[near, :1], phase[near, :1] + np.cumsum(hop * warped, axis=1)], axis=1
    )
    new_spec = torch.from_numpy((new_mag * np.exp(1j * new_phase)).astype(np.complex64))
    y = torch.istft(new_spec, n_fft, hop, window=window, center=True, length=n)
    return y.numpy().astype(np.float32)


# --------------------------------------------------------------------------- SpecAugment


def mask_time(feats: np.ndarray, start: int, width: int, value: float | None = None) -> np.ndarray:
    """Copy of ``feats`` (T, M) with frames [start, start + width) set to ``value``
    (default: the minimum of ``feats``, i.e. the chunk's floor in dB)."""
    out = np.array(feats, copy=True)
    v = float(np.min(feats)) if value is None else value
    out[start : start + width, :] = v
    return out


def mask_freq(feats: np.ndarray, start: int, width: int, value: float | None = None) -> np.ndarray:
    """Copy of ``feats`` (T, M) with mel bands [start, start + width) set to ``value``
    (default: the minimum of ``feats``)."""
    out = np.array(feats, copy=True)
    v = float(np.min(feats)) if value is None else value
    out[:, start : start + width] = v
    return out


def _random_band(size: int, max_frac: float, rng: np.random.Generator) -> tuple[int, int]:
    """(start, width) of a random band, width uniform in [1, max(1, max_frac * size)]."""
    max_w = max(1, int(round(max_frac * size)))
    width = int(rng.integers(1, max_w + 1))
    start = int(rng.integers(0, max(1, size - width + 1)))
    return start, width


def random_time_mask(
    feats: np.ndarray,
    rng: np.random.Generator,
    max_frac: float = 0.2,
    valid_frames: int | None = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """SpecAugment time mask: one band of up to ``max_frac`` of the (valid) frames set to the
    chunk's minimum dB. Returns (masked copy (T, M), (start, width))."""
    t = feats.shape[0] if valid_frames is None else max(1, min(valid_frames, feats.shape[0]))
    start, width = _random_band(t, max_frac, rng)
    return mask_time(feats, start, width), (start, width)


def random_freq_mask(
    feats: np.ndarray, rng: np.random.Generator, max_frac: float = 0.15
) -> tuple[np.ndarray, tuple[int, int]]:
    """SpecAugment frequency mask: one band of up to ``max_frac`` of the mel bands set to the
    chunk's minimum dB. Returns (masked copy (T, M), (start, width))."""
    start, width = _random_band(feats.shape[1], max_frac, rng)
    return mask_freq(feats, start, width), (start, width)
