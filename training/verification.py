"""Open-set speaker verification: enroll speakers from some recordings, test on others.

The trial logic is independent of the embedding model: a backend turns waveforms into
embeddings (``embed_segments``) and enrollment speech into a profile (``enroll``). The
voxgate backend and the Resemblyzer benchmark backend run on the very same trials.
Recordings come from the shared scanner (recordings.py), the enrollment / test plan from
verification_plan.py; this module scores the trials and re-exports both.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.core.errors import DatasetError
from voxgate.training.backends import (  # noqa: F401  (re-exported: the trial API)
    SAMPLE_RATE,
    Backend,
    ResemblyzerBackend,
    VoxgateBackend,
    make_backend,
)
from voxgate.training.embeddings import embed_files  # noqa: F401  (re-exported)
from voxgate.training.recordings import SourceFile, collect_recordings
from voxgate.training.verification_plan import (  # noqa: F401  (re-exported)
    Segment,
    SpeakerPlan,
    VerificationPlan,
    build_plan,
    plan_speaker,
    test_segments,
    trial_labels,
)

log = logging.getLogger(__name__)

__all__ = [
    "Recording",
    "SpeakerPlan",
    "VerificationPlan",
    "Segment",
    "Trials",
    "collect_recordings",
    "read_speakers_file",
    "parse_id_list",
    "build_plan",
    "plan_speaker",
    "test_segments",
    "trial_labels",
    "Backend",
    "VoxgateBackend",
    "ResemblyzerBackend",
    "score_plan",
    "evaluate_verification",
    "embed_files",
]


# One audio file of one speaker (path, speaker, session, ...): the shared scanner's record.
Recording = SourceFile


def read_speakers_file(path: str | Path) -> list[str]:
    """Speaker ids, one per line; blank lines and ``#`` comments are ignored.

    Raises DatasetError when the file is missing or unreadable.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p}: speakers file not found")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{p}: cannot read speakers file: {exc}") from exc
    out = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def parse_id_list(spec: str) -> list[str]:
    """``"a,b,c"`` (comma-separated) or ``"@file"`` (see :func:`read_speakers_file`) -> ids."""
    if spec.startswith("@"):
        return read_speakers_file(spec[1:])
    return [s.strip() for s in spec.split(",") if s.strip()]


# --------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------


@dataclass
class Trials:
    """Scores of every test segment (S) against every profile (K) for one test length."""

    length_s: float
    speakers: list[str]  # profile order
    segments: list[Segment]
    scores: np.ndarray  # (S, K) cosine
    genuine_mask: np.ndarray  # (S, K) bool
    test_emb: np.ndarray | None = None  # (S, D) unit
    profiles: np.ndarray | None = None  # (K, D) unit

    def normalized(self, cohort: np.ndarray, top_n: int) -> Trials:
        """The same trials with AS-norm scores against ``cohort`` (training/cohort.py)."""
        from voxgate.training.cohort import as_norm

        s = as_norm(self.scores, self.test_emb, self.profiles, cohort, top_n)
        return dataclasses.replace(self, scores=s)

    @property
    def genuine(self) -> np.ndarray:
        return self.scores[self.genuine_mask]

    @property
    def impostor(self) -> np.ndarray:
        return self.scores[~self.genuine_mask]


def score_plan(
    plan: VerificationPlan, backend: Backend, lengths_s: Sequence[float] = (1.0, 3.0)
) -> dict[float, Trials]:
    """Enroll every speaker of ``plan`` and score all test segments of each length."""
    speakers = [sp.speaker for sp in plan.speakers]
    profiles = np.stack([backend.enroll(sp.enroll_waves) for sp in plan.speakers])
    out: dict[float, Trials] = {}
    for t in lengths_s:
        segs = test_segments(plan, t)
        emb = backend.embed_segments([s.wave for s in segs])
        scores = emb @ profiles.T if len(segs) else np.zeros((0, len(speakers)), np.float32)
        labels = trial_labels(segs, speakers)
        out[float(t)] = Trials(float(t), speakers, segs, scores, labels, emb, profiles)
    return out


