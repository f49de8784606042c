"""Model-side speed: ``bench features`` (log_mel in x real time: 1-s chunks one by one,
batches of 64, a 60-s wave), ``bench inference`` (ms per 1-s window at batch 1, features +
model, deterministic and MC dropout) and ``bench inference-throughput`` (1-s chunks per
second of a checkpoint's model at several batch sizes, CPU and CUDA).

Model timings run on ``torch.utils.benchmark.Timer`` (thread count set per measurement, an
accelerator synchronized before each clock reading)."""

from __future__ import annotations

import argparse
import copy
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from voxgate.core.errors import ConfigError

from .bench_common import (
    SR,
    add_model_choice,
    add_threads_out,
    emit,
    load_encoder,
    percentiles_ms,
    preset_name,
    synth_voiced,
    time_calls,
    torch_threads,
)

if TYPE_CHECKING:
    import torch

    from voxgate.core.inference import SpeakerEncoder

__all__ = ["measure_features", "measure_inference", "measure_inference_throughput"]


# --------------------------------------------------------------------------- features


def measure_features(
    *, threads: int = 1, seconds: float = 2.0, presets: Sequence[str] = ("report", "speaker")
) -> dict[str, Any]:
    """log_mel speed per preset for three input shapes (noise input; speed is content-free).

    Cases: ``chunk_1s`` one (16000,) chunk per call, ``batch_64`` a (64, 16000) batch,
    ``wave_60s`` one (960000,) waveform. Each runs >= ``seconds`` wall seconds after one
    untimed call. x_realtime = audio seconds processed / wall seconds (cpu: / CPU seconds).
    """
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    long = (0.1 * rng.standard_normal(60 * SR)).astype(np.float32)
    with torch_threads(threads) as n_threads:
        results = {name: _features_preset(name, long, seconds) for name in presets}
    return {
        "bench": "features",
        "threads": n_threads,
        "min_seconds_per_case": seconds,
        "presets": results,
        "torch": torch.__version__,
    }


def _features_preset(name: str, long: Any, seconds: float) -> dict[str, Any]:
    """The three cases of :func:`measure_features` for one preset."""
    import numpy as np

    from voxgate.core.config import FeatureConfig
    from voxgate.core.features import log_mel

    fc = FeatureConfig.preset(name)
    chunks = long.reshape(60, SR)
    batch = np.resize(chunks, (64, SR))  # 64 distinct-enough 1-s chunks (60 + 4 repeats)
    state = {"i": 0}

    def one_chunk() -> None:
        log_mel(chunks[state["i"] % len(chunks)], fc)
        state["i"] += 1

    cases = {
        "chunk_1s": (one_chunk, 1.0),
        "batch_64": (lambda: log_mel(batch, fc), 64.0),
        "wave_60s": (lambda: log_mel(long, fc), 60.0),
    }
    per_case: dict[str, Any] = {}
    for case, (fn, audio_s) in cases.items():
        t = time_calls(fn, seconds)
        done = audio_s * t["calls"]
        per_case[case] = {
            "audio_s_per_call": audio_s,
            "calls": t["calls"],
            "ms_per_call": 1000.0 * t["wall_s"] / t["calls"],
            "x_realtime": done / t["wall_s"],
            "x_realtime_cpu": done / max(t["cpu_s"], 1e-9),
        }
    return {
        "frames_per_s": fc.frames_per_chunk,
        "n_mels": fc.n_mels,
        "n_fft": fc.n_fft,
        "hop_length": fc.hop_length,
        **per_case,
    }


def add_features(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=2.0, help="min measuring time per case")
    add_threads_out(p)


def cmd_features(args: argparse.Namespace) -> int:
    return emit(measure_features(threads=args.threads, seconds=args.seconds), args.out)


# --------------------------------------------------------------------------- inference


