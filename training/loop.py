"""The training loop, apart from its wiring (train.py): one optimizer step
(:func:`train_step`), one epoch (:func:`train_one_epoch`), one validation pass
(:func:`evaluate_epoch`), and the AMP helpers they share. Nothing here reads files or
builds models; train.py passes everything in.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from voxgate.core.errors import DatasetError
from voxgate.core.metrics import classification_report
from voxgate.core.model import SpeakerNet

from .config import TrainConfig
from .history import head_tag

__all__ = [
    "HeadSpec", "EpochStats", "LossModule", "amp_dtype", "autocast_ctx", "make_scaler",
    "selection_metric", "head_tag", "train_step", "train_one_epoch", "mc_spread",
    "evaluate_epoch", "summarize_validation",
]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """One classification head: its name, classes, the batch key of its targets, loss weight."""

    name: str
    labels: tuple[str, ...]
    target: str  # "label" (authentication) or "speaker" (identification)
    weight: float = 1.0

    @property
    def n_classes(self) -> int:
        return len(self.labels)


def amp_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on CPU and on CUDA cards that support it, else float16 (needs GradScaler)."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def autocast_ctx(device: torch.device, enabled: bool) -> AbstractContextManager:
    """The one autocast context for forward passes (a no-op when ``enabled`` is False)."""
    return torch.autocast(device_type=device.type, dtype=amp_dtype(device), enabled=enabled)


def make_scaler(device: torch.device, amp: bool) -> torch.amp.GradScaler:
    """GradScaler, enabled only for float16 autocast (bf16 and fp32 need no loss scaling)."""
    enabled = amp and amp_dtype(device) == torch.float16
    return torch.amp.GradScaler(device.type, enabled=enabled)


def selection_metric(val: dict[str, Any]) -> float:
    """Mean of the heads' validation macro-F1 (the early-stopping / best-model metric)."""
    return float(np.mean([h["macro_f1"] for h in val["heads"].values()]))


class LossModule(nn.Module):
    """SpeakerNet + its heads' losses in one forward, so DDP sees every parameter used."""

    def __init__(self, model: SpeakerNet, heads: Sequence[HeadSpec]):
        super().__init__()
        self.model = model
        self.specs = list(heads)

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor, targets: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """feats (B,T,M), lengths (B,), targets {head: (B,) long} ->
        (weighted total loss (), {head: loss ()}, {head: margin-free logits (B,C), no grad})."""
        emb = self.model(feats, lengths)
        losses, logits = {}, {}
        for h in self.specs:
            y = targets[h.name]
            losses[h.name] = F.cross_entropy(self.model.head_logits(emb, h.name, y), y)
            with torch.no_grad():
                logits[h.name] = self.model.head_logits(emb.detach(), h.name)
        total = sum(h.weight * losses[h.name] for h in self.specs)
        return total, {k: v.detach() for k, v in losses.items()}, logits


def _to_device(batch: dict[str, torch.Tensor], device: torch.device, non_blocking: bool) -> dict:
    return {k: v.to(device, non_blocking=non_blocking) for k, v in batch.items()}


