"""The streaming pipeline on synthetic audio through FileSource, with a random (seeded) model."""

from __future__ import annotations

import dataclasses
import math
import stat

import numpy as np
import pytest

from conftest import SHARED_DATA, silence, small_model_config, voiced, white_noise
from voxgate.core.decision import windows_for_decision
from voxgate.core.errors import ConfigError, DeviceLostError
from voxgate.core.events import (
    DecisionEvent,
    DecisionState,
    EnrolledEvent,
    EnrollProgressEvent,
    LevelEvent,
    ScoreEvent,
    SpectrogramEvent,
    StatusEvent,
)
from voxgate.core.inference import SpeakerEncoder
from voxgate.core.live_config import DEFAULT_HOP_S, LIVE_BLOCK_S
from voxgate.core.pipeline import Pipeline, PipelineConfig
from voxgate.core.profiles import Profile, ProfileStore
from voxgate.core.sources import FileSource

SR = 16000
OTHER = dict(f0=300.0, formants=(400.0, 2600.0, 3300.0))  # a very different "voice"
K_DEFAULT = windows_for_decision(3.0, 1.0, DEFAULT_HOP_S)  # 3: 1-s windows every 1 s


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return SpeakerEncoder.untrained(model_config=small_model_config())


def of(events, cls):
    return [e for e in events if isinstance(e, cls)]


def enroll(encoder, store, name="ann", seconds=6.0, target_s=5.0, **kw):
    pipe = Pipeline(encoder, store, PipelineConfig(enroll_target_s=target_s))
    events = list(pipe.enroll(FileSource(voiced(seconds=seconds, seed=1)), name, **kw))
    return pipe, events


@pytest.fixture(scope="module")
def ann(encoder, tmp_path_factory) -> Profile:
    """'ann', enrolled once from a voiced signal at f0 = 120 Hz."""
    _, events = enroll(encoder, ProfileStore(tmp_path_factory.mktemp("ann")))
    return events[-1].profile


@pytest.fixture
def store(ann, tmp_path) -> ProfileStore:
    """A fresh store holding a copy of 'ann'."""
    s = ProfileStore(tmp_path)
    s.save(Profile(**{**ann.__dict__}))
    return s


def test_config_validation() -> None:
    with pytest.raises(ConfigError):
        PipelineConfig(mode="nope")
    with pytest.raises(ConfigError):
        PipelineConfig(hop_s=0)
    with pytest.raises(ConfigError):
        PipelineConfig(mc_passes=1)
    # Values a settings file or the command line may hold: a clear error, never an
    # OverflowError (inf) or a 58-TiB allocation (hop 1e9).
    for bad in (dict(hop_s=math.inf), dict(hop_s=1e9), dict(hop_s=math.nan),
                dict(decision_s=math.inf), dict(decision_s=1e6), dict(uncertain_std=math.inf),
                dict(enroll_target_s=math.inf), dict(mc_passes=100_000)):  # fmt: skip
        with pytest.raises(ConfigError, match="must be"):
            PipelineConfig(**bad)
    assert PipelineConfig(hop_s=10.0, decision_s=60.0).hop_s == 10.0  # the bounds themselves


