"""Training wiring: data, model, AdamW, cosine LR, early stopping, TensorBoard, checkpoints,
resume, DDP. ``run_training`` wires a run; the loop itself (one step, one epoch, validation)
is in loop.py.

Run directory::

    config.json      the resolved TrainConfig
    best_model.pt    best validation selection metric (voxgate.core.checkpoint format)
    last_model.pt    the latest epoch (or the moment of an interrupt)
    train_state.pt   resume state: optimizer, scheduler, scaler, counters, RNG states
                     (plain types and tensors only; loads with weights_only=True)
    history.json     one record per epoch (the same numbers as the epoch-level scalars)
    tb/              TensorBoard event files

TensorBoard tags. Batch level (x = optimizer step, every ``log_every_steps`` steps):
``batch/loss`` (total training loss of the step), ``batch/acc`` (training accuracy of the
step, arg-max of the margin-free logits), ``batch/lr``.
Epoch level (x = epoch, 1-based): ``epoch/train_loss``, ``epoch/val_loss``,
``epoch/train_acc``, ``epoch/val_acc``, ``epoch/val_macro_f1``, ``epoch/val_macro_precision``,
``epoch/val_macro_recall``, ``epoch/val_mc_spread`` (mean over val chunks of the std of the
true class's probability over ``mc_passes`` MC-dropout passes), ``epoch/lr`` (after the
epoch's scheduler step), ``epoch/samples_per_s`` (training samples / training seconds),
``epoch/time_s`` (train + validation seconds). ``epoch/val_mc_spread`` is absent when
``mc_passes`` is 0 (history.json then holds null).
In mode ``both`` the head-specific tags carry a ``/<head>`` suffix
(``batch/acc/identification``, ``epoch/val_macro_f1/authentication``, ...);
``epoch/train_loss``, ``epoch/val_loss`` are then the weighted sums and also appear per head,
and ``epoch/val_macro_f1`` (no suffix) is the selection metric: the mean of the heads' macro-F1.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from voxgate.core.checkpoint import load_checkpoint, save_checkpoint
from voxgate.core.config import FeatureConfig
from voxgate.core.device import resolve_device
from voxgate.core.errors import CheckpointError, ConfigError, DatasetError
from voxgate.core.fileio import atomic_write
from voxgate.core.model import ModelConfig, SpeakerNet

from .config import TrainConfig, save_train_config
from .evaluate import calibrate_checkpoint
from .loop import (  # noqa: F401 (re-exported)
    EpochStats,
    HeadSpec,
    LossModule,
    amp_dtype,
    autocast_ctx,
    evaluate_epoch,
    head_tag,
    make_scaler,
    mc_spread,
    selection_metric,
    summarize_validation,
    train_one_epoch,
    train_step,
)
from .progress import Report, StepReporter, epoch_record

log = logging.getLogger(__name__)

AUTH_LABELS = ("outsider", "authorized")
STATE_VERSION = 1


# ---------------------------------------------------------------------------- pure helpers


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


def capture_rng_state() -> dict[str, Any]:
    """python / numpy / torch (/ CUDA) RNG states as tensors and plain lists (weights_only-safe)."""
    py = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [
            name,
            torch.from_numpy(keys.astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if (
        state["cuda"]
        and torch.cuda.is_available()
        and len(state["cuda"]) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker (base_seed + id); numpy and random follow from it.
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save through ``core.fileio.atomic_write`` (no torn files)."""
    atomic_write(path, lambda fh: torch.save(obj, fh))


def _atomic_write_json(obj: Any, path: Path) -> None:
    atomic_write(path, json.dumps(obj, indent=1) + "\n")


# ---------------------------------------------------------------------------- wiring


@dataclasses.dataclass
class TrainResult:
    """What a run produced. Paths are None on ranks other than 0."""

    run_dir: Path
    best_path: Path | None
    last_path: Path | None
    best_epoch: int  # 1-based; 0 if no epoch finished
    best_metric: float
    epochs_completed: int
    stopped_early: bool
    interrupted: bool
    history: list[dict[str, Any]]
    calibration: dict[str, Any] | None
    rank: int = 0


