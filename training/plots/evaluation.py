"""Evaluation figures: confusion matrices, per-class scores, DET curves, score histograms,
MC-dropout mean vs spread."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .style import AUTH_COLOR, OUT_COLOR, new_figure

__all__ = [
    "fig_confusion", "fig_per_class", "fig_det", "fig_det_families", "fig_score_hist", "fig_mc",
]  # fmt: skip


def fig_confusion(
    cm: np.ndarray, labels: Sequence[str], title: str, col_labels: Sequence[str] | None = None
) -> Figure:
    """Counts and row-normalised (recall) confusion matrices side by side; rows = true class.

    cm (R, C) int; labels: R row names; col_labels: C column names (default = labels).
    """
    cm = np.asarray(cm, dtype=np.float64)
    col_labels = list(labels) if col_labels is None else list(col_labels)
    n = max(cm.shape)
    big = n > 12
    size = 6.5 if big else 4.6
    fig = new_figure(2 * size + 1.0, size)
    axes = fig.subplots(1, 2)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    for ax, mat, kind, fmt in (
        (axes[0], cm, "counts", "{:.0f}"),
        (axes[1], norm, "normalised by true class", "{:.2f}"),
    ):
        im = ax.imshow(mat, cmap="Blues", vmin=0, vmax=mat.max() if kind == "counts" else 1.0)
        fig.colorbar(im, ax=ax, shrink=0.8, label="chunks" if kind == "counts" else "fraction")
        if not big:
            thresh = mat.max() / 2 if mat.max() > 0 else 1
            for i in range(cm.shape[0]):
                for j in range(cm.shape[1]):
                    ax.text(
                        j,
                        i,
                        fmt.format(mat[i, j]),
                        ha="center",
                        va="center",
                        fontsize=9,
                        color="white" if mat[i, j] > thresh else "black",
                    )
        fs = 5 if big else 9
        ax.set_xticks(np.arange(cm.shape[1]))
        ax.set_yticks(np.arange(cm.shape[0]))
        ax.set_xticklabels(col_labels, rotation=90 if big else 0, fontsize=fs)
        ax.set_yticklabels(labels, fontsize=fs)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(kind)
    fig.suptitle(title)
    return fig


def fig_per_class(
    report: Mapping[str, Any], title: str, colors: Sequence[str] | None = None
) -> Figure:
    """Grouped precision / recall / F1 bars per class, support written under each class name."""
    per = report.get("per_class", {})
    names = list(per)
    n = len(names)
    fig = new_figure(min(16.0, max(6.0, 0.45 * n + 3)), 4.2)
    ax = fig.subplots()
    x = np.arange(n)
    w = 0.27
    metric_colors = ("#444444", "#888888", "#CCCCCC")
    for k, (m, c) in enumerate(zip(("precision", "recall", "f1"), metric_colors)):
        vals = [float(per[name].get(m, np.nan)) for name in names]
        ax.bar(x + (k - 1) * w, vals, w, color=c, edgecolor="black", lw=0.4, label=m)
    if colors is not None:
        for xi, col in zip(x, colors):
            ax.axvspan(xi - 0.45, xi + 0.45, color=col, alpha=0.08, lw=0)
    ax.set_xticks(x)
    ax.set_xticklabels(
        [f"{name}\n(n={int(per[name].get('support', 0))})" for name in names],
        rotation=90 if n > 8 else 0,
        fontsize=6 if n > 20 else 9,
    )
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("score (fraction)")
    macro = report.get("macro", {})
    extra = f"; macro-F1 {float(macro['f1']):.3f}" if "f1" in macro else ""
    acc = report.get("accuracy")
    extra += f"; accuracy {float(acc):.3f}" if acc is not None else ""
    ax.set_title(f"{title}{extra}")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def fig_det(
    far: np.ndarray,
    frr: np.ndarray,
    *,
    eer: float | None = None,
    threshold_point: tuple[float, float] | None = None,
    threshold: float | None = None,
) -> Figure:
    """DET curve (FRR vs FAR on normal-deviate axes) with the EER point and the operating point.

    threshold_point: (far, frr) at the operating ``threshold``.
    """
    from scipy.stats import norm

    lo = 1e-4
    far = np.clip(np.asarray(far, dtype=np.float64), lo, 1 - lo)
    frr = np.clip(np.asarray(frr, dtype=np.float64), lo, 1 - lo)
    fig = new_figure(5.5, 5.2)
    ax = fig.subplots()
    ax.plot(norm.ppf(far), norm.ppf(frr), color="black", lw=1.5, label="DET")
    if eer is not None:
        e = min(max(eer, lo), 1 - lo)
        ax.plot(
            norm.ppf(e), norm.ppf(e), "o", color=AUTH_COLOR, ms=8, label=f"EER {100 * eer:.2f}%"
        )
    if threshold_point is not None:
        fa, fr = (min(max(v, lo), 1 - lo) for v in threshold_point)
        thr = f" (threshold {threshold:.3f})" if threshold is not None else ""
        ax.plot(
            norm.ppf(fa),
            norm.ppf(fr),
            "s",
            color=OUT_COLOR,
            ms=8,
            label=f"operating point{thr}: FAR {100 * threshold_point[0]:.2f}%, FRR {100 * threshold_point[1]:.2f}%",
        )
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95])
    tl = [f"{100 * t:g}" for t in ticks]
    ax.set_xticks(norm.ppf(ticks))
    ax.set_xticklabels(tl)
    ax.set_yticks(norm.ppf(ticks))
    ax.set_yticklabels(tl)
    lim = norm.ppf([0.0005, 0.99])
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.plot(lim, lim, ls=":", color="grey", lw=1)
    ax.set_xlabel("false acceptance rate (%)")
    ax.set_ylabel("false rejection rate (%)")
    ax.set_title("DET curve (authentication)")
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    return fig


def fig_score_hist(
    genuine: np.ndarray,
    impostor: np.ndarray,
    *,
    threshold: float | None = None,
    eer_threshold: float | None = None,
) -> Figure:
    """Density histograms of genuine (authorized) and impostor (outsider) trial scores."""
    g = np.asarray(genuine, dtype=np.float64)
    i = np.asarray(impostor, dtype=np.float64)
    both = np.concatenate([g, i])
    fig = new_figure(7.0, 3.8)
    ax = fig.subplots()
    if both.size:
        bins = np.linspace(both.min(), both.max() + 1e-9, 50)
        ax.hist(
            i, bins=bins, density=True, alpha=0.55, color=OUT_COLOR, label=f"impostor (n={i.size})"
        )
        ax.hist(
            g, bins=bins, density=True, alpha=0.55, color=AUTH_COLOR, label=f"genuine (n={g.size})"
        )
    if threshold is not None:
        ax.axvline(threshold, color="black", lw=1.5, label=f"operating threshold {threshold:.3f}")
    if eer_threshold is not None:
        ax.axvline(
            eer_threshold, color="black", ls="--", lw=1, label=f"EER threshold {eer_threshold:.3f}"
        )
    ax.set_xlabel("score (cosine similarity)")
    ax.set_ylabel("density")
    ax.set_title("Scores of genuine vs impostor trials")
    ax.legend(fontsize=8)
    return fig


def fig_det_families(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str) -> Figure:
    """DET curves of several score families on normal-deviate axes, EER in the legend.

    curves: {name: (genuine scores (G,), impostor scores (I,))}; empty families are skipped.
    """
    from scipy.stats import norm as gauss

    from voxgate.core import metrics as M

    ticks = np.array([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    fig = new_figure(5.5, 5.5)
    ax = fig.subplots()
    eps = 1e-4
    for name, (gen, imp) in curves.items():
        if len(gen) == 0 or len(imp) == 0:
            continue
        far, frr, _ = M.det_curve(gen, imp)
        x = gauss.ppf(np.clip(np.asarray(far, dtype=np.float64), eps, 1 - eps))
        y = gauss.ppf(np.clip(np.asarray(frr, dtype=np.float64), eps, 1 - eps))
        e, _ = M.eer(gen, imp)
        ax.plot(x, y, label=f"{name} (EER {100 * e:.2f} %)")
    t = gauss.ppf(ticks)
    labels = [f"{100 * v:g}" for v in ticks]
    ax.set_xticks(t, labels)
    ax.set_yticks(t, labels)
    lim = gauss.ppf([0.0005, 0.5])
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.plot(lim, lim, ":", color="grey", lw=0.8)
    ax.set_xlabel("false acceptance rate (%)")
    ax.set_ylabel("false rejection rate (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return fig


def fig_mc(entries: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray, float]]) -> Figure:
    """MC-dropout mean score vs spread per trial, wrong decisions in red; one panel per entry.

    entries: {name: (mean (N,), std (N,), y_true (N,) 0/1, threshold)}.
    """
    fig = new_figure(4.5 * len(entries), 4.0)
    axes = fig.subplots(1, len(entries), squeeze=False)[0]
    for ax, (name, (mean, std, y, thr)) in zip(axes, entries.items()):
        correct = (mean >= thr).astype(np.int64) == y
        ax.scatter(mean[correct], std[correct], s=4, alpha=0.5, label="correct")
        ax.scatter(mean[~correct], std[~correct], s=6, alpha=0.8, color="crimson", label="wrong")
        ax.axvline(thr, color="black", lw=0.8, ls="--", label="threshold")
        ax.axhline(float(np.median(std)), color="grey", lw=0.8, ls=":", label="median std")
        ax.set_xlabel("MC mean score")
        ax.set_ylabel("MC std")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    return fig
