"""CLI: ``voxgate evaluate``, ``calibrate``, ``evaluate-verification`` and ``embed``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from voxgate.core.errors import DatasetError


def _floats(text: str) -> list[float]:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated seconds, got {text!r}") from exc
    if not vals or any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"expected positive seconds, got {text!r}")
    return vals


def _far(text: str) -> float:
    v = float(text)
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"target FAR is a fraction in (0, 1), got {text}")
    return v


def register(subparsers: argparse._SubParsersAction) -> None:
    _add_evaluate(subparsers)
    _add_calibrate(subparsers)
    _add_verification(subparsers)
    _add_embed(subparsers)


def _add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on a dataset split (metrics.json + figures)"
    )
    p.add_argument("--model", required=True, type=Path, help="checkpoint (.pt)")
    p.add_argument("--data", required=True, type=Path, help="HDF5 dataset")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument(
        "--impostors",
        type=Path,
        default=None,
        help="unseen outsiders: a folder of audio files or a manifest CSV",
    )
    p.add_argument(
        "--impostor-subsets",
        nargs="+",
        default=None,
        help="manifest subsets to use as outsiders (e.g. test-other train-clean-100)",
    )
    p.add_argument(
        "--impostor-speakers",
        default=None,
        help="only these outsider speaker ids: comma-separated or @file (one id per line)",
    )
    p.add_argument(
        "--speakers",
        default=None,
        help="evaluate only these dataset speakers: comma-separated or @file",
    )
    p.add_argument(
        "--speaker-subsets",
        nargs="+",
        default=None,
        help="evaluate only speakers whose recordings come from these subsets (e.g. test-clean)",
    )
    p.add_argument("--mc-passes", type=int, default=20, help="MC-dropout passes (0 = off)")
    p.add_argument("--decision-chunks", type=int, default=3, help="1-s chunks per decision")
    p.add_argument("--device", default=None, help="cpu | cuda (default cpu)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.set_defaults(func=_evaluate)


def _add_calibrate(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate", help="choose and store thresholds at a target false acceptance rate"
    )
    p.add_argument("--model", required=True, type=Path)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="HDF5 dataset (closed-set outsider trials)")
    src.add_argument(
        "--verification",
        type=Path,
        help="folder/manifest of held-out speakers: the client's decisions are replayed on "
        "their clips (sets the cosine threshold)",
    )
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument(
        "--subsets",
        nargs="+",
        default=None,
        help="manifest subsets, SUBSET or CORPUS/SUBSET (--verification); each is enrolled "
        "and tested on its own",
    )
    p.add_argument(
        "--speakers",
        default=None,
        help="only these speaker ids in every set (--verification): comma-separated or @file",
    )
    p.add_argument(
        "--enroll-s", type=float, default=10.0, help="enrollment speech (--verification)"
    )
    p.add_argument(
        "--clip-s", type=float, default=3.0, help="seconds of speech per test clip (--verification)"
    )
    p.add_argument("--target-far", type=_far, default=0.01)
    p.add_argument("--dry-run", action="store_true", help="print, do not write the checkpoint")
    p.set_defaults(func=_calibrate)


def _add_verification(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate-verification",
        help="open-set verification: enroll speakers from some recordings, test on others",
    )
    p.add_argument("source", type=Path, help="folder (<speaker>/...) or manifest CSV")
    p.add_argument("--model", type=Path, default=None, help="checkpoint (voxgate backend)")
    p.add_argument(
        "--backend",
        nargs="+",
        default=["voxgate"],
        choices=["voxgate", "resemblyzer"],
        help="one or more backends, scored on the same trials",
    )
    p.add_argument(
        "--suite",
        choices=["ood"],
        default=None,
        help="ood: the out-of-domain benchmark (test-other, MSC held-out, EmoDB, FSDD) of "
        "the manifest SOURCE, as a Markdown table",
    )
    p.add_argument("--enroll-s", type=float, default=10.0, help="seconds of enrollment speech")
    p.add_argument("--test-s", type=_floats, default=[1.0, 3.0], help="test lengths, e.g. 1,3")
    p.add_argument("--subsets", nargs="+", default=None, help="manifest subsets to use")
    p.add_argument("--speakers-file", type=Path, default=None, help="speaker ids, one per line")
    p.add_argument(
        "--cohort",
        type=Path,
        default=None,
        help="--suite ood: also score voxgate with AS-norm against this cohort "
        "(python -m voxgate.training.cohort)",
    )
    p.add_argument("--device", default=None)
    p.add_argument("--out", type=Path, default=None, help="folder for metrics.json")
    p.set_defaults(func=_verification)


def _add_embed(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("embed", help="export speaker embeddings of audio files (.npz)")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--model", type=Path, default=None, help="checkpoint (default: shipped model)")
    p.add_argument("--out", required=True, type=Path, help="output .npz")
    p.add_argument("--per-window", action="store_true", help="one embedding per 1-s window")
    p.add_argument("--hop-s", type=float, default=None, help="window hop in seconds (0.5)")
    p.set_defaults(func=_embed)


def _evaluate(args: argparse.Namespace) -> int:
    from voxgate.training.evaluate import evaluate_checkpoint, summary_lines
    from voxgate.training.verification import parse_id_list

    speakers = parse_id_list(args.speakers) if args.speakers else None
    if args.speaker_subsets:
        from voxgate.training.h5data import read_meta

        wanted = set(args.speaker_subsets)
        by_subset = {
            s["speaker"] for s in read_meta(str(args.data)).sources if s.get("subset") in wanted
        }
        if not by_subset:
            raise DatasetError(f"{args.data}: no recordings from subsets {sorted(wanted)}")
        speakers = sorted(by_subset & set(speakers)) if speakers else sorted(by_subset)
    metrics = evaluate_checkpoint(
        args.model,
        args.data,
        args.split,
        out_dir=args.out,
        impostors=args.impostors,
        impostor_subsets=args.impostor_subsets,
        impostor_speakers=parse_id_list(args.impostor_speakers) if args.impostor_speakers else None,
        speakers_subset=speakers,
        mc_passes=args.mc_passes,
        decision_chunks=args.decision_chunks,
        device=args.device,
    )
    print("\n".join(summary_lines(metrics)))
    print(f"wrote {args.out / 'metrics.json'} and {len(metrics.get('figures', []))} figure files")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from voxgate.training.calibration import calibrate
    from voxgate.training.evaluate import calibrate_checkpoint
    from voxgate.training.verification import parse_id_list

    if args.data is not None:
        cal = calibrate_checkpoint(
            args.model, args.data, args.split, args.target_far, write=not args.dry_run
        )
        print(json.dumps(cal, indent=2))
        return 0
    groups = [[s] for s in args.subsets] if args.subsets else [None]
    cal = calibrate(
        args.model,
        [(args.verification, g) for g in groups],
        args.target_far,
        enroll_s=args.enroll_s,
        clip_s=args.clip_s,
        write=not args.dry_run,
        speakers=None if args.speakers is None else parse_id_list(args.speakers),
    )
    print(json.dumps(cal, indent=2))
    at = cal["at_threshold"]
    print(
        f"threshold {cal['threshold']:.4f} for FAR {args.target_far:g} on "
        f"{at['n_impostor']} impostor / {at['n_genuine']} genuine decisions "
        f"(FRR {100 * at['frr']:.2f} %, K = {cal['k_windows']} windows)"
        + ("" if args.dry_run else f"; stored in {args.model}")
    )
    return 0


def _verification(args: argparse.Namespace) -> int:
    from voxgate.training.backends import make_backend
    from voxgate.training.cohort import load_cohort
    from voxgate.training.evaluate import write_json
    from voxgate.training.verification import (
        evaluate_suite,
        evaluate_verification,
        read_speakers_file,
    )

    backends = [make_backend(b, args.model, args.device) for b in args.backend]
    if args.suite == "ood":
        cohort = None if args.cohort is None else load_cohort(args.cohort)
        rows = evaluate_suite(
            args.source, backends, enroll_s=args.enroll_s, test_s=args.test_s, cohort=cohort
        )
        print("| set | backend | test | EER | minDCF | FRR @ FAR 1 % | trials (gen / imp) |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['set']} | {r['backend']} | {r['test_s']:g} s | {_pct(r['eer'])} | "
                f"{_num(r['min_dcf'])} | {_pct(r['frr_at_far_1%'])} | "
                f"{r['n_genuine']} / {r['n_impostor']} |"
            )
        if args.out is not None:
            print(f"wrote {write_json({'rows': rows}, Path(args.out) / 'ood.json')}")
        return 0
    speakers = read_speakers_file(args.speakers_file) if args.speakers_file else None
    for be in backends:
        res = evaluate_verification(
            args.source,
            model_path=args.model,
            backend=be,
            enroll_s=args.enroll_s,
            test_s=args.test_s,
            subsets=args.subsets,
            speakers=speakers,
        )
        print(
            f"{res['backend']}: {res['n_speakers']} speakers, enrollment {res['enroll_s']:g} s; "
            f"{res['note']}"
        )
        for key, m in res["by_length"].items():
            print(
                f"  {key:>4}: EER {_pct(m['eer'])}  minDCF(0.01) {_num(m['min_dcf'])}  "
                f"FRR@FAR1% {_pct(m['frr_at_far_1%'])}  "
                f"({m['n_genuine']} genuine / {m['n_impostor']} impostor trials)"
            )
        if args.out is not None:
            suffix = "" if len(backends) == 1 else f"-{res['backend']}"
            print(f"wrote {write_json(res, Path(args.out) / f'metrics{suffix}.json')}")
    return 0


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _embed(args: argparse.Namespace) -> int:
    import numpy as np

    from voxgate.core.inference import SpeakerEncoder
    from voxgate.training.embeddings import embed_files

    encoder = SpeakerEncoder.from_checkpoint(args.model)
    out = embed_files(encoder, args.files, per_window=args.per_window, hop_s=args.hop_s)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from voxgate.core.fileio import atomic_write

    atomic_write(args.out, lambda fh: np.savez(fh, **out))
    print(f"wrote {args.out}: embeddings {out['embeddings'].shape} for {len(out['names'])} file(s)")
    return 0
