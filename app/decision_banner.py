"""The large decision banner: who, and whether they are accepted, coloured by state."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget

from voxgate.core.events import DecisionEvent, DecisionState

# state -> (background, title); "idle" is the banner before anything runs.
COLOURS: dict[str, str] = {
    DecisionState.ACCEPTED.value: "#2e7d32",
    DecisionState.REJECTED.value: "#c62828",
    DecisionState.UNCERTAIN.value: "#f9a825",
    DecisionState.LISTENING.value: "#546e7a",
    "idle": "#37474f",
}


class DecisionBanner(QFrame):
    """Big coloured label: state (ACCEPTED / REJECTED / UNCERTAIN / LISTENING) and name."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("decisionBanner")
        self.title = QLabel(self)
        self.title.setObjectName("bannerTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail = QLabel(self)
        self.detail.setObjectName("bannerDetail")
        self.detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for label in (self.title, self.detail):
            # a long name or error wraps inside the banner instead of widening the window
            label.setWordWrap(True)
            label.setMinimumWidth(1)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.detail)
        self.setMinimumHeight(110)
        self.state = "idle"
        self.who: str | None = None
        self.set_idle()

    def _show(self, state: str, title: str, detail: str) -> None:
        self.title.setText(title)
        self.detail.setText(detail)
        if state == self.state and self.styleSheet():
            return  # the colours stand: re-setting a style sheet repolishes the whole banner
        self.state = state
        dark_text = state == DecisionState.UNCERTAIN.value
        self.setStyleSheet(
            f"QFrame#decisionBanner {{ background: {COLOURS[state]}; border-radius: 10px; }}"
            f"QLabel {{ color: {'#1b1b1b' if dark_text else '#ffffff'}; background: transparent; }}"
            "QLabel#bannerTitle { font-size: 34px; font-weight: 700; }"
            "QLabel#bannerDetail { font-size: 14px; }"
        )

    def set_idle(
        self, text: str = "Ready", detail: str = "Enroll a voice, then Authenticate"
    ) -> None:
        self.who = None
        self._show("idle", text, detail)

    def set_listening(self, detail: str = "Speak now — collecting speech") -> None:
        self.who = None
        self._show(DecisionState.LISTENING.value, "LISTENING", detail)

    def set_decision(self, event: DecisionEvent) -> None:
        """Show a :class:`DecisionEvent`: name and state, score vs threshold, MC spread."""
        state = DecisionState(event.state)
        self.who = event.who
        if state is DecisionState.LISTENING:
            self.set_listening()
            return
        name = event.who or ("unknown voice" if state is DecisionState.REJECTED else "")
        title = f"{state.name} — {name}" if name else state.name
        spread = f" ± {event.spread:.2f}" if event.spread > 0 else ""
        # No enrolled (authorized) profile to compare with: there is no score, only a verdict.
        score = f"score {event.score:.2f}{spread}" if math.isfinite(event.score) else "no profile"
        detail = (
            f"{score}  ·  threshold {event.threshold:.2f}  ·  "
            f"{event.n_windows} windows  ·  {event.mode}"
        )
        if state is DecisionState.UNCERTAIN:
            detail = "uncertain — keep speaking  ·  " + detail
        self._show(state.value, title, detail)
