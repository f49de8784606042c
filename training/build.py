"""Build the augmented HDF5 chunk dataset from speaker folders or manifest CSVs.

Here: sources, speaker ids, the per-recording split, checks made before any work, and the
build loop. Each recording becomes feature rows in ``build_worker.process_file`` (worker
processes); rows are written by ``h5write.ChunkWriter``. The file is written beside ``out``
as a temp file (``voxgate.core.fileio.atomic_path``) and renamed only when complete; on any
failure, interrupt or SIGTERM nothing is left at or beside ``out``, and a full disk is an
OSError naming ``out`` (never a broken HDF5 library state, which used to end in a
segmentation fault).
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.core.config import FeatureConfig, dataclass_from_dict
from voxgate.core.errors import ConfigError, DatasetError
from voxgate.core.fileio import TEMP_SUFFIX, atomic_path
from voxgate.training.speakers import speaker_id, subset_matches

from .augment import AUG_TAGS, DEFAULT_AUGMENTATIONS, KNOWN_AUGMENTATIONS, parse_augmentations
from .build_worker import init_worker, process_file
from .h5schema import SCHEMA_VERSION, SPLIT_NAMES
from .h5write import ChunkWriter, sources_array

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

SPLIT_TARGETS = (0.8, 0.1, 0.1)


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
        unknown = sorted(set(self.augment) - set(KNOWN_AUGMENTATIONS))
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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildConfig:
        """BuildConfig from plain data (a JSON config, ``--set`` overrides): unknown keys and
        wrong types raise ConfigError; ``augment`` may be "a,b", "all", "none" or a list."""
        data = dict(data)
        special = {k: data.pop(k) for k in ("augment", "aug_per_chunk") if k in data}
        if "augment" in special:
            special["augment"] = parse_augmentations(special["augment"])
        if isinstance(data.get("subsets"), list):
            data["subsets"] = tuple(data["subsets"])
        try:
            return dataclasses.replace(dataclass_from_dict(cls, data), **special)
        except TypeError as exc:
            raise ConfigError(f"BuildConfig: {exc}") from exc

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
    writer = ChunkWriter(tmp, out, fcfg.frames_per_chunk, fcfg.n_mels, config.compression)
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


def _finish(writer: ChunkWriter, speakers, auth_set, sources, skipped, attrs):
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
    f.create_dataset("sources", data=sources_array(sources))
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

        with mp.get_context("spawn").Pool(workers, initializer=init_worker) as pool:
            for src, k, res in zip(table, splits, pool.imap(process_file, tasks, chunksize=1)):
                bar.update()
                yield src, k, res
    finally:
        bar.close()


def _count(f) -> dict[str, dict[str, int]]:
    from .h5data import count_chunks

    return count_chunks(f["label"][:], f["split"][:], f["aug"][:])
