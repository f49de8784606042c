"""The shared redraw timer of the live plots: they mark themselves dirty per event and draw here."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

MAX_FPS = 30.0


def start_redraw_timer(owner: QObject, fps: float, redraw: Callable[[], None]) -> QTimer:
    """A running QTimer (child of ``owner``) calling ``redraw`` at most ``min(fps, 30)`` per second."""
    timer = QTimer(owner)
    timer.setInterval(int(1000 / min(fps, MAX_FPS)))
    timer.timeout.connect(redraw)
    timer.start()
    return timer
