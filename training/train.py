"""Training wiring: data, model, AdamW, cosine LR, early stopping, TensorBoard, checkpoints,
resume, DDP. ``run_training`` wires a run; the run's state and its per-epoch work (train,
validate, log, checkpoint) are ``train_session.Session``; the loop itself (one step, one
epoch, validation) is in loop.py.

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
from pathlib import Path
from typing import Any

import torch
from torch import nn

from voxgate.core.checkpoint import load_checkpoint
from voxgate.core.device import resolve_device
from voxgate.core.model import SpeakerNet

from .checkpoint_calibration import calibrate_checkpoint
from .config import TrainConfig, save_train_config
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
from .progress import Report
from .train_session import Session, Tracker
from .train_setup import (
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
    ready_for_training,
)
from .train_setup import init_from_checkpoint as _init_from
from .train_state import (
    atomic_torch_save,
    capture_rng_state,
    check_run_dir,
    restore_rng_state,
    seed_everything,
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


def _setup(
    data_path: Path,
    run_dir: Path,
    cfg: TrainConfig,
    dist: Dist,
    resume: bool,
    init_from: Path | None,
) -> tuple[Session, dict[str, Any] | None]:
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
    ready_for_training(model, device, cfg.compile)
    module: nn.Module = LossModule(model, heads)
    if dist.enabled:
        ids = [dist.local_rank] if device.type == "cuda" else None
        module = nn.parallel.DistributedDataParallel(module, device_ids=ids)
    optimizer = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    train_loader, sampler, val_loader = build_loaders(data_path, cfg, heads, dist, meta)
    session = Session(
        cfg=cfg, dist=dist, device=device, data_path=data_path, run_dir=run_dir, meta=meta,
        heads=heads, model=model, module=module, optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.cosine_t_max),
        scaler=make_scaler(device, cfg.amp), ctx=autocast_ctx(device, cfg.amp),
        train_loader=train_loader, sampler=sampler, val_loader=val_loader, tracker=Tracker(),
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


def _open_run_dir(s: Session, run_dir: Path, data_path: Path, dist: Dist, resumed: bool) -> None:
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