def train_step(
    module: nn.Module,
    batch: dict[str, torch.Tensor],
    heads: Sequence[HeadSpec],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    ctx: AbstractContextManager,
    grad_clip: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One optimizer step (AMP via ``ctx`` and ``scaler``; both may be disabled).
    Returns the detached (total loss, per-head losses, per-head margin-free logits)."""
    targets = {h.name: batch[h.target] for h in heads}
    with ctx:
        loss, head_losses, logits = module(batch["features"], batch["lengths"], targets)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), head_losses, logits


@dataclasses.dataclass
class EpochStats:
    """Training sums of one epoch (all-reduced across ranks)."""

    loss: float
    head_loss: dict[str, float]
    acc: dict[str, float]
    samples: int
    steps: int
    seconds: float


def train_one_epoch(
    module: nn.Module,
    loader: DataLoader,
    heads: Sequence[HeadSpec],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    ctx: AbstractContextManager,
    cfg: TrainConfig,
    device: torch.device,
    *,
    step: int,
    writer: Any | None = None,
    bar: Any | None = None,
) -> tuple[EpochStats, int]:
    """Train over ``loader`` (at most cfg.max_steps_per_epoch steps). Returns (stats, global step)."""
    module.train()
    n_heads = len(heads)
    sums = torch.zeros(2 + 2 * n_heads, dtype=torch.float64, device=device)  # loss, n, per head
    start, steps = time.perf_counter(), 0
    for batch in itertools.islice(loader, cfg.max_steps_per_epoch or None):
        batch = _to_device(batch, device, non_blocking=device.type == "cuda")
        loss, head_losses, logits = train_step(
            module, batch, heads, optimizer, scaler, ctx, cfg.grad_clip
        )
        b = batch["features"].shape[0]
        correct = [(logits[h.name].argmax(1) == batch[h.target]).sum().double() for h in heads]
        losses = [head_losses[h.name].double() * b for h in heads]
        sums += torch.stack([loss.double() * b, sums.new_tensor(b), *losses, *correct])
        steps, step = steps + 1, step + 1
        if writer is not None and step % cfg.log_every_steps == 0:
            writer.add_scalar("batch/loss", loss.item(), step)
            for h, c in zip(heads, correct):
                writer.add_scalar(head_tag("batch/acc", h.name, n_heads > 1), c.item() / b, step)
            writer.add_scalar("batch/lr", optimizer.param_groups[0]["lr"], step)
        if bar is not None:
            if steps % 10 == 1:
                bar.set_postfix(loss=f"{loss.item():.3f}")
            bar.update(1)
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(sums)
    s = sums.tolist()
    n = max(s[1], 1.0)
    stats = EpochStats(
        loss=s[0] / n,
        head_loss={h.name: s[2 + i] / n for i, h in enumerate(heads)},
        acc={h.name: s[2 + n_heads + i] / n for i, h in enumerate(heads)},
        samples=int(s[1]),
        steps=steps,
        seconds=time.perf_counter() - start,
    )
    return stats, step


@torch.no_grad()
def mc_spread(
    model: SpeakerNet,
    feats: torch.Tensor,
    lengths: torch.Tensor,
    head: str,
    y: torch.Tensor,
    passes: int,
) -> torch.Tensor:
    """Std over ``passes`` MC-dropout passes of the true class's probability: float32 (B,)."""
    emb = model.embed_mc(feats, passes, lengths)  # (P, B, D)
    p, b, d = emb.shape
    probs = model.head_probs(emb.reshape(p * b, d), head).float().reshape(p, b, -1)
    target = probs.gather(2, y.view(1, b, 1).expand(p, b, 1)).squeeze(2)  # (P, B)
    return target.std(dim=0, correction=0)


@torch.no_grad()
def evaluate_epoch(
    model: SpeakerNet,
    loader: DataLoader,
    heads: Sequence[HeadSpec],
    ctx: AbstractContextManager,
    device: torch.device,
    *,
    max_batches: int = 0,
    mc_passes: int = 0,
    mc_batches: int = 0,
) -> dict[str, Any]:
    """Validation: weighted loss, and per head loss / accuracy / macro P, R, F1 / MC spread.

    Returns {"loss", "samples", "selection", "heads": {name: {...}}}; "selection" is the
    mean macro-F1 over the heads.
    """
    model.eval()
    y_true = {h.name: [] for h in heads}
    y_pred = {h.name: [] for h in heads}
    loss_sum = {h.name: 0.0 for h in heads}
    spreads = {h.name: [] for h in heads}
    for i, batch in enumerate(itertools.islice(loader, max_batches or None)):
        batch = _to_device(batch, device, non_blocking=device.type == "cuda")
        feats, lengths = batch["features"], batch["lengths"]
        with ctx:
            emb = model(feats, lengths)
            for h in heads:
                y = batch[h.target]
                margin_logits = model.head_logits(emb, h.name, y)
                loss_sum[h.name] += F.cross_entropy(margin_logits, y, reduction="sum").item()
                y_pred[h.name].append(model.head_logits(emb, h.name).argmax(1).cpu())
                y_true[h.name].append(y.cpu())
                if mc_passes and i < mc_batches:
                    spreads[h.name].append(
                        mc_spread(model, feats, lengths, h.name, y, mc_passes).cpu()
                    )
    return summarize_validation(heads, y_true, y_pred, loss_sum, spreads)


def summarize_validation(
    heads: Sequence[HeadSpec],
    y_true: dict[str, list[torch.Tensor]],
    y_pred: dict[str, list[torch.Tensor]],
    loss_sum: dict[str, float],
    spreads: dict[str, list[torch.Tensor]],
) -> dict[str, Any]:
    """Turn collected predictions into the validation record (plain floats)."""
    out: dict[str, Any] = {"heads": {}}
    n = sum(len(t) for t in y_true[heads[0].name])
    if n == 0:
        raise DatasetError("the validation split yielded no rows")
    for h in heads:
        t = torch.cat(y_true[h.name]).numpy()
        p = torch.cat(y_pred[h.name]).numpy()
        rep = classification_report(t, p, list(h.labels))
        spread = torch.cat(spreads[h.name]).mean().item() if spreads[h.name] else None
        out["heads"][h.name] = {
            "loss": loss_sum[h.name] / n,
            "accuracy": rep["accuracy"],
            "macro_precision": rep["macro"]["precision"],
            "macro_recall": rep["macro"]["recall"],
            "macro_f1": rep["macro"]["f1"],
            "mc_spread": spread,
            "per_class": rep["per_class"],
        }
    out["loss"] = sum(h.weight * out["heads"][h.name]["loss"] for h in heads)
    out["samples"] = n
    out["selection"] = selection_metric(out)
    return out
