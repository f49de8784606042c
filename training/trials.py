"""The per-trial scores file ``scores.npz`` that ``voxgate evaluate`` writes beside
metrics.json and ``voxgate report`` reads for DET curves and score histograms."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from voxgate.core.errors import ConfigError
from voxgate.core.fileio import atomic_write

__all__ = ["SCORES_FILE", "write_scores", "read_scores"]

SCORES_FILE = "scores.npz"
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
