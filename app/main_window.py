"""The main window: input, enroll/authenticate/stop, profiles, live plots and the decision."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from voxgate.core.errors import VoxgateError
from voxgate.core.events import DecisionEvent, EnrollProgressEvent, StatusEvent

from .confidence_plot import ConfidencePlot
from .decision_banner import DecisionBanner
from .elided_label import ElidedLabel
from .enroll_dialog import EnrollDialog
from .input_panel import InputPanel
from .main_window_dialogs import WindowDialogs
from .main_window_switch import ModelSwitching
from .profile_list import ProfileList
from .scoring_panel import ScoringPanel
from .settings import Settings
from .spectrogram_view import SpectrogramView
from .worker import PipelineWorker, WorkerHandle

UNTRAINED_NOTE = "no trained model: results are meaningless; load one (Model → Load model…)"
PROFILE_MODES = ("authentication", "identification")
HEAD_MODES = ("authentication", "identification")  # trained heads the pipeline can score


def model_display_name(encoder: Any) -> str:
    """File name of the loaded checkpoint, or "untrained"."""
    path = encoder.meta.get("path") if hasattr(encoder, "meta") else None
    return Path(path).name if path else "untrained"


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


class MainWindow(ModelSwitching, WindowDialogs, QMainWindow):
    """A thin view over core/: all audio and model work runs in a :class:`PipelineWorker`.

    encoder: a ``SpeakerEncoder``; store: a ``ProfileStore``; settings: :class:`Settings`.
    file_realtime: play recordings at real-time pace (False in tests: as fast as possible).
    list_devices(rescan): ``core.input_devices.list_input_devices`` unless given.
    """

    job_finished = Signal()
    reembedded = Signal(list, list)  # profile names re-embedded after a model switch, failures
    stream_time = Signal(float)  # stream seconds of the latest event (for scripted screenshots)

    def __init__(
        self,
        encoder: Any,
        store: Any,
        settings: Settings,
        *,
        file_realtime: bool = True,
        list_devices: Callable[[bool], list[Any]] | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.encoder = encoder
        self.store = store
        self.settings = settings
        self.file_realtime = file_realtime
        self.job: WorkerHandle | None = None
        self.job_kind: str | None = None  # "authenticate" | "enroll"
        self.last_error: str | None = None
        self.enroll_dialog: EnrollDialog | None = None
        self.retrain_dialog: Any = None
        self.dataset_dialog: Any = None
        self.reembed_job: Any = None  # model_switch.ReembedJob while profiles are re-embedded
        # ask(title, question) -> bool: a Yes/No box (tests replace it)
        self.ask: Callable[[str, str], bool] = self._ask
        self.last_dataset = ""  # the latest dataset built from the menu (prefills Retrain)
        if list_devices is None:
            from voxgate.core.input_devices import list_input_devices as list_devices
        self.setWindowTitle("voxgate")
        self.resize(1200, 760)
        self._build(list_devices)
        self._build_menus()
        self._apply_encoder()
        self.input_panel.refresh(settings.get("input_device"))
        self._update_buttons()
        self.show_ready()

    # ------------------------------------------------------------------ layout
    def _build(self, list_devices: Callable[[bool], list[Any]]) -> None:
        self.input_panel = InputPanel(list_devices, self)
        self.input_panel.authenticate_file_requested.connect(self.choose_file_to_authenticate)
        self.input_panel.message.connect(lambda text: self.statusBar().showMessage(text))
        self.input_panel.devices_changed.connect(self._on_devices_changed)

        self.enroll_button = QPushButton("Enroll…", self)
        self.enroll_button.setObjectName("enrollButton")
        self.auth_button = QPushButton("Authenticate", self)
        self.auth_button.setObjectName("primaryButton")
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setObjectName("stopButton")
        self.enroll_button.clicked.connect(lambda: self.open_enroll_dialog())
        self.auth_button.clicked.connect(self.start_authentication)
        self.stop_button.clicked.connect(self.stop)
        self.enroll_progress = QProgressBar(self)
        self.enroll_progress.setRange(0, 100)
        self.enroll_progress.setFormat("enrolling %p %")
        self.enroll_feedback = ElidedLabel(parent=self)  # one line: never pushes the list down
        self.enroll_feedback.setObjectName("hint")
        controls = QGroupBox("Session", self)
        buttons = QHBoxLayout()
        for b in (self.enroll_button, self.auth_button, self.stop_button):
            buttons.addWidget(b)
        cl = QVBoxLayout(controls)
        cl.addLayout(buttons)
        cl.addWidget(self.enroll_progress)
        cl.addWidget(self.enroll_feedback)
        self.enroll_progress.hide()
        self.enroll_feedback.hide()

        self.scoring_panel = ScoringPanel(self)
        self.scoring_panel.set_scoring(self.settings.get("scoring"), self.settings.get("mc_passes"))
        self.scoring_panel.mode_changed.connect(self._on_mode_changed)
        self.scoring_panel.scoring_changed.connect(self._on_scoring_changed)
        self.scoring_panel.threshold_changed.connect(self._on_threshold_changed)

        self.profile_list = ProfileList(self.store, self.encoder, self)
        self.profile_list.reenroll_requested.connect(
            lambda name, authorized: self.open_enroll_dialog(name=name, authorized=authorized)
        )
        self.profile_list.error.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.profile_list.changed.connect(self.refresh_modes)  # authorizing changes the heads
        profiles = QGroupBox("Voice profiles", self)
        QVBoxLayout(profiles).addWidget(self.profile_list)

        sidebar = QWidget(self)
        sidebar.setObjectName("sidebar")
        sl = QVBoxLayout(sidebar)
        sl.setContentsMargins(12, 12, 12, 12)
        sl.setSpacing(12)
        for w in (self.input_panel, controls, self.scoring_panel):
            sl.addWidget(w)
        sl.addWidget(profiles, 1)
        scroll = QScrollArea(self)
        scroll.setWidget(sidebar)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(360)
        scroll.setMaximumWidth(440)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.banner = DecisionBanner(self)
        self.spectrogram = SpectrogramView(self.encoder.feature_config, parent=self)
        self.confidence = ConfidencePlot(parent=self)
        plots = QWidget(self)
        pl = QVBoxLayout(plots)
        pl.setContentsMargins(4, 12, 12, 12)
        pl.setSpacing(10)
        pl.addWidget(self.banner)
        pl.addWidget(self._titled(QLabel("Log-mel spectrogram", self), self.spectrogram), 3)
        self.confidence_title = QLabel(self)
        pl.addWidget(self._titled(self.confidence_title, self.confidence), 2)
        self._update_confidence_title()

        splitter = QSplitter(self)
        splitter.addWidget(scroll)
        splitter.addWidget(plots)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        self.setCentralWidget(splitter)

        self.model_label = QLabel(self)
        self.model_label.setObjectName("modelLabel")
        self.counters_label = QLabel("blocks 0 · overflows 0 · drops 0", self)
        self.counters_label.setObjectName("countersLabel")
        self.statusBar().addPermanentWidget(self.model_label)
        self.statusBar().addPermanentWidget(self.counters_label)

    def _update_confidence_title(self) -> None:
        """The ± band is MC dropout's: name it only when MC dropout is on."""
        passes = self.scoring_panel.mc_passes()
        self.confidence_title.setText(
            f"Confidence (mean ± MC-dropout std, {passes} passes)"
            if passes
            else "Confidence (score per window)"
        )

    def _titled(self, label: QLabel, widget: QWidget) -> QWidget:
        box = QWidget(self)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        label.setObjectName("plotTitle")
        layout.addWidget(label)
        layout.addWidget(widget, 1)
        return box

    def _build_menus(self) -> None:
        def action(menu: Any, text: str, slot: Callable, shortcut: Any = None) -> QAction:
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(shortcut)
            act.triggered.connect(lambda _checked=False: slot())
            menu.addAction(act)
            return act

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.action_auth_file = action(
            file_menu,
            "Authenticate a recording…",
            self.choose_file_to_authenticate,
            QKeySequence.Open,
        )
        self.action_enroll_files = action(
            file_menu, "Enroll from recordings…", lambda: self.open_enroll_dialog(browse=True)
        )
        file_menu.addSeparator()
        self.action_quit = action(file_menu, "Quit", self.close, QKeySequence.Quit)
        model_menu = bar.addMenu("&Model")
        self.action_load_model = action(model_menu, "Load model…", self.choose_model)
        self.action_build_dataset = action(model_menu, "Build dataset…", self.open_dataset_dialog)
        self.action_retrain = action(model_menu, "Retrain…", self.open_retrain_dialog)
        model_menu.addSeparator()
        self.action_settings = action(model_menu, "Settings…", self.open_settings_dialog)
        help_menu = bar.addMenu("&Help")
        self.action_about = action(help_menu, "About voxgate", self.show_about)
        self.action_data_location = action(
            help_menu, "Where is my data stored?", self.show_data_location
        )

    # ------------------------------------------------------------------ model
    def _apply_encoder(self) -> None:
        enc = self.encoder
        name = model_display_name(enc)
        if name == "untrained":
            self.model_label.setText(f"⚠ {UNTRAINED_NOTE}  ·  device {enc.device.type}")
            self.model_label.setProperty("warning", True)
        else:
            calib = "" if getattr(enc, "calibrated", True) else " (uncalibrated)"
            self.model_label.setText(f"model {name}{calib}  ·  device {enc.device.type}")
            self.model_label.setProperty("warning", False)
        self.model_label.style().unpolish(self.model_label)
        self.model_label.style().polish(self.model_label)
        self.refresh_modes()
        self._apply_threshold_range()
        self.profile_list.set_encoder(enc)

    def refresh_modes(self) -> None:
        """Offer the profile modes, and the trained-head modes (closed set, never the default)
        only where ``core.gate`` allows them; otherwise disabled, with the reason as tooltip."""
        from voxgate.core.gate import head_mode_problem

        modes = [(m, m.capitalize()) for m in PROFILE_MODES]
        disabled = {}
        for h in HEAD_MODES:
            key = f"head-{h}"
            modes.append((key, f"Trained head (closed set): {h}"))
            problem = head_mode_problem(self.encoder, self.store, key)
            if problem is not None:
                disabled[key] = problem
        self.scoring_panel.set_modes(modes, self.settings.get("mode"), disabled)

    def _apply_threshold_range(self) -> None:
        from voxgate.core.gate import default_threshold

        mode = self.scoring_panel.mode()
        default = default_threshold(self.encoder, mode)
        if mode.startswith("head-"):
            self.scoring_panel.set_threshold_range(0.0, 1.0, default, "probability")
            self.confidence.set_y_label("score (probability)")
        else:
            self.scoring_panel.set_threshold_range(-1.0, 1.0, default, "cosine")
            self.confidence.set_y_label("score (cosine)")
        self.confidence.set_threshold(self.scoring_panel.effective_threshold())

    def set_encoder(self, encoder: Any, path: str | None = None) -> None:
        """Switch to another model (stops a running session first); banner and plots reset."""
        self.stop_and_wait()
        self.encoder = encoder
        if path is not None:
            self.settings.set("model_path", str(path))
        self.spectrogram.feature_config = encoder.feature_config
        self._apply_encoder()
        self._reset_views()
        if self.retrain_dialog is not None:
            self.retrain_dialog.set_current_model(str(encoder.meta.get("path") or ""))
        self.statusBar().showMessage(f"loaded {model_display_name(encoder)}", 5000)

    def _reset_views(self) -> None:
        """Forget the previous session's pictures: banner, spectrogram, curve, meter."""
        self.spectrogram.reset()
        self.confidence.reset()
        self.spectrogram.redraw(force=True)
        self.confidence.redraw(force=True)
        self.input_panel.meter.reset()
        self._hide_enroll_feedback()
        self.show_ready()

    # ------------------------------------------------------------------ sessions
    def pipeline_config(self, **overrides: Any) -> Any:
        from voxgate.core.pipeline import PipelineConfig

        s = self.settings
        values = dict(
            hop_s=s.get("hop_s"),
            vad_aggressiveness=s.get("vad_aggressiveness"),
            decision_s=s.get("decision_s"),
            mc_passes=self.scoring_panel.mc_passes(),
            threshold=self.scoring_panel.threshold(),
            mode=self.scoring_panel.mode(),
        )
        values.update(overrides)
        return PipelineConfig(**values)

    @property
    def running(self) -> bool:
        return self.job is not None

    def _start(self, kind: str, make_source: Callable[[], Any], job: Callable) -> bool:
        from voxgate.core.pipeline import Pipeline

        if self.job is not None or self.reembed_job is not None:
            self.statusBar().showMessage("stop the current session first", 4000)
            return False
        try:
            pipeline = Pipeline(self.encoder, self.store, self.pipeline_config())
        except VoxgateError as exc:
            self.show_error("Cannot start", str(exc))
            return False
        worker = PipelineWorker(pipeline, make_source, job)
        worker.spectrogram.connect(self.spectrogram.push)
        worker.level.connect(self.input_panel.meter.set_level)
        worker.score.connect(self.confidence.add)
        worker.decision.connect(self._on_decision)
        worker.enroll_progress.connect(self._on_enroll_progress)
        worker.enrolled.connect(self._on_enrolled)
        worker.status.connect(self._on_status)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_worker_finished)
        self.job = WorkerHandle(worker)
        self.job_kind = kind
        self.last_error = None
        self.spectrogram.reset()
        self.confidence.reset()
        self.input_panel.meter.reset()
        self.job.start()
        self._update_buttons()
        return True

    def _hide_enroll_feedback(self) -> None:
        self.enroll_progress.hide()
        self.enroll_feedback.hide()

    def start_authentication(self) -> bool:
        """Authenticate the chosen input device live."""
        if not self.input_panel.available:
            self.statusBar().showMessage(
                (self.input_panel.error or "no input device")
                + " — authenticate a recording instead",
                8000,
            )
            return False
        device = self.input_panel.device_name() or None  # by name: indices change on rescan
        self.settings.set("input_device", self.input_panel.device_name())
        started = self._start("authenticate", functools.partial(_make_mic_source, device), _run_job)
        if started:
            self._hide_enroll_feedback()
            self.banner.set_listening()
            self.statusBar().showMessage(f"listening on {self.input_panel.device_name()}")
        return started

    def start_file_authentication(self, path: str | Path) -> bool:
        """Authenticate a recording through the same pipeline (paced per ``file_realtime``)."""
        make = functools.partial(_make_file_source, [str(path)], self.file_realtime)
        started = self._start("authenticate", make, _run_job)
        if started:
            self._hide_enroll_feedback()
            self.banner.set_listening(f"Authenticating {Path(path).name}")
            self.statusBar().showMessage(f"authenticating {path}")
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
        if files:
            make = functools.partial(_make_file_source, list(files), self.file_realtime)
        elif self.input_panel.available:
            make = functools.partial(_make_mic_source, self.input_panel.device_name() or None)
        else:
            self.statusBar().showMessage("no input device: enroll from recordings instead", 8000)
            return False
        started = self._start(
            "enroll", make, functools.partial(_enroll_job, name, authorized, keep_audio, replace)
        )
        if started:
            self.enroll_progress.setValue(0)
            self.enroll_progress.show()
            self.enroll_feedback.setText("speak naturally…" if not files else "reading recordings…")
            self.enroll_feedback.show()
            self.banner.set_idle(f"Enrolling {name}", "collecting speech")
        return started

    def stop(self) -> None:
        """Ask the running session to stop (non-blocking; buttons update when it has)."""
        if self.job is not None:
            self.job.stop()
            self.statusBar().showMessage("stopping…", 2000)

    def stop_and_wait(self, timeout_ms: int = 10000) -> bool:
        """Stop and join the worker thread (used on close and model switch)."""
        if self.job is None:
            return True
        handle = self.job
        ok = handle.join(timeout_ms)
        self._on_worker_finished()
        return ok

    def _on_worker_finished(self) -> None:
        handle, self.job = self.job, None
        if handle is None:
            return
        handle.thread.wait(5000)
        handle.worker.deleteLater()
        handle.thread.deleteLater()
        kind, self.job_kind = self.job_kind, None
        self.spectrogram.redraw()
        self.confidence.redraw()
        self.input_panel.meter.reset()  # no input now: the meter must not freeze at a level
        if kind == "enroll" and self.enroll_progress.value() < 100:
            self.enroll_feedback.setText(self.last_error or "enrollment stopped")
        if self.last_error is None:
            self.statusBar().showMessage("stopped", 4000)
        self._update_buttons()
        self.job_finished.emit()

    def _on_devices_changed(self) -> None:
        if hasattr(self, "stop_button"):  # the first listing happens before the buttons exist
            self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.job is not None or self.reembed_job is not None
        self.enroll_button.setEnabled(not busy)
        self.auth_button.setEnabled(not busy and self.input_panel.available)
        self.input_panel.file_button.setEnabled(not busy)
        self.action_auth_file.setEnabled(not busy)
        self.action_enroll_files.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.input_panel.set_busy(busy)

    # ------------------------------------------------------------------ live config
    def _update_pipeline(self, **changes: Any) -> None:
        if self.job is not None:
            self.job.worker.pipeline.update_config(**changes)

    def _on_mode_changed(self, mode: str) -> None:
        self.settings.set("mode", mode)
        self._apply_threshold_range()
        self._update_pipeline(mode=mode, threshold=None)

    def _on_scoring_changed(self, passes: int) -> None:
        self.settings.set("scoring", self.scoring_panel.scoring())
        if passes:
            self.settings.set("mc_passes", passes)
        self._update_confidence_title()
        self._update_pipeline(mc_passes=passes)

    def _on_threshold_changed(self, value: float | None) -> None:
        self.confidence.set_threshold(self.scoring_panel.effective_threshold())
        self._update_pipeline(threshold=value)

    # ------------------------------------------------------------------ events
    def _on_decision(self, event: DecisionEvent) -> None:
        self.banner.set_decision(event)
        self.stream_time.emit(float(event.t_s))

    def _on_enroll_progress(self, event: EnrollProgressEvent) -> None:
        self.enroll_progress.setValue(int(round(100 * min(1.0, max(0.0, event.fraction)))))
        text = f"{event.speech_s:.1f} of {event.target_s:.0f} s of speech"
        if event.feedback:
            text += " · " + " · ".join(event.feedback)
        self.enroll_feedback.setText(text)
        if event.done:
            self.enroll_progress.setValue(100)

    def _on_enrolled(self, profile: Any) -> None:
        self.profile_list.refresh()
        self.refresh_modes()
        self.enroll_feedback.setText(
            f"enrolled {profile.name}: {profile.speech_s:.1f} s of speech, {profile.n_windows} windows"
        )
        self.banner.set_idle(f"Enrolled {profile.name}", self._next_step(enrolled=True))
        self.statusBar().showMessage(f"enrolled {profile.name}", 6000)

    def _on_status(self, event: StatusEvent) -> None:
        self.counters_label.setText(
            f"blocks {event.blocks} · overflows {event.overflows} · drops {event.drops}"
        )
        if event.error and event.extra.get("locked"):
            self.last_error = event.error
            self.statusBar().showMessage(event.error)
            self.banner.set_idle("Locked", event.error)
        elif event.error:
            self._on_failed(event.error)
        elif event.message:
            self.statusBar().showMessage(event.message, 5000)
        self.stream_time.emit(float(event.t_s))

    def _next_step(self, *, enrolled: bool) -> str:
        """What to do next, true to what is enabled now (a microphone, profiles)."""
        how = (
            "press Authenticate"
            if self.input_panel.available
            else "authenticate a recording (File → Authenticate a recording…)"
        )
        if enrolled:
            return f"now {how}"
        return f"{how[0].upper()}{how[1:]}" if self.store.list() else f"Enroll a voice, then {how}"

    def show_ready(self) -> None:
        """The idle banner with the next step (when no session is running)."""
        if self.job is None:
            self.banner.set_idle("Ready", self._next_step(enrolled=False))

    def _on_failed(self, message: str) -> None:
        self.last_error = message
        self.statusBar().showMessage(message)
        self.banner.set_idle("Stopped", message)

    # ------------------------------------------------------------------ lifetime
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt naming)
        """Stop audio, join the worker threads and any child process, then close."""
        self.stop_and_wait()
        if self.reembed_job is not None:
            self.reembed_job.join()
            self._on_reembed_finished([], [])
        for dialog in (self.retrain_dialog, self.dataset_dialog):
            if dialog is not None:
                dialog.shutdown()
        self.settings.sync()
        super().closeEvent(event)
