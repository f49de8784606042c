"""Open-set speaker verification: enroll speakers from some recordings, test on others.

The trial logic is independent of the embedding model: a backend turns waveforms into
embeddings (``embed_segments``) and enrollment speech into a profile (``enroll``). The
voxgate backend and the Resemblyzer benchmark backend run on the very same trials.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from voxgate.training.speakers import speaker_id, subset_matches

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


# --------------------------------------------------------------------------------------
# recordings
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recording:
    """One audio file of one speaker; session: chapter/folder ("" when unknown)."""

    path: Path
    speaker: str
    session: str = ""


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


def _audio_extensions() -> frozenset[str]:
    from voxgate.core.audio import AUDIO_EXTENSIONS

    return AUDIO_EXTENSIONS


def collect_recordings(
    source: str | Path,
    *,
    subsets: Sequence[str] | None = None,
    speakers: Sequence[str] | None = None,
) -> dict[str, list[Recording]]:
    """Recordings per speaker, each list sorted by (session, path); speakers sorted.

    ``source`` is a folder or a manifest CSV (columns corpus, subset, speaker, session, path;
    paths relative to the CSV's folder; speaker ids follow ``training.speakers``; ``subsets``
    filters on the subset column, as ``subset`` or ``corpus/subset``). In a folder (searched
    at any depth) the first path
    component below it is the speaker and the folders between speaker and file form the
    session (LibriSpeech's ``<spk>/<chapter>/file``); a file directly in the folder is its
    own speaker (its stem). ``speakers`` keeps only those ids.
    """
    src = Path(source)
    recs: dict[str, list[Recording]] = {}
    if src.is_file() and src.suffix.lower() == ".csv":
        with src.open(newline="", encoding="utf-8-sig") as f:  # -sig: Excel's BOM
            reader = csv.DictReader(f)
            need = {"speaker", "path"}
            if not reader.fieldnames or need - set(reader.fieldnames):
                raise DatasetError(f"{src}: a manifest needs the columns {sorted(need)}")
            for row in reader:
                corpus, sub = (row.get("corpus") or "").strip(), row.get("subset", "")
                if subsets and not subset_matches(corpus, sub, frozenset(subsets)):
                    continue
                spk = speaker_id(corpus, row["speaker"])
                path = Path(row["path"])
                path = path if path.is_absolute() else src.parent / path
                recs.setdefault(spk, []).append(Recording(path, spk, row.get("session") or ""))
    elif src.is_dir():
        exts = _audio_extensions()
        for p in sorted(src.rglob("*")):
            if not p.is_file() or p.suffix.lower() not in exts:
                continue
            rel = p.relative_to(src).parts
            if len(rel) == 1:
                spk, session = p.stem, ""
            else:
                spk, session = rel[0], "/".join(rel[1:-1])
            recs.setdefault(spk, []).append(Recording(p, spk, session))
    else:
        raise DatasetError(f"{src}: not a folder or a manifest .csv")
    if speakers is not None:
        keep = set(speakers)
        recs = {k: v for k, v in recs.items() if k in keep}
    if not recs:
        raise DatasetError(f"{src}: no audio recordings found (subsets={list(subsets or [])})")
    return {k: sorted(v, key=lambda r: (r.session, str(r.path))) for k, v in sorted(recs.items())}


# --------------------------------------------------------------------------------------
# enrollment / test plan
# --------------------------------------------------------------------------------------


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
    recordings: dict[str, list[Recording]],
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
        kept: list[tuple[Recording, np.ndarray]] = []
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
    kept: list[tuple[Recording, np.ndarray]],
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
        groups: dict[str, list[tuple[Recording, np.ndarray]]] = {}
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
        out[float(t)] = Trials(float(t), speakers, segs, scores, trial_labels(segs, speakers))
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
) -> list[dict[str, Any]]:
    """Every backend on the very same trials of every :data:`OOD_SUITE` set: one row per
    (set, backend, test length) with EER, minDCF(0.01) and FRR at FAR 1 %."""
    rows = []
    for label, subsets, sessions in OOD_SUITE:
        recs = collect_recordings(manifest, subsets=subsets)
        plan = build_plan(recs, enroll_s=enroll_s, enroll_sessions=sessions, join_sessions=True)
        for be in backends:
            for trials in score_plan(plan, be, test_s).values():
                rows.append({"set": label, "backend": be.name, **trials_metrics(trials)})
    return rows
