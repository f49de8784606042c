"""Tests for core/inference.py: the SpeakerEncoder facade on synthetic audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SR, save_test_checkpoint, tiny_model_config, tone, voiced, white_noise
from voxgate.core.checkpoint import load_checkpoint
from voxgate.core.config import FeatureConfig
from voxgate.core.errors import CheckpointError, ConfigError, InvalidSamplesError, ProfileError
from voxgate.core.features import log_mel
from voxgate.core.inference import DEFAULT_THRESHOLD, SpeakerEncoder, default_model_path

FEAT = FeatureConfig(n_mels=16, n_fft=512, hop_length=160)
TINY = tiny_model_config(heads=(("authentication", 2), ("identification", 3)))


@pytest.fixture(scope="module")
def enc() -> SpeakerEncoder:
    return SpeakerEncoder.untrained(FEAT, TINY, device="cpu")


@pytest.fixture(scope="module")
def waves() -> np.ndarray:
    return np.stack(
        [voiced(110.0, seconds=1.0), voiced(220.0, seconds=1.0, seed=1), tone(300.0), white_noise()]
    )


def test_untrained_is_seeded_and_leaves_global_rng(waves: np.ndarray) -> None:
    torch.manual_seed(7)
    before = torch.rand(1)
    torch.manual_seed(7)
    a = SpeakerEncoder.untrained(FEAT, TINY, seed=3, device="cpu")
    assert torch.equal(torch.rand(1), before)
    b = SpeakerEncoder.untrained(FEAT, TINY, seed=3, device="cpu")
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != SpeakerEncoder.untrained(FEAT, TINY, seed=4, device="cpu").fingerprint
    np.testing.assert_array_equal(a.embed(waves), b.embed(waves))


def test_attributes(enc: SpeakerEncoder) -> None:
    assert enc.device == torch.device("cpu")
    assert enc.feature_config == FEAT and enc.model_config == TINY
    assert enc.heads == {"authentication": 2, "identification": 3}
    assert enc.threshold == DEFAULT_THRESHOLD and not enc.calibrated
    assert len(enc.fingerprint) == 16


def test_features_match_log_mel(enc: SpeakerEncoder, waves: np.ndarray) -> None:
    f = enc.features(waves)
    assert f.shape == (4, 1 + SR // 160, 16) and f.dtype == torch.float32
    torch.testing.assert_close(f, log_mel(waves, FEAT))
    assert enc.features(waves[0]).shape == (1, 101, 16)
    bad = waves[:1].copy()
    bad[0, 10] = np.nan
    with pytest.raises(InvalidSamplesError):
        enc.features(bad)


def test_embed_shapes_norms_and_determinism(enc: SpeakerEncoder, waves: np.ndarray) -> None:
    e = enc.embed(waves)
    assert e.shape == (4, 12) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(e, enc.embed(waves))
    np.testing.assert_allclose(enc.embed_features(enc.features(waves)), e, atol=1e-6)
    assert enc.embed(waves[0]).shape == (1, 12)
    # int8 activations are scaled per batch, so batching moves embeddings a little ...
    np.testing.assert_allclose(enc.embed(waves, batch_size=1), e, atol=2e-2)
    # ... and not at all in float32.
    flt = SpeakerEncoder.untrained(FEAT, TINY, device="cpu", quantize=False)
    np.testing.assert_allclose(flt.embed(waves, batch_size=1), flt.embed(waves), atol=1e-5)


def test_cpu_encoder_is_quantized_frozen_and_close_to_float(
    enc: SpeakerEncoder, waves: np.ndarray
) -> None:
    flt = SpeakerEncoder.untrained(FEAT, TINY, device="cpu", quantize=False)
    assert enc.quantized and not flt.quantized and flt.net is flt.model
    # The GRU and large linears compute in int8; the saved model stays float and frozen.
    assert type(enc.net.gru).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert type(enc.net.fc1).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert type(enc.net.blocks[0].se.fc1) is torch.nn.Linear  # tiny SE linears stay float
    assert type(enc.model.gru) is torch.nn.GRU
    assert not any(p.requires_grad for p in enc.model.parameters())
    assert enc.fingerprint == flt.fingerprint  # profiles stay compatible
    cos = np.sum(enc.embed(waves) * flt.embed(waves), axis=1)
    assert np.all(cos > 0.99), cos
    mean, _ = enc.verify(waves, flt.embed(waves))
    np.testing.assert_allclose(mean, flt.verify(waves, flt.embed(waves))[0], atol=2e-2)
    with pytest.raises(ConfigError):
        SpeakerEncoder.untrained(FEAT, TINY, device="meta", quantize=True)


def test_stage_clock_counts_features_and_model(waves: np.ndarray) -> None:
    e = SpeakerEncoder.untrained(FEAT, TINY, device="cpu")
    e.verify(waves, e.embed(waves[:1]))
    assert e.clock.calls == {}  # off unless a benchmark switches it on
    e.clock.enabled = True
    e.verify(waves, e.embed(waves[:1]))
    assert e.clock.calls == {"features": 2, "model": 2}
    assert all(v > 0 for v in e.clock.cpu_s.values())


def test_embed_mc(enc: SpeakerEncoder, waves: np.ndarray) -> None:
    m = enc.embed_mc(waves, 6)
    assert m.shape == (6, 4, 12) and m.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(m, axis=2), 1.0, atol=1e-5)
    assert m.std(axis=0).mean() > 1e-3
    with pytest.raises(ValueError):
        enc.embed_mc(waves, 0)


def test_score(enc: SpeakerEncoder, waves: np.ndarray) -> None:
    r = enc.score(waves, "identification")
    assert r.mean.shape == (4, 3) and r.std.shape == (4, 3)
    np.testing.assert_allclose(r.mean.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(r.std == 0)
    assert r.labels == ["0", "1", "2"]
    np.testing.assert_array_equal(r.pred, r.mean.argmax(axis=1))
    rm = enc.score(waves, "identification", mc_passes=8)
    np.testing.assert_allclose(rm.mean.sum(axis=1), 1.0, atol=1e-5)
    assert rm.std.max() > 0 and np.all(rm.std >= 0) and np.all(rm.mean <= 1.0 + 1e-6)
    with pytest.raises(ConfigError):
        enc.score(waves, "nope")


def test_verify(enc: SpeakerEncoder, waves: np.ndarray) -> None:
    e = enc.embed(waves)
    mean, std = enc.verify(waves, 3.0 * e[:2])  # profiles need not be unit norm
    assert mean.shape == (4, 2) and std.shape == (4, 2)
    np.testing.assert_allclose(mean, e @ e[:2].T, atol=1e-5)
    np.testing.assert_allclose(np.diag(mean[:2]), 1.0, atol=1e-5)
    assert np.all(std == 0)
    one, _ = enc.verify(waves, e[0])
    assert one.shape == (4, 1)
    m, s = enc.verify(waves, e[:2], mc_passes=6)
    assert np.all(s >= 0) and s.max() > 0 and np.all(np.abs(m) <= 1 + 1e-5)
    with pytest.raises(ProfileError):
        enc.verify(waves, np.zeros(12))
    with pytest.raises(ProfileError):
        enc.verify(waves, np.ones(7))


def test_from_checkpoint_round_trip(tmp_path: Path, enc: SpeakerEncoder, waves: np.ndarray) -> None:
    path = tmp_path / "m.pt"
    save_test_checkpoint(
        path,
        enc.model,
        FEAT,
        mode="both",
        labels={"authentication": ["outsider", "authorized"], "identification": ["a", "b", "c"]},
        authorized=["a"],
        threshold=0.61,
        calibration={"target_far": 0.01},
        data_fingerprint="x",
    )
    loaded = SpeakerEncoder.from_checkpoint(path, device="cpu")
    assert loaded.threshold == pytest.approx(0.61) and loaded.calibrated
    assert loaded.authorized == ["a"]
    # same weights, but a calibrated threshold: profiles of one do not match the other
    assert loaded.fingerprint != enc.fingerprint
    assert loaded.score(waves, "identification").labels == ["a", "b", "c"]
    np.testing.assert_array_equal(loaded.embed(waves), enc.embed(waves))
    model, meta = load_checkpoint(path)
    assert SpeakerEncoder(model, meta, device="cpu").fingerprint == loaded.fingerprint


def test_default_model_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VOXGATE_MODEL", raising=False)
    repo = Path(__file__).resolve().parents[1]
    assert default_model_path() == repo / "models" / "voxgate-base.pt"
    missing = tmp_path / "none.pt"
    monkeypatch.setenv("VOXGATE_MODEL", str(missing))
    assert default_model_path() == missing
    with pytest.raises(CheckpointError, match="not found"):
        SpeakerEncoder.from_checkpoint()


def test_frozen_cnn_matches_eager_per_shape_and_caps_its_traces(waves: np.ndarray) -> None:
    from voxgate.core.inference import FrozenCNN

    e = SpeakerEncoder.untrained(FEAT, TINY, device="cpu", quantize=False)
    frozen = FrozenCNN(e.model, max_shapes=2)
    feats = e.features(waves)
    with torch.inference_mode():
        for x in (feats, feats[:1], feats[:3]):
            torch.testing.assert_close(frozen(x), e.model.cnn(x), rtol=1e-5, atol=1e-5)
    assert set(frozen.traced) == {(4, 101, 16), (1, 101, 16)}  # the third shape ran eagerly
    assert isinstance(frozen.traced[(1, 101, 16)], torch.jit.ScriptModule)
    # The encoder runs its CNN frozen: the same embeddings as the plain model.
    with torch.inference_mode():
        ref = e.model(feats).numpy()
    np.testing.assert_allclose(e.embed(waves), ref, atol=1e-5)
    assert e.cnn.traced


def test_warm_up_traces_the_live_shape_and_leaves_the_clock() -> None:
    e = SpeakerEncoder.untrained(FEAT, TINY, device="cpu")
    e.clock.enabled = True
    e.warm_up(mc_passes=2)
    assert (1, 1 + SR // 160, 16) in e.cnn.traced and e.clock.calls == {}
    assert e.clock.enabled
