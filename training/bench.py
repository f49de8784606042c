"""Benchmarks: ``python -m voxgate.training.bench SUBCOMMAND ...``; each prints one JSON line.

Subcommands are functions ``cmd_<name>(args) -> int`` registered in ``SUBCOMMANDS`` with a
function that adds their arguments; the measurement itself lives in a plain function that
returns a dict (importable from tests and reports), one module per family:

train-throughput (bench_train.py): training samples/s of the report model on random 1-s
inputs, with the same train_step as ``voxgate train``.
features, inference, inference-throughput (bench_inference.py): log_mel speed in x real
time; ms per 1-s window at batch 1 (features + model), deterministic and MC dropout; 1-s
chunks per second of a checkpoint's model at several batch sizes, CPU and CUDA.
pipeline (bench_pipeline.py): streaming latency and CPU use of core.pipeline.Pipeline, with
the CPU per stage and ``--load N`` busy processes beside it.
build-throughput (bench_build.py): hours of audio per wall-clock minute of the dataset builder.
cli-cost / gui-cost (bench_cost.py): CPU s per audio s of ``voxgate verify --file`` and of
the GUI.
What they share (threads, timing, the test signal, the output) is in bench_common.py.

The ``x_realtime`` numbers use wall-clock time; ``x_realtime_cpu`` / ``cpu_*`` use this
process's CPU time (``time.process_time``), which a busy machine does not inflate.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from . import bench_cost
from .bench_build import add_build_throughput, cmd_build_throughput, measure_build_throughput
from .bench_common import busy_cores, default_speech_file, synth_voiced
from .bench_inference import (
    add_features,
    add_inference,
    add_inference_throughput,
    cmd_features,
    cmd_inference,
    cmd_inference_throughput,
    measure_features,
    measure_inference,
    measure_inference_throughput,
)
from .bench_pipeline import (
    add_frontend,
    add_pipeline,
    cmd_frontend,
    cmd_pipeline,
    measure_frontend,
    measure_pipeline,
)
from .bench_train import add_train_throughput, cmd_train_throughput, measure_train_throughput

__all__ = [
    "SUBCOMMANDS", "build_parser", "main", "busy_cores", "default_speech_file", "synth_voiced",
    "measure_train_throughput", "measure_features", "measure_inference",
    "measure_inference_throughput", "measure_pipeline", "measure_frontend", "measure_build_throughput",
]  # fmt: skip

# name -> (help, add_arguments, handler). Other benchmarks add an entry here.
SUBCOMMANDS: dict[str, tuple[str, Callable, Callable[[argparse.Namespace], int]]] = {
    "train-throughput": (
        "training samples/s on random 1-s inputs",
        add_train_throughput,
        cmd_train_throughput,
    ),
    "features": ("log_mel speed in x real time", add_features, cmd_features),
    "inference": (
        "ms per 1-s window at batch 1 (deterministic, MC)",
        add_inference,
        cmd_inference,
    ),
    "inference-throughput": (
        "1-s chunks per second at several batch sizes (CPU threads, CUDA)",
        add_inference_throughput,
        cmd_inference_throughput,
    ),
    "pipeline": ("streaming latency and CPU use", add_pipeline, cmd_pipeline),
    "frontend": ("the live front end alone: CPU per 0.1-s block", add_frontend, cmd_frontend),
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
        add_build_throughput,
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
