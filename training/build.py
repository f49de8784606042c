"""Build the augmented HDF5 chunk dataset from speaker folders or manifest CSVs.

Pipeline per recording: load -> 16 kHz mono -> VAD silence removal -> (split, decided per
recording beforehand) -> 1-s chunks -> augmentation (train split only) -> log-mel (float16).
The file is written beside ``out`` as a temp file (``voxgate.core.fileio.atomic_path``) and
renamed only when complete; on any failure, interrupt or SIGTERM nothing is left at or beside
``out``. HDF5 writes go through :class:`_GuardedFile`, so a full disk is an OSError for the
caller, never a broken HDF5 library state (which used to end in a segmentation fault).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import itertools
import json
import os
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.core.config import FeatureConfig
from voxgate.core.errors import AudioError, ConfigError, DatasetError
from voxgate.core.fileio import TEMP_SUFFIX, atomic_path
from voxgate.training.speakers import speaker_id, subset_matches

from .augment import (
    AUG_TAGS,
    DEFAULT_AUGMENTATIONS,
    SPEC_AUGMENTATIONS,
    SPEED_AUGMENTATIONS,
    add_noise,
    random_freq_mask,
    random_time_mask,
    speed_perturb,
    speed_window,
    vtlp,
)

__all__ = [
    "SCHEMA_VERSION",
    "SPLIT_NAMES",
    "SourceFile",
    "BuildConfig",
    "BuildSummary",
    "collect_sources",
    "resolve_speaker_ids",
    "assign_splits",
    "build_dataset",
]

SCHEMA_VERSION = 1
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
SPLIT_TARGETS = (0.8, 0.1, 0.1)
_FEATURE_BATCH = 256  # chunks per log_mel call
SEGMENT_S = 120.0  # a longer recording is processed in pieces of this many seconds of audio


@dataclasses.dataclass
class SourceFile:
    """One source recording. ``speaker`` is the final (possibly corpus-prefixed) id."""

    path: Path
    speaker: str
    session: str = ""
    corpus: str = ""
    subset: str = ""
    gender: str = ""
    duration_s: float | None = None


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """Everything that changes the content of a built dataset (stored in attrs["build_config"])."""

    feature_preset: str = "report"
    seed: int = 0
    augment: tuple[str, ...] = DEFAULT_AUGMENTATIONS
    aug_per_chunk: int | str = 2  # an int, or "all"
    oversample: bool = True
    oversample_max: float = 4.0
    vad_aggressiveness: int = 2
    chunk_hop_s: float | None = None  # None: the chunk length (no overlap)
    min_chunk_fraction: float = 0.5
    subsets: tuple[str, ...] | None = None
    exclude_speakers: tuple[str, ...] = ()
    max_files_per_speaker: int | None = None
    max_seconds_per_speaker: float | None = None
    compression: str | None = "lzf"
    max_file_s: float | None = 1800.0  # longer recordings are skipped (memory grows with length)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.augment) - set(DEFAULT_AUGMENTATIONS))
        if unknown:
            raise ConfigError(f"unknown augmentation(s) {unknown}")
        if not (self.aug_per_chunk == "all" or isinstance(self.aug_per_chunk, int)):
            raise ConfigError(f"aug_per_chunk must be an int or 'all', got {self.aug_per_chunk!r}")
        if isinstance(self.aug_per_chunk, int) and self.aug_per_chunk < 0:
            raise ConfigError("aug_per_chunk must be >= 0")
        if self.oversample_max < 1.0:
            raise ConfigError("oversample_max must be >= 1")
        if self.vad_aggressiveness not in (0, 1, 2, 3):
            raise ConfigError("vad_aggressiveness must be 0, 1, 2 or 3")
        if self.chunk_hop_s is not None and self.chunk_hop_s <= 0:
            raise ConfigError("chunk_hop_s must be > 0")
        if not 0.0 < self.min_chunk_fraction <= 1.0:
            raise ConfigError("min_chunk_fraction must be in (0, 1]")
        if self.max_files_per_speaker is not None and self.max_files_per_speaker < 1:
            raise ConfigError("max_files_per_speaker must be >= 1")
        if self.max_seconds_per_speaker is not None and self.max_seconds_per_speaker <= 0:
            raise ConfigError("max_seconds_per_speaker must be > 0")
        if self.max_file_s is not None and self.max_file_s <= 0:
            raise ConfigError("max_file_s must be > 0 (or None for no limit)")
        if self.compression not in (None, "lzf", "gzip"):
            raise ConfigError("compression must be None, 'lzf' or 'gzip'")
        FeatureConfig.preset(self.feature_preset)  # validates the name

    @property
    def feature_config(self) -> FeatureConfig:
        return FeatureConfig.preset(self.feature_preset)

    @property
    def n_aug(self) -> int:
        """Augmented copies per train chunk (before oversampling)."""
        if self.aug_per_chunk == "all":
            return len(self.augment)
        return min(int(self.aug_per_chunk), len(self.augment))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("augment", "subsets", "exclude_speakers"):
            d[k] = None if d[k] is None else list(d[k])
        return d


@dataclasses.dataclass
class BuildSummary:
    """What a build wrote. counts[split] = {authorized, outsider, total, original, augmented} chunks."""

    out: Path
    counts: dict[str, dict[str, int]]
    n_files: int
    n_sources: int
    n_chunks: int
    speakers: list[str]
    authorized: list[str]
    skipped: list[tuple[str, str]]
    dropped_speakers: list[str]
    unmatched_excludes: list[str]
    audio_hours: float
    speech_hours: float
    oversample_factor: float
    fingerprint: str
    seconds: float

    @property
    def hours_per_minute(self) -> float:
        """Build throughput: hours of input audio processed per wall-clock minute."""
        return self.audio_hours / max(self.seconds / 60.0, 1e-9)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["out"] = str(self.out)
        d["skipped"] = [list(s) for s in self.skipped]
        d["hours_per_minute"] = self.hours_per_minute
        return d


# --------------------------------------------------------------------------- sources


def _audio_extensions() -> frozenset[str]:
    from voxgate.core.audio import AUDIO_EXTENSIONS

    return AUDIO_EXTENSIONS


def _scan_folder(root: Path) -> list[SourceFile]:
    """One sub-folder per speaker; audio at any depth; a second folder level is the session."""
    exts = _audio_extensions()
    out = []
    for spk_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(spk_dir.rglob("*")):
            if f.is_file() and f.suffix.lower() in exts:
                rel = f.relative_to(spk_dir).parts
                session = rel[0] if len(rel) >= 2 else ""
                out.append(SourceFile(f, spk_dir.name, session, corpus=root.name))
    return out


def _read_manifest(csv_path: Path, subsets: Sequence[str] | None) -> list[SourceFile]:
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:  # -sig: Excel's BOM
            reader = csv.DictReader(fh)
            cols = set(reader.fieldnames or ())
            missing = {"speaker", "path"} - cols
            if missing:
                raise DatasetError(f"{csv_path}: manifest lacks column(s) {sorted(missing)}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{csv_path}: cannot read manifest: {exc}") from exc
    if subsets is not None and "subset" not in cols:
        raise DatasetError(f"{csv_path}: --subsets given but the manifest has no 'subset' column")
    out = []
    for i, row in enumerate(rows, start=2):
        spk, rel = (row.get("speaker") or "").strip(), (row.get("path") or "").strip()
        if not spk or not rel:
            raise DatasetError(f"{csv_path}:{i}: empty speaker or path")
        subset = (row.get("subset") or "").strip()
        corpus = (row.get("corpus") or "").strip()
        if subsets is not None and not subset_matches(corpus, subset, frozenset(subsets)):
            continue
        dur = (row.get("duration_s") or "").strip()
        try:
            duration = float(dur) if dur else None
        except ValueError:
            duration = None
        out.append(
            SourceFile(
                (csv_path.parent / rel),
                speaker_id(corpus, spk),
                (row.get("session") or "").strip(),
                corpus or csv_path.stem,
                subset,
                (row.get("gender") or "").strip(),
                duration,
            )
        )
    return out


def collect_sources(
    srcs: Sequence[str | Path], subsets: Sequence[str] | None = None
) -> list[SourceFile]:
    """Read every SRC (speaker folder or manifest CSV) into one table sorted by path.

    Speaker ids follow ``training.speakers``: a manifest row with a corpus is
    ``corpus-speaker``; folder ids get their folder's name as prefix when several SRCs mix.
    Raises DatasetError for a missing SRC or an empty result.
    """
    if not srcs:
        raise DatasetError("no source given")
    table: list[SourceFile] = []
    for src in srcs:
        p = Path(src)
        if p.is_dir():
            table.extend(_scan_folder(p))
        elif p.is_file() and p.suffix.lower() == ".csv":
            table.extend(_read_manifest(p, subsets))
        else:
            raise DatasetError(f"{p}: not a folder of speaker folders or a manifest .csv")
    if len(srcs) > 1:
        for s in table:
            s.speaker = speaker_id(s.corpus, s.speaker)
    seen: set[str] = set()
    unique = []
    for s in sorted(table, key=lambda s: (s.speaker, str(s.path))):
        key = os.path.normpath(str(s.path.absolute()))
        if key not in seen:
            seen.add(key)
            unique.append(s)
    if not unique:
        raise DatasetError(f"no audio files found in {', '.join(map(str, srcs))}")
    return unique


def resolve_speaker_ids(
    requested: Sequence[str], speakers: Sequence[str], *, what: str = "authorized"
) -> tuple[list[str], list[str]]:
    """Map ids (full ``corpus-id`` or plain where unambiguous) to known speakers.

    Returns (resolved ids in request order, unmatched requests). Ambiguous plain ids raise
    DatasetError.
    """
    known = set(speakers)
    resolved, unmatched = [], []
    for req in requested:
        if req in known:
            resolved.append(req)
            continue
        hits = [s for s in speakers if s.endswith(f"-{req}")]
        if len(hits) == 1:
            resolved.append(hits[0])
        elif len(hits) > 1:
            raise DatasetError(f"{what} speaker {req!r} is ambiguous: {hits}; use the full id")
        else:
            unmatched.append(req)
    return list(dict.fromkeys(resolved)), unmatched


def _fill_durations(table: list[SourceFile]) -> None:
    """Header durations for files without one (0 where unreadable; the load reports why)."""
    import soundfile as sf

    for s in table:
        if s.duration_s is None:
            try:
                s.duration_s = float(sf.info(str(s.path)).duration)
            except Exception:  # unreadable header: the worker will report the real error
                s.duration_s = 0.0


def _speaker_order(files: list[SourceFile], rng: np.random.Generator) -> list[SourceFile]:
    """Seeded order that alternates sessions, so a file limit still spans recording sessions."""
    by_sess: dict[str, list[SourceFile]] = defaultdict(list)
    for f in files:
        by_sess[f.session].append(f)
    groups = [by_sess[k] for k in sorted(by_sess)]
    for g in groups:
        rng.shuffle(g)
    rng.shuffle(groups)
    return [f for f in itertools.chain(*itertools.zip_longest(*groups)) if f is not None]


def _limit_per_speaker(
    table: list[SourceFile], max_files: int | None, max_seconds: float | None, seed: int
) -> list[SourceFile]:
    if max_files is None and max_seconds is None:
        return table
    by_spk: dict[str, list[SourceFile]] = defaultdict(list)
    for s in table:
        by_spk[s.speaker].append(s)
    out = []
    for spk in sorted(by_spk):
        rng = np.random.default_rng([seed, zlib.crc32(spk.encode())])
        chosen, total = [], 0.0
        for f in _speaker_order(by_spk[spk], rng):
            if max_files is not None and len(chosen) >= max_files:
                break
            if max_seconds is not None and chosen and total >= max_seconds:
                break
            chosen.append(f)
            total += f.duration_s or 0.0
        out.extend(chosen)
    return sorted(out, key=lambda s: (s.speaker, str(s.path)))


# --------------------------------------------------------------------------- split


def _split_sessions(durations: list[float], rng: np.random.Generator) -> list[int]:
    """Assign sessions to splits, closest to 80/10/10 by duration, each split non-empty."""
    n = len(durations)
    order = rng.permutation(n)  # seeded tie-breaking
    d = np.asarray(durations, dtype=float)[order]
    total = max(float(d.sum()), 1e-9)
    targets = np.asarray(SPLIT_TARGETS)
    best: tuple[float, tuple[int, ...]] | None = None
    if n <= 9:
        for combo in itertools.product(range(3), repeat=n):
            if len(set(combo)) < 3:
                continue
            sums = np.bincount(combo, weights=d, minlength=3) / total
            cost = float(np.sum((sums - targets) ** 2))
            if best is None or cost < best[0] - 1e-12:
                best = (cost, combo)
        assign = list(best[1])  # type: ignore[index]
    else:  # greedy: largest sessions first, each to the split furthest below its target
        assign = [0] * n
        sums = np.zeros(3)
        for i in np.argsort(-d, kind="stable"):
            k = int(np.argmax(targets * total - sums))
            assign[i] = k
            sums[k] += d[i]
        for k in (1, 2):
            if k not in assign:
                train = [i for i in range(n) if assign[i] == 0]
                assign[min(train, key=lambda i: d[i])] = k
    out = [0] * n
    for pos, idx in enumerate(order):
        out[idx] = assign[pos]
    return out


def _split_files(n: int, rng: np.random.Generator) -> list[int]:
    if n == 1:
        return [0]
    if n == 2:
        out = [0, 2]
        return [out[i] for i in rng.permutation(2)]
    n_val = n_test = max(1, int(round(0.1 * n)))
    labels = [1] * n_val + [2] * n_test + [0] * (n - n_val - n_test)
    perm = rng.permutation(n)
    out = [0] * n
    for pos, idx in enumerate(perm):
        out[idx] = labels[pos]
    return out


def assign_splits(table: Sequence[SourceFile], seed: int) -> list[int]:
    """Split index (0 train, 1 val, 2 test) per recording, stratified per speaker.

    A speaker with >= 3 known sessions is split by whole sessions (closest to 80/10/10 by
    duration); otherwise its files are split ~80/10/10 (at least one in val and test once it
    has 3 files; 2 files: train + test; 1 file: train).
    """
    by_spk: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(table):
        by_spk[s.speaker].append(i)
    splits = [0] * len(table)
    for spk in sorted(by_spk):
        idx = sorted(by_spk[spk], key=lambda i: str(table[i].path))
        rng = np.random.default_rng([seed, zlib.crc32(spk.encode())])
        sessions = sorted({table[i].session for i in idx if table[i].session})
        if len(sessions) >= 3:
            key = {s: k for k, s in enumerate(sessions)}
            # Files without a session become sessions of their own.
            groups = [[i for i in idx if table[i].session == s] for s in sessions]
            groups += [[i] for i in idx if table[i].session not in key]
            dur = [sum(table[i].duration_s or 0.0 for i in g) or 1e-3 for g in groups]
            for g, k in zip(groups, _split_sessions(dur, rng)):
                for i in g:
                    splits[i] = k
        else:
            for i, k in zip(idx, _split_files(len(idx), rng)):
                splits[i] = k
    return splits


# --------------------------------------------------------------------------- worker


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def process_file(task: dict[str, Any]) -> dict[str, Any]:
    """Turn one recording into feature rows (top-level, so a spawned Pool can run it).

    The file is decoded block by block and processed in segments of ``SEGMENT_S`` seconds
    (silence removal, chunks, augmentation, features), so memory grows only with the
    features kept, not with the audio; a recording shorter than one segment is processed
    whole. Returns {"ok": True, features float16 (R,T,M), lengths int16 (R,), aug int8 (R,),
    chunk_index int32 (R,), duration_s, speech_s, chunks} or {"ok": False, "reason": str}.
    """
    from voxgate.core.errors import TooShortError
    from voxgate.core.vad import remove_silence

    cfg = FeatureConfig.from_dict(task["feature_config"])
    sr, cs = cfg.sample_rate, cfg.chunk_samples
    path = task["path"]
    rng = np.random.default_rng([task["seed"], zlib.crc32(path.encode())])
    parts: list[dict[str, np.ndarray]] = []
    duration_s = speech_s = 0.0
    n_chunks, silent = 0, None
    try:
        for segment in _segments(path, sr, task.get("max_file_s")):
            duration_s += segment.size / sr
            try:
                speech = remove_silence(segment, sr, task["vad_aggressiveness"], path=path)
            except TooShortError as exc:  # this segment is silence; others may speak
                silent = exc
                continue
            speech_s += speech.size / sr
            rows = _segment_rows(speech, task, cfg, rng, n_chunks)
            if rows is not None:
                n_chunks += rows["chunks"]
                parts.append(rows)
    except AudioError as exc:
        return {"ok": False, "reason": f"{type(exc).__name__}: {exc.reason}"}
    if not parts:
        if speech_s == 0 and silent is not None:
            return {"ok": False, "reason": f"TooShortError: {silent.reason}"}
        return {
            "ok": False,
            "reason": f"TooShortError: {speech_s:.2f} s of speech after silence removal "
            f"is less than {task['min_fraction'] * cs / sr:.2f} s",
        }
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("features", "lengths", "aug", "chunk_index")}
    # Originals first, then copies grouped by tag: a reader without augmentation reads one run.
    order = np.lexsort((cat["chunk_index"], cat["aug"]))
    return {
        "ok": True,
        **{k: v[order] for k, v in cat.items()},
        "duration_s": duration_s,
        "speech_s": speech_s,
        "chunks": n_chunks,
    }


def _segments(path: str, sample_rate: int, max_file_s: float | None) -> Iterator[np.ndarray]:
    """The file's 16 kHz waveform in pieces of ``SEGMENT_S`` seconds (the last one shorter)."""
    from voxgate.core.audio import iter_audio

    n = int(SEGMENT_S * sample_rate)
    pending: list[np.ndarray] = []
    have = 0
    for block in iter_audio(path, sample_rate, block_s=1.0, max_duration_s=max_file_s):
        pending.append(block)
        have += block.size
        if have >= n:
            joined = np.concatenate(pending)
            while joined.size >= n:
                yield joined[:n]
                joined = joined[n:]
            pending, have = [joined], joined.size
    if have:
        yield np.concatenate(pending)