@dataclasses.dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_name: str) -> _Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): nccl on CUDA, else gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    d = _Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    cuda = resolve_device(device_name).type == "cuda"
    if cuda:
        torch.cuda.set_device(d.local_rank)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return d


def _read_data(data_path: Path) -> Any:
    from .h5data import read_meta

    return read_meta(data_path)


def _build_loaders(
    data_path: Path, cfg: TrainConfig, heads: Sequence[HeadSpec], dist: _Dist
) -> tuple[DataLoader, Any, DataLoader | None]:
    """Train loader (+ its epoch sampler) on every rank; the val loader on rank 0 only."""
    from torch.utils.data import DistributedSampler

    from .h5data import H5ChunkDataset, pad_collate

    train = H5ChunkDataset(data_path, "train", cache=cfg.cache_ram, augmented=cfg.train_augmented)
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
    train_loader = DataLoader(
        train, batch_size=cfg.batch_size, sampler=sampler, drop_last=drop_last, **common
    )
    val_loader = None
    if dist.main:
        val = H5ChunkDataset(data_path, "val", cache=cfg.cache_ram, augmented=False)
        if len(val) == 0:
            raise DatasetError(f"{data_path}: the val split is empty (early stopping needs it)")
        val_loader = DataLoader(val, batch_size=cfg.batch_size, shuffle=False, **common)
    return train_loader, sampler, val_loader


def _init_from(model: SpeakerNet, path: Path) -> list[str]:
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


def _init_from_base(path: Path, feature_config: FeatureConfig) -> dict[str, Any]:
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


def _epoch_record(
    epoch: int, stats: EpochStats, val: dict[str, Any], lr: float, seconds: float
) -> dict[str, Any]:
    """One history.json record (also the checkpoint's ``metrics``): plain types only."""
    heads = {
        name: {k: v for k, v in h.items() if k != "per_class"}
        | {
            "train_loss": stats.head_loss[name],
            "train_acc": stats.acc[name],
            "per_class": h["per_class"],
        }
        for name, h in val["heads"].items()
    }
    return {
        "epoch": epoch,
        "train_loss": stats.loss,
        "val_loss": val["loss"],
        "selection": val["selection"],
        "heads": heads,
        "lr": lr,
        "samples_per_s": stats.samples / max(stats.seconds, 1e-9),
        "time_s": seconds,
        "train_samples": stats.samples,
        "val_samples": val["samples"],
    }


def _log_epoch(writer: Any, rec: dict[str, Any]) -> None:
    e, multi = rec["epoch"], len(rec["heads"]) > 1
    for key in ("train_loss", "val_loss", "lr", "samples_per_s", "time_s"):
        writer.add_scalar(f"epoch/{key}", rec[key], e)
    if multi:
        writer.add_scalar("epoch/val_macro_f1", rec["selection"], e)
    for name, h in rec["heads"].items():
        pairs = {"train_acc": "train_acc", "val_acc": "accuracy", "val_mc_spread": "mc_spread"}
        pairs |= {f"val_macro_{m}": f"macro_{m}" for m in ("f1", "precision", "recall")}
        if multi:
            pairs |= {"train_loss": "train_loss", "val_loss": "loss"}
        for tag, key in pairs.items():
            if h[key] is not None:  # mc_spread is None when mc_passes = 0
                writer.add_scalar(head_tag(f"epoch/{tag}", name, multi), h[key], e)
    writer.flush()


def _summary_line(rec: dict[str, Any], epochs: int, best: bool) -> str:
    heads = " ".join(
        f"{n[:5]}: acc {h['accuracy']:.3f} F1 {h['macro_f1']:.3f}"
        + ("" if h["mc_spread"] is None else f" mc {h['mc_spread']:.3f}")
        for n, h in rec["heads"].items()
    )
    return (
        f"epoch {rec['epoch']}/{epochs} train loss {rec['train_loss']:.4f} | val loss "
        f"{rec['val_loss']:.4f} {heads} | lr {rec['lr']:.2e} | {rec['samples_per_s']:.0f} "
        f"samples/s | {rec['time_s']:.1f} s{' *best*' if best else ''}"
    )


