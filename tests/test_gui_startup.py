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


# ---------------------------------------------------------------- the platform plugin check

LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /x/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f)
\tlibxcb-icccm.so.4 => not found
"""


def test_platform_check_names_the_missing_packages(tmp_path):
    from voxgate.app.platform_check import PlatformPluginError, check_platform

    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    env = {"DISPLAY": ":0"}
    with pytest.raises(PlatformPluginError) as err:
        check_platform(env, platform="linux", plugin=plugin, ldd=lambda _p: LDD_MISSING)
    text = str(err.value)
    assert "missing libxcb-icccm.so.4, libxcb-keysyms.so.1;" in text
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1 " in text
    assert "sudo dnf install xcb-util-keysyms xcb-util-wm" in text
    # every library found: no error
    check_platform(env, platform="linux", plugin=plugin, ldd=lambda _p: "libxcb.so.1 => /x")


def test_platform_check_skips_offscreen_other_systems_and_wayland(tmp_path):
    from voxgate.app.platform_check import PlatformPluginError, check_platform, install_command

    def explode(_p):
        raise AssertionError("ldd must not run")

    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    for env, system in (
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux"),
        ({"QT_QPA_PLATFORM": "wayland", "DISPLAY": ":0"}, "linux"),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux"),
        ({"DISPLAY": ":0"}, "darwin"),
    ):
        check_platform(env, platform=system, plugin=plugin, ldd=explode)
    with pytest.raises(PlatformPluginError, match="DISPLAY is not set.*QT_QPA_PLATFORM=offscreen"):
        check_platform({}, platform="linux", plugin=plugin, ldd=explode)
    # a library outside the table gets Debian's usual package name
    assert install_command(["libfoo2.so.7"]) == "sudo apt-get install libfoo2-7"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb plugin is Linux's")
def test_gui_reports_a_missing_library_instead_of_aborting(tmp_path):
    """The real `voxgate gui` entry point with a faked ldd: one error line, exit 1, no Qt abort."""
    script = (
        "import sys\n"
        "import voxgate.app.platform_check as pc\n"
        f"pc.run_ldd = lambda _p: {LDD_MISSING!r}\n"
        "from voxgate.cli import main\n"
        "sys.exit(main(['gui', '--untrained']))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=":97", VOXGATE_HOME=str(tmp_path / "home"))
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("voxgate: error: Qt's xcb platform plugin cannot load")
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in lines[0]
