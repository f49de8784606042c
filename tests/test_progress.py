"""``--progress json`` of ``voxgate dataset build`` and ``voxgate train``: one JSON object
per line on stdout (training.progress)."""

from __future__ import annotations

import io
import json
import math

from conftest import TINY_TRAIN_MODEL, make_tiny_h5, write_voice_folders
from voxgate.cli import main
from voxgate.training.progress import StepReporter, epoch_record, json_lines


def json_records(text: str) -> list[dict]:
    return [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]


def test_json_lines_are_strict_json_one_per_line():
    out = io.StringIO()
    report = json_lines(out)
    report({"stage": "train", "done": 1, "total": 2, "loss": math.nan, "metrics": {"a": [math.inf]}})
    report({"stage": "epoch", "done": 2, "total": 2})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == {
        "stage": "train", "done": 1, "total": 2, "loss": None, "metrics": {"a": [None]}
    }  # fmt: skip


def test_step_reporter_throttles_and_reports_the_last_step():
    class Bar:
        n = 0

        def update(self, k):
            self.n += k

        def set_postfix(self, **kw):
            pass

    records: list[dict] = []
    bar = Bar()
    rep = StepReporter(bar, records.append, epoch=3, epochs=5, total=205, max_reports=50)
    for i in range(205):
        if i % 10 == 0:
            rep.set_postfix(loss=f"{1.0 / (i + 1):.3f}")
        rep.update(1)
    assert bar.n == 205
    assert [r["done"] for r in records] == list(range(4, 205, 4)) + [205]
    assert records[-1] | {"loss": 0} == {
        "stage": "train", "done": 205, "total": 205, "epoch": 3, "epochs": 5, "loss": 0,
        "metrics": {},
    }  # fmt: skip
    assert records[-1]["loss"] == 0.005  # set at step 201


def test_epoch_record_carries_validation_metrics():
    rec = {"epoch": 2, "train_loss": 0.5, "val_loss": 0.7, "selection": 0.6,
           "heads": {"authentication": {"accuracy": 0.9, "macro_f1": 0.6}}}  # fmt: skip
    r = epoch_record(rec, 10)
    assert (r["stage"], r["done"], r["total"], r["epoch"], r["loss"]) == ("epoch", 2, 10, 2, 0.5)
    assert r["metrics"]["accuracy"] == {"authentication": 0.9}
    assert r["metrics"]["val_loss"] == 0.7


def test_dataset_build_progress_json_counts_every_file(tmp_path, capsys):
    corpus = write_voice_folders(tmp_path / "c", (("ann", 220.0, 2), ("ben", 110.0, 3)), 1.6)
    rc = main(["dataset", "build", str(corpus), "--out", str(tmp_path / "d.h5"), "--authorized",
               "ann", "--workers", "1", "--augment", "none", "--progress", "json"])  # fmt: skip
    assert rc == 0
    records = json_records(capsys.readouterr().out)
    assert [(r["stage"], r["done"], r["total"]) for r in records] == [
        ("files", i, 5) for i in range(1, 6)
    ]


def test_train_progress_json_steps_epochs_and_metrics(tmp_path, capsys):
    data = make_tiny_h5(tmp_path / "tiny.h5")
    sets = ["batch_size=16", "epochs=2", "num_workers=0", "max_steps_per_epoch=3",
            "calibrate=false", "device=cpu", "mc_passes=0", "torch_threads=1",
            f"model={json.dumps(TINY_TRAIN_MODEL)}"]  # fmt: skip
    argv = ["train", "--data", str(data), "--mode", "authentication", "--out",
            str(tmp_path / "run"), "--progress", "json"] + [x for s in sets for x in ("--set", s)]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    records = json_records(captured.out)
    steps = [(r["epoch"], r["done"], r["total"]) for r in records if r["stage"] == "train"]
    assert steps == [(1, 1, 3), (1, 2, 3), (1, 3, 3), (2, 1, 3), (2, 2, 3), (2, 3, 3)]
    epochs = [r for r in records if r["stage"] == "epoch"]
    assert [(r["done"], r["total"]) for r in epochs] == [(1, 2), (2, 2)]
    assert all(r["loss"] > 0 for r in epochs)
    assert 0.0 <= epochs[-1]["metrics"]["accuracy"]["authentication"] <= 1.0
    assert all(isinstance(r["loss"], float) for r in records if r["stage"] == "train")
    assert "it/s" not in captured.err  # no tqdm bar in json mode
