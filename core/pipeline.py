"""The real-time engine: source blocks -> VAD -> 1-s windows -> scores -> decisions, as events.

``Pipeline.run(source)`` and ``Pipeline.enroll(source, name)`` are generators that run on the
consumer's thread: the CLI iterates them, the GUI wraps them in a worker thread. ``stop()``
and ``update_config()`` may be called from any thread.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .decision import DecisionAggregator, windows_for_decision
from .enroll import Enroller
from .errors import ConfigError, ProfileError, TooShortError, VoxgateError
from .events import (
    EnrolledEvent,
    ScoreEvent,
    StatusEvent,
)
from .frontend import Frontend
from .profiles import Profile, ProfileStore

__all__ = [
    "PipelineConfig",
    "Pipeline",
    "MODES",
    "DEFAULT_COSINE_THRESHOLD",
    "DEFAULT_HEAD_THRESHOLD",
]

MODES = ("authentication", "identification", "head-authentication", "head-identification")
# Used only when neither the config nor the checkpoint gives a threshold (an untrained model).
DEFAULT_COSINE_THRESHOLD = 0.5
DEFAULT_HEAD_THRESHOLD = 0.5

Event = Any  # one of the core.events dataclasses


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Live settings.

    hop_s: seconds between 1-s analysis windows; min_speech_ratio: fraction of VAD speech
    frames a window needs to be scored; decision_s: seconds of speech one decision spans
    (K windows); mc_passes: 0 = deterministic, N = MC-dropout passes (batched);
    uncertain_std: MC spread above which the decision is UNCERTAIN; threshold: None = the
    model's calibrated threshold; mode: "authentication" (authorized profiles, or only
    ``user``), "identification" (all profiles), "head-authentication" / "head-identification"
    (the model's trained heads); enroll_target_s: seconds of speech an enrollment collects.
    """

    hop_s: float = 0.5
    min_speech_ratio: float = 0.5
    vad_aggressiveness: int = 2
    decision_s: float = 3.0
    mc_passes: int = 0
    uncertain_std: float = 0.08
    threshold: float | None = None
    mode: str = "authentication"
    user: str | None = None
    enroll_target_s: float = 20.0

    def __post_init__(self) -> None:
        if not self.hop_s > 0:
            raise ConfigError(f"hop_s must be > 0, got {self.hop_s}")
        if not 0.0 <= self.min_speech_ratio <= 1.0:
            raise ConfigError(f"min_speech_ratio must be in [0, 1], got {self.min_speech_ratio}")
        if self.vad_aggressiveness not in (0, 1, 2, 3):
            raise ConfigError(f"vad_aggressiveness must be 0..3, got {self.vad_aggressiveness}")
        if not self.decision_s > 0:
            raise ConfigError(f"decision_s must be > 0, got {self.decision_s}")
        if self.mc_passes < 0 or self.mc_passes == 1:
            raise ConfigError(f"mc_passes must be 0 (off) or >= 2, got {self.mc_passes}")
        if self.uncertain_std < 0:
            raise ConfigError(f"uncertain_std must be >= 0, got {self.uncertain_std}")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ConfigError(f"threshold must be finite, got {self.threshold}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not self.enroll_target_s > 0:
            raise ConfigError(f"enroll_target_s must be > 0, got {self.enroll_target_s}")


class _Scorer:
    """Scores a batch of windows against the candidates of one mode.

    ``score(waves (B, N)) -> list of (scores, spread)`` dicts, one per window.
    """

    def __init__(self, encoder: Any, store: ProfileStore | None, cfg: PipelineConfig):
        self.encoder = encoder
        self.cfg = cfg
        self.messages: list[str] = []
        self.names: list[str] = []
        self.bank: np.ndarray | None = None
        self.head: str | None = None
        if cfg.mode.startswith("head-"):
            self.head = cfg.mode[len("head-") :]
            if self.head not in getattr(encoder, "heads", {}):
                raise ConfigError(
                    f"mode {cfg.mode!r} needs a model with a trained {self.head!r} head; "
                    f"this model has {sorted(getattr(encoder, 'heads', {})) or 'none'}"
                )
            self.threshold = _head_threshold(encoder, self.head, cfg.threshold)
            return
        self.threshold = _cosine_threshold(encoder, cfg.threshold)
        self._load_profiles(store)

    def _load_profiles(self, store: ProfileStore | None) -> None:
        profiles: list[Profile] = store.list() if store is not None else []
        if store is not None:
            self.messages += [f"skipped unreadable profile: {p}" for p in store.problems]
        compatible = []
        for p in profiles:
            if ProfileStore.is_compatible(p, self.encoder):
                compatible.append(p)
            else:
                self.messages.append(
                    f"profile {p.name!r} was made with another model; re-enroll it to use it"
                )
        if self.cfg.mode == "authentication":
            if self.cfg.user is not None:
                chosen = [p for p in compatible if p.name == self.cfg.user]
                if not chosen:
                    if store is not None and store.exists(self.cfg.user):
                        raise ProfileError(
                            f"profile {self.cfg.user!r} was made with another model; re-enroll it"
                        )
                    raise ProfileError(f"no voice profile named {self.cfg.user!r}")
            else:
                chosen = [p for p in compatible if p.authorized]
                if not chosen:
                    self.messages.append("no authorized voice profile: every voice is rejected")
        else:
            chosen = compatible
            if not chosen:
                self.messages.append("no voice profile enrolled: every voice is unknown")
        self.names = [p.name for p in chosen]
        self.bank = np.stack([p.embedding for p in chosen]) if chosen else None

    def score(self, waves: np.ndarray) -> list[tuple[dict[str, float], dict[str, float]]]:
        passes = self.cfg.mc_passes
        if self.head is not None:
            res = self.encoder.score(waves, self.head, mc_passes=passes)
            labels = list(res.labels)
            if self.head == "authentication":
                col = labels.index("authorized") if "authorized" in labels else len(labels) - 1
                return _per_window(res.mean, res.std, [(col, "authorized")])
            return _per_window(res.mean, res.std, list(enumerate(labels)))
        if self.bank is None:
            return [({}, {}) for _ in range(len(waves))]
        mean, std = self.encoder.verify(waves, self.bank, mc_passes=passes)
        return _per_window(mean, std, list(enumerate(self.names)))


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


def _valid(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _cosine_threshold(encoder: Any, override: float | None) -> float:
    """config.threshold, else the checkpoint's calibrated cosine threshold, else 0.5."""
    if override is not None:
        return float(override)
    thr = getattr(encoder, "threshold", None)
    return float(thr) if _valid(thr) else DEFAULT_COSINE_THRESHOLD


def _head_threshold(encoder: Any, head: str, override: float | None) -> float:
    """config.threshold, else calibration["head_thresholds"][head] when calibrated, else 0.5."""
    if override is not None:
        return float(override)
    table = (getattr(encoder, "calibration", None) or {}).get("head_thresholds") or {}
    thr = table.get(head) if isinstance(table, dict) else None
    return float(thr) if _valid(thr) else DEFAULT_HEAD_THRESHOLD


def default_threshold(encoder: Any, mode: str) -> float:
    """The threshold a pipeline in ``mode`` uses when config.threshold is None."""
    if mode.startswith("head-"):
        return _head_threshold(encoder, mode[len("head-") :], None)
    return _cosine_threshold(encoder, None)


class Pipeline:
    """Streams a source through VAD, windowing, the speaker model and the decision logic.

    encoder: a SpeakerEncoder (core.inference); store: where the profiles live.
    ``latencies_s``: per scored window, seconds from the block holding its last sample
    being read from the source to its ScoreEvent (for the benchmark).
    """

    def __init__(
        self,
        encoder: Any,
        store: ProfileStore | None,
        config: PipelineConfig | None = None,
        *,
        display_hop_s: float = 0.1,
        status_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.encoder = encoder
        self.store = store
        self._config = config or PipelineConfig()
        self.display_hop_s = float(display_hop_s)
        self.status_interval_s = float(status_interval_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: PipelineConfig | None = None
        self._reload = threading.Event()
        self._stop = threading.Event()
        self.latencies_s: list[float] = []
        self.windows_scored = 0

    # -- thread-safe control --------------------------------------------------------------
    @property
    def config(self) -> PipelineConfig:
        with self._lock:
            return self._pending or self._config

    def stop(self) -> None:
        """Ask the running generator to end after the current block (any thread)."""
        self._stop.set()

    def update_config(self, **changes: Any) -> PipelineConfig:
        """Change settings (any thread); validated now, applied before the next window.

        hop_s and vad_aggressiveness apply from the next run(); the rest immediately.
        """
        with self._lock:
            new = dataclasses.replace(self._pending or self._config, **changes)
            self._pending = new
            return new

    def reload_profiles(self) -> None:
        """Re-read the profile store before the next window (e.g. after an enrollment)."""
        self._reload.set()

    def _take_pending(self) -> PipelineConfig | None:
        with self._lock:
            new, self._pending = self._pending, None
            if new is not None:
                self._config = new
            return new

    # -- streaming ------------------------------------------------------------------------
    def _status(self, fe: Frontend | None, source: Any, running: bool, **kw: Any) -> StatusEvent:
        try:
            stats = source.stats()
        except Exception:  # a broken source must not hide the real error being reported
            stats = {}
        return StatusEvent(
            t_s=fe.t_s if fe is not None else 0.0,
            running=running,
            device=str(getattr(source, "name", "source")),
            blocks=int(stats.get("blocks", 0)),
            overflows=int(stats.get("overflows", 0)),
            drops=int(stats.get("drops", 0)),
            **kw,
        )

    def _drive(
        self,
        source: Any,
        cfg: PipelineConfig,
        on_windows: Callable[[list[tuple[int, np.ndarray, float]], float], list[Event]],
        is_done: Callable[[], bool],
    ) -> Iterator[Event]:
        """Shared loop: start the source, push blocks, emit display/status events and what
        ``on_windows`` returns; ends (source stopped) when finished, stopped, done or failed.
        Returns "finished" | "stopped" | "done" | "error" as the generator's value."""
        self._stop.clear()
        fe = Frontend(
            self.encoder.feature_config, cfg.hop_s, cfg.vad_aggressiveness, self.display_hop_s
        )
        try:
            source.start()
        except VoxgateError as exc:
            yield self._status(fe, source, False, error=str(exc))
            return "error"
        reason = "finished"
        try:
            yield self._status(fe, source, True, message="started")
            next_status = self.status_interval_s
            while True:
                if self._stop.is_set():
                    reason = "stopped"
                    break
                try:
                    block = source.read(0.1)
                except VoxgateError as exc:
                    yield self._status(fe, source, False, error=str(exc))
                    return "error"
                if block is None:
                    if source.finished:
                        break
                    continue
                t_in = self._clock()
                windows = fe.push(np.asarray(block, dtype=np.float32).reshape(-1))
                yield from fe.display()
                if windows:
                    yield from on_windows(windows, t_in)
                    if is_done():
                        reason = "done"
                        break
                if fe.t_s >= next_status:
                    next_status = fe.t_s + self.status_interval_s
                    yield self._status(
                        fe, source, True, extra={"windows_scored": float(self.windows_scored)}
                    )
        finally:
            source.stop()
        yield self._status(fe, source, False, message=reason)
        return reason

    def run(self, source: Any) -> Iterator[Event]:
        """Authenticate / identify live. Yields Status, Level, Spectrogram, Score and Decision
        events; ends when the source is finished, ``stop()`` is called, or the source fails
        (a StatusEvent with ``error`` set, then the generator returns)."""
        self._take_pending()
        cfg = self._config
        self.latencies_s = []
        self.windows_scored = 0
        device = str(getattr(source, "name", "source"))
        try:
            scorer = _Scorer(self.encoder, self.store, cfg)
        except VoxgateError as exc:
            yield StatusEvent(0.0, False, device, error=str(exc))
            return
        for msg in scorer.messages:
            yield StatusEvent(0.0, False, device, message=msg)
        state: dict[str, Any] = {}

        def make_aggregator(c: PipelineConfig, threshold: float) -> DecisionAggregator:
            window_s = self.encoder.feature_config.chunk_s
            k = windows_for_decision(c.decision_s, window_s, c.hop_s)
            return DecisionAggregator(
                k,
                threshold,
                uncertain_std=c.uncertain_std,
                mode=c.mode,
                max_gap_s=max(2.0, c.decision_s / 2),
            )

        state["cfg"], state["scorer"] = cfg, scorer
        state["agg"] = make_aggregator(cfg, scorer.threshold)

        def on_windows(windows: list[tuple[int, np.ndarray, float]], t_in: float) -> list[Event]:
            events: list[Event] = []
            new_cfg = self._take_pending()
            if new_cfg is not None or self._reload.is_set():
                self._reload.clear()
                t_now = windows[0][0] / fe_sr
                c = new_cfg or state["cfg"]
                # hop_s / vad_aggressiveness need a new frontend: they apply from the next run.
                c = dataclasses.replace(
                    c, hop_s=cfg.hop_s, vad_aggressiveness=cfg.vad_aggressiveness
                )
                try:
                    sc = _Scorer(self.encoder, self.store, c)
                except VoxgateError as exc:
                    events.append(StatusEvent(t_now, True, device, error=str(exc)))
                else:
                    state["cfg"], state["scorer"] = c, sc
                    state["agg"] = make_aggregator(c, sc.threshold)
                    events += [StatusEvent(t_now, True, device, message=m) for m in sc.messages]
            c, sc, agg = state["cfg"], state["scorer"], state["agg"]
            speech = []
            for start, win, ratio in windows:
                if ratio >= c.min_speech_ratio:
                    speech.append((start, win, ratio))
                else:
                    idle = agg.idle((start + len(win)) / fe_sr)
                    if idle is not None:
                        events.append(idle)
            if not speech:
                return events
            results = sc.score(np.stack([w for _, w, _ in speech]))
            for (start, win, ratio), (scores, spread) in zip(speech, results):
                best = max(sorted(scores), key=scores.__getitem__) if scores else None
                ev = ScoreEvent(
                    t_start_s=start / fe_sr,
                    t_end_s=(start + len(win)) / fe_sr,
                    speech_ratio=ratio,
                    scores=scores,
                    spread=spread,
                    best=best,
                    best_score=scores[best] if best is not None else math.nan,
                    best_spread=spread.get(best, 0.0) if best is not None else 0.0,
                    threshold=sc.threshold,
                )
                self.latencies_s.append(self._clock() - t_in)
                self.windows_scored += 1
                events.append(ev)
                events.append(agg.push(ev))
            return events

        fe_sr = self.encoder.feature_config.sample_rate
        yield from self._drive(source, cfg, on_windows, lambda: False)

    def enroll(
        self,
        source: Any,
        name: str,
        *,
        authorized: bool = True,
        target_s: float | None = None,
        keep_audio: bool = False,
        save: bool = True,
    ) -> Iterator[Event]:
        """Enroll ``name`` from a live source. Yields EnrollProgressEvent per window (with
        feedback), Level/Spectrogram/Status events, and finally EnrollProgressEvent(done=True)
        and EnrolledEvent(profile, path). When the source ends early the profile is built from
        what was collected (at least 3 s of speech, else a StatusEvent error); ``stop()``
        cancels without a profile. keep_audio: also save the enrollment speech as a WAV."""
        self._take_pending()
        cfg = self._config
        device = str(getattr(source, "name", "source"))
        try:
            Profile(name=name, embedding=np.ones(1, np.float32))  # validates the name early
            enroller = Enroller(
                self.encoder,
                name,
                target_s=target_s if target_s is not None else cfg.enroll_target_s,
                authorized=authorized,
                keep_audio=keep_audio,
                min_speech_ratio=cfg.min_speech_ratio,
            )
        except VoxgateError as exc:
            yield StatusEvent(0.0, False, device, error=str(exc))
            return

        def on_windows(windows: list[tuple[int, np.ndarray, float]], t_in: float) -> list[Event]:
            out: list[Event] = []
            for start, win, ratio in windows:
                out.append(enroller.add_window(start, win, ratio))
                if enroller.complete:
                    break
            return out

        reason = yield from self._drive(source, cfg, on_windows, lambda: enroller.complete)
        if reason == "error":
            return
        if reason == "stopped" and not enroller.complete:
            yield StatusEvent(0.0, False, device, message="enrollment cancelled")
            return
        try:
            profile = enroller.finish()
        except TooShortError as exc:
            yield StatusEvent(0.0, False, device, error=str(exc))
            return
        path = None
        if save and self.store is not None:
            path = str(self.store.save(profile, audio=enroller.speech_audio()))
        yield enroller.progress(done=True)
        yield EnrolledEvent(profile=profile, path=path)
