"""Long sessions do not crash: the real window, offscreen, 20 rounds of enroll / authenticate /
switch model / close in one process (tests/gui_session_loop.py), with faulthandler on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

LOOP = Path(__file__).with_name("gui_session_loop.py")


def test_signal_emit_keeps_true_alive():
    """PySide6 6.12.0's emit() returned True without a reference: every emit lowered True's
    refcount until Python 3.11 aborted with "bool_dealloc" (the crash on quit)."""
    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        ping = Signal(object)

    emitter = Emitter()
    emitter.ping.connect(lambda _x: None)
    before = sys.getrefcount(True)
    for _ in range(200):
        emitter.ping.emit(None)
    drift = sys.getrefcount(True) - before
    assert abs(drift) < 20, f"Signal.emit changes True's refcount by {drift} per 200 emits"


@pytest.mark.slow
def test_twenty_long_sessions_in_one_process_never_crash(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", VOXGATE_HOME=str(tmp_path / "home"))
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", str(LOOP), str(tmp_path / "work"), "20"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "Fatal Python error" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    rounds, blocks = proc.stdout.split()[1::2]
    assert int(rounds) == 20
    assert int(blocks) > 5000  # thousands of 32-ms blocks authenticated in all