def trials_metrics(trials: Trials) -> dict[str, Any]:
    """EER, minDCF(0.01), FRR at FAR 1 %, counts (plain floats; None when undefined)."""
    from voxgate.core import metrics as M

    gen, imp = trials.genuine, trials.impostor
    out: dict[str, Any] = {
        "test_s": trials.length_s,
        "n_speakers": len({s.speaker for s in trials.segments}),
        "n_profiles": len(trials.speakers),
        "n_segments": len(trials.segments),
        "n_genuine": int(len(gen)),
        "n_impostor": int(len(imp)),
        "n_trials": int(len(gen) + len(imp)),
    }
    if len(gen) and len(imp):
        e, et = M.eer(gen, imp)
        d, dt = M.min_dcf(gen, imp, p_target=0.01)
        frr, ft = M.frr_at_far(gen, imp, 0.01)
        out.update(
            eer=e,
            eer_threshold=et,
            min_dcf=d,
            min_dcf_threshold=dt,
            **{"frr_at_far_1%": frr, "threshold_at_far_1%": ft},
            mean_genuine=float(gen.mean()),
            mean_impostor=float(imp.mean()),
        )
    else:
        out.update(eer=None, min_dcf=None, **{"frr_at_far_1%": None})
    return out


def evaluate_verification(
    source: str | Path,
    *,
    model_path: str | Path | None = None,
    backend: str | Backend = "voxgate",
    enroll_s: float = 10.0,
    test_s: Sequence[float] = (1.0, 3.0),
    subsets: Sequence[str] | None = None,
    speakers: Sequence[str] | None = None,
    device: str | None = None,
    enroll_sessions: Sequence[str] | None = None,
    join_sessions: bool = False,
) -> dict[str, Any]:
    """Open-set verification on the speakers of ``source`` (folder or manifest CSV);
    ``enroll_sessions`` / ``join_sessions`` as in :func:`build_plan`.

    Returns plain JSON: per test length EER, minDCF(0.01), FRR at FAR 1 %, speaker and trial
    counts; the speakers with a single recording are listed (enrolled and tested on
    different parts of that one recording).
    """
    be = make_backend(backend, model_path, device) if isinstance(backend, str) else backend
    recs = collect_recordings(source, subsets=subsets, speakers=speakers)
    plan = build_plan(
        recs, enroll_s=enroll_s, enroll_sessions=enroll_sessions, join_sessions=join_sessions
    )
    if len(plan.speakers) < 2:
        raise DatasetError(f"{source}: open-set verification needs at least 2 usable speakers")
    scored = score_plan(plan, be, test_s)
    single = plan.single_recording_speakers
    result: dict[str, Any] = {
        "source": str(source),
        "subsets": list(subsets) if subsets else None,
        "backend": be.name,
        "model": str(model_path) if be.name == "voxgate" and model_path else None,
        "enroll_s": float(enroll_s),
        "n_speakers": len(plan.speakers),
        "enroll_speech_s_mean": float(np.mean([p.enroll_speech_s for p in plan.speakers])),
        "single_recording_speakers": single,
        "note": (
            f"{len(single)} speaker(s) have a single recording: enrolled on its first "
            f"{enroll_s:g} s of speech and tested on the rest of it"
            if single
            else "enrollment and test always come from different recordings"
        ),
        "skipped": plan.skipped,
        "by_length": {f"{t:g}s": trials_metrics(tr) for t, tr in scored.items()},
    }
    if be.name == "voxgate":
        enc = getattr(be, "encoder", None)
        result["model_fingerprint"] = getattr(enc, "fingerprint", None)
    return result


# The out-of-domain benchmark (issue "a speaker model that generalizes"): sets nobody trains
# on, each enrolled and tested on its own. (label, subsets, enrollment sessions)
OOD_SUITE = (
    ("LibriSpeech test-other", ["librispeech/test-other"], None),
    ("MSC held-out (Malayalam)", ["msc/heldout"], None),
    ("EmoDB (neutral -> emotions)", ["emodb/eval"], ["neutral"]),
    ("FSDD (8 kHz digits)", ["fsdd/eval"], None),
)


def evaluate_suite(
    manifest: str | Path,
    backends: Sequence[Backend],
    *,
    enroll_s: float = 10.0,
    test_s: Sequence[float] = (1.0, 3.0),
    cohort: np.ndarray | None = None,
    top_n: int = 100,
) -> list[dict[str, Any]]:
    """Every backend on the very same trials of every :data:`OOD_SUITE` set: one row per
    (set, backend, test length) with EER, minDCF(0.01) and FRR at FAR 1 %. With a voxgate
    ``cohort`` the voxgate trials are also scored with AS-norm (backend "voxgate+asnorm")."""
    rows = []
    for label, subsets, sessions in OOD_SUITE:
        recs = collect_recordings(manifest, subsets=subsets)
        plan = build_plan(recs, enroll_s=enroll_s, enroll_sessions=sessions, join_sessions=True)
        for be in backends:
            for trials in score_plan(plan, be, test_s).values():
                rows.append({"set": label, "backend": be.name, **trials_metrics(trials)})
                if cohort is not None and be.name == "voxgate":
                    normed = trials_metrics(trials.normalized(cohort, top_n))
                    rows.append({"set": label, "backend": "voxgate+asnorm", **normed})
    return rows