def timed_calls(fn: Callable[[], Any], iters: int, warmup: int) -> dict[str, float]:
    """Per-call wall time of ``fn`` on ``torch.utils.benchmark.Timer``, at the current torch
    thread count: ``warmup`` untimed calls, then ``iters`` timed ones (each a
    ``Timer.timeit(1)``, which makes its own warm-up calls first). Returns
    :func:`percentiles_ms` and ``cpu_mean_ms``, the process CPU time per call over every call
    made while timing."""
    import torch
    from torch.utils.benchmark import Timer

    calls = 0

    def counted() -> None:
        nonlocal calls
        calls += 1
        fn()

    timer = Timer("fn()", globals={"fn": counted}, num_threads=torch.get_num_threads())
    for _ in range(warmup):
        fn()
    c0 = time.process_time()
    times = [timer.timeit(number=1).mean for _ in range(iters)]
    cpu_ms = 1000.0 * (time.process_time() - c0) / max(calls, 1)
    return {**percentiles_ms(times), "cpu_mean_ms": cpu_ms}


def measure_inference(
    *,
    model: str | None = None,
    features: str = "report",
    mc_passes: int = 20,
    iters: int = 50,
    warmup: int = 3,
    threads: int = 1,
    device: str = "cpu",
    encoder: SpeakerEncoder | None = None,
) -> dict[str, Any]:
    """Per-window cost at batch 1: ``encoder.features``, ``embed`` and ``embed_mc`` on one
    (1, chunk_samples) speech-like window, each timed ``iters`` times after ``warmup`` calls
    (:func:`timed_calls`).

    ``encoder`` overrides ``model`` / ``features`` (see :func:`load_encoder`). Times include
    feature extraction (except ``features_only``). Returns ms p50/p95/max/mean per case.
    """
    import numpy as np
    import torch

    if iters < 1 or mc_passes < 2:
        raise ConfigError("inference bench needs iters >= 1 and mc_passes >= 2")
    if encoder is None:
        encoder, desc = load_encoder(model, features, device)
    else:
        desc = "given encoder"
    fc = encoder.feature_config
    wave = synth_voiced(fc.chunk_s)[None, :]
    with torch_threads(threads) as n_threads:
        feats_only = timed_calls(lambda: encoder.features(wave), iters, warmup)
        det = timed_calls(lambda: encoder.embed(wave), iters, warmup)
        mc = timed_calls(lambda: encoder.embed_mc(wave, mc_passes), iters, warmup)
        emb = encoder.embed(wave)
    return {
        "bench": "inference",
        "model": desc,
        "fingerprint": encoder.fingerprint,
        "features": preset_name(fc),
        "frames": fc.frames_per_chunk,
        "n_mels": fc.n_mels,
        "window_s": fc.chunk_s,
        "params": sum(p.numel() for p in encoder.model.parameters()),
        "embed_dim": int(emb.shape[1]),
        "batch": 1,
        "iters": iters,
        "warmup": warmup,
        "mc_passes": mc_passes,
        "threads": n_threads,
        "device": str(encoder.device),
        "features_only": feats_only,
        "deterministic": det,
        "mc": mc,
        "mc_over_deterministic": mc["p50_ms"] / max(det["p50_ms"], 1e-9),
        "realtime_share_deterministic": det["p50_ms"] / (1000.0 * fc.chunk_s),
        "torch": torch.__version__,
        "finite": bool(np.isfinite(emb).all()),
    }


def add_inference(p: argparse.ArgumentParser) -> None:
    add_model_choice(p)
    p.add_argument("--mc-passes", type=int, default=20)
    p.add_argument("--iters", type=int, default=50, help="timed calls per case")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cpu")
    add_threads_out(p)


def cmd_inference(args: argparse.Namespace) -> int:
    result = measure_inference(
        model=args.model, features=args.features, mc_passes=args.mc_passes, iters=args.iters,
        warmup=args.warmup, threads=args.threads, device=args.device,
    )  # fmt: skip
    return emit(result, args.out)


# --------------------------------------------------------------------------- throughput


