"""The one path from waveform to decision: windows, profiles, replay, CLI and pipeline agree."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import silence, small_model_config, voiced, write_wav
from voxgate.cli import main
from voxgate.core.config import FeatureConfig
from voxgate.core.enroll import enroll_from_waves
from voxgate.core.errors import ProfileError
from voxgate.core.frontend import Frontend
from voxgate.core.inference import SpeakerEncoder
from voxgate.core.pipeline import Pipeline, PipelineConfig
from voxgate.core.profiles import ProfileStore
from voxgate.core.scoring import make_profile, seconds_to_samples, unit, windows
from voxgate.core.sources import FileSource

SR = 16000
OTHER = dict(f0=300.0, formants=(400.0, 2600.0, 3300.0))


def _speech_with_pauses(seed: int) -> np.ndarray:
    parts = [silence(0.7), voiced(seconds=2.2, seed=seed), silence(0.4)]
    parts += [voiced(seconds=2.6, seed=seed + 1), silence(0.3)]
    return np.concatenate(parts)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_windows_are_exactly_what_the_live_front_end_produces(seed) -> None:
    fc = FeatureConfig()
    wave = _speech_with_pauses(seed)
    offline = windows(wave, fc, hop_s=0.5)
    fe = Frontend(fc, 0.5, 2, 0.1)
    rng = np.random.default_rng(seed)
    live, pos = [], 0
    while pos < wave.size:
        n = int(rng.integers(1, 3000))
        live += fe.push(wave[pos : pos + n])
        pos += n
    assert [s for s, _, _ in live] == offline.starts.tolist()
    assert [r for _, _, r in live] == pytest.approx(offline.speech_ratio.tolist(), abs=0)
    for (_, w, _), ref in zip(live, offline.waves):
        np.testing.assert_array_equal(w, ref)
    assert 0 < offline.speech_ratio.min() < 0.5 < offline.speech_ratio.max()


def test_make_profile_and_units() -> None:
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((5, 8)).astype(np.float32) * 3
    p = make_profile(emb)
    expected = unit(unit(emb).mean(axis=0))
    np.testing.assert_allclose(p, expected, atol=1e-6)
    assert np.linalg.norm(p) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ProfileError):
        make_profile(np.zeros((0, 8), np.float32))
    with pytest.raises(ProfileError):
        make_profile(np.stack([emb[0], -emb[0]]))  # cancels out
    assert seconds_to_samples(0.5, SR) == 8000 and seconds_to_samples(1e-9, SR) == 1


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """An untrained encoder and a store with 'ann' (enrolled from speech) and 'bob'."""
    encoder = SpeakerEncoder.untrained(model_config=small_model_config())
    store = ProfileStore(tmp_path_factory.mktemp("store"))
    enroll_from_waves(encoder, [voiced(seconds=7.0, seed=1)], "ann", store=store)
    enroll_from_waves(encoder, [voiced(seconds=7.0, seed=3, **OTHER)], "bob", store=store)
    return encoder, store


@pytest.mark.parametrize("seed", [5, 8])
def test_replay_gives_the_verdict_and_score_of_a_live_run(setup, seed) -> None:
    encoder, store = setup
    wave = _speech_with_pauses(seed)
    cfg = PipelineConfig(threshold=0.999, lockout=False)
    replayed = Pipeline(encoder, store, cfg).replay(wave)
    assert set(replayed) == {"ann", "bob"}
    for name, verdict in replayed.items():
        pipe = Pipeline(encoder, store, PipelineConfig(threshold=0.999, lockout=False, user=name))
        list(pipe.run(FileSource(wave)))
        live = pipe.attempt.verdict
        assert (live.state, live.who, live.n_windows) == (
            verdict.state,
            verdict.who,
            verdict.n_windows,
        )
        assert live.t_s == verdict.t_s and live.score == pytest.approx(verdict.score, abs=1e-5)


def test_verify_file_reports_the_score_replay_saw(setup, tmp_path, monkeypatch, capsys) -> None:
    encoder, store = setup
    monkeypatch.setattr(SpeakerEncoder, "untrained", classmethod(lambda cls, **kw: encoder))
    wave = _speech_with_pauses(11)
    path = write_wav(tmp_path, "probe.wav", wave, subtype="FLOAT")
    replayed = Pipeline(encoder, store, PipelineConfig(threshold=0.9, lockout=False)).replay(wave)
    for name, verdict in replayed.items():
        cmd = ["verify", "--untrained", "--profiles", str(store.root), "--threshold", "0.9"]
        code = main([*cmd, "--user", name, "--json", "--scores", "--no-lockout", "--file", str(path)])
        row = json.loads(capsys.readouterr().out)
        assert row["score"] == pytest.approx(verdict.score, abs=1e-5)
        assert row["decision"] == verdict.state.value and code == (0 if row["who"] else 3)


def test_replay_of_a_recording_without_speech_is_undecided(setup) -> None:
    encoder, store = setup
    replayed = Pipeline(encoder, store, PipelineConfig(lockout=False)).replay(silence(4.0))
    assert replayed == {"ann": None, "bob": None}
