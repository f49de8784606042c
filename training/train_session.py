"""One training run's state and its per-epoch work: the counters that survive a resume
(``Tracker``) and ``Session`` (model, optimizer, loaders; train, validate, log and
checkpoint one epoch; save and load the resume state). train.py builds and drives it; the
step and epoch loops are in loop.py."""

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

from voxgate.core.checkpoint import save_checkpoint
from voxgate.core.model import SpeakerNet

from .config import TrainConfig
from .history import BatchLog
from .loop import EpochStats, HeadSpec, evaluate_epoch, train_one_epoch
from .progress import Report, StepReporter, epoch_record
from .train_setup import AUTH_LABELS, Dist
from .train_state import (
    STATE_VERSION,
    atomic_torch_save,
    atomic_write_json,
    capture_rng_state,
    history_record,
    log_epoch,
    read_history,
    restore_rng_state,
    summary_line,
)

__all__ = ["Tracker", "Session"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Tracker:
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
class Session:
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
    tracker: Tracker
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
        self.tracker = Tracker(**state["tracker"])
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
