"""The training section of ``voxgate report``: the scalar series of each run's history.json."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from voxgate.core.errors import ConfigError

from .history import history_scalars
from .plots import Scalars, fig_batch_curves, fig_training_curves, fig_val_accuracy_mc, split_tag
from .report_html import ReportBuilder

__all__ = ["read_run_scalars", "training_section", "check_run_dir"]


def read_run_scalars(run_dir: str | Path) -> Scalars:
    """All scalar series of a run, read from its ``history.json`` (tags as in history.py).

    A step written twice (e.g. after a resume) keeps the last value. Raises ConfigError when
    the folder or its history.json is missing or unreadable.
    """
    path = check_run_dir(Path(run_dir))
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable training history ({exc})") from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) and "epoch" in r for r in records):
        raise ConfigError(f"{path}: not a training history (a list of epoch records)")
    return history_scalars(records)


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


def check_run_dir(run_dir: Path) -> Path:
    """The run's history.json; ConfigError when the folder or the file is missing."""
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: run folder not found")
    path = run_dir / "history.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no history.json (written by voxgate train after each epoch)")
    return path
