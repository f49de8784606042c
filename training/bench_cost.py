"""CPU cost of authenticating, measured from outside: ``voxgate verify --file`` and the GUI.

cli-cost: CPU seconds per audio second of ``voxgate verify --file``, as the CPU time of a
run on a long file minus a run on a short one (``resource.getrusage(RUSAGE_CHILDREN)``),
which cancels start-up (imports, model load). verify stops at its first final decision,
so both runs may score about the same few seconds: see also ``bench pipeline``.
gui-cost: the real MainWindow, offscreen, authenticating a recording paced in real time
through the whole file; the process's CPU seconds (GUI thread + worker) per audio second.
gui-cost --floor: no voxgate, a bare window woken ten times a second (``tick``: the timer
does nothing; ``repaint``: the window repaints itself), the Qt floor of a 10-Hz display.
Both take ``--load N``: N busy-looping processes beside the measurement (busy machine).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from voxgate.core.errors import ConfigError, ProfileError

__all__ = ["measure_cli_cost", "measure_gui_cost", "measure_qt_floor", "speech_wave"]

_SR = 16000


def speech_wave(seconds: float, file: str | Path | None = None) -> tuple[Any, str]:
    """(float32 (round(seconds * 16000),), source name): ``file`` (default: a LibriSpeech
    test-clean file of the shared data, else synthetic voiced speech), looped to length."""
    import numpy as np

    from voxgate.core.audio import load_audio

    from .bench_common import default_speech_file, synth_voiced

    path = Path(file) if file else default_speech_file()
    if path is not None:
        wave, name = load_audio(path, _SR), str(path)
    else:
        wave, name = synth_voiced(12.0), "synthetic voiced"
    n = int(round(seconds * _SR))
    return np.tile(wave, int(np.ceil(n / wave.size)))[:n], name


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _voxgate(args: list[str], env: dict[str, str]) -> tuple[int, float, float, str]:
    """Run ``python -m voxgate ARGS``: (exit code, CPU s of the child, wall s, stderr)."""
    c0, w0 = _children_cpu_s(), time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "voxgate", *args], capture_output=True, text=True, env=env
    )
    return proc.returncode, _children_cpu_s() - c0, time.perf_counter() - w0, proc.stderr


def measure_cli_cost(
    *,
    long_s: float = 60.0,
    short_s: float = 2.0,
    file: str | Path | None = None,
    model: str | None = None,
    untrained: bool = False,
    load: int = 0,
    repeats: int = 1,
) -> dict[str, Any]:
    """CPU s per audio s of ``voxgate verify --file`` (long file minus short file).

    The speech (see :func:`speech_wave`) is enrolled once as profile "bench" into a
    temporary profile folder; each of the short and long files is then verified
    ``repeats`` times (the lowest CPU time counts) with ``load`` busy processes running.
    """
    import soundfile as sf

    from .bench_common import busy_cores

    if not 0 < short_s < long_s:
        raise ConfigError(f"need 0 < short_s < long_s, got {short_s}, {long_s}")
    wave, name = speech_wave(long_s, file)
    model_args = ["--untrained"] if untrained else (["--model", model] if model else [])
    env = dict(os.environ)
    out: dict[str, Any] = {"bench": "cli-cost", "file": name, "load_processes": load,
                           "long_s": long_s, "short_s": short_s}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for label, seconds in (("enroll", min(long_s, 20.0)), ("short", short_s), ("long", long_s)):
            paths[label] = Path(tmp) / f"{label}.wav"
            sf.write(paths[label], wave[: int(round(seconds * _SR))], _SR, subtype="FLOAT")
        common = ["--profiles", str(Path(tmp) / "profiles"), *model_args]
        rc, _, _, err = _voxgate(["enroll", "bench", "--file", str(paths["enroll"]), *common], env)
        if rc != 0:
            raise ProfileError(f"enrollment failed: {err.strip().splitlines()[-1:]}")
        with busy_cores(load):
            for label in ("short", "long"):
                runs = [
                    _voxgate(["verify", "--file", str(paths[label]), *common], env)
                    for _ in range(max(1, repeats))
                ]
                if any(r[0] not in (0, 3, 4) for r in runs):
                    raise ProfileError(f"verify failed: {runs[0][3].strip().splitlines()[-1:]}")
                rc, cpu, wall, _ = min(runs, key=lambda r: r[1])
                out[label] = {"exit_code": rc, "cpu_s": cpu, "wall_s": wall}
    out["cpu_s_per_audio_s"] = (out["long"]["cpu_s"] - out["short"]["cpu_s"]) / (long_s - short_s)
    return out


def measure_gui_cost(
    *, seconds: float = 30.0, file: str | Path | None = None, model: str | None = None,
    load: int = 0, timeout_s: float = 300.0, minimized: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The real MainWindow (offscreen) enrolls the speech, then authenticates ``seconds`` of
    it paced in real time, scoring every window (no stop at the first final decision);
    ``minimized``: with the window minimized (no live display).

    Returns the process CPU seconds (all threads) per audio second while authenticating.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import soundfile as sf
    from PySide6.QtWidgets import QApplication

    from .bench_common import busy_cores

    wave, name = speech_wave(seconds, file)
    app = QApplication.instance() or QApplication(["voxgate-bench"])
    with tempfile.TemporaryDirectory() as tmp:
        wav, enroll_wav = Path(tmp) / "speech.wav", Path(tmp) / "enroll.wav"
        sf.write(wav, wave, _SR, subtype="FLOAT")
        sf.write(enroll_wav, speech_wave(20.0, file)[0], _SR, subtype="FLOAT")
        window = _bench_window(Path(tmp), model)
        _run_until_finished(window, timeout_s,
                            lambda: window.start_enroll("bench", files=[str(enroll_wav)]))  # fmt: skip
        if window.last_error:
            raise ProfileError(f"GUI enrollment failed: {window.last_error}")
        window.file_realtime = True
        if minimized:
            window.showMinimized()
            app.processEvents()
        plain = window.pipeline_config
        window.pipeline_config = lambda **kw: plain(**{"stop_on_decision": False, **kw})
        with busy_cores(load):
            c0 = time.process_time()
            wall = _run_until_finished(
                window, timeout_s, lambda: window.start_file_authentication(wav)
            )
            cpu = time.process_time() - c0
        shown = window.controller.display_visible
        window.close()
        app.processEvents()
    audio_s = wave.size / _SR
    return {
        "bench": "gui-cost", "file": name, "audio_s": audio_s, "load_processes": load,
        "minimized": minimized, "display_shown": shown,
        "wall_s": wall, "cpu_s": cpu, "cpu_s_per_audio_s": cpu / audio_s,
        "error": window.last_error,
    }  # fmt: skip


def measure_qt_floor(
    *, seconds: float = 20.0, repaint: bool = True, size: tuple[int, int] = (1200, 760)
) -> dict[str, Any]:
    """CPU s per s of a bare ``size`` window whose 100-ms timer repaints it (or does nothing)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtGui import QColor, QPainter
    from PySide6.QtWidgets import QApplication, QWidget

    class Plain(QWidget):
        def paintEvent(self, _event) -> None:  # noqa: N802 (Qt naming)
            p = QPainter(self)
            p.fillRect(self.rect(), QColor("#262a33"))
            p.end()

    app = QApplication.instance() or QApplication(["voxgate-bench"])
    window = Plain()
    window.resize(*size)
    window.show()
    tick = QTimer()
    tick.setInterval(100)
    tick.timeout.connect(window.update if repaint else (lambda: None))
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    app.processEvents()
    tick.start()
    c0 = time.process_time()
    loop.exec()
    cpu = time.process_time() - c0
    tick.stop()
    window.close()
    return {"bench": "gui-cost", "floor": "repaint" if repaint else "tick", "seconds": seconds,
            "cpu_s": cpu, "cpu_s_per_s": cpu / seconds}  # fmt: skip


