"""CLI: ``voxgate report``: dataset, training and evaluation figures in one HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="figures (PNG) and a self-contained index.html for a dataset, runs and an evaluation",
        description=(
            "Write one PNG per figure and an index.html with every figure embedded, a caption "
            "under each and the key numbers in tables. Dataset figures come from --data, "
            "training curves from each --run's history.json, evaluation figures from "
            "--eval's metrics.json and scores.npz, the t-SNE of the model's embeddings from "
            "--embeddings (all written by voxgate evaluate; the report runs no model)."
        ),
    )
    p.add_argument("--data", required=True, type=Path, help="HDF5 dataset (voxgate dataset build)")
    p.add_argument(
        "--run",
        dest="runs",
        action="extend",
        nargs="+",
        type=Path,
        default=[],
        help="training run folder(s) (runs/NAME holding history.json); several runs are overlaid",
    )
    p.add_argument(
        "--eval", dest="eval_dir", type=Path, default=None, help="voxgate evaluate output folder"
    )
    p.add_argument(
        "--embeddings",
        type=Path,
        default=None,
        help="embeddings file of voxgate evaluate, for a t-SNE of the model's embeddings "
        "(default: embeddings.npz of --eval when there)",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    p.add_argument("--seed", type=int, default=0, help="sampling and t-SNE seed (default 0)")
    p.add_argument(
        "--max-tsne", type=_positive, default=1500, help="chunks sampled for t-SNE (default 1500)"
    )
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from .report import build_report

    result = build_report(
        args.data,
        args.out,
        runs=args.runs,
        eval_dir=args.eval_dir,
        embeddings=args.embeddings,
        seed=args.seed,
        max_tsne=args.max_tsne,
    )
    print(f"wrote {len(result.figures)} figures and {result.index}")
    for item in result.missing:
        print(f"  not shown: {item}")
    return 0
