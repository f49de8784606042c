"""Input device picker and level meter; explains plainly when no microphone can be used."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QTimer, Signal
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

from voxgate.core.errors import PortAudioMissingError, VoxgateError

from .level_meter import LevelMeter

POLL_MS = 5000  # the idle check for plugged / unplugged devices


class InputPanel(QGroupBox):
    """Device combo (from ``list_devices(rescan)``), refresh, level meter and a file button.

    ``list_devices`` is ``core.input_devices.list_input_devices`` (passed in, so tests can use
    the real one on a machine with or without PortAudio); ``rescan=True`` re-reads the
    system's devices. ⟳ and an idle check every ``POLL_MS`` (skipped while ``busy``) look
    again, so plugged and unplugged devices show up.
    """

    authenticate_file_requested = Signal()
    device_changed = Signal(str)
    devices_changed = Signal()  # the list was (re)read: ``available`` may have changed
    message = Signal(str)

    def __init__(self, list_devices: Callable[[bool], list[Any]], parent: QWidget | None = None):
        super().__init__("Input", parent)
        self._list_devices = list_devices
        self.devices: list[Any] = []
        self.error: str | None = None
        self.busy = False  # a session runs: the idle check waits
        self.combo = QComboBox(self)
        self.combo.setMinimumContentsLength(18)
        self.combo.currentIndexChanged.connect(
            lambda _i: self.device_changed.emit(self.device_name())
        )
        self.refresh_button = QToolButton(self)
        self.refresh_button.setText("⟳")
        self.refresh_button.setToolTip("Look for input devices again")
        self.refresh_button.clicked.connect(lambda _checked=False: self.refresh(rescan=True))
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
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(POLL_MS)
        self.poll_timer.timeout.connect(self.poll)
        self.poll_timer.start()

    @property
    def available(self) -> bool:
        """True when at least one input device was found."""
        return bool(self.devices)

    def _query(self, rescan: bool) -> tuple[list[Any], str | None]:
        """(devices, error text or None)."""
        try:
            devices = list(self._list_devices(rescan))
        except PortAudioMissingError as exc:
            self.poll_timer.stop()  # nothing can appear without PortAudio
            return [], str(exc)
        except VoxgateError as exc:
            return [], str(exc)
        return devices, None if devices else "No microphone or other input device was found."

    def poll(self) -> bool:
        """The idle check: look again and update the list if it changed; True if it did."""
        if self.busy:
            return False
        devices, error = self._query(rescan=True)
        if [d.name for d in devices] == [d.name for d in self.devices] and error == self.error:
            return False
        before = {d.name for d in self.devices}
        self._show(devices, error, self.device_name())
        added = [d.name for d in devices if d.name not in before]
        self.message.emit(
            f"input device found: {', '.join(added)}" if added else "input devices changed"
        )
        return True

    def refresh(self, preferred: str = "", rescan: bool = False) -> None:
        """List the input devices (``rescan``: look again); on failure show why and keep
        file input available."""
        devices, error = self._query(rescan)
        self._show(devices, error, preferred or self.device_name())

    def _show(self, devices: list[Any], error: str | None, previous: str) -> None:
        self.devices, self.error = devices, error
        self.combo.blockSignals(True)
        self.combo.clear()
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
        self.devices_changed.emit()
        if self.error:
            self.message.emit(self.error)

    def set_busy(self, busy: bool) -> None:
        self.busy = busy

    def device_index(self) -> int | None:
        """The PortAudio index of the chosen device (None when none is available)."""
        if not self.devices:
            return None
        return self.combo.currentData()

    def device_name(self) -> str:
        i = self.combo.currentIndex()
        return self.devices[i].name if self.devices and 0 <= i < len(self.devices) else ""
