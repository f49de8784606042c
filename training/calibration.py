"""Threshold calibration on exactly what the client decides.

Speakers of held-out recordings are enrolled through the client's enrollment path
(``core.enroll.enroll_from_waves``) into a scratch profile store; every test clip is replayed
through the live decision path (``Pipeline.replay``: the same windows, VAD, voicing rule,
K windows and aggregator as ``voxgate verify --file``) against every profile; the threshold
is chosen on the impostor verdict scores for the target false acceptance rate. The
checkpoint records what it was calibrated on: data, target FAR, K, hop and the trial counts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voxgate.core.errors import DatasetError, TooShortError

if TYPE_CHECKING:  # the Protocol only; no import cycle at run time
    from voxgate.core.scoring import Encoder

__all__ = ["Trial", "ClipSet", "prepare_clips", "replay_trials", "calibrate", "rates"]


@dataclass(frozen=True)
class Trial:
    """One attempt: ``clip`` (an id) of ``speaker`` against profile ``profile``.

    decision: "accepted" | "rejected" | "undecided"; score: the verdict's mean over its K
    windows (None when undecided) -- threshold-independent, so one replay serves any threshold.
    """

    clip: str
    speaker: str
    profile: str
    decision: str
    score: float | None

    @property
    def genuine(self) -> bool:
        return self.speaker == self.profile


@dataclass
class ClipSet:
    """Enrollment speech per speaker and test clips (id, speaker, float32 wave)."""

    enroll: dict[str, list[np.ndarray]]
    clips: list[tuple[str, str, np.ndarray]]
    skipped: list[list[str]]
    source: str


def prepare_clips(
    source: str | Path,
    *,
    subsets: Sequence[str] | None = None,
    speakers: Sequence[str] | None = None,
    enroll_s: float = 10.0,
    clip_s: float = 3.0,
    enroll_sessions: Sequence[str] | None = None,
    join_sessions: bool = True,
    max_clips_per_speaker: int | None = None,
) -> ClipSet:
    """Enrollment and test material of ``source`` (folder or manifest, see
    ``recordings.collect_recordings``).

    Each speaker enrolls on the speech (silence removed) of its first recordings, up to
    ``enroll_s`` seconds, or of the recordings whose session is in ``enroll_sessions``
    (EmoDB: "neutral"); it is tested on ``clip_s``-second clips of the speech of its other
    recordings, never one it enrolled on. ``join_sessions``: the test speech of one session
    is joined before cutting (EmoDB's 2-s clips make no 3-s clip alone).
    """
    from voxgate.training.recordings import collect_recordings
    from voxgate.training.verification_plan import build_plan, test_segments

    recs = collect_recordings(source, subsets=subsets, speakers=speakers)
    plan = build_plan(
        recs, enroll_s=enroll_s, enroll_sessions=enroll_sessions, join_sessions=join_sessions
    )
    clips, per_speaker = [], {}
    for seg in test_segments(plan, clip_s):
        n = per_speaker.get(seg.speaker, 0)
        if max_clips_per_speaker is not None and n >= max_clips_per_speaker:
            continue
        per_speaker[seg.speaker] = n + 1
        clip_id = f"{seg.speaker}/{Path(seg.recording).stem}@{seg.start_s:.2f}s"
        clips.append((clip_id, seg.speaker, seg.wave))
    enroll = {sp.speaker: sp.enroll_waves for sp in plan.speakers}
    label = f"{source}" + (f" [{', '.join(subsets)}]" if subsets else "")
    return ClipSet(enroll, clips, plan.skipped, label)


def replay_trials(encoder: Encoder, clipset: ClipSet, config: Any = None) -> list[Trial]:
    """Enroll every speaker (the client's enrollment path, scratch store) and replay every
    clip against every profile (``Pipeline.replay``). Speakers whose enrollment is refused
    (too little voiced speech) are left out and listed in ``clipset.skipped``."""
    from voxgate.core.enroll import enroll_from_waves
    from voxgate.core.pipeline import Pipeline, PipelineConfig
    from voxgate.core.profiles import ProfileStore

    cfg = config or PipelineConfig(lockout=False)
    with tempfile.TemporaryDirectory(prefix="voxgate-cal-") as tmp:
        store = ProfileStore(Path(tmp) / "profiles")
        for spk, waves in clipset.enroll.items():
            try:
                enroll_from_waves(encoder, waves, spk, store=store)
            except TooShortError as exc:
                clipset.skipped.append([spk, exc.reason])
        pipe = Pipeline(encoder, store, cfg, display_hop_s=None)
        trials = []
        for clip_id, spk, wave in clipset.clips:
            for name, verdict in pipe.replay(wave).items():
                final = verdict is not None and verdict.state.value in ("accepted", "rejected")
                trials.append(
                    Trial(
                        clip_id,
                        spk,
                        name,
                        verdict.state.value if final else "undecided",
                        float(verdict.score) if final else None,
                    )
                )
    return trials


def rates(trials: Sequence[Trial], threshold: float) -> dict[str, Any]:
    """FAR and FRR at ``threshold`` over the decided trials, with counts and Wilson 95 %
    intervals. Undecided trials (fewer than K scored windows: too little voiced speech) are
    neither accepted nor rejected; they are counted apart (``undecided_*``), and
    ``frr_with_undecided`` counts them as not accepted."""
    imp = [t for t in trials if not t.genuine and t.score is not None]
    gen = [t for t in trials if t.genuine and t.score is not None]
    n_gen_all = sum(1 for t in trials if t.genuine)
    fa = sum(1 for t in imp if t.score >= threshold)
    fr = sum(1 for t in gen if t.score < threshold)
    und_gen = n_gen_all - len(gen)
    return {
        "threshold": float(threshold),
        "n_impostor": len(imp),
        "n_genuine": len(gen),
        "false_accepts": fa,
        "false_rejects": fr,
        "far": fa / len(imp) if imp else None,
        "frr": fr / len(gen) if gen else None,
        "far_ci95": wilson(fa, len(imp)),
        "frr_ci95": wilson(fr, len(gen)),
        "undecided_genuine": und_gen,
        "undecided_impostor": sum(1 for t in trials if not t.genuine and t.score is None),
        "frr_with_undecided": (fr + und_gen) / n_gen_all if n_gen_all else None,
    }


def wilson(k: int, n: int, z: float = 1.96) -> list[float] | None:
    """Wilson score interval of a proportion k / n (None when n = 0)."""
    if n == 0:
        return None
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return [float(max(0.0, mid - half)), float(min(1.0, mid + half))]


def calibrate(
    model_path: str | Path,
    sources: Sequence[tuple[str | Path, Sequence[str] | None]],
    target_far: float = 0.01,
    *,
    enroll_s: float = 10.0,
    clip_s: float = 3.0,
    write: bool = True,
    device: str | None = None,
    enroll_sessions: Sequence[str] | None = None,
    speakers: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Choose the cosine threshold at ``target_far`` on decision-level impostor trials of
    ``sources`` ((folder or manifest, subsets) pairs, each enrolled and tested on its own:
    impostors come from the same set) replayed through the client's path; ``speakers``
    keeps only those ids in every set (the held-out speakers of a set partly trained on).
    Head thresholds and closed-set figures already in the checkpoint are kept. Returns the
    calibration block; ``write`` stores it (threshold, calibration) in the checkpoint."""
    from voxgate.core.checkpoint import read_checkpoint, update_checkpoint
    from voxgate.core.inference import SpeakerEncoder
    from voxgate.core.pipeline import PipelineConfig

    if not 0.0 < target_far < 1.0:
        raise ValueError(f"target_far must be in (0, 1), got {target_far}")
    encoder = SpeakerEncoder.from_checkpoint(model_path, device=device)
    cfg = PipelineConfig(lockout=False, threshold=0.0)  # scores do not depend on it
    clips = dict(
        speakers=speakers, enroll_s=enroll_s, clip_s=clip_s, enroll_sessions=enroll_sessions
    )
    per_set = [
        _calibrate_set(encoder, cfg, src, subsets, target_far, clips) for src, subsets in sources
    ]
    trials = [t for p in per_set for t in p["trials"]]
    # The strictest set decides: the target holds on every set, not only on their pool
    # (pooling easy and hard sets would let the hard one through at several times the FAR).
    threshold = max(p["threshold"] for p in per_set)
    old = dict(read_checkpoint(model_path).get("calibration") or {})
    cal = {
        "statistic": "mean cosine of the first K scored windows (the client's decision)",
        "target_far": float(target_far),
        "threshold": threshold,
        **_decision_rule(cfg, encoder.feature_config.chunk_s),
        "enroll_s": float(enroll_s),
        "clip_s": float(clip_s),
        "data": [p["data"] for p in per_set],
        "speakers": None if speakers is None else sorted(speakers),
        "rule": "the highest of the per-set thresholds: the target FAR holds on each set",
        "per_set": [
            {"data": p["data"], "set_threshold": p["threshold"], **rates(p["trials"], threshold)}
            for p in per_set
        ],
        "skipped": [s for p in per_set for s in p["skipped"]],
        "at_threshold": rates(trials, threshold),
        "head_thresholds": old.get("head_thresholds"),
        "closed_set": old.get("closed_set"),
    }
    if write:
        update_checkpoint(model_path, threshold=threshold, calibration=cal)
    return cal


def _decision_rule(cfg: Any, chunk_s: float) -> dict[str, Any]:
    """The client's decision rule the threshold was calibrated for (K windows and the rest)."""
    from voxgate.core.decision import windows_for_decision

    return {
        "k_windows": windows_for_decision(cfg.decision_s, chunk_s, cfg.hop_s),
        "decision_s": cfg.decision_s,
        "hop_s": cfg.hop_s,
        "min_speech_ratio": cfg.min_speech_ratio,
        "vad_aggressiveness": cfg.vad_aggressiveness,
    }


def _calibrate_set(
    encoder: Encoder,
    cfg: Any,
    source: str | Path,
    subsets: Sequence[str] | None,
    target_far: float,
    clips: dict[str, Any],
) -> dict[str, Any]:
    """One set's replayed trials and its own threshold at ``target_far`` (``clips``: the
    keyword arguments of :func:`prepare_clips`); DatasetError without a decided impostor trial."""
    from voxgate.core import metrics as M

    cs = prepare_clips(source, subsets=subsets, **clips)
    got = replay_trials(encoder, cs, cfg)
    imp = [t.score for t in got if not t.genuine and t.score is not None]
    if not imp:
        raise DatasetError(f"{cs.source}: no decided impostor trials (need >= 2 speakers)")
    thr = float(M.threshold_at_far(np.asarray(imp), target_far))
    return {"data": cs.source, "threshold": thr, "trials": got, "skipped": cs.skipped}