def run_training(
    data_path: str | Path,
    run_dir: str | Path,
    cfg: TrainConfig,
    *,
    resume: bool = False,
    init_from: str | Path | None = None,
    progress: bool = False,
    on_progress: Report | None = None,
) -> TrainResult:
    """Train ``cfg.mode`` on the HDF5 dataset at ``data_path``, writing into ``run_dir``.

    Works alone or under torchrun (DDP; rank 0 validates, logs and writes files).
    A KeyboardInterrupt saves last_model.pt + train_state.pt and returns with
    ``interrupted=True``. Raises ConfigError, DatasetError, CheckpointError.
    ``on_progress``: called on rank 0 with the records of :mod:`.progress` (train steps,
    epoch summaries, calibration).
    """
    data_path, run_dir = Path(data_path), Path(run_dir)
    init_from = None if init_from is None else Path(init_from)
    dist = _init_distributed(cfg.device)
    try:
        return _run(data_path, run_dir, cfg, dist, resume, init_from, progress, on_progress)
    finally:
        if dist.enabled and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


@dataclasses.dataclass
class _Tracker:
    """Counters that survive a resume."""

    epoch: int = 0  # completed epochs
    step: int = 0  # optimizer steps
    best_metric: float = -1.0
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the best
    history: list = dataclasses.field(default_factory=list)

    def plain(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "history"}


@dataclasses.dataclass
class _Session:
    """Everything one run holds (built by ``_setup``); rank 0 alone writes files."""

    cfg: TrainConfig
    dist: _Dist
    device: torch.device
    data_path: Path
    run_dir: Path
    meta: Any  # H5Meta
    heads: list[HeadSpec]
    model: SpeakerNet  # unwrapped: validated and saved
    module: nn.Module  # LossModule, DDP-wrapped when distributed: trained
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    ctx: AbstractContextManager
    train_loader: DataLoader
    sampler: Any  # DistributedSampler | WeightedEpochSampler (both have set_epoch)
    val_loader: DataLoader | None
    tracker: _Tracker
    progress: bool = False
    on_progress: Report | None = None
    writer: Any = None

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best_model.pt"

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last_model.pt"

    def save_model(self, path: Path, metrics: dict[str, Any]) -> None:
        save_checkpoint(
            path,
            self.model,
            feature_config=self.meta.feature_config,
            mode=self.cfg.mode,
            labels={
                "authentication": list(AUTH_LABELS),
                "identification": list(self.meta.speakers),
            },
            authorized=list(self.meta.authorized),
            threshold=None,
            calibration={},
            metrics=metrics,
            train_config=self.cfg.to_dict(),
            data_fingerprint=self.meta.fingerprint,
        )

    def save_last_and_state(self) -> None:
        """last_model.pt + train_state.pt + history.json, each written atomically."""
        t = self.tracker
        self.save_model(self.last_path, t.history[-1] if t.history else {})
        state = {
            "version": STATE_VERSION,
            "mode": self.cfg.mode,
            "data_fingerprint": self.meta.fingerprint,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "tracker": t.plain(),
            "rng": capture_rng_state(),
        }
        atomic_torch_save(state, self.run_dir / "train_state.pt")
        _atomic_write_json(t.history, self.run_dir / "history.json")

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a train_state.pt (the weights come from last_model.pt)."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.tracker = _Tracker(**state["tracker"])
        self.tracker.history = _read_history(self.run_dir)[: self.tracker.epoch]
        restore_rng_state(state["rng"])

    def one_epoch(self) -> bool:
        """Train, validate, log and checkpoint one epoch; True when early stopping fires."""
        from tqdm import tqdm

        cfg, t = self.cfg, self.tracker
        self.sampler.set_epoch(t.epoch)
        n_steps = len(self.train_loader)
        if cfg.max_steps_per_epoch:
            n_steps = min(n_steps, cfg.max_steps_per_epoch)
        start = time.perf_counter()
        show = self.progress and self.dist.main
        desc = f"epoch {t.epoch + 1}/{cfg.epochs}"
        with tqdm(total=n_steps, desc=desc, file=sys.stderr, disable=not show, leave=False) as bar:
            if self.on_progress is not None and self.dist.main:
                bar = StepReporter(
                    bar, self.on_progress, epoch=t.epoch + 1, epochs=cfg.epochs, total=n_steps
                )
            stats, t.step = train_one_epoch(
                self.module, self.train_loader, self.heads, self.optimizer, self.scaler, self.ctx,
                cfg, self.device, step=t.step, writer=self.writer, bar=bar,
            )  # fmt: skip
        self.scheduler.step()
        t.epoch += 1
        stop = torch.zeros(1, device=self.device)
        if self.dist.main:
            stop += self._validate_and_save(stats, start)
        if self.dist.enabled:
            torch.distributed.broadcast(stop, src=0)
        return bool(stop.item())

    def _validate_and_save(self, stats: EpochStats, start: float) -> bool:
        cfg, t = self.cfg, self.tracker
        val = evaluate_epoch(
            self.model, self.val_loader, self.heads, self.ctx, self.device,
            max_batches=cfg.limit_val_batches, mc_passes=cfg.mc_passes, mc_batches=cfg.mc_batches,
        )  # fmt: skip
        lr = self.optimizer.param_groups[0]["lr"]
        rec = _epoch_record(t.epoch, stats, val, lr, time.perf_counter() - start)
        t.history.append(rec)
        improved = rec["selection"] > t.best_metric
        if improved:
            t.best_metric, t.best_epoch, t.bad_epochs = rec["selection"], t.epoch, 0
            self.save_model(self.best_path, rec)
        else:
            t.bad_epochs += 1
        _log_epoch(self.writer, rec)
        log.info(_summary_line(rec, cfg.epochs, improved))
        if self.on_progress is not None:
            self.on_progress(epoch_record(rec, cfg.epochs))
        self.save_last_and_state()
        if cfg.patience and t.bad_epochs >= cfg.patience:
            log.info("early stopping: no better val macro-F1 for %d epochs", t.bad_epochs)
            return True
        return False


