"""Model → Build dataset…: runs ``voxgate dataset build`` in a QProcess, with progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QWidget,
)

from .process_dialog import ProcessDialog
from .retrain_dialog import _row


class DatasetDialog(ProcessDialog):
    """Sources (speaker folders or manifest CSVs), authorized speaker ids, output .h5.

    Emits :attr:`dataset_ready` with the .h5 path after a successful build.
    """

    dataset_ready = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Build a training dataset", parent)
        # ask(title, question) -> bool: a Yes/No box (tests replace it)
        self.ask = lambda title, question: (
            QMessageBox.question(self, title, question) == QMessageBox.StandardButton.Yes
        )
        self.sources_edit = QLineEdit(self)
        self.sources_edit.setPlaceholderText("speaker folder(s) or manifest .csv, separated by ';'")
        add_folder = QPushButton("Folder…", self)
        add_folder.clicked.connect(self._browse_folder)
        add_csv = QPushButton("CSV…", self)
        add_csv.clicked.connect(self._browse_csv)
        self.authorized_edit = QLineEdit(self)
        self.authorized_edit.setPlaceholderText("authorized speaker ids, comma-separated")
        self.subsets_edit = QLineEdit(self)
        self.subsets_edit.setPlaceholderText("optional manifest subsets, e.g. test-clean")
        self.max_files = QSpinBox(self)
        self.max_files.setRange(0, 100000)
        self.max_files.setSpecialValueText("all")
        self.preset_combo = QComboBox(self)
        self.preset_combo.addItem("report (n_fft 2048, hop 512)", "report")
        self.preset_combo.addItem("speaker (25 ms / 10 ms)", "speaker")
        self.out_edit = QLineEdit(str(Path("data") / "dataset.h5"), self)
        browse_out = QPushButton("Choose…", self)
        browse_out.clicked.connect(self._browse_out)
        self.form.addRow("Sources:", _row(self.sources_edit, add_folder, add_csv))
        self.form.addRow("Authorized:", self.authorized_edit)
        self.form.addRow("Subsets:", self.subsets_edit)
        self.form.addRow("Files per speaker:", self.max_files)
        self.form.addRow("Features:", self.preset_combo)
        self.form.addRow("Output .h5:", _row(self.out_edit, browse_out))

    def _append_source(self, path: str) -> None:
        current = [s for s in self.sources_edit.text().split(";") if s.strip()]
        self.sources_edit.setText(";".join([*current, path]))

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder with one sub-folder per speaker")
        if path:
            self._append_source(path)

    def _browse_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Manifest", "", "CSV (*.csv);;All (*)")
        if path:
            self._append_source(path)

    def _browse_out(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Dataset file", "", "HDF5 (*.h5)")
        if path:
            self.out_edit.setText(path)

    def arguments(self) -> list[str] | None:
        sources = [s.strip() for s in self.sources_edit.text().split(";") if s.strip()]
        missing = [s for s in sources if not Path(s).exists()]
        authorized = self.authorized_edit.text().strip()
        out = self.out_edit.text().strip()
        if not sources or missing:
            self.set_status(f"source not found: {missing[0]}" if missing else "add a source")
            return None
        if not authorized:
            self.set_status("name the authorized speaker ids")
            return None
        if not out.endswith(".h5"):
            self.set_status("the output must be a .h5 file")
            return None
        args = ["dataset", "build", *sources, "--out", out, "--authorized", authorized]
        if Path(out).exists():
            if not self.ask("Replace the dataset", f"{out} exists. Replace it?"):
                self.set_status(f"{out} exists: choose another output file")
                return None
            args.append("--force")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        if self.subsets_edit.text().strip():
            args += ["--subsets", self.subsets_edit.text().strip()]
        if self.max_files.value():
            args += ["--max-files-per-speaker", str(self.max_files.value())]
        args += ["--feature-preset", self.preset_combo.currentData(), "--progress", "json"]
        return args

    def on_progress(self, record: dict[str, Any]) -> None:
        total = record.get("total") or 0
        if record.get("stage") == "files" and total > 0:
            # the last few percent are the HDF5 write after the last file
            self.set_fraction(0.98 * float(record.get("done", 0)) / total)
            self.set_status(f"{record.get('done', 0)} of {total} files")

    def on_success(self) -> None:
        out = self.out_edit.text().strip()
        self.set_status(f"dataset written: {out} — Model → Retrain… trains on it")
        self.dataset_ready.emit(out)
