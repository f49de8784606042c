"""Mode, scoring (deterministic / MC dropout) and the decision threshold with its reset."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

SLIDER_STEPS = 1000


class ScoringPanel(QGroupBox):
    """Emits :attr:`mode_changed` (mode key), :attr:`scoring_changed` (MC passes, 0 =
    deterministic) and :attr:`threshold_changed` (the value, or None = calibrated default)."""

    mode_changed = Signal(str)
    scoring_changed = Signal(int)
    threshold_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Decision", parent)
        self.mode_combo = QComboBox(self)
        self.scoring_combo = QComboBox(self)
        self.scoring_combo.addItem("Deterministic", "deterministic")
        self.scoring_combo.addItem("MC dropout", "mc")
        self.passes = QSpinBox(self)
        self.passes.setRange(2, 64)
        self.passes.setValue(10)
        self.passes.setSuffix(" passes")
        self.passes.setEnabled(False)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        # one step above the bottom: a threshold at the lowest score would accept everyone,
        # and the core refuses it (gate.check_threshold)
        self.slider.setRange(1, SLIDER_STEPS)
        self.value_label = QLabel(self)
        self.value_label.setObjectName("thresholdValue")
        self.value_label.setMinimumWidth(44)
        self.default_label = QLabel(self)
        self.default_label.setObjectName("hint")
        self.reset_button = QPushButton("Reset", self)
        self.reset_button.setToolTip("Back to the model's calibrated threshold")
        scoring_row = QHBoxLayout()
        scoring_row.addWidget(self.scoring_combo, 1)
        scoring_row.addWidget(self.passes)
        slider_row = QHBoxLayout()
        slider_row.addWidget(self.slider, 1)
        slider_row.addWidget(self.value_label)
        slider_row.addWidget(self.reset_button)
        form = QFormLayout(self)
        form.setVerticalSpacing(8)
        form.addRow("Mode", self.mode_combo)
        form.addRow("Scoring", scoring_row)
        form.addRow("Threshold", slider_row)
        form.addRow("", self.default_label)

        self.lo, self.hi = -1.0, 1.0
        self.default = 0.5
        self.overridden = False
        self._quiet = False
        self.mode_combo.currentIndexChanged.connect(lambda _i: self.mode_changed.emit(self.mode()))
        self.scoring_combo.currentIndexChanged.connect(self._on_scoring)
        self.passes.valueChanged.connect(lambda _v: self._on_scoring())
        self.slider.valueChanged.connect(self._on_slider)
        self.reset_button.clicked.connect(lambda _checked=False: self.reset_threshold())

    # -- mode --
    def set_modes(
        self,
        modes: list[tuple[str, str]],
        current: str | None = None,
        disabled: dict[str, str] | None = None,
    ) -> None:
        """``modes``: (key, label) pairs; ``disabled``: key -> why (shown as tooltip, not
        selectable). Selects ``current`` when present and enabled, else the first mode."""
        disabled = disabled or {}
        self.mode_combo.blockSignals(True)
        self.mode_combo.clear()
        for i, (key, label) in enumerate(modes):
            self.mode_combo.addItem(label, key)
            if key in disabled:
                item = self.mode_combo.model().item(i)
                item.setEnabled(False)
                item.setToolTip(f"Not available: {disabled[key]}")
        keys = [k for k, _ in modes]
        ok = current in keys and current not in disabled
        self.mode_combo.setCurrentIndex(keys.index(current) if ok else 0)
        self.mode_combo.blockSignals(False)

    def mode(self) -> str:
        return self.mode_combo.currentData() or "authentication"

    # -- scoring --
    def set_scoring(self, scoring: str, passes: int) -> None:
        self.passes.setValue(passes)
        self.scoring_combo.setCurrentIndex(1 if scoring == "mc" else 0)
        self.passes.setEnabled(scoring == "mc")

    def scoring(self) -> str:
        return self.scoring_combo.currentData()

    def mc_passes(self) -> int:
        """MC-dropout passes per window; 0 = deterministic."""
        return self.passes.value() if self.scoring() == "mc" else 0

    def _on_scoring(self) -> None:
        self.passes.setEnabled(self.scoring() == "mc")
        self.scoring_changed.emit(self.mc_passes())

    # -- threshold --
    def set_threshold_range(self, lo: float, hi: float, default: float, unit: str) -> None:
        """The slider spans [lo, hi]; ``default`` is the calibrated threshold (reset target)."""
        self.lo, self.hi, self.default = float(lo), float(hi), float(default)
        self.default_label.setText(f"calibrated default {self.default:.3f} ({unit})")
        self.reset_threshold(emit=False)

    def _to_slider(self, value: float) -> int:
        f = (value - self.lo) / (self.hi - self.lo)
        return max(1, int(round(min(1.0, max(0.0, f)) * SLIDER_STEPS)))

    def _from_slider(self, pos: int) -> float:
        return self.lo + (self.hi - self.lo) * pos / SLIDER_STEPS

    def threshold(self) -> float | None:
        """The chosen threshold, or None while it is the calibrated default."""
        return self._from_slider(self.slider.value()) if self.overridden else None

    def effective_threshold(self) -> float:
        return self._from_slider(self.slider.value()) if self.overridden else self.default

    def set_threshold(self, value: float) -> None:
        """Move the slider to ``value`` (clipped to the range); emits threshold_changed."""
        self.slider.setValue(self._to_slider(value))

    def reset_threshold(self, emit: bool = True) -> None:
        self._quiet = True
        self.slider.setValue(self._to_slider(self.default))
        self._quiet = False
        self.overridden = False
        self.value_label.setText(f"{self.default:.3f}")
        if emit:
            self.threshold_changed.emit(None)

    def _on_slider(self, pos: int) -> None:
        value = self._from_slider(pos)
        self.value_label.setText(f"{value:.3f}")
        if self._quiet:
            return
        self.overridden = True
        self.threshold_changed.emit(value)
