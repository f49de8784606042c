"""Enrollment: progress, feedback strings, the profile vector and its quality, from files."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import VOWELS, silence, small_model_config, voiced, white_noise, write_wav
from voxgate.core.enroll import (
    FEEDBACK_CLIPPING,
    FEEDBACK_INCONSISTENT,
    FEEDBACK_NO_SPEECH,
    FEEDBACK_NOISE,
    FEEDBACK_QUIET,
    Enroller,
    enroll_from_files,
    rms_dbfs,
    window_speech_ratio,
)
from voxgate.core.errors import TooShortError
from voxgate.core.inference import SpeakerEncoder
from voxgate.core.profiles import ProfileStore
from voxgate.core.voicing import REASON_CLIPPING

SR = 16000


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return SpeakerEncoder.untrained(model_config=small_model_config())


def test_rms_dbfs_and_speech_ratio() -> None:
    assert rms_dbfs(np.ones(100, np.float32)) == pytest.approx(0.0, abs=1e-6)
    assert rms_dbfs(np.full(100, 0.1, np.float32)) == pytest.approx(-20.0, abs=1e-4)
    assert rms_dbfs(np.zeros(10, np.float32)) == -120.0
    flags = np.array([0, 1, 1, 1, 0, 0], bool)  # frames of 10 samples, first frame index 2
    assert window_speech_ratio(flags, 2, 10, 20, 40) == pytest.approx(3 / 4)  # frames 2..5
    assert window_speech_ratio(flags, 2, 10, 25, 40) == 1.0  # frames 3..5
    assert window_speech_ratio(flags, 2, 10, 40, 40) == 0.5  # frames 4..7
    assert window_speech_ratio(flags, 2, 10, 200, 40) == 0.0


def test_progress_reaches_one_and_profile_is_mean_direction(encoder) -> None:
    enr = Enroller(encoder, "ann", target_s=5.0)
    wave = voiced(seconds=7.0, seed=1)
    fractions = []
    for k in range(13):  # 1-s windows every 0.5 s
        start = k * 8000
        ev = enr.add_window(start, wave[start : start + SR], 1.0)
        fractions.append(ev.fraction)
    # 1.0 s for the first window, then 0.5 s of new speech per window.
    assert fractions[:9] == pytest.approx([(2 + k) / 10 for k in range(9)])
    assert fractions[-1] == 1.0 and enr.complete and enr.n_windows == 9
    profile = enr.finish()
    embs = np.stack(enr.embeddings)
    expected = embs.mean(0) / np.linalg.norm(embs.mean(0))
    np.testing.assert_allclose(profile.embedding, expected, atol=1e-6)
    assert np.linalg.norm(profile.embedding) == pytest.approx(1.0, abs=1e-5)
    assert profile.n_windows == 9 and profile.speech_s == pytest.approx(5.0)
    assert profile.model_fingerprint == encoder.fingerprint
    assert 0.9 < profile.quality["mean_cos"] <= 1.0 + 1e-6
    assert profile.quality["min_cos"] <= profile.quality["mean_cos"]


def test_feedback_strings(encoder) -> None:
    enr = Enroller(encoder, "ann", target_s=10.0, no_speech_s=3.0)
    quiet = silence(1.0)
    fb = [enr.add_window(k * 8000, quiet, 0.0).feedback for k in range(6)]
    assert all(FEEDBACK_QUIET in f for f in fb)
    assert FEEDBACK_NO_SPEECH not in fb[3]  # window ends at 2.5 s
    assert FEEDBACK_NO_SPEECH in fb[5]  # window ends at 3.5 s
    loud_noise = white_noise(1.0, amp=0.3)
    assert FEEDBACK_NOISE in enr.add_window(48000, loud_noise, 0.1).feedback
    clipped = np.clip(voiced(seconds=1.0) * 3, -1, 1)
    fb = enr.add_window(56000, clipped, 1.0).feedback
    assert FEEDBACK_CLIPPING in fb and REASON_CLIPPING in fb  # clipped speech is refused
    assert enr.n_windows == 0 and enr.speech_s == 0.0
    fb = enr.add_window(72000, voiced(seconds=1.0), 1.0).feedback
    assert FEEDBACK_NO_SPEECH not in fb and fb == ()
    assert enr.n_windows == 1 and enr.speech_s == pytest.approx(1.0)


def test_inconsistent_window_is_flagged_and_left_out(encoder) -> None:
    enr = Enroller(encoder, "ann", target_s=30.0)
    same = voiced(seconds=4.0, seed=3)
    for k in range(7):
        assert enr.add_window(k * 8000, same[k * 8000 : k * 8000 + SR], 1.0).feedback == ()
    # A window whose embedding points away from the profile (another voice), measured
    # against the kept windows' own spread (the untrained model cannot tell voices apart).
    other = voiced(300.0, (400.0, 2600.0, 3300.0), 1.0, seed=9)
    ev = enr.add_window(100000, other, 1.0, embedding=-enr.embeddings[0])
    assert FEEDBACK_INCONSISTENT in ev.feedback
    assert enr.n_windows == 7 and enr.n_inconsistent == 1


def test_finish_needs_enough_speech(encoder) -> None:
    enr = Enroller(encoder, "ann", target_s=20.0)
    enr.add_window(0, voiced(seconds=1.0), 1.0)
    with pytest.raises(TooShortError, match=r"at least 5.0 s of voiced speech, got 1.0 s"):
        enr.finish()


def test_enroll_from_files_saves_profile_and_opt_in_audio(encoder, tmp_path) -> None:
    paths = [
        write_wav(tmp_path, "a.wav", np.concatenate([silence(1.0), voiced(seconds=4.0, seed=1)])),
        write_wav(tmp_path, "b.wav", voiced(120.0, VOWELS["i"], 3.0, seed=2)),
    ]
    store = ProfileStore(tmp_path / "profiles")
    events = []
    profile = enroll_from_files(
        encoder, paths, "ann", store=store, keep_audio=True, on_progress=events.append
    )
    # 4 s + 3 s of speech; hangover/onset move the edges by less than one window.
    assert 6.0 <= profile.speech_s <= 7.2
    assert events[-1].done and events[-1].fraction == 1.0
    saved = store.get("ann")
    np.testing.assert_array_equal(saved.embedding, profile.embedding)
    import soundfile as sf

    audio, sr = sf.read(store.audio_path_for("ann"))
    assert sr == SR and audio.size / SR == pytest.approx(profile.speech_s, abs=0.6)
    # Without the opt-in no audio is written.
    enroll_from_files(encoder, paths, "bob", store=store)
    assert not store.audio_path_for("bob").exists()
    with pytest.raises(TooShortError):
        enroll_from_files(encoder, [write_wav(tmp_path, "s.wav", silence(2.0))], "c")
