"""Closed-set threshold calibration of a checkpoint: thresholds at a target FAR on the
outsider chunks of a split (heads and cosine), written into the checkpoint for reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxgate.core.checkpoint import (
    read_checkpoint,
    update_checkpoint,
)
from voxgate.core.device import resolve_device
from voxgate.core.errors import DatasetError

from .eval_embed import (
    decision_groups,
    embed_features,
    group_mean,
)
from .eval_families import check_features, enrolled_profiles, enrollment, head_family, load_model
from .eval_metrics import (
    plain_float,
)

__all__ = ["calibrate_checkpoint"]


def calibrate_checkpoint(
    model_path: str | Path,
    data_path: str | Path,
    split: str = "val",
    target_far: float = 0.01,
    *,
    decision_chunks: int = 3,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Choose thresholds at ``target_far`` on the impostor (outsider) chunks of ``split``.

    Cosine scores are max cosine against the authorized speakers' train-split profiles;
    head scores are P(authorized). 1-s chunks and decisions (mean over ``decision_chunks``
    consecutive chunks). ``threshold`` = the decision-level cosine one (the client's score).
    With ``write`` the checkpoint's calibration gets the head thresholds and, for reference,
    the closed-set cosine figures (``closed_set``); the client's threshold is left alone.
    """
    from voxgate.training.h5data import read_meta

    if not 0.0 < target_far < 1.0:
        raise ValueError(f"target_far must be in (0, 1), got {target_far}")
    dev = resolve_device(device)
    model, meta = load_model(model_path, dev)
    h5 = read_meta(str(data_path))
    check_features(meta, h5, data_path)
    speakers = list(h5.speakers)
    val = embed_features(model, data_path, split, batch_size=batch_size, device=dev, meta=h5)
    enroll = enrollment(model, data_path, split, val, batch_size, dev, meta=h5)
    _, profiles, auth_cols = enrolled_profiles(enroll, speakers, h5.authorized)
    if not len(auth_cols):
        raise DatasetError(f"{data_path}: no authorized speaker has train-split chunks to enroll")
    groups = decision_groups(val.file_ids, val.chunk_index, decision_chunks)
    y1 = (val.labels == 1).astype(np.int64)
    if not (y1 == 0).any():
        raise DatasetError(f"{data_path}: split {split!r} has no outsider chunks to calibrate on")

    cos1 = (val.embeddings @ profiles[auth_cols].T).max(axis=1)
    hd = head_family(model, meta, val, dev)
    source = f"{Path(data_path).name}:{split} (closed set, profiles from train split)"
    cal = _thresholds(
        cos1, hd, y1, groups, target_far, split=split, decision_chunks=decision_chunks, source=source
    )
    if write:
        # The client's cosine threshold comes only from ``calibrate --verification`` (decisions
        # replayed through the live path); closed-set chunk figures are kept for reference.
        old = dict(read_checkpoint(model_path).get("calibration") or {})
        old["closed_set"] = {k: cal[k] for k in ("cosine_1s", "cosine_3s", "source", "split")}
        old["head_thresholds"] = cal.get("head_thresholds")
        update_checkpoint(model_path, calibration=old)
    return cal


def _thresholds(
    cos1: np.ndarray,
    hd: dict[str, Any],
    y1: np.ndarray,
    groups: np.ndarray,
    target_far: float,
    *,
    split: str,
    decision_chunks: int,
    source: str,
) -> dict[str, Any]:
    """Thresholds at ``target_far`` per 1-s chunk and per decision (``groups``), cosine and head."""
    from voxgate.core import metrics as M

    y3 = y1[groups[:, 0]] if len(groups) else y1[:0]

    def thr(scores: np.ndarray, y: np.ndarray) -> float | None:
        imp = scores[y == 0]
        return plain_float(M.threshold_at_far(imp, target_far)) if len(imp) else None

    cal: dict[str, Any] = {
        "target_far": float(target_far),
        "split": split,
        "cosine_1s": thr(cos1, y1),
        "cosine_3s": thr(group_mean(cos1, groups), y3) if len(groups) else None,
        "auth_prob_1s": None,
        "auth_prob_3s": None,
        "n_genuine": int((y1 == 1).sum()),
        "n_impostor": int((y1 == 0).sum()),
        "n_genuine_3s": int((y3 == 1).sum()),
        "n_impostor_3s": int((y3 == 0).sum()),
        "decision_chunks": int(decision_chunks),
        "source": source,
    }
    if "auth" in hd:
        cal["auth_prob_1s"] = thr(hd["auth"], y1)
        cal["auth_prob_3s"] = thr(group_mean(hd["auth"], groups), y3) if len(groups) else None
    if cal["auth_prob_3s"] is not None or cal["auth_prob_1s"] is not None:
        # the pipeline's "head-authentication" mode decides on ~3 s of speech
        best = cal["auth_prob_3s"] if cal["auth_prob_3s"] is not None else cal["auth_prob_1s"]
        cal["head_thresholds"] = {"authentication": best}
    return cal
