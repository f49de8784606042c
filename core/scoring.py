"""The one path from waveform to decision: speech windows -> embeddings -> scores -> decisions.

Every caller goes through this module: the live pipeline, enrollment, ``verify`` /
``identify``, evaluation, calibration, ``embed``, the report and the benchmarks.

- :func:`windows`: the 1-s analysis windows of a waveform with their VAD speech ratio,
  exactly what the live front end produces for the same samples;
- :func:`embed_windows` / :func:`embed_utterance`: unit embeddings of windows / of the
  speech of a whole utterance;
- :func:`make_profile`: the one way to turn embeddings into a profile vector;
- :class:`Scorer`: windows x candidates -> per-window scores;
- :class:`Decider`: per-window scores -> the decision events of
  :class:`~voxgate.core.decision.DecisionAggregator`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .config import FeatureConfig
from .decision import DecisionAggregator, windows_for_decision
from .errors import ProfileError
from .events import DecisionEvent, ScoreEvent
from .live_config import DEFAULT_HOP_S, DEFAULT_MIN_SPEECH_RATIO, DEFAULT_VAD_AGGRESSIVENESS

__all__ = [
    "DEFAULT_HOP_S",
    "DEFAULT_MIN_SPEECH_RATIO",
    "DEFAULT_VAD_AGGRESSIVENESS",
    "Encoder",
    "Windows",
    "seconds_to_samples",
    "unit",
    "make_profile",
    "windows",
    "speech_mask",
    "is_scored",
    "embed_windows",
    "embed_utterance",
    "Decider",
    "make_aggregator",
    "score_event",
    "Scorer",
    "SpeechCounter",
]


class Encoder(Protocol):
    """What the scoring path needs from a speaker model (``core.inference.SpeakerEncoder``).

    Waveforms are float32 at ``feature_config.sample_rate`` in [-1, 1]; embeddings are float32
    unit vectors of ``model_config.embed_dim``.
    """

    feature_config: FeatureConfig
    model_config: Any
    fingerprint: str
    threshold: float
    calibration: dict[str, Any]
    heads: dict[str, int]

    def embed(self, waves: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """(B, N) -> float32 (B, D), unit rows."""
        ...

    def verify(
        self, waves: np.ndarray, bank: np.ndarray, mc_passes: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """(B, N) x (K, D) -> cosine (mean, std), float32 (B, K)."""
        ...

    def score(self, waves: np.ndarray, head: str, mc_passes: int = 0) -> Any:
        """Closed-set head probabilities (a ``ScoreResult``)."""
        ...


def seconds_to_samples(seconds: float, sample_rate: int) -> int:
    """``round(seconds * sample_rate)``, at least 1: the one seconds -> samples rule."""
    return max(1, int(round(float(seconds) * int(sample_rate))))


def unit(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x`` scaled to unit L2 norm along ``axis`` (float32; all-zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


def make_profile(embeddings: np.ndarray) -> np.ndarray:
    """Profile vector float32 (D,): the unit-norm mean of the unit-norm rows of (W, D).

    The one definition used by enrollment, evaluation, calibration and the benchmarks.
    Raises ProfileError when there is no row or the mean vanishes.
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] == 0:
        raise ProfileError(f"a profile needs at least one embedding, got shape {emb.shape}")
    mean = unit(emb).mean(axis=0)
    if not np.all(np.isfinite(mean)) or float(np.linalg.norm(mean)) < 1e-6:
        raise ProfileError("the enrollment embeddings cancel out: no usable profile")
    return unit(mean)


@dataclass(frozen=True)
class Windows:
    """Analysis windows of one waveform.

    starts: int64 (W,) first sample of each window; waves: float32 (W, N) with N the model's
    window (``feature_config.chunk_samples``); speech_ratio: float (W,) fraction of VAD speech
    frames inside each window; sample_rate in Hz.
    """

    starts: np.ndarray
    waves: np.ndarray
    speech_ratio: np.ndarray
    sample_rate: int

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    @property
    def window_samples(self) -> int:
        return int(self.waves.shape[1])


