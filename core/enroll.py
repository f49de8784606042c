"""Enrollment: turn windows of someone's speech into a voice profile, with live feedback."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, ProfileError, TooShortError
from .events import EnrollProgressEvent
from .live_config import ENROLL_HOP_S, MIN_ENROLL_SPEECH_S
from .profiles import Profile, ProfileStore
from .scoring import Encoder, SpeechCounter, make_profile, unit

__all__ = [
    "Enroller",
    "enroll_from_files",
    "enroll_from_waves",
    "window_speech_ratio",
    "rms_dbfs",
    "FEEDBACK_NO_SPEECH",
    "FEEDBACK_QUIET",
    "FEEDBACK_CLIPPING",
    "FEEDBACK_NOISE",
    "FEEDBACK_INCONSISTENT",
    "MIN_ENROLL_SPEECH_S",
]

FEEDBACK_NO_SPEECH = "no speech detected"
FEEDBACK_QUIET = "too quiet"
FEEDBACK_CLIPPING = "clipping"
FEEDBACK_NOISE = "too much noise"
FEEDBACK_INCONSISTENT = "inconsistent voice"

CLIP_PEAK = 0.99


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level of float samples in dBFS (a full-scale square wave is 0 dB; silence -120)."""
    if x.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return max(-120.0, 20.0 * math.log10(rms + 1e-12))


