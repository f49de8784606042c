"""The real-time engine: source blocks -> VAD -> 1-s windows -> scores -> decisions, as events.

``Pipeline.run(source)`` and ``Pipeline.enroll(source, name)`` are generators that run on the
consumer's thread: the CLI iterates them, the GUI wraps them in a worker thread. ``stop()``
and ``update_config()`` may be called from any thread. Windows, scores and decisions come
from ``core.scoring``; who may be accepted from ``core.gate``; attempts from ``core.lockout``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .enroll import Enroller
from .errors import LockedOutError, ProfileError, TooShortError, VoxgateError
from .events import DecisionState, EnrolledEvent, StatusEvent
from .frontend import Frontend
from .gate import select_candidates
from .live_config import ENROLL_HOP_S, MODES, Attempt, PipelineConfig
from .lockout import Lockout, lockout_key
from .profiles import Profile, ProfileStore
from .scoring import Decider, Scorer, is_scored, make_aggregator, speech_mask, windows
from .sources import source_status

if TYPE_CHECKING:  # the Protocol only; no import cycle at run time
    from .scoring import Encoder

__all__ = ["PipelineConfig", "Pipeline", "MODES", "Attempt"]

Event = Any  # one of the core.events dataclasses


class Pipeline:
    """Streams a source through VAD, windowing, the speaker model and the decision logic.

    encoder: a SpeakerEncoder (core.inference); store: where the profiles live.
    ``display_hop_s``: the level meter and spectrogram update interval; None computes no
    display (the command line, calibration: nobody looks at it).
    ``latencies_s``: per scored window, seconds from the block holding its last sample
    being read from the source to its ScoreEvent (for the benchmark).
    """

    def __init__(
        self,
        encoder: Encoder,
        store: ProfileStore | None,
        config: PipelineConfig | None = None,
        *,
        display_hop_s: float | None = 0.1,
        status_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.encoder = encoder
        self.store = store
        self._config = config or PipelineConfig()
        self.display_hop_s = None if display_hop_s is None else float(display_hop_s)
        self.status_interval_s = float(status_interval_s)
        self._clock = clock
        self._wall_clock = wall_clock  # persisted lockout times
        self.attempt = Attempt()
        self._lock = threading.Lock()
        self._pending: PipelineConfig | None = None
        self._reload = threading.Event()
        self._stop = threading.Event()
        self._display_off = False  # nobody is looking (a minimized window): no display events
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

    def show_display(self, on: bool) -> None:
        """Compute the level and spectrogram events or not (any thread, from the next block);
        scoring and decisions do not depend on it."""
        self._display_off = not on

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
    def _drive(
        self,
        source: Any,
        cfg: PipelineConfig,
        on_windows: Callable[[list[tuple[int, np.ndarray, float]], float], list[Event]],
        is_done: Callable[[], bool],
        hop_s: float,
    ) -> Iterator[Event]:
        """Shared loop: start the source, push blocks (windows every ``hop_s``), emit
        display/status events and what ``on_windows`` returns; ends (source stopped) when
        finished, stopped, done or failed. Returns "finished" | "stopped" | "done" | "error"
        as the generator's value."""
        self._stop.clear()
        fe = Frontend(
            self.encoder.feature_config, hop_s, cfg.vad_aggressiveness, self.display_hop_s
        )
        warm_up = getattr(self.encoder, "warm_up", None)
        if warm_up is not None:  # trace the model now, not on the first live window
            warm_up(mc_passes=cfg.mc_passes)
        try:
            source.start()
        except VoxgateError as exc:
            yield source_status(source, fe.t_s, False, error=str(exc))
            return "error"
        reason = "finished"
        try:
            yield source_status(source, fe.t_s, True, message="started")
            next_status = self.status_interval_s
            while True:
                if self._stop.is_set():
                    reason = "stopped"
                    break
                try:
                    block = source.read(0.1)
                except VoxgateError as exc:
                    yield source_status(source, fe.t_s, False, error=str(exc))
                    return "error"
                if block is None:
                    if source.finished:
                        break
                    continue
                t_in = self._clock()
                windows = fe.push(np.asarray(block, dtype=np.float32).reshape(-1))
                if not self._display_off:
                    yield from fe.display()
                if windows:
                    yield from on_windows(windows, t_in)
                    if is_done():
                        reason = "done"
                        break
                if fe.t_s >= next_status:
                    next_status = fe.t_s + self.status_interval_s
                    scored = {"windows_scored": float(self.windows_scored)}
                    yield source_status(source, fe.t_s, True, extra=scored)
        finally:
            source.stop()
        yield source_status(source, fe.t_s, False, message=reason)
        return reason

    def _check_lockout(self, cfg: PipelineConfig) -> None:
        if cfg.lockout and self.store is not None:
            Lockout(self.store, self._wall_clock).check(lockout_key(cfg.user, cfg.mode))

    def _setup(self, cfg: PipelineConfig) -> tuple[Scorer, Decider]:
        cand = select_candidates(self.encoder, self.store, cfg.mode, user=cfg.user,
                                 threshold=cfg.threshold, decision_s=cfg.decision_s)  # fmt: skip
        return Scorer(self.encoder, cand, cfg.mc_passes), self._decider(cfg, cand, cfg.mode)

    def _decider(
        self, cfg: PipelineConfig, cand: Any, mode: str, only: str | None = None
    ) -> Decider:
        agg = make_aggregator(
            self.encoder,
            cand.threshold,
            decision_s=cand.decision_s,
            hop_s=cfg.hop_s,
            uncertain_std=cfg.uncertain_std,
            mode=mode,
            admissible=cand.admissible if only is None else [only],
        )
        return Decider(agg, self.encoder.feature_config.sample_rate, cand.threshold)

    def run(self, source: Any) -> Iterator[Event]:
        """Authenticate / identify live: one attempt. Yields Status, Level, Spectrogram, Score
        and Decision events; ends at the first final decision (``stop_on_decision``), when
        the source is finished, ``stop()`` is called, or the source fails (a StatusEvent with
        ``error``). A locked key gives a StatusEvent error with extra["locked"] = 1 and
        extra["wait_s"]. ``self.attempt`` holds the outcome afterwards."""
        self._take_pending()
        cfg = self._config
        self.latencies_s = []
        self.windows_scored = 0
        self.attempt = Attempt()
        device = str(getattr(source, "name", "source"))
        try:
            self._check_lockout(cfg)
            scorer, decider = self._setup(cfg)
        except LockedOutError as exc:
            extra = {"locked": 1.0, "wait_s": exc.wait_s, "disabled": float(exc.disabled)}
            yield StatusEvent(0.0, False, device, error=str(exc), extra=extra)
            return
        except VoxgateError as exc:
            yield StatusEvent(0.0, False, device, error=str(exc))
            return
        for msg in scorer.candidates.messages:
            yield StatusEvent(0.0, False, device, message=msg)
        state = {"cfg": cfg, "scorer": scorer, "decider": decider}
        sr = self.encoder.feature_config.sample_rate

        def on_windows(windows: list[tuple[int, np.ndarray, float]], t_in: float) -> list[Event]:
            events: list[Event] = self._apply_changes(state, cfg, windows[0][0] / sr, device)
            c, sc, dec = state["cfg"], state["scorer"], state["decider"]
            speech = [is_scored(win, ratio, c.min_speech_ratio, sr) for _, win, ratio in windows]
            picked = [w for w, ok in zip(windows, speech) if ok]
            results = iter(sc.score(np.stack([w for _, w, _ in picked])) if picked else [])
            for (start, win, ratio), ok in zip(windows, speech):
                out = dec.feed(start, len(win), ratio, next(results) if ok else None)
                if ok:
                    self.latencies_s.append(self._clock() - t_in)
                    self.windows_scored += 1
                events += out
                if c.stop_on_decision and dec.final is not None:
                    break
            return events

        def is_done() -> bool:
            return state["cfg"].stop_on_decision and state["decider"].final is not None

        reason = yield from self._drive(source, cfg, on_windows, is_done, cfg.hop_s)
        notes = list(self._finish_attempt(state, device))
        if reason != "error":  # the source's error stays the last event
            yield from notes

    def replay(self, wave: np.ndarray) -> dict[str, Any]:
        """The verdict every compatible profile would get as ``--user`` for this recording
        (float32 (N,) at the model's rate): the windows, scoring rule, aggregator and
        threshold of :meth:`run` on ``FileSource(wave)``, with the embeddings computed once.
        Returns {name: first final DecisionEvent, else the last one, else None}. Calibration
        and the benchmarks use it; no attempt is counted."""
        cfg = self.config
        cand = select_candidates(self.encoder, self.store, "identification",
                                 threshold=cfg.threshold, decision_s=cfg.decision_s)  # fmt: skip
        win = windows(wave, self.encoder.feature_config, cfg.hop_s, cfg.vad_aggressiveness)
        mask = speech_mask(win, cfg.min_speech_ratio)
        scored = Scorer(self.encoder, cand, cfg.mc_passes).score(win.waves[mask])
        results: list[Any] = [None] * len(win)
        for i, r in zip(np.flatnonzero(mask), scored):
            results[i] = r
        out: dict[str, Any] = {}
        for name in cand.names:
            dec = self._decider(cfg, cand, "authentication", only=name)
            for i, r in enumerate(results):
                one = None if r is None else ({name: r[0][name]}, {name: r[1][name]})
                dec.feed(int(win.starts[i]), win.window_samples, float(win.speech_ratio[i]), one)
                if dec.final is not None:
                    break
            out[name] = dec.final or dec.agg.last
        return out

    def _apply_changes(
        self, state: dict[str, Any], cfg: PipelineConfig, t_now: float, device: str
    ) -> list[Event]:
        """Settings or profiles changed mid-run: rebuild scorer and decider (a new attempt
        counter is not started: the lockout key stays the run's)."""
        new_cfg = self._take_pending()
        if new_cfg is None and not self._reload.is_set():
            return []
        self._reload.clear()
        # hop_s / vad_aggressiveness need a new frontend: they apply from the next run.
        c = dataclasses.replace(
            new_cfg or state["cfg"],
            hop_s=cfg.hop_s,
            vad_aggressiveness=cfg.vad_aggressiveness,
            user=cfg.user,
            lockout=cfg.lockout,
        )
        try:
            sc, dec = self._setup(c)
        except VoxgateError as exc:
            return [StatusEvent(t_now, True, device, error=str(exc))]
        state.update(cfg=c, scorer=sc, decider=dec)
        return [StatusEvent(t_now, True, device, message=m) for m in sc.candidates.messages]

    def _finish_attempt(self, state: dict[str, Any], device: str) -> Iterator[Event]:
        """Record the attempt: accepted resets its key, a scored attempt that was not accepted
        counts as a failure (stopping early does not escape the count)."""
        dec, cfg = state["decider"], state["cfg"]
        verdict = dec.final or dec.agg.last
        self.attempt = Attempt(verdict, dec.speech_s, self.windows_scored)
        accepted = verdict is not None and verdict.state == DecisionState.ACCEPTED
        if not (cfg.lockout and self.store is not None and (accepted or self.windows_scored)):
            return
        try:
            key = lockout_key(cfg.user, cfg.mode)
            st = Lockout(self.store, self._wall_clock).record(key, accepted)
        except (VoxgateError, OSError) as exc:
            yield StatusEvent(0.0, False, device, error=f"cannot record the attempt: {exc}")
            return
        self.attempt.lockout = st
        if not accepted:
            extra = {"failures": float(st.failures), "attempts_left": float(st.left)}
            yield StatusEvent(0.0, False, device, message=st.describe(), extra=extra)

    def enroll(
        self,
        source: Any,
        name: str,
        *,
        authorized: bool = True,
        target_s: float | None = None,
        keep_audio: bool = False,
        save: bool = True,
        replace: bool = False,
    ) -> Iterator[Event]:
        """Enroll ``name`` from a live source. Yields EnrollProgressEvent per window (with
        feedback), Level/Spectrogram/Status events, and finally EnrollProgressEvent(done=True)
        and EnrolledEvent(profile, path). When the source ends early the profile is built from
        what was collected (at least ``MIN_ENROLL_SPEECH_S`` of voiced speech, else a
        StatusEvent error naming what was wrong); ``stop()``
        cancels without a profile. keep_audio: also save the enrollment speech as a WAV;
        replace: overwrite an existing profile of that name (else a StatusEvent error)."""
        self._take_pending()
        cfg = self._config
        device = str(getattr(source, "name", "source"))
        try:
            Profile(name=name, embedding=np.ones(1, np.float32))  # validates the name early
            if save and self.store is not None and not replace and self.store.exists(name):
                raise ProfileError(f"a profile named {name!r} exists; replace it explicitly")
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

        reason = yield from self._drive(
            source, cfg, on_windows, lambda: enroller.complete, ENROLL_HOP_S
        )
        if reason == "error":
            return
        if reason == "stopped" and not enroller.complete:
            yield StatusEvent(0.0, False, device, message="enrollment cancelled")
            return
        yield from self._finish_enroll(enroller, device, save, replace)

    def _finish_enroll(
        self, enroller: Enroller, device: str, save: bool, replace: bool
    ) -> Iterator[Event]:
        """The profile from what ``enroller`` kept, saved when ``save``: the final progress
        and EnrolledEvent, or a StatusEvent error (too little speech, the store refused)."""
        try:
            profile = enroller.finish()
        except TooShortError as exc:
            yield StatusEvent(0.0, False, device, error=str(exc))
            return
        path = None
        if save and self.store is not None:
            try:
                saved = self.store.save(profile, audio=enroller.speech_audio(), replace=replace)
            except VoxgateError as exc:
                yield StatusEvent(0.0, False, device, error=str(exc))
                return
            path = str(saved)
        yield enroller.progress(done=True)
        yield EnrolledEvent(profile=profile, path=path)
