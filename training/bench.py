"""Benchmarks: ``python -m voxgate.training.bench SUBCOMMAND ...``; each prints one JSON line.

Subcommands are functions ``cmd_<name>(args) -> int`` registered in ``SUBCOMMANDS`` with a
function that adds their arguments; the measurement itself lives in a plain function that
returns a dict (importable from tests and reports).

train-throughput: training samples/s of the report model (or any ModelConfig overrides) on
random 1-s inputs, with the same train_step as ``voxgate train``.
features: log_mel speed in x real time (1-s chunks one by one, batches of 64, a 60-s wave).
inference: ms per 1-s window at batch 1 (features + model), deterministic and MC dropout.
pipeline: streaming latency and CPU use of core.pipeline.Pipeline over a file paced in
real time, plus the unpaced throughput, with the CPU per stage (VAD, windows, display,
features, model, decision) and ``--load N`` busy processes beside it.
build-throughput: hours of audio per wall-clock minute of the dataset builder.
cli-cost / gui-cost: CPU s per audio s of ``voxgate verify --file`` and of the GUI
(training/bench_cost.py).

The ``x_realtime`` numbers use wall-clock time; ``x_realtime_cpu`` / ``cpu_*`` use this
process's CPU time (``time.process_time``), which a busy machine does not inflate.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxgate.core.errors import ConfigError, DatasetError, ProfileError

from . import bench_cost

if TYPE_CHECKING:
    import numpy as np

    from voxgate.core.inference import SpeakerEncoder


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
) -> dict[str, Any]:
    """Time ``steps`` optimizer steps (after ``warmup``) on random (batch, T, M) log-mel input.

    T and M come from the feature preset ("report": 32 x 64; "speaker": 101 x 80).
    Returns a JSON-ready dict with samples_per_s, step_ms (mean) and the settings.
    """
    import torch

    from voxgate.core.config import FeatureConfig
    from voxgate.core.model import SpeakerNet

    from .config import TrainConfig
    from .train import (
        LossModule,
        amp_dtype,
        autocast_ctx,
        build_model_config,
        heads_for_mode,
        make_scaler,
        resolve_device,
        train_step,
    )  # fmt: skip

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    fc = FeatureConfig.preset(features)
    t, m = fc.frames_per_chunk, fc.n_mels
    cfg = TrainConfig(mode=mode, batch_size=batch, amp=amp, model=dict(model_overrides or {}))
    dev = resolve_device(device)
    speakers = [f"s{i}" for i in range(n_speakers)]
    heads = heads_for_mode(mode, speakers, cfg)
    model = SpeakerNet(build_model_config(cfg, m, heads)).to(
        dev, memory_format=torch.channels_last
    )  # as train.py
    module = LossModule(model, heads)
    opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler, ctx = make_scaler(dev, amp), autocast_ctx(dev, amp)
    batch_data = {
        "features": torch.randn(batch, t, m, device=dev) * 10 - 40,
        "lengths": torch.full((batch,), t, dtype=torch.long, device=dev),
        "label": torch.randint(0, 2, (batch,), device=dev),
        "speaker": torch.randint(0, n_speakers, (batch,), device=dev),
    }

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(warmup):
        train_step(module, batch_data, heads, opt, scaler, ctx, cfg.grad_clip)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        loss, _, _ = train_step(module, batch_data, heads, opt, scaler, ctx, cfg.grad_clip)
    sync()
    seconds = time.perf_counter() - start
    return {
        "bench": "train-throughput",
        "samples_per_s": batch * steps / seconds,
        "step_ms": 1000.0 * seconds / steps,
        "batch": batch,
        "steps": steps,
        "warmup": warmup,
        "frames": t,
        "mels": m,
        "features": features,
        "mode": mode,
        "amp": amp,
        "amp_dtype": str(amp_dtype(dev)).replace("torch.", "") if amp else "float32",
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
        "final_loss": float(loss),
        "torch": torch.__version__,
    }


def _add_train_throughput(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
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
        model_overrides=json.loads(args.model),
    )  # fmt: skip
    print(json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------- shared helpers

_SR = 16000


@contextmanager
def _torch_threads(threads: int) -> Iterator[int]:
    """Run with ``threads`` intra-op torch threads (0: leave as is); restores the old count."""
    import torch

    old = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def _percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / max / mean of durations given in seconds, as milliseconds."""
    import numpy as np

    if len(seconds) == 0:
        return {"p50_ms": math.nan, "p95_ms": math.nan, "max_ms": math.nan, "mean_ms": math.nan}
    x = 1000.0 * np.asarray(seconds, dtype=np.float64)
    return {
        "p50_ms": float(np.percentile(x, 50)),
        "p95_ms": float(np.percentile(x, 95)),
        "max_ms": float(x.max()),
        "mean_ms": float(x.mean()),
    }