def test_enroll_reaches_target_and_writes_private_profile(encoder, tmp_path) -> None:
    store = ProfileStore(tmp_path)
    _, events = enroll(encoder, store)
    progress = of(events, EnrollProgressEvent)
    fractions = [e.fraction for e in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert progress[-1].done and not any(e.done for e in progress[:-1])
    done = events[-1]
    assert isinstance(done, EnrolledEvent) and 5.0 <= done.profile.speech_s < 5.5  # <= 1 hop over
    path = store.path_for("ann")
    assert done.path == str(path) and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not store.audio_path_for("ann").exists()  # audio is opt-in
    assert of(events, StatusEvent)[0].message == "started"


def test_enroll_too_little_speech_is_an_error_event(encoder, tmp_path) -> None:
    pipe = Pipeline(encoder, ProfileStore(tmp_path))
    events = list(pipe.enroll(FileSource(silence(4.0)), "ann"))
    assert "needs at least" in events[-1].error and not of(events, EnrolledEvent)
    assert any("no speech detected" in e.feedback for e in of(events, EnrollProgressEvent))


def test_windows_scores_decisions_and_latency(encoder, store) -> None:
    wave = np.concatenate([silence(1.0), voiced(seconds=4.0, seed=2), silence(1.0)])
    cfg = PipelineConfig(threshold=0.5, stop_on_decision=False, hop_s=0.5)
    pipe = Pipeline(encoder, store, cfg)
    events = list(pipe.run(FileSource(wave)))
    scores = of(events, ScoreEvent)
    # 11 windows (starts 0.0 .. 5.0 s); the VAD's onset/hangover put speech at ~1.06-5.3 s,
    # so the 8 windows starting at 1.0 .. 4.5 s hold >= 50 % speech.
    assert [e.t_start_s for e in scores] == [1.0 + 0.5 * i for i in range(8)]
    assert all(e.speech_ratio >= 0.5 and set(e.scores) == {"ann"} for e in scores)
    decisions = of(events, DecisionEvent)
    assert len(decisions) == 8  # one per scored window (the trailing silence is < the gap)
    # No decision on less speech than K = 5 windows (3 s): the threshold's calibration amount.
    assert [d.state for d in decisions[:4]] == [DecisionState.LISTENING] * 4
    assert decisions[4].state == DecisionState.ACCEPTED and decisions[4].who == "ann"
    assert decisions[-1].n_windows == 5  # K = 5 for 3 s, 1 s windows, 0.5 s hop
    assert len(pipe.latencies_s) == 8 and all(0 < t < 5 for t in pipe.latencies_s)
    spec = of(events, SpectrogramEvent)
    n_cols = sum(e.columns.shape[0] for e in spec)
    assert spec[0].columns.shape[1] == encoder.feature_config.n_mels
    assert 6 * SR // 512 - 8 <= n_cols <= 6 * SR // 512  # columns tile the stream
    levels = of(events, LevelEvent)
    assert levels[0].rms_dbfs == -120.0 and not levels[0].speech
    assert max(e.rms_dbfs for e in levels) > -30 and any(e.speech for e in levels)
    final = of(events, StatusEvent)[-1]
    assert final.message == "finished" and not final.running
    assert final.blocks == int(np.ceil(wave.size / round(LIVE_BLOCK_S * SR)))


@pytest.mark.parametrize("block_s", [0.032, 0.25])
def test_decisions_do_not_depend_on_the_block_size(encoder, store, block_s) -> None:
    """Live sources hand over LIVE_BLOCK_S blocks; any other cut gives the same windows,
    scores and decisions (the VAD and the windower read one ring buffer)."""
    wave = np.concatenate([silence(0.7), voiced(seconds=4.0, seed=2), silence(0.6),
                           voiced(seconds=2.5, seed=7)])  # fmt: skip
    cfg = PipelineConfig(threshold=0.5, stop_on_decision=False, lockout=False)

    def run(size: float) -> list[tuple]:
        events = list(Pipeline(encoder, store, cfg).run(FileSource(wave, block_s=size)))
        scored = [(e.t_start_s, round(e.scores["ann"], 6)) for e in of(events, ScoreEvent)]
        return scored + [(d.state, d.n_windows) for d in of(events, DecisionEvent)]

    live = run(LIVE_BLOCK_S)
    assert len(live) > 4 and live == run(block_s)


def test_a_hidden_display_changes_no_decision(encoder, store) -> None:
    """Nobody looking (a minimized window): no level or spectrogram events are computed,
    and the windows, scores and decisions are those of a run with the display."""
    wave = np.concatenate([silence(0.5), voiced(seconds=4.0, seed=2)])
    cfg = PipelineConfig(threshold=0.5, stop_on_decision=False, lockout=False)
    shown, hidden = Pipeline(encoder, store, cfg), Pipeline(encoder, store, cfg)
    hidden.show_display(False)
    with_display, without = list(shown.run(FileSource(wave))), list(hidden.run(FileSource(wave)))
    assert of(with_display, SpectrogramEvent) and of(with_display, LevelEvent)
    assert not of(without, SpectrogramEvent) and not of(without, LevelEvent)
    for cls in (ScoreEvent, DecisionEvent):
        assert of(with_display, cls) == of(without, cls) and of(without, cls)
    hidden.show_display(True)  # shown again: the next run draws
    assert of(list(hidden.run(FileSource(wave))), SpectrogramEvent)


def test_same_voice_accepted_other_rejected(encoder, store) -> None:
    same = voiced(seconds=4.0, seed=5)
    other = voiced(seconds=4.0, seed=6, **OTHER)
    # Random weights: scores are high for everything, so the threshold is set from the
    # measured scores of the enrolled voice (its lowest window, minus a margin).
    probe = Pipeline(encoder, store, PipelineConfig(threshold=-0.999, stop_on_decision=False))
    same_scores = [e.best_score for e in of(probe.run(FileSource(same)), ScoreEvent)]
    other_scores = [e.best_score for e in of(probe.run(FileSource(other)), ScoreEvent)]
    gap = min(same_scores) - max(other_scores)
    # The random model does tell them apart: the gap dwarfs the same voice's own variation.
    assert gap > 5 * (max(same_scores) - min(same_scores)) and gap > 1e-3
    threshold = min(same_scores) - 0.25 * (min(same_scores) - max(other_scores))
    pipe = Pipeline(encoder, store, PipelineConfig(threshold=threshold, lockout=False))
    last_same = of(pipe.run(FileSource(same)), DecisionEvent)[-1]
    last_other = of(pipe.run(FileSource(other)), DecisionEvent)[-1]
    assert last_same.state == DecisionState.ACCEPTED and last_same.who == "ann"
    assert last_other.state == DecisionState.REJECTED and last_other.who is None


def test_mc_dropout_gives_a_spread_and_can_be_uncertain(encoder, store) -> None:
    pipe = Pipeline(encoder, store, PipelineConfig(mc_passes=4, threshold=0.0, uncertain_std=0.0))
    events = list(pipe.run(FileSource(voiced(seconds=3.0, seed=5))))
    scores = of(events, ScoreEvent)
    assert scores and all(e.best_spread > 0 for e in scores)
    assert of(events, DecisionEvent)[-1].state == DecisionState.UNCERTAIN


def test_incompatible_profiles_are_skipped_with_a_message(encoder, store) -> None:
    emb = store.get("ann").embedding
    store.save(Profile(name="old", embedding=emb, model_fingerprint="0" * 16))
    pipe = Pipeline(encoder, store, PipelineConfig(mode="identification", threshold=0.0))
    events = list(pipe.run(FileSource(voiced(seconds=3.0, seed=2))))
    assert any("'old'" in e.message and "re-enroll" in e.message for e in of(events, StatusEvent))
    assert all(set(e.scores) == {"ann"} for e in of(events, ScoreEvent))
    # Asking for that profile by name is an error, not a silent comparison.
    pipe = Pipeline(encoder, store, PipelineConfig(user="old"))
    events = list(pipe.run(FileSource(voiced(seconds=3.0))))
    assert len(events) == 1 and "another model" in events[0].error


def test_authentication_uses_authorized_profiles_only(encoder, store) -> None:
    store.set_authorized("ann", False)
    pipe = Pipeline(encoder, store, PipelineConfig(threshold=0.0))
    events = list(pipe.run(FileSource(voiced(seconds=3.0, seed=5))))
    assert any("no authorized" in e.message for e in of(events, StatusEvent))
    assert of(events, DecisionEvent)[-1].state == DecisionState.REJECTED


def test_head_modes_need_their_speakers_enrolled_and_authorized(encoder, tmp_path) -> None:
    store = ProfileStore(tmp_path)
    pipe = Pipeline(encoder, store, PipelineConfig(mode="head-authentication"))
    events = list(pipe.run(FileSource(voiced(seconds=2.0))))
    assert len(events) == 1 and "no trained authentication head" in events[0].error
    cfg = PipelineConfig(
        mode="head-identification", threshold=0.01, stop_on_decision=False, hop_s=0.5
    )
    # The head names training speakers "0", "1", "2": none is enrolled, so it is refused.
    events = list(Pipeline(encoder, store, cfg).run(FileSource(voiced(seconds=2.5))))
    assert len(events) == 1 and "not available" in events[0].error
    emb = np.ones(encoder.model_config.embed_dim, np.float32)
    store.save(Profile("1", emb, model_fingerprint=encoder.fingerprint))
    store.save(Profile("2", emb, authorized=False, model_fingerprint=encoder.fingerprint))
    events = list(Pipeline(encoder, store, cfg).run(FileSource(voiced(seconds=3.5))))
    scores = of(events, ScoreEvent)
    assert len(scores) == 6 and all(set(e.scores) == {"0", "1", "2"} for e in scores)
    assert all(sum(e.scores.values()) == pytest.approx(1.0, abs=1e-4) for e in scores)
    for d in of(events, DecisionEvent):
        # Only the enrolled, authorized "1" can ever be accepted.
        assert d.state != DecisionState.ACCEPTED or d.who == "1"
        assert d.mode == "head-identification"


class FailingSource(FileSource):
    """A file source whose device 'disappears' once, after ``fail_after`` blocks."""

    def __init__(self, wave, fail_after: int) -> None:
        super().__init__(wave, block_s=0.032)
        self.fail_after = fail_after
        self.failed = False
        self.stopped = 0

    def read(self, timeout_s: float = 0.1):
        if not self.failed and self._blocks == self.fail_after:
            self.failed = True
            raise DeviceLostError("USB Mic disappeared")
        return super().read(timeout_s)

    def stop(self) -> None:
        self.stopped += 1
        super().stop()


def test_device_failure_ends_cleanly_and_a_new_run_works(encoder, store) -> None:
    src = FailingSource(voiced(seconds=3.0, seed=2), fail_after=40)
    pipe = Pipeline(encoder, store, PipelineConfig(threshold=0.0, hop_s=0.5))
    events = list(pipe.run(src))
    last = events[-1]
    assert isinstance(last, StatusEvent) and last.error == "USB Mic disappeared"
    assert not last.running and last.blocks == 40 and src.stopped == 1
    events = list(pipe.run(src))  # run() starts the source again
    assert of(events, StatusEvent)[-1].message == "done"  # the attempt ended at its decision
    assert len(of(events, ScoreEvent)) == 5


def test_stop_and_update_config_between_windows(encoder, store) -> None:
    pipe = Pipeline(encoder, store, PipelineConfig(threshold=0.0, stop_on_decision=False))
    seen = []
    for ev in pipe.run(FileSource(voiced(seconds=6.0, seed=2))):
        if isinstance(ev, ScoreEvent):
            seen.append(ev.threshold)
            if len(seen) == 2:
                pipe.update_config(threshold=0.999)  # nothing can pass now
            if len(seen) == 5:
                pipe.stop()
    assert seen == [0.0, 0.0, 0.999, 0.999, 0.999]
    assert pipe.config.threshold == 0.999
    with pytest.raises(ConfigError):
        pipe.update_config(mode="bad")


def _speaker_files(manifest, speaker: str) -> list:
    import csv

    with open(manifest) as fh:
        rows = [
            r
            for r in csv.DictReader(fh)
            if r["subset"] == "test-clean" and float(r["duration_s"]) >= 6.0
        ]
    return sorted(SHARED_DATA / r["path"] for r in rows if r["speaker"] == speaker)


@pytest.mark.integration
def test_real_speech_enrolled_speaker_accepted_other_rejected(tmp_path) -> None:
    from voxgate.core.enroll import enroll_from_files
    from voxgate.core.inference import default_model_path

    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    if not default_model_path().is_file():
        pytest.skip(f"no trained model at {default_model_path()}")
    encoder = SpeakerEncoder.from_checkpoint()
    files_a = _speaker_files(SHARED_DATA / "manifest.csv", "1089")
    files_b = _speaker_files(SHARED_DATA / "manifest.csv", "1320")
    store = ProfileStore(tmp_path)
    enroll_from_files(encoder, files_a[:4], "A", store=store)
    pipe = Pipeline(encoder, store, PipelineConfig(lockout=False))
    for path, expected in [(p, "A") for p in files_a[-3:]] + [(p, None) for p in files_b[:3]]:
        list(pipe.run(FileSource(path)))
        want = DecisionState.ACCEPTED if expected else DecisionState.REJECTED
        verdict = pipe.attempt.verdict
        assert verdict.state == want and verdict.who == expected, path.name
        assert verdict.n_windows == K_DEFAULT  # decided on exactly K windows


def test_noise_only_stream_has_no_accepted_decision_without_profiles(encoder, tmp_path) -> None:
    pipe = Pipeline(encoder, ProfileStore(tmp_path), PipelineConfig(mode="identification"))
    events = list(pipe.run(FileSource(white_noise(3.0, amp=0.2))))
    assert any("no voice profile" in e.message for e in of(events, StatusEvent))
    assert all(d.state != DecisionState.ACCEPTED for d in of(events, DecisionEvent))


def test_a_shorter_decision_window_than_calibrated_is_raised_to_it(
    encoder, store, monkeypatch
) -> None:
    """Settings (or a tampered settings file) asking for 1-s decisions do not apply the
    checkpoint's threshold to less speech than it was calibrated on (3 s, K = 5)."""
    monkeypatch.setattr(encoder, "calibration", {"decision_s": 3.0})
    wave = voiced(seconds=4.0, seed=2)
    cfg = PipelineConfig(decision_s=1.0, stop_on_decision=False, lockout=False, hop_s=0.5)
    events = list(Pipeline(encoder, store, cfg).run(FileSource(wave)))
    decisions = of(events, DecisionEvent)
    assert [d.state for d in decisions[:4]] == [DecisionState.LISTENING] * 4
    assert decisions[4].state != DecisionState.LISTENING and decisions[4].n_windows == 5
    notes = [e.message for e in of(events, StatusEvent) if "decision window raised" in e.message]
    assert notes == ["decision window raised from 1 s to 3 s of speech: the model's threshold "
                     "was calibrated on 3 s"]  # fmt: skip
    # Replays (calibration, the benchmarks) follow the same rule.
    verdict = Pipeline(encoder, store, cfg).replay(wave)["ann"]
    assert verdict is not None and verdict.n_windows == 5
    # An explicit threshold is the caller's own calibration: its span is kept.
    own = dataclasses.replace(cfg, threshold=0.5)
    first = of(Pipeline(encoder, store, own).run(FileSource(wave)), DecisionEvent)[0]
    assert first.state != DecisionState.LISTENING and first.n_windows == 1


def test_a_hop_longer_than_the_window_never_decides_on_one_window(encoder, store) -> None:
    """--hop-s 5 used to make K = 1: a "3-s" decision on one second of speech, accepted at a
    threshold calibrated for three. Now K = 3 windows; 4-s gaps between them exceed the
    aggregator's silence gap, so nothing is ever decided."""
    wave = voiced(seconds=12.0, seed=2)
    cfg = PipelineConfig(hop_s=5.0, threshold=0.0, stop_on_decision=False, lockout=False)
    decisions = of(Pipeline(encoder, store, cfg).run(FileSource(wave)), DecisionEvent)
    assert len(decisions) == 3  # windows at 0, 5 and 10 s
    assert all(d.state == DecisionState.LISTENING and d.n_windows == 1 for d in decisions)
