"""Input level meter: RMS bar in dBFS with a peak tick, a speech dot and a clipping mark."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from voxgate.core.events import LevelEvent

FLOOR_DBFS = -60.0  # the bar's left end


class LevelMeter(QWidget):
    """Horizontal meter. Values arrive per block; Qt coalesces the repaints."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rms_dbfs = FLOOR_DBFS
        self.peak_dbfs = FLOOR_DBFS
        self.speech = False
        self.clipping = False
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Input level (RMS, dBFS); the dot turns green while speech is detected")

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt naming)
        return QSize(200, 18)

    def set_level(self, event: LevelEvent) -> None:
        """Show one :class:`LevelEvent` (rms in dBFS, peak in [0, 1])."""
        import math

        self.rms_dbfs = max(FLOOR_DBFS, min(0.0, float(event.rms_dbfs)))
        peak = float(event.peak)
        self.peak_dbfs = 20.0 * math.log10(peak) if peak > 1e-6 else FLOOR_DBFS
        self.peak_dbfs = max(FLOOR_DBFS, min(0.0, self.peak_dbfs))
        self.speech = bool(event.speech)
        self.clipping = bool(event.clipping)
        self.update()

    def reset(self) -> None:
        self.rms_dbfs = self.peak_dbfs = FLOOR_DBFS
        self.speech = self.clipping = False
        self.update()

    @staticmethod
    def fraction(dbfs: float) -> float:
        """Position of ``dbfs`` on the bar, in [0, 1]."""
        return min(1.0, max(0.0, (dbfs - FLOOR_DBFS) / -FLOOR_DBFS))

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt naming)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        h = self.height()
        dot = h - 4
        bar = QRectF(dot + 8, 2, max(1, self.width() - dot - 10), h - 4)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#43a047") if self.speech else QColor("#4a4f5a"))
        p.drawEllipse(QRectF(2, 2, dot, dot))
        p.setBrush(QColor("#2b2f38"))
        p.drawRoundedRect(bar, 3, 3)
        f = self.fraction(self.rms_dbfs)
        if f > 0:
            colour = (
                "#e53935" if self.clipping else ("#fbc02d" if self.rms_dbfs > -6 else "#26a69a")
            )
            p.setBrush(QColor(colour))
            p.drawRoundedRect(QRectF(bar.left(), bar.top(), bar.width() * f, bar.height()), 3, 3)
        x = bar.left() + bar.width() * self.fraction(self.peak_dbfs)
        p.setPen(QColor("#e0e0e0"))
        p.drawLine(int(x), int(bar.top()), int(x), int(bar.bottom()))
        p.end()
