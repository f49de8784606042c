"""Machine-readable progress (``--progress json``): one JSON object per line on stdout.

Every record has ``stage``, ``done`` and ``total``; training records add ``epoch``,
``epochs``, ``loss`` and ``metrics``. The GUI dialogs read these lines instead of parsing
progress bars or log text.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from typing import Any, TextIO

Report = Callable[[dict[str, Any]], None]


def json_lines(stream: TextIO | None = None) -> Report:
    """A reporter that writes each record as one flushed JSON line (stdout by default)."""

    def report(record: dict[str, Any]) -> None:
        out = stream or sys.stdout
        out.write(json.dumps(_finite(record), separators=(",", ":")) + "\n")
        out.flush()

    return report


def _finite(value: Any) -> Any:
    """NaN/inf become None: strict JSON readers reject them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class StepReporter:
    """Stands in for the tqdm bar ``train_one_epoch`` updates: forwards to ``bar`` and reports
    about ``max_reports`` "train" records per epoch (and always the last step)."""

    def __init__(
        self, bar: Any, report: Report, *, epoch: int, epochs: int, total: int, max_reports: int = 50
    ):
        self.bar = bar
        self.report = report
        self.epoch, self.epochs, self.total = epoch, epochs, total
        self.every = max(1, total // max(1, max_reports))
        self.done = 0
        self.loss: float | None = None

    def update(self, n: int = 1) -> None:
        self.bar.update(n)
        self.done += n
        if self.done % self.every == 0 or self.done >= self.total:
            self.report(
                {"stage": "train", "done": self.done, "total": self.total, "epoch": self.epoch,
                 "epochs": self.epochs, "loss": self.loss, "metrics": {}}
            )  # fmt: skip

    def set_postfix(self, **values: Any) -> None:
        self.bar.set_postfix(**values)
        if "loss" in values:
            self.loss = float(values["loss"])


def epoch_record(rec: dict[str, Any], epochs: int) -> dict[str, Any]:
    """The "epoch" progress record of one history record (after validation)."""
    heads = rec.get("heads", {})
    metrics = {
        "val_loss": rec.get("val_loss"),
        "selection": rec.get("selection"),
        "accuracy": {name: h.get("accuracy") for name, h in heads.items()},
        "macro_f1": {name: h.get("macro_f1") for name, h in heads.items()},
    }
    return {
        "stage": "epoch", "done": rec["epoch"], "total": epochs, "epoch": rec["epoch"],
        "epochs": epochs, "loss": rec.get("train_loss"), "metrics": metrics,
    }  # fmt: skip
