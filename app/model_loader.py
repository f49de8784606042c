"""Loads a checkpoint on a worker thread, so the window stays responsive while torch reads it."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal, Slot

from voxgate.core.errors import VoxgateError

log = logging.getLogger(__name__)


class ModelLoader(QObject):
    """``SpeakerEncoder.from_checkpoint(path)`` in ``run`` (on a ``worker.WorkerHandle``'s
    thread), then ``loaded(encoder, path)`` or ``failed(path, message)``, then ``finished``.

    Connect ``loaded`` and ``failed`` to bound methods of a GUI-thread QObject: they arrive
    queued, on the GUI thread. Loading cannot be interrupted: ``stop()`` does nothing.
    """

    loaded = Signal(object, str)  # SpeakerEncoder, the checkpoint's path
    failed = Signal(str, str)  # the checkpoint's path, a user-readable message
    finished = Signal()

    def __init__(self, path: str):
        super().__init__()
        self.path = str(path)

    def stop(self) -> None:
        """Nothing to stop: reading a checkpoint takes a moment and ends by itself."""

    @Slot()
    def run(self) -> None:
        from voxgate.core.inference import SpeakerEncoder

        try:
            encoder = SpeakerEncoder.from_checkpoint(self.path)
        except VoxgateError as exc:
            self.failed.emit(self.path, str(exc))
        except Exception as exc:  # a bug: say so in the GUI instead of dying silently
            log.exception("loading %s failed", self.path)
            self.failed.emit(self.path, f"unexpected error: {type(exc).__name__}: {exc}")
        else:
            self.loaded.emit(encoder, self.path)
        finally:
            self.finished.emit()
