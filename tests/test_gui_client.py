"""The client as people use it (issue 13): devices come and go, dialogs read --progress json,
model switches re-embed kept recordings, layouts keep their size, plots reset and break."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPoint  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from conftest import (  # noqa: E402
    VOWELS,
    silence,
    voiced,
    write_tiny_checkpoint,
    write_voice_folders,
    write_wav,
)
from voxgate.app.confidence_plot import ConfidencePlot  # noqa: E402
from voxgate.app.dataset_dialog import DatasetDialog  # noqa: E402
from voxgate.app.enroll_dialog import EnrollDialog  # noqa: E402
from voxgate.app.level_meter import FLOOR_DBFS  # noqa: E402
from voxgate.app.main_window import MainWindow  # noqa: E402
from voxgate.app.retrain_dialog import FINE_TUNE_EPOCHS, SCRATCH_EPOCHS  # noqa: E402
from voxgate.app.spectrogram_view import LEVELS_DB  # noqa: E402
from voxgate.core.events import LevelEvent, ScoreEvent  # noqa: E402

TIMEOUT_MS = 60000


@dataclass
class Dev:
    index: int
    name: str
    is_default: bool = False


class Devices:
    """A fake ``list_input_devices(rescan)``: what is plugged is seen only on a rescan."""

    def __init__(self, *names: str) -> None:
        self.plugged = list(names)
        self.seen = list(names)
        self.rescans = 0

    def __call__(self, rescan: bool = False) -> list[Dev]:
        if rescan:
            self.rescans += 1
            self.seen = list(self.plugged)
        return [Dev(i, n, i == 0) for i, n in enumerate(self.seen)]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("models")
    return [write_tiny_checkpoint(root / f"m{i}.pt", seed=i) for i in range(2)]


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    wave = voiced(f0=118.0, formants=VOWELS["a"], seconds=8.0, seed=5)
    return write_wav(tmp_path_factory.mktemp("audio"), "speech.wav", wave)


def make_window(qtbot, model: Path, store, settings, devices=None) -> MainWindow:
    from voxgate.core.inference import SpeakerEncoder

    window = MainWindow(
        SpeakerEncoder.from_checkpoint(model), store, settings, file_realtime=False,
        list_devices=devices or (lambda rescan=False: []),
    )  # fmt: skip
    qtbot.addWidget(window)
    window.resize(1200, 760)
    window.show()
    return window


def run_to_end(qtbot, window: MainWindow, start) -> None:
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT_MS):
        assert start()


# ---------------------------------------------------------------- devices


def test_refresh_and_idle_check_find_plugged_and_unplugged_devices(qtbot, models, store, settings):
    devices = Devices()
    window = make_window(qtbot, models[0], store, settings, devices)
    panel = window.input_panel
    assert not panel.available and not window.session_panel.auth_button.isEnabled()
    devices.plugged.append("USB Mic")
    assert panel.poll() is True  # the idle check looks again
    assert panel.available and window.session_panel.auth_button.isEnabled()
    assert window.statusBar().currentMessage() == "input device found: USB Mic"
    assert panel.poll() is False  # nothing changed: nothing redrawn
    devices.plugged.clear()
    panel.refresh_button.click()  # ⟳
    assert not panel.available and not window.session_panel.auth_button.isEnabled()
    assert "No microphone" in panel.explanation.text()
    panel.set_busy(True)
    n = devices.rescans
    assert panel.poll() is False and devices.rescans == n  # never while a session runs
    assert panel.poll_timer.isActive() and panel.poll_timer.interval() == 5000


# ---------------------------------------------------------------- retrain and model switch


def test_retrain_fine_tunes_the_current_model_by_default(qtbot, models, store, settings, tmp_path):
    window = make_window(qtbot, models[0], store, settings)
    dialog = window.open_retrain_dialog()
    assert dialog.init_box.isChecked() and dialog.epochs_spin.value() == FINE_TUNE_EPOCHS
    h5 = tmp_path / "d.h5"
    h5.write_bytes(b"")
    dialog.data_edit.setText(str(h5))
    dialog.extra_edit.setText("lr=1e-4")
    args = dialog.arguments()
    assert args[args.index("--init-from") + 1] == str(models[0])
    assert args[-2:] == ["--set", "lr=1e-4"]  # the user's settings come last and win
    assert "batch_size=64" in args and "--progress" in args
    dialog.init_box.setChecked(False)
    assert dialog.epochs_spin.value() == SCRATCH_EPOCHS
    assert "--init-from" not in dialog.arguments()
    dialog.set_current_model("")  # untrained: nothing to start from
    assert not dialog.init_box.isEnabled() and not dialog.init_box.isChecked()


def test_switching_models_reembeds_kept_recordings_and_asks_for_the_rest(
    qtbot, models, store, settings, speech_wav
):
    window = make_window(qtbot, models[0], store, settings)
    run_to_end(qtbot, window, lambda: window.start_enroll("kept", files=[str(speech_wav)],
                                                          keep_audio=True))  # fmt: skip
    run_to_end(qtbot, window, lambda: window.start_enroll("plain", files=[str(speech_wav)]))
    run_to_end(qtbot, window, lambda: window.start_file_authentication(speech_wav))
    assert window.live_view.confidence.times.size > 0 and window.live_view.banner.state != "idle"
    questions = []
    window.ask = lambda title, text: questions.append(text) or False
    with qtbot.waitSignal(window.model_switched, timeout=TIMEOUT_MS) as switched:
        assert window.load_model(models[1])  # loads on a worker thread, then asks
    assert switched.args == [False]  # "No": the current model stays
    assert window.encoder.meta["path"] == str(models[0])
    assert "plain" in questions[0] and "1 other(s) will be re-embedded" in questions[0]
    window.ask = lambda title, text: True
    with qtbot.waitSignal(window.reembedded, timeout=TIMEOUT_MS) as done:
        assert window.load_model(models[1])
    assert done.args == [["kept"], []]
    assert store.is_compatible(store.get("kept"), window.encoder)
    assert not store.is_compatible(store.get("plain"), window.encoder)
    assert store.audio_path_for("kept").is_file()
    # the previous session's pictures are gone
    assert window.live_view.banner.state == "idle" and window.live_view.confidence.times.size == 0
    assert window.live_view.spectrogram.columns_written == 0
    assert window.input_panel.meter.rms_dbfs == FLOOR_DBFS
    session = window.session_panel
    assert session.auth_button.isEnabled() is False and session.enroll_button.isEnabled()


def test_a_model_loads_off_the_gui_thread_and_the_window_waits_for_it(
    qtbot, monkeypatch, models, store, settings, tmp_path
):
    from voxgate.core.inference import SpeakerEncoder

    window = make_window(qtbot, models[0], store, settings, Devices("USB Mic"))
    session = window.session_panel
    assert session.enroll_button.isEnabled() and session.auth_button.isEnabled()
    readers, release = [], threading.Event()
    real = SpeakerEncoder.from_checkpoint

    def slow_disk(path, *args, **kwargs):
        readers.append(threading.get_ident())
        release.wait(5.0)  # the GUI thread must never be the one waiting here
        return real(path, *args, **kwargs)

    monkeypatch.setattr(SpeakerEncoder, "from_checkpoint", staticmethod(slow_disk))
    assert window.load_model(models[1])  # returns while the checkpoint is still being read
    assert window.model_label.text() == "loading model m1.pt…"
    assert not session.enroll_button.isEnabled() and not session.auth_button.isEnabled()
    assert window.start_enroll("early", files=[str(models[1])]) is False  # nothing starts
    qtbot.waitUntil(lambda: bool(readers), timeout=TIMEOUT_MS)
    assert readers[0] != threading.get_ident()  # a worker thread reads the checkpoint
    release.set()
    qtbot.waitUntil(lambda: window.encoder.meta["path"] == str(models[1]), timeout=TIMEOUT_MS)
    assert window.model_label.text().startswith("model m1.pt")
    assert session.enroll_button.isEnabled() and session.auth_button.isEnabled()

    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with qtbot.waitSignal(window.model_switched, timeout=TIMEOUT_MS) as switched:
        assert window.load_model(bad)
    assert switched.args == [False] and window.encoder.meta["path"] == str(models[1])
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert [b.windowTitle() for b in boxes] == ["Could not load the model"]
    assert window.statusBar().currentMessage() == boxes[0].text()
    assert window.model_label.text().startswith("model m1.pt")  # the error, then usable again
    assert session.enroll_button.isEnabled() and session.auth_button.isEnabled()


# ---------------------------------------------------------------- progress


@pytest.mark.slow
def test_dataset_dialog_bar_moves_during_a_real_build(qtbot, tmp_path):
    corpus = write_voice_folders(
        tmp_path / "c", (("ann", 220.0, 4), ("ben", 110.0, 4), ("cid", 160.0, 4)), 1.2
    )
    dialog = DatasetDialog()
    qtbot.addWidget(dialog)
    dialog.sources_edit.setText(str(corpus))
    dialog.authorized_edit.setText("ann")
    dialog.out_edit.setText(str(tmp_path / "d.h5"))
    values: list[int] = []
    dialog.progress.valueChanged.connect(values.append)
    with qtbot.waitSignal(dialog.runner.finished, timeout=120000) as done:
        assert dialog.start()
    assert done.args == [0, False], "\n".join(dialog.runner.lines[-10:])
    moving = [v for v in values if 0 < v < 100]
    assert len(moving) >= 6 and moving == sorted(moving)  # one step per file, never back
    assert values[-1] == 100 and (tmp_path / "d.h5").is_file()
    assert '"stage"' not in dialog.log.toPlainText()  # JSON drives the bar; the log is for people


# ---------------------------------------------------------------- layout


def test_long_banner_error_wraps_and_keeps_the_window_width(qtbot, models, store, settings):
    window = make_window(qtbot, models[0], store, settings)
    qtbot.waitExposed(window)
    width = window.width()
    message = "cannot open 'default': " + "the device is no longer available " * 12
    window.controller._on_failed(message)
    qtbot.wait(50)
    assert window.width() == width == 1200
    assert window.live_view.banner.detail.wordWrap()


def test_enroll_dialog_keeps_its_size_with_many_long_file_names(qtbot):
    dialog = EnrollDialog(microphone_available=True)
    qtbot.addWidget(dialog)
    dialog.show()
    size = dialog.size()
    name_geometry = dialog.name_edit.geometry()
    files = [f"/recordings/{'a-very-long-folder-name/' * 4}take-{i:02d}.wav" for i in range(5)]
    dialog.set_files(files)
    qtbot.wait(50)
    assert dialog.size() == size and dialog.width() == EnrollDialog.WIDTH
    assert dialog.name_edit.geometry().height() == name_geometry.height()
    assert dialog.files_list.count() == 5
    # the list sits below the Name field and does not cover it
    name_bottom = dialog.name_edit.mapTo(dialog, QPoint(0, dialog.name_edit.height())).y()
    assert dialog.files_list.mapTo(dialog, QPoint(0, 0)).y() >= name_bottom
    assert dialog.values()[2] == files


def test_long_status_keeps_the_profile_buttons_in_view(qtbot, models, store, settings):
    window = make_window(qtbot, models[0], store, settings)
    qtbot.waitExposed(window)
    feedback = window.session_panel.enroll_feedback
    feedback.show()
    feedback.setText("3.2 of 20 s of speech · " + "speak a little louder · " * 20)
    qtbot.wait(50)
    button = window.profile_list.reenroll_button
    bottom = button.mapTo(window, QPoint(0, button.height())).y()
    assert bottom <= window.centralWidget().geometry().bottom()
    assert feedback.height() <= 2 * feedback.fontMetrics().height()
    assert feedback.elided().endswith("…")


def test_retrain_dialog_keeps_its_width_with_long_content(qtbot, models, store, settings):
    window = make_window(qtbot, models[0], store, settings)
    dialog = window.open_retrain_dialog()
    qtbot.waitExposed(dialog)
    size = dialog.size()
    dialog.metrics_label.setText("  ·  ".join(["authe. val accuracy 0.912, macro-F1 0.887"] * 4))
    dialog.set_status("failed (exit code 1): " + "voxgate: error: something long " * 10)
    dialog.on_progress({"stage": "epoch", "done": 1, "total": 10, "loss": 0.5, "metrics": {}})
    qtbot.wait(50)
    assert dialog.size() == size and size.width() == 640


# ---------------------------------------------------------------- plots and text


def score(t: float, value: float = 0.5) -> ScoreEvent:
    return ScoreEvent(t - 1.0, t, 1.0, {"a": value}, {"a": 0.0}, "a", value, 0.0, 0.9)


def test_confidence_line_breaks_at_silences_and_label_stays_inside(qtbot):
    plot = ConfidencePlot(window_s=30.0)
    qtbot.addWidget(plot)
    plot.resize(600, 250)
    plot.show()
    qtbot.waitExposed(plot)
    for t in (1.0, 1.5, 2.0, 9.0, 9.5):
        plot.add(score(t))
    plot.redraw()
    x, y = plot.mean_curve.getData()
    assert np.isnan(y).sum() == 1 and np.isnan(y[3])  # one break, between 2.0 and 9.0
    assert plot.mean_curve.opts["connect"] == "finite"
    plot.set_threshold(1.0)  # at the top of the plot: above the line it would be cut off
    assert plot.threshold_line.label.anchors[0] == (0, 0)
    plot.set_threshold(0.0)
    assert plot.threshold_line.label.anchors[0] == (0, 1)


def test_digital_silence_is_drawn_at_the_floor_and_the_meter_resets(
    qtbot, models, store, settings, tmp_path
):
    wave = np.concatenate([voiced(f0=120.0, seconds=2.0), silence(3.0), voiced(f0=120.0, seconds=2.0)])
    wav = write_wav(tmp_path, "muted.wav", wave)
    window = make_window(qtbot, models[0], store, settings)
    meter = window.input_panel.meter
    meter.set_level(LevelEvent(0.0, -12.0, 0.5, True, False))  # a level from before
    assert meter.rms_dbfs == -12.0
    run_to_end(qtbot, window, lambda: window.start_file_authentication(wav))
    assert meter.rms_dbfs == FLOOR_DBFS and not meter.speech  # it does not freeze
    view = window.live_view.spectrogram
    img = view.image()
    t_cols = view.t_end_s - (view.n_columns - 1 - np.arange(view.n_columns)) * view.column_s
    muted = (t_cols > 2.6) & (t_cols < 4.4)
    voiced_cols = (t_cols > 0.3) & (t_cols < 1.7)
    assert muted.sum() > 20 and np.all(img[:, muted] == LEVELS_DB[0])
    assert img[:, voiced_cols].max() > LEVELS_DB[0] + 30


def test_mc_label_and_next_step_text_follow_the_state(qtbot, models, store, settings, speech_wav):
    window = make_window(qtbot, models[0], store, settings)
    title, detail = window.live_view.confidence_title, window.live_view.banner.detail
    assert title.text() == "Confidence (score per window)"
    window.scoring_panel.scoring_combo.setCurrentIndex(1)  # MC dropout
    assert "MC-dropout std, 10 passes" in title.text()
    # no microphone: never "press Authenticate" (it is disabled)
    assert detail.text().startswith("Enroll a voice, then authenticate a recording")
    run_to_end(qtbot, window, lambda: window.start_enroll("bo", files=[str(speech_wav)]))
    assert "press Authenticate" not in detail.text()
    assert detail.text() == "now authenticate a recording (File → Authenticate a recording…)"
    window.controller.show_ready()  # profiles exist: no "Enroll a voice"
    assert detail.text().startswith("Authenticate a recording")


def test_sigterm_closes_the_window_instead_of_raising_in_a_slot(qtbot, models, store, settings):
    import os
    import signal

    from voxgate.app.gui_cli import _close_on_signals

    window = make_window(qtbot, models[0], store, settings)
    result = {"code": 0}
    before = signal.getsignal(signal.SIGTERM)
    restore = _close_on_signals(window, result)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=TIMEOUT_MS)
    finally:
        restore()
    assert result["code"] == 130
    assert signal.getsignal(signal.SIGTERM) is before


def test_spin_box_arrows_are_drawn_from_files_that_exist(qtbot):
    """A styled QSpinBox loses Fusion's arrows; the style sheet draws them from app/*.svg."""
    import re

    from PySide6.QtWidgets import QApplication

    from voxgate.app.theme import apply_theme

    app = QApplication.instance()
    apply_theme(app)
    sheet = app.styleSheet()
    assert "@HERE@" not in sheet
    urls = re.findall(r"url\(([^)]+)\)", sheet)
    arrows = {Path(u).name for u in urls}
    assert {"arrow-up.svg", "arrow-down.svg"} <= arrows
    assert all(Path(u).is_file() for u in urls)
    assert re.search(r"QSpinBox::up-arrow[^{]*\{[^}]*image: url", sheet)


