"""The ``voxgate`` command: each feature area registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
import traceback

from . import __version__

# Each module has ``register(subparsers)``; handlers are ``func(args) -> int`` and
# import heavy libraries lazily, so ``voxgate --help`` stays fast.
COMMAND_MODULES = (
    "voxgate.training.dataset_cli",
    "voxgate.training.train_cli",
    "voxgate.training.average",
    "voxgate.training.eval_cli",
    "voxgate.training.report_cli",
    "voxgate.live_cli",
    "voxgate.profiles_cli",
    "voxgate.app.gui_cli",
)


def build_parser() -> argparse.ArgumentParser:
    from .exitcodes import TABLE

    parser = argparse.ArgumentParser(
        prog="voxgate",
        description="Real-time voice authentication and its training toolkit.",
        epilog=TABLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"voxgate {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging; tracebacks for errors"
    )
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


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl+C, so every ``finally`` and temp-file cleanup runs."""
    from voxgate.core.errors import InterruptedByUser

    raise InterruptedByUser(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (see ``voxgate.exitcodes``). Every failure (a
    VoxgateError; an OSError, also one wrapped by a library: unreadable file, full disk,
    read-only folder; even a bug) is one ``voxgate: error:`` line and exit 1; ``-v`` adds
    the traceback."""
    from voxgate.core.runtime import configure_threads

    configure_threads(argv)  # before torch loads: passive OpenMP; one thread when live
    from voxgate.core.errors import InterruptedByUser, VoxgateError, os_error_message

    from .exitcodes import EXIT_USAGE

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.func(args) or 0)
    except VoxgateError as exc:
        return _fail(str(exc), args.verbose)
    except OSError as exc:
        return _fail(os_error_message(exc), args.verbose)
    except Exception as exc:  # a library's own error type, or a bug: still one line
        cause = _os_cause(exc)
        if cause is not None:
            return _fail(os_error_message(cause), args.verbose)
        first = (str(exc).strip().splitlines() or [""])[0]
        return _fail(
            f"unexpected {type(exc).__name__}: {first} (run with -v for the traceback)",
            args.verbose,
        )
    except InterruptedByUser:
        print("voxgate: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("voxgate: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _os_cause(exc: BaseException) -> OSError | None:
    """The OSError behind a wrapped error (``raise X from oserror``, or raised while one was
    handled), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _fail(message: str, verbose: bool) -> int:
    from .exitcodes import EXIT_ERROR

    if verbose:
        traceback.print_exc()
    print(f"voxgate: error: {message}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
