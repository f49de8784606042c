"""Inference speed of a checkpoint: chunks per second and latency, with and without MC dropout."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["measure_speed"]

def _time_loop(
    fn: Callable[[], Any], min_time_s: float, sync: Callable[[], None]
) -> tuple[int, float]:
    fn()  # warm-up
    sync()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        sync()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time_s and n >= 2:
            return n, elapsed


def measure_speed(
    model: torch.nn.Module,
    feature_config: Any,
    *,
    batch_sizes: Sequence[int] = (1, 64),
    mc_passes: int = 20,
    min_time_s: float = 1.0,
    cuda: bool | None = None,
) -> dict[str, Any]:
    """Inference throughput in 1-s chunks per second, from waveform (log-mel + model).

    CPU with 1 thread and with all threads, and CUDA when available (``cuda=None``);
    deterministic and MC dropout (``mc_passes``; skipped when 0). The thread count is restored.
    """
    n_samples = feature_config.chunk_samples
    rng = np.random.default_rng(0)
    threads_before = torch.get_num_threads()
    all_threads = max(threads_before, os.cpu_count() or 1)
    settings: list[tuple[str, torch.device, int | None]] = [
        ("cpu_1_thread", torch.device("cpu"), 1),
        (f"cpu_{all_threads}_threads", torch.device("cpu"), all_threads),
    ]
    if cuda is None:
        cuda = torch.cuda.is_available()
    if cuda:
        settings.append(("cuda", torch.device("cuda"), None))
    out: dict[str, Any] = {
        "unit": "chunks/s",
        "chunk_s": n_samples / feature_config.sample_rate,
        "includes_features": True,
        "mc_passes": int(mc_passes),
    }
    results: list[dict[str, Any]] = []
    was_training = model.training
    try:
        for name, dev, threads in settings:
            net = model if dev.type == "cpu" else copy.deepcopy(model).to(dev)
            net.eval()
            if threads is not None:
                torch.set_num_threads(threads)
            results += _time_device(
                net, name, dev, batch_sizes, mc_passes, min_time_s, feature_config, rng
            )
            if dev.type == "cuda":
                out["cuda_device"] = torch.cuda.get_device_name(dev)
    finally:
        torch.set_num_threads(threads_before)
        model.train(was_training)
    out["results"] = results
    return out


def _time_device(
    net: torch.nn.Module,
    name: str,
    dev: torch.device,
    batch_sizes: Sequence[int],
    mc_passes: int,
    min_time_s: float,
    feature_config: Any,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """One row per (batch size, deterministic | MC) of ``net`` on ``dev``: chunks/s, ms/batch."""
    from voxgate.core.features import log_mel

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    rows = []
    for bs in batch_sizes:
        noise = 0.1 * rng.standard_normal((bs, feature_config.chunk_samples))
        waves = torch.from_numpy(noise.astype(np.float32)).to(dev)
        modes = [("deterministic", 0)] + ([("mc", mc_passes)] if mc_passes > 0 else [])
        for mode, passes in modes:

            def step(waves=waves, passes=passes) -> None:
                with torch.inference_mode():
                    feats = log_mel(waves, feature_config)
                    if passes:
                        net.embed_mc(feats, passes)
                    else:
                        net(feats)

            n, elapsed = _time_loop(step, min_time_s, sync)
            rows.append(
                {"device": name, "batch": int(bs), "mode": mode, "passes": int(passes),
                 "chunks_per_s": n * bs / elapsed, "ms_per_batch": 1000.0 * elapsed / n}
            )  # fmt: skip
    return rows
