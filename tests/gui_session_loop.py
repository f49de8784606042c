"""Long GUI sessions in a loop, for test_gui_stress.py (run it as a script, offscreen).

Each round opens the real MainWindow, enrolls from a recording (keeping it), authenticates
recordings (accelerated file input: thousands of blocks in all), switches model while a
session runs (the kept recording is re-embedded on a worker thread) and closes the window.

usage: python -X faulthandler tests/gui_session_loop.py WORKDIR ROUNDS
Prints "rounds N blocks B" (blocks authenticated) on success; any crash shows as a non-zero exit.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from PySide6.QtCore import QEventLoop, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from conftest import VOWELS, voiced, write_tiny_checkpoint, write_wav  # noqa: E402

TIMEOUT_MS = 60000
BLOCK_S = 0.032  # FileSource's block


def wait_for(signal, start=None, timeout_ms: int = TIMEOUT_MS) -> None:
    """Run the event loop until ``signal`` fires (after calling ``start``)."""
    loop = QEventLoop()
    fired = []

    def done(*_args):
        fired.append(True)
        loop.quit()

    signal.connect(done)
    QTimer.singleShot(timeout_ms, loop.quit)
    if start is not None:
        assert start() is not False, "could not start"
    if not fired:
        loop.exec()
    signal.disconnect(done)
    if not fired:
        raise SystemExit(f"timed out waiting for {signal}")


def one_round(app, work: Path, wav: Path, models: list[Path], k: int) -> int:
    from voxgate.app.main_window import MainWindow
    from voxgate.app.settings import Settings
    from voxgate.app.theme import apply_theme
    from voxgate.core.inference import SpeakerEncoder
    from voxgate.core.profiles import ProfileStore

    apply_theme(app)
    settings = Settings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    store = ProfileStore(work / f"profiles{k}")
    encoder = SpeakerEncoder.from_checkpoint(models[k % 2])
    window = MainWindow(encoder, store, settings, file_realtime=False, list_devices=lambda rescan=False: [])
    window.ask = lambda _title, _question: True
    window.resize(1200, 760)
    window.show()
    seconds = [0.0]  # stream seconds processed in this round

    def count(t: float) -> None:
        seconds[-1] = max(seconds[-1], t)

    window.stream_time.connect(count)
    wait_for(window.job_finished, lambda: window.start_enroll("alice", files=[str(wav)],
                                                              keep_audio=True))  # fmt: skip
    assert [p.name for p in store.list()] == ["alice"], window.last_error
    wait_for(window.job_finished, lambda: window.start_file_authentication(wav))
    assert window.last_error is None, window.last_error
    seconds.append(0.0)
    # switch model in the middle of a session: stop, join, re-embed the kept recording
    wait_for(window.stream_time, lambda: window.start_file_authentication(wav))
    wait_for(window.reembedded, lambda: window.load_model(models[(k + 1) % 2]))
    assert store.is_compatible(store.get("alice"), window.encoder), window.statusBar().currentMessage()
    seconds.append(0.0)
    wait_for(window.job_finished, lambda: window.start_file_authentication(wav))
    window.close()
    window.deleteLater()
    app.processEvents()
    return int(sum(seconds) / BLOCK_S)


def main(argv: list[str]) -> int:
    work, rounds = Path(argv[0]), int(argv[1])
    work.mkdir(parents=True, exist_ok=True)
    wave = voiced(f0=118.0, formants=VOWELS["a"], seconds=12.0, seed=3)
    wav = write_wav(work, "speech.wav", wave)
    models = [write_tiny_checkpoint(work / f"m{i}.pt", seed=i) for i in range(2)]
    app = QApplication.instance() or QApplication(["voxgate-stress"])
    total = sum(one_round(app, work, wav, models, k) for k in range(rounds))
    print(f"rounds {rounds} blocks {total}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
