"""THE log-mel feature function: dataset build, live scoring and display all call it."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .config import FeatureConfig, n_frames

__all__ = ["log_mel", "mel_power", "frame_mel_power", "power_to_db", "n_frames", "mel_filterbank"]

_AMIN = 1e-10


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, htk=False): linear to 1 kHz, log above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    return np.where(log_part, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / _LOGSTEP, mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp(_LOGSTEP * (mel - 15.0)), mel * (200.0 / 3))


_LOGSTEP = float(np.log(6.4) / 27.0)


@lru_cache(maxsize=16)
def _mel_basis(cfg: FeatureConfig) -> torch.Tensor:
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) (Slaney scale and area norm),
    computed the same way in numpy: the live path does not import librosa (~1 s)."""
    n_bins = 1 + cfg.n_fft // 2
    fft_hz = np.fft.rfftfreq(cfg.n_fft, 1.0 / cfg.sample_rate)
    lo, hi = _hz_to_mel(np.array([cfg.f_min, cfg.fmax]))
    mel_hz = _mel_to_hz(np.linspace(lo, hi, cfg.n_mels + 2))
    fdiff = np.diff(mel_hz)
    ramps = np.subtract.outer(mel_hz, fft_hz)
    weights = np.zeros((cfg.n_mels, n_bins), dtype=np.float32)
    for i in range(cfg.n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2 : cfg.n_mels + 2] - mel_hz[: cfg.n_mels]))[:, None]
    return torch.from_numpy(weights)  # (n_mels, n_fft // 2 + 1)


def mel_filterbank(cfg: FeatureConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """Slaney-normalised mel filterbank, shape (n_mels, n_fft // 2 + 1), float32."""
    return _mel_basis(cfg).to(device)


@lru_cache(maxsize=16)
def _window(win: int) -> torch.Tensor:
    return torch.hann_window(win, periodic=True, dtype=torch.float32)


def log_mel(wave: np.ndarray | torch.Tensor, cfg: FeatureConfig | None = None) -> torch.Tensor:
    """Log-mel spectrogram in dB.

    wave: float waveform(s) at ``cfg.sample_rate`` in [-1, 1], shape (N,) or (B, N),
    numpy or torch (any device; computed there, always in float32, never under autocast).
    Returns float32 of shape (T, n_mels) or (B, T, n_mels), T = 1 + N // hop_length.
    With ``ref="peak"`` each item's maximum is 0 dB and its floor is -top_db dB
    (librosa's ``power_to_db(ref=np.max, top_db=...)`` of ``melspectrogram(power=2)``).
    """
    cfg = cfg or FeatureConfig()
    x = torch.as_tensor(wave)
    single = x.dim() == 1
    if single:
        x = x.unsqueeze(0)
    if x.dim() != 2:
        raise ValueError(f"log_mel expects shape (N,) or (B, N), got {tuple(x.shape)}")
    with torch.autocast(device_type=x.device.type, enabled=False):
        mel = mel_power(x, cfg)  # (B, M, T)
        db = power_to_db(mel)
        if cfg.ref == "peak":
            peak = mel.amax(dim=(1, 2), keepdim=True).clamp_min(_AMIN)
            db = db - 10.0 * torch.log10(peak)
        if cfg.top_db > 0:
            db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - cfg.top_db)
    out = db.transpose(1, 2).contiguous()  # (B, T, M)
    return out[0] if single else out


def power_to_db(power: torch.Tensor) -> torch.Tensor:
    """10 * log10(power) with power floored at 1e-10 (-100 dB); same shape, float32."""
    return 10.0 * torch.log10(power.clamp_min(_AMIN))


def mel_power(x: torch.Tensor, cfg: FeatureConfig, *, center: bool = True) -> torch.Tensor:
    """Mel power (B, M, T) float32 of float waveforms (B, N), before any dB conversion.

    center=True (log_mel's framing): frame t covers samples [t*hop - n_fft/2, t*hop + n_fft/2)
    with zeros outside the signal, T = 1 + N // hop. center=False: frame t covers
    [t*hop, t*hop + n_fft), T = 1 + (N - n_fft) // hop (the live display's framing).
    """
    x = x.to(torch.float32)
    with torch.autocast(device_type=x.device.type, enabled=False):
        spec = torch.stft(
            x,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win,
            window=_window(cfg.win).to(x.device),
            center=center,
            pad_mode="constant",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()  # (B, F, T)
        return torch.matmul(mel_filterbank(cfg, x.device), power)


def frame_mel_power(segment: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """numpy ``mel_power(segment[None], cfg, center=False)[0]``: float32 (M, T) of a 1-D
    float32 segment, T = 1 + (N - n_fft) // hop. For a few frames at a time (the live
    display), where torch's per-call overhead would cost more than the FFTs; equal to
    :func:`mel_power` up to float32 rounding."""
    x = np.asarray(segment, dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, cfg.n_fft)[:: cfg.hop_length]
    window = _np_window(cfg.n_fft, cfg.win)
    spec = np.fft.rfft(frames * window, axis=1)  # (T, F)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    return _mel_basis(cfg).numpy() @ power.T


@lru_cache(maxsize=16)
def _np_window(n_fft: int, win: int) -> np.ndarray:
    """The periodic Hann window of ``win`` samples centred in ``n_fft``, as torch.stft pads it."""
    w = np.zeros(n_fft, dtype=np.float32)
    left = (n_fft - win) // 2
    w[left : left + win] = _window(win).numpy()
    return w
