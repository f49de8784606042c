"""Set-up of a training run: the heads of a mode, the model config, data loaders with a
class-balancing sampler, distributed (DDP) ranks, and weights from an earlier checkpoint."""

from __future__ import annotations

import dataclasses
import math
import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from voxgate.core.checkpoint import load_checkpoint
from voxgate.core.config import FeatureConfig
from voxgate.core.device import resolve_device
from voxgate.core.errors import CheckpointError, ConfigError, DatasetError
from voxgate.core.model import ModelConfig, SpeakerNet

from .config import TrainConfig
from .loop import HeadSpec

__all__ = [
    "AUTH_LABELS", "Dist", "heads_for_mode", "build_model_config", "balance_weights",
    "WeightedEpochSampler", "LengthBucketBatches", "init_distributed", "read_data", "build_loaders",
    "init_from_checkpoint", "init_from_base", "ready_for_training",
]  # fmt: skip

AUTH_LABELS = ("outsider", "authorized")


def heads_for_mode(mode: str, speakers: Sequence[str], cfg: TrainConfig) -> list[HeadSpec]:
    """The heads a mode trains: authentication (2 classes), identification (N speakers), both."""
    auth = HeadSpec("authentication", AUTH_LABELS, "label", cfg.auth_loss_weight)
    ident = HeadSpec("identification", tuple(speakers), "speaker", cfg.id_loss_weight)
    if mode == "authentication":
        return [dataclasses.replace(auth, weight=1.0)]
    if mode == "identification":
        if len(speakers) < 2:
            raise DatasetError(f"identification needs >= 2 speakers, the data has {len(speakers)}")
        return [dataclasses.replace(ident, weight=1.0)]
    if mode == "both":
        return [auth, ident]
    raise ConfigError(f"unknown mode {mode!r}")


def build_model_config(
    cfg: TrainConfig, n_mels: int, heads: Sequence[HeadSpec], base: dict[str, Any] | None = None
) -> ModelConfig:
    """ModelConfig from ``base`` (e.g. a checkpoint's), ``cfg.model`` overrides, the data's
    n_mels, the mode's heads and the AAM settings. Unknown keys raise ConfigError."""
    data = dict(base or {})
    data.update(cfg.model)
    data.update(
        n_mels=int(n_mels),
        heads=tuple((h.name, h.n_classes) for h in heads),
        aam_margin=cfg.aam_margin,
        aam_scale=cfg.aam_scale,
    )
    return ModelConfig.from_dict(data)


def balance_weights(labels: np.ndarray) -> np.ndarray:
    """Per-row sampling weights giving each class present an equal share; float64 (N,)."""
    labels = np.asarray(labels).astype(np.int64)
    counts = np.bincount(labels)
    present = counts > 0
    w = np.zeros(len(counts))
    w[present] = 1.0 / (counts[present] * present.sum())
    return w[labels]


