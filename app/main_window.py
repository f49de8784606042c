"""The main window: the sidebar (input, session, scoring, profiles) beside the live view, the
menus, the model shown in the status bar; sessions are run by its SessionController."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QGroupBox,
    QLabel,
    QMainWindow,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from .enroll_dialog import EnrollDialog
from .input_panel import InputPanel
from .live_view import LiveView
from .main_menus import MainMenus
from .main_window_dialogs import WindowDialogs
from .main_window_switch import ModelSwitching
from .profile_list import ProfileList
from .scoring_panel import ScoringPanel
from .session_controller import SessionController
from .session_panel import SessionPanel
from .settings import Settings
from .worker import WorkerHandle

UNTRAINED_NOTE = "no trained model: results are meaningless; load one (Model → Load model…)"
PROFILE_MODES = ("authentication", "identification")
HEAD_MODES = ("authentication", "identification")  # trained heads the pipeline can score


def model_display_name(encoder: Any) -> str:
    """File name of the loaded checkpoint, or "untrained"."""
    path = encoder.meta.get("path") if hasattr(encoder, "meta") else None
    return Path(path).name if path else "untrained"


class MainWindow(ModelSwitching, WindowDialogs, QMainWindow):
    """A thin view over core/: all audio and model work runs on worker threads.

    encoder: a ``SpeakerEncoder``; store: a ``ProfileStore``; settings: :class:`Settings`.
    file_realtime: play recordings at real-time pace (False in tests: as fast as possible).
    list_devices(rescan): ``core.input_devices.list_input_devices`` unless given.
    Panels: ``input_panel``, ``session_panel``, ``scoring_panel``, ``profile_list``,
    ``live_view``; ``menus``; ``controller`` runs the sessions.
    """

    job_finished = Signal()
    reembedded = Signal(list, list)  # profile names re-embedded after a model switch, failures
    model_switched = Signal(bool)  # a load_model ended: True when the new model is in use
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
        self.enroll_dialog: EnrollDialog | None = None
        self.retrain_dialog: Any = None
        self.dataset_dialog: Any = None
        self.model_job: WorkerHandle | None = None  # a model_loader.ModelLoader at work
        self.reembed_job: WorkerHandle | None = None  # profiles re-embedded after a switch
        # ask(title, question) -> bool: a Yes/No box (tests replace it)
        self.ask: Callable[[str, str], bool] = self._ask
        self.last_dataset = ""  # the latest dataset built from the menu (prefills Retrain)
        if list_devices is None:
            from voxgate.core.input_devices import list_input_devices as list_devices
        self.controller = SessionController(self)
        self.setWindowTitle("voxgate")
        self.resize(1200, 760)
        self._build(list_devices)
        self.menus = MainMenus(self)
        self._apply_encoder()
        self.input_panel.refresh(settings.get("input_device"))
        self.update_buttons()
        self.controller.show_ready()

    # ------------------------------------------------------------------ layout
    def _build(self, list_devices: Callable[[bool], list[Any]]) -> None:
        self.live_view = LiveView(self.encoder.feature_config, self)
        splitter = QSplitter(self)
        splitter.addWidget(self._build_sidebar(list_devices))
        splitter.addWidget(self.live_view)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        self.setCentralWidget(splitter)
        self.model_label = QLabel(self)
        self.model_label.setObjectName("modelLabel")
        self.counters_label = QLabel("blocks 0 · overflows 0 · drops 0", self)
        self.counters_label.setObjectName("countersLabel")
        self.statusBar().addPermanentWidget(self.model_label)
        self.statusBar().addPermanentWidget(self.counters_label)
        self._connect_panels()
        self.live_view.set_mc_passes(self.scoring_panel.mc_passes())

    def _build_sidebar(self, list_devices: Callable[[bool], list[Any]]) -> QScrollArea:
        """Input, session, scoring and the voice profiles, top to bottom, in a scroll area."""
        self.input_panel = InputPanel(list_devices, self)
        self.session_panel = SessionPanel(self)
        self.scoring_panel = ScoringPanel(self)
        self.scoring_panel.set_scoring(self.settings.get("scoring"), self.settings.get("mc_passes"))
        self.profile_list = ProfileList(self.store, self.encoder, self)
        profiles = QGroupBox("Voice profiles", self)
        QVBoxLayout(profiles).addWidget(self.profile_list)
        sidebar = QWidget(self)
        sidebar.setObjectName("sidebar")
        layout = QVBoxLayout(sidebar)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(12)
        for w in (self.input_panel, self.session_panel, self.scoring_panel):
            layout.addWidget(w)
        layout.addWidget(profiles, 1)
        scroll = QScrollArea(self)
        scroll.setWidget(sidebar)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(360)
        scroll.setMaximumWidth(440)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        return scroll

    def _connect_panels(self) -> None:
        self.input_panel.authenticate_file_requested.connect(self.choose_file_to_authenticate)
        self.input_panel.message.connect(lambda text: self.statusBar().showMessage(text))
        self.input_panel.devices_changed.connect(self._on_devices_changed)
        session = self.session_panel
        session.enroll_button.clicked.connect(lambda: self.open_enroll_dialog())
        session.auth_button.clicked.connect(self.controller.start_authentication)
        session.stop_button.clicked.connect(self.controller.stop)
        self.scoring_panel.mode_changed.connect(self._on_mode_changed)
        self.scoring_panel.scoring_changed.connect(self._on_scoring_changed)
        self.scoring_panel.threshold_changed.connect(self._on_threshold_changed)
        self.profile_list.reenroll_requested.connect(
            lambda name, authorized: self.open_enroll_dialog(name=name, authorized=authorized)
        )
        self.profile_list.error.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.profile_list.changed.connect(self.refresh_modes)  # authorizing changes the heads

    # ------------------------------------------------------------------ model
    def _apply_encoder(self) -> None:
        self._show_model()
        self.refresh_modes()
        self._apply_threshold_range()
        self.profile_list.set_encoder(self.encoder)

    def _show_model(self, loading: str = "") -> None:
        """The status bar's model label: the model in use, or the checkpoint being loaded."""
        enc = self.encoder
        name = model_display_name(enc)
        if loading:
            text, warning = f"loading model {loading}…", False
        elif name == "untrained":
            text, warning = f"⚠ {UNTRAINED_NOTE}  ·  device {enc.device.type}", True
        else:
            calib = "" if getattr(enc, "calibrated", True) else " (uncalibrated)"
            text, warning = f"model {name}{calib}  ·  device {enc.device.type}", False
        self.model_label.setText(text)
        self.model_label.setProperty("warning", warning)
        self.model_label.style().unpolish(self.model_label)
        self.model_label.style().polish(self.model_label)

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
        confidence = self.live_view.confidence
        if mode.startswith("head-"):
            self.scoring_panel.set_threshold_range(0.0, 1.0, default, "probability")
            confidence.set_y_label("score (probability)")
        else:
            self.scoring_panel.set_threshold_range(-1.0, 1.0, default, "cosine")
            confidence.set_y_label("score (cosine)")
        confidence.set_threshold(self.scoring_panel.effective_threshold())

    def set_encoder(self, encoder: Any, path: str | None = None) -> None:
        """Switch to another model (stops a running session first); banner and plots reset."""
        self.controller.stop_and_wait()
        self.encoder = encoder
        if path is not None:
            self.settings.set("model_path", str(path))
        self.live_view.spectrogram.feature_config = encoder.feature_config
        self._apply_encoder()
        self._reset_views()
        if self.retrain_dialog is not None:
            self.retrain_dialog.set_current_model(str(encoder.meta.get("path") or ""))
        self.statusBar().showMessage(f"loaded {model_display_name(encoder)}", 5000)

    def _reset_views(self) -> None:
        """Forget the previous session's pictures: banner, spectrogram, curve, meter."""
        self.live_view.clear()
        self.live_view.redraw(force=True)
        self.input_panel.meter.reset()
        self.session_panel.hide_enroll_feedback()
        self.controller.show_ready()

    # ------------------------------------------------------------------ sessions
    # The session API that gui_cli, the tests and the GUI benchmark drive: the controller's.
    @property
    def job(self) -> WorkerHandle | None:
        return self.controller.job

    @property
    def last_error(self) -> str | None:
        return self.controller.last_error

    def start_file_authentication(self, path: str | Path) -> bool:
        """Authenticate a recording (see :meth:`SessionController.start_file_authentication`)."""
        return self.controller.start_file_authentication(path)

    def start_enroll(
        self, name: str, authorized: bool = True, files: list[str] | None = None, **options: bool
    ) -> bool:
        """Enroll ``name`` (see :meth:`SessionController.start_enroll` for ``options``)."""
        return self.controller.start_enroll(name, authorized, files, **options)

    def pipeline_config(self, **overrides: Any) -> Any:
        """The PipelineConfig the settings and the scoring panel describe, with ``overrides``."""
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

    def _on_devices_changed(self) -> None:
        if hasattr(self, "menus"):  # the first listing happens before the menus exist
            self.update_buttons()

    def update_buttons(self) -> None:
        """Enable what can start now: nothing while a session runs, profiles are re-embedded
        or a model loads; Stop while a session (or re-embedding) runs."""
        busy = self.controller.job is not None or self.reembed_job is not None
        blocked = busy or self.model_job is not None
        session = self.session_panel
        session.enroll_button.setEnabled(not blocked)
        session.auth_button.setEnabled(not blocked and self.input_panel.available)
        session.stop_button.setEnabled(busy)
        self.input_panel.file_button.setEnabled(not blocked)
        self.menus.auth_file.setEnabled(not blocked)
        self.menus.enroll_files.setEnabled(not blocked)
        self.input_panel.set_busy(blocked)

    # ------------------------------------------------------------------ live config
    def _on_mode_changed(self, mode: str) -> None:
        self.settings.set("mode", mode)
        self._apply_threshold_range()
        self.controller.update_pipeline(mode=mode, threshold=None)

    def _on_scoring_changed(self, passes: int) -> None:
        self.settings.set("scoring", self.scoring_panel.scoring())
        if passes:
            self.settings.set("mc_passes", passes)
        self.live_view.set_mc_passes(self.scoring_panel.mc_passes())
        self.controller.update_pipeline(mc_passes=passes)

    def _on_threshold_changed(self, value: float | None) -> None:
        self.live_view.confidence.set_threshold(self.scoring_panel.effective_threshold())
        self.controller.update_pipeline(threshold=value)

    # ------------------------------------------------------------------ lifetime
    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt naming)
        if event.type() == QEvent.Type.WindowStateChange:
            self._sync_display()
        super().changeEvent(event)

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt naming)
        super().showEvent(event)
        self._sync_display()

    def hideEvent(self, event: Any) -> None:  # noqa: N802 (Qt naming)
        super().hideEvent(event)
        self._sync_display()

    def _sync_display(self) -> None:
        controller = getattr(self, "controller", None)  # Qt may call before __init__ ends
        if controller is not None:
            controller.set_display_visible(self.isVisible() and not self.isMinimized())

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt naming)
        """Stop audio, join the worker threads and any child process, then close."""
        self.controller.stop_and_wait()
        self._join_model_jobs()
        for dialog in (self.retrain_dialog, self.dataset_dialog):
            if dialog is not None:
                dialog.shutdown()
        self.settings.sync()
        super().closeEvent(event)
