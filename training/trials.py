"""The files ``voxgate evaluate`` writes beside metrics.json for ``voxgate report``: the
per-trial scores ``scores.npz`` (DET curves, score histograms) and the evaluated chunks'
embeddings with their labels ``embeddings.npz`` (the t-SNE of the model's embeddings), so
the report never runs a model itself."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxgate.core.errors import ConfigError
from voxgate.core.fileio import atomic_write

__all__ = [
    "SCORES_FILE", "write_scores", "read_scores",
    "EMBEDDINGS_FILE", "EmbeddingSet", "write_embeddings", "read_embeddings",
]  # fmt: skip

SCORES_FILE = "scores.npz"
EMBEDDINGS_FILE = "embeddings.npz"
Trials = dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]


def write_scores(
    auth_scores: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]], path: str | Path
) -> Path:
    """Write {(family, level): (scores (N,), y_true (N,))} as ``{family}_{level}_scores``
    float64 (higher = authorized) and ``{family}_{level}_labels`` int8 (1 = authorized)."""
    arrays: dict[str, np.ndarray] = {}
    for (family, level), (scores, y) in auth_scores.items():
        arrays[f"{family}_{level}_scores"] = np.asarray(scores, dtype=np.float64)
        arrays[f"{family}_{level}_labels"] = np.asarray(y, dtype=np.int8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write(path, buf.getvalue())


def read_scores(path: str | Path) -> Trials:
    """The trials of :func:`write_scores`; raises ConfigError for an unreadable file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable scores file ({exc})") from exc
    out: Trials = {}
    for key, scores in data.items():
        if not key.endswith("_scores"):
            continue
        family, level = key[: -len("_scores")].rsplit("_", 1)
        labels = data.get(f"{family}_{level}_labels")
        if labels is None or labels.shape != scores.shape:
            raise ConfigError(f"{path}: {key} has no matching labels")
        out[(family, level)] = (scores.astype(np.float64), labels.astype(np.int64))
    return out


@dataclass
class EmbeddingSet:
    """Embeddings of the evaluated chunks, in dataset order.

    embeddings: float32 (N, D) unit rows; label: (N,) int64, 1 = authorized; speaker: (N,)
    int64 index into ``speakers`` (the dataset's speaker ids); split: the split they come from.
    """

    embeddings: np.ndarray
    label: np.ndarray
    speaker: np.ndarray
    speakers: list[str]
    split: str

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])


def write_embeddings(emb: EmbeddingSet, path: str | Path) -> Path:
    """Write ``emb`` as an .npz file: embeddings float32, label int8, speaker int64,
    speakers str, split str (0-d)."""
    buf = io.BytesIO()
    np.savez(
        buf,
        embeddings=np.asarray(emb.embeddings, dtype=np.float32),
        label=np.asarray(emb.label, dtype=np.int8),
        speaker=np.asarray(emb.speaker, dtype=np.int64),
        speakers=np.asarray(list(emb.speakers), dtype=str),
        split=np.asarray(emb.split, dtype=str),
    )
    return atomic_write(path, buf.getvalue())


def read_embeddings(path: str | Path) -> EmbeddingSet:
    """The EmbeddingSet of :func:`write_embeddings`; ConfigError for a missing, unreadable or
    inconsistent file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable embeddings file ({exc})") from exc
    missing = sorted({"embeddings", "label", "speaker", "speakers", "split"} - set(data))
    if missing:
        raise ConfigError(f"{path}: embeddings file lacks {missing}")
    emb, label, speaker = data["embeddings"], data["label"], data["speaker"]
    speakers = [str(s) for s in data["speakers"]]
    n = emb.shape[0] if emb.ndim == 2 else -1
    if n < 0 or label.shape != (n,) or speaker.shape != (n,):
        raise ConfigError(f"{path}: embeddings (N, D), label (N,) and speaker (N,) disagree")
    if n and (speaker.min() < 0 or speaker.max() >= len(speakers)):
        raise ConfigError(f"{path}: a speaker index is outside the {len(speakers)} speakers")
    return EmbeddingSet(
        emb.astype(np.float32), label.astype(np.int64), speaker.astype(np.int64), speakers,
        str(data["split"]),
    )  # fmt: skip
