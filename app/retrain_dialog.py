"""Model → Retrain…: runs ``voxgate train --progress json`` in a QProcess with live
loss/accuracy and Cancel; fine-tunes the current model by default."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
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
SCRATCH_EPOCHS = 30  # the report's schedule
# Fine-tuning on a few new voices: few chunks, so small batches, a gentler rate, fewer
# epochs and early stopping (TrainConfig keys, passed with --set; Extra settings override).
FINE_TUNE = {"lr": 3e-4, "batch_size": 64, "patience": 3}
FINE_TUNE_EPOCHS = 10


@dataclass
class TrainProgress:
    """What the ``--progress json`` records have said so far. fraction in [0, 1] of all epochs;
    accuracy / macro_f1: validation values per head."""

    epoch: int = 0  # epochs completed
    epochs: int = 0
    fraction: float = 0.0
    loss: float | None = None
    val_loss: float | None = None
    accuracy: dict[str, float] = field(default_factory=dict)
    macro_f1: dict[str, float] = field(default_factory=dict)
    calibrating: bool = False

    def update(self, record: dict[str, Any]) -> bool:
        """Take one record (stage "train", "epoch" or "calibrate"); True if it was one."""
        stage = record.get("stage")
        if stage == "train":
            self.epochs = int(record.get("epochs") or self.epochs)
            total = int(record.get("total") or 0)
            if total > 0 and self.epochs > 0:
                within = int(record.get("done", 0)) / total
                epoch = int(record.get("epoch", 1))
                self.fraction = max(self.fraction, (epoch - 1 + within) / self.epochs)
        elif stage == "epoch":
            self.epoch, self.epochs = int(record["done"]), int(record["total"])
            self.fraction = max(self.fraction, self.epoch / max(1, self.epochs))
            metrics = record.get("metrics") or {}
            self.val_loss = metrics.get("val_loss")
            self.accuracy = {k: v for k, v in (metrics.get("accuracy") or {}).items() if v is not None}
            self.macro_f1 = {k: v for k, v in (metrics.get("macro_f1") or {}).items() if v is not None}
        elif stage == "calibrate":
            self.calibrating = True
        else:
            return False
        if record.get("loss") is not None:
            self.loss = float(record["loss"])
        return True

    def describe(self) -> str:
        parts = [f"epoch {self.epoch}/{self.epochs}" if self.epochs else "starting"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if self.val_loss is not None:
            parts.append(f"val loss {self.val_loss:.4f}")
        for name, acc in self.accuracy.items():
            f1 = self.macro_f1.get(name)
            head = f"{name[:5]}. " if len(self.accuracy) > 1 else ""
            parts.append(f"{head}val accuracy {acc:.3f}" + ("" if f1 is None else f", macro-F1 {f1:.3f}"))
        if self.calibrating:
            parts.append("calibrating the threshold…")
        return "  ·  ".join(parts)


class RetrainDialog(ProcessDialog):
    """Pick a dataset (.h5), mode, epochs and output folder; train; offer the new model.

    Emits :attr:`model_ready` with the run's best_model.pt when the user chooses to use it.
    """

    model_ready = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        data: str = "",
        out_dir: str = "",
        current_model: str = "",
    ):
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
        self.init_box = QCheckBox("Start from the current model (fine-tune)", self)
        self.init_box.toggled.connect(self._on_init_toggled)
        self.current_model = ""
        self.set_current_model(current_model)
        self._on_init_toggled(self.init_box.isChecked())
        self.out_edit = QLineEdit(out_dir or default_run_dir(), self)
        browse_out = QPushButton("Choose…", self)
        browse_out.clicked.connect(self._browse_out)
        self.extra_edit = QLineEdit(self)
        self.extra_edit.setPlaceholderText(
            "optional KEY=VALUE settings, e.g. batch_size=64 lr=5e-4"
        )
        self.metrics_label = QLabel("", self)
        self.metrics_label.setObjectName("metricsLabel")
        self.metrics_label.setWordWrap(True)
        self.metrics_label.setMinimumWidth(1)  # wraps instead of widening the dialog
        self.use_button = QPushButton("Use the new model", self)
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self._use_model)
        self.buttons.insertWidget(0, self.use_button)
        self.form.addRow("Dataset:", _row(self.data_edit, browse_data))
        self.form.addRow("Mode:", self.mode_combo)
        self.form.addRow("", self.init_box)
        self.form.addRow("Epochs:", self.epochs_spin)
        self.form.addRow("Output folder:", _row(self.out_edit, browse_out))
        self.form.addRow("Extra settings:", self.extra_edit)
        layout = self.layout()
        layout.insertWidget(layout.indexOf(self.progress) + 1, self.metrics_label)
        self.train_progress = TrainProgress()
        self.best_model: Path | None = None

    def set_current_model(self, path: str) -> None:
        """The model the main window uses (its path; "" when untrained): the fine-tune start."""
        self.current_model = path if path and Path(path).is_file() else ""
        self.init_box.setEnabled(bool(self.current_model))
        self.init_box.setChecked(bool(self.current_model))
        self.init_box.setToolTip(
            f"--init-from {self.current_model}"
            if self.current_model
            else "no trained model is loaded: training starts from scratch"
        )

    def _on_init_toggled(self, checked: bool) -> None:
        self.epochs_spin.setValue(FINE_TUNE_EPOCHS if checked else SCRATCH_EPOCHS)

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
        if Path(out).is_dir() and any(Path(out).iterdir()):
            self.set_status(f"{out} already holds a run: choose another output folder")
            return None
        args = ["train", "--data", data, "--mode", self.mode_combo.currentData(), "--out", out]
        args += ["--set", f"epochs={self.epochs_spin.value()}", "--progress", "json"]
        if self.init_box.isChecked() and self.current_model:
            args += ["--init-from", self.current_model]
            args += [x for k, v in FINE_TUNE.items() for x in ("--set", f"{k}={v}")]
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

    def on_progress(self, record: dict[str, Any]) -> None:
        if self.train_progress.update(record):
            self.set_fraction(self.train_progress.fraction)
            self.metrics_label.setText(self.train_progress.describe())

    def on_success(self) -> None:
        best = Path(self.out_edit.text().strip()) / "best_model.pt"
        self.out_edit.setText(default_run_dir())  # the next run gets a folder of its own
        if best.is_file():
            self.best_model = best
            self.use_button.setEnabled(True)
            self.set_status(f"finished: {best} — press “Use the new model” to switch to it")
        else:
            self.set_status("finished, but no best_model.pt was written")

    def _use_model(self) -> None:
        if self.best_model is not None:
            self.model_ready.emit(str(self.best_model))


def default_run_dir() -> str:
    """runs/retrained-YYYYmmdd-HHMMSS: a new folder per session (train refuses to overwrite)."""
    import time

    return str(Path("runs") / time.strftime("retrained-%Y%m%d-%H%M%S"))


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for i, w in enumerate(widgets):
        row.addWidget(w, 1 if i == 0 else 0)
    return row