def _bench_window(tmp: Path, model: str | None) -> Any:
    """The real MainWindow, shown, with its settings and profiles in ``tmp`` and every
    question answered yes."""
    from PySide6.QtCore import QSettings

    from voxgate.app.main_window import MainWindow
    from voxgate.app.settings import Settings
    from voxgate.core.profiles import ProfileStore

    from .bench_common import load_encoder

    encoder = load_encoder(model, "report", "cpu")[0]
    settings = Settings(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(encoder, ProfileStore(tmp / "profiles"), settings,
                        file_realtime=False, list_devices=lambda rescan=False: [])  # fmt: skip
    window.ask = lambda _title, _question: True
    window.show()
    return window


def _run_until_finished(window: Any, timeout_s: float, start: Any) -> float:
    """Call ``start`` and run the Qt event loop until the window's job finishes; wall seconds."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    window.job_finished.connect(loop.quit)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    t0 = time.perf_counter()
    if start() is False:
        raise ProfileError(f"the GUI did not start: {window.last_error}")
    loop.exec()
    window.job_finished.disconnect(loop.quit)
    if window.job is not None:
        raise ProfileError(f"the GUI job did not finish within {timeout_s} s")
    return time.perf_counter() - t0


def add_cli_cost(p: argparse.ArgumentParser) -> None:
    p.add_argument("--long-s", type=float, default=60.0, help="seconds of the long file")
    p.add_argument("--short-s", type=float, default=2.0, help="seconds of the short file")
    p.add_argument("--file", help="speech file (default: a LibriSpeech test-clean file)")
    p.add_argument("--model", help="checkpoint (default: the shipped model)")
    p.add_argument("--untrained", action="store_true", help="a random model")
    p.add_argument("--repeats", type=int, default=1, help="runs per file (the cheapest counts)")
    p.add_argument("--load", type=int, default=0, metavar="N", help="busy processes beside")
    p.add_argument("--out", help="also write the JSON line to this file")


def cmd_cli_cost(args: argparse.Namespace) -> int:
    from .bench_common import emit

    result = measure_cli_cost(
        long_s=args.long_s, short_s=args.short_s, file=args.file, model=args.model,
        untrained=args.untrained, load=args.load, repeats=args.repeats,
    )  # fmt: skip
    return emit(result, args.out)


def add_gui_cost(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=30.0, help="audio seconds authenticated")
    p.add_argument("--file", help="speech file (default: a LibriSpeech test-clean file)")
    p.add_argument("--model", help="checkpoint (default: the shipped model)")
    p.add_argument("--load", type=int, default=0, metavar="N", help="busy processes beside")
    p.add_argument("--minimized", action="store_true", help="the window minimized (no display)")
    p.add_argument("--floor", choices=("tick", "repaint"),
                   help="no voxgate: a bare window's 10-Hz timer does nothing / repaints it")  # fmt: skip
    p.add_argument("--out", help="also write the JSON line to this file")


def cmd_gui_cost(args: argparse.Namespace) -> int:
    from voxgate.core.runtime import configure_threads

    from .bench_common import emit

    configure_threads(live=True)  # as the GUI's entry point does
    if args.floor:
        return emit(measure_qt_floor(seconds=args.seconds, repaint=args.floor == "repaint"),
                    args.out)  # fmt: skip
    result = measure_gui_cost(seconds=args.seconds, file=args.file, model=args.model,
                              load=args.load, minimized=args.minimized)  # fmt: skip
    return emit(result, args.out)