def _setup(
    data_path: Path,
    run_dir: Path,
    cfg: TrainConfig,
    dist: _Dist,
    resume: bool,
    init_from: Path | None,
) -> tuple[_Session, dict[str, Any] | None]:
    """Build the session: data, model (fresh, fine-tuned or resumed), optimizer, loaders."""
    device = resolve_device(cfg.device, dist.local_rank)
    cfg = cfg.resolved(cuda=device.type == "cuda")
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    meta = _read_data(data_path)
    heads = heads_for_mode(cfg.mode, meta.speakers, cfg)
    state = _check_run_dir(run_dir, resume, cfg, meta.fingerprint)
    seed_everything(cfg.seed)
    fine_tune = init_from is not None and state is None
    base = _init_from_base(init_from, meta.feature_config) if fine_tune else None
    model = SpeakerNet(build_model_config(cfg, meta.feature_config.n_mels, heads, base))
    if fine_tune:
        recreated = _init_from(model, init_from)
        if dist.main:
            log.info("initialised from %s (new heads: %s)", init_from, recreated or "none")
    if state is not None:
        model.load_state_dict(load_checkpoint(run_dir / "last_model.pt")[0].state_dict())
    # channels_last convolutions are ~25 % faster on CPU (oneDNN) and on tensor-core GPUs.
    model.to(device, memory_format=torch.channels_last)
    module: nn.Module = LossModule(model, heads)
    if dist.enabled:
        ids = [dist.local_rank] if device.type == "cuda" else None
        module = nn.parallel.DistributedDataParallel(module, device_ids=ids)
    optimizer = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    train_loader, sampler, val_loader = _build_loaders(data_path, cfg, heads, dist)
    session = _Session(
        cfg=cfg, dist=dist, device=device, data_path=data_path, run_dir=run_dir, meta=meta,
        heads=heads, model=model, module=module, optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.cosine_t_max),
        scaler=make_scaler(device, cfg.amp), ctx=autocast_ctx(device, cfg.amp),
        train_loader=train_loader, sampler=sampler, val_loader=val_loader, tracker=_Tracker(),
    )  # fmt: skip
    return session, state


