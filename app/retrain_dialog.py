"""Model → Retrain…: runs ``voxgate train`` in a QProcess with live loss/accuracy and Cancel."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from .process_dialog import ProcessDialog

TRAIN_MODES = ("authentication", "identification", "both")

_EPOCH = re.compile(r"\bepoch (\d+)/(\d+)")
_STEPS = re.compile(r"\|\s*(\d+)/(\d+)\s*\[")  # tqdm: "| 9/20 ["
_TRAIN_LOSS = re.compile(r"(?:train loss|loss=)\s*([0-9.]+(?:e[-+]?\d+)?)")
_VAL_LOSS = re.compile(r"val loss ([0-9.]+(?:e[-+]?\d+)?)")
_ACC = re.compile(r"\bacc ([0-9.]+)")
_F1 = re.compile(r"\bF1 ([0-9.]+)")


@dataclass
class TrainProgress:
    """What the training output has said so far. fraction in [0, 1] of all epochs."""

    epoch: int = 0  # epochs completed
    epochs: int = 0
    fraction: float = 0.0
    loss: float | None = None
    val_loss: float | None = None
    accuracy: float | None = None
    macro_f1: float | None = None

    def update(self, line: str) -> bool:
        """Parse one output line of ``voxgate train``; True if anything changed.

        Understands the tqdm bar ("epoch 2/5:  40%|...| 8/20 [..., loss=0.693]") and the
        epoch summary ("epoch 2/5 train loss 0.6931 | val loss 0.70 authe: acc 0.512 F1 ...").
        """
        m = _EPOCH.search(line)
        if not m:
            return False
        current, total = int(m.group(1)), int(m.group(2))
        self.epochs = total
        if "train loss" in line:  # the summary after epoch `current` finished
            self.epoch = current
            self.fraction = current / total
            if v := _VAL_LOSS.search(line):
                self.val_loss = float(v.group(1))
            if a := _ACC.search(line):
                self.accuracy = float(a.group(1))
            if f := _F1.search(line):
                self.macro_f1 = float(f.group(1))
        else:  # tqdm inside epoch `current`
            s = _STEPS.search(line)
            if s and int(s.group(2)) > 0:
                within = int(s.group(1)) / int(s.group(2))
                self.fraction = max(self.fraction, (current - 1 + within) / total)
        if t := _TRAIN_LOSS.search(line):
            self.loss = float(t.group(1))
        return True

    def describe(self) -> str:
        parts = [f"epoch {self.epoch}/{self.epochs}" if self.epochs else "starting"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if self.val_loss is not None:
            parts.append(f"val loss {self.val_loss:.4f}")
        if self.accuracy is not None:
            parts.append(f"val accuracy {self.accuracy:.3f}")
        if self.macro_f1 is not None:
            parts.append(f"macro-F1 {self.macro_f1:.3f}")
        return "  ·  ".join(parts)


class RetrainDialog(ProcessDialog):
    """Pick a dataset (.h5), mode, epochs and output folder; train; offer the new model.

    Emits :attr:`model_ready` with the run's best_model.pt when the user chooses to use it.
    """

    model_ready = Signal(str)

    def __init__(self, parent: QWidget | None = None, *, data: str = "", out_dir: str = ""):
        super().__init__("Retrain the model", parent)
        self.data_edit = QLineEdit(data, self)
        self.data_edit.setPlaceholderText("dataset .h5 from Model → Build dataset…")
        browse_data = QPushButton("Choose…", self)
        browse_data.clicked.connect(self._browse_data)
        self.mode_combo = QComboBox(self)
        for mode in TRAIN_MODES:
            self.mode_combo.addItem(mode.capitalize(), mode)
        self.epochs_spin = QSpinBox(self)
        self.epochs_spin.setRange(1, 500)
        self.epochs_spin.setValue(30)
        self.out_edit = QLineEdit(out_dir or str(Path("runs") / "retrained"), self)
        browse_out = QPushButton("Choose…", self)
        browse_out.clicked.connect(self._browse_out)
        self.extra_edit = QLineEdit(self)
        self.extra_edit.setPlaceholderText(
            "optional KEY=VALUE settings, e.g. batch_size=64 lr=5e-4"
        )
        self.metrics_label = QLabel("", self)
        self.metrics_label.setObjectName("metricsLabel")
        self.use_button = QPushButton("Use the new model", self)
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self._use_model)
        self.buttons.insertWidget(0, self.use_button)
        self.form.addRow("Dataset:", _row(self.data_edit, browse_data))
        self.form.addRow("Mode:", self.mode_combo)
        self.form.addRow("Epochs:", self.epochs_spin)
        self.form.addRow("Output folder:", _row(self.out_edit, browse_out))
        self.form.addRow("Extra settings:", self.extra_edit)
        self.form.addRow("", self.metrics_label)
        self.train_progress = TrainProgress()
        self.best_model: Path | None = None

    def _browse_data(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Dataset", "", "HDF5 datasets (*.h5);;All (*)")
        if path:
            self.data_edit.setText(path)

    def _browse_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder")
        if path:
            self.out_edit.setText(path)

    def arguments(self) -> list[str] | None:
        data = self.data_edit.text().strip()
        out = self.out_edit.text().strip()
        if not data:
            self.set_status("choose a dataset (.h5)")
            return None
        if not Path(data).is_file():
            self.set_status(f"dataset not found: {data}")
            return None
        if not out:
            self.set_status("choose an output folder")
            return None
        args = ["train", "--data", data, "--mode", self.mode_combo.currentData(), "--out", out]
        args += ["--set", f"epochs={self.epochs_spin.value()}"]
        try:
            extra = shlex.split(self.extra_edit.text())
        except ValueError as exc:
            self.set_status(f"extra settings: {exc}")
            return None
        for item in extra:
            if "=" not in item:
                self.set_status(f"extra settings must be KEY=VALUE, got {item!r}")
                return None
            args += ["--set", item]
        self.train_progress = TrainProgress()
        self.best_model = None
        self.use_button.setEnabled(False)
        self.metrics_label.setText("")
        return args

    def on_line(self, line: str) -> None:
        if self.train_progress.update(line):
            self.progress.setValue(int(round(100 * self.train_progress.fraction)))
            self.metrics_label.setText(self.train_progress.describe())

    def on_success(self) -> None:
        best = Path(self.out_edit.text().strip()) / "best_model.pt"
        if best.is_file():
            self.best_model = best
            self.use_button.setEnabled(True)
            self.set_status(f"finished: {best} — press “Use the new model” to switch to it")
        else:
            self.set_status("finished, but no best_model.pt was written")

    def _use_model(self) -> None:
        if self.best_model is not None:
            self.model_ready.emit(str(self.best_model))


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for i, w in enumerate(widgets):
        row.addWidget(w, 1 if i == 0 else 0)
    return row
