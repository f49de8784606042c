"""The ``voxgate`` command: each feature area registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__

# Each module has ``register(subparsers)``; handlers are ``func(args) -> int`` and
# import heavy libraries lazily, so ``voxgate --help`` stays fast.
COMMAND_MODULES = (
    "voxgate.training.dataset_cli",
    "voxgate.training.train_cli",
    "voxgate.training.eval_cli",
    "voxgate.training.report_cli",
    "voxgate.live_cli",
    "voxgate.app.gui_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxgate", description="Real-time voice authentication and its training toolkit."
    )
    parser.add_argument("--version", action="version", version=f"voxgate {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a feature area not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from voxgate.core.errors import VoxgateError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except VoxgateError as exc:
        print(f"voxgate: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("voxgate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
