"""Input device picker and level meter; explains plainly when no microphone can be used."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from voxgate.core.errors import VoxgateError

from .level_meter import LevelMeter


class InputPanel(QGroupBox):
    """Device combo (from ``list_devices()``), refresh, level meter and a file button.

    ``list_devices`` is ``core.sources.list_input_devices`` (passed in, so tests can use
    the real one on a machine with or without PortAudio).
    """

    authenticate_file_requested = Signal()
    device_changed = Signal(str)
    message = Signal(str)

    def __init__(self, list_devices: Callable[[], list[Any]], parent: QWidget | None = None):
        super().__init__("Input", parent)
        self._list_devices = list_devices
        self.devices: list[Any] = []
        self.error: str | None = None
        self.combo = QComboBox(self)
        self.combo.setMinimumContentsLength(18)
        self.combo.currentIndexChanged.connect(
            lambda _i: self.device_changed.emit(self.device_name())
        )
        self.refresh_button = QToolButton(self)
        self.refresh_button.setText("⟳")
        self.refresh_button.setToolTip("Look for input devices again")
        self.refresh_button.clicked.connect(self.refresh)
        self.explanation = QLabel(self)
        self.explanation.setObjectName("inputExplanation")
        self.explanation.setWordWrap(True)
        self.meter = LevelMeter(self)
        self.file_button = QPushButton("Authenticate a recording…", self)
        self.file_button.clicked.connect(self.authenticate_file_requested)
        row = QHBoxLayout()
        row.addWidget(self.combo, 1)
        row.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        layout.addLayout(row)
        layout.addWidget(self.explanation)
        layout.addWidget(self.meter)
        layout.addWidget(self.file_button)

    @property
    def available(self) -> bool:
        """True when at least one input device was found."""
        return bool(self.devices)

    def refresh(self, preferred: str = "") -> None:
        """List the input devices; on failure show why and keep file input available."""
        previous = preferred or self.device_name()
        self.combo.blockSignals(True)
        self.combo.clear()
        try:
            self.devices = list(self._list_devices())
            self.error = None if self.devices else "No microphone or other input device was found."
        except VoxgateError as exc:
            self.devices = []
            self.error = str(exc)
        for dev in self.devices:
            label = f"{dev.name}{'  (default)' if dev.is_default else ''}"
            self.combo.addItem(label, dev.index)
        if not self.devices:
            self.combo.addItem("no input device")
        self.combo.setEnabled(bool(self.devices))
        if self.error:
            # The first clause says what is wrong; the full text (with the fix) is the tooltip.
            short = self.error.split(";")[0].rstrip(".")
            self.explanation.setText(
                f"{short}. Live input is off: enroll from and authenticate recordings instead."
            )
            self.explanation.setToolTip(self.error)
        self.explanation.setVisible(bool(self.error))
        idx = next((i for i, d in enumerate(self.devices) if d.name == previous), None)
        if idx is None:
            idx = next((i for i, d in enumerate(self.devices) if d.is_default), 0)
        self.combo.setCurrentIndex(idx)
        self.combo.blockSignals(False)
        if self.error:
            self.message.emit(self.error)

    def device_index(self) -> int | None:
        """The PortAudio index of the chosen device (None when none is available)."""
        if not self.devices:
            return None
        return self.combo.currentData()

    def device_name(self) -> str:
        i = self.combo.currentIndex()
        return self.devices[i].name if self.devices and 0 <= i < len(self.devices) else ""
