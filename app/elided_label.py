"""A one-line label that elides its text to the width it gets (the full text is its tooltip),
so a long status never wraps and pushes the widgets below it out of view."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    """QLabel whose text is drawn on one line, "…" in the middle when it does not fit."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(text, parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setToolTip(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt naming)
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt naming)
        return QSize(10, self.fontMetrics().height())

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt naming)
        return QSize(min(300, self.fontMetrics().horizontalAdvance(self.text())) + 4,
                     self.fontMetrics().height())  # fmt: skip

    def elided(self) -> str:
        """The text as drawn at the current width."""
        return self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideRight, max(0, self.contentsRect().width())
        )

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt naming)
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(self.contentsRect(), int(self.alignment()), self.elided())
        painter.end()
