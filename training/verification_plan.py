"""The enrollment / test plan of open-set verification: which speech of each speaker is
enrolled and which is cut into test segments, never both from one recording."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .backends import SAMPLE_RATE
from .recordings import SourceFile

__all__ = [
    "SpeakerPlan", "VerificationPlan", "Segment", "plan_speaker", "build_plan", "test_segments",
    "trial_labels",
]  # fmt: skip


@dataclass
class SpeakerPlan:
    """Enrollment speech and test recordings of one speaker (waves: float32 speech only)."""

    speaker: str
    enroll_recordings: list[str]
    enroll_waves: list[np.ndarray]
    test_recordings: list[str]
    test_waves: list[np.ndarray]
    single_recording: bool = False

    @property
    def enroll_speech_s(self) -> float:
        return sum(len(w) for w in self.enroll_waves) / SAMPLE_RATE

    @property
    def test_speech_s(self) -> float:
        return sum(len(w) for w in self.test_waves) / SAMPLE_RATE


@dataclass
class VerificationPlan:
    speakers: list[SpeakerPlan]
    enroll_s: float
    skipped: list[list[str]] = field(default_factory=list)  # [path or speaker, reason]

    @property
    def single_recording_speakers(self) -> list[str]:
        return [p.speaker for p in self.speakers if p.single_recording]


def plan_speaker(
    speaker: str,
    recordings: Sequence[str],
    speech: Sequence[np.ndarray],
    enroll_s: float,
    sample_rate: int = SAMPLE_RATE,
) -> SpeakerPlan:
    """Split a speaker's speech (one wave per recording, in order) into enrollment and test.

    Enrollment takes speech from the first recordings until ``enroll_s`` seconds; the
    recording where that is reached is used for enrollment only (its rest is discarded), and
    the last recording is always kept for testing, so enrollment and test never share a
    recording. A speaker with one recording enrolls on its first ``enroll_s`` seconds and is
    tested on the rest of it (``single_recording=True``).
    """
    need = int(round(enroll_s * sample_rate))
    if len(recordings) == 1:
        w = speech[0]
        return SpeakerPlan(
            speaker, [recordings[0]], [w[:need]], [recordings[0]], [w[need:]], single_recording=True
        )
    enroll_r, enroll_w = [], []
    got = 0
    k = 0
    while k < len(recordings) - 1 and got < need:
        piece = speech[k][: need - got]
        enroll_r.append(recordings[k])
        enroll_w.append(piece)
        got += len(piece)
        k += 1
    return SpeakerPlan(speaker, enroll_r, enroll_w, list(recordings[k:]), list(speech[k:]))


def build_plan(
    recordings: dict[str, list[SourceFile]],
    *,
    enroll_s: float = 10.0,
    vad_aggressiveness: int = 2,
    min_enroll_s: float = 1.0,
    enroll_sessions: Sequence[str] | None = None,
    join_sessions: bool = False,
) -> VerificationPlan:
    """Load every recording (load_audio -> remove_silence) and plan each speaker.

    Enrollment takes the speech of the first recordings up to ``enroll_s`` (see
    :func:`plan_speaker`), or, with ``enroll_sessions``, of every recording of those
    sessions (EmoDB: "neutral"; the others are tested). ``join_sessions``: the test speech of
    one session (a chapter, an emotion, or all of a speaker's without sessions) is joined, so
    short recordings still give long test segments. Unreadable or speechless files are
    skipped (listed in ``skipped``); so is a speaker with less than ``min_enroll_s`` of
    enrollment speech or no test speech.
    """
    from voxgate.core.audio import load_audio
    from voxgate.core.errors import AudioError
    from voxgate.core.vad import remove_silence

    plans: list[SpeakerPlan] = []
    skipped: list[list[str]] = []
    for spk, recs in recordings.items():
        kept: list[tuple[SourceFile, np.ndarray]] = []
        for r in recs:
            try:
                wave = load_audio(r.path, SAMPLE_RATE)
                speech = remove_silence(wave, SAMPLE_RATE, vad_aggressiveness, path=r.path)
            except AudioError as exc:
                skipped.append([str(r.path), exc.reason])
                continue
            kept.append((r, speech))
        if not kept:
            skipped.append([spk, "no readable speech"])
            continue
        plan = _plan(spk, kept, enroll_s, enroll_sessions, join_sessions)
        if plan.enroll_speech_s < min_enroll_s or not plan.test_waves:
            why = f"only {plan.enroll_speech_s:.2f} s of enrollment speech"
            skipped.append([spk, why if plan.test_waves else "no test speech"])
            continue
        plans.append(plan)
    return VerificationPlan(plans, enroll_s, skipped)


def _plan(
    spk: str,
    kept: list[tuple[SourceFile, np.ndarray]],
    enroll_s: float,
    enroll_sessions: Sequence[str] | None,
    join: bool,
) -> SpeakerPlan:
    names = [str(r.path) for r, _ in kept]
    waves = [w for _, w in kept]
    if enroll_sessions:
        first = set(enroll_sessions)
        enroll = [(str(r.path), w) for r, w in kept if r.session in first]
        rest = [(r, w) for r, w in kept if r.session not in first]
        plan = SpeakerPlan(
            spk,
            [n for n, _ in enroll],
            [w for _, w in enroll],
            [str(r.path) for r, _ in rest],
            [w for _, w in rest],
        )
    else:
        plan = plan_speaker(spk, names, waves, enroll_s)
        rest = [(r, w) for r, w in kept if str(r.path) in set(plan.test_recordings)]
    if join and not plan.single_recording and rest:
        groups: dict[str, list[tuple[SourceFile, np.ndarray]]] = {}
        for r, w in rest:
            groups.setdefault(r.session, []).append((r, w))
        plan.test_recordings = [str(g[0][0].path) for g in groups.values()]
        plan.test_waves = [np.concatenate([w for _, w in g]) for g in groups.values()]
    return plan


@dataclass(frozen=True)
class Segment:
    """A test segment: ``length_s`` seconds of speech of ``recording`` from ``start_s``
    (seconds into that recording's speech-only signal)."""

    speaker: str
    recording: str
    start_s: float
    wave: np.ndarray = field(repr=False, compare=False)


def test_segments(plan: VerificationPlan, length_s: float) -> list[Segment]:
    """Non-overlapping ``length_s``-second segments of every test recording (leftovers dropped)."""
    n = int(round(length_s * SAMPLE_RATE))
    out: list[Segment] = []
    for sp in plan.speakers:
        offset = len(sp.enroll_waves[0]) if sp.single_recording else 0
        for rec, w in zip(sp.test_recordings, sp.test_waves):
            for k in range(len(w) // n):
                out.append(
                    Segment(sp.speaker, rec, (offset + k * n) / SAMPLE_RATE, w[k * n : (k + 1) * n])
                )
    return out


def trial_labels(segments: Sequence[Segment], speakers: Sequence[str]) -> np.ndarray:
    """Genuine mask (S, K) bool: segment s is tested against every profile k."""
    idx = {s: k for k, s in enumerate(speakers)}
    mask = np.zeros((len(segments), len(speakers)), dtype=bool)
    for i, seg in enumerate(segments):
        if seg.speaker in idx:
            mask[i, idx[seg.speaker]] = True
    return mask