def windows(
    wave: np.ndarray,
    feature_config: FeatureConfig,
    hop_s: float = DEFAULT_HOP_S,
    vad_aggressiveness: int = DEFAULT_VAD_AGGRESSIVENESS,
) -> Windows:
    """The windows of ``wave`` (float32 (N,) at ``feature_config.sample_rate``) every ``hop_s``.

    Same boundaries, VAD and speech ratios as the live front end fed the same samples in
    blocks of any size (a test checks it); only full windows (a wave shorter than one window
    gives none).
    """
    from .chunking import Windower
    from .enroll import window_speech_ratio
    from .vad import VoiceActivityDetector

    sr = int(feature_config.sample_rate)
    n = int(feature_config.chunk_samples)
    x = np.asarray(wave, dtype=np.float32).reshape(-1)
    vad = VoiceActivityDetector(sr, vad_aggressiveness)
    flags = vad.frame_flags(x)
    found = Windower(n, seconds_to_samples(hop_s, sr)).push(x)
    starts = np.array([s for s, _ in found], dtype=np.int64)
    waves = np.stack([w for _, w in found]) if found else np.zeros((0, n), np.float32)
    ratios = np.array(
        [window_speech_ratio(flags, 0, vad.frame_samples, int(s), n) for s in starts],
        dtype=np.float64,
    )
    return Windows(starts, waves.astype(np.float32, copy=False), ratios, sr)


def is_scored(window: np.ndarray, ratio: float, min_speech_ratio: float, sample_rate: int) -> bool:
    """The rule for scoring a window, live and offline: its VAD speech ratio is at least
    ``min_speech_ratio`` and it is voiced human speech (``core.voicing``)."""
    from .voicing import is_voiced_speech

    return bool(ratio >= min_speech_ratio) and is_voiced_speech(window, sample_rate)


def speech_mask(win: Windows, min_speech_ratio: float = DEFAULT_MIN_SPEECH_RATIO) -> np.ndarray:
    """bool (W,): the windows :func:`is_scored` keeps."""
    return np.array(
        [
            is_scored(win.waves[i], float(win.speech_ratio[i]), min_speech_ratio, win.sample_rate)
            for i in range(len(win))
        ],
        dtype=bool,
    )


