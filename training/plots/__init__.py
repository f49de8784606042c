"""Every voxgate figure, built with matplotlib's Figure API (no pyplot, no global backend
state; rendered by Agg on save). Each ``fig_*`` takes plain data and returns a Figure."""

from .curves import Scalars, fig_batch_curves, fig_training_curves, fig_val_accuracy_mc, split_tag
from .dataset import (
    fig_class_balance,
    fig_duration_vs_chunks,
    fig_durations,
    fig_gender,
    fig_mean_spectrograms,
    fig_speaker_chunks,
    fig_tsne,
)
from .evaluation import (
    fig_confusion,
    fig_det,
    fig_det_families,
    fig_mc,
    fig_per_class,
    fig_score_hist,
)
from .style import (
    AUTH_COLOR,
    CLASS_COLORS,
    CLASS_NAMES,
    DPI,
    OTHER_COLOR,
    OUT_COLOR,
    TOP_SPEAKERS,
    new_figure,
    save_png,
)

__all__ = [
    "Scalars", "split_tag", "fig_training_curves", "fig_val_accuracy_mc", "fig_batch_curves",
    "fig_class_balance", "fig_speaker_chunks", "fig_gender", "fig_durations",
    "fig_duration_vs_chunks", "fig_mean_spectrograms", "fig_tsne", "fig_confusion",
    "fig_per_class", "fig_det", "fig_det_families", "fig_score_hist", "fig_mc", "AUTH_COLOR",
    "OUT_COLOR", "OTHER_COLOR", "CLASS_NAMES", "CLASS_COLORS", "DPI", "TOP_SPEAKERS",
    "new_figure", "save_png",
]  # fmt: skip
