"""Asks who is enrolling, whether they are authorized, and from which input."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from voxgate.core.audio import AUDIO_EXTENSIONS


def audio_file_filter() -> str:
    """A QFileDialog name filter for every readable audio extension."""
    patterns = " ".join(f"*{ext}" for ext in sorted(AUDIO_EXTENSIONS))
    return f"Audio ({patterns});;All files (*)"


def choose_audio_files(parent: QWidget | None, title: str, *, many: bool = True) -> list[str]:
    """Ask for one (``many`` False) or several recordings; [] when cancelled."""
    if many:
        files, _ = QFileDialog.getOpenFileNames(parent, title, "", audio_file_filter())
        return list(files)
    path, _ = QFileDialog.getOpenFileName(parent, title, "", audio_file_filter())
    return [path] if path else []


class EnrollDialog(QDialog):
    """Name + authorized flag + source (the microphone, or one or more recordings).

    Shown with ``open()`` (non-blocking); read :meth:`values` when ``accepted`` fires.
    The chosen files go into a short scrolling list, so the dialog keeps its size however
    many files (or however long their names) there are.
    """

    WIDTH = 480  # px: the dialog's fixed width

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        name: str = "",
        authorized: bool = True,
        microphone_available: bool = True,
        files: list[str] | None = None,
        target_s: float = 20.0,
    ):
        super().__init__(parent)
        self.setWindowTitle("Enroll a voice")
        self.name_edit = QLineEdit(name, self)
        self.name_edit.setPlaceholderText("e.g. Alice")
        self.authorized_box = QCheckBox("Authorized (may pass the gate)", self)
        self.authorized_box.setChecked(authorized)
        # opt-in: by default only the voice embedding is stored, never audio
        self.keep_audio_box = QCheckBox("Keep my recordings for retraining", self)
        self.keep_audio_box.setToolTip(
            "Save the enrollment speech (16 kHz WAV) next to the profile; off by default"
        )
        self.mic_radio = QRadioButton(f"Microphone (speak for about {target_s:.0f} s)", self)
        self.files_radio = QRadioButton("Recordings:", self)
        self.mic_radio.setEnabled(microphone_available)
        group = QButtonGroup(self)
        group.addButton(self.mic_radio)
        group.addButton(self.files_radio)
        self.files_list = self._make_files_list()
        self.browse_button = QPushButton("Choose…", self)
        self.browse_button.clicked.connect(self._browse)
        self.files: list[str] = []
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start enrollment")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._lay_out()

        self.name_edit.textChanged.connect(self._validate)
        self.mic_radio.toggled.connect(self._validate)
        self.files_radio.toggled.connect(self._validate)
        if files:
            self.set_files(files)
        elif microphone_available:
            self.mic_radio.setChecked(True)
        else:
            self.files_radio.setChecked(True)
        self._validate()
        self.setFixedSize(self.WIDTH, self.sizeHint().height())

    def _make_files_list(self, rows: int = 4) -> QListWidget:
        """The chosen files' names, ``rows`` high (more scroll), long names elided."""
        files_list = QListWidget(self)
        files_list.setObjectName("filesList")
        files_list.addItem("no file chosen")
        files_list.ensurePolished()  # the style sheet's font decides the row height
        frame = 2 * files_list.frameWidth()
        files_list.setFixedHeight(rows * files_list.sizeHintForRow(0) + frame)
        files_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        files_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        return files_list

    def _lay_out(self) -> None:
        files_row = QHBoxLayout()
        files_row.addWidget(self.files_radio)
        files_row.addStretch(1)
        files_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Name:", self.name_edit)
        form.addRow("", self.authorized_box)
        form.addRow("", self.keep_audio_box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Input:", self))
        layout.addWidget(self.mic_radio)
        layout.addLayout(files_row)
        layout.addWidget(self.files_list)
        layout.addWidget(self.buttons)

    def set_files(self, files: list[str | Path]) -> None:
        self.files = [str(f) for f in files]
        self.files_list.clear()
        for f in self.files:
            self.files_list.addItem(Path(f).name)
            self.files_list.item(self.files_list.count() - 1).setToolTip(f)
        if not self.files:
            self.files_list.addItem("no file chosen")
        self.files_radio.setChecked(True)
        self._validate()

    def _browse(self) -> None:
        files = choose_audio_files(self, "Recordings of one speaker")
        if files:
            self.set_files(files)

    def _validate(self) -> None:
        ok = bool(self.name_edit.text().strip()) and (
            self.mic_radio.isChecked() or (self.files_radio.isChecked() and bool(self.files))
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    @property
    def keep_audio(self) -> bool:
        """Whether the user opted in to keeping the enrollment speech."""
        return self.keep_audio_box.isChecked()

    def values(self) -> tuple[str, bool, list[str] | None]:
        """(name, authorized, files or None for the microphone)."""
        files = list(self.files) if self.files_radio.isChecked() else None
        return self.name_edit.text().strip(), self.authorized_box.isChecked(), files
