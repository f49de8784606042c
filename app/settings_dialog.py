"""Settings: VAD aggressiveness, hop, decision window, MC-dropout passes (persisted)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .settings import DEFAULTS, Settings


class SettingsDialog(QDialog):
    """Edits the pipeline settings; :meth:`apply` writes them to :class:`Settings`."""

    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        self.vad = QSpinBox(self)
        self.vad.setRange(0, 3)
        self.vad.setToolTip("webrtcvad mode: 0 lets most sound through, 3 only clear speech")
        self.hop = QDoubleSpinBox(self)
        self.hop.setRange(0.1, 1.0)
        self.hop.setSingleStep(0.05)
        self.hop.setSuffix(" s")
        self.hop.setToolTip("time between scored 1-s windows")
        self.decision = QDoubleSpinBox(self)
        self.decision.setRange(1.0, 10.0)
        self.decision.setSingleStep(0.5)
        self.decision.setSuffix(" s")
        self.decision.setToolTip("seconds of speech one decision aggregates")
        self.mc = QSpinBox(self)
        self.mc.setRange(2, 64)
        self.mc.setToolTip("MC-dropout passes per window when scoring is 'MC dropout'")
        form = QFormLayout()
        form.addRow("VAD aggressiveness:", self.vad)
        form.addRow("Hop:", self.hop)
        form.addRow("Decision window:", self.decision)
        form.addRow("MC-dropout passes:", self.mc)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults,
            self,
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            lambda: self.load(DEFAULTS)
        )
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.load(settings.as_dict())

    def load(self, values: dict[str, Any]) -> None:
        self.vad.setValue(int(values["vad_aggressiveness"]))
        self.hop.setValue(float(values["hop_s"]))
        self.decision.setValue(float(values["decision_s"]))
        self.mc.setValue(int(values["mc_passes"]))

    def values(self) -> dict[str, Any]:
        return {
            "vad_aggressiveness": self.vad.value(),
            "hop_s": round(self.hop.value(), 3),
            "decision_s": round(self.decision.value(), 3),
            "mc_passes": self.mc.value(),
        }

    def apply(self) -> dict[str, Any]:
        """Persist the edited values; returns them."""
        values = self.values()
        for key, value in values.items():
            self.settings.set(key, value)
        self.settings.sync()
        return values
