"""Training wiring: data, model, AdamW, cosine LR, early stopping, TensorBoard, checkpoints,
resume, DDP. ``run_training`` wires a run; the loop itself (one step, one epoch, validation)
is in loop.py.

Run directory::

    config.json      the resolved TrainConfig
    best_model.pt    best validation selection metric (voxgate.core.checkpoint format)
    last_model.pt    the latest epoch (or the moment of an interrupt)
    train_state.pt   resume state: optimizer, scheduler, scaler, counters, RNG states
                     (plain types and tensors only; loads with weights_only=True)
    history.json     one record per epoch: the epoch-level scalars, and the batch-level ones
                     under ``batches`` (tag names in history.py)
    tb/              TensorBoard event files

TensorBoard tags and the history.json fields they come from are named in history.py (batch
level every ``log_every_steps`` optimizer steps; epoch level, x = epoch, 1-based; in mode
``both`` head-specific tags carry a ``/<head>`` suffix and ``epoch/val_macro_f1`` is the
selection metric, the mean of the heads' macro-F1).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from voxgate.core.checkpoint import load_checkpoint, save_checkpoint
from voxgate.core.device import resolve_device
from voxgate.core.model import SpeakerNet

from .config import TrainConfig, save_train_config
from .evaluate import calibrate_checkpoint
from .history import BatchLog
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
from .train_setup import (
    AUTH_LABELS,
    Dist,
    WeightedEpochSampler,
    balance_weights,
    build_loaders,
    build_model_config,
    heads_for_mode,
    init_distributed,
    init_from_base,
    init_from_checkpoint,
    read_data,
)
from .train_setup import init_from_checkpoint as _init_from
from .train_state import (
    STATE_VERSION,
    atomic_torch_save,
    atomic_write_json,
    capture_rng_state,
    check_run_dir,
    history_record,
    log_epoch,
    read_history,
    restore_rng_state,
    seed_everything,
    summary_line,
)

__all__ = [
    "TrainResult", "run_training", "heads_for_mode", "build_model_config", "balance_weights",
    "WeightedEpochSampler", "capture_rng_state", "restore_rng_state", "seed_everything",
    "atomic_torch_save", "amp_dtype", "make_scaler", "mc_spread", "train_step", "SpeakerNet",
    "_init_from",
]  # fmt: skip

log = logging.getLogger(__name__)


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
    dist = init_distributed(cfg.device)
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
    dist: Dist
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
            metrics={k: v for k, v in metrics.items() if k != "batches"},  # epoch numbers only
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
        atomic_write_json(t.history, self.run_dir / "history.json")

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a train_state.pt (the weights come from last_model.pt)."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.tracker = _Tracker(**state["tracker"])
        self.tracker.history = read_history(self.run_dir)[: self.tracker.epoch]
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
        batches = BatchLog(self.writer) if self.dist.main else None  # kept in history.json
        show = self.progress and self.dist.main
        desc = f"epoch {t.epoch + 1}/{cfg.epochs}"
        with tqdm(total=n_steps, desc=desc, file=sys.stderr, disable=not show, leave=False) as bar:
            if self.on_progress is not None and self.dist.main:
                bar = StepReporter(
                    bar, self.on_progress, epoch=t.epoch + 1, epochs=cfg.epochs, total=n_steps
                )
            stats, t.step = train_one_epoch(
                self.module, self.train_loader, self.heads, self.optimizer, self.scaler, self.ctx,
                cfg, self.device, step=t.step, writer=batches, bar=bar,
            )  # fmt: skip
        self.scheduler.step()
        t.epoch += 1
        stop = torch.zeros(1, device=self.device)
        if self.dist.main:
            stop += self._validate_and_save(stats, start, batches)
        if self.dist.enabled:
            torch.distributed.broadcast(stop, src=0)
        return bool(stop.item())

    def _validate_and_save(self, stats: EpochStats, start: float, batches: BatchLog) -> bool:
        cfg, t = self.cfg, self.tracker
        val = evaluate_epoch(
            self.model, self.val_loader, self.heads, self.ctx, self.device,
            max_batches=cfg.limit_val_batches, mc_passes=cfg.mc_passes, mc_batches=cfg.mc_batches,
        )  # fmt: skip
        lr = self.optimizer.param_groups[0]["lr"]
        rec = history_record(t.epoch, stats, val, lr, time.perf_counter() - start)
        rec["batches"] = batches.record()
        t.history.append(rec)
        improved = rec["selection"] > t.best_metric
        if improved:
            t.best_metric, t.best_epoch, t.bad_epochs = rec["selection"], t.epoch, 0
            self.save_model(self.best_path, rec)
        else:
            t.bad_epochs += 1
        log_epoch(self.writer, rec)
        log.info(summary_line(rec, cfg.epochs, improved))
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
    dist: Dist,
    resume: bool,
    init_from: Path | None,
) -> tuple[_Session, dict[str, Any] | None]:
    """Build the session: data, model (fresh, fine-tuned or resumed), optimizer, loaders."""
    device = resolve_device(cfg.device, dist.local_rank)
    cfg = cfg.resolved(cuda=device.type == "cuda")
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    meta = read_data(data_path)
    heads = heads_for_mode(cfg.mode, meta.speakers, cfg)
    state = check_run_dir(run_dir, resume, cfg, meta.fingerprint)
    seed_everything(cfg.seed)
    fine_tune = init_from is not None and state is None
    base = init_from_base(init_from, meta.feature_config) if fine_tune else None
    model = SpeakerNet(build_model_config(cfg, meta.feature_config.n_mels, heads, base))
    if fine_tune:
        recreated = init_from_checkpoint(model, init_from)
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
    train_loader, sampler, val_loader = build_loaders(data_path, cfg, heads, dist, meta)
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
    dist: Dist,
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
        _open_run_dir(s, run_dir, data_path, dist, resumed=state is not None)
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


def _open_run_dir(s: _Session, run_dir: Path, data_path: Path, dist: Dist, resumed: bool) -> None:
    """Rank 0: config.json and the TensorBoard writer (purged past the resumed step)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    save_train_config(s.cfg, run_dir / "config.json")
    from torch.utils.tensorboard import SummaryWriter

    s.writer = SummaryWriter(str(run_dir / "tb"), purge_step=s.tracker.step if resumed else None)
    amp = f", AMP {amp_dtype(s.device)}".replace("torch.", "") if s.cfg.amp else ""
    log.info(
        "training %s on %s: %d train rows per epoch and process, %s%s, %d process(es)",
        s.cfg.mode, data_path, len(s.sampler), s.device, amp, dist.world_size,
    )  # fmt: skip


def _calibrate(
    best_path: Path, data_path: Path, target_far: float, device: torch.device
) -> dict[str, Any] | None:
    """Threshold calibration of the best checkpoint on the val split (evaluate.calibrate_checkpoint)."""
    log.info("calibrating %s on the val split (target FAR %.3g)", best_path, target_far)
    return calibrate_checkpoint(
        best_path, data_path, split="val", target_far=target_far, device=device
    )
