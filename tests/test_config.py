"""Tests of voxgate.training.config: report defaults, strict loading, overrides."""

from __future__ import annotations

import dataclasses
import json

import pytest

from voxgate.core.errors import ConfigError
from voxgate.training.config import (
    TrainConfig,
    apply_overrides,
    load_train_config,
    parse_override,
    save_train_config,
)


def test_defaults_are_the_reports():
    cfg = TrainConfig()
    assert (cfg.lr, cfg.weight_decay, cfg.batch_size) == (1e-3, 1e-4, 256)
    assert (cfg.epochs, cfg.patience, cfg.cosine_t_max) == (30, 5, 50)
    assert (cfg.aam_margin, cfg.aam_scale, cfg.grad_clip) == (0.25, 30.0, 5.0)
    assert cfg.amp is True and cfg.seed == 0 and cfg.target_far == 0.01
    assert cfg.mode == "authentication" and cfg.device == "auto" and cfg.model == {}


def test_unknown_keys_and_wrong_types_are_errors():
    with pytest.raises(ConfigError, match="unknown key.*'epoch'"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig.from_dict({"batch_size": "64"})
    with pytest.raises(ConfigError, match="amp"):
        TrainConfig.from_dict({"amp": 1})
    with pytest.raises(ConfigError, match="pin_memory"):
        TrainConfig.from_dict({"pin_memory": "yes"})
    with pytest.raises(ConfigError, match="num_workers"):
        TrainConfig.from_dict({"num_workers": 1.5})
    with pytest.raises(ConfigError, match="model"):
        TrainConfig.from_dict({"model": [1, 2]})
    assert TrainConfig.from_dict({"lr": 1}).lr == 1.0  # ints are fine for floats


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"mode": "verify"}, "mode"),
        ({"device": "tpu"}, "device"),
        ({"lr": 0.0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"patience": -1}, "patience"),
        ({"target_far": 1.0}, "target_far"),
        ({"model": {"n_mels": 80}}, "n_mels"),
        ({"model": {"heads": []}}, "heads"),
    ],
)
def test_impossible_values_are_errors(changes, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**changes)


def test_parse_override_json_then_string():
    assert parse_override("epochs=10") == (["epochs"], 10)
    assert parse_override("amp=false") == (["amp"], False)
    assert parse_override("device=cpu") == (["device"], "cpu")  # not JSON -> string
    assert parse_override("model.channels=[16,32,64]") == (["model", "channels"], [16, 32, 64])
    assert parse_override("x=a=b") == (["x"], "a=b")
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("epochs")


def test_apply_overrides_nests_without_touching_the_input():
    data = {"model": {"gru_hidden": 64}}
    out = apply_overrides(data, ["model.embed_dim=128", "epochs=2"])
    assert out == {"model": {"gru_hidden": 64, "embed_dim": 128}, "epochs": 2}
    assert data == {"model": {"gru_hidden": 64}}
    with pytest.raises(ConfigError, match="not a mapping"):
        apply_overrides({"epochs": 3}, ["epochs.x=1"])


def test_load_file_then_overrides(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"epochs": 12, "model": {"gru_hidden": 128}, "balance": False}))
    cfg = load_train_config(path, ["epochs=3", "model.gru_layers=1", "mode=both"])
    assert (cfg.epochs, cfg.mode, cfg.balance) == (3, "both", False)
    assert cfg.model == {"gru_hidden": 128, "gru_layers": 1}
    base = load_train_config(None, ["lr=0.01"], base={"epochs": 7})
    assert (base.epochs, base.lr) == (7, 0.01)


def test_bad_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_train_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{epochs: 3")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_train_config(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_train_config(bad)
    bad.write_text('{"epohcs": 3}')
    with pytest.raises(ConfigError, match="unknown key"):
        load_train_config(bad)


def test_save_then_load_roundtrip(tmp_path):
    cfg = TrainConfig(mode="identification", model={"channels": [8, 16, 32]}, pin_memory=True)
    save_train_config(cfg, tmp_path / "config.json")
    again = load_train_config(tmp_path / "config.json")
    assert again == cfg
    assert not list(tmp_path.glob("*.tmp"))


def test_resolved_fills_automatic_settings():
    cfg = TrainConfig(num_workers=0)
    r = cfg.resolved(cuda=True)
    assert (r.pin_memory, r.persistent_workers) == (True, False)
    r = dataclasses.replace(cfg, num_workers=2).resolved(cuda=False)
    assert (r.pin_memory, r.persistent_workers) == (False, True)
    r = TrainConfig(num_workers=2, persistent_workers=False, pin_memory=False).resolved(cuda=True)
    assert (r.pin_memory, r.persistent_workers) == (False, False)


def test_train_command_is_registered():
    from voxgate.cli import build_parser

    args = build_parser().parse_args(
        [
            "train",
            "--data",
            "d.h5",
            "--mode",
            "both",
            "--out",
            "runs/x",
            "--set",
            "epochs=2",
            "--set",
            "lr=0.01",
            "--resume",
            "--init-from",
            "m.pt",
        ]  # fmt: skip
    )
    assert args.mode == "both" and args.overrides == ["epochs=2", "lr=0.01"]
    assert args.resume and str(args.init_from) == "m.pt" and callable(args.func)
