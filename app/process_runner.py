"""Runs a ``voxgate`` subcommand in a QProcess (the same interpreter) and streams its lines."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal


def voxgate_command(*args: str) -> tuple[str, list[str]]:
    """(program, arguments) for ``python -m voxgate.cli ARGS`` with this interpreter."""
    return sys.executable, ["-m", "voxgate.cli", *args]


class ProcessRunner(QObject):
    """Wraps one QProcess: merged stdout/stderr split into lines (``\\r`` counts as a line
    end, for progress bars), :meth:`cancel` kills it. Never blocks the GUI thread."""

    line = Signal(str)
    started = Signal()
    finished = Signal(int, bool)  # exit code, cancelled
    failed_to_start = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        self.process.setProcessEnvironment(env)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)
        self.process.started.connect(self.started)
        self.cancelled = False
        self.lines: list[str] = []
        self._partial = ""

    @property
    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def start(self, *args: str) -> None:
        """Start ``python -m voxgate.cli ARGS``."""
        if self.running:
            raise RuntimeError("a process is already running")
        self.cancelled = False
        self.lines = []
        self._partial = ""
        program, arguments = voxgate_command(*args)
        self.process.start(program, arguments)

    def command_line(self) -> str:
        return " ".join([self.process.program(), *self.process.arguments()])

    def cancel(self) -> None:
        """Kill the process (its finished signal reports cancelled=True)."""
        if self.running:
            self.cancelled = True
            self.process.kill()

    def wait(self, timeout_ms: int = 5000) -> bool:
        return self.process.waitForFinished(timeout_ms)

    def _read(self) -> None:
        data = bytes(self.process.readAllStandardOutput()).decode("utf-8", "replace")
        text = (self._partial + data).replace("\r\n", "\n").replace("\r", "\n")
        *complete, self._partial = text.split("\n")
        for line in complete:
            if line.strip():
                self.lines.append(line)
                self.line.emit(line)

    def _on_finished(self, code: int, _status: QProcess.ExitStatus) -> None:
        self._read()
        if self._partial.strip():
            self.lines.append(self._partial)
            self.line.emit(self._partial)
        self._partial = ""
        self.finished.emit(int(code), self.cancelled)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.failed_to_start.emit(f"could not start {self.process.program()}")
