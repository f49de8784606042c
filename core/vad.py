"""Voice activity detection: webrtcvad on fixed frames, smoothed by onset and hangover.

The same smoothing runs on whole files (``VoiceActivityDetector.frame_flags``) and on a
stream fed in blocks of any size (``StreamingVAD``); both give identical flags.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, TooShortError

__all__ = [
    "VAD_SAMPLE_RATES",
    "VoiceActivityDetector",
    "StreamingVAD",
    "HangoverSmoother",
    "smooth_flags",
    "remove_silence",
]

VAD_SAMPLE_RATES = (8000, 16000, 32000, 48000)
_FRAME_MS = (10, 20, 30)


def _new_vad(aggressiveness: int):
    # webrtcvad imports pkg_resources, which warns on import; keep that out of users' logs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import webrtcvad
    return webrtcvad.Vad(aggressiveness)


def _vad_decisions(vad: Any, pcm: np.ndarray, frame_samples: int, sample_rate: int) -> np.ndarray:
    """webrtcvad decisions of the whole frames of int16 ``pcm``: bool (len(pcm) // frame_samples,)."""
    n = len(pcm) // frame_samples
    frames = (pcm[i * frame_samples : (i + 1) * frame_samples].tobytes() for i in range(n))
    return np.fromiter((vad.is_speech(fr, sample_rate) for fr in frames), dtype=bool, count=n)


class HangoverSmoother:
    """Causal onset/hangover state machine over raw per-frame voicing decisions.

    Speech turns on at the ``onset_frames``-th consecutive voiced frame (that frame is the
    first flagged one, so isolated voiced frames never trigger), and stays on for
    ``hangover_frames`` frames after the last voiced frame.
    """

    def __init__(self, onset_frames: int = 2, hangover_frames: int = 10):
        if onset_frames < 1 or hangover_frames < 0:
            raise ConfigError("onset_frames must be >= 1 and hangover_frames >= 0")
        self.onset_frames = int(onset_frames)
        self.hangover_frames = int(hangover_frames)
        self.reset()

    def reset(self) -> None:
        self.speech = False
        self._run = 0  # consecutive voiced frames while off
        self._left = 0  # hangover frames still to flag while on

    def step(self, voiced: bool) -> bool:
        """Feed one raw decision; returns the smoothed flag of that frame."""
        if self.speech:
            if voiced:
                self._left = self.hangover_frames
            elif self._left > 0:
                self._left -= 1
            else:
                self.speech = False
                self._run = 0
            return self.speech
        if voiced:
            self._run += 1
            if self._run >= self.onset_frames:
                self.speech = True
                self._left = self.hangover_frames
        else:
            self._run = 0
        return self.speech


def smooth_flags(raw: np.ndarray, onset_frames: int = 2, hangover_frames: int = 10) -> np.ndarray:
    """Apply :class:`HangoverSmoother` to raw per-frame flags (K,) bool; returns (K,) bool."""
    sm = HangoverSmoother(onset_frames, hangover_frames)
    return np.fromiter((sm.step(bool(v)) for v in raw), dtype=bool, count=len(raw))


class VoiceActivityDetector:
    """Per-frame speech flags of a whole waveform.

    sample_rate: 8000/16000/32000/48000 Hz (webrtcvad's); aggressiveness 0 (lenient) to 3
    (strict); frame_ms 10/20/30; hangover_ms: speech stays on this long after the last
    voiced frame; onset_ms: voiced time needed before speech turns on (at least one frame).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        aggressiveness: int = 2,
        frame_ms: int = 30,
        hangover_ms: int = 300,
        *,
        onset_ms: int = 60,
    ):
        if sample_rate not in VAD_SAMPLE_RATES:
            raise ConfigError(
                f"VAD sample_rate must be one of {VAD_SAMPLE_RATES}, got {sample_rate}"
            )
        if isinstance(aggressiveness, bool) or aggressiveness not in (0, 1, 2, 3):
            raise ConfigError(f"VAD aggressiveness must be 0, 1, 2 or 3, got {aggressiveness!r}")
        if frame_ms not in _FRAME_MS:
            raise ConfigError(f"VAD frame_ms must be one of {_FRAME_MS}, got {frame_ms}")
        if hangover_ms < 0 or onset_ms < 0:
            raise ConfigError("VAD hangover_ms and onset_ms must be >= 0")
        self.sample_rate = int(sample_rate)
        self.aggressiveness = int(aggressiveness)
        self.frame_ms = int(frame_ms)
        self.hangover_ms = hangover_ms
        self.onset_ms = onset_ms
        self.frame_samples = self.sample_rate * self.frame_ms // 1000
        self.onset_frames = max(1, math.ceil(onset_ms / frame_ms))
        self.hangover_frames = math.ceil(hangover_ms / frame_ms)

    def _smoother(self) -> HangoverSmoother:
        return HangoverSmoother(self.onset_frames, self.hangover_frames)

    def raw_flags(self, wave: np.ndarray) -> np.ndarray:
        """Unsmoothed webrtcvad decisions, bool (N // frame_samples,)."""
        vad = _new_vad(self.aggressiveness)
        return _vad_decisions(vad, _to_int16(wave), self.frame_samples, self.sample_rate)

    def frame_flags(self, wave: np.ndarray) -> np.ndarray:
        """Smoothed speech flags of float32 ``wave`` (N,) in [-1, 1]: bool (N // frame_samples,).

        A trailing partial frame gets no flag. Frame k covers samples
        [k * frame_samples, (k + 1) * frame_samples).
        """
        return smooth_flags(self.raw_flags(wave), self.onset_frames, self.hangover_frames)


class StreamingVAD(VoiceActivityDetector):
    """The same flags as :meth:`VoiceActivityDetector.frame_flags`, computed block by block.

    ``push`` accepts float32 blocks of any length and returns the flags of the frames the
    block completed (possibly none). ``speech`` is the current smoothed state.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        """The same arguments as :class:`VoiceActivityDetector`."""
        super().__init__(*args, **kwargs)
        self.reset()

    def reset(self) -> None:
        """Forget all state (webrtcvad's adaptation, partial frame, smoothing)."""
        self._vad = _new_vad(self.aggressiveness)
        self._sm = self._smoother()
        self._pending = np.zeros(0, dtype=np.int16)
        self.frames = 0  # frames completed since the start / reset

    @property
    def speech(self) -> bool:
        return self._sm.speech

    def push(self, block: np.ndarray) -> np.ndarray:
        """Feed float32 samples (n,); returns bool flags (k,) of the k frames completed now."""
        pcm = _to_int16(block)
        if self._pending.size:
            pcm = np.concatenate([self._pending, pcm])
        raw = _vad_decisions(self._vad, pcm, self.frame_samples, self.sample_rate)
        flags = np.fromiter((self._sm.step(bool(v)) for v in raw), dtype=bool, count=len(raw))
        self._pending = pcm[len(raw) * self.frame_samples :].copy()
        self.frames += len(raw)
        return flags


def remove_silence(
    wave: np.ndarray,
    sample_rate: int = 16000,
    aggressiveness: int = 2,
    *,
    path: str | Path | None = None,
    min_speech_s: float = 0.0,
) -> np.ndarray:
    """Keep only the (smoothed) speech frames of ``wave`` (N,), concatenated: float32 (M,).

    M is a multiple of the 30 ms frame. Raises TooShortError(path, reason) when no speech
    remains or less than ``min_speech_s`` seconds of it.
    """
    det = VoiceActivityDetector(sample_rate, aggressiveness)
    x = np.asarray(wave, dtype=np.float32)
    flags = det.frame_flags(x)
    fs = det.frame_samples
    frames = x[: len(flags) * fs].reshape(-1, fs)
    speech = frames[flags].reshape(-1)
    kept_s = speech.size / sample_rate
    if speech.size == 0:
        raise TooShortError(path, "no speech found (silence removal left nothing)")
    if kept_s < min_speech_s:
        raise TooShortError(
            path, f"only {kept_s:.2f} s of speech after silence removal, need {min_speech_s:.2f} s"
        )
    return np.ascontiguousarray(speech)


def _to_int16(wave: np.ndarray) -> np.ndarray:
    """float [-1, 1] (N,) to int16 PCM (values outside are clipped; NaN becomes 0)."""
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"VAD expects a mono waveform (N,), got shape {x.shape}")
    x = np.nan_to_num(x, nan=0.0)
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)