def _segment_rows(
    speech: np.ndarray, task: dict[str, Any], cfg: FeatureConfig, rng: np.random.Generator,
    first_chunk: int,
) -> dict[str, Any] | None:
    """Chunks, augmented copies and features of one segment's speech (None: no whole chunk);
    chunk indices start at ``first_chunk``. Rows are in creation order (sorted by the caller)."""
    from voxgate.core.chunking import chunk_starts
    from voxgate.core.features import log_mel

    sr, cs = cfg.sample_rate, cfg.chunk_samples
    starts = chunk_starts(speech.size, cs, task["hop_samples"], min_fraction=task["min_fraction"])
    if len(starts) == 0:
        return None
    valid = np.minimum(cs, speech.size - starts)

    def cut(x: np.ndarray, s: int, n: int) -> np.ndarray:
        out = np.zeros(cs, dtype=np.float32)
        out[:n] = x[s : s + n]
        return out

    waves = [cut(speech, int(s), int(v)) for s, v in zip(starts, valid)]
    tags = [0] * len(starts)
    cidx = list(range(len(starts)))
    nvalid = [int(v) for v in valid]
    spec_rows: list[tuple[int, int]] = []  # (clean chunk index, tag)
    augs: list[str] = list(task["augment"])
    if task["train"] and augs:
        plan = _plan_augmentations(len(starts), augs, task["n_aug"], task["extra_copies"], rng)
        speed_cache: dict[str, np.ndarray] = {}
        for i, tag in plan:
            t = AUG_TAGS.index(tag)
            if tag in SPEC_AUGMENTATIONS:
                spec_rows.append((i, t))
                continue
            v = nvalid[i]
            if tag in SPEED_AUGMENTATIONS:
                f = SPEED_AUGMENTATIONS[tag]
                if tag not in speed_cache:
                    speed_cache[tag] = speed_perturb(speech, f)
                w = speed_window(speed_cache[tag], int(starts[i]), f, cs)
                v = int(min(cs, max(1, speed_cache[tag].size - round(starts[i] / f))))
            elif tag == "vtlp":
                w = np.zeros(cs, dtype=np.float32)
                w[:v] = vtlp(waves[i][:v], float(rng.uniform(0.9, 1.1)), sr)
            else:
                w = np.zeros(cs, dtype=np.float32)
                w[:v] = add_noise(waves[i][:v], tag, rng)[0]
            waves.append(w)
            tags.append(t)
            cidx.append(i)
            nvalid.append(v)
    feats = np.concatenate(
        [
            log_mel(np.stack(waves[b : b + _FEATURE_BATCH]), cfg).numpy()
            for b in range(0, len(waves), _FEATURE_BATCH)
        ]
    )
    frames = feats.shape[1]
    lengths = [min(frames, 1 + v // cfg.hop_length) for v in nvalid]
    spec_feats = []
    for i, t in spec_rows:
        if AUG_TAGS[t] == "specaug_time":
            spec_feats.append(random_time_mask(feats[i], rng, valid_frames=lengths[i])[0])
        else:
            spec_feats.append(random_freq_mask(feats[i], rng)[0])
        tags.append(t)
        cidx.append(i)
        lengths.append(lengths[i])
    if spec_feats:
        feats = np.concatenate([feats, np.stack(spec_feats)])
    return {
        "features": feats.astype(np.float16),
        "lengths": np.asarray(lengths, dtype=np.int16),
        "aug": np.asarray(tags, dtype=np.int8),
        "chunk_index": np.asarray(cidx, dtype=np.int32) + first_chunk,
        "chunks": len(starts),
    }


def _plan_augmentations(
    n_chunks: int, augs: list[str], n_aug: int, extra: float, rng: np.random.Generator
) -> list[tuple[int, str]]:
    """(chunk, tag) pairs: ``n_aug`` distinct tags per chunk, plus ``extra`` more on average
    (oversampling; repeats allowed, but never a second identical speed copy)."""
    plan = []
    repeatable = [a for a in augs if a not in SPEED_AUGMENTATIONS]
    for i in range(n_chunks):
        chosen = list(rng.choice(augs, size=min(n_aug, len(augs)), replace=False)) if n_aug else []
        k = int(np.floor(extra) + (rng.random() < extra - np.floor(extra))) if extra > 0 else 0
        if k and repeatable:
            chosen += list(rng.choice(repeatable, size=k, replace=True))
        plan.extend((i, str(t)) for t in chosen)
    return plan


# --------------------------------------------------------------------------- writer


class _GuardedFile:
    """The file object h5py writes through. The first OSError of a write (ENOSPC, EFBIG,
    EIO...) is kept in ``error`` and later writes and truncates are dropped, so HDF5 never
    sees a failed write: its state stays sound, closing works, and the caller raises
    ``error``. (A failed write inside HDF5 left its object ids inconsistent, and the next
    close or garbage collection crashed the interpreter.)"""

    def __init__(self, path: Path):
        self.raw = open(path, "w+b", buffering=0)  # unbuffered: errors surface at the write
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self.error is None:
            try:
                done = 0
                while done < len(view):
                    done += self.raw.write(view[done:]) or 0
            except OSError as exc:
                self.error = exc
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self.raw.truncate(size)
            except OSError as exc:
                self.error = exc
        return size or 0

    def __getattr__(self, name: str) -> Any:  # read, readinto, seek, tell, flush
        return getattr(self.raw, name)


class _Writer:
    """Appends feature rows to a growing HDF5 file; :meth:`check` raises a write error."""

    def __init__(self, path: Path, out: Path, frames: int, n_mels: int, compression: str | None):
        import h5py

        self.out = out
        self.file = _GuardedFile(path)
        self.f = h5py.File(self.file, "w")
        self.n = 0
        kw: dict[str, Any] = {"compression": compression} if compression else {}
        rows = max(1, min(256, (1 << 20) // (frames * n_mels * 2)))
        self.f.create_dataset(
            "features", (0, frames, n_mels), np.float16, maxshape=(None, frames, n_mels),
            chunks=(rows, frames, n_mels), **kw,
        )  # fmt: skip
        self.cols = {
            "lengths": np.int16, "label": np.int8, "speaker": np.int32, "file_id": np.int32,
            "split": np.int8, "aug": np.int8, "chunk_index": np.int32,
        }  # fmt: skip
        for name, dt in self.cols.items():
            self.f.create_dataset(name, (0,), dt, maxshape=(None,), chunks=(8192,), **kw)

    def append(self, res: dict[str, Any], *, file_id: int, speaker: int, label: int, split: int):
        r = len(res["aug"])
        a, b = self.n, self.n + r
        values = {
            "lengths": res["lengths"], "aug": res["aug"], "chunk_index": res["chunk_index"],
            "label": np.full(r, label), "speaker": np.full(r, speaker),
            "file_id": np.full(r, file_id), "split": np.full(r, split),
        }  # fmt: skip
        self.f["features"].resize(b, axis=0)
        self.f["features"][a:b] = res["features"]
        for name, dt in self.cols.items():
            self.f[name].resize(b, axis=0)
            self.f[name][a:b] = np.asarray(values[name], dtype=dt)
        self.n = b
        self.check()

    def check(self) -> None:
        """Raise the first write error as an OSError naming ``out`` (the file the user asked for)."""
        exc = self.file.error
        if exc is not None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.out)) from exc

    def close(self) -> None:
        """Close HDF5, then the file; a write error (also one of the final flush) is raised."""
        try:
            self.f.close()
        finally:
            self.file.raw.close()
        self.check()

    def discard(self) -> None:
        """Close after a failure; errors here must not hide the one being raised."""
        with contextlib.suppress(Exception):
            self.f.close()
        with contextlib.suppress(OSError):
            self.file.raw.close()


def _sources_array(rows: list[dict[str, Any]]) -> np.ndarray:
    import h5py

    s = h5py.string_dtype()
    dt = np.dtype(
        [("path", s), ("speaker", s), ("session", s), ("corpus", s), ("subset", s),
         ("gender", s), ("duration_s", np.float32), ("speech_s", np.float32),
         ("chunks", np.int32), ("split", np.int8)]
    )  # fmt: skip
    arr = np.zeros(len(rows), dtype=dt)
    for i, r in enumerate(rows):
        arr[i] = tuple(r[k] for k in dt.names)
    return arr


def _fingerprint(table: Sequence[SourceFile], splits: Sequence[int], config: dict) -> str:
    h = hashlib.sha256()
    for s, k in zip(table, splits):
        h.update(f"{s.path}\t{s.speaker}\t{s.session}\t{k}\t{s.duration_s or 0:.3f}\n".encode())
    h.update(json.dumps(config, sort_keys=True).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- build


def build_dataset(
    srcs: Sequence[str | Path],
    out: str | Path,
    authorized: Sequence[str],
    config: BuildConfig | None = None,
    *,
    workers: int | None = None,
    progress: bool = False,
    on_file: Callable[[int, int], None] | None = None,
    force: bool = False,
) -> BuildSummary:
    """Build the HDF5 dataset ``out`` from ``srcs``; returns a BuildSummary.

    ``authorized``: speaker ids (full or plain where unambiguous). ``workers``: processes
    (default os.cpu_count(); 1 runs in this process). ``progress``: tqdm bar on stderr.
    ``on_file(done, total)`` is called after each file. ``force``: replace an existing
    ``out`` (never one of the inputs). Before any audio is decoded, refuses (DatasetError) an
    ``out`` that is a folder, an input, an existing file without ``force`` or in a folder it
    cannot write, and a selection with fewer than 2 speakers or no outsider. Raises
    DatasetError / ConfigError, and OSError (naming ``out``) for a write error such as a full
    disk; on any failure or interrupt neither ``out`` nor a temporary file is left behind.
    """
    t0 = time.perf_counter()
    config = config or BuildConfig()
    workers = (os.cpu_count() or 1) if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    if not authorized:
        raise DatasetError("at least one authorized speaker is required")
    out = Path(out)
    _check_out_folder(out)
    fcfg = config.feature_config

    table = collect_sources(srcs, config.subsets)
    _check_out_file(out, srcs, table, force)
    all_ids = sorted({s.speaker for s in table})
    excl, unmatched_excl = resolve_speaker_ids(config.exclude_speakers, all_ids, what="excluded")
    auth, missing = resolve_speaker_ids(authorized, all_ids)
    if missing:
        raise DatasetError(f"authorized speaker(s) {missing} match no speaker in the sources")
    if set(auth) & set(excl):
        raise DatasetError(f"authorized speaker(s) {sorted(set(auth) & set(excl))} are excluded")
    table = [s for s in table if s.speaker not in set(excl)]
    _fill_durations(table)
    table = _limit_per_speaker(
        table, config.max_files_per_speaker, config.max_seconds_per_speaker, config.seed
    )
    splits = assign_splits(table, config.seed)
    speakers = sorted({s.speaker for s in table})
    auth_set = set(auth)
    _check_speakers(speakers, auth_set, "the selection has")
    factor, extra = _oversampling(table, splits, auth_set, config)
    config_dict = {**config.to_dict(), "sources": [str(p) for p in srcs], "authorized": auth}
    config_dict["oversample_factor"] = factor
    fingerprint = _fingerprint(table, splits, config_dict)
    hop = None if config.chunk_hop_s is None else int(round(config.chunk_hop_s * fcfg.sample_rate))
    tasks = [
        {
            "path": str(s.path),
            "feature_config": fcfg.to_dict(),
            "seed": config.seed,
            "vad_aggressiveness": config.vad_aggressiveness,
            "hop_samples": hop,
            "min_fraction": config.min_chunk_fraction,
            "train": k == 0,
            "augment": list(config.augment),
            "n_aug": config.n_aug,
            "extra_copies": extra if s.speaker in auth_set else 0.0,
            "max_file_s": config.max_file_s,
        }  # fmt: skip
        for s, k in zip(table, splits)
    ]
    attrs = {
        "schema_version": SCHEMA_VERSION,
        "feature_config": fcfg.to_json(),
        "authorized": json.dumps(auth),
        "aug_tags": json.dumps(list(AUG_TAGS)),
        "split_names": json.dumps(list(SPLIT_NAMES)),
        "build_config": json.dumps(config_dict, sort_keys=True),
        "fingerprint": fingerprint,
    }
    with atomic_path(out) as tmp:
        res = _write(tmp, out, tasks, table, splits, speakers, auth_set, attrs, config,
                     workers=workers, progress=progress, on_file=on_file)  # fmt: skip
    sources = res["sources"]
    return BuildSummary(
        out=out, counts=res["counts"], n_files=len(table), n_sources=len(sources),
        n_chunks=res["n_chunks"], speakers=res["kept"], authorized=auth,
        skipped=res["skipped"], dropped_speakers=res["dropped"],
        unmatched_excludes=unmatched_excl, audio_hours=res["audio_s"] / 3600.0,
        speech_hours=sum(s["speech_s"] for s in sources) / 3600.0, oversample_factor=factor,
        fingerprint=fingerprint, seconds=time.perf_counter() - t0,
    )  # fmt: skip


def _check_out_folder(out: Path) -> None:
    """``out``'s folder exists and takes a new file (a probe temp file, removed at once)."""
    if not out.parent.is_dir():
        raise DatasetError(f"output folder {out.parent} does not exist")
    if out.is_dir():
        raise DatasetError(f"--out {out} is a folder; give a file name such as {out / 'data.h5'}")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=TEMP_SUFFIX, dir=out.parent)
    except OSError as exc:
        raise DatasetError(
            f"cannot write to {out.parent}: {exc.strerror or exc}"
        ) from exc  # fmt: skip
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def _check_out_file(out: Path, srcs: Sequence[str | Path], table: list[SourceFile], force: bool):
    """Never write over an input (a source folder, manifest or recording); replace an
    existing file only with ``force``."""
    if not out.exists():
        return
    for p in itertools.chain(map(Path, srcs), (s.path for s in table)):
        with contextlib.suppress(OSError):
            if os.path.samefile(p, out):
                raise DatasetError(f"--out {out} is one of the inputs ({p}); choose another file")
    if not force:
        raise DatasetError(f"{out} exists; use --force to replace it")


def _check_speakers(speakers: Sequence[str], auth_set: set[str], what: str) -> None:
    """Training needs two classes: at least 2 speakers, and one that is not authorized."""
    if len(speakers) < 2:
        raise DatasetError(
            f"{what} {len(speakers)} speaker(s) ({', '.join(speakers) or 'none'}); "
            "a dataset needs at least 2"
        )
    if not set(speakers) - auth_set:
        raise DatasetError(
            f"{what} no outsider: every speaker ({', '.join(speakers)}) is authorized; "
            "add recordings of other people"
        )


def _oversampling(table, splits, auth_set: set[str], config: BuildConfig) -> tuple[float, float]:
    """(factor, extra augmented copies per authorized chunk), from train durations before
    any audio is decoded."""
    if not (config.oversample and config.augment):
        return 1.0, 0.0
    d_auth = sum(s.duration_s or 0 for s, k in zip(table, splits) if k == 0 and s.speaker in auth_set)
    d_out = sum(
        s.duration_s or 0 for s, k in zip(table, splits) if k == 0 and s.speaker not in auth_set
    )
    if d_auth <= 0:
        return 1.0, 0.0
    factor = float(np.clip(d_out / d_auth, 1.0, config.oversample_max))
    return factor, (factor - 1.0) * (1 + config.n_aug)


def _no_chunks_message(skipped: list[tuple[str, str]], limit: int = 20) -> str:
    lines = [f"  {path}: {reason}" for path, reason in skipped[:limit]]
    more = f"\n  ... and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return (
        f"no chunks were produced: all {len(skipped)} file(s) were skipped:\n"
        + "\n".join(lines)
        + more
    )


def _write(tmp, out, tasks, table, splits, speakers, auth_set, attrs, config, *, workers,
           progress, on_file) -> dict[str, Any]:  # fmt: skip
    """Process every file and write the HDF5 file ``tmp``; returns what the summary needs."""
    fcfg = config.feature_config
    writer = _Writer(tmp, out, fcfg.frames_per_chunk, fcfg.n_mels, config.compression)
    try:
        spk_index = {s: i for i, s in enumerate(speakers)}
        sources: list[dict[str, Any]] = []
        skipped: list[tuple[str, str]] = []
        audio_s = 0.0
        for n_done, (src, k, res) in enumerate(_run(tasks, table, splits, workers, progress), 1):
            if res["ok"]:
                writer.append(
                    res, file_id=len(sources), speaker=spk_index[src.speaker],
                    label=int(src.speaker in auth_set), split=k,
                )  # fmt: skip
                audio_s += res["duration_s"]
                sources.append(_source_row(src, k, res))
            else:
                skipped.append((str(src.path), res["reason"]))
            if on_file is not None:
                on_file(n_done, len(tasks))
        if writer.n == 0:
            raise DatasetError(_no_chunks_message(skipped))
        kept, dropped, counts = _finish(writer, speakers, auth_set, sources, skipped, attrs)
        n_chunks = writer.n
        writer.close()
    except BaseException:
        writer.discard()
        raise
    return {
        "sources": sources, "skipped": skipped, "audio_s": audio_s, "kept": kept,
        "dropped": dropped, "counts": counts, "n_chunks": n_chunks,
    }  # fmt: skip


def _source_row(src: SourceFile, split: int, res: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": str(src.path), "speaker": src.speaker, "session": src.session,
        "corpus": src.corpus, "subset": src.subset, "gender": src.gender,
        "duration_s": res["duration_s"], "speech_s": res["speech_s"], "chunks": res["chunks"],
        "split": split,
    }  # fmt: skip


def _finish(writer: _Writer, speakers, auth_set, sources, skipped, attrs):
    """Drop speakers that produced no chunk (so every class index has data), write the
    sources table and attributes; returns (kept, dropped, counts)."""
    f = writer.f
    spk_col = f["speaker"][:]
    present = np.unique(spk_col)
    kept = [speakers[i] for i in present]
    dropped = sorted(set(speakers) - set(kept))
    lost_auth = sorted(auth_set & set(dropped))
    if lost_auth:
        raise DatasetError(f"authorized speaker(s) {lost_auth} produced no usable audio")
    _check_speakers(kept, auth_set, "after skipping unusable files, the dataset has")
    remap = np.full(len(speakers), -1, dtype=np.int32)
    remap[present] = np.arange(len(present), dtype=np.int32)
    f["speaker"][:] = remap[spk_col]
    f.create_dataset("sources", data=_sources_array(sources))
    counts = _count(f)
    all_attrs = {
        **attrs, "speakers": json.dumps(kept), "skipped": json.dumps([list(s) for s in skipped])
    }
    for key, value in all_attrs.items():
        f.attrs[key] = value
    f.attrs["complete"] = True
    writer.check()
    return kept, dropped, counts


def _run(tasks, table, splits, workers: int, progress: bool):
    """Yield (source, split, result) in table order, processing files in a spawn Pool."""
    from tqdm import tqdm

    bar = tqdm(
        total=len(tasks), file=sys.stderr, unit="file", desc="build",
        disable=not progress or not sys.stderr.isatty(),
    )  # fmt: skip
    try:
        workers = min(workers, len(tasks))
        if workers <= 1:
            for src, k, task in zip(table, splits, tasks):
                res = process_file(task)
                bar.update()
                yield src, k, res
            return
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
            for src, k, res in zip(table, splits, pool.imap(process_file, tasks, chunksize=1)):
                bar.update()
                yield src, k, res
    finally:
        bar.close()


def _count(f) -> dict[str, dict[str, int]]:
    from .h5data import count_chunks

    return count_chunks(f["label"][:], f["split"][:], f["aug"][:])
