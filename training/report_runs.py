"""The training section of ``voxgate report``: scalar series of each run's TensorBoard events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.core.errors import ConfigError

from .plots import Scalars, fig_batch_curves, fig_training_curves, fig_val_accuracy_mc, split_tag
from .report_html import ReportBuilder

__all__ = ["read_run_scalars", "training_section", "check_run_dir"]


def _tb_dir(run_dir: Path) -> Path:
    for cand in (run_dir / "tb", run_dir):
        if cand.is_dir() and any(p.name.startswith("events.out.tfevents") for p in cand.iterdir()):
            return cand
    raise ConfigError(f"{run_dir}: no TensorBoard event files in it or in its tb/ folder")


def read_run_scalars(run_dir: str | Path) -> Scalars:
    """All scalar series of a run (``run_dir/tb`` or ``run_dir`` itself holding event files).

    Duplicate steps (e.g. after a resume) keep the last written value. Raises ConfigError when
    the folder or its event files are missing.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: run folder not found")
    tb = _tb_dir(run_dir)
    by_tag: dict[str, dict[int, float]] = {}
    for events in sorted(tb.glob("events.out.tfevents*")):  # sorted = written order
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            for ev in acc.Scalars(tag):
                by_tag.setdefault(tag, {})[int(ev.step)] = float(ev.value)
    series: Scalars = {}
    for tag, by_step in by_tag.items():
        steps = sorted(by_step)
        series[tag] = (
            np.array(steps, dtype=np.int64),
            np.array([by_step[k] for k in steps], dtype=np.float64),
        )
    return series


def _training_rows(runs: Mapping[str, Scalars]) -> list[list[str]]:
    rows = []
    for run, scalars in runs.items():
        heads = sorted({split_tag(t)[1] for t in scalars if t.startswith("epoch/val_")}) or [""]
        for head in heads:

            def get(base: str, head: str = head, scalars: Scalars = scalars) -> Any:
                return scalars.get(f"{base}/{head}" if head else base) or scalars.get(base)

            f1, acc, vloss = get("epoch/val_macro_f1"), get("epoch/val_acc"), get("epoch/val_loss")
            sps = get("epoch/samples_per_s")
            epochs = max(
                (len(v[0]) for k, v in scalars.items() if k.startswith("epoch/")), default=0
            )
            best = f"{f1[1].max():.4f} (epoch {int(f1[0][f1[1].argmax()])})" if f1 else "–"
            rows.append(
                [
                    run,
                    head or "–",
                    str(epochs),
                    best,
                    f"{acc[1][-1]:.4f}" if acc else "–",
                    f"{vloss[1].min():.4f}" if vloss else "–",
                    f"{sps[1].mean():,.0f}" if sps else "–",
                ]
            )
    return rows


def training_section(rep: ReportBuilder, run_dirs: Sequence[Path]) -> None:
    runs: dict[str, Scalars] = {}
    for d in run_dirs:
        name = d.name if d.name != "tb" else d.parent.name
        while name in runs:
            name += "'"
        runs[name] = read_run_scalars(d)
    rep.add(
        "Training",
        "training_curves",
        fig_training_curves(runs),
        "Training curves",
        "Loss, accuracy, learning rate and macro-F1 per epoch; training solid, validation dashed. "
        "Runs in mode 'both' show one series per head (authentication, identification). Validation "
        "uses held-out recordings (split by recording), so it is not optimistic.",
    )
    if any(split_tag(t)[0] == "epoch/val_acc" for s in runs.values() for t in s):
        has_spread = any(split_tag(t)[0] == "epoch/val_mc_spread" for s in runs.values() for t in s)
        rep.add(
            "Training",
            "val_accuracy_mc",
            fig_val_accuracy_mc(runs),
            "Validation accuracy with MC-dropout spread",
            "Validation accuracy per epoch; error bars and band: ± the mean standard deviation of "
            "the MC-dropout passes (epoch/val_mc_spread)."
            + ("" if has_spread else " No MC spread was logged, so no error bars are drawn."),
        )
    else:
        rep.missing.append("validation accuracy with MC error bars: no epoch/val_acc logged")
    fig = fig_batch_curves(runs)
    if fig is not None:
        rep.add(
            "Training",
            "batch_curves",
            fig,
            "Batch-level curves",
            "Per-batch training loss and accuracy (faint) with a moving average (solid).",
        )
    rep.table(
        "Training",
        "Runs",
        [
            "run",
            "head",
            "epochs",
            "best val macro-F1",
            "final val acc",
            "min val loss",
            "samples/s",
        ],
        _training_rows(runs),
    )
    rep.numbers["runs"] = list(runs)


def check_run_dir(run_dir: Path) -> None:
    """ConfigError unless ``run_dir`` is a folder holding TensorBoard event files."""
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: run folder not found")
    _tb_dir(run_dir)
