"""``voxgate gui``: start the desktop client (optionally scripted: a file, a screenshot)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "gui",
        help="start the desktop client",
        description="Start the voxgate desktop client. Without a microphone it still starts "
        "and authenticates recordings. --file/--screenshot script it (docs, smoke tests).",
    )
    p.add_argument("--model", type=Path, help="checkpoint (default: the shipped model)")
    p.add_argument("--profiles", type=Path, help="voice profile folder (default: user data dir)")
    p.add_argument(
        "--untrained", action="store_true", help="random weights (no model needed; for testing)"
    )
    p.add_argument("--file", type=Path, help="start authenticating this recording immediately")
    p.add_argument(
        "--fast", action="store_true", help="play --file as fast as possible, not in real time"
    )
    p.add_argument(
        "--enroll",
        action="append",
        default=[],
        metavar="NAME=FILE[,FILE...]",
        help="enroll NAME (authorized) from recordings before the window opens (repeatable)",
    )
    p.add_argument("--screenshot", type=Path, metavar="PATH", help="save a PNG of the window, quit")
    p.add_argument(
        "--screenshot-after",
        type=float,
        default=8.0,
        metavar="S",
        help="seconds of --file audio processed before the screenshot (default 8)",
    )
    p.add_argument(
        "--size", default="1200x760", metavar="WxH", help="window size (default 1200x760)"
    )
    p.set_defaults(func=_gui)


def _parse_size(text: str) -> tuple[int, int]:
    from voxgate.core.errors import ConfigError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size must look like 1200x760, got {text!r}") from None
    if w < 400 or h < 300:
        raise ConfigError(f"--size too small: {text}")
    return w, h


def load_encoder(model: Path | None, untrained: bool, remembered: str = "") -> tuple[object, str]:
    """(SpeakerEncoder, note for the status bar). Falls back to an untrained model, with a
    note, when no model is given and the shipped one is missing or unreadable."""
    from voxgate.core.errors import CheckpointError
    from voxgate.core.inference import SpeakerEncoder, default_model_path

    if untrained:
        return SpeakerEncoder.untrained(), ""
    if model is not None:
        return SpeakerEncoder.from_checkpoint(model), ""  # an explicit model must load
    note = ""
    candidates = [Path(remembered)] if remembered and Path(remembered).is_file() else []
    candidates.append(default_model_path())
    for path in candidates:
        try:
            return SpeakerEncoder.from_checkpoint(path), ""
        except CheckpointError as exc:
            note = str(exc) if path.exists() else ""
    return SpeakerEncoder.untrained(), note


def _enroll(encoder: object, store: object, specs: list[str]) -> None:
    from voxgate.core.enroll import enroll_from_files
    from voxgate.core.errors import ConfigError

    for spec in specs:
        name, sep, files = spec.partition("=")
        paths = [f for f in files.split(",") if f]
        if not sep or not name.strip() or not paths:
            raise ConfigError(f"--enroll must look like NAME=FILE[,FILE...], got {spec!r}")
        profile = enroll_from_files(encoder, paths, name.strip(), store=store)
        print(f"enrolled {profile.name}: {profile.speech_s:.1f} s of speech", file=sys.stderr)


def _gui(args: argparse.Namespace) -> int:
    import os

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from voxgate.core.profiles import ProfileStore

    from .main_window import MainWindow
    from .platform_check import check_platform
    from .settings import Settings
    from .theme import apply_theme

    size = _parse_size(args.size)
    app = QApplication.instance()
    if app is None:
        check_platform(os.environ)  # before Qt, which would abort without a usable plugin
        app = QApplication(sys.argv[:1])
    app.setOrganizationName("voxgate")
    app.setApplicationName("voxgate")
    apply_theme(app)
    settings = Settings()
    encoder, note = load_encoder(args.model, args.untrained, settings.get("model_path"))
    store = ProfileStore(args.profiles)
    if args.enroll:
        _enroll(encoder, store, args.enroll)
    window = MainWindow(encoder, store, settings, file_realtime=not args.fast)
    window.resize(*size)
    if note:
        window.statusBar().showMessage(f"the shipped model could not be loaded: {note}")
    window.show()
    result = {"code": 0}
    if args.screenshot is not None:
        _schedule_screenshot(app, window, args.screenshot, args.screenshot_after, result)
    if args.file is not None:
        QTimer.singleShot(0, lambda: window.start_file_authentication(args.file))
    restore = _close_on_signals(window, result)
    try:
        app.exec()
    finally:
        restore()
    return result["code"]


def _close_on_signals(window: object, result: dict) -> Callable[[], None]:
    """Ctrl+C and SIGTERM close the window (stopping audio, joining threads) and exit 130.

    Raising from a signal handler, as the other commands do, would only abort whichever Qt
    slot happens to run. Returns a function that restores the previous handlers."""
    import signal

    from PySide6.QtCore import QTimer

    def close(_signum: int, _frame: object) -> None:
        result["code"] = 130
        QTimer.singleShot(0, window.close)

    names = [s for s in (signal.SIGINT, signal.SIGTERM)]
    previous = {s: signal.getsignal(s) for s in names}
    for s in names:
        signal.signal(s, close)

    def restore() -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)

    return restore


def _schedule_screenshot(
    app: object, window: object, path: Path, after_s: float, result: dict
) -> None:
    """Save the window as PNG once ``after_s`` seconds of stream were processed (or the file
    ended, or a generous wall-clock limit passed), then quit."""
    from PySide6.QtCore import QTimer

    state = {"done": False}

    def grab(*_args: object) -> None:
        if state["done"]:
            return
        state["done"] = True
        window.live_view.redraw(force=True)
        app.processEvents()  # pending layout requests (a label that just grew) before the grab
        path.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(path)):
            print(f"voxgate: error: could not write {path}", file=sys.stderr)
            result["code"] = 1
        window.close()
        app.quit()

    window.stream_time.connect(lambda t: grab() if t >= after_s else None)
    window.job_finished.connect(grab)
    QTimer.singleShot(int(1000 * (4 * after_s + 60)), grab)
