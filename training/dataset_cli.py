"""``voxgate dataset build|info``: build the augmented HDF5 chunk dataset and inspect it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dataset", help="build or inspect the HDF5 training dataset")
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION")

    b = sub.add_parser(
        "build",
        help="build an augmented HDF5 dataset from speaker folders or manifest CSVs",
        description="SRC: a folder with one sub-folder per speaker (audio at any depth; a second "
        "folder level is the recording session) or a manifest CSV with speaker and path columns.",
    )
    b.add_argument("sources", nargs="+", metavar="SRC")
    b.add_argument("--out", required=True, type=Path, help="output .h5 file")
    b.add_argument(
        "--force", action="store_true", help="replace --out if it exists (never an input)"
    )
    b.add_argument(
        "--authorized", required=True, help="authorized speaker ids, comma-separated or @file"
    )
    b.add_argument("--subsets", help="manifest subsets to keep, e.g. test-clean,train-clean-100")
    b.add_argument(
        "--exclude-speakers", default="", help="ids to leave out, comma-separated or @file"
    )
    b.add_argument("--max-files-per-speaker", type=int)
    b.add_argument("--max-seconds-per-speaker", type=float)
    b.add_argument("--feature-preset", choices=("report", "speaker"), default="report")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    b.add_argument(
        "--augment", default="all", help="comma-separated augmentations, 'all' or 'none'"
    )
    b.add_argument(
        "--aug-per-chunk", default="2", help="augmented copies per train chunk, or 'all'"
    )
    b.add_argument("--oversample", action=argparse.BooleanOptionalAction, default=True,
                   help="extra augmented copies of the authorized class toward balance")  # fmt: skip
    b.add_argument("--oversample-max", type=float, default=4.0)
    b.add_argument("--vad-aggressiveness", type=int, choices=(0, 1, 2, 3), default=2)
    b.add_argument("--chunk-hop-s", type=float, help="default: the chunk length (no overlap)")
    b.add_argument("--min-chunk-fraction", type=float, default=0.5)
    b.add_argument("--compression", choices=("lzf", "gzip", "none"), default="lzf")
    b.add_argument(
        "--max-file-s", type=float, metavar="S",
        help="skip recordings longer than S seconds (memory grows with a file's length; "
        "default: BuildConfig.max_file_s, 1800)",
    )  # fmt: skip
    b.add_argument("--json", action="store_true", help="print the summary as JSON")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    b.add_argument(
        "--progress",
        choices=("bar", "json", "none"),
        default="bar",
        help="bar: a progress bar on stderr when it is a terminal (default); json: one JSON "
        "object per line on stdout, {stage, done, total} per file; none: neither",
    )
    b.set_defaults(func=_build)

    i = sub.add_parser("info", help="summarise and validate a dataset file")
    i.add_argument("path", type=Path)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_info)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _build(args: argparse.Namespace) -> int:
    import json

    from voxgate.core.errors import ConfigError

    from .augment import parse_augmentations
    from .build import BuildConfig, build_dataset
    from .h5data import format_summary, read_meta
    from .verification import parse_id_list

    per = args.aug_per_chunk
    if per != "all":
        try:
            per = int(per)
        except ValueError:
            raise ConfigError(f"--aug-per-chunk must be an integer or 'all', got {per!r}") from None
    config = BuildConfig(
        feature_preset=args.feature_preset,
        seed=args.seed,
        augment=parse_augmentations(args.augment),
        aug_per_chunk=per,
        oversample=args.oversample,
        oversample_max=args.oversample_max,
        vad_aggressiveness=args.vad_aggressiveness,
        chunk_hop_s=args.chunk_hop_s,
        min_chunk_fraction=args.min_chunk_fraction,
        subsets=tuple(parse_id_list(args.subsets)) if args.subsets else None,
        exclude_speakers=tuple(parse_id_list(args.exclude_speakers))
        if args.exclude_speakers
        else (),
        max_files_per_speaker=args.max_files_per_speaker,
        max_seconds_per_speaker=args.max_seconds_per_speaker,
        compression=None if args.compression == "none" else args.compression,
        **({} if args.max_file_s is None else {"max_file_s": args.max_file_s}),
    )
    on_file = None
    if args.progress == "json":
        from .progress import json_lines

        report = json_lines()

        def on_file(done: int, total: int) -> None:
            report({"stage": "files", "done": done, "total": total})

    summary = build_dataset(
        args.sources, args.out, parse_id_list(args.authorized), config,
        workers=args.workers, progress=args.progress == "bar" and not args.quiet, on_file=on_file,
        force=args.force,
    )  # fmt: skip
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
        return 0
    print(format_summary(read_meta(summary.out)))
    print(
        f"\nbuilt {summary.out} in {summary.seconds:.1f} s "
        f"({summary.hours_per_minute:.3f} h of audio per minute, {args.workers} worker(s); "
        f"authorized oversampling x{summary.oversample_factor:.2f})"
    )
    if summary.dropped_speakers:
        print(f"speakers without usable audio (left out): {', '.join(summary.dropped_speakers)}")
    if summary.unmatched_excludes:
        print(
            f"--exclude-speakers ids matching no speaker: {', '.join(summary.unmatched_excludes)}"
        )
    return 0


def _info(args: argparse.Namespace) -> int:
    import json

    from .h5data import format_summary, read_meta, summary_dict

    meta = read_meta(args.path)
    if args.json:
        json.dump(summary_dict(meta), sys.stdout, indent=2)
        print()
    else:
        print(format_summary(meta))
        print("\nvalid: schema, complete flag, array lengths and indices checked")
    return 0
