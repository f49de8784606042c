"""Embeddings of a dataset split, speaker profiles, and the grouping of consecutive chunks
into decisions (what the client averages over ``decision_chunks`` windows)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxgate.core.device import resolve_device
from voxgate.core.errors import DatasetError
from voxgate.core.scoring import unit

__all__ = ["SplitEmbeddings", "embed_features", "speaker_profiles", "decision_groups", "group_mean"]

@dataclass
class SplitEmbeddings:
    """Embeddings of the selected chunks of one split, in dataset order.

    embeddings: float32 (N, D) unit rows; mc: float32 (passes, N, D) or None;
    labels (N,) int (1 = authorized); speakers (N,) int (dataset speaker index);
    file_ids, chunk_index, aug: (N,) int.
    """

    embeddings: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray
    file_ids: np.ndarray
    chunk_index: np.ndarray
    aug: np.ndarray
    mc: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])


def _select(split: SplitEmbeddings, mask: np.ndarray) -> SplitEmbeddings:
    """The rows of ``split`` where ``mask`` is true."""
    return SplitEmbeddings(
        embeddings=split.embeddings[mask],
        labels=split.labels[mask],
        speakers=split.speakers[mask],
        file_ids=split.file_ids[mask],
        chunk_index=split.chunk_index[mask],
        aug=split.aug[mask],
        mc=None if split.mc is None else split.mc[:, mask],
    )


def embed_features(
    model: torch.nn.Module,
    data_path: str | Path,
    split: str | None,
    *,
    augmented: bool = False,
    mc_passes: int = 0,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    meta: Any = None,
) -> SplitEmbeddings:
    """Embed every chunk of ``split`` ("train" | "val" | "test" | None = all) of an HDF5 file.

    ``augmented=False`` keeps only original chunks (aug == 0). With ``mc_passes > 0`` also
    returns MC-dropout embeddings (passes, N, D). Runs under inference mode, in batches.
    meta: the file's validated H5Meta when the caller has it (not read again).
    """
    from voxgate.training.h5data import H5ChunkDataset, pad_collate

    dev = resolve_device(device)
    ds = H5ChunkDataset(str(data_path), split=split, augmented=augmented, meta=meta)
    n = len(ds)
    if n == 0:
        raise DatasetError(f"{data_path}: split {split!r} has no chunks")
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=False, num_workers=0, collate_fn=pad_collate
    )
    was_training = model.training
    model.eval()
    embs, mcs = [], []
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("label", "speaker", "file_id", "chunk_index", "aug")
    }
    try:
        with torch.inference_mode():
            for batch in loader:
                feats = batch["features"].to(dev, dtype=torch.float32)
                lengths = batch["lengths"].to(dev)
                if mc_passes > 0:
                    mc = model.embed_mc(feats, mc_passes, lengths)
                    mcs.append(mc.cpu().numpy().astype(np.float32))
                embs.append(model(feats, lengths).cpu().numpy().astype(np.float32))
                for k in cols:
                    cols[k].append(batch[k].numpy().astype(np.int64))
    finally:
        model.train(was_training)
    return SplitEmbeddings(
        embeddings=np.concatenate(embs),
        labels=np.concatenate(cols["label"]),
        speakers=np.concatenate(cols["speaker"]),
        file_ids=np.concatenate(cols["file_id"]),
        chunk_index=np.concatenate(cols["chunk_index"]),
        aug=np.concatenate(cols["aug"]),
        mc=np.concatenate(mcs, axis=1) if mcs else None,
    )


def speaker_profiles(embeddings: np.ndarray, speakers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Profiles: (speaker indices (K,) sorted, float32 (K, D) renormalised mean embeddings)."""
    ids = np.unique(speakers)
    emb = unit(np.asarray(embeddings, dtype=np.float32))
    prof = np.stack([emb[speakers == s].mean(axis=0) for s in ids]) if len(ids) else emb[:0]
    return ids, unit(prof)


def decision_groups(file_ids: np.ndarray, chunk_index: np.ndarray, n: int) -> np.ndarray:
    """Row indices (G, n) of non-overlapping groups of ``n`` consecutive chunks of one file.

    Within each file, chunks are ordered by chunk_index and cut into runs of consecutive
    indices (a gap starts a new run); each run is split into groups of ``n`` from its start
    and a leftover of fewer than ``n`` chunks is dropped. Groups are ordered by file, then time.
    """
    if n < 1:
        raise ValueError(f"decision chunks must be >= 1, got {n}")
    file_ids = np.asarray(file_ids)
    chunk_index = np.asarray(chunk_index)
    order = np.lexsort((chunk_index, file_ids))
    groups: list[np.ndarray] = []
    start = 0
    m = len(order)
    while start < m:
        end = start + 1
        while (
            end < m
            and file_ids[order[end]] == file_ids[order[start]]
            and chunk_index[order[end]] == chunk_index[order[end - 1]] + 1
        ):
            end += 1
        run = order[start:end]
        for g in range(len(run) // n):
            groups.append(run[g * n : (g + 1) * n])
        start = end
    if not groups:
        return np.zeros((0, n), dtype=np.int64)
    return np.stack(groups).astype(np.int64)


def group_mean(values: np.ndarray, groups: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean of ``values`` over each group of rows along ``axis``: (..., G, ...)."""
    v = np.asarray(values)
    taken = np.take(v, groups, axis=axis)  # inserts a group-size axis after ``axis``
    return taken.mean(axis=axis + 1)