def measure_inference_throughput(
    *,
    model: str | None = None,
    features: str = "report",
    batch_sizes: Sequence[int] = (1, 64),
    mc_passes: int = 20,
    min_time_s: float = 1.0,
    cuda: bool | None = None,
    encoder: SpeakerEncoder | None = None,
) -> dict[str, Any]:
    """1-s chunks per second of the checkpoint's (float) model, from waveform (log-mel +
    model), at each of ``batch_sizes``, deterministic and with ``mc_passes`` MC-dropout passes
    (0: skip); on the CPU with 1 thread and with all threads, and on CUDA when available
    (``cuda=None``). Each case is a ``Timer.blocked_autorange`` of >= ``min_time_s`` seconds
    on noise input; ``ms_per_batch`` is its median. ``encoder`` overrides ``model``."""
    import torch

    if encoder is None:
        encoder, desc = load_encoder(model, features, "cpu")
    else:
        desc = "given encoder"
    fc = encoder.feature_config
    all_threads = max(torch.get_num_threads(), os.cpu_count() or 1)
    settings: list[tuple[str, str, int]] = [
        ("cpu_1_thread", "cpu", 1),
        (f"cpu_{all_threads}_threads", "cpu", all_threads),
    ]
    if torch.cuda.is_available() if cuda is None else cuda:
        settings.append(("cuda", "cuda", torch.get_num_threads()))
    out: dict[str, Any] = {
        "bench": "inference-throughput", "model": desc, "unit": "chunks/s",
        "chunk_s": fc.chunk_samples / fc.sample_rate, "includes_features": True,
        "mc_passes": int(mc_passes), "min_time_s": min_time_s, "torch": torch.__version__,
    }  # fmt: skip
    rows: list[dict[str, Any]] = []
    for name, dev_name, threads in settings:
        dev = torch.device(dev_name)
        net = encoder.model if dev.type == "cpu" else copy.deepcopy(encoder.model).to(dev)
        rows += _throughput_rows(net.eval(), fc, name, dev, threads, batch_sizes, mc_passes,
                                 min_time_s)  # fmt: skip
        if dev.type == "cuda":
            out["cuda_device"] = torch.cuda.get_device_name(dev)
    out["results"] = rows
    return out


def _throughput_rows(
    net: torch.nn.Module,
    fc: Any,
    name: str,
    dev: torch.device,
    threads: int,
    batch_sizes: Sequence[int],
    mc_passes: int,
    min_time_s: float,
) -> list[dict[str, Any]]:
    """One row per (batch size, deterministic | MC) of ``net`` on ``dev``: chunks/s, ms/batch."""
    import numpy as np
    import torch
    from torch.utils.benchmark import Timer

    from voxgate.core.features import log_mel

    rng = np.random.default_rng(0)
    rows = []
    for bs in batch_sizes:
        noise = 0.1 * rng.standard_normal((bs, fc.chunk_samples))
        waves = torch.from_numpy(noise.astype(np.float32)).to(dev)
        for mode, passes in [("deterministic", 0)] + ([("mc", mc_passes)] if mc_passes else []):

            def step(waves: torch.Tensor = waves, passes: int = passes) -> None:
                with torch.inference_mode():
                    feats = log_mel(waves, fc)
                    if passes:
                        net.embed_mc(feats, passes)
                    else:
                        net(feats)

            timer = Timer("step()", globals={"step": step}, num_threads=threads)
            sec = timer.blocked_autorange(min_run_time=min_time_s).median
            rows.append({"device": name, "batch": int(bs), "mode": mode, "passes": int(passes),
                         "chunks_per_s": bs / sec, "ms_per_batch": 1000.0 * sec})  # fmt: skip
    return rows


def add_inference_throughput(p: argparse.ArgumentParser) -> None:
    add_model_choice(p)
    p.add_argument("--batch-sizes", default="1,64", help="comma-separated batch sizes")
    p.add_argument("--mc-passes", type=int, default=20, help="MC passes of the MC rows (0: skip)")
    p.add_argument("--seconds", type=float, default=1.0, help="min measuring time per case")
    p.add_argument("--cuda", action=argparse.BooleanOptionalAction, default=None,
                   help="time on CUDA too (default: when available)")  # fmt: skip
    p.add_argument("--out", help="also write the JSON line to this file")


def cmd_inference_throughput(args: argparse.Namespace) -> int:
    try:
        sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    except ValueError as exc:
        raise ConfigError(f"--batch-sizes: expected integers, got {args.batch_sizes!r}") from exc
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"--batch-sizes: expected positive integers, got {args.batch_sizes!r}")
    result = measure_inference_throughput(
        model=args.model, features=args.features, batch_sizes=sizes, mc_passes=args.mc_passes,
        min_time_s=args.seconds, cuda=args.cuda,
    )  # fmt: skip
    return emit(result, args.out)