def test_dataset_dialog_asks_before_replacing_and_creates_the_folder(qtbot, tmp_path):
    corpus = write_voice_folders(tmp_path / "c", (("ann", 220.0, 1),), 1.0)
    dialog = DatasetDialog()
    qtbot.addWidget(dialog)
    dialog.sources_edit.setText(str(corpus))
    dialog.authorized_edit.setText("ann")
    out = tmp_path / "new" / "d.h5"
    dialog.out_edit.setText(str(out))
    args = dialog.arguments()
    assert "--force" not in args and out.parent.is_dir()  # the build needs the folder
    out.write_bytes(b"old")
    questions = []
    dialog.ask = lambda _title, text: questions.append(text) or False
    assert dialog.arguments() is None and "choose another output file" in dialog.status.text()
    dialog.ask = lambda _title, _text: True
    assert "--force" in dialog.arguments()
    assert questions == [f"{out} exists. Replace it?"]


def test_retrain_dialog_never_reuses_a_run_folder(qtbot, models, store, settings, tmp_path):
    window = make_window(qtbot, models[0], store, settings)
    dialog = window.open_retrain_dialog()
    h5 = tmp_path / "d.h5"
    h5.write_bytes(b"")
    dialog.data_edit.setText(str(h5))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    dialog.out_edit.setText(str(run))
    assert dialog.arguments() is None and "already holds a run" in dialog.status.text()
