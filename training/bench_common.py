"""What the benchmarks share: thread counts, timing and percentiles, busy processes, a
speech-like test signal, the shared data's speech files, the model to time, the common
arguments and the one-JSON-line output."""

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

if TYPE_CHECKING:
    import numpy as np

    from voxgate.core.inference import SpeakerEncoder

__all__ = [
    "SR", "torch_threads", "percentiles_ms", "busy_cores", "time_calls", "synth_voiced",
    "shared_data", "default_speech_file", "load_encoder", "preset_name", "rounded",
    "add_threads_out", "add_model_choice", "add_load", "emit",
]  # fmt: skip

SR = 16000


@contextmanager
def torch_threads(threads: int) -> Iterator[int]:
    """Run with ``threads`` intra-op torch threads (0: leave as is); restores the old count."""
    import torch

    old = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
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


def time_calls(fn: Callable[[], Any], min_s: float, *, min_calls: int = 1) -> dict[str, float]:
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


def synth_voiced(seconds: float, *, seed: int = 0, sr: int = SR) -> np.ndarray:
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


def shared_data() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _manifest_rows(subset: str) -> list[dict[str, str]]:
    """Rows of <shared>/data/manifest.csv of ``subset`` whose file exists ([] if none)."""
    import csv

    manifest = shared_data() / "manifest.csv"
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
            return shared_data() / row["path"]
    return None


def load_encoder(model: str | None, features: str, device: str) -> tuple[SpeakerEncoder, str]:
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


def preset_name(fc: Any) -> str:
    from voxgate.core.config import FeatureConfig

    for name in ("report", "speaker"):
        if FeatureConfig.preset(name) == fc:
            return name
    return "custom"


def rounded(x: Any) -> Any:
    """``x`` with every float rounded to 5 significant digits (for readable JSON)."""
    if isinstance(x, float):
        return float(f"{x:.5g}") if math.isfinite(x) else x
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [rounded(v) for v in x]
    return x


def add_threads_out(p: argparse.ArgumentParser) -> None:
    """--threads (torch threads, default 1) and --out (JSON file), shared by the benchmarks."""
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    p.add_argument("--out", help="also write the JSON line to this file")


def add_model_choice(p: argparse.ArgumentParser) -> None:
    """--model (checkpoint) and --features (preset of the untrained fallback model)."""
    p.add_argument("--model", help="checkpoint (default: the shipped model, else untrained)")
    p.add_argument("--features", choices=("report", "speaker"), default="report",
                   help="feature preset of the untrained model (ignored with a checkpoint)")  # fmt: skip


def add_load(p: argparse.ArgumentParser) -> None:
    p.add_argument("--load", type=int, default=0, metavar="N",
                   help="busy-looping processes to run beside the measurement (busy machine)")  # fmt: skip


def emit(result: dict[str, Any], out: str | None) -> int:
    """Print ``result`` (floats to 5 significant digits) as one JSON line; also write it to
    ``out`` when given."""
    line = json.dumps(rounded(result))
    print(line, flush=True)
    if out:
        Path(out).write_text(line + "\n", encoding="utf-8")
    return 0
