"""Before Qt starts: can its platform plugin load? Qt itself would print a paragraph and abort.

Linux/X11 only: ``ldd`` on PySide6's xcb plugin lists the system libraries it cannot find,
and the error names the packages that install them. Other platforms (and QT_QPA_PLATFORM
values such as ``offscreen``) need no check.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from voxgate.core.errors import VoxgateError

# soname -> (Debian/Ubuntu package, Fedora package) for what the xcb plugin links
XCB_PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)

# ldd(path) -> its output; injectable so tests can fake a missing library
Ldd = Callable[[Path], str]


class PlatformPluginError(VoxgateError):
    """Qt's platform plugin cannot load (missing system libraries, or no display)."""


def xcb_plugin_path() -> Path:
    """PySide6's ``plugins/platforms/libqxcb.so`` (it may not exist on non-Linux builds)."""
    import PySide6

    return Path(PySide6.__file__).resolve().parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"


def run_ldd(path: Path) -> str:
    """``ldd path`` output ("" when ldd is not installed or fails)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return ""
    proc = subprocess.run([ldd, str(path)], capture_output=True, text=True, timeout=30)
    return proc.stdout


def missing_libraries(plugin: Path, ldd: Ldd | None = None) -> list[str]:
    """Sonames ``plugin`` needs that the dynamic loader cannot find, sorted, no repeats."""
    return sorted(set(_NOT_FOUND.findall((ldd or run_ldd)(plugin))))


def install_command(sonames: list[str]) -> str:
    """The apt-get / dnf commands that install ``sonames`` (unknown ones by their own name)."""
    debian = sorted({XCB_PACKAGES.get(s, (_guess_debian(s), ""))[0] for s in sonames})
    fedora = sorted({XCB_PACKAGES[s][1] for s in sonames if s in XCB_PACKAGES})
    text = f"sudo apt-get install {' '.join(debian)}"
    if fedora:
        text += f" (Fedora: sudo dnf install {' '.join(fedora)})"
    return text


def _guess_debian(soname: str) -> str:
    """libfoo-bar.so.2 -> libfoo-bar2 (Debian's usual naming; a digit before adds a dash)."""
    stem, _, version = soname.partition(".so")
    version = version.lstrip(".").split(".")[0]
    sep = "-" if stem[-1:].isdigit() else ""
    return f"{stem}{sep}{version}".lower()


def check_platform(
    env: Mapping[str, str],
    *,
    platform: str = sys.platform,
    plugin: Path | None = None,
    ldd: Ldd | None = None,
) -> None:
    """Raise PlatformPluginError when Qt's xcb plugin would abort at start-up.

    Checked only on Linux when QT_QPA_PLATFORM is unset or names xcb first; ``offscreen``,
    ``wayland`` and other platforms pass untouched.
    """
    requested = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if not platform.startswith("linux") or requested not in ("", "xcb"):
        return
    if not requested and env.get("WAYLAND_DISPLAY") and not env.get("DISPLAY"):
        return  # Qt picks its wayland plugin
    if not env.get("DISPLAY"):
        raise PlatformPluginError(
            "no X display (DISPLAY is not set): start voxgate from a desktop session, "
            "or set QT_QPA_PLATFORM=offscreen for scripted use"
        )
    plugin = plugin or xcb_plugin_path()
    if not plugin.is_file():
        return  # a PySide6 build without xcb: Qt explains which plugins it has
    missing = missing_libraries(plugin, ldd)
    if missing:
        raise PlatformPluginError(
            f"Qt's xcb platform plugin cannot load: missing {', '.join(missing)}; "
            f"install them: {install_command(missing)}"
        )
