"""``bench pipeline``: streaming latency and CPU use of core.pipeline.Pipeline over a file
paced in real time with the GUI's display, plus the unpaced throughput without one (what
`verify --file` runs), with the CPU per stage (VAD, windows,
display, features, model, decision) and ``--load N`` busy processes beside it."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxgate.core.errors import ConfigError, ProfileError

from .bench_common import (
    SR,
    add_load,
    add_model_choice,
    add_threads_out,
    busy_cores,
    default_speech_file,
    emit,
    load_encoder,
    percentiles_ms,
    preset_name,
    synth_voiced,
    torch_threads,
)

if TYPE_CHECKING:
    import numpy as np

    from voxgate.core.inference import SpeakerEncoder

__all__ = ["measure_pipeline", "add_pipeline", "cmd_pipeline"]


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
    # realtime stands for the GUI (with its display), fast for `verify --file` (without)
    pipe = Pipeline(encoder, store, cfg, display_hop_s=0.1 if realtime else None)
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
    audio_s = wave.size / SR
    lat = percentiles_ms(pipe.latencies_s)
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

    from voxgate.core.profiles import ProfileStore

    if set(modes) - {"realtime", "fast"} or not modes:
        raise ConfigError(f"modes must be 'realtime' and/or 'fast', got {list(modes)}")
    if seconds <= 0:
        raise ConfigError(f"seconds must be > 0, got {seconds}")
    source_wave, source_name, wave, reps = _bench_audio(file, synthetic, seconds)
    encoder, desc = (
        (encoder, "given encoder") if encoder is not None else load_encoder(model, features, device)
    )
    out: dict[str, Any] = {
        "bench": "pipeline", "file": source_name, "file_s": source_wave.size / SR,
        "audio_s": wave.size / SR, "looped": reps > 1, "model": desc,
        "features": preset_name(encoder.feature_config), "device": str(encoder.device),
    }  # fmt: skip
    with torch_threads(threads) as n_threads, tempfile.TemporaryDirectory() as tmp:
        store = ProfileStore(Path(tmp))
        profile = _enroll_bench(encoder, store, source_wave, source_name)
        out.update(
            threads=n_threads, quantized=bool(getattr(encoder, "quantized", False)),
            load_processes=load,
            enroll={"speech_s": profile.speech_s, "n_windows": profile.n_windows},
        )  # fmt: skip
        with busy_cores(load):
            for mode in modes:
                out[mode] = _run_mode(encoder, store, wave, mode == "realtime", mc_passes, stages)
    return out


def _run_mode(
    encoder: SpeakerEncoder, store: Any, wave: np.ndarray, realtime: bool, mc_passes: int,
    stages: bool,
) -> dict[str, Any]:  # fmt: skip
    """The deterministic run and (``mc_passes`` > 0) the MC run of one mode."""
    passes = [0] + ([mc_passes] if mc_passes else [])
    return {
        ("mc" if p else "deterministic"): _run_pipeline(
            encoder, store, wave, realtime=realtime, mc_passes=p, stages=stages
        )
        for p in passes
    }


def _bench_audio(
    file: str | Path | None, synthetic: bool, seconds: float
) -> tuple[np.ndarray, str, np.ndarray, int]:
    """(source wave, its name, the wave looped / cut to ``seconds``, repetitions): ``file``,
    else a LibriSpeech test-clean file of the shared data, else (or with ``synthetic``) a
    12-s synthesized voiced signal."""
    import numpy as np

    from voxgate.core.audio import load_audio

    if file is None and not synthetic:
        file = default_speech_file()
    if file is not None and not synthetic:
        source_wave, source_name = load_audio(file, SR), str(file)
    else:
        source_wave, source_name = synth_voiced(12.0), "synthetic voiced"
    reps = int(math.ceil(seconds * SR / source_wave.size))
    return source_wave, source_name, np.tile(source_wave, reps)[: int(round(seconds * SR))], reps


def _enroll_bench(encoder: SpeakerEncoder, store: Any, wave: np.ndarray, name: str) -> Any:
    """Enroll ``wave`` (unpaced) as profile "bench" into ``store``; ProfileError if refused."""
    from voxgate.core.events import EnrolledEvent, StatusEvent
    from voxgate.core.pipeline import Pipeline
    from voxgate.core.sources import FileSource

    profile, errors = None, []
    for ev in Pipeline(encoder, store).enroll(FileSource(wave), "bench"):
        if isinstance(ev, EnrolledEvent):
            profile = ev.profile
        elif isinstance(ev, StatusEvent) and ev.error:
            errors.append(ev.error)
    if profile is None:
        raise ProfileError(f"enrollment from {name} failed: {'; '.join(errors)}")
    return profile


def measure_frontend(
    *, seconds: float = 30.0, pause_s: float = 0.0, display: bool = True, file: str | None = None
) -> dict[str, Any]:
    """The live front end alone (``core.frontend.Frontend``: ring, VAD, windows and, with
    ``display``, the level and spectrogram columns) on ``LIVE_BLOCK_S`` blocks of speech,
    with ``pause_s`` of sleep after each (0: back to back). Thread CPU per block."""
    import numpy as np

    from voxgate.core.config import FeatureConfig
    from voxgate.core.frontend import Frontend
    from voxgate.core.live_config import DEFAULT_HOP_S, DEFAULT_VAD_AGGRESSIVENESS, LIVE_BLOCK_S

    _, name, wave, _ = _bench_audio(file, False, seconds)
    fe = Frontend(FeatureConfig(), DEFAULT_HOP_S, DEFAULT_VAD_AGGRESSIVENESS,
                  LIVE_BLOCK_S if display else None)  # fmt: skip
    n, cpu_ns = int(round(LIVE_BLOCK_S * SR)), []
    for i in range(0, wave.size - n + 1, n):
        t0 = time.thread_time_ns()
        fe.push(wave[i : i + n])
        fe.display()
        cpu_ns.append(time.thread_time_ns() - t0)
        if pause_s > 0:
            time.sleep(pause_s)
    us = np.asarray(cpu_ns, dtype=np.float64) / 1e3
    return {"bench": "frontend", "file": name, "blocks": len(cpu_ns), "block_s": LIVE_BLOCK_S,
            "pause_s": pause_s, "display": display, "median_us_per_block": float(np.median(us)),
            "cpu_ms_per_audio_s": float(us.sum() / 1e3 / (len(cpu_ns) * LIVE_BLOCK_S))}  # fmt: skip


def add_frontend(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=30.0, help="audio seconds")
    p.add_argument("--pause-s", type=float, default=0.0, help="sleep after each block")
    p.add_argument("--display", action=argparse.BooleanOptionalAction, default=True,
                   help="compute the level and spectrogram columns (the GUI's display)")  # fmt: skip
    p.add_argument("--file", help="speech file (default: a LibriSpeech test-clean file)")
    p.add_argument("--out", help="also write the JSON line to this file")


def cmd_frontend(args: argparse.Namespace) -> int:
    result = measure_frontend(seconds=args.seconds, pause_s=args.pause_s, display=args.display,
                              file=args.file)  # fmt: skip
    return emit(result, args.out)


def add_pipeline(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", help="speech file (default: a LibriSpeech test-clean file)")
    p.add_argument("--synthetic", action="store_true", help="use a synthesized voiced signal")
    p.add_argument("--seconds", type=float, default=20.0, help="audio seconds per run")
    p.add_argument("--mc-passes", type=int, default=20, help="MC passes of the MC run (0: skip)")
    p.add_argument("--modes", default="realtime,fast", help="realtime and/or fast, comma-separated")
    add_model_choice(p)
    p.add_argument("--device", default="cpu")
    add_load(p)
    p.add_argument("--stages", action=argparse.BooleanOptionalAction, default=True,
                   help="per-stage CPU (its clocks add ~1 ms per audio s)")  # fmt: skip
    add_threads_out(p)


def cmd_pipeline(args: argparse.Namespace) -> int:
    result = measure_pipeline(
        file=args.file, synthetic=args.synthetic, seconds=args.seconds,
        mc_passes=args.mc_passes, modes=[m.strip() for m in args.modes.split(",") if m.strip()],
        model=args.model, features=args.features, threads=args.threads, device=args.device,
        load=args.load, stages=args.stages,
    )  # fmt: skip
    return emit(result, args.out)