def embed_windows(encoder: Encoder, waves: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Unit embeddings float32 (W, D) of windows (W, N); (0, D) for no window."""
    waves = np.asarray(waves, dtype=np.float32)
    if waves.ndim != 2:
        raise ValueError(f"waves must have shape (W, N), got {waves.shape}")
    if waves.shape[0] == 0:
        return np.zeros((0, int(encoder.model_config.embed_dim)), np.float32)
    return unit(encoder.embed(waves, batch_size=batch_size))


def embed_utterance(
    encoder: Encoder,
    wave: np.ndarray,
    hop_s: float = DEFAULT_HOP_S,
    *,
    min_speech_ratio: float = DEFAULT_MIN_SPEECH_RATIO,
    vad_aggressiveness: int = DEFAULT_VAD_AGGRESSIVENESS,
) -> np.ndarray:
    """The profile-style vector (D,) of one utterance: :func:`make_profile` of its speech
    windows. Raises ProfileError when it has no speech window."""
    win = windows(wave, encoder.feature_config, hop_s, vad_aggressiveness)
    mask = speech_mask(win, min_speech_ratio)
    if not mask.any():
        raise ProfileError("no speech window in this utterance")
    return make_profile(embed_windows(encoder, win.waves[mask]))


def make_aggregator(
    encoder: Encoder,
    threshold: float,
    *,
    decision_s: float,
    hop_s: float,
    uncertain_std: float,
    mode: str,
    admissible: Sequence[str] | None = None,
) -> DecisionAggregator:
    """The decision rule every path uses: K windows spanning ``decision_s``, no decision on
    fewer (k_min = K: a threshold is only valid for the amount of speech it was calibrated
    on), history cleared after a silence of max(2 s, decision_s / 2)."""
    k = windows_for_decision(decision_s, encoder.feature_config.chunk_s, hop_s)
    return DecisionAggregator(
        k,
        threshold,
        k_min=k,
        uncertain_std=uncertain_std,
        mode=mode,
        max_gap_s=max(2.0, decision_s / 2),
        admissible=admissible,
    )


def score_event(
    start: int,
    n: int,
    sample_rate: int,
    ratio: float,
    scores: dict[str, float],
    spread: dict[str, float],
    threshold: float,
) -> ScoreEvent:
    """The ScoreEvent of one scored window (best = highest score, ties by name)."""
    best = max(sorted(scores), key=scores.__getitem__) if scores else None
    return ScoreEvent(
        t_start_s=start / sample_rate,
        t_end_s=(start + n) / sample_rate,
        speech_ratio=float(ratio),
        scores=scores,
        spread=spread,
        best=best,
        best_score=scores[best] if best is not None else math.nan,
        best_spread=spread.get(best, 0.0) if best is not None else 0.0,
        threshold=threshold,
    )


class SpeechCounter:
    """Seconds of speech in a stream of overlapping windows: each window adds only the part
    not counted yet, weighted by its VAD speech ratio (enrollment progress, attempts)."""

    def __init__(self, sample_rate: int):
        self.sr = int(sample_rate)
        self.seconds = 0.0
        self._counted_to = 0  # absolute sample up to which speech has been counted

    def add(self, start: int, n: int, ratio: float) -> int:
        """Count window [start, start + n); returns the first sample it added (>= start;
        start + n when it added nothing)."""
        new_from = min(max(start, self._counted_to), start + n)
        self.seconds += (start + n - new_from) / self.sr * float(ratio)
        self._counted_to = max(self._counted_to, start + n)
        return new_from


class Decider:
    """Feeds windows, scored or not, to one aggregator in stream order.

    ``feed(start, n, ratio, result)``: result is (scores, spread) for a scored window and
    None for a window without enough speech. Returns the events this window produced
    (a ScoreEvent and a DecisionEvent, or at most one idle DecisionEvent).
    ``final`` is the first ACCEPTED / REJECTED decision (None before).
    """

    def __init__(self, aggregator: DecisionAggregator, sample_rate: int, threshold: float):
        self.agg = aggregator
        self.sr = int(sample_rate)
        self.threshold = float(threshold)
        self.speech = SpeechCounter(sample_rate)

    @property
    def final(self) -> DecisionEvent | None:
        return self.agg.final

    @property
    def speech_s(self) -> float:
        """Seconds of speech in the scored windows."""
        return self.speech.seconds

    def feed(
        self,
        start: int,
        n: int,
        ratio: float,
        result: tuple[dict[str, float], dict[str, float]] | None,
    ) -> list[Any]:
        if result is None:
            idle = self.agg.idle((start + n) / self.sr)
            return [] if idle is None else [idle]
        self.speech.add(start, n, ratio)
        ev = score_event(start, n, self.sr, ratio, result[0], result[1], self.threshold)
        return [ev, self.agg.push(ev)]


class Scorer:
    """Scores windows against the candidates of one mode (see ``core.gate``).

    ``score(waves (B, N))`` -> one (scores, spread) pair of {name: value} dicts per window:
    cosine mean / MC spread per profile, or head probabilities per admissible class.
    """

    def __init__(self, encoder: Encoder, candidates: Any, mc_passes: int = 0):
        self.encoder = encoder
        self.candidates = candidates
        self.mc_passes = int(mc_passes)

    @property
    def threshold(self) -> float:
        return float(self.candidates.threshold)

    def score(self, waves: np.ndarray) -> list[tuple[dict[str, float], dict[str, float]]]:
        c = self.candidates
        if len(waves) == 0:
            return []
        if c.head is not None:
            res = self.encoder.score(waves, c.head, mc_passes=self.mc_passes)
            labels = list(res.labels)
            if c.head == "authentication":
                col = labels.index("authorized") if "authorized" in labels else len(labels) - 1
                return _per_window(res.mean, res.std, [(col, "authorized")])
            return _per_window(res.mean, res.std, list(enumerate(labels)))
        if c.bank is None:
            return [({}, {}) for _ in range(len(waves))]
        mean, std = self.encoder.verify(waves, c.bank, mc_passes=self.mc_passes)
        return _per_window(mean, std, list(enumerate(c.names)))


def _per_window(
    mean: Any, std: Any, columns: list[tuple[int, str]]
) -> list[tuple[dict[str, float], dict[str, float]]]:
    """Per row i of (B, C) ``mean`` / ``std``: ({name: mean[i, j]}, {name: std[i, j]})."""
    return [
        (
            {name: float(mean[i, j]) for j, name in columns},
            {name: float(std[i, j]) for j, name in columns},
        )
        for i in range(len(mean))
    ]