def window_speech_ratio(
    flags: np.ndarray, first_frame: int, frame_samples: int, start: int, n: int
) -> float:
    """Fraction of VAD frames flagged speech in samples [start, start + n).

    flags: bool (K,) smoothed flags of frames first_frame .. first_frame + K - 1 (frame k covers
    samples [k * frame_samples, (k + 1) * frame_samples)). Frames that start inside the window
    count; frames not (yet) available are ignored. Returns 0.0 when none is available.
    """
    lo = -(-start // frame_samples) - first_frame  # first frame starting at/after `start`
    hi = (start + n) // frame_samples - first_frame  # frames ending at/before the window's end
    lo, hi = max(lo, 0), min(hi, len(flags))
    if hi <= lo:
        return 0.0
    return float(np.mean(flags[lo:hi]))


class Enroller:
    """Collects ``target_s`` seconds of speech window by window and builds a :class:`Profile`.

    ``add_window`` is called for every analysis window of the stream (speech or not), with
    its absolute start sample and VAD speech ratio. Windows with ratio >= ``min_speech_ratio``
    and a consistent voice are embedded and kept; each kept window adds the speech in its
    not-yet-counted part (windows overlap) to ``speech_s``. The profile is the L2-normalised
    mean of the L2-normalised window embeddings.

    A window is kept only when it is voiced human speech (``core.voicing``): noise, tones,
    hum, music-like sound and clipping are refused with their reason as feedback, and
    :meth:`finish` names the commonest reason when too little speech was kept.

    Feedback strings (in the returned progress events): "no speech detected" (no kept window
    for ``no_speech_s``), "too quiet" (window rms < ``quiet_dbfs``), "clipping" (peak >=
    0.99), "too much noise" (little speech but loud, rms > ``noisy_dbfs``), "inconsistent
    voice" (cosine to the running profile below mean - 3 std of the kept windows' cosines, or
    below ``inconsistent_floor``; such windows are left out of the profile).
    """

    def __init__(
        self,
        encoder: Encoder,
        name: str,
        *,
        target_s: float = 20.0,
        authorized: bool = True,
        keep_audio: bool = False,
        min_speech_ratio: float = 0.5,
        min_speech_s: float | None = None,
        no_speech_s: float = 3.0,
        quiet_dbfs: float = -45.0,
        noisy_dbfs: float = -30.0,
        inconsistent_floor: float = 0.2,
    ):
        if not target_s >= MIN_ENROLL_SPEECH_S:
            raise ConfigError(
                f"enrollment needs a target of at least {MIN_ENROLL_SPEECH_S:g} s of speech, "
                f"got {target_s}"
            )
        self.encoder = encoder
        self.name = name
        self.target_s = float(target_s)
        self.authorized = authorized
        self.keep_audio = keep_audio
        self.min_speech_ratio = float(min_speech_ratio)
        self.min_speech_s = MIN_ENROLL_SPEECH_S if min_speech_s is None else float(min_speech_s)
        self.no_speech_s = float(no_speech_s)
        self.quiet_dbfs = float(quiet_dbfs)
        self.noisy_dbfs = float(noisy_dbfs)
        self.inconsistent_floor = float(inconsistent_floor)
        self.sample_rate = int(encoder.feature_config.sample_rate)
        self.embeddings: list[np.ndarray] = []
        self._sum: np.ndarray | None = None
        self._cosines: list[float] = []  # each kept window's cosine to the running profile
        self._speech = SpeechCounter(self.sample_rate)
        self._last_speech_end = 0
        self._audio: list[np.ndarray] = []
        self.n_inconsistent = 0
        self.levels_dbfs: list[float] = []
        self.refused: dict[str, int] = {}  # voicing rejection reason -> windows

    @property
    def speech_s(self) -> float:
        """Seconds of speech in the kept windows (overlaps counted once)."""
        return self._speech.seconds

    @property
    def fraction(self) -> float:
        return min(1.0, self.speech_s / self.target_s)

    @property
    def complete(self) -> bool:
        return self.speech_s >= self.target_s

    @property
    def n_windows(self) -> int:
        return len(self.embeddings)

    def add_window(
        self,
        start: int,
        window: np.ndarray,
        speech_ratio: float,
        embedding: np.ndarray | None = None,
    ) -> EnrollProgressEvent:
        """Consider one window (float32 (N,), absolute ``start`` sample); returns progress.

        embedding: the window's (D,) embedding if already computed (batch use), else the
        encoder embeds it here when it is kept.
        """
        end = start + window.size
        level = rms_dbfs(window)
        peak = float(np.max(np.abs(window))) if window.size else 0.0
        feedback: list[str] = []
        if peak >= CLIP_PEAK:
            feedback.append(FEEDBACK_CLIPPING)
        if level < self.quiet_dbfs:
            feedback.append(FEEDBACK_QUIET)
        if speech_ratio < self.min_speech_ratio:
            if level > self.noisy_dbfs:
                feedback.append(FEEDBACK_NOISE)
                self.refused[FEEDBACK_NOISE] = self.refused.get(FEEDBACK_NOISE, 0) + 1
        elif (reason := self._voicing_problem(window)) is not None:
            if reason not in feedback:
                feedback.append(reason)
        elif not self.complete:
            emb = self.encoder.embed(window[None, :])[0] if embedding is None else embedding
            emb = np.asarray(emb, dtype=np.float32)
            emb = unit(emb)
            cos = (
                None if self._sum is None else float(emb @ (self._sum / np.linalg.norm(self._sum)))
            )
            if self._inconsistent(cos):
                self.n_inconsistent += 1
                feedback.append(FEEDBACK_INCONSISTENT)
            else:
                self._keep(start, window, speech_ratio, emb, level, cos)
                self._last_speech_end = end
        if (end - self._last_speech_end) / self.sample_rate > self.no_speech_s:
            feedback.append(FEEDBACK_NO_SPEECH)
        return self.progress(tuple(feedback))

    def _voicing_problem(self, window: np.ndarray) -> str | None:
        from .voicing import rejection_reason, voicing_stats

        reason = rejection_reason(voicing_stats(window, self.sample_rate))
        if reason is not None:
            self.refused[reason] = self.refused.get(reason, 0) + 1
        return reason

    def _inconsistent(self, cos: float | None) -> bool:
        """cos: the window's cosine to the running profile (None before the first kept one)."""
        if cos is None or len(self.embeddings) < 3:
            return False
        if cos < self.inconsistent_floor:
            return True
        if len(self._cosines) >= 5:
            mean, std = float(np.mean(self._cosines)), float(np.std(self._cosines))
            return cos < mean - 3.0 * max(std, 0.02)
        return False

    def _keep(
        self,
        start: int,
        window: np.ndarray,
        ratio: float,
        emb: np.ndarray,
        level: float,
        cos: float | None,
    ) -> None:
        if cos is not None:
            self._cosines.append(cos)
        self._sum = emb.astype(np.float64) if self._sum is None else self._sum + emb
        self.embeddings.append(emb)
        self.levels_dbfs.append(level)
        new_from = self._speech.add(start, window.size, ratio)
        if self.keep_audio and new_from < start + window.size:
            self._audio.append(window[new_from - start :].copy())

    def progress(self, feedback: tuple[str, ...] = (), done: bool = False) -> EnrollProgressEvent:
        return EnrollProgressEvent(
            name=self.name,
            fraction=self.fraction,
            speech_s=self.speech_s,
            target_s=self.target_s,
            feedback=feedback,
            done=done,
        )

    def speech_audio(self) -> np.ndarray | None:
        """The kept windows' audio, float32 (N,) at 16 kHz, when keep_audio is on (else None)."""
        if not self.keep_audio:
            return None
        return np.concatenate(self._audio) if self._audio else np.zeros(0, np.float32)

    def finish(self) -> Profile:
        """The profile from the kept windows. Raises TooShortError below ``min_speech_s``."""
        if not self.embeddings or self.speech_s < self.min_speech_s:
            why = ""
            if self.refused:
                reason, n = max(self.refused.items(), key=lambda kv: kv[1])
                why = f"; {n} window(s) refused as {reason}"
            raise TooShortError(
                None,
                f"enrollment of {self.name!r} needs at least {self.min_speech_s:.1f} s of "
                f"voiced speech, got {self.speech_s:.1f} s{why}",
            )
        embs = unit(np.stack(self.embeddings))
        profile_vec = make_profile(embs)
        cos = embs @ profile_vec
        quality = {
            "mean_cos": float(cos.mean()),
            "std_cos": float(cos.std()),
            "min_cos": float(cos.min()),
            "n_inconsistent": float(self.n_inconsistent),
            "mean_rms_dbfs": float(np.mean(self.levels_dbfs)),
        }
        return Profile(
            name=self.name,
            embedding=profile_vec,
            authorized=self.authorized,
            model_fingerprint=self.encoder.fingerprint,
            n_windows=len(self.embeddings),
            speech_s=round(self.speech_s, 3),
            quality=quality,
        )


def enroll_from_files(
    encoder: Encoder,
    paths: Sequence[str | Path],
    name: str,
    *,
    store: ProfileStore | None = None,
    replace: bool = False,
    **options: Any,
) -> Profile:
    """Enroll ``name`` from recordings ("enroll from recordings").

    Each file is loaded at 16 kHz and cut into windows by ``core.scoring.windows`` (the
    live pipeline's windows, VAD and speech ratios; defaults from ``core.scoring``); its
    speech windows are embedded in batches and fed to an :class:`Enroller`. target_s: stop
    once this much speech is collected (None: use all of it, at least
    ``MIN_ENROLL_SPEECH_S``). The profile is saved to ``store`` (with the speech audio when
    ``keep_audio``; an existing profile only with ``replace``). Raises AudioError for
    unreadable files and TooShortError when too little voiced speech is found.
    """
    from .audio import load_audio

    if not paths:
        raise ConfigError("enroll_from_files needs at least one file")
    if store is not None and not replace and store.exists(name):
        raise ProfileError(f"a profile named {name!r} exists; use --force to replace it")
    waves = [load_audio(p, encoder.feature_config.sample_rate) for p in paths]
    return enroll_from_waves(encoder, waves, name, store=store, replace=replace, **options)


def enroll_from_waves(
    encoder: Encoder,
    waves: Sequence[np.ndarray],
    name: str,
    *,
    authorized: bool = True,
    store: ProfileStore | None = None,
    keep_audio: bool = False,
    hop_s: float | None = None,
    min_speech_ratio: float | None = None,
    vad_aggressiveness: int | None = None,
    target_s: float | None = None,
    replace: bool = False,
    on_progress: Callable[[EnrollProgressEvent], None] | None = None,
) -> Profile:
    """:func:`enroll_from_files` on waveforms already loaded at the model's sample rate
    (float32 (N,) each): the one enrollment path of the CLI, the GUI, calibration and the
    benchmarks. ``options`` of :func:`enroll_from_files`: authorized, keep_audio, hop_s,
    min_speech_ratio, vad_aggressiveness, target_s, on_progress."""
    from .scoring import DEFAULT_MIN_SPEECH_RATIO, DEFAULT_VAD_AGGRESSIVENESS

    if not len(waves):
        raise ConfigError("enrollment needs at least one recording")
    hop_s = ENROLL_HOP_S if hop_s is None else hop_s
    ratio_min = DEFAULT_MIN_SPEECH_RATIO if min_speech_ratio is None else min_speech_ratio
    vad = DEFAULT_VAD_AGGRESSIVENESS if vad_aggressiveness is None else vad_aggressiveness
    sr = encoder.feature_config.sample_rate
    total_s = sum(w.size for w in waves) / sr
    enroller = Enroller(
        encoder,
        name,
        target_s=target_s if target_s is not None else max(total_s, MIN_ENROLL_SPEECH_S),
        authorized=authorized,
        keep_audio=keep_audio,
        min_speech_ratio=ratio_min,
        no_speech_s=math.inf,  # silence in recordings is not the speaker's fault
    )
    _feed_waves(enroller, waves, hop_s, vad, ratio_min, on_progress)
    profile = enroller.finish()
    if store is not None:
        store.save(profile, audio=enroller.speech_audio(), sample_rate=sr, replace=replace)
    if on_progress is not None:
        done = enroller.progress(done=True)
        on_progress(EnrollProgressEvent(name, 1.0, done.speech_s, done.target_s, (), True))
    return profile


def _feed_waves(
    enroller: Enroller,
    waves: Sequence[np.ndarray],
    hop_s: float,
    vad_aggressiveness: int,
    min_speech_ratio: float,
    on_progress: Callable[[EnrollProgressEvent], None] | None,
) -> None:
    """Feed every window of ``waves`` to ``enroller`` until it is complete; the windows with
    at least ``min_speech_ratio`` speech are embedded in batches (``core.scoring``)."""
    from .scoring import embed_windows, windows

    encoder = enroller.encoder
    offset = 0
    for wave in waves:
        win = windows(wave, encoder.feature_config, hop_s, vad_aggressiveness)
        keep = np.flatnonzero(win.speech_ratio >= min_speech_ratio)
        embs = dict(zip(keep.tolist(), embed_windows(encoder, win.waves[keep])))
        for i in range(len(win)):
            event = enroller.add_window(
                offset + int(win.starts[i]), win.waves[i], float(win.speech_ratio[i]), embs.get(i)
            )
            if on_progress is not None:
                on_progress(event)
            if enroller.complete:
                break
        # A gap between files so that windows of two files never count as overlapping.
        offset += wave.size + win.window_samples
        if enroller.complete:
            break
