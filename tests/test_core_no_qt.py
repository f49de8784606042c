"""core never imports Qt or pyqtgraph: checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "voxgate.core",
    "voxgate.core.pipeline",
    "voxgate.core.inference",
    "voxgate.core.sources",
    "voxgate.core.profiles",
    "voxgate.core.enroll",
    "voxgate.core.decision",
    "voxgate.core.events",
    "voxgate.core.features",
    "voxgate.core.vad",
    "voxgate.core.audio",
    "voxgate.live_cli",
]


def test_core_imports_no_qt() -> None:
    code = (
        f"import importlib, sys\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph')))\n"
        "assert not bad, bad\n"
        "print('ok', len(sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ok")
