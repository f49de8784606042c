"""``bench train-throughput``: training samples/s of the report model (or any ModelConfig
overrides) on random 1-s inputs, with the same train_step as ``voxgate train``."""

from __future__ import annotations

import argparse
import json
import time
from types import SimpleNamespace
from typing import Any

__all__ = ["measure_train_throughput", "add_train_throughput", "cmd_train_throughput"]


def measure_train_throughput(
    *,
    batch: int = 128,
    steps: int = 20,
    warmup: int = 3,
    amp: bool = True,
    threads: int = 0,
    device: str = "auto",
    features: str = "report",
    mode: str = "authentication",
    n_speakers: int = 40,
    model_overrides: dict[str, Any] | None = None,
    seed: int = 0,
    compile_cnn: bool = False,
) -> dict[str, Any]:
    """Time ``steps`` optimizer steps (after ``warmup``) on random (batch, T, M) log-mel input.

    T and M come from the feature preset ("report": 32 x 64; "speaker": 101 x 80).
    Returns a JSON-ready dict with samples_per_s, step_ms (mean) and the settings.
    """
    import torch

    from .train import amp_dtype

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    run = _training_setup(
        batch, amp, device, features, mode, n_speakers, model_overrides, compile_cnn
    )
    for _ in range(warmup):
        run.step()
    run.sync()
    start = time.perf_counter()
    for _ in range(steps):
        loss, _, _ = run.step()
    run.sync()
    seconds = time.perf_counter() - start
    dev = run.device
    return {
        "bench": "train-throughput",
        "samples_per_s": batch * steps / seconds,
        "step_ms": 1000.0 * seconds / steps,
        "batch": batch,
        "steps": steps,
        "warmup": warmup,
        "frames": run.frames,
        "mels": run.mels,
        "features": features,
        "mode": mode,
        "amp": amp,
        "compile": compile_cnn,
        "amp_dtype": str(amp_dtype(dev)).replace("torch.", "") if amp else "float32",
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in run.model.parameters()),
        "final_loss": float(loss),
        "torch": torch.__version__,
    }


def _training_setup(
    batch: int,
    amp: bool,
    device: str,
    features: str,
    mode: str,
    n_speakers: int,
    model_overrides: dict[str, Any] | None,
    compile_cnn: bool,
) -> SimpleNamespace:
    """Model, optimizer and one random batch as ``voxgate train`` builds them; ``step()``
    runs one train_step on that batch, ``sync()`` waits for the device."""
    import torch

    from voxgate.core.config import FeatureConfig
    from voxgate.core.model import SpeakerNet

    from .config import TrainConfig
    from .train import (
        LossModule,
        autocast_ctx,
        build_model_config,
        heads_for_mode,
        make_scaler,
        resolve_device,
        train_step,
    )  # fmt: skip
    from .train_setup import ready_for_training

    fc = FeatureConfig.preset(features)
    t, m = fc.frames_per_chunk, fc.n_mels
    cfg = TrainConfig(mode=mode, batch_size=batch, amp=amp, model=dict(model_overrides or {}))
    dev = resolve_device(device)
    heads = heads_for_mode(mode, [f"s{i}" for i in range(n_speakers)], cfg)
    model = ready_for_training(SpeakerNet(build_model_config(cfg, m, heads)), dev, compile_cnn)
    module = LossModule(model, heads)
    opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler, ctx = make_scaler(dev, amp), autocast_ctx(dev, amp)
    batch_data = {
        "features": torch.randn(batch, t, m, device=dev) * 10 - 40,
        "lengths": torch.full((batch,), t, dtype=torch.long, device=dev),
        "label": torch.randint(0, 2, (batch,), device=dev),
        "speaker": torch.randint(0, n_speakers, (batch,), device=dev),
    }

    def step() -> Any:
        return train_step(module, batch_data, heads, opt, scaler, ctx, cfg.grad_clip)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    return SimpleNamespace(step=step, sync=sync, device=dev, model=model, frames=t, mels=m)


def add_train_throughput(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--compile", action="store_true", help="torch.compile the CNN (as train's)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--features", choices=("report", "speaker"), default="report")
    p.add_argument("--mode", choices=("authentication", "identification", "both"),
                   default="authentication")  # fmt: skip
    p.add_argument(
        "--model", default="{}", help="ModelConfig overrides as JSON, e.g. '{\"gru_hidden\":128}'"
    )


def cmd_train_throughput(args: argparse.Namespace) -> int:
    result = measure_train_throughput(
        batch=args.batch, steps=args.steps, warmup=args.warmup, amp=args.amp,
        threads=args.threads, device=args.device, features=args.features, mode=args.mode,
        model_overrides=json.loads(args.model), compile_cnn=args.compile,
    )  # fmt: skip
    print(json.dumps(result), flush=True)
    return 0