@contextmanager
def busy_cores(n: int) -> Iterator[list[Any]]:
    """Keep ``n`` other processes busy (a pure-Python spin loop each) while inside: the
    "busy machine" condition of the streaming benchmarks. Yields their Popen objects."""
    import subprocess

    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _time_calls(fn: Callable[[], Any], min_s: float, *, min_calls: int = 1) -> dict[str, float]:
    """Call ``fn`` once untimed, then repeatedly until ``min_s`` wall seconds have passed.

    Returns calls, wall_s and cpu_s (process CPU time) of the timed calls.
    """
    fn()
    calls, w0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        calls += 1
        wall = time.perf_counter() - w0
        if calls >= min_calls and wall >= min_s:
            break
    return {"calls": calls, "wall_s": wall, "cpu_s": time.process_time() - c0}


def synth_voiced(seconds: float, *, seed: int = 0, sr: int = _SR) -> np.ndarray:
    """Speech-like test signal float32 (round(seconds * sr),), peak 0.5.

    A glottal pulse train (f0 ~110-140 Hz with vibrato) through three formant resonators that
    move between vowels every syllable, with a 4-Hz syllable envelope and faint wideband
    breath noise; webrtcvad calls it speech and the voicing check scores it.
    """
    import numpy as np
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    f0 = 125.0 * (1.0 + 0.08 * np.sin(2 * np.pi * 0.3 * t) + 0.03 * np.sin(2 * np.pi * 5 * t))
    frac = np.cumsum(f0) / sr % 1.0
    flow = np.where(frac < 0.6, np.sin(np.pi * frac / 0.6) ** 2, 0.0)
    source = np.diff(flow, prepend=0.0) + 0.01 * rng.standard_normal(n)
    vowels = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480))
    syll = int(sr / 4.0)
    out = np.zeros(n)
    for k, start in enumerate(range(0, n, syll)):
        seg = source[start : start + syll]
        for i, fc in enumerate(vowels[(k + int(rng.integers(4))) % 4]):
            r = np.exp(-np.pi * (60.0 + 40.0 * i) / sr)
            a = [1.0, -2 * r * np.cos(2 * np.pi * fc / sr), r * r]
            out[start : start + seg.size] += lfilter([1.0 - r], a, seg) / (i + 1)
    env = np.clip((0.5 - 0.5 * np.cos(2 * np.pi * 4.0 * t)) * 1.25, 0.0, 1.0) ** 0.5
    # wideband breath noise 34 dB below the voice: real speech is not band-limited, and the
    # scoring path does not score telephone-band audio
    out += 0.02 * np.std(out) * rng.standard_normal(n)
    out *= env
    return (0.5 * out / (np.max(np.abs(out)) or 1.0)).astype(np.float32)


def _shared_data() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _manifest_rows(subset: str) -> list[dict[str, str]]:
    """Rows of <shared>/data/manifest.csv of ``subset`` whose file exists ([] if none)."""
    import csv

    manifest = _shared_data() / "manifest.csv"
    if not manifest.is_file():
        return []
    with open(manifest, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("subset") == subset]
    return [r for r in rows if (manifest.parent / r["path"]).is_file()]


def default_speech_file(min_s: float = 15.0) -> Path | None:
    """A LibriSpeech test-clean file of >= ``min_s`` s from the shared data (None if absent)."""
    for row in _manifest_rows("test-clean"):
        try:
            long_enough = float(row.get("duration_s") or 0.0) >= min_s
        except ValueError:
            continue
        if long_enough:
            return _shared_data() / row["path"]
    return None


