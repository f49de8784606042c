"""Shared look of every voxgate figure: class colours, resolution, a pyplot-free Figure."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from voxgate.core.fileio import atomic_write

__all__ = [
    "AUTH_COLOR", "OUT_COLOR", "OTHER_COLOR", "CLASS_NAMES", "CLASS_COLORS", "RUN_COLORS",
    "TOP_SPEAKERS", "DPI", "new_figure", "save_png",
]  # fmt: skip

# One colour per class, used in every figure (Okabe-Ito: colour-blind safe).
AUTH_COLOR = "#D55E00"  # authorized: vermillion
OUT_COLOR = "#0072B2"  # outsiders: blue
OTHER_COLOR = "#B0B0B0"  # "other speakers" in per-speaker colourings
CLASS_NAMES = ("outsiders", "authorized")  # index = HDF5 ``label`` value
CLASS_COLORS = (OUT_COLOR, AUTH_COLOR)
RUN_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
TOP_SPEAKERS = 10  # speakers named in per-speaker colourings
DPI = 110


def new_figure(width: float, height: float) -> Figure:
    """A Figure of width x height inches at DPI with constrained layout (no pyplot state)."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at DPI, atomically, without a timestamped Software tag (so the
    same figure gives the same bytes)."""
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI, metadata={"Software": None}))