class WeightedEpochSampler(Sampler[int]):
    """Draws ``len(weights)`` rows with replacement in proportion to ``weights``, reproducibly
    per (seed, epoch); with ``world_size`` > 1 rank r takes every world_size-th draw."""

    def __init__(self, weights: np.ndarray, *, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.weights = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        self.seed, self.rank, self.world_size, self.epoch = seed, rank, world_size, 0
        self.num_samples = math.ceil(len(self.weights) / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        total = self.num_samples * self.world_size
        idx = torch.multinomial(self.weights, total, replacement=True, generator=g)
        return iter(idx[self.rank : total : self.world_size].tolist())

    def __len__(self) -> int:
        return self.num_samples


class LengthBucketBatches(Sampler[list[int]]):
    """Batches of ``batch_size`` rows in ``sampler``'s order, full-length rows and shorter ones
    (a recording's last chunk) apart.

    One short row sends the whole batch down the BiGRU's packed-sequence path, ~20 % slower
    on CPU; with 9 % short chunks nearly every mixed batch of 128 holds one. Each row is
    computed as before (its own length, its own mask); only which rows share a batch changes.
    ``drop_last``: a bucket's last incomplete batch is dropped; otherwise the leftovers of
    both buckets form one last (mixed) batch. ``full``: bool per dataset row.
    """

    def __init__(self, sampler: Sampler[int], full: np.ndarray, batch_size: int, drop_last: bool):
        self.sampler, self.full = sampler, np.asarray(full, dtype=bool)
        self.batch_size, self.drop_last = int(batch_size), bool(drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        buckets: dict[bool, list[int]] = {True: [], False: []}
        for i in self.sampler:
            bucket = buckets[bool(self.full[i])]
            bucket.append(int(i))
            if len(bucket) == self.batch_size:
                yield bucket.copy()
                bucket.clear()
        rest = buckets[True] + buckets[False]
        if rest and not self.drop_last:
            yield rest

    def __len__(self) -> int:
        # The sampler's order is fixed for its epoch, so the bucket sizes can be counted.
        n_full = int(self.full[np.fromiter(iter(self.sampler), dtype=np.int64)].sum())
        n_short = len(self.sampler) - n_full
        b = self.batch_size
        if self.drop_last:
            return n_full // b + n_short // b
        return n_full // b + n_short // b + int(n_full % b + n_short % b > 0)


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker (base_seed + id); numpy and random follow from it.
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


@dataclasses.dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): nccl on CUDA, else gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    d = Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    cuda = resolve_device(device_name).type == "cuda"
    if cuda:
        torch.cuda.set_device(d.local_rank)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return d


def read_data(data_path: Path) -> Any:
    from .h5data import read_meta

    return read_meta(data_path)


def build_loaders(
    data_path: Path, cfg: TrainConfig, heads: Sequence[HeadSpec], dist: Dist, meta: Any = None
) -> tuple[DataLoader, Any, DataLoader | None]:
    """Train loader (+ its epoch sampler) on every rank; the val loader on rank 0 only.
    meta: the file's validated H5Meta (read again when None)."""
    from torch.utils.data import DistributedSampler

    from .h5data import H5ChunkDataset, pad_collate

    train = H5ChunkDataset(
        data_path, "train", cache=cfg.cache_ram, augmented=cfg.train_augmented, meta=meta
    )
    if len(train) == 0:
        raise DatasetError(f"{data_path}: the train split is empty")
    if cfg.balance and any(h.target == "label" for h in heads):
        sampler = WeightedEpochSampler(
            balance_weights(train.labels), seed=cfg.seed, rank=dist.rank, world_size=dist.world_size
        )
    else:
        sampler = DistributedSampler(
            train, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=cfg.seed
        )
    common = dict(
        collate_fn=pad_collate,
        num_workers=cfg.num_workers,
        pin_memory=bool(cfg.pin_memory),
        persistent_workers=bool(cfg.persistent_workers),
        worker_init_fn=_seed_worker if cfg.num_workers else None,
    )
    # A last batch of one row would break BatchNorm in train mode: drop the ragged tail.
    drop_last = len(sampler) > cfg.batch_size
    full = train.lengths >= train.meta.feature_config.frames_per_chunk
    batches = LengthBucketBatches(sampler, full, cfg.batch_size, drop_last)
    train_loader = DataLoader(train, batch_sampler=batches, **common)
    val_loader = None
    if dist.main:
        val = H5ChunkDataset(data_path, "val", cache=cfg.cache_ram, augmented=False, meta=meta)
        if len(val) == 0:
            raise DatasetError(f"{data_path}: the val split is empty (early stopping needs it)")
        val_loader = DataLoader(val, batch_size=cfg.batch_size, shuffle=False, **common)
    return train_loader, sampler, val_loader


def init_from_checkpoint(model: SpeakerNet, path: Path) -> list[str]:
    """Copy another checkpoint's weights into ``model``: the encoder must match; heads whose
    class count differs keep their fresh init. Returns the names of re-created heads."""
    src, _ = load_checkpoint(path)
    src_state, dst_state = src.state_dict(), model.state_dict()
    recreated = set()
    for key, value in dst_state.items():
        if key not in src_state or src_state[key].shape != value.shape:
            if key.startswith("heads."):
                recreated.add(key.split(".")[1])
                continue
            raise CheckpointError(
                f"{path}: its encoder differs from this run's model at {key!r} "
                f"(set --set model.* to the checkpoint's architecture)"
            )
        dst_state[key] = src_state[key]
    model.load_state_dict(dst_state, strict=True)
    return sorted(recreated)


def init_from_base(path: Path, feature_config: FeatureConfig) -> dict[str, Any]:
    """The model_config of the checkpoint to fine-tune from, checking its features match."""
    _, meta = load_checkpoint(path)
    src_features = FeatureConfig.from_dict(meta["feature_config"])
    if src_features != feature_config:
        raise ConfigError(
            f"{path}: trained on other features ({src_features.to_dict()}) than the dataset's "
            f"({feature_config.to_dict()})"
        )
    base = dict(meta["model_config"])
    base.pop("heads", None)
    return base


def ready_for_training(model: SpeakerNet, device: torch.device, compile_cnn: bool) -> SpeakerNet:
    """Move ``model`` to ``device`` in channels_last (oneDNN convolutions are ~25 % faster on
    CPU, as on tensor-core GPUs) and, with ``compile_cnn``, torch.compile its CNN: the
    elementwise work around the convolutions (batch norm, ReLU, SE, pooling, their
    gradients) is fused, which halves the CNN's step time on CPU. The weights and their
    names are unchanged, so checkpoints are the same either way."""
    model.to(device, memory_format=torch.channels_last)
    if compile_cnn:
        model.cnn = torch.compile(model.cnn)  # an instance attribute: state_dict untouched
    return model
