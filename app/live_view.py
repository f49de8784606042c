"""The main window's live pictures: the decision banner, the log-mel spectrogram and the
confidence plot, each under its title."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .confidence_plot import ConfidencePlot
from .decision_banner import DecisionBanner
from .spectrogram_view import SpectrogramView


class LiveView(QWidget):
    """``banner``, ``spectrogram`` (columns of ``feature_config``) and ``confidence``.

    The worker's events go straight to the widgets; this panel only resets and titles them.
    """

    def __init__(self, feature_config: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.banner = DecisionBanner(self)
        self.spectrogram = SpectrogramView(feature_config, parent=self)
        self.confidence = ConfidencePlot(parent=self)
        self.confidence_title = QLabel(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 12, 12, 12)
        layout.setSpacing(10)
        layout.addWidget(self.banner)
        layout.addWidget(self._titled(QLabel("Log-mel spectrogram", self), self.spectrogram), 3)
        layout.addWidget(self._titled(self.confidence_title, self.confidence), 2)

    def _titled(self, label: QLabel, widget: QWidget) -> QWidget:
        box = QWidget(self)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        label.setObjectName("plotTitle")
        layout.addWidget(label)
        layout.addWidget(widget, 1)
        return box

    def set_mc_passes(self, passes: int) -> None:
        """The ± band is MC dropout's: name it only when MC dropout is on (``passes`` > 0)."""
        self.confidence_title.setText(
            f"Confidence (mean ± MC-dropout std, {passes} passes)"
            if passes
            else "Confidence (score per window)"
        )

    def clear(self) -> None:
        """Empty the spectrogram and the curve (a session starts; they redraw on their timer)."""
        self.spectrogram.reset()
        self.confidence.reset()

    def redraw(self, force: bool = False) -> None:
        """Draw what the plots hold now (``force``: even if nothing changed)."""
        self.spectrogram.redraw(force=force)
        self.confidence.redraw(force=force)