def _load_encoder(model: str | None, features: str, device: str) -> tuple[SpeakerEncoder, str]:
    """(encoder, description): ``model`` path, else the shipped model if present, else an
    untrained default model on the ``features`` preset."""
    from voxgate.core.config import FeatureConfig
    from voxgate.core.inference import SpeakerEncoder, default_model_path

    if model:
        return SpeakerEncoder.from_checkpoint(model, device=device), str(model)
    path = default_model_path()
    if path.is_file():
        return SpeakerEncoder.from_checkpoint(path, device=device), str(path)
    enc = SpeakerEncoder.untrained(FeatureConfig.preset(features), device=device)
    return enc, f"untrained ({features} preset)"


def _preset_name(fc: Any) -> str:
    from voxgate.core.config import FeatureConfig

    for name in ("report", "speaker"):
        if FeatureConfig.preset(name) == fc:
            return name
    return "custom"


def _rounded(x: Any) -> Any:
    """``x`` with every float rounded to 5 significant digits (for readable JSON)."""
    if isinstance(x, float):
        return float(f"{x:.5g}") if math.isfinite(x) else x
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_rounded(v) for v in x]
    return x


def _add_threads_out(p: argparse.ArgumentParser) -> None:
    """--threads (torch threads, default 1) and --out (JSON file), shared by the benchmarks."""
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    p.add_argument("--out", help="also write the JSON line to this file")


def _add_model_choice(p: argparse.ArgumentParser) -> None:
    """--model (checkpoint) and --features (preset of the untrained fallback model)."""
    p.add_argument("--model", help="checkpoint (default: the shipped model, else untrained)")
    p.add_argument("--features", choices=("report", "speaker"), default="report",
                   help="feature preset of the untrained model (ignored with a checkpoint)")  # fmt: skip


def _add_load(p: argparse.ArgumentParser) -> None:
    p.add_argument("--load", type=int, default=0, metavar="N",
                   help="busy-looping processes to run beside the measurement (busy machine)")  # fmt: skip


def _emit(result: dict[str, Any], out: str | None) -> int:
    """Print ``result`` (floats to 5 significant digits) as one JSON line; also write it to
    ``out`` when given."""
    line = json.dumps(_rounded(result))
    print(line, flush=True)
    if out:
        Path(out).write_text(line + "\n", encoding="utf-8")
    return 0


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

    from voxgate.core.config import FeatureConfig
    from voxgate.core.features import log_mel

    rng = np.random.default_rng(0)
    long = (0.1 * rng.standard_normal(60 * _SR)).astype(np.float32)
    chunks = long.reshape(60, _SR)
    batch = np.resize(chunks, (64, _SR))  # 64 distinct-enough 1-s chunks (60 + 4 repeats)
    results: dict[str, Any] = {}
    with _torch_threads(threads) as n_threads:
        for name in presets:
            fc = FeatureConfig.preset(name)
            state = {"i": 0}

            def one_chunk(fc: FeatureConfig = fc, state: dict = state) -> None:
                log_mel(chunks[state["i"] % len(chunks)], fc)
                state["i"] += 1

            cases = {
                "chunk_1s": (one_chunk, 1.0),
                "batch_64": (lambda fc=fc: log_mel(batch, fc), 64.0),
                "wave_60s": (lambda fc=fc: log_mel(long, fc), 60.0),
            }
            per_case: dict[str, Any] = {}
            for case, (fn, audio_s) in cases.items():
                t = _time_calls(fn, seconds)
                done = audio_s * t["calls"]
                per_case[case] = {
                    "audio_s_per_call": audio_s,
                    "calls": t["calls"],
                    "ms_per_call": 1000.0 * t["wall_s"] / t["calls"],
                    "x_realtime": done / t["wall_s"],
                    "x_realtime_cpu": done / max(t["cpu_s"], 1e-9),
                }
            results[name] = {
                "frames_per_s": fc.frames_per_chunk,
                "n_mels": fc.n_mels,
                "n_fft": fc.n_fft,
                "hop_length": fc.hop_length,
                **per_case,
            }
    import torch

    return {
        "bench": "features",
        "threads": n_threads,
        "min_seconds_per_case": seconds,
        "presets": results,
        "torch": torch.__version__,
    }


