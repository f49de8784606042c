"""``voxgate train``: train the speaker model on an HDF5 dataset (alone or under torchrun)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .config import MODES


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the speaker model (AMP, AdamW, cosine LR, early stopping, TensorBoard)",
        description="Train on an HDF5 dataset made by `voxgate dataset build`. Under "
        "`torchrun --nproc_per_node=N -m voxgate.cli train ...` it uses DistributedDataParallel. "
        "Writes config.json, best_model.pt, last_model.pt, train_state.pt, history.json and "
        "tb/ (TensorBoard) into --out.",
    )
    p.add_argument("--data", required=True, type=Path, help="dataset .h5 file")
    p.add_argument(
        "--mode", choices=MODES, help="heads to train (required unless --resume, which reuses it)"
    )
    p.add_argument("--out", required=True, type=Path, help="run directory, e.g. runs/NAME")
    p.add_argument("--config", type=Path, help="JSON file with TrainConfig keys")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (value parsed as JSON, else a string); e.g. "
        "--set epochs=10 --set model.gru_hidden=128 (repeatable)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--init-from",
        type=Path,
        metavar="CKPT",
        help="start from this checkpoint's encoder weights",
    )
    p.add_argument(
        "--progress",
        choices=("bar", "json", "none"),
        default="bar",
        help="bar: a progress bar on stderr (default); json: one JSON object per line on stdout "
        "(stage, done, total, epoch, epochs, loss, metrics); none: neither",
    )
    p.add_argument("--no-progress", action="store_true", help="same as --progress none")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from voxgate.core.errors import ConfigError

    from .config import load_train_config
    from .progress import json_lines
    from .train import run_training

    base = None
    saved = args.out / "config.json"
    if args.resume and saved.is_file():
        base = json.loads(saved.read_text(encoding="utf-8"))
    if args.mode is None and base is None:
        raise ConfigError("--mode is required (authentication, identification or both)")
    overrides = list(args.overrides) + ([f"mode={args.mode}"] if args.mode else [])
    cfg = load_train_config(args.config, overrides, base=base)
    rank = int(os.environ.get("RANK", "0"))
    result = run_training(
        args.data,
        args.out,
        cfg,
        resume=args.resume,
        init_from=args.init_from,
        progress=args.progress == "bar" and not args.no_progress,
        on_progress=json_lines() if args.progress == "json" and not args.no_progress else None,
    )
    if rank == 0:
        _print_summary(result)
    return 130 if result.interrupted else 0


def _print_summary(result) -> None:
    if result.interrupted:
        print(f"interrupted after {result.epochs_completed} epoch(s); resume with --resume")
    stop = " (early stop)" if result.stopped_early else ""
    print(f"epochs: {result.epochs_completed}{stop}")
    if result.best_epoch:
        best = result.history[result.best_epoch - 1] if result.history else {}
        heads = best.get("heads", {})
        for name, h in heads.items():
            print(
                f"best epoch {result.best_epoch} {name}: val acc {h['accuracy']:.4f} "
                f"macro-F1 {h['macro_f1']:.4f} (P {h['macro_precision']:.4f} "
                f"R {h['macro_recall']:.4f})"
                + ("" if h["mc_spread"] is None else f" MC spread {h['mc_spread']:.4f}")
            )
    if result.calibration:
        cal = result.calibration
        print(
            f"calibrated at FAR {cal.get('target_far')}: threshold 3 s {cal.get('cosine_3s')}, "
            f"1 s {cal.get('cosine_1s')}"
        )
    for label, path in (("best", result.best_path), ("last", result.last_path)):
        if path is not None:
            print(f"{label}: {path}")
    print(f"TensorBoard: tensorboard --logdir {result.run_dir / 'tb'}")
    sys.stdout.flush()
