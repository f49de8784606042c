"""The figures and CSV tables ``voxgate evaluate`` writes beside metrics.json."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voxgate.core.fileio import atomic_write

from .eval_metrics import AUTH_LABELS

__all__ = ["save_figures"]

if TYPE_CHECKING:
    from .evaluate import EvaluationResult


def _write_csv(
    path: Path, matrix: list[list[int]], labels: list[str], col_labels: list[str]
) -> Path:
    import csv
    import io

    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["true \\ predicted", *col_labels])
    for lab, row in zip(labels, matrix):
        w.writerow([lab, *row])
    return atomic_write(path, buf.getvalue())


def save_figures(result: EvaluationResult, out_dir: str | Path) -> list[Path]:
    """Write DET curves, confusion matrices (PNG + CSV) and MC-dropout plots; returns paths."""
    from .plots import fig_confusion, fig_det_families, fig_mc, save_png

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = result.metrics
    written: list[Path] = []
    for level in ("chunk", "decision"):
        curves = {}
        for (family, lev), (scores, y) in result.auth_scores.items():
            if lev == level and (y == 1).any() and (y == 0).any():
                curves[family] = (scores[y == 1], scores[y == 0])
        if curves:
            what = "1-s chunk" if level == "chunk" else f"{m['decision_s']:g}-s decision"
            title = f"DET, {m['split']} split, per {what}"
            written.append(save_png(fig_det_families(curves, title), out / f"det_{level}.png"))
    for family in ("cosine", "heads"):
        fm = m.get(family) or {}
        for level, am in (fm.get("authentication") or {}).items():
            if "confusion" in am:
                stem = f"confusion_auth_{family}_{level}"
                written.append(
                    _write_csv(out / f"{stem}.csv", am["confusion"], AUTH_LABELS, AUTH_LABELS)
                )
                title = f"authentication ({family}, {level}, thr {am['threshold']:.3f})"
                fig = fig_confusion(np.array(am["confusion"]), AUTH_LABELS, title)
                written.append(save_png(fig, out / f"{stem}.png"))
        for level, im in (fm.get("identification") or {}).items():
            stem = f"confusion_ident_{family}_{level}"
            cols = im["confusion_labels"]
            written.append(_write_csv(out / f"{stem}.csv", im["confusion"], cols[:-1], cols))
            top1 = 100 * (im["top1_accuracy"] or 0)
            title = f"identification ({family}, {level}), top-1 {top1:.1f} %"
            fig = fig_confusion(np.array(im["confusion"]), cols[:-1], title, col_labels=cols)
            written.append(save_png(fig, out / f"{stem}.png"))
    if result.mc:
        entries = {f"{fam} {lev}": v for (fam, lev), v in result.mc.items()}
        written.append(save_png(fig_mc(entries), out / "mc_dropout.png"))
    return written
