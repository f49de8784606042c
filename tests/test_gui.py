"""The desktop client with qtbot: real widgets, real pipeline, file sources, temp settings."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QDialogButtonBox  # noqa: E402

from conftest import VOWELS, voiced, write_h5_dataset, write_wav  # noqa: E402
from voxgate.app.confidence_plot import ConfidencePlot  # noqa: E402
from voxgate.app.main_window import UNTRAINED_NOTE, MainWindow  # noqa: E402
from voxgate.app.profile_list import REENROLL_NEEDED  # noqa: E402
from voxgate.app.retrain_dialog import TrainProgress  # noqa: E402
from voxgate.app.settings import DEFAULTS, Settings  # noqa: E402
from voxgate.app.settings_dialog import SettingsDialog  # noqa: E402
from voxgate.app.spectrogram_view import LEVELS_DB, SpectrogramView  # noqa: E402
from voxgate.core.config import FeatureConfig  # noqa: E402
from voxgate.core.decision import windows_for_decision  # noqa: E402
from voxgate.core.events import DecisionState, ScoreEvent, SpectrogramEvent  # noqa: E402
from voxgate.core.live_config import DEFAULT_HOP_S  # noqa: E402
from voxgate.core.profiles import Profile  # noqa: E402

TIMEOUT_MS = 60000  # generous: the machine is shared; waits end as soon as the condition holds


@pytest.fixture(scope="module")
def encoder():
    from voxgate.core.inference import SpeakerEncoder
    from voxgate.core.model import ModelConfig

    # A small random model: the GUI's behaviour does not depend on its size.
    small = ModelConfig(
        channels=(8, 16, 16), gru_hidden=32, gru_layers=1, attention_dim=16, embed_dim=32
    )
    return SpeakerEncoder.untrained(model_config=small)


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    """25 s of a formant-like voiced signal (five vowels, syllable-rate modulation)."""
    parts = [
        voiced(f0=118.0, formants=VOWELS[v], seconds=5.0, seed=i) for i, v in enumerate("aeiou")
    ]
    return write_wav(tmp_path_factory.mktemp("audio"), "speech.wav", np.concatenate(parts))


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory) -> Path:
    """6 s of the same kind of voiced signal (quick enrollments and runs)."""
    wave = voiced(f0=118.0, formants=VOWELS["a"], seconds=6.0, seed=7)
    return write_wav(tmp_path_factory.mktemp("audio"), "short.wav", wave)


def make_window(qtbot, encoder, store, settings, **kw) -> MainWindow:
    kw.setdefault("file_realtime", False)
    window = MainWindow(encoder, store, settings, **kw)
    qtbot.addWidget(window)
    window.show()
    return window


@pytest.fixture
def window(qtbot, encoder, store, settings):
    w = make_window(qtbot, encoder, store, settings)
    yield w
    w.close()


def enroll_headless(encoder, store, wav, name="alice"):
    from voxgate.core.enroll import enroll_from_files

    return enroll_from_files(encoder, [wav], name, store=store)


def run_to_end(qtbot, window: MainWindow, start) -> None:
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT_MS):
        assert start()
    assert window.job is None


# ---------------------------------------------------------------- start-up


def test_window_starts_untrained_and_says_so(window, encoder):
    assert UNTRAINED_NOTE in window.model_label.text()
    assert "cpu" in window.model_label.text()
    modes = [
        window.scoring_panel.mode_combo.itemData(i)
        for i in range(window.scoring_panel.mode_combo.count())
    ]
    assert modes[:2] == ["authentication", "identification"]
    assert window.scoring_panel.threshold() is None  # the calibrated default is in use
    assert window.scoring_panel.effective_threshold() == pytest.approx(encoder.threshold, abs=2e-3)
    assert f"{encoder.threshold:.3f}" in window.scoring_panel.default_label.text()
    assert window.live_view.banner.state == "idle"
    assert not window.session_panel.stop_button.isEnabled()
    # The real device list: either devices to pick, or a plain explanation and file input.
    panel = window.input_panel
    if panel.available:
        assert panel.combo.isEnabled() and window.session_panel.auth_button.isEnabled()
    else:
        assert panel.explanation.isVisibleTo(window) and "recordings" in panel.explanation.text()
        assert not window.session_panel.auth_button.isEnabled()
    assert window.input_panel.file_button.isEnabled()


def test_no_input_device_explains_and_offers_files(qtbot, encoder, store, settings):
    w = make_window(qtbot, encoder, store, settings, list_devices=lambda rescan=False: [])
    assert not w.input_panel.available
    assert "No microphone" in w.input_panel.explanation.text()
    assert not w.session_panel.auth_button.isEnabled()
    assert w.controller.start_authentication() is False  # explained in the status bar
    assert w.job is None and "recording" in w.statusBar().currentMessage()
    assert w.menus.auth_file.isEnabled() and w.session_panel.enroll_button.isEnabled()
    w.close()


# ---------------------------------------------------------------- enroll + authenticate


def test_enroll_from_file_through_the_widgets(qtbot, window, speech_wav, store):
    values: list[int] = []
    session = window.session_panel
    session.enroll_progress.valueChanged.connect(values.append)
    qtbot.mouseClick(session.enroll_button, Qt.MouseButton.LeftButton)
    dialog = window.enroll_dialog
    assert dialog is not None and dialog.isVisible()
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled()  # no name yet
    qtbot.keyClicks(dialog.name_edit, "Alice")
    dialog.set_files([speech_wav])
    assert ok.isEnabled() and not dialog.keep_audio
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
        assert session.stop_button.isEnabled() and not session.enroll_button.isEnabled()
    assert window.last_error is None
    assert session.enroll_progress.value() == 100
    assert values == sorted(values) and len(set(values)) > 3  # rose step by step to 100 %
    assert "enrolled Alice" in session.enroll_feedback.text()
    assert window.profile_list.names() == ["Alice"]
    profile = store.get("Alice")
    assert profile.authorized and profile.speech_s >= 19.0
    # no audio is kept unless the user opts in (the box is off by default)
    assert profile.recording is None
    assert not store.audio_path_for("Alice").exists()
    assert window.live_view.spectrogram.columns_written > 0
    assert session.enroll_button.isEnabled() and not session.stop_button.isEnabled()


def test_a_minimized_window_decides_without_computing_the_display(
    qtbot, window, encoder, store, speech_wav, short_wav
):
    enroll_headless(encoder, store, short_wav)
    window.profile_list.refresh()
    window.showMinimized()
    qtbot.waitUntil(lambda: not window.controller.display_visible, timeout=TIMEOUT_MS)
    run_to_end(qtbot, window, lambda: window.start_file_authentication(speech_wav))
    assert window.last_error is None
    assert window.live_view.banner.state == DecisionState.ACCEPTED.value or (
        window.live_view.banner.state == DecisionState.REJECTED.value
    )  # decided, whatever the untrained model says
    assert window.live_view.spectrogram.columns_written == 0  # no display was computed
    window.showNormal()
    qtbot.waitUntil(lambda: window.controller.display_visible, timeout=TIMEOUT_MS)
    run_to_end(qtbot, window, lambda: window.start_file_authentication(speech_wav))
    assert window.live_view.spectrogram.columns_written > 0


def test_enroll_keeps_recording_only_when_opted_in(qtbot, window, speech_wav, store):
    qtbot.mouseClick(window.session_panel.enroll_button, Qt.MouseButton.LeftButton)
    dialog = window.enroll_dialog
    qtbot.keyClicks(dialog.name_edit, "Bob")
    dialog.set_files([speech_wav])
    dialog.keep_audio_box.setChecked(True)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert window.last_error is None
    profile = store.get("Bob")
    wav = store.audio_path_for("Bob")
    assert profile.recording == wav.name and wav.stat().st_size > 16000 * 2 * 19


def test_authenticate_file_threshold_decides(qtbot, window, encoder, store, speech_wav, short_wav):
    enroll_headless(encoder, store, short_wav)
    window.profile_list.refresh()
    banner, confidence = window.live_view.banner, window.live_view.confidence
    before_image = window.live_view.spectrogram.image().copy()
    assert np.all(before_image == LEVELS_DB[0])
    slider = window.scoring_panel.slider

    slider.setValue(slider.minimum())  # the lowest threshold: every cosine passes -> ACCEPTED
    assert window.scoring_panel.threshold() == pytest.approx(-0.998)  # -1 itself is refused
    assert confidence.threshold_line.value() == pytest.approx(-0.998)
    run_to_end(qtbot, window, lambda: window.start_file_authentication(speech_wav))
    assert window.last_error is None
    assert banner.state == DecisionState.ACCEPTED.value
    assert "alice" in banner.title.text() and banner.who == "alice"
    # the plots were fed and drawn
    spectrogram = window.live_view.spectrogram
    spectrogram.repaint()  # what Qt paints next: the ring through the colour table
    image = spectrogram.image()
    assert image.shape == before_image.shape
    assert not np.array_equal(image, before_image) and np.isfinite(image).all()
    np.testing.assert_array_equal(
        spectrogram.pixels, spectrogram.lut[spectrogram.colour_indices()[::-1]]
    )
    # the session ends at its first final decision: about 3 s of speech, 32 ms per column
    assert window.live_view.spectrogram.columns_written >= 80
    x, y = confidence.mean_curve.getData()
    k = windows_for_decision(3.0, 1.0, DEFAULT_HOP_S)  # the windows of one decision
    assert x is not None and len(x) >= k and np.all(np.diff(x) > 0)
    assert np.all((y >= -1.0) & (y <= 1.0))
    assert "overflows 0" in window.counters_label.text()

    slider.setValue(slider.maximum())  # threshold 1: nothing passes -> REJECTED, nobody named
    run_to_end(qtbot, window, lambda: window.start_file_authentication(short_wav))
    assert banner.state == DecisionState.REJECTED.value and banner.who is None
    # The failed attempt's note ("4 attempt(s) left…") keeps the stream's counters.
    assert "attempt(s) left" in window.statusBar().currentMessage()
    assert not window.counters_label.text().startswith("blocks 0 ")

    qtbot.mouseClick(window.scoring_panel.reset_button, Qt.MouseButton.LeftButton)
    assert window.scoring_panel.threshold() is None
    assert confidence.threshold_line.value() == pytest.approx(encoder.threshold, abs=2e-3)


def test_a_raised_decision_window_is_shown_not_hidden_by_started(
    qtbot, window, encoder, store, settings, short_wav, monkeypatch
):
    """A note from the pipeline (here: the settings ask for 1-s decisions, the model was
    calibrated on 3 s) stays in the status bar: "started" and "done" do not replace it."""
    monkeypatch.setattr(encoder, "calibration", {"decision_s": 3.0})
    settings.set("decision_s", 1.0)
    enroll_headless(encoder, store, short_wav)
    window.profile_list.refresh()
    run_to_end(qtbot, window, lambda: window.start_file_authentication(short_wav))
    assert window.last_error is None
    assert "decision window raised from 1 s to 3 s" in window.statusBar().currentMessage()
    x, _ = window.live_view.confidence.mean_curve.getData()
    assert len(x) >= windows_for_decision(3.0, 1.0, DEFAULT_HOP_S)  # decided on 3 s, not 1


def test_mc_dropout_band_has_width(qtbot, window, encoder, store, short_wav):
    enroll_headless(encoder, store, short_wav)
    window.scoring_panel.scoring_combo.setCurrentIndex(1)
    window.scoring_panel.passes.setValue(4)
    assert window.scoring_panel.mc_passes() == 4
    run_to_end(qtbot, window, lambda: window.start_file_authentication(short_wav))
    assert window.live_view.confidence.stds.size > 0 and window.live_view.confidence.stds.max() > 0
    upper = window.live_view.confidence._upper.getData()[1]
    lower = window.live_view.confidence._lower.getData()[1]
    assert np.all(upper >= lower) and np.any(upper > lower)


def test_stop_ends_a_realtime_session_and_close_joins(qtbot, encoder, store, settings, speech_wav):
    baseline = threading.active_count()
    w = make_window(qtbot, encoder, store, settings, file_realtime=True)
    assert w.start_file_authentication(speech_wav)
    qtbot.waitUntil(lambda: w.live_view.spectrogram.columns_written > 20, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(w.job_finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(w.session_panel.stop_button, Qt.MouseButton.LeftButton)
    assert w.job is None and w.session_panel.enroll_button.isEnabled()
    assert w.live_view.spectrogram.t_end_s < 20.0  # stopped long before the 25-s file ended

    # a second realtime session, still running when the window closes
    assert w.start_file_authentication(speech_wav)
    handle = w.job
    qtbot.waitUntil(lambda: w.live_view.spectrogram.columns_written > 10, timeout=TIMEOUT_MS)
    w.close()
    assert w.job is None
    assert handle.thread.isFinished()
    assert threading.active_count() == baseline


# ---------------------------------------------------------------- profiles


def test_profile_list_actions_and_incompatible_mark(qtbot, window, encoder, store, short_wav):
    enroll_headless(encoder, store, short_wav, "bob")
    old = Profile(
        name="carol", embedding=np.ones(32, np.float32) / np.sqrt(32), model_fingerprint="0" * 16
    )
    store.save(old)
    plist = window.profile_list
    plist.refresh()
    assert plist.names() == ["bob", "carol"]
    assert REENROLL_NEEDED in plist.item("carol").text()
    assert REENROLL_NEEDED not in plist.item("bob").text()

    plist.item("bob").setCheckState(Qt.CheckState.Unchecked)  # the checkbox writes the store
    assert store.get("bob").authorized is False
    plist.rename_profile("bob", "robert")
    assert plist.names() == ["carol", "robert"] and not store.exists("bob")
    plist.delete_profile("carol")
    assert plist.names() == ["robert"]
    errors = []
    plist.error.connect(errors.append)
    plist.rename_profile("robert", "a/b")  # invalid name: reported, nothing changes
    assert errors and plist.names() == ["robert"]

    requested = []
    plist.reenroll_requested.connect(lambda n, a: requested.append((n, a)))
    plist.list.setCurrentItem(plist.item("robert"))
    qtbot.mouseClick(plist.reenroll_button, Qt.MouseButton.LeftButton)
    assert requested == [("robert", False)]
    assert window.enroll_dialog.name_edit.text() == "robert"
    assert not window.enroll_dialog.authorized_box.isChecked()
    window.enroll_dialog.reject()


# ---------------------------------------------------------------- settings


def test_settings_persist_and_feed_the_pipeline(tmp_path, qtbot, window, settings):
    assert settings.get("hop_s") == DEFAULTS["hop_s"]
    dialog = SettingsDialog(settings, window)
    qtbot.addWidget(dialog)
    dialog.vad.setValue(3)
    dialog.hop.setValue(0.25)
    dialog.decision.setValue(4.0)
    dialog.mc.setValue(16)
    dialog.apply()
    again = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    assert again.get("vad_aggressiveness") == 3 and again.get("hop_s") == pytest.approx(0.25)
    assert again.get("decision_s") == pytest.approx(4.0) and again.get("mc_passes") == 16
    cfg = window.pipeline_config()
    assert (cfg.vad_aggressiveness, cfg.hop_s, cfg.decision_s) == (3, 0.25, 4.0)
    again.reset()
    assert again.as_dict() == DEFAULTS
    with pytest.raises(KeyError):
        settings.set("no_such_setting", 1)


# ---------------------------------------------------------------- plots


def test_spectrogram_ring_order_nan_and_redraw_rate(qtbot):
    view = SpectrogramView(window_s=1.0)
    qtbot.addWidget(view)
    n = view.n_columns
    drawn = view.frames_drawn
    for i in range(n + 5):  # wrap around the ring
        col = np.full((1, view.n_mels), -79.0 + i % 70, np.float32)
        if i == n + 4:
            col[0, 0] = np.nan
        view.push(SpectrogramEvent(t_s=(i + 1) * view.column_s, columns=col))
    assert view.frames_drawn == drawn  # pushing never draws
    img = view.image()
    assert img.shape == (view.n_mels, n) and img.dtype == np.float32
    assert np.isfinite(img).all() and img[0, -1] == LEVELS_DB[0]  # NaN became the floor
    assert img[1, -1] == pytest.approx(-79.0 + (n + 4) % 70)  # newest column on the right
    assert img[1, 0] == pytest.approx(-79.0 + 5 % 70)  # oldest kept column on the left
    view.redraw()
    assert view.frames_drawn == drawn + 1
    # fixed levels: the floor is the table's first colour, 0 dB its last, top band on top
    assert view.pixels[-1, -1] == view.lut[0]  # band 0 of the newest column: the NaN
    idx = view.colour_indices()
    assert idx[1, -1] == round((-79.0 + (n + 4) % 70 + 80.0) / 80.0 * 255)
    np.testing.assert_array_equal(view.pixels, view.lut[idx[::-1]])
    view.redraw()  # nothing new: no copy
    assert view.frames_drawn == drawn + 1


def test_spectrogram_follows_a_model_with_other_features(qtbot):
    """Another model (80 mels every 10 ms instead of 64 every 32 ms): the picture still
    spans window_s, with the new bands (the old view kept 250 columns of 32 ms)."""
    view = SpectrogramView(FeatureConfig.preset("report"), window_s=8.0)
    qtbot.addWidget(view)
    assert (view.n_mels, view.n_columns) == (64, 250)
    view.feature_config = FeatureConfig.preset("speaker")
    assert (view.n_mels, view.n_columns) == (80, 800) and view.pixels.shape == (80, 800)
    assert view.column_s * view.n_columns == pytest.approx(8.0)
    assert view.columns_written == 0 and np.all(view.image() == LEVELS_DB[0])


def test_spectrogram_paints_the_ring_in_its_plot_area(qtbot):
    view = SpectrogramView(window_s=1.0)
    qtbot.addWidget(view)
    view.resize(420, 220)
    quiet, loud = np.full((1, view.n_mels), -60.0, np.float32), np.zeros((1, view.n_mels))
    loud[0, : view.n_mels // 2] = -60.0  # the low bands quiet, the high bands at 0 dB
    for i in range(view.n_columns):
        view.push(SpectrogramEvent(t_s=i * view.column_s, columns=quiet if i % 2 else loud))
    picture = view.grab().toImage()
    r = view.plot_rect()
    rgb = {db: int(view.lut[round((db + 80.0) / 80.0 * 255)]) & 0xFFFFFF for db in (-60, 0)}
    top = {picture.pixel(x, r.top() + 2) & 0xFFFFFF for x in range(r.left(), r.right())}
    bottom = {picture.pixel(x, r.bottom() - 2) & 0xFFFFFF for x in range(r.left(), r.right())}
    assert top == {rgb[-60], rgb[0]}  # the columns alternate in the high bands
    assert bottom == {rgb[-60]}
    assert view.frames_drawn >= 1  # the grab painted, and unrolled the ring first


def test_confidence_plot_window_and_band(qtbot):
    plot = ConfidencePlot(window_s=5.0)
    qtbot.addWidget(plot)
    for i in range(20):
        plot.add(
            ScoreEvent(
                t_start_s=0.5 * i, t_end_s=0.5 * i + 1.0, speech_ratio=1.0, scores={"a": 0.5},
                spread={"a": 0.1}, best="a", best_score=0.4 + 0.01 * i, best_spread=0.1,
                threshold=0.45,
            )
        )  # fmt: skip
    plot.add(ScoreEvent(0, 11, 0.0, {}, {}, None, float("nan"), 0.0, 0.45))  # nobody: skipped
    plot.redraw()
    assert plot.times.size == 10 and plot.times[-1] == pytest.approx(10.5)  # last 5 s only
    assert plot.threshold_line.value() == pytest.approx(0.45)
    np.testing.assert_allclose(plot._upper.getData()[1] - plot._lower.getData()[1], 0.2)


# ---------------------------------------------------------------- retrain dialog


def make_tiny_h5(path: Path, n_speakers: int = 4) -> Path:
    """A valid dataset in the contract layout: random features, 4 speakers, 2 authorized."""
    from voxgate.core.config import FeatureConfig

    fc = FeatureConfig()
    splits = [0, 0, 0, 0, 1, 2]
    sp = np.repeat(np.arange(n_speakers), len(splits))
    split = np.tile(splits, n_speakers).astype(np.int8)
    file_id = (sp * 3 + split).astype(np.int32)  # one recording per speaker and split
    chunk_index = np.zeros(sp.size, np.int32)
    for fid in np.unique(file_id):
        idx = np.flatnonzero(file_id == fid)
        chunk_index[idx] = np.arange(idx.size)
    spk = [f"s{i}" for i in range(n_speakers)]
    rows = []
    for i in range(n_speakers):
        for k in range(3):
            n = int(np.sum((sp == i) & (split == k)))
            rows.append((f"{spk[i]}/{k}.wav", spk[i], str(k), "synth", "x", "M", n, n, n, k))
    rng = np.random.default_rng(0)
    feats = rng.uniform(-80, 0, (sp.size, fc.frames_per_chunk, fc.n_mels))
    cols = {
        "lengths": np.full(sp.size, fc.frames_per_chunk), "label": sp < 2, "speaker": sp,
        "file_id": file_id, "split": split, "aug": np.zeros(sp.size), "chunk_index": chunk_index,
    }  # fmt: skip
    return write_h5_dataset(
        path, feats, cols, rows, feature_config=fc, speakers=spk, authorized=spk[:2]
    )


TINY_MODEL = (
    'model={"channels":[4,8,8],"gru_hidden":16,"gru_layers":1,"attention_dim":8,"embed_dim":16}'
)


def test_retrain_dialog_runs_and_cancels(qtbot, window, tmp_path):
    dialog = window.open_retrain_dialog()
    assert dialog.isVisible()
    dialog.data_edit.setText(str(tmp_path / "missing.h5"))
    assert dialog.start() is False and "not found" in dialog.status.text()

    dialog.data_edit.setText(str(make_tiny_h5(tmp_path / "tiny.h5")))
    dialog.out_edit.setText(str(tmp_path / "run"))
    dialog.epochs_spin.setValue(50)
    dialog.extra_edit.setText(f"batch_size=4 num_workers=0 mc_passes=0 patience=0 '{TINY_MODEL}'")
    with qtbot.waitSignal(dialog.runner.started, timeout=TIMEOUT_MS):
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert dialog.running and dialog.cancel_button.isEnabled()
    assert not dialog.start_button.isEnabled()
    assert "--data" in dialog.runner.command_line() and "epochs=50" in dialog.runner.command_line()
    pid = dialog.runner.process.processId()
    assert pid > 0
    with qtbot.waitSignal(dialog.runner.finished, timeout=TIMEOUT_MS) as blocker:
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    code, cancelled = blocker.args
    assert cancelled and not dialog.running
    assert dialog.status.text() == "cancelled"
    assert dialog.start_button.isEnabled() and not dialog.use_button.isEnabled()
    assert not (tmp_path / "run" / "best_model.pt").exists()


@pytest.mark.slow
def test_retrain_success_offers_the_new_model(qtbot, window, tmp_path):
    dialog = window.open_retrain_dialog()
    dialog.data_edit.setText(str(make_tiny_h5(tmp_path / "tiny.h5")))
    dialog.out_edit.setText(str(tmp_path / "run"))
    dialog.epochs_spin.setValue(1)
    dialog.extra_edit.setText(
        f"batch_size=8 num_workers=0 mc_passes=0 calibrate=false '{TINY_MODEL}'"
    )
    with qtbot.waitSignal(dialog.runner.finished, timeout=120000) as blocker:
        assert dialog.start()
    assert blocker.args == [0, False], "\n".join(dialog.runner.lines[-10:])
    assert dialog.progress.value() == 100 and dialog.train_progress.epoch == 1
    assert dialog.use_button.isEnabled()
    with qtbot.waitSignal(window.model_switched, timeout=TIMEOUT_MS) as switched:
        qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert switched.args == [True]
    assert window.encoder.meta["path"] == str(tmp_path / "run" / "best_model.pt")
    assert "best_model.pt" in window.model_label.text()
    modes = [
        window.scoring_panel.mode_combo.itemData(i)
        for i in range(window.scoring_panel.mode_combo.count())
    ]
    assert "head-authentication" in modes


def test_train_progress_reads_the_json_records():
    p = TrainProgress()
    assert not p.update({"stage": "files", "done": 1, "total": 2})
    p.update({"stage": "train", "done": 1, "total": 2, "epoch": 2, "epochs": 4, "loss": 5.733,
              "metrics": {}})  # fmt: skip
    assert (p.epochs, p.loss) == (4, pytest.approx(5.733))
    assert p.fraction == pytest.approx((1 + 0.5) / 4)
    p.update({"stage": "epoch", "done": 2, "total": 4, "epoch": 2, "epochs": 4, "loss": 5.1537,
              "metrics": {"val_loss": 8.4395, "accuracy": {"authentication": 0.625},
                          "macro_f1": {"authentication": 0.333}}})  # fmt: skip
    assert p.epoch == 2 and p.fraction == pytest.approx(0.5)
    assert (p.loss, p.val_loss) == pytest.approx((5.1537, 8.4395))
    assert p.accuracy == {"authentication": 0.625} and p.macro_f1 == {"authentication": 0.333}
    assert "epoch 2/4" in p.describe() and "val accuracy 0.625, macro-F1 0.333" in p.describe()
    p.update({"stage": "train", "done": 1, "total": 10, "epoch": 1, "epochs": 4})
    assert p.fraction == pytest.approx(0.5)  # never backwards


# ---------------------------------------------------------------- the gate in the window


def _enroll_via_dialog(qtbot, window, name, wav):
    qtbot.mouseClick(window.session_panel.enroll_button, Qt.MouseButton.LeftButton)
    dialog = window.enroll_dialog
    qtbot.keyClicks(dialog.name_edit, name)
    dialog.set_files([wav])
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)


def test_enrolling_an_existing_name_asks_before_replacing(qtbot, window, short_wav, store):
    enroll_headless(window.encoder, store, short_wav, "carol")
    before = store.get("carol").embedding.copy()
    asked: list[str] = []
    window._ask = lambda title, question: asked.append(question) or False  # "No"
    _enroll_via_dialog(qtbot, window, "carol", short_wav)
    assert asked and "'carol' exists" in asked[0] and window.job is None
    np.testing.assert_array_equal(store.get("carol").embedding, before)  # kept
    window._ask = lambda title, question: True  # "Yes": replaced
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT_MS):
        _enroll_via_dialog(qtbot, window, "carol", short_wav)
    assert window.last_error is None and store.get("carol").updated >= store.get("carol").created


def _mode_items(window):
    combo = window.scoring_panel.mode_combo
    return {
        combo.itemData(i): (combo.model().item(i).isEnabled(), combo.itemData(i, Qt.ToolTipRole))
        for i in range(combo.count())
    }


def test_trained_head_modes_are_disabled_until_their_speakers_are_enrolled(
    qtbot, tmp_path, store, settings
):
    from voxgate.core.inference import SpeakerEncoder
    from voxgate.core.model import ModelConfig

    small = ModelConfig(
        channels=(8, 16, 16), gru_hidden=32, gru_layers=1, attention_dim=16, embed_dim=32,
        heads=(("identification", 3),),
    )  # fmt: skip
    enc = SpeakerEncoder.untrained(model_config=small)
    settings.set("mode", "head-identification")  # a saved head mode is never the default
    w = make_window(qtbot, enc, store, settings)
    items = _mode_items(w)
    assert w.scoring_panel.mode() == "authentication"
    enabled, tip = items["head-identification"]
    assert not enabled and "Not available" in tip and "enrolled" in tip
    assert not items["head-authentication"][0]
    # Enroll training speaker "1" under its own name: the identification head is offered.
    store.save(Profile("1", np.ones(32, np.float32), model_fingerprint=enc.fingerprint))
    w.refresh_modes()
    assert _mode_items(w)["head-identification"][0]
    w.close()


def test_a_locked_device_is_shown_as_locked_with_the_wait(qtbot, window, encoder, store, short_wav):
    import re

    from voxgate.core.lockout import DEVICE_KEY, Lockout

    enroll_headless(encoder, store, short_wav)
    lock = Lockout(store)
    for _ in range(5):
        lock.record(DEVICE_KEY, accepted=False)
    run_to_end(qtbot, window, lambda: window.start_file_authentication(short_wav))
    assert window.live_view.banner.title.text().startswith("Locked")
    assert re.search(r"wait \d+ s", window.last_error)


def test_decision_banner_says_no_profile_instead_of_a_nan_score(qtbot):
    """Authenticating with nobody enrolled is a rejection without a score: the banner says
    so rather than printing "score nan"; a real score is still shown with its spread."""
    from voxgate.app.decision_banner import DecisionBanner
    from voxgate.core.events import DecisionEvent

    banner = DecisionBanner()
    qtbot.addWidget(banner)
    ev = DecisionEvent(
        3.0, DecisionState.REJECTED, None, float("nan"), 0.0, 0.6, 5, "authentication"
    )
    banner.set_decision(ev)
    assert "nan" not in banner.detail.text() and "no profile" in banner.detail.text()
    assert banner.state == DecisionState.REJECTED.value
    banner.set_decision(
        DecisionEvent(3.0, DecisionState.ACCEPTED, "ann", 0.71, 0.02, 0.6, 5, "authentication")
    )
    assert "score 0.71 ± 0.02" in banner.detail.text() and "ann" in banner.title.text()
