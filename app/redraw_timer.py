"""The redraw timer of the live plots: they mark themselves dirty per event and draw here."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

MAX_FPS = 30.0


def redraw_timer(owner: QObject, fps: float, redraw: Callable[[], None]) -> QTimer:
    """A single-shot QTimer (child of ``owner``) calling ``redraw``; :func:`request_redraw`
    arms it. Events arriving while it runs share one draw, so a plot draws at most
    ``min(fps, 30)`` times a second, and an idle window is never woken (a free-running timer
    costs a wake-up per tick: 0.0036 CPU s per s at 10 Hz here, docs/benchmarks.md)."""
    timer = QTimer(owner)
    timer.setSingleShot(True)
    timer.setInterval(int(1000 / min(fps, MAX_FPS)))
    timer.timeout.connect(redraw)
    return timer


def request_redraw(timer: QTimer) -> None:
    """Draw within one frame, unless a draw is already due."""
    if not timer.isActive():
        timer.start()
