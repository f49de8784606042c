"""The t-SNE of a model's embeddings in ``voxgate report``, from the embeddings file that
``voxgate evaluate`` wrote (trials.EMBEDDINGS_FILE): the report runs no model itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .plots import TOP_SPEAKERS, fig_tsne
from .report_data import _sample, tsne_2d
from .report_html import ReportBuilder
from .trials import EmbeddingSet

__all__ = ["embeddings_section"]


def embeddings_section(
    rep: ReportBuilder, emb: EmbeddingSet, source: Path, *, seed: int, max_tsne: int
) -> None:
    """t-SNE of at most ``max_tsne`` of the evaluated chunks' embeddings (seeded sample),
    coloured by class and by speaker; a note in ``rep.missing`` when there are too few."""
    idx = _sample(np.random.default_rng(seed), np.arange(len(emb)), max_tsne)
    if idx.size < 10:
        rep.missing.append(f"t-SNE of model embeddings: fewer than 10 chunks in {source}")
        return
    xy = tsne_2d(emb.embeddings[idx], seed=seed)
    rep.add(
        "Evaluation",
        "tsne_embeddings",
        fig_tsne(xy, emb.label[idx], emb.speaker[idx], emb.speakers, "t-SNE of model embeddings"),
        "t-SNE of model embeddings",
        f"{idx.size} {emb.split}-split chunks sampled with seed {seed}, embedded by the model "
        f"({emb.embeddings.shape[1]}-d, L2-normalised; {source.name}, written by voxgate "
        f"evaluate). Left by class, right by speaker (the {TOP_SPEAKERS} most frequent speakers "
        f"in the sample; others grey). Tight single-colour clusters in the right panel mean the "
        f"model separates speakers.",
    )
