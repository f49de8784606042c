"""``voxgate dataset build|info``: build the augmented HDF5 chunk dataset and inspect it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

# Options that set a BuildConfig field (dest = field name); their defaults live only in
# BuildConfig, so an option the user does not give leaves the field to --config/--set.
_CONFIG_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--subsets", {"help": "manifest subsets to keep, e.g. test-clean,train-clean-100"}),
    ("--exclude-speakers", {"help": "ids to leave out, comma-separated or @file"}),
    ("--max-files-per-speaker", {"type": int, "help": "at most this many recordings each"}),
    ("--max-seconds-per-speaker", {"type": float, "help": "at most this much audio each (s)"}),
    ("--feature-preset", {"choices": ("report", "speaker"), "help": "log-mel settings"}),
    ("--seed", {"type": int, "help": "split and augmentation seed"}),
    ("--augment", {"help": "comma-separated augmentations, 'all' or 'none'"}),
    ("--aug-per-chunk", {"help": "augmented copies per train chunk, or 'all'"}),
    ("--oversample", {"action": argparse.BooleanOptionalAction,
                      "help": "extra augmented copies of the authorized class toward balance"}),
    ("--oversample-max", {"type": float, "help": "largest oversampling factor"}),
    ("--vad-aggressiveness", {"type": int, "choices": (0, 1, 2, 3), "help": "webrtcvad mode"}),
    ("--chunk-hop-s", {"type": float, "help": "None: the chunk length (no overlap)"}),
    ("--min-chunk-fraction", {"type": float, "help": "shortest final chunk kept"}),
    ("--compression", {"choices": ("lzf", "gzip", "none"), "help": "HDF5 compression"}),
    ("--max-file-s", {"type": float, "metavar": "S", "help": "skip recordings longer than S "
                      "seconds (memory grows with a file's length)"}),
)  # fmt: skip


class _BuildHelp(argparse.HelpFormatter):
    """Shows each config option's default, read from BuildConfig when help is printed (so
    ``voxgate`` start-up does not import the builder)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        from .build import BuildConfig

        field = action.dest
        if action.default is not argparse.SUPPRESS or field not in BuildConfig.__dataclass_fields__:
            return action.help
        default = getattr(BuildConfig, field)
        shown = ",".join(default) if isinstance(default, tuple) else default
        return f"{action.help or ''} (default: {shown})".replace("%", "%%").lstrip()


def _config_from_args(args: argparse.Namespace) -> Any:
    """BuildConfig: its defaults, then --config, then --set, then the options given."""
    from .build import BuildConfig
    from .config import apply_overrides, read_json_config
    from .verification import parse_id_list

    data = read_json_config(args.config) if args.config is not None else {}
    data = apply_overrides(data, list(args.overrides))
    given = {f.lstrip("-").replace("-", "_") for f, _ in _CONFIG_OPTIONS}
    for name in sorted(given & set(vars(args))):
        value = getattr(args, name)
        if name in ("subsets", "exclude_speakers"):
            value = tuple(parse_id_list(value))
        elif name == "compression" and value == "none":
            value = None
        elif name == "aug_per_chunk" and value != "all":
            value = _int_or_all(value)
        data[name] = value
    return BuildConfig.from_dict(data)


def _int_or_all(text: str) -> int:
    from voxgate.core.errors import ConfigError

    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--aug-per-chunk must be an integer or 'all', got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dataset", help="build or inspect the HDF5 training dataset")
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION")

    b = sub.add_parser(
        "build",
        formatter_class=_BuildHelp,
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
    b.add_argument("--config", type=Path, help="JSON file with BuildConfig keys")
    b.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a BuildConfig key (value parsed as JSON, else a string); e.g. "
        "--set seed=3 --set augment=noise_low,vtlp (repeatable; options below win over it)",
    )  # fmt: skip
    b.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: all CPUs)")  # fmt: skip
    for flag, kwargs in _CONFIG_OPTIONS:
        b.add_argument(flag, default=argparse.SUPPRESS, **kwargs)
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

    from .build import build_dataset
    from .h5data import read_meta
    from .h5summary import format_summary
    from .verification import parse_id_list

    config = _config_from_args(args)
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

    from .h5data import read_meta
    from .h5summary import format_summary, summary_dict

    meta = read_meta(args.path)
    if args.json:
        json.dump(summary_dict(meta), sys.stdout, indent=2)
        print()
    else:
        print(format_summary(meta))
        print("\nvalid: schema, complete flag, array lengths and indices checked")
    return 0
