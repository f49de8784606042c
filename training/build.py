"""Build the augmented HDF5 chunk dataset from speaker folders or manifest CSVs:
plan -> run -> finalise.

``build_dataset`` checks the output, reads the sources (``recordings.collect_sources``),
plans the build (``build_plan.plan_build``: selection, splits, oversampling, tasks), runs
every recording through ``build_worker.process_file`` (worker processes) into
``h5write.ChunkWriter``, and finalises the file (speakers without chunks dropped, sources
table, attributes). The file is written beside ``out`` as a temp file
(``voxgate.core.fileio.atomic_path``) and renamed only when complete; on any failure,
interrupt or SIGTERM nothing is left at or beside ``out``, and a full disk is an OSError
naming ``out`` (never a broken HDF5 library state, which used to end in a segmentation
fault). ``BuildConfig`` and ``BuildSummary`` live here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.core.config import FeatureConfig, dataclass_from_dict
from voxgate.core.errors import ConfigError, DatasetError
from voxgate.core.fileio import TEMP_SUFFIX, atomic_path

from .augment import DEFAULT_AUGMENTATIONS, KNOWN_AUGMENTATIONS, parse_augmentations
from .build_plan import BuildPlan, assign_splits, check_speakers, plan_build, resolve_speaker_ids
from .build_worker import init_worker, process_file
from .h5schema import SCHEMA_VERSION, SPLIT_NAMES
from .h5write import ChunkWriter, sources_array
from .recordings import SourceFile, collect_sources

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
    table = collect_sources(srcs, config.subsets)
    _check_out_file(out, srcs, table, force)
    plan = plan_build(table, srcs, authorized, config)
    with atomic_path(out) as tmp:
        res = _write(tmp, out, plan, config, workers=workers, progress=progress, on_file=on_file)
    sources = res["sources"]
    return BuildSummary(
        out=out, counts=res["counts"], n_files=len(plan.table), n_sources=len(sources),
        n_chunks=res["n_chunks"], speakers=res["kept"], authorized=plan.authorized,
        skipped=res["skipped"], dropped_speakers=res["dropped"],
        unmatched_excludes=plan.unmatched_excludes, audio_hours=res["audio_s"] / 3600.0,
        speech_hours=sum(s["speech_s"] for s in sources) / 3600.0,
        oversample_factor=plan.oversample_factor, fingerprint=plan.fingerprint,
        seconds=time.perf_counter() - t0,
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


def _no_chunks_message(skipped: list[tuple[str, str]], limit: int = 20) -> str:
    lines = [f"  {path}: {reason}" for path, reason in skipped[:limit]]
    more = f"\n  ... and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return (
        f"no chunks were produced: all {len(skipped)} file(s) were skipped:\n"
        + "\n".join(lines)
        + more
    )


def _write(
    tmp: Path, out: Path, plan: BuildPlan, config: BuildConfig, *, workers: int, progress: bool,
    on_file: Callable[[int, int], None] | None,
) -> dict[str, Any]:  # fmt: skip
    """Run: process every file and write the HDF5 file ``tmp``, then finalise it; returns
    what the summary needs."""
    fcfg = config.feature_config
    writer = ChunkWriter(tmp, out, fcfg.frames_per_chunk, fcfg.n_mels, config.compression)
    auth_set = set(plan.authorized)
    try:
        spk_index = {s: i for i, s in enumerate(plan.speakers)}
        sources: list[dict[str, Any]] = []
        skipped: list[tuple[str, str]] = []
        audio_s = 0.0
        for n_done, (src, k, res) in enumerate(_run(plan, workers, progress), 1):
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
                on_file(n_done, len(plan.tasks))
        if writer.n == 0:
            raise DatasetError(_no_chunks_message(skipped))
        kept, dropped, counts = _finish(writer, plan.speakers, auth_set, sources, skipped,
                                        plan.attrs)  # fmt: skip
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


def _finish(
    writer: ChunkWriter, speakers: list[str], auth_set: set[str], sources: list[dict[str, Any]],
    skipped: list[tuple[str, str]], attrs: dict[str, str],
) -> tuple[list[str], list[str], dict[str, dict[str, int]]]:  # fmt: skip
    """Finalise: drop speakers that produced no chunk (so every class index has data), write the
    sources table and attributes; returns (kept, dropped, counts)."""
    f = writer.f
    spk_col = f["speaker"][:]
    present = np.unique(spk_col)
    kept = [speakers[i] for i in present]
    dropped = sorted(set(speakers) - set(kept))
    lost_auth = sorted(auth_set & set(dropped))
    if lost_auth:
        raise DatasetError(f"authorized speaker(s) {lost_auth} produced no usable audio")
    check_speakers(kept, auth_set, "after skipping unusable files, the dataset has")
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


def _run(plan: BuildPlan, workers: int, progress: bool) -> Iterator[tuple[SourceFile, int, dict]]:
    """Yield (source, split, result) in table order, processing files in a spawn Pool."""
    from tqdm import tqdm

    tasks = plan.tasks
    bar = tqdm(
        total=len(tasks), file=sys.stderr, unit="file", desc="build",
        disable=not progress or not sys.stderr.isatty(),
    )  # fmt: skip
    try:
        workers = min(workers, len(tasks))
        if workers <= 1:
            for src, k, task in zip(plan.table, plan.splits, tasks):
                res = process_file(task)
                bar.update()
                yield src, k, res
            return
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers, initializer=init_worker) as pool:
            results = pool.imap(process_file, tasks, chunksize=1)
            for src, k, res in zip(plan.table, plan.splits, results):
                bar.update()
                yield src, k, res
    finally:
        bar.close()


def _count(f) -> dict[str, dict[str, int]]:
    from .h5data import count_chunks

    return count_chunks(f["label"][:], f["split"][:], f["aug"][:])
