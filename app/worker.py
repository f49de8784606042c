"""Runs a pipeline generator on a QThread: events go out as queued signals, a stop flag comes in."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from voxgate.core.errors import VoxgateError
from voxgate.core.events import (
    DecisionEvent,
    EnrollProgressEvent,
    LevelEvent,
    ScoreEvent,
    SpectrogramEvent,
    StatusEvent,
)

log = logging.getLogger(__name__)

# job(pipeline, source) -> the event generator (Pipeline.run or a Pipeline.enroll partial)
Job = Callable[[Any, Any], Iterator[object]]


class PipelineWorker(QObject):
    """Iterates ``job(pipeline, make_source())`` and emits one signal per event.

    Everything here runs on the worker thread (opening the source, loading files,
    the model); the GUI thread only receives events. ``stop()`` may be called from
    any thread: it sets a flag and calls ``pipeline.stop()``.
    """

    spectrogram = Signal(object)  # SpectrogramEvent
    level = Signal(object)  # LevelEvent
    score = Signal(object)  # ScoreEvent
    decision = Signal(object)  # DecisionEvent
    enroll_progress = Signal(object)  # EnrollProgressEvent
    enrolled = Signal(object)  # Profile (EnrolledEvent.profile)
    status = Signal(object)  # StatusEvent
    failed = Signal(str)  # a user-readable error message
    finished = Signal()

    def __init__(self, pipeline: Any, make_source: Callable[[], Any], job: Job):
        super().__init__()
        self.pipeline = pipeline
        self._make_source = make_source
        self._job = job
        self._stop = threading.Event()
        self.source: Any = None
        self._signals = {  # event type -> the signal that carries it to the GUI thread
            SpectrogramEvent: self.spectrogram,
            LevelEvent: self.level,
            ScoreEvent: self.score,
            DecisionEvent: self.decision,
            EnrollProgressEvent: self.enroll_progress,
            StatusEvent: self.status,
        }

    def stop(self) -> None:
        """Ask the generator to end (thread-safe, idempotent)."""
        self._stop.set()
        self.pipeline.stop()

    def _emit(self, event: object) -> None:
        signal = self._signals.get(type(event))
        if signal is not None:
            signal.emit(event)
        elif hasattr(event, "profile"):  # EnrolledEvent
            self.enrolled.emit(event.profile)

    @Slot()
    def run(self) -> None:
        events = None
        try:
            if self._stop.is_set():
                return
            self.source = self._make_source()
            events = self._job(self.pipeline, self.source)
            for event in events:
                self._emit(event)
                if self._stop.is_set():
                    break
        except VoxgateError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug: say so in the GUI instead of dying silently
            log.exception("pipeline worker failed")
            self.failed.emit(f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            if events is not None and hasattr(events, "close"):
                try:
                    events.close()
                except Exception:  # the generator's cleanup failing must not hang the thread
                    log.exception("closing the event generator failed")
            if self.source is not None:
                try:
                    self.source.stop()
                except Exception:
                    log.exception("stopping the source failed")
            self.finished.emit()


class WorkerHandle:
    """Owns one worker QObject and its QThread: start, stop, join, release.

    The worker (a :class:`PipelineWorker`, ``model_switch.ReembedWorker``,
    ``model_loader.ModelLoader``) has a ``run`` slot, a ``finished`` signal and ``stop()``."""

    def __init__(self, worker: Any, name: str = "voxgate-pipeline"):
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName(name)
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)
        # direct: quit() is thread-safe, and join() blocks the GUI thread's event loop
        worker.finished.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.worker.stop()

    def join(self, timeout_ms: int = 10000) -> bool:
        """Stop and wait for the thread to finish; True if it did within ``timeout_ms``."""
        self.worker.stop()
        return self.thread.wait(timeout_ms)

    def release(self, timeout_ms: int = 5000) -> None:
        """After ``finished``: wait for the thread to end, then let Qt delete both objects."""
        self.thread.wait(timeout_ms)
        self.worker.deleteLater()
        self.thread.deleteLater()