def _add_features(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=2.0, help="min measuring time per case")
    _add_threads_out(p)


def cmd_features(args: argparse.Namespace) -> int:
    return _emit(measure_features(threads=args.threads, seconds=args.seconds), args.out)


# --------------------------------------------------------------------------- inference


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
    (1, chunk_samples) speech-like window, each timed ``iters`` times after ``warmup`` calls.

    ``encoder`` overrides ``model`` / ``features`` (see :func:`_load_encoder`). Times include
    feature extraction (except ``features_only``). Returns ms p50/p95/max/mean per case.
    """
    import numpy as np
    import torch

    if iters < 1 or mc_passes < 2:
        raise ConfigError("inference bench needs iters >= 1 and mc_passes >= 2")
    if encoder is None:
        encoder, desc = _load_encoder(model, features, device)
    else:
        desc = "given encoder"
    fc = encoder.feature_config
    wave = synth_voiced(fc.chunk_s)[None, :]

    def timed(fn: Callable[[], Any]) -> dict[str, float]:
        for _ in range(warmup):
            fn()
        times, c0 = [], time.process_time()
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        cpu_ms = 1000.0 * (time.process_time() - c0) / iters
        return {**_percentiles_ms(times), "cpu_mean_ms": cpu_ms}

    with _torch_threads(threads) as n_threads:
        feats_only = timed(lambda: encoder.features(wave))
        det = timed(lambda: encoder.embed(wave))
        mc = timed(lambda: encoder.embed_mc(wave, mc_passes))
        emb = encoder.embed(wave)
    return {
        "bench": "inference",
        "model": desc,
        "fingerprint": encoder.fingerprint,
        "features": _preset_name(fc),
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


def _add_inference(p: argparse.ArgumentParser) -> None:
    _add_model_choice(p)
    p.add_argument("--mc-passes", type=int, default=20)
    p.add_argument("--iters", type=int, default=50, help="timed calls per case")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cpu")
    _add_threads_out(p)


def cmd_inference(args: argparse.Namespace) -> int:
    result = measure_inference(
        model=args.model, features=args.features, mc_passes=args.mc_passes, iters=args.iters,
        warmup=args.warmup, threads=args.threads, device=args.device,
    )  # fmt: skip
    return _emit(result, args.out)


# --------------------------------------------------------------------------- pipeline


@contextmanager
def _frontends(stages: bool) -> Iterator[list[Any]]:
    """Collect the Frontend objects core.pipeline builds while inside, their stage clocks
    on when ``stages``; the pipeline's own code runs unchanged."""
    import voxgate.core.pipeline as pipeline_mod

    made: list[Any] = []
    original = pipeline_mod.Frontend

    class Recorded(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.clock.enabled = stages
            made.append(self)

    pipeline_mod.Frontend = Recorded
    try:
        yield made
    finally:
        pipeline_mod.Frontend = original


def _stage_profile(
    frontends: list[Any], encoder: SpeakerEncoder, thread_cpu_s: float, audio_s: float
) -> dict[str, float]:
    """CPU ms per audio second of each live stage, from the stage clocks of the front end
    (vad, windows, display) and the encoder (features, model); "decision" is the rest of
    the pipeline thread's CPU time (decision logic, events, the loop)."""
    stages: dict[str, float] = {"vad": 0.0, "windows": 0.0, "display": 0.0}
    for fe in frontends:
        for name, sec in fe.clock.cpu_s.items():
            stages[name] = stages.get(name, 0.0) + sec
    for name in ("features", "model"):
        stages[name] = encoder.clock.cpu_s.get(name, 0.0)
    stages["decision"] = max(0.0, thread_cpu_s - sum(stages.values()))
    return {name: 1000.0 * sec / audio_s for name, sec in stages.items()}


def _run_pipeline(
    encoder: SpeakerEncoder,
    store: Any,
    wave: np.ndarray,
    *,
    realtime: bool,
    mc_passes: int,
    stages: bool = True,
) -> dict[str, Any]:
    """One Pipeline.run over ``wave``, scoring every window (no stop at the first final
    decision, no lockout between the runs); latency, windows scored, wall and CPU time, and with ``stages`` the CPU ms
    per audio s of each stage (the stage clocks themselves add ~1 ms per audio s)."""
    from voxgate.core.pipeline import Pipeline, PipelineConfig
    from voxgate.core.sources import FileSource

    cfg = PipelineConfig(mc_passes=mc_passes, stop_on_decision=False, lockout=False)
    pipe = Pipeline(encoder, store, cfg)
    errors: list[str] = []
    decisions = 0
    encoder.clock.reset()
    was_on, encoder.clock.enabled = encoder.clock.enabled, stages
    with _frontends(stages) as frontends:
        w0, c0, t0 = time.perf_counter(), time.process_time(), time.thread_time()
        for ev in pipe.run(FileSource(wave, realtime=realtime, name="bench")):
            kind = type(ev).__name__
            if kind == "StatusEvent" and ev.error:
                errors.append(ev.error)
            elif kind == "DecisionEvent":
                decisions += 1
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        thread_cpu = time.thread_time() - t0
    encoder.clock.enabled = was_on
    if errors:
        raise ProfileError(f"pipeline failed: {errors[0]}")
    audio_s = wave.size / _SR
    lat = _percentiles_ms(pipe.latencies_s)
    return {
        "mc_passes": mc_passes,
        "windows_scored": pipe.windows_scored,
        "decisions": decisions,
        "latency_p50_ms": lat["p50_ms"],
        "latency_p95_ms": lat["p95_ms"],
        "latency_max_ms": lat["max_ms"],
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_rtf": cpu / audio_s,
        "cpu_pct_of_core": 100.0 * cpu / audio_s,
        "x_realtime": audio_s / wall,
        "stage_cpu_ms_per_audio_s": (
            _stage_profile(frontends, encoder, thread_cpu, audio_s) if stages else None
        ),
    }


def measure_pipeline(
    *,
    file: str | Path | None = None,
    synthetic: bool = False,
    seconds: float = 20.0,
    mc_passes: int = 20,
    modes: Sequence[str] = ("realtime", "fast"),
    model: str | None = None,
    features: str = "report",
    threads: int = 1,
    device: str = "cpu",
    encoder: SpeakerEncoder | None = None,
    load: int = 0,
    stages: bool = True,
) -> dict[str, Any]:
    """Streaming latency / CPU of Pipeline.run over ``seconds`` of a speech file.

    The file (default: a LibriSpeech test-clean file of the shared data, else, or with
    ``synthetic``, a 12-s synthesized voiced signal) is first enrolled as profile "bench"
    (unpaced) into a temporary ProfileStore, then looped / cut to ``seconds`` and run
    deterministically and with ``mc_passes`` (0: skip) MC passes; ``modes``: "realtime"
    (FileSource paced like a microphone: latency, CPU % of one core) and/or "fast" (unpaced:
    x real time). Latency: from reading the block holding a window's last sample to its score.
    ``load``: that many busy-looping processes run beside the measured runs. Each run also
    reports the CPU ms per audio second of each stage (``stage_cpu_ms_per_audio_s``) unless
    ``stages`` is False (the stage clocks add ~1 ms per audio second to the totals).
    """
    import tempfile

    import numpy as np

    from voxgate.core.audio import load_audio
    from voxgate.core.events import EnrolledEvent, StatusEvent
    from voxgate.core.pipeline import Pipeline
    from voxgate.core.profiles import ProfileStore
    from voxgate.core.sources import FileSource

    bad = sorted(set(modes) - {"realtime", "fast"})
    if bad or not modes:
        raise ConfigError(f"modes must be 'realtime' and/or 'fast', got {list(modes)}")
    if seconds <= 0:
        raise ConfigError(f"seconds must be > 0, got {seconds}")
    if file is None and not synthetic:
        file = default_speech_file()
    if file is not None and not synthetic:
        source_wave, source_name = load_audio(file, _SR), str(file)
    else:
        source_wave, source_name = synth_voiced(12.0), "synthetic voiced"
    reps = int(math.ceil(seconds * _SR / source_wave.size))
    wave = np.tile(source_wave, reps)[: int(round(seconds * _SR))]

    if encoder is None:
        encoder, desc = _load_encoder(model, features, device)
    else:
        desc = "given encoder"
    out: dict[str, Any] = {
        "bench": "pipeline",
        "file": source_name,
        "file_s": source_wave.size / _SR,
        "audio_s": wave.size / _SR,
        "looped": reps > 1,
        "model": desc,
        "features": _preset_name(encoder.feature_config),
        "device": str(encoder.device),
    }
    with _torch_threads(threads) as n_threads, tempfile.TemporaryDirectory() as tmp:
        store = ProfileStore(Path(tmp))
        profile, errors = None, []
        for ev in Pipeline(encoder, store).enroll(FileSource(source_wave), "bench"):
            if isinstance(ev, EnrolledEvent):
                profile = ev.profile
            elif isinstance(ev, StatusEvent) and ev.error:
                errors.append(ev.error)
        if profile is None:
            raise ProfileError(f"enrollment from {source_name} failed: {'; '.join(errors)}")
        out["threads"] = n_threads
        out["quantized"] = bool(getattr(encoder, "quantized", False))
        out["load_processes"] = load
        out["enroll"] = {"speech_s": profile.speech_s, "n_windows": profile.n_windows}
        passes = [0] + ([mc_passes] if mc_passes else [])
        with busy_cores(load):
            for mode in modes:
                out[mode] = {
                    ("mc" if p else "deterministic"): _run_pipeline(
                        encoder, store, wave, realtime=mode == "realtime", mc_passes=p,
                        stages=stages,
                    )  # fmt: skip
                    for p in passes
                }
    return out


def _add_pipeline(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", help="speech file (default: a LibriSpeech test-clean file)")
    p.add_argument("--synthetic", action="store_true", help="use a synthesized voiced signal")
    p.add_argument("--seconds", type=float, default=20.0, help="audio seconds per run")
    p.add_argument("--mc-passes", type=int, default=20, help="MC passes of the MC run (0: skip)")
    p.add_argument("--modes", default="realtime,fast", help="realtime and/or fast, comma-separated")
    _add_model_choice(p)
    p.add_argument("--device", default="cpu")
    _add_load(p)
    p.add_argument("--stages", action=argparse.BooleanOptionalAction, default=True,
                   help="per-stage CPU (its clocks add ~1 ms per audio s)")  # fmt: skip
    _add_threads_out(p)


def cmd_pipeline(args: argparse.Namespace) -> int:
    result = measure_pipeline(
        file=args.file, synthetic=args.synthetic, seconds=args.seconds,
        mc_passes=args.mc_passes, modes=[m.strip() for m in args.modes.split(",") if m.strip()],
        model=args.model, features=args.features, threads=args.threads, device=args.device,
        load=args.load, stages=args.stages,
    )  # fmt: skip
    return _emit(result, args.out)


# --------------------------------------------------------------------------- build


def measure_build_throughput(
    *,
    files: int = 8,
    speakers: int = 2,
    subset: str = "test-clean",
    manifest: str | Path | None = None,
    preset: str = "report",
    workers: int = 1,
    threads: int = 1,
) -> dict[str, Any]:
    """Time ``build_dataset`` (default BuildConfig but ``preset``) on ``files`` recordings.

    The files come round-robin from the first ``speakers`` speakers of ``subset`` in
    ``manifest`` (default: the shared data's manifest.csv), written to a temporary manifest;
    the first speaker is authorized. The builder does not store its timing in the HDF5
    file, so this runs a build into a temporary folder. Returns hours of audio per minute.
    """
    import csv
    import tempfile
    from collections import defaultdict

    from .build import BuildConfig, build_dataset

    if files < 1 or speakers < 1:
        raise ConfigError("files and speakers must be >= 1")
    src = Path(manifest) if manifest else _shared_data() / "manifest.csv"
    if not src.is_file():
        raise DatasetError(f"no manifest at {src}")
    with open(src, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("subset") == subset]
    by_spk: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if (src.parent / r["path"]).is_file():
            by_spk[r["speaker"]].append(r)
    spk = list(by_spk)[:speakers]
    chosen: list[dict[str, str]] = []
    for i in range(files):
        pool = [s for s in spk if len(by_spk[s]) > i // len(spk)] if spk else []
        if not pool:
            break
        chosen.append(by_spk[pool[i % len(pool)]][i // len(spk)])
    if not chosen:
        raise DatasetError(f"no existing files of subset {subset!r} in {src}")
    chosen = chosen[:files]
    with tempfile.TemporaryDirectory() as tmp, _torch_threads(threads) as n_threads:
        tmp_manifest = Path(tmp) / "bench.csv"
        with open(tmp_manifest, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(chosen[0]))
            writer.writeheader()
            for r in chosen:
                writer.writerow({**r, "path": str((src.parent / r["path"]).resolve())})
        out_path = Path(tmp) / "bench.h5"
        summary = build_dataset(
            [tmp_manifest], out_path, [chosen[0]["speaker"]],
            BuildConfig(feature_preset=preset), workers=workers,
        )  # fmt: skip
        size_mb = out_path.stat().st_size / 1e6
    return {
        "bench": "build-throughput",
        "hours_per_minute": summary.hours_per_minute,
        "audio_hours": summary.audio_hours,
        "speech_hours": summary.speech_hours,
        "seconds": summary.seconds,
        "x_realtime": summary.audio_hours * 3600.0 / max(summary.seconds, 1e-9),
        "files": len(chosen),
        "sources": summary.n_sources,
        "speakers": len(summary.speakers),
        "chunks": summary.n_chunks,
        "skipped": len(summary.skipped),
        "size_mb": size_mb,
        "preset": preset,
        "subset": subset,
        "workers": workers,
        "threads": n_threads,
        "source": "timed build (the HDF5 file stores no build timing)",
    }


def _add_build_throughput(p: argparse.ArgumentParser) -> None:
    p.add_argument("--files", type=int, default=8, help="recordings to build from")
    p.add_argument("--speakers", type=int, default=2, help="speakers the files come from")
    p.add_argument("--subset", default="test-clean", help="manifest subset")
    p.add_argument("--manifest", help="manifest.csv (default: the shared data's)")
    p.add_argument("--features", choices=("report", "speaker"), default="report")
    p.add_argument("--workers", type=int, default=1, help="build processes (1: in process)")
    _add_threads_out(p)


def cmd_build_throughput(args: argparse.Namespace) -> int:
    result = measure_build_throughput(
        files=args.files, speakers=args.speakers, subset=args.subset, manifest=args.manifest,
        preset=args.features, workers=args.workers, threads=args.threads,
    )  # fmt: skip
    return _emit(result, args.out)


# name -> (help, add_arguments, handler). Other benchmarks add an entry here.
SUBCOMMANDS: dict[str, tuple[str, Callable, Callable[[argparse.Namespace], int]]] = {
    "train-throughput": (
        "training samples/s on random 1-s inputs",
        _add_train_throughput,
        cmd_train_throughput,
    ),
    "features": ("log_mel speed in x real time", _add_features, cmd_features),
    "inference": (
        "ms per 1-s window at batch 1 (deterministic, MC)",
        _add_inference,
        cmd_inference,
    ),
    "pipeline": ("streaming latency and CPU use", _add_pipeline, cmd_pipeline),
    "cli-cost": (
        "CPU s per audio s of voxgate verify --file",
        bench_cost.add_cli_cost,
        bench_cost.cmd_cli_cost,
    ),
    "gui-cost": (
        "CPU s per audio s of the GUI authenticating a file",
        bench_cost.add_gui_cost,
        bench_cost.cmd_gui_cost,
    ),
    "build-throughput": (
        "dataset build: hours of audio per minute",
        _add_build_throughput,
        cmd_build_throughput,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m voxgate.training.bench", description="voxgate benchmarks (JSON lines)"
    )
    sub = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name, (help_text, add_args, handler) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        add_args(p)
        p.set_defaults(func=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    from voxgate.core.errors import VoxgateError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (VoxgateError, json.JSONDecodeError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
