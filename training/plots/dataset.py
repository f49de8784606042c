"""Dataset figures: class balance, chunks per speaker, gender, durations, spectra, t-SNE."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .style import AUTH_COLOR, OTHER_COLOR, OUT_COLOR, TOP_SPEAKERS, new_figure

__all__ = [
    "fig_class_balance", "fig_speaker_chunks", "fig_gender", "fig_durations",
    "fig_duration_vs_chunks", "fig_mean_spectrograms", "fig_tsne",
]  # fmt: skip


def fig_class_balance(counts: Mapping[str, tuple[int, int]]) -> Figure:
    """Bars of (authorized, outsiders) per group, e.g. {"speakers": (5, 35), ...}."""
    fig = new_figure(3.0 * max(1, len(counts)), 3.6)
    axes = fig.subplots(1, max(1, len(counts)), squeeze=False)[0]
    for ax, (group, (n_auth, n_out)) in zip(axes, counts.items()):
        total = n_auth + n_out
        bars = ax.bar(["authorized", "outsiders"], [n_auth, n_out], color=[AUTH_COLOR, OUT_COLOR])
        for bar, n in zip(bars, (n_auth, n_out)):
            share = f"{100 * n / total:.1f}%" if total else "-"
            ax.annotate(
                f"{n:,}\n{share}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_title(group)
        ax.set_ylabel(f"number of {group.split()[0]}")
        ax.set_ylim(0, max(1, n_auth, n_out) * 1.25)
    fig.suptitle("Class balance: authorized vs outsiders")
    return fig


def fig_speaker_chunks(
    names: Sequence[str],
    original: np.ndarray,
    augmented: np.ndarray,
    authorized: np.ndarray,
) -> Figure:
    """Sorted bars of original chunks per speaker, augmented copies stacked (lighter)."""
    original = np.asarray(original)
    augmented = np.asarray(augmented)
    authorized = np.asarray(authorized, dtype=bool)
    order = np.argsort(-(original + augmented), kind="stable")
    fig = new_figure(11.0, 4.2)
    ax = fig.subplots()
    x = np.arange(len(order))
    colors = [AUTH_COLOR if authorized[i] else OUT_COLOR for i in order]
    ax.bar(x, original[order], color=colors, label="original chunks")
    if augmented.sum() > 0:
        ax.bar(x, augmented[order], bottom=original[order], color=colors, alpha=0.35)
    ax.set_xticks(x)
    ax.set_xticklabels([names[i] for i in order], rotation=90, fontsize=7 if len(x) > 20 else 9)
    ax.set_xlabel("speaker (sorted by chunk count)")
    ax.set_ylabel("chunks (1 s each)")
    ax.set_title("Chunks per speaker (solid: original, light: augmented copies)")
    from matplotlib.patches import Patch

    handles = [
        Patch(color=AUTH_COLOR, label="authorized"),
        Patch(color=OUT_COLOR, label="outsiders"),
    ]
    if augmented.sum() > 0:
        handles.append(Patch(color="grey", alpha=0.35, label="augmented copies"))
    ax.legend(handles=handles, loc="upper right")
    ax.set_xlim(-0.6, len(x) - 0.4)
    return fig


def fig_gender(counts: Mapping[str, Mapping[str, int]], unit: str = "speakers") -> Figure:
    """Grouped bars: counts[class]["M"|"F"|"unknown"] for class "authorized"/"outsiders"."""
    genders = ["M", "F", "unknown"]
    fig = new_figure(5.5, 3.6)
    ax = fig.subplots()
    x = np.arange(len(genders))
    w = 0.38
    for k, (cls, color) in enumerate((("authorized", AUTH_COLOR), ("outsiders", OUT_COLOR))):
        vals = [int(counts.get(cls, {}).get(g, 0)) for g in genders]
        bars = ax.bar(x + (k - 0.5) * w, vals, w, color=color, label=cls)
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(["male", "female", "unknown"])
    ax.set_ylabel(f"number of {unit}")
    ax.set_title(f"Gender split ({unit})")
    ax.legend()
    return fig


def fig_durations(duration_s: np.ndarray, labels: np.ndarray) -> Figure:
    """Histograms (log-spaced bins, log x) of raw recording durations per class."""
    d = np.asarray(duration_s, dtype=np.float64)
    labels = np.asarray(labels)
    ok = np.isfinite(d) & (d > 0)
    fig = new_figure(7.0, 3.8)
    ax = fig.subplots()
    if ok.any():
        lo, hi = d[ok].min(), d[ok].max()
        if hi <= lo:
            lo, hi = lo / 1.5, hi * 1.5
        bins = np.geomspace(lo, hi, 30)
        for cls, name, color in ((1, "authorized", AUTH_COLOR), (0, "outsiders", OUT_COLOR)):
            sel = ok & (labels == cls)
            if sel.any():
                ax.hist(d[sel], bins=bins, color=color, alpha=0.55, label=f"{name} (n={sel.sum()})")
        med = float(np.median(d[ok]))
        ax.axvline(med, color="black", ls="--", lw=1, label=f"median {med:.1f} s")
        ax.set_xscale("log")
        ax.legend()
    ax.set_xlabel("raw recording duration (s, log scale)")
    ax.set_ylabel("recordings")
    ax.set_title("Distribution of recording durations")
    return fig


def fig_duration_vs_chunks(
    duration_s: np.ndarray, chunks: np.ndarray, labels: np.ndarray, fit: Any
) -> Figure:
    """Scatter of original chunks vs raw duration with the fitted line, and chunks/s histogram.

    fit: the least-squares fit (``slope``, ``intercept``, ``r2``, ``rates``, ``mean_rate``), as
    report.chunk_rate_fit returns it.
    """
    d = np.asarray(duration_s, dtype=np.float64)
    c = np.asarray(chunks, dtype=np.float64)
    labels = np.asarray(labels)
    ok = np.isfinite(d) & (d > 0)
    fig = new_figure(11.0, 4.0)
    ax1, ax2 = fig.subplots(1, 2)
    for cls, name, color in ((0, "outsiders", OUT_COLOR), (1, "authorized", AUTH_COLOR)):
        sel = ok & (labels == cls)
        ax1.scatter(d[sel], c[sel], s=10, alpha=0.6, color=color, label=name)
    if ok.any() and math.isfinite(fit.slope):
        xs = np.linspace(0, d[ok].max(), 50)
        ax1.plot(
            xs,
            fit.slope * xs + fit.intercept,
            color="black",
            lw=1.5,
            label=f"fit: {fit.slope:.3f} chunks/s (R²={fit.r2:.2f})",
        )
        ax1.plot(xs, xs, color="grey", ls=":", lw=1, label="1 chunk per second")
    ax1.set_xlabel("raw recording duration (s)")
    ax1.set_ylabel("original chunks (aug = 0)")
    ax1.set_title("Recording duration vs chunk count")
    ax1.legend(fontsize=8)
    if fit.rates.size:
        ax2.hist(fit.rates, bins=30, color="#555555")
        ax2.axvline(fit.mean_rate, color="black", ls="--", label=f"mean {fit.mean_rate:.3f}")
        ax2.axvline(1.0, color="grey", ls=":", label="1.0")
        ax2.legend(fontsize=8)
    ax2.set_xlabel("chunks per second of raw duration")
    ax2.set_ylabel("recordings")
    ax2.set_title("Chunks per second, per recording")
    return fig


def fig_mean_spectrograms(
    mean_auth: np.ndarray,
    mean_out: np.ndarray,
    *,
    frame_s: float | None = None,
    n_auth: int | None = None,
    n_out: int | None = None,
) -> Figure:
    """Average log-mel (T, M) per class side by side, and authorized − outsiders.

    frame_s: hop between frames in seconds (time axis in seconds when given, else frames).
    """
    fig = new_figure(13.0, 3.8)
    axes = fig.subplots(1, 3)
    a = np.asarray(mean_auth, dtype=np.float64).T  # (M, T): mel band on y
    o = np.asarray(mean_out, dtype=np.float64).T
    t = a.shape[1]
    extent = (0, t * frame_s if frame_s else t, -0.5, a.shape[0] - 0.5)
    finite = np.concatenate([a[np.isfinite(a)], o[np.isfinite(o)]])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (-80.0, 0.0)
    for ax, img, title, n in (
        (axes[0], a, "authorized", n_auth),
        (axes[1], o, "outsiders", n_out),
    ):
        im = ax.imshow(
            img, origin="lower", aspect="auto", extent=extent, vmin=vmin, vmax=vmax, cmap="magma"
        )
        ax.set_title(f"mean log-mel: {title}" + (f" (n={n})" if n is not None else ""))
        fig.colorbar(im, ax=ax, label="dB (re chunk peak)")
    diff = a - o
    lim = float(np.nanmax(np.abs(diff))) if np.isfinite(diff).any() else 1.0
    im = axes[2].imshow(
        diff, origin="lower", aspect="auto", extent=extent, cmap="RdBu_r", vmin=-lim, vmax=lim
    )
    axes[2].set_title("difference: authorized − outsiders")
    fig.colorbar(im, ax=axes[2], label="dB")
    for ax in axes:
        ax.set_xlabel("time (s)" if frame_s else "time frame")
        ax.set_ylabel("mel band")
    return fig


def fig_tsne(
    xy: np.ndarray,
    labels: np.ndarray,
    speakers: np.ndarray,
    speaker_names: Sequence[str],
    title: str,
) -> Figure:
    """Two scatter panels of the same 2-D points: by class, and by speaker (top 10, others grey)."""
    xy = np.asarray(xy)
    labels = np.asarray(labels)
    speakers = np.asarray(speakers)
    fig = new_figure(12.0, 5.0)
    ax1, ax2 = fig.subplots(1, 2)
    for cls, name, color in ((0, "outsiders", OUT_COLOR), (1, "authorized", AUTH_COLOR)):
        sel = labels == cls
        ax1.scatter(
            xy[sel, 0], xy[sel, 1], s=6, alpha=0.6, color=color, label=f"{name} ({sel.sum()})"
        )
    ax1.set_title("coloured by class")
    ax1.legend(markerscale=2, fontsize=8)
    counts = Counter(speakers.tolist())
    top = [s for s, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_SPEAKERS]]
    other = ~np.isin(speakers, top)
    ax2.scatter(xy[other, 0], xy[other, 1], s=5, alpha=0.35, color=OTHER_COLOR, label="others")
    cmap = [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    for k, s in enumerate(top):
        sel = speakers == s
        ax2.scatter(
            xy[sel, 0],
            xy[sel, 1],
            s=7,
            alpha=0.8,
            color=cmap[k % len(cmap)],
            label=speaker_names[s],
        )
    ax2.set_title(f"coloured by speaker (top {len(top)} by count)")
    ax2.legend(markerscale=2, fontsize=7, ncol=2)
    for ax in (ax1, ax2):
        ax.set_xlabel("t-SNE 1 (a.u.)")
        ax.set_ylabel("t-SNE 2 (a.u.)")
    fig.suptitle(title)
    return fig
