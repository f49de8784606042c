"""Base of the dialogs that run a ``voxgate`` subcommand: form, Start/Cancel, progress, log."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .process_runner import ProcessRunner

MAX_LOG_LINES = 2000


class ProcessDialog(QDialog):
    """Subclasses fill :attr:`form`, implement :meth:`arguments` (None = invalid input, with
    :meth:`set_status` saying why) and :meth:`on_progress` / :meth:`on_line` / :meth:`on_success`.

    The subcommand runs with ``--progress json``: its JSON lines go to :meth:`on_progress`,
    every other line to the log and :meth:`on_line`. The dialog keeps its size whatever the
    text: labels wrap, the log scrolls."""

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setModal(False)
        self.resize(640, 520)
        self.runner = ProcessRunner(self)
        self.runner.line.connect(self._on_line)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed_to_start.connect(self._on_failed_to_start)
        self.form = QFormLayout()
        self.form.setVerticalSpacing(8)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.status = QLabel("", self)
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        self.status.setMinimumWidth(1)  # a long message wraps instead of widening the dialog
        self.log = QPlainTextEdit(self)
        self.log.setObjectName("processLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(MAX_LOG_LINES)
        self.start_button = QPushButton("Start", self)
        self.start_button.setObjectName("primaryButton")
        self.cancel_button = QPushButton("Cancel", self)
        self.close_button = QPushButton("Close", self)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        self.cancel_button.setEnabled(False)
        self.buttons = QHBoxLayout()
        self.buttons.addStretch(1)
        for b in (self.start_button, self.cancel_button, self.close_button):
            self.buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.log, 1)
        layout.addLayout(self.buttons)
        self.exit_code: int | None = None

    # -- to override --
    def arguments(self) -> list[str] | None:
        raise NotImplementedError

    def on_progress(self, record: dict[str, Any]) -> None:
        """One ``--progress json`` record (stage, done, total, ...)."""

    def on_line(self, line: str) -> None:
        """A line of the process's output (already appended to the log)."""

    def on_success(self) -> None:
        """The process exited with code 0."""

    # -- machinery --
    def set_status(self, text: str) -> None:
        self.status.setText(text)

    @property
    def running(self) -> bool:
        return self.runner.running

    def start(self) -> bool:
        """Validate the form and start the process; False (with a status message) if invalid."""
        if self.running:
            return False
        args = self.arguments()
        if args is None:
            return False
        self.exit_code = None
        self.log.clear()
        self.progress.setValue(0)
        self.runner.start(*args)
        self.log.appendPlainText("$ voxgate " + " ".join(args))
        self.set_status("running…")
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        return True

    def cancel(self) -> None:
        """Kill the running process (the finished handler reports it)."""
        if self.running:
            self.set_status("cancelling…")
            self.runner.cancel()

    def shutdown(self) -> None:
        """Kill and reap the process (when the application closes)."""
        if self.running:
            self.runner.cancel()
            self.runner.wait(5000)

    def _on_line(self, line: str) -> None:
        record = progress_record(line)
        if record is not None:
            self.on_progress(record)
            return
        self.log.appendPlainText(line)
        self.on_line(line)

    def set_fraction(self, fraction: float) -> None:
        """Move the bar to ``fraction`` in [0, 1] (never backwards within one run)."""
        value = int(round(100 * min(1.0, max(0.0, fraction))))
        self.progress.setValue(max(self.progress.value(), value))

    def _on_finished(self, code: int, cancelled: bool) -> None:
        self.exit_code = code
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if cancelled:
            self.set_status("cancelled")
        elif code == 0:
            self.progress.setValue(100)
            self.set_status("finished")
            self.on_success()
        else:
            last = next((ln for ln in reversed(self.runner.lines) if ln.strip()), "")
            self.set_status(f"failed (exit code {code}): {last}")

    def _on_failed_to_start(self, message: str) -> None:
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.set_status(message)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        # Closing the dialog while a job runs keeps it running; the main window's close kills it.
        super().closeEvent(event)


def progress_record(line: str) -> dict[str, Any] | None:
    """The record of a ``--progress json`` line, or None for any other output line."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "stage" in record else None
