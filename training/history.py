"""The scalar series of a training run, written once: which tag each history.json field
becomes (train logs them to TensorBoard, ``voxgate report`` reads them back from history.json).

Epoch tags (x = the record's ``epoch``): ``epoch/train_loss``, ``epoch/val_loss``, ``epoch/lr``,
``epoch/samples_per_s``, ``epoch/time_s``; per head ``epoch/train_acc``, ``epoch/val_acc``,
``epoch/val_mc_spread``, ``epoch/val_macro_{f1,precision,recall}``. With several heads these
carry a ``/<head>`` suffix, per-head ``train_loss``/``val_loss`` are added and the plain
``epoch/val_macro_f1`` is the selection metric. ``epoch/val_mc_spread`` is the mean over val
chunks of the std of the true class's probability over ``mc_passes`` MC-dropout passes (absent
when mc_passes is 0); ``epoch/lr`` is after the epoch's scheduler step; ``samples_per_s`` is
training samples / training seconds; ``time_s`` is train + validation seconds.

Batch tags (x = optimizer step, every ``log_every_steps`` steps): ``batch/loss`` (total
training loss of the step), ``batch/acc`` (training accuracy, arg-max of the margin-free
logits; ``/<head>`` with several heads), ``batch/lr``. They are kept in each record's
``batches``: {tag: [[step, value], ...]}.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["head_tag", "epoch_scalars", "BatchLog", "history_scalars"]

_HEAD_KEYS = {
    "train_acc": "train_acc", "val_acc": "accuracy", "val_mc_spread": "mc_spread",
    "val_macro_f1": "macro_f1", "val_macro_precision": "macro_precision",
    "val_macro_recall": "macro_recall",
}  # fmt: skip


def head_tag(base: str, head: str, multi: bool) -> str:
    """TensorBoard tag: ``base/head`` when several heads train, else ``base``."""
    return f"{base}/{head}" if multi else base


def epoch_scalars(rec: dict[str, Any]) -> dict[str, float]:
    """{tag: value} of one history record's epoch-level numbers (None values left out)."""
    heads = rec.get("heads") or {}
    multi = len(heads) > 1
    out = {f"epoch/{k}": rec.get(k) for k in ("train_loss", "val_loss", "lr", "samples_per_s", "time_s")}
    if multi:
        out["epoch/val_macro_f1"] = rec.get("selection")
    for name, h in heads.items():
        pairs = dict(_HEAD_KEYS)
        if multi:
            pairs |= {"train_loss": "train_loss", "val_loss": "loss"}
        for tag, key in pairs.items():
            out[head_tag(f"epoch/{tag}", name, multi)] = h.get(key)
    return {k: float(v) for k, v in out.items() if v is not None}


class BatchLog:
    """Stands in for the TensorBoard writer of one epoch's training loop: forwards each scalar
    to ``writer`` (may be None) and keeps it for the epoch's history record."""

    def __init__(self, writer: Any | None):
        self.writer = writer
        self.series: dict[str, dict[int, float]] = {}

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step)
        self.series.setdefault(tag, {})[int(step)] = float(value)

    def record(self) -> dict[str, list[list[float]]]:
        """{tag: [[step, value], ...]} in step order (plain JSON)."""
        return {t: [[s, v] for s, v in sorted(d.items())] for t, d in self.series.items()}


def history_scalars(records: Sequence[dict[str, Any]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every series of a run's history.json: {tag: (steps int64 (K,), values float64 (K,))}.

    A step written twice (e.g. after a resume) keeps the last value."""
    by_tag: dict[str, dict[int, float]] = {}
    for rec in records:
        for tag, value in epoch_scalars(rec).items():
            by_tag.setdefault(tag, {})[int(rec["epoch"])] = value
        for tag, rows in (rec.get("batches") or {}).items():
            for step, value in rows:
                by_tag.setdefault(tag, {})[int(step)] = float(value)
    return {
        tag: (np.array(sorted(d), dtype=np.int64), np.array([d[k] for k in sorted(d)], dtype=np.float64))
        for tag, d in by_tag.items()
    }
