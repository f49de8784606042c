"""The main window's session state machine: enroll / authenticate / stop, one
:class:`PipelineWorker` at a time, and its events drawn into the window's panels."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

from voxgate.core.errors import VoxgateError
from voxgate.core.events import LIFECYCLE_MESSAGES, DecisionEvent, StatusEvent

from .worker import PipelineWorker, WorkerHandle

if TYPE_CHECKING:
    from .main_window import MainWindow


def _make_mic_source(device: str | None) -> Any:
    from voxgate.core.microphone import MicrophoneSource

    return MicrophoneSource(device)


def _make_file_source(paths: list[str], realtime: bool) -> Any:
    """A FileSource over one file, or over several concatenated (runs on the worker thread)."""
    import numpy as np

    from voxgate.core.audio import load_audio
    from voxgate.core.sources import FileSource

    if len(paths) == 1:
        return FileSource(paths[0], realtime=realtime)
    wave = np.concatenate([load_audio(p) for p in paths])
    return FileSource(wave, realtime=realtime, name=f"{len(paths)} recordings")


def _enroll_job(
    name: str, authorized: bool, keep_audio: bool, replace: bool, pipeline: Any, source: Any
):
    return pipeline.enroll(
        source, name, authorized=authorized, keep_audio=keep_audio, replace=replace
    )


def _run_job(pipeline: Any, source: Any):
    return pipeline.run(source)


class SessionController(QObject):
    """Starts, stops and follows the window's one session (idle → running → idle).

    ``job``: the running session's :class:`WorkerHandle` (None when idle); ``job_kind``:
    "authenticate" or "enroll"; ``last_error``: why the latest session stopped, or None.
    The pipeline's settings come from ``window.pipeline_config()``; the window's
    ``job_finished`` and ``stream_time`` signals are emitted here. The worker's signals
    are connected to bound methods of this GUI-thread object, so they arrive queued.
    """

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.window = window
        self.job: WorkerHandle | None = None
        self.job_kind: str | None = None
        self.last_error: str | None = None
        self._lifecycle = ""  # the last session-life message shown (not a note)
        self.display_visible = True  # the live view can be seen (not minimized or hidden)

    def _start(self, kind: str, make_source: Callable[[], Any], job: Callable) -> bool:
        from voxgate.core.pipeline import Pipeline

        w = self.window
        if w.model_job is not None:
            w.statusBar().showMessage("wait until the model is loaded", 4000)
            return False
        if self.job is not None or w.reembed_job is not None:
            w.statusBar().showMessage("stop the current session first", 4000)
            return False
        try:
            pipeline = Pipeline(w.encoder, w.store, w.pipeline_config())
        except VoxgateError as exc:
            w.show_error("Cannot start", str(exc))
            return False
        pipeline.show_display(self.display_visible)
        worker = PipelineWorker(pipeline, make_source, job)
        self._connect(worker)
        self.job = WorkerHandle(worker)
        self.job_kind = kind
        self.last_error = None
        w.live_view.clear()
        w.input_panel.meter.reset()
        self.job.start()
        w.update_buttons()
        return True

    def _connect(self, worker: PipelineWorker) -> None:
        live = self.window.live_view
        worker.spectrogram.connect(live.spectrogram.push)
        worker.level.connect(self.window.input_panel.meter.set_level)
        worker.score.connect(live.confidence.add)
        worker.decision.connect(self._on_decision)
        worker.enroll_progress.connect(self.window.session_panel.show_progress)
        worker.enrolled.connect(self._on_enrolled)
        worker.status.connect(self._on_status)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_worker_finished)

    def start_authentication(self) -> bool:
        """Authenticate the chosen input device live."""
        w, panel = self.window, self.window.input_panel
        if not panel.available:
            w.statusBar().showMessage(
                (panel.error or "no input device") + " — authenticate a recording instead", 8000
            )
            return False
        device = panel.device_name() or None  # by name: indices change on rescan
        w.settings.set("input_device", panel.device_name())
        started = self._start("authenticate", functools.partial(_make_mic_source, device), _run_job)
        if started:
            w.session_panel.hide_enroll_feedback()
            w.live_view.banner.set_listening()
            self._show_lifecycle(f"listening on {panel.device_name()}", 0, force=True)
        return started

    def start_file_authentication(self, path: str | Path) -> bool:
        """Authenticate a recording through the same pipeline (paced per ``file_realtime``)."""
        w = self.window
        make = functools.partial(_make_file_source, [str(path)], w.file_realtime)
        started = self._start("authenticate", make, _run_job)
        if started:
            w.session_panel.hide_enroll_feedback()
            w.live_view.banner.set_listening(f"Authenticating {Path(path).name}")
            w.statusBar().showMessage(f"authenticating {path}")
        return started

    def start_enroll(
        self,
        name: str,
        authorized: bool = True,
        files: list[str] | None = None,
        *,
        keep_audio: bool = False,
        replace: bool = False,
    ) -> bool:
        """Enroll ``name`` from the microphone (files None) or from recordings.

        ``keep_audio``: also save the enrollment speech next to the profile (opt-in);
        ``replace``: the user confirmed replacing an existing profile of that name."""
        w = self.window
        if files:
            make = functools.partial(_make_file_source, list(files), w.file_realtime)
        elif w.input_panel.available:
            make = functools.partial(_make_mic_source, w.input_panel.device_name() or None)
        else:
            w.statusBar().showMessage("no input device: enroll from recordings instead", 8000)
            return False
        job = functools.partial(_enroll_job, name, authorized, keep_audio, replace)
        started = self._start("enroll", make, job)
        if started:
            w.session_panel.show_enrolling(
                "speak naturally…" if not files else "reading recordings…"
            )
            w.live_view.banner.set_idle(f"Enrolling {name}", "collecting speech")
        return started

    def stop(self) -> None:
        """Ask the running session to stop (non-blocking; buttons update when it has)."""
        if self.job is not None:
            self.job.stop()
            self.window.statusBar().showMessage("stopping…", 2000)

    def stop_and_wait(self, timeout_ms: int = 10000) -> bool:
        """Stop and join the worker thread (used on close and model switch)."""
        if self.job is None:
            return True
        ok = self.job.join(timeout_ms)
        self._on_worker_finished()
        return ok

    def set_display_visible(self, visible: bool) -> None:
        """A minimized or hidden window: the pipeline stops computing what nobody sees (level,
        spectrogram: ~0.02 CPU s per audio s), and resumes when it is shown again."""
        self.display_visible = bool(visible)
        if self.job is not None:
            self.job.worker.pipeline.show_display(self.display_visible)

    def update_pipeline(self, **changes: Any) -> None:
        """Pass settings changed in the window to the running session's pipeline, if any."""
        if self.job is not None:
            self.job.worker.pipeline.update_config(**changes)

    def _on_worker_finished(self) -> None:
        handle, self.job = self.job, None
        if handle is None:
            return
        handle.release()
        kind, self.job_kind = self.job_kind, None
        w = self.window
        w.live_view.redraw()
        w.input_panel.meter.reset()  # no input now: the meter must not freeze at a level
        if kind == "enroll" and not w.session_panel.enroll_done:
            w.session_panel.enroll_feedback.setText(self.last_error or "enrollment stopped")
        if self.last_error is None:
            self._show_lifecycle("stopped", 4000)
        w.update_buttons()
        w.job_finished.emit()

    # ------------------------------------------------------------------ events
    def _on_decision(self, event: DecisionEvent) -> None:
        self.window.live_view.banner.set_decision(event)
        self.window.stream_time.emit(float(event.t_s))

    def _on_enrolled(self, profile: Any) -> None:
        w = self.window
        w.profile_list.refresh()
        w.refresh_modes()
        w.session_panel.enroll_feedback.setText(
            f"enrolled {profile.name}: {profile.speech_s:.1f} s of speech, {profile.n_windows} windows"
        )
        w.live_view.banner.set_idle(f"Enrolled {profile.name}", self._next_step(enrolled=True))
        w.statusBar().showMessage(f"enrolled {profile.name}", 6000)

    def _on_status(self, event: StatusEvent) -> None:
        w = self.window
        if event.running or event.blocks:  # notes after the stream carry no counters
            w.counters_label.setText(
                f"blocks {event.blocks} · overflows {event.overflows} · drops {event.drops}"
            )
        if event.error and event.extra.get("locked"):
            self.last_error = event.error
            w.statusBar().showMessage(event.error)
            w.live_view.banner.set_idle("Locked", event.error)
        elif event.error:
            self._on_failed(event.error)
        elif event.message in LIFECYCLE_MESSAGES:
            self._show_lifecycle(event.message, 5000)
        elif event.message:  # a note: a skipped profile, a raised decision window, ...
            w.statusBar().showMessage(event.message, 5000)
        w.stream_time.emit(float(event.t_s))

    def _show_lifecycle(self, message: str, timeout_ms: int, force: bool = False) -> None:
        """Show a message that marks the session's life ("listening on …", "started",
        "stopped") unless a note is on the status bar: the note tells the user something."""
        bar = self.window.statusBar()
        current = bar.currentMessage()
        if force or not current or current in LIFECYCLE_MESSAGES or current == self._lifecycle:
            bar.showMessage(message, timeout_ms)
            self._lifecycle = message

    def _on_failed(self, message: str) -> None:
        self.last_error = message
        self.window.statusBar().showMessage(message)
        self.window.live_view.banner.set_idle("Stopped", message)

    def _next_step(self, *, enrolled: bool) -> str:
        """What to do next, true to what is enabled now (a microphone, profiles)."""
        how = (
            "press Authenticate"
            if self.window.input_panel.available
            else "authenticate a recording (File → Authenticate a recording…)"
        )
        if enrolled:
            return f"now {how}"
        has_profiles = bool(self.window.store.list())
        return f"{how[0].upper()}{how[1:]}" if has_profiles else f"Enroll a voice, then {how}"

    def show_ready(self) -> None:
        """The idle banner with the next step (when no session is running)."""
        if self.job is None:
            self.window.live_view.banner.set_idle("Ready", self._next_step(enrolled=False))
