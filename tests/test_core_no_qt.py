"""core is headless: importing all of it loads no Qt, pyqtgraph, matplotlib, training/ or app/
(checked in a fresh interpreter)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import voxgate.core

FORBIDDEN = ("PySide6", "pyqtgraph", "matplotlib", "voxgate.training", "voxgate.app")


def test_every_core_module_imports_nothing_but_the_engine() -> None:
    modules = sorted(
        f"voxgate.core.{m.name}"
        for m in pkgutil.iter_modules([str(Path(voxgate.core.__file__).parent)])
    )
    assert {"voxgate.core.pipeline", "voxgate.core.scoring", "voxgate.core.gate"} <= set(modules)
    code = (
        "import importlib, sys\n"
        f"for m in {modules + ['voxgate.live_cli', 'voxgate.profiles_cli']!r}:\n"
        "    importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}))\n"
        "print('loaded', bad)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "loaded []"
