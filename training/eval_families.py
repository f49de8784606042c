"""The two scoring families of an evaluation: the trained heads and cosine against enrolled
profiles (train-split embeddings), plus loading and checking the checkpoint against the data."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxgate.core.checkpoint import (
    load_checkpoint,
)
from voxgate.core.errors import DatasetError

from .eval_embed import (
    SplitEmbeddings,
    embed_features,
    speaker_profiles,
)
from .eval_metrics import (
    AUTH_LABELS,
)

log = logging.getLogger(__name__)

__all__ = [
    "Scored", "load_model", "check_features", "auth_index", "cosine_family", "head_family",
    "enrollment", "enrolled_profiles",
]  # fmt: skip


def load_model(model_path: str | Path, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:

    return load_checkpoint(model_path, map_location=device)


def check_features(meta: dict[str, Any], h5meta: Any, data_path: str | Path) -> None:
    from voxgate.core.config import FeatureConfig

    ck = FeatureConfig.from_dict(meta["feature_config"])
    ds = h5meta.feature_config
    if not isinstance(ds, FeatureConfig):
        ds = FeatureConfig.from_dict(ds if isinstance(ds, dict) else json.loads(ds))
    if ck != ds:
        raise DatasetError(
            f"{data_path}: dataset features {ds.to_dict()} differ from the checkpoint's "
            f"{ck.to_dict()}; rebuild the dataset or use the matching model"
        )


def auth_index(meta: dict[str, Any]) -> int:
    labels = meta.get("labels", {}).get("authentication") or AUTH_LABELS
    return labels.index("authorized") if "authorized" in labels else len(labels) - 1


@dataclass
class Scored:
    """Per-chunk scores of one family for the evaluated split."""

    auth: np.ndarray  # (N,) authentication score
    ident: np.ndarray | None  # (N, C) identification scores
    class_names: list[str]
    auth_mc: np.ndarray | None = None  # (passes, N)


def cosine_family(
    split: SplitEmbeddings,
    prof_ids: np.ndarray,
    profiles: np.ndarray,
    auth_cols: np.ndarray,
    speakers: list[str],
) -> Scored:
    sims = split.embeddings @ profiles.T  # (N, K)
    auth = sims[:, auth_cols].max(axis=1) if len(auth_cols) else np.full(len(sims), -1.0)
    mc = None
    if split.mc is not None and len(auth_cols):
        mc = (split.mc @ profiles[auth_cols].T).max(axis=2)  # (passes, N)
    return Scored(auth, sims, [speakers[i] for i in prof_ids], mc)


def head_family(
    model: torch.nn.Module, meta: dict[str, Any], split: SplitEmbeddings, device: torch.device
) -> dict[str, Scored | np.ndarray | list[str]]:
    out: dict[str, Any] = {}
    heads = set(getattr(model, "heads", {}).keys())
    with torch.inference_mode():
        emb = torch.from_numpy(split.embeddings).to(device)
        if "authentication" in heads:
            ai = auth_index(meta)
            out["auth"] = model.head_probs(emb, "authentication")[:, ai].cpu().numpy()
            if split.mc is not None:
                mc = torch.from_numpy(split.mc).to(device)
                p, n, d = mc.shape
                probs = model.head_probs(mc.reshape(p * n, d), "authentication")[:, ai]
                out["auth_mc"] = probs.reshape(p, n).cpu().numpy()
        if "identification" in heads:
            out["ident"] = model.head_probs(emb, "identification").cpu().numpy()
            names = meta.get("labels", {}).get("identification")
            if not names or len(names) != out["ident"].shape[1]:
                names = [str(i) for i in range(out["ident"].shape[1])]
            out["ident_names"] = list(names)
    return out


def enrollment(
    model: torch.nn.Module,
    data_path: str | Path,
    split: str,
    split_emb: SplitEmbeddings,
    batch_size: int,
    device: torch.device,
    meta: Any = None,
) -> SplitEmbeddings:
    """Train-split embeddings for the enrollment profiles (``split_emb`` when it is train);
    meta: the file's validated H5Meta, if the caller has it."""
    if split == "train":
        return split_emb
    log.info("embedding the train split (enrollment profiles)")
    return embed_features(
        model, data_path, "train", batch_size=batch_size, device=device, meta=meta
    )


def enrolled_profiles(
    enroll: SplitEmbeddings, speakers: Sequence[str], authorized: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(profile speaker ids, profiles, columns of the authorized speakers' profiles)."""
    prof_ids, profiles = speaker_profiles(enroll.embeddings, enroll.speakers)
    auth_set = {speakers.index(a) for a in authorized if a in speakers}
    auth_cols = np.array([k for k, s in enumerate(prof_ids) if s in auth_set], dtype=np.int64)
    return prof_ids, profiles, auth_cols
