"""DistributedDataParallel training: two CPU processes (gloo) launched by torchrun."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_TRAIN_MODEL, make_tiny_h5
from voxgate.core.checkpoint import load_checkpoint


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    data = make_tiny_h5(tmp_path / "tiny.h5")
    out = tmp_path / "ddp"
    sets = ["batch_size=8", "epochs=2", "num_workers=0", "max_steps_per_epoch=3", "device=cpu",
            "calibrate=false", "mc_passes=2", "torch_threads=1", "log_every_steps=1",
            "amp=false", f"model={json.dumps(TINY_TRAIN_MODEL)}"]  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "voxgate.cli", "train", "--data", str(data), "--mode", "both", "--out", str(out),
           "--no-progress"] + [x for s in sets for x in ("--set", s)]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]

    for name in ("best_model.pt", "last_model.pt"):
        model, meta = load_checkpoint(out / name)
        assert set(model.heads) == {"authentication", "identification"}
        assert not any(k.startswith("module.") for k in model.state_dict())
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    for rec in history:
        assert math.isfinite(rec["train_loss"]) and math.isfinite(rec["val_loss"])
        # all-reduced over both ranks: 2 processes x 3 steps x 8 rows
        assert rec["train_samples"] == 2 * 3 * 8
    # only rank 0 writes: one summary on stdout, one TensorBoard event file per run
    assert proc.stdout.count("epochs: 2") == 1
    assert len(list(Path(out / "tb").glob("events.out.tfevents.*"))) == 1
