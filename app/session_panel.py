"""The "Session" box: Enroll… / Authenticate / Stop, and the enrollment's progress and feedback."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from voxgate.core.events import EnrollProgressEvent

from .elided_label import ElidedLabel


class SessionPanel(QGroupBox):
    """``enroll_button``, ``auth_button``, ``stop_button``; ``enroll_progress`` (0-100 %) and
    ``enroll_feedback`` (one elided line) are shown only while an enrollment has something
    to say. The window connects the buttons; this panel only shows state."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Session", parent)
        self.enroll_button = QPushButton("Enroll…", self)
        self.enroll_button.setObjectName("enrollButton")
        self.auth_button = QPushButton("Authenticate", self)
        self.auth_button.setObjectName("primaryButton")
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setObjectName("stopButton")
        self.enroll_progress = QProgressBar(self)
        self.enroll_progress.setRange(0, 100)
        self.enroll_progress.setFormat("enrolling %p %")
        self.enroll_feedback = ElidedLabel(parent=self)  # one line: never pushes the list down
        self.enroll_feedback.setObjectName("hint")
        buttons = QHBoxLayout()
        for b in (self.enroll_button, self.auth_button, self.stop_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.enroll_progress)
        layout.addWidget(self.enroll_feedback)
        self.hide_enroll_feedback()

    def show_enrolling(self, text: str) -> None:
        """An enrollment starts: the bar at 0 and ``text`` as its first feedback."""
        self.enroll_progress.setValue(0)
        self.enroll_progress.show()
        self.enroll_feedback.setText(text)
        self.enroll_feedback.show()

    def hide_enroll_feedback(self) -> None:
        self.enroll_progress.hide()
        self.enroll_feedback.hide()

    @property
    def enroll_done(self) -> bool:
        """True once the bar reached 100 % (the profile was built)."""
        return self.enroll_progress.value() >= 100

    def show_progress(self, event: EnrollProgressEvent) -> None:
        """Speech collected of the target, and the enroller's feedback ("too quiet", …)."""
        self.enroll_progress.setValue(int(round(100 * min(1.0, max(0.0, event.fraction)))))
        text = f"{event.speech_s:.1f} of {event.target_s:.0f} s of speech"
        if event.feedback:
            text += " · " + " · ".join(event.feedback)
        self.enroll_feedback.setText(text)
        if event.done:
            self.enroll_progress.setValue(100)
