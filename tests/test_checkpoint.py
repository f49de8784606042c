"""Tests for core/checkpoint.py: round trip, strict loading, refusals, atomic updates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import tiny_model_config
from voxgate.core.checkpoint import (
    SCHEMA_VERSION,
    clean_state_dict,
    load_checkpoint,
    model_fingerprint,
    read_checkpoint,
    save_checkpoint,
    update_checkpoint,
)
from voxgate.core.config import FeatureConfig
from voxgate.core.errors import CheckpointError
from voxgate.core.model import SpeakerNet

TINY = tiny_model_config(heads=(("authentication", 2),))
FEAT = FeatureConfig(n_mels=16, n_fft=512, hop_length=160)


def _net(seed: int = 0) -> SpeakerNet:
    torch.manual_seed(seed)
    net = SpeakerNet(TINY)
    net.train()
    with torch.no_grad():  # non-trivial BatchNorm running stats
        net(-80 * torch.rand(4, 10, 16))
    return net.eval()


def _save(path: Path, model: nn.Module, **over) -> None:
    kw = dict(
        feature_config=FEAT,
        mode="authentication",
        labels={"authentication": ["outsider", "authorized"]},
        authorized=["spk1", "spk2"],
        threshold=None,
        calibration={},
        metrics={"val": {"macro_f1": np.float32(0.75)}},
        train_config={"lr": 1e-3, "epochs": 2},
        data_fingerprint="abc123",
    )
    kw.update(over)
    save_checkpoint(path, model, **kw)


def test_round_trip_rebuilds_identical_model(tmp_path: Path) -> None:
    net = _net()
    path = tmp_path / "m.pt"
    _save(path, net)
    raw = torch.load(path, weights_only=True)  # plain types only
    assert raw["schema_version"] == SCHEMA_VERSION
    assert set(raw) == {
        "schema_version",
        "model_config",
        "feature_config",
        "mode",
        "labels",
        "authorized",
        "threshold",
        "calibration",
        "metrics",
        "train_config",
        "data_fingerprint",
        "model_state",
        "created",
    }
    assert raw["metrics"]["val"]["macro_f1"] == pytest.approx(0.75)
    assert type(raw["metrics"]["val"]["macro_f1"]) is float

    model, meta = load_checkpoint(path)
    assert model.config == TINY and not model.training
    assert "model_state" not in meta
    assert FeatureConfig.from_dict(meta["feature_config"]) == FEAT
    assert meta["labels"]["authentication"] == ["outsider", "authorized"]
    assert meta["authorized"] == ["spk1", "spk2"] and meta["data_fingerprint"] == "abc123"
    x = -80 * torch.rand(2, 15, 16)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), net(x), atol=0, rtol=0)
        emb = net(x)
        torch.testing.assert_close(
            model.head_probs(emb, "authentication"), net.head_probs(emb, "authentication")
        )
    assert model_fingerprint(model) == model_fingerprint(net)


def test_wrapped_model_is_saved_unwrapped(tmp_path: Path) -> None:
    net = _net()
    wrapped = nn.DataParallel(net)  # keys gain "module."
    assert next(iter(wrapped.state_dict())).startswith("module.")
    path = tmp_path / "w.pt"
    _save(path, wrapped)
    raw = read_checkpoint(path)
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in raw["model_state"])
    model, _ = load_checkpoint(path)
    assert model_fingerprint(model) == model_fingerprint(net)
    prefixed = {f"_orig_mod.module.{k}": v for k, v in net.state_dict().items()}
    assert set(clean_state_dict(prefixed)) == set(net.state_dict())


def test_fingerprint_tracks_weights() -> None:
    a, b = _net(0), _net(1)
    fa = model_fingerprint(a)
    assert len(fa) == 16 and int(fa, 16) >= 0
    assert fa == model_fingerprint(a.state_dict())
    assert fa != model_fingerprint(b)
    with torch.no_grad():
        a.fc2.bias[0] += 1e-3
    assert model_fingerprint(a) != fa


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="not found") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_refuses_pickled_objects(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    # A full pickle of a module (arbitrary classes): weights_only loading must refuse it.
    torch.save({"schema_version": 1, "model": _net()}, path)
    with pytest.raises(CheckpointError, match="weights-only") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_refuses_non_checkpoints(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="schema_version"):
        load_checkpoint(other)


def test_wrong_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    _save(path, _net())
    raw = torch.load(path, weights_only=True)
    raw["schema_version"] = 99
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="schema version 99"):
        load_checkpoint(path)


def test_strict_loading_rejects_mismatched_weights(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    _save(path, _net())
    raw = torch.load(path, weights_only=True)
    raw["model_state"].pop("fc2.bias")
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="fc2.bias"):
        load_checkpoint(path)
    # A config that does not match the weights (different GRU width) is refused too.
    raw = torch.load(path, weights_only=True)
    raw["model_config"]["gru_hidden"] = 32
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(path)


def test_update_checkpoint_rewrites_metadata_only(tmp_path: Path) -> None:
    net = _net()
    path = tmp_path / "m.pt"
    _save(path, net)
    update_checkpoint(
        path, threshold=np.float64(0.42), calibration={"target_far": 0.01, "cos_1s": 0.3}
    )
    model, meta = load_checkpoint(path)
    assert meta["threshold"] == pytest.approx(0.42) and type(meta["threshold"]) is float
    assert meta["calibration"] == {"target_far": 0.01, "cos_1s": 0.3}
    assert meta["data_fingerprint"] == "abc123"
    assert model_fingerprint(model) == model_fingerprint(net)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp file left behind
    with pytest.raises(CheckpointError, match="cannot update"):
        update_checkpoint(path, model_state={})
    with pytest.raises(CheckpointError, match="not a plain type"):
        update_checkpoint(path, metrics={"x": object()})
    assert load_checkpoint(path)[1]["metrics"] == meta["metrics"]  # failed update wrote nothing


def test_save_refuses_mismatched_features(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="n_mels"):
        _save(tmp_path / "m.pt", _net(), feature_config=FeatureConfig())  # 64 mels vs 16
    assert not (tmp_path / "m.pt").exists()


def test_to_plain_for_metadata_and_for_json() -> None:
    from voxgate.core.checkpoint import to_plain

    t = torch.ones(2)
    value = {1: (np.float32(0.5), np.arange(2)), "p": Path("a/b"), "t": t, "n": np.float64("nan")}
    meta = to_plain(value)
    assert meta[1] == [0.5, [0, 1]] and meta["p"] == "a/b" and meta["t"] is t
    assert type(meta[1][0]) is float and np.isnan(meta["n"])
    js = to_plain({**value, "b": np.bool_(True)}, json_safe=True)
    assert js == {"1": [0.5, [0, 1]], "p": "a/b", "t": [1.0, 1.0], "n": None, "b": True}
    assert type(js["b"]) is bool and type(js["1"][1][0]) is int
    with pytest.raises(TypeError, match=r"value\.x: object is not a plain type"):
        to_plain({"x": object()}, json_safe=True)
    with pytest.raises(TypeError, match="not a str or int"):
        to_plain({(1, 2): 3})


def test_fingerprint_covers_threshold_and_calibration(tmp_path: Path) -> None:
    from voxgate.core.errors import ConfigError
    from voxgate.core.gate import cosine_threshold
    from voxgate.core.inference import SpeakerEncoder

    path = tmp_path / "m.pt"
    _save(path, _net(), threshold=0.6, calibration={"target_far": 0.01})
    before = SpeakerEncoder.from_checkpoint(path).fingerprint
    update_checkpoint(path, threshold=0.55)
    assert SpeakerEncoder.from_checkpoint(path).fingerprint != before
    update_checkpoint(path, threshold=0.6, calibration={"target_far": 0.5})
    assert SpeakerEncoder.from_checkpoint(path).fingerprint != before
    update_checkpoint(path, threshold=0.6, calibration={"target_far": 0.01})
    assert SpeakerEncoder.from_checkpoint(path).fingerprint == before
    # A threshold outside the cosine range is refused, never applied.
    update_checkpoint(path, threshold=-1.0)
    with pytest.raises(ConfigError, match="calibrated threshold"):
        cosine_threshold(SpeakerEncoder.from_checkpoint(path))


def test_config_bounds_are_checked_before_anything_is_allocated(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    _save(path, _net())
    ckpt = torch.load(path, weights_only=True)
    ckpt["model_config"]["heads"] = [["identification", 3_000_000]]
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="exceed"):
        load_checkpoint(path)
    # Within the bounds but not matching the stored weights: refused from the shapes alone.
    ckpt["model_config"]["heads"] = [["identification", 90_000]]
    torch.save(ckpt, path)
    built = []
    import voxgate.core.checkpoint as C

    real = C.SpeakerNet

    def spy(cfg):
        built.append(torch.empty(0).device.type)  # the default device while building
        return real(cfg)

    C.SpeakerNet = spy
    try:
        with pytest.raises(CheckpointError, match="expected"):
            load_checkpoint(path)
    finally:
        C.SpeakerNet = real
    assert built == ["meta"]  # only the shape probe ran, on the meta device
