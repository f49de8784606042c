"""`voxgate gui` starts in a fresh process (offscreen), authenticates a file and saves a screenshot."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import VOWELS, voiced, write_wav

pytest.importorskip("PySide6")


def test_gui_screenshot_from_the_command_line(tmp_path):
    wav = write_wav(tmp_path, "synthetic.wav", voiced(f0=120.0, formants=VOWELS["e"], seconds=6.0))
    png = tmp_path / "shot.png"
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        VOXGATE_HOME=str(tmp_path / "home"),  # profiles
        XDG_CONFIG_HOME=str(tmp_path / "config"),  # QSettings: never the user's
    )
    cmd = [
        sys.executable, "-m", "voxgate.cli", "gui", "--untrained", "--fast",
        "--enroll", f"synth={wav}", "--file", str(wav),
        "--screenshot", str(png), "--screenshot-after", "4", "--size", "1000x700",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "enrolled synth" in proc.stderr
    assert png.is_file() and png.stat().st_size > 20_000

    from PySide6.QtGui import QImage

    img = QImage(str(png))
    assert (img.width(), img.height()) == (1000, 700)
    # non-trivial: many distinct colours (plots, banner, text), not a blank window
    pixels = {img.pixel(x, y) for x in range(0, 1000, 7) for y in range(0, 700, 7)}
    assert len(pixels) > 200
