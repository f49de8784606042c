"""What a run keeps between epochs and across a resume: RNG states, the resume-state file,
history.json records, their TensorBoard scalars and log lines; every file written atomically."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxgate.core.errors import CheckpointError, ConfigError, DatasetError
from voxgate.core.fileio import atomic_write

from .config import TrainConfig
from .history import epoch_scalars
from .loop import EpochStats

__all__ = [
    "STATE_VERSION", "capture_rng_state", "restore_rng_state", "seed_everything",
    "atomic_torch_save", "atomic_write_json", "check_run_dir", "read_history", "history_record",
    "log_epoch", "summary_line",
]  # fmt: skip

STATE_VERSION = 1


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


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save through ``core.fileio.atomic_write`` (no torn files)."""
    atomic_write(path, lambda fh: torch.save(obj, fh))


def atomic_write_json(obj: Any, path: Path) -> None:
    atomic_write(path, json.dumps(obj, indent=1) + "\n")


def check_run_dir(
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


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "history.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def history_record(
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


def log_epoch(writer: Any, rec: dict[str, Any]) -> None:
    """The record's epoch-level scalars (history.epoch_scalars) to TensorBoard."""
    for tag, value in epoch_scalars(rec).items():
        writer.add_scalar(tag, value, rec["epoch"])
    writer.flush()


def summary_line(rec: dict[str, Any], epochs: int, best: bool) -> str:
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
