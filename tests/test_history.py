"""Tests for training/history.py: one tag mapping for TensorBoard and history.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_tiny_h5
from voxgate.training.history import BatchLog, epoch_scalars, history_scalars


def _rec(epoch: int, heads: dict, **top) -> dict:
    base = {"epoch": epoch, "train_loss": 1.0, "val_loss": 1.2, "lr": 1e-3,
            "samples_per_s": 100.0, "time_s": 2.0, "selection": 0.7, "heads": heads}  # fmt: skip
    return base | top


HEAD = {"train_acc": 0.8, "accuracy": 0.75, "mc_spread": None, "macro_f1": 0.7,
        "macro_precision": 0.71, "macro_recall": 0.72, "train_loss": 0.9, "loss": 1.1}  # fmt: skip


def test_single_head_tags_have_no_suffix_and_skip_none():
    s = epoch_scalars(_rec(1, {"authentication": HEAD}))
    assert s["epoch/val_acc"] == 0.75 and s["epoch/val_macro_f1"] == 0.7
    assert "epoch/val_mc_spread" not in s  # None when mc_passes = 0
    assert "epoch/train_loss/authentication" not in s and s["epoch/time_s"] == 2.0


def test_several_heads_get_suffixes_and_the_selection_metric():
    s = epoch_scalars(_rec(1, {"authentication": HEAD, "identification": dict(HEAD, accuracy=0.5)}))
    assert s["epoch/val_macro_f1"] == 0.7  # the selection metric, mean of the heads
    assert s["epoch/val_acc/identification"] == 0.5 and s["epoch/val_acc/authentication"] == 0.75
    assert s["epoch/val_loss/identification"] == 1.1 and "epoch/val_acc" not in s


def test_batch_log_forwards_and_keeps_the_last_value_per_step():
    seen = []

    class Writer:
        def add_scalar(self, tag, value, step):
            seen.append((tag, value, step))

    log = BatchLog(Writer())
    log.add_scalar("batch/loss", 2.0, 4)
    log.add_scalar("batch/loss", 1.5, 2)
    log.add_scalar("batch/loss", 1.0, 4)
    assert seen == [("batch/loss", 2.0, 4), ("batch/loss", 1.5, 2), ("batch/loss", 1.0, 4)]
    assert log.record() == {"batch/loss": [[2, 1.5], [4, 1.0]]}


def test_history_scalars_orders_steps_and_a_rerun_epoch_wins():
    h = {"authentication": HEAD}
    records = [_rec(2, h, train_loss=0.5, batches={"batch/loss": [[7, 0.3]]}),
               _rec(1, h, train_loss=0.9, batches={"batch/loss": [[3, 0.6]]}),
               _rec(2, h, train_loss=0.4)]  # fmt: skip
    s = history_scalars(records)
    np.testing.assert_array_equal(s["epoch/train_loss"][0], [1, 2])
    np.testing.assert_allclose(s["epoch/train_loss"][1], [0.9, 0.4])
    np.testing.assert_array_equal(s["batch/loss"][0], [3, 7])


def test_a_training_run_reads_back_through_the_report(tmp_path):
    from conftest import TINY_TRAIN_MODEL
    from voxgate.core.checkpoint import read_checkpoint
    from voxgate.training import train as T
    from voxgate.training.config import TrainConfig
    from voxgate.training.report import read_run_scalars

    cfg = TrainConfig(mode="both", batch_size=16, epochs=2, num_workers=0, model=TINY_TRAIN_MODEL,
                      amp=False, calibrate=False, mc_passes=0, log_every_steps=1, torch_threads=1,
                      device="cpu", max_steps_per_epoch=3)  # fmt: skip
    result = T.run_training(make_tiny_h5(tmp_path / "tiny.h5"), tmp_path / "run", cfg)
    s = read_run_scalars(tmp_path / "run")
    np.testing.assert_array_equal(s["epoch/val_acc/identification"][0], [1, 2])
    np.testing.assert_array_equal(s["batch/loss"][0], [1, 2, 3, 4, 5, 6])
    assert s["epoch/val_macro_f1"][1][-1] == pytest.approx(result.history[-1]["selection"])
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [r["batches"]["batch/loss"][0][0] for r in saved] == [1, 4]
    metrics = read_checkpoint(result.best_path)["metrics"]  # checkpoints keep epoch numbers only
    assert "batches" not in metrics and metrics["epoch"] == result.best_epoch
