"""The look: Fusion + a dark palette, app/style.qss, plot colours, the window icon."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

HERE = Path(__file__).resolve().parent
STYLE_SHEET = HERE / "style.qss"
ICON_CANDIDATES = (HERE / "voxgate.svg", HERE.parent / "assets" / "voxgate.svg")

BACKGROUND = "#1e2129"
SURFACE = "#262a33"
TEXT = "#e6e8ee"
MUTED = "#9aa3b2"
ACCENT = "#4fc3f7"


def icon_path() -> Path | None:
    return next((p for p in ICON_CANDIDATES if p.is_file()), None)


def apply_theme(app: QApplication) -> None:
    """Dark Fusion palette + style sheet + pyqtgraph colours + icon (missing files are skipped)."""
    import pyqtgraph as pg

    app.setStyle("Fusion")
    pal = QPalette()
    for role, colour in (
        (QPalette.ColorRole.Window, BACKGROUND),
        (QPalette.ColorRole.WindowText, TEXT),
        (QPalette.ColorRole.Base, SURFACE),
        (QPalette.ColorRole.AlternateBase, BACKGROUND),
        (QPalette.ColorRole.Text, TEXT),
        (QPalette.ColorRole.Button, SURFACE),
        (QPalette.ColorRole.ButtonText, TEXT),
        (QPalette.ColorRole.Highlight, ACCENT),
        (QPalette.ColorRole.HighlightedText, "#10131a"),
        (QPalette.ColorRole.ToolTipBase, SURFACE),
        (QPalette.ColorRole.ToolTipText, TEXT),
        (QPalette.ColorRole.PlaceholderText, MUTED),
    ):
        pal.setColor(role, QColor(colour))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(MUTED))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(MUTED))
    app.setPalette(pal)
    if STYLE_SHEET.is_file():
        sheet = STYLE_SHEET.read_text(encoding="utf-8")
        app.setStyleSheet(sheet.replace("@HERE@", HERE.as_posix()))  # the arrow images
    pg.setConfigOptions(background=SURFACE, foreground=MUTED, antialias=True)
    icon = icon_path()
    if icon is not None:
        app.setWindowIcon(QIcon(str(icon)))