def _run(
    data_path: Path,
    run_dir: Path,
    cfg: TrainConfig,
    dist: _Dist,
    resume: bool,
    init_from: Path | None,
    progress: bool,
    on_progress: Report | None = None,
) -> TrainResult:
    s, state = _setup(data_path, run_dir, cfg, dist, resume, init_from)
    s.progress, s.on_progress = progress, on_progress
    if state is not None:
        s.load_state(state)
    if dist.rank:  # other dropout masks on other ranks
        torch.manual_seed(s.cfg.seed + dist.rank + 1000 * s.tracker.epoch)
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_train_config(s.cfg, run_dir / "config.json")
        from torch.utils.tensorboard import SummaryWriter

        purge = s.tracker.step if state is not None else None
        s.writer = SummaryWriter(str(run_dir / "tb"), purge_step=purge)
        amp = f", AMP {amp_dtype(s.device)}".replace("torch.", "") if s.cfg.amp else ""
        log.info(
            "training %s on %s: %d train rows per epoch and process, %s%s, %d process(es)",
            s.cfg.mode, data_path, len(s.sampler), s.device, amp, dist.world_size,
        )  # fmt: skip

    interrupted = stopped = False
    try:
        while s.tracker.epoch < s.cfg.epochs and not stopped:
            stopped = s.one_epoch()
    except KeyboardInterrupt:
        interrupted = True
        if dist.main:
            # An interrupted epoch is rerun from its start by --resume (with these weights).
            s.tracker.epoch = len(s.tracker.history)
            log.warning("interrupted: saving %s and the resume state", s.last_path)
            s.save_last_and_state()
    finally:
        if s.writer is not None:
            s.writer.close()

    t, main = s.tracker, dist.main
    calibration = None
    if main and not interrupted and s.cfg.calibrate and s.best_path.is_file():
        if on_progress is not None:
            on_progress({"stage": "calibrate", "done": 0, "total": 1})
        calibration = _calibrate(s.best_path, data_path, s.cfg.target_far, s.device)
    return TrainResult(
        run_dir=run_dir,
        best_path=s.best_path if main and s.best_path.is_file() else None,
        last_path=s.last_path if main and s.last_path.is_file() else None,
        best_epoch=t.best_epoch,
        best_metric=t.best_metric,
        epochs_completed=t.epoch,
        stopped_early=stopped,
        interrupted=interrupted,
        history=t.history,
        calibration=calibration,
        rank=dist.rank,
    )


def _check_run_dir(
    run_dir: Path, resume: bool, cfg: TrainConfig, fingerprint: str
) -> dict[str, Any] | None:
    """Load the resume state (resume) or refuse to overwrite an existing run (no resume)."""
    state_path = run_dir / "train_state.pt"
    if not resume:
        if state_path.exists() or (run_dir / "best_model.pt").exists():
            raise ConfigError(
                f"{run_dir} already holds a run: pass --resume or choose another --out"
            )
        return None
    if not state_path.is_file() or not (run_dir / "last_model.pt").is_file():
        raise ConfigError(f"{run_dir}: nothing to resume (no train_state.pt / last_model.pt)")
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a bad file
        raise CheckpointError(f"{state_path}: unreadable resume state ({exc})") from exc
    if state.get("version") != STATE_VERSION:
        raise CheckpointError(f"{state_path}: resume state version {state.get('version')!r}")
    if state["mode"] != cfg.mode:
        raise ConfigError(f"{run_dir} was trained in mode {state['mode']!r}, not {cfg.mode!r}")
    if state["data_fingerprint"] != fingerprint:
        raise DatasetError(f"{run_dir} was trained on another dataset (fingerprint differs)")
    return state


def _read_history(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "history.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def _calibrate(
    best_path: Path, data_path: Path, target_far: float, device: torch.device
) -> dict[str, Any] | None:
    """Threshold calibration of the best checkpoint on the val split (evaluate.calibrate_checkpoint)."""
    log.info("calibrating %s on the val split (target FAR %.3g)", best_path, target_far)
    return calibrate_checkpoint(
        best_path, data_path, split="val", target_far=target_far, device=device
    )
