"""Training curves over epochs and batches, several runs and heads overlaid."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .style import RUN_COLORS, new_figure

__all__ = ["Scalars", "split_tag", "fig_training_curves", "fig_val_accuracy_mc", "fig_batch_curves"]

Scalars = dict[str, tuple[np.ndarray, np.ndarray]]  # tag -> (steps int64 (K,), values float64 (K,))


def split_tag(tag: str) -> tuple[str, str]:
    """``epoch/val_acc/identification`` -> (``epoch/val_acc``, ``identification``); plain -> (tag, "")."""
    parts = tag.split("/")
    if len(parts) >= 3:
        return "/".join(parts[:2]), "/".join(parts[2:])
    return tag, ""


def _variants(
    runs: Mapping[str, Scalars], base: str
) -> list[tuple[str, str, tuple[np.ndarray, np.ndarray]]]:
    """(run, head, series) for every tag ``base`` or ``base/<head>`` across runs."""
    found = []
    for run, scalars in runs.items():
        for tag in sorted(scalars):
            b, head = split_tag(tag)
            if b == base:
                found.append((run, head, scalars[tag]))
    return found


def _series_label(run: str, head: str, multi_run: bool, scalars: Scalars | None = None) -> str:
    """Legend text: run name (when several runs), head; a multi-head run's plain tag = "combined"."""
    parts = [run] if multi_run else []
    if head:
        parts.append(head)
    elif scalars is not None and any(split_tag(t)[1] for t in scalars):
        parts.append("combined")
    return " · ".join(parts)


def _series_colors(runs: Mapping[str, Scalars]) -> dict[tuple[str, str], str]:
    """One colour per (run, head) pair, stable across figures."""
    keys: list[tuple[str, str]] = []
    for run, scalars in runs.items():
        heads = sorted({split_tag(t)[1] for t in scalars if t.startswith("epoch/")})
        keys += [(run, h) for h in heads or [""]]
    return {k: RUN_COLORS[i % len(RUN_COLORS)] for i, k in enumerate(keys)}


_PANELS = (
    ("loss", "epoch/train_loss", "epoch/val_loss", "loss (cross-entropy over AAM logits)"),
    ("accuracy", "epoch/train_acc", "epoch/val_acc", "accuracy (fraction)"),
    ("learning rate", "epoch/lr", None, "learning rate"),
    ("macro-F1", "epoch/train_macro_f1", "epoch/val_macro_f1", "macro-F1 (fraction)"),
)


def fig_training_curves(runs: Mapping[str, Scalars]) -> Figure:
    """2×2 panels (loss, accuracy, learning rate, macro-F1) over epochs; train solid, val dashed.

    runs: {run name: {tag: (steps, values)}}; head-suffixed tags become separate series.
    """
    colors = _series_colors(runs)
    multi = len(runs) > 1
    fig = new_figure(12.0, 8.0)
    axes = fig.subplots(2, 2).ravel()
    for ax, (title, train_tag, val_tag, ylabel) in zip(axes, _PANELS):
        drawn = False
        for tag, style, kind in ((train_tag, "-", "train"), (val_tag, "--", "val")):
            if tag is None:
                continue
            for run, head, (steps, vals) in _variants(runs, tag):
                label = _series_label(run, head, multi, runs[run])
                label = f"{label} {kind}".strip() if val_tag else (label or "lr")
                ax.plot(
                    steps,
                    vals,
                    style,
                    marker="o",
                    ms=3,
                    color=colors.get((run, head), "black"),
                    label=label,
                )
                drawn = True
        ax.set_title(title + (" (train solid, validation dashed)" if val_tag else ""))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        if title == "learning rate" and drawn:
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        if drawn:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle("Training curves")
    return fig


def fig_val_accuracy_mc(runs: Mapping[str, Scalars]) -> Figure:
    """Validation accuracy per epoch with ± MC-dropout spread error bars; one panel per head."""
    colors = _series_colors(runs)
    multi = len(runs) > 1
    series = _variants(runs, "epoch/val_acc")
    heads = sorted({h for _, h, _ in series}) or [""]
    fig = new_figure(5.5 * len(heads), 4.0)
    axes = fig.subplots(1, len(heads), squeeze=False)[0]
    for ax, head in zip(axes, heads):
        for run, h, (steps, vals) in series:
            if h != head:
                continue
            spread = runs[run].get(f"epoch/val_mc_spread/{h}" if h else "epoch/val_mc_spread")
            if spread is None and h:
                spread = runs[run].get("epoch/val_mc_spread")
            yerr = None
            if spread is not None:
                lookup = dict(zip(spread[0].tolist(), spread[1].tolist()))
                yerr = np.array([lookup.get(s, np.nan) for s in steps.tolist()])
            color = colors.get((run, h), "black")
            label = _series_label(run, "", multi) or "validation"
            ax.errorbar(steps, vals, yerr=yerr, fmt="-o", ms=3, capsize=3, color=color, label=label)
            if yerr is not None:
                ax.fill_between(steps, vals - yerr, vals + yerr, color=color, alpha=0.15)
        ax.set_title(f"validation accuracy ± MC-dropout spread{f' ({head})' if head else ''}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("accuracy (fraction)")
        ax.legend(fontsize=8)
    return fig


def _smooth(vals: np.ndarray, k: int) -> np.ndarray:
    if k <= 1 or vals.size < k:
        return vals
    kernel = np.ones(k) / k
    pad = np.concatenate([np.full(k - 1, vals[0]), vals])
    return np.convolve(pad, kernel, mode="valid")


def fig_batch_curves(runs: Mapping[str, Scalars]) -> Figure | None:
    """Batch-level loss and accuracy (raw, faint; moving average, solid); None when not logged."""
    colors = _series_colors(runs)
    multi = len(runs) > 1
    panels = [(base, _variants(runs, base)) for base in ("batch/loss", "batch/acc")]
    if not any(v for _, v in panels):
        return None
    fig = new_figure(12.0, 3.8)
    axes = fig.subplots(1, 2)
    for ax, (base, series) in zip(axes, panels):
        for run, head, (steps, vals) in series:
            color = colors.get((run, head), colors.get((run, ""), "black"))
            k = max(1, vals.size // 50)
            ax.plot(steps, vals, color=color, alpha=0.25, lw=0.8)
            label = _series_label(run, head, multi) or "train"
            ax.plot(steps, _smooth(vals, k), color=color, lw=1.5, label=f"{label} (avg of {k})")
        ax.set_title(base.replace("batch/", "training batch "))
        ax.set_xlabel("step (batch)")
        ax.set_ylabel("loss" if base.endswith("loss") else "accuracy (fraction)")
        if series:
            ax.legend(fontsize=8)
    return fig
