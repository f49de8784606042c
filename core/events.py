"""Events the streaming pipeline emits: immutable, Qt-free, cheap to pass between threads."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only for the annotation: events stay importable without the profile code
    from .profiles import Profile


# StatusEvent messages that only mark a run's life ("started", then how it ended); every
# other message is a note for the user (a skipped profile, a raised decision window, ...).
LIFECYCLE_MESSAGES = frozenset({"started", "finished", "stopped", "done"})


class DecisionState(str, enum.Enum):
    LISTENING = "listening"  # not enough speech yet
    ACCEPTED = "accepted"  # an authorized / known voice passed the threshold
    REJECTED = "rejected"  # below threshold: outsider / unknown
    UNCERTAIN = "uncertain"  # MC-dropout spread too wide: keep speaking


@dataclass(frozen=True)
class SpectrogramEvent:
    """New log-mel columns for display. columns: float32 (n, n_mels) in dB (0 = peak)."""

    t_s: float  # stream time of the last column, seconds since the source started
    columns: np.ndarray


@dataclass(frozen=True)
class LevelEvent:
    """Input level of the latest block(s)."""

    t_s: float
    rms_dbfs: float
    peak: float  # max |sample| in [0, 1]
    speech: bool  # the VAD's (smoothed) state
    clipping: bool


@dataclass(frozen=True)
class ScoreEvent:
    """Scores of one analysis window (default 1.0 s).

    scores: candidate name -> mean score (cosine similarity, or probability for the
    trained heads); spread: candidate name -> MC-dropout std (0.0 when deterministic).
    """

    t_start_s: float
    t_end_s: float
    speech_ratio: float
    scores: dict[str, float]
    spread: dict[str, float]
    best: str | None
    best_score: float
    best_spread: float
    threshold: float


@dataclass(frozen=True)
class DecisionEvent:
    """A decision over the last K scored windows."""

    t_s: float
    state: DecisionState
    who: str | None
    score: float
    spread: float
    threshold: float
    n_windows: int
    mode: str  # "authentication" | "identification"


@dataclass(frozen=True)
class EnrollProgressEvent:
    """Enrollment progress: fraction in [0, 1] of the target speech collected."""

    name: str
    fraction: float
    speech_s: float
    target_s: float
    feedback: tuple[str, ...] = ()  # e.g. "no speech detected", "too quiet", "clipping"
    done: bool = False


@dataclass(frozen=True)
class StatusEvent:
    """Stream health: counters since start, and a message (a :data:`LIFECYCLE_MESSAGES` one or
    a note for the user) or error."""

    t_s: float
    running: bool
    device: str
    blocks: int = 0
    overflows: int = 0
    drops: int = 0
    message: str = ""
    error: str | None = None
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EnrolledEvent:
    """Enrollment finished: the new profile and the file it was saved to (None if not saved)."""

    profile: Profile
    path: str | None = None
