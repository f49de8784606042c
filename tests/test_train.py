"""Tests of voxgate.training.train on a tiny synthetic HDF5 dataset (conftest.make_tiny_h5)."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import AUTHORIZED, SPEAKERS, TINY_TRAIN_MODEL, make_tiny_h5
from voxgate.core.checkpoint import load_checkpoint
from voxgate.core.errors import CheckpointError, ConfigError
from voxgate.training import train as T
from voxgate.training.config import TrainConfig


def tiny_config(**changes) -> TrainConfig:
    base = dict(
        mode="authentication", batch_size=16, epochs=2, num_workers=0, model=TINY_TRAIN_MODEL,
        lr=1e-2, amp=False, calibrate=False, mc_passes=4, mc_batches=1, log_every_steps=2,
        torch_threads=1, device="cpu",
    )  # fmt: skip
    base.update(changes)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def tiny_h5(tmp_path_factory) -> Path:
    return make_tiny_h5(tmp_path_factory.mktemp("data") / "tiny.h5")


def _scalars(tb_dir: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


# ---------------------------------------------------------------------------- end to end


def test_two_epoch_smoke_run_learns_logs_and_checkpoints(tiny_h5, tmp_path):
    out = tmp_path / "run"
    cfg = tiny_config(calibrate=True)
    result = T.run_training(tiny_h5, out, cfg)

    assert result.epochs_completed == 2 and not result.interrupted
    losses = [rec["train_loss"] for rec in result.history]
    assert all(math.isfinite(x) for x in losses)
    assert losses[1] < losses[0]
    # the per-speaker templates make authorized vs outsider separable
    assert result.history[-1]["heads"]["authentication"]["accuracy"] > 0.6

    scalars = _scalars(out / "tb")
    expected = {"batch/loss", "batch/acc", "batch/lr", "epoch/train_loss", "epoch/val_loss",
                "epoch/train_acc", "epoch/val_acc", "epoch/val_macro_f1",
                "epoch/val_macro_precision", "epoch/val_macro_recall", "epoch/val_mc_spread",
                "epoch/lr", "epoch/samples_per_s", "epoch/time_s"}  # fmt: skip
    assert expected <= set(scalars)
    assert len(scalars["epoch/val_macro_f1"]) == 2
    assert scalars["epoch/val_macro_f1"][-1] == pytest.approx(result.history[-1]["selection"])
    assert all(0.0 <= s < 0.5 for s in scalars["epoch/val_mc_spread"])
    # 144 train rows in batches of 16, full-length and short chunks apart (each bucket's
    # ragged tail dropped), logged every 2 steps
    import h5py

    with h5py.File(tiny_h5, "r") as f:
        train_lengths = f["lengths"][:][f["split"][:] == 0]
    n_full = int((train_lengths >= train_lengths.max()).sum())
    steps = n_full // 16 + (len(train_lengths) - n_full) // 16
    assert len(train_lengths) == 144 and 7 <= steps <= 9
    assert len(scalars["batch/loss"]) == 2 * steps // 2
    assert [h["train_samples"] for h in result.history] == [16 * steps] * 2

    best, meta = load_checkpoint(result.best_path)
    last, last_meta = load_checkpoint(result.last_path)
    assert meta["mode"] == "authentication"
    assert meta["labels"] == {
        "authentication": ["outsider", "authorized"],
        "identification": SPEAKERS,
    }
    assert meta["authorized"] == AUTHORIZED
    assert meta["data_fingerprint"] == "synthetic-0"
    assert meta["train_config"]["batch_size"] == 16
    assert meta["metrics"]["epoch"] == result.best_epoch
    assert last_meta["metrics"]["epoch"] == 2
    assert meta["model_config"]["n_mels"] == 16 and meta["model_config"]["gru_hidden"] == 16
    # closed-set calibration stored its figures; the client's threshold waits for
    # `voxgate calibrate --verification` (decisions replayed on held-out voices)
    assert result.calibration is not None and meta["threshold"] is None
    assert meta["calibration"]["closed_set"]["split"] == "val"

    saved = json.loads((out / "config.json").read_text())
    assert saved["mode"] == "authentication" and saved["pin_memory"] is False
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    state = torch.load(out / "train_state.pt", weights_only=True)
    assert state["tracker"]["epoch"] == 2 and state["tracker"]["step"] == 2 * steps


def test_both_mode_has_two_heads_and_suffixed_tags(tiny_h5, tmp_path):
    cfg = tiny_config(mode="both", epochs=1, max_steps_per_epoch=3, id_loss_weight=0.5)
    result = T.run_training(tiny_h5, tmp_path / "run", cfg, progress=True)
    rec = result.history[0]
    f1 = [rec["heads"][h]["macro_f1"] for h in ("authentication", "identification")]
    assert rec["selection"] == pytest.approx(np.mean(f1))
    model, meta = load_checkpoint(result.best_path)
    assert set(model.heads) == {"authentication", "identification"}
    assert model.config.head_classes("identification") == len(SPEAKERS)
    scalars = _scalars(tmp_path / "run" / "tb")
    for head in ("authentication", "identification"):
        for tag in ("epoch/val_macro_f1", "epoch/val_acc", "epoch/train_acc", "epoch/val_loss",
                    "epoch/val_mc_spread", "batch/acc"):  # fmt: skip
            assert f"{tag}/{head}" in scalars
    assert scalars["epoch/val_macro_f1"] == pytest.approx([rec["selection"]])
    # the total is the weighted sum of the heads' validation losses
    heads = rec["heads"]
    total = heads["authentication"]["loss"] + 0.5 * heads["identification"]["loss"]
    assert rec["val_loss"] == pytest.approx(total)


def test_resume_continues_exactly(tiny_h5, tmp_path):
    cfg2 = tiny_config(epochs=2, max_steps_per_epoch=4)
    straight = T.run_training(tiny_h5, tmp_path / "a", cfg2)
    T.run_training(tiny_h5, tmp_path / "b", dataclasses.replace(cfg2, epochs=1))
    resumed = T.run_training(tiny_h5, tmp_path / "b", cfg2, resume=True)

    assert resumed.epochs_completed == 2
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    wa = load_checkpoint(straight.last_path)[0].state_dict()
    wb = load_checkpoint(resumed.last_path)[0].state_dict()
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-5, atol=1e-6, msg=key)
    assert resumed.history[1]["train_loss"] == pytest.approx(straight.history[1]["train_loss"])


def test_existing_run_needs_resume_and_resume_needs_a_run(tiny_h5, tmp_path):
    cfg = tiny_config(epochs=1, max_steps_per_epoch=1, mc_passes=0)
    T.run_training(tiny_h5, tmp_path / "run", cfg)
    with pytest.raises(ConfigError, match="--resume"):
        T.run_training(tiny_h5, tmp_path / "run", cfg)
    with pytest.raises(ConfigError, match="nothing to resume"):
        T.run_training(tiny_h5, tmp_path / "empty", cfg, resume=True)
    with pytest.raises(ConfigError, match="mode"):
        T.run_training(
            tiny_h5, tmp_path / "run", dataclasses.replace(cfg, mode="both"), resume=True
        )


def test_amp_on_cpu_is_bf16_without_scaler_and_finite(tiny_h5, tmp_path):
    cpu = torch.device("cpu")
    assert T.amp_dtype(cpu) == torch.bfloat16
    assert not T.make_scaler(cpu, amp=True).is_enabled()
    cfg = tiny_config(amp=True, epochs=1, max_steps_per_epoch=3)
    result = T.run_training(tiny_h5, tmp_path / "run", cfg)
    rec = result.history[0]
    assert math.isfinite(rec["train_loss"]) and math.isfinite(rec["val_loss"])
    assert load_checkpoint(result.last_path)[1]["train_config"]["amp"] is True


def test_keyboard_interrupt_saves_last_and_state(tiny_h5, tmp_path, monkeypatch):
    from voxgate.training.h5data import H5ChunkDataset

    # Ctrl-C while the loader reads row 50: epoch 1 reads 4 x 8 train + 8 val rows
    calls = {"n": 0}
    original = H5ChunkDataset.__getitem__

    def getitem(self, i):
        calls["n"] += 1
        if calls["n"] == 50:
            raise KeyboardInterrupt
        return original(self, i)

    monkeypatch.setattr(H5ChunkDataset, "__getitem__", getitem)
    cfg = tiny_config(
        epochs=3, batch_size=8, max_steps_per_epoch=4, mc_passes=0, limit_val_batches=1
    )
    result = T.run_training(tiny_h5, tmp_path / "run", cfg)
    assert result.interrupted and result.epochs_completed == 1
    assert (tmp_path / "run" / "last_model.pt").is_file()
    state = torch.load(tmp_path / "run" / "train_state.pt", weights_only=True)
    assert state["tracker"]["epoch"] == 1
    monkeypatch.setattr(H5ChunkDataset, "__getitem__", original)
    resumed = T.run_training(tiny_h5, tmp_path / "run", cfg, resume=True)
    assert resumed.epochs_completed == 3 and not resumed.interrupted


def test_init_from_copies_encoder_and_recreates_heads(tiny_h5, tmp_path):
    auth = T.run_training(tiny_h5, tmp_path / "auth", tiny_config(epochs=1, max_steps_per_epoch=2))
    cfg = tiny_config(mode="identification", epochs=1, max_steps_per_epoch=1, lr=1e-12)
    heads = T.heads_for_mode("identification", SPEAKERS, cfg)
    model = T.SpeakerNet(T.build_model_config(cfg, 16, heads))
    assert T._init_from(model, auth.best_path) == ["identification"]
    src = load_checkpoint(auth.best_path)[0].state_dict()
    for key, value in model.state_dict().items():
        if not key.startswith("heads."):
            torch.testing.assert_close(value, src[key], msg=key)
    # whole run: fine-tuning with a negligible lr keeps the encoder
    tuned = T.run_training(tiny_h5, tmp_path / "ft", cfg, init_from=auth.best_path)
    out = load_checkpoint(tuned.best_path)[0].state_dict()
    torch.testing.assert_close(out["fc2.weight"], src["fc2.weight"], rtol=1e-4, atol=1e-6)
    # another architecture cannot be loaded
    other = T.SpeakerNet(T.build_model_config(
        dataclasses.replace(cfg, model={**TINY_TRAIN_MODEL, "embed_dim": 8}), 16, heads))  # fmt: skip
    with pytest.raises(CheckpointError, match="encoder differs"):
        T._init_from(other, auth.best_path)


# ---------------------------------------------------------------------------- pure helpers


def test_heads_for_mode():
    cfg = TrainConfig(id_loss_weight=0.3)
    (auth,) = T.heads_for_mode("authentication", SPEAKERS, cfg)
    assert (auth.name, auth.n_classes, auth.target) == ("authentication", 2, "label")
    (ident,) = T.heads_for_mode("identification", SPEAKERS, cfg)
    assert (ident.n_classes, ident.target, ident.weight) == (6, "speaker", 1.0)
    both = T.heads_for_mode("both", SPEAKERS, cfg)
    assert [h.weight for h in both] == [1.0, 0.3]


def test_build_model_config_uses_data_and_overrides():
    cfg = TrainConfig(model={"gru_hidden": 128}, aam_margin=0.2)
    mc = T.build_model_config(cfg, 80, T.heads_for_mode("both", SPEAKERS, cfg))
    assert (mc.n_mels, mc.gru_hidden, mc.aam_margin) == (80, 128, 0.2)
    assert mc.heads == (("authentication", 2), ("identification", 6))
    with pytest.raises(ConfigError, match="unknown"):
        T.build_model_config(TrainConfig(model={"gru_hiden": 1}), 64, [])


def test_balance_weights_give_equal_class_mass():
    labels = np.array([0] * 30 + [1] * 10, dtype=np.int8)
    w = T.balance_weights(labels)
    assert w[labels == 0].sum() == pytest.approx(0.5)
    assert w[labels == 1].sum() == pytest.approx(0.5)
    assert T.balance_weights(np.zeros(5, dtype=np.int8)).sum() == pytest.approx(1.0)


def test_weighted_sampler_is_balanced_reproducible_and_sharded():
    labels = np.array([0] * 900 + [1] * 100)
    w = T.balance_weights(labels)
    s = T.WeightedEpochSampler(w, seed=3)
    first = list(s)
    assert len(first) == len(s) == 1000
    assert 0.42 < np.mean(labels[first]) < 0.58
    assert list(s) == first  # same epoch, same draw
    s.set_epoch(1)
    assert list(s) != first
    r0 = T.WeightedEpochSampler(w, seed=3, rank=0, world_size=2)
    r1 = T.WeightedEpochSampler(w, seed=3, rank=1, world_size=2)
    assert len(r0) == len(r1) == 500
    interleaved = [x for pair in zip(r0, r1) for x in pair]
    assert interleaved == first


def test_rng_state_roundtrip_is_weights_only_safe(tmp_path):
    T.seed_everything(5)
    state = T.capture_rng_state()
    T.atomic_torch_save(state, tmp_path / "s.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    T.restore_rng_state(torch.load(tmp_path / "s.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_mc_spread_zero_without_dropout_and_positive_with_it():
    cfg = TrainConfig(model={**TINY_TRAIN_MODEL})
    heads = T.heads_for_mode("authentication", SPEAKERS, cfg)
    torch.manual_seed(0)
    feats = torch.randn(4, 8, 16) * 10
    y = torch.tensor([0, 1, 0, 1])
    lengths = torch.full((4,), 8)
    with_mc = T.SpeakerNet(T.build_model_config(cfg, 16, heads)).eval()
    spread = T.mc_spread(with_mc, feats, lengths, "authentication", y, passes=8)
    assert spread.shape == (4,) and float(spread.mean()) > 0
    no_mc_cfg = dataclasses.replace(cfg, model={**TINY_TRAIN_MODEL, "mc_dropout": 0.0})
    no_mc = T.SpeakerNet(T.build_model_config(no_mc_cfg, 16, heads)).eval()
    spread0 = T.mc_spread(no_mc, feats, lengths, "authentication", y, passes=8)
    assert float(spread0.max()) < 1e-5


def test_cli_train_end_to_end(tiny_h5, tmp_path, capsys):
    from voxgate.cli import main

    out = tmp_path / "cli"
    sets = ["batch_size=16", "epochs=1", "num_workers=0", "max_steps_per_epoch=2",
            "calibrate=false", "device=cpu", "mc_passes=0", "torch_threads=1",
            f"model={json.dumps(TINY_TRAIN_MODEL)}"]  # fmt: skip
    argv = ["train", "--data", str(tiny_h5), "--mode", "identification", "--out", str(out),
            "--no-progress"] + [x for s in sets for x in ("--set", s)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "best epoch 1 identification" in printed and str(out / "best_model.pt") in printed
    assert json.loads((out / "config.json").read_text())["model"]["gru_hidden"] == 16
    # resume reuses the saved config (mode included) and runs one more epoch
    assert main(["train", "--data", str(tiny_h5), "--out", str(out), "--resume", "--no-progress",
                 "--set", "epochs=2"]) == 0  # fmt: skip
    assert json.loads((out / "config.json").read_text())["epochs"] == 2
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 2 and history[0]["heads"]["identification"]["mc_spread"] is None
    # a typo in a key is an error, reported by the CLI
    assert main(argv[:5] + ["--out", str(tmp_path / "x"), "--set", "epoch=3"]) == 1
    assert "unknown key" in capsys.readouterr().err


def test_a_run_validates_the_dataset_once_and_calibration_once(tiny_h5, tmp_path, monkeypatch):
    from voxgate.training import h5data

    calls = []
    real = h5data.read_meta
    monkeypatch.setattr(h5data, "read_meta", lambda *a, **k: calls.append(a) or real(*a, **k))
    T.run_training(tiny_h5, tmp_path / "run", tiny_config(epochs=1, calibrate=True, max_steps_per_epoch=2))
    assert len(calls) == 2  # the run's set-up, then calibration (was 6: each Dataset re-read it)


@pytest.mark.slow
def test_compiled_cnn_computes_what_eager_does_and_saves_the_same_weights():
    """TrainConfig.compile: torch.compile of the CNN only changes how it runs."""
    from voxgate.core.model import ModelConfig, SpeakerNet
    from voxgate.training.train_setup import ready_for_training

    torch.manual_seed(0)
    cfg = ModelConfig(**{**TINY_TRAIN_MODEL, "n_mels": 16, "heads": (("identification", 3),)})
    eager = SpeakerNet(cfg)
    compiled = SpeakerNet(cfg)
    compiled.load_state_dict(eager.state_dict())
    ready_for_training(eager, torch.device("cpu"), compile_cnn=False)
    ready_for_training(compiled, torch.device("cpu"), compile_cnn=True)
    assert compiled.cnn is not eager.cnn and "cnn" in vars(compiled)
    assert list(compiled.state_dict()) == list(eager.state_dict())
    x = torch.randn(4, 12, 16) * 10 - 40
    eager.train()
    compiled.train()
    a, b = eager.cnn(x), compiled.cnn(x)
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    a.square().mean().backward()
    b.square().mean().backward()
    g_a = eager.blocks[0].conv.weight.grad
    torch.testing.assert_close(compiled.blocks[0].conv.weight.grad, g_a, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("drop_last", [True, False])
def test_length_buckets_keep_short_rows_apart_and_cover_the_epoch(drop_last):
    from voxgate.training.train_setup import LengthBucketBatches, WeightedEpochSampler

    rng = np.random.default_rng(0)
    full = rng.random(500) > 0.1  # ~10 % short rows, as in the report's data
    sampler = WeightedEpochSampler(np.ones(500), seed=3)
    sampler.set_epoch(2)
    batches = list(LengthBucketBatches(sampler, full, 16, drop_last))
    assert len(batches) == len(LengthBucketBatches(sampler, full, 16, drop_last))
    whole = batches if drop_last else batches[:-1]
    assert all(len(b) == 16 and len({bool(full[i]) for i in b}) == 1 for b in whole)
    drawn = list(sampler)
    used = [i for b in batches for i in b]
    if drop_last:
        assert len(drawn) - len(used) < 2 * 16 and set(used) <= set(drawn)
    else:
        assert sorted(used) == sorted(drawn)  # every draw exactly once
    # within a bucket the sampler's order is kept
    full_order = [i for i in drawn if full[i]]
    assert [i for b in batches for i in b if full[i]] == full_order[: sum(full[i] for i in used)]


def test_a_tiny_epoch_stays_one_mixed_batch():
    from voxgate.training.train_setup import LengthBucketBatches

    full = np.array([True, False, True, True])
    batches = list(LengthBucketBatches(range(4), full, 8, drop_last=False))
    assert batches == [[0, 2, 3, 1]]  # no batch of one row (BatchNorm), nothing lost
