"""Who may be accepted, and at which threshold: the rules every accepting path applies.

The live pipeline (GUI and CLI), ``verify --user``, identification and the trained-head
modes all take their candidates and thresholds from here, so that only an enrolled profile
that is authorized now, made with the loaded model, can ever be accepted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError, ProfileError
from .live_config import DEFAULT_DECISION_S, HEAD_MODES, MODES
from .profiles import Profile, ProfileStore

if TYPE_CHECKING:  # the Protocol only; no import cycle at run time
    from .scoring import Encoder

__all__ = [
    "MODES",
    "HEAD_MODES",
    "DEFAULT_COSINE_THRESHOLD",
    "DEFAULT_HEAD_THRESHOLD",
    "SCORE_RANGES",
    "Candidates",
    "check_threshold",
    "cosine_threshold",
    "head_threshold",
    "default_threshold",
    "decision_span",
    "head_labels",
    "head_mode_problem",
    "select_candidates",
]

# Used only when neither the config nor the checkpoint gives a threshold (an untrained model).
DEFAULT_COSINE_THRESHOLD = 0.5
DEFAULT_HEAD_THRESHOLD = 0.5
# A threshold must lie inside its score's range and above its bottom (which accepts all).
SCORE_RANGES = {"cosine": (-1.0, 1.0), "probability": (0.0, 1.0)}


def check_threshold(value: Any, kind: str = "cosine", *, where: str = "threshold") -> float:
    """``value`` as a float if it is a usable ``kind`` threshold ("cosine": (-1, 1],
    "probability": (0, 1]); ConfigError naming ``where`` otherwise."""
    lo, hi = SCORE_RANGES[kind]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not lo < float(value) <= hi:
        raise ConfigError(f"{where} must be a {kind} score in ({lo:g}, {hi:g}], got {value!r}")
    return float(value)


def cosine_threshold(encoder: Encoder, override: float | None = None) -> float:
    """``override``, else the checkpoint's calibrated cosine threshold, else 0.5.

    A checkpoint threshold outside (-1, 1] is refused (ConfigError), never used."""
    if override is not None:
        return check_threshold(override, "cosine")
    if not getattr(encoder, "calibrated", True):
        return DEFAULT_COSINE_THRESHOLD
    thr = getattr(encoder, "threshold", None)
    if thr is None:
        return DEFAULT_COSINE_THRESHOLD
    return check_threshold(thr, "cosine", where="the model's calibrated threshold")


def head_threshold(encoder: Encoder, head: str, override: float | None = None) -> float:
    """``override``, else calibration["head_thresholds"][head], else 0.5 (uncalibrated)."""
    if override is not None:
        return check_threshold(override, "probability")
    table = (getattr(encoder, "calibration", None) or {}).get("head_thresholds") or {}
    thr = table.get(head) if isinstance(table, dict) else None
    if thr is None:
        return DEFAULT_HEAD_THRESHOLD
    return check_threshold(thr, "probability", where=f"the model's {head}-head threshold")


def default_threshold(encoder: Encoder, mode: str) -> float:
    """The threshold a pipeline in ``mode`` uses when none is given."""
    if mode in HEAD_MODES:
        return head_threshold(encoder, mode[len("head-") :])
    return cosine_threshold(encoder)


def decision_span(
    encoder: Encoder, requested_s: float, threshold: float | None = None
) -> tuple[float, str | None]:
    """Seconds of speech one decision spans, and a note when that is not ``requested_s``.

    A checkpoint's threshold holds for the amount of speech it was calibrated on
    (calibration["decision_s"]): a shorter span (a settings value, ``--decision-s``) would
    decide on noisier scores at the same threshold and accept more impostors. So when the
    checkpoint's threshold is used (``threshold`` None), the span is raised to the calibrated
    one. An explicit threshold is the caller's own calibration and keeps ``requested_s``.
    """
    requested_s = float(requested_s)
    cal = (getattr(encoder, "calibration", None) or {}).get("decision_s")
    if threshold is not None or isinstance(cal, bool) or not isinstance(cal, (int, float)):
        return requested_s, None
    if not math.isfinite(cal) or cal <= 0 or requested_s >= float(cal):
        return requested_s, None
    return float(cal), (
        f"decision window raised from {requested_s:g} s to {float(cal):g} s of speech: "
        f"the model's threshold was calibrated on {float(cal):g} s"
    )


def _usable(store: ProfileStore | None, encoder: Encoder) -> tuple[list[Profile], list[str]]:
    """(compatible profiles, messages about the others)."""
    if store is None:
        return [], []
    profiles = store.list()
    messages = [f"skipped unreadable profile: {p}" for p in store.problems]
    ok = []
    for p in profiles:
        if ProfileStore.is_compatible(p, encoder):
            ok.append(p)
        else:
            messages.append(f"profile {p.name!r} was made with another model; re-enroll it")
    return ok, messages


def head_labels(encoder: Encoder, head: str) -> list[str]:
    """The class names of a trained head (the checkpoint's labels, else "0", "1", ...)."""
    labels = (getattr(encoder, "labels", {}) or {}).get(head)
    return list(labels) if labels else [str(i) for i in range(encoder.heads.get(head, 0))]


def head_mode_problem(encoder: Encoder, store: ProfileStore | None, mode: str) -> str | None:
    """Why the trained-head ``mode`` cannot be used now (None: it can).

    A head only knows the speakers it was trained on, so it is offered only when those
    speakers are enrolled under the same names: every authorized training speaker for
    "head-authentication", at least one label for "head-identification". Accepted names are
    then limited to profiles that are authorized now.
    """
    head = mode[len("head-") :]
    if head not in getattr(encoder, "heads", {}):
        return f"this model has no trained {head} head"
    try:
        head_threshold(encoder, head)
    except ConfigError as exc:
        return str(exc)
    ok, _ = _usable(store, encoder)
    enrolled = {p.name for p in ok if p.authorized}
    if head == "authentication":
        trained = list(getattr(encoder, "authorized", []) or [])
        missing = [s for s in trained if s not in enrolled]
        if not trained or missing:
            return (
                "the authentication head only knows the speakers it was trained to admit; "
                f"enroll and authorize them under the same names first (missing: "
                f"{', '.join(missing[:5]) or 'no authorized speakers in the model'})"
            )
        return None
    labels = set(head_labels(encoder, "identification"))
    if not labels & enrolled:
        return (
            "the identification head names only its training speakers; none of them is "
            "enrolled and authorized under the same name"
        )
    return None


@dataclass
class Candidates:
    """What one scoring mode compares a window with.

    names/bank: profiles (bank float32 (K, D)) for the cosine modes; head: the trained head
    for head modes; admissible: names that may be ACCEPTED; threshold; decision_s: the
    seconds of speech a decision spans (:func:`decision_span`); messages to show.
    """

    mode: str
    threshold: float
    decision_s: float = DEFAULT_DECISION_S
    names: list[str] = field(default_factory=list)
    bank: np.ndarray | None = None
    head: str | None = None
    admissible: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def select_candidates(
    encoder: Encoder,
    store: ProfileStore | None,
    mode: str,
    *,
    user: str | None = None,
    threshold: float | None = None,
    decision_s: float = DEFAULT_DECISION_S,
) -> Candidates:
    """The candidates of ``mode``, deciding on ``decision_s`` seconds of speech or more
    (:func:`decision_span`). Raises ProfileError / ConfigError when the mode cannot run
    (``user`` missing, not authorized or made with another model; head mode refused)."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
    cand = _candidates(encoder, store, mode, user, threshold)
    cand.decision_s, note = decision_span(encoder, decision_s, threshold)
    if note is not None:
        cand.messages.append(note)
    return cand


def _candidates(
    encoder: Encoder,
    store: ProfileStore | None,
    mode: str,
    user: str | None,
    threshold: float | None,
) -> Candidates:
    if mode in HEAD_MODES:
        return _head_candidates(encoder, store, mode, threshold)
    thr = cosine_threshold(encoder, threshold)
    ok, messages = _usable(store, encoder)
    if user is not None:
        chosen = [p for p in ok if p.name == user]
        if not chosen:
            if store is not None and store.exists(user):
                raise ProfileError(f"profile {user!r} was made with another model; re-enroll it")
            raise ProfileError(f"no voice profile named {user!r}")
        if not chosen[0].authorized:
            raise ProfileError(f"profile {user!r} is not authorized (voxgate profiles authorize)")
    elif mode == "authentication":
        chosen = [p for p in ok if p.authorized]
        if not chosen:
            messages.append("no authorized voice profile: every voice is rejected")
    else:
        chosen = ok  # identification names every known voice, admits only authorized ones
        if not chosen:
            messages.append("no voice profile enrolled: every voice is unknown")
    bank = np.stack([p.embedding for p in chosen]) if chosen else None
    admissible = [p.name for p in chosen if p.authorized]
    return Candidates(
        mode, thr, names=[p.name for p in chosen], bank=bank, admissible=admissible,
        messages=messages,
    )  # fmt: skip


def _head_candidates(
    encoder: Encoder, store: ProfileStore | None, mode: str, threshold: float | None
) -> Candidates:
    problem = head_mode_problem(encoder, store, mode)
    if problem is not None:
        raise ConfigError(f"mode {mode!r} is not available: {problem}")
    head = mode[len("head-") :]
    ok, messages = _usable(store, encoder)
    enrolled = [p.name for p in ok if p.authorized]
    if head == "authentication":
        admissible = ["authorized"]
    else:
        admissible = [name for name in head_labels(encoder, head) if name in enrolled]
    thr = head_threshold(encoder, head, threshold)
    return Candidates(mode, thr, head=head, admissible=admissible, messages=messages)
