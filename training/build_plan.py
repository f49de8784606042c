"""The plan of a dataset build, made before any audio is decoded: which recordings (the
selection: excludes, per-speaker limits), which split each goes to (by recording, or by
whole sessions), the authorized class's oversampling, one worker task per recording and the
file's attributes and fingerprint."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import zlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voxgate.core.errors import DatasetError

from .augment import AUG_TAGS
from .h5schema import SCHEMA_VERSION, SPLIT_NAMES
from .recordings import SourceFile

if TYPE_CHECKING:
    from .build import BuildConfig

__all__ = ["BuildPlan", "plan_build", "resolve_speaker_ids", "assign_splits", "check_speakers"]

SPLIT_TARGETS = (0.8, 0.1, 0.1)


@dataclasses.dataclass
class BuildPlan:
    """What a build will do. ``table``: the selected recordings sorted by (speaker, path),
    ``splits`` their split index (0 train, 1 val, 2 test); ``tasks``: one build_worker task per
    recording; ``attrs``: the HDF5 attributes known before the build (all but the kept
    speakers and the skipped files)."""

    table: list[SourceFile]
    splits: list[int]
    speakers: list[str]
    authorized: list[str]
    unmatched_excludes: list[str]
    oversample_factor: float
    tasks: list[dict[str, Any]]
    attrs: dict[str, str]
    fingerprint: str


def plan_build(
    table: list[SourceFile],
    srcs: Sequence[str | Path],
    authorized: Sequence[str],
    config: BuildConfig,
) -> BuildPlan:
    """Plan a build of ``table`` (collect_sources of ``srcs``): resolve the excluded and
    ``authorized`` ids, read missing durations, apply the per-speaker limits, assign splits
    and oversampling. DatasetError for an authorized id that matches no speaker or is
    excluded, and for a selection with fewer than 2 speakers or no outsider."""
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
    check_speakers(speakers, set(auth), "the selection has")
    factor, extra = _oversampling(table, splits, set(auth), config)
    config_dict = {**config.to_dict(), "sources": [str(p) for p in srcs], "authorized": auth}
    config_dict["oversample_factor"] = factor
    fingerprint = _fingerprint(table, splits, config_dict)
    attrs = {
        "schema_version": SCHEMA_VERSION,
        "feature_config": config.feature_config.to_json(),
        "authorized": json.dumps(auth),
        "aug_tags": json.dumps(list(AUG_TAGS)),
        "split_names": json.dumps(list(SPLIT_NAMES)),
        "build_config": json.dumps(config_dict, sort_keys=True),
        "fingerprint": fingerprint,
    }
    tasks = [_task(s, k, config, extra if s.speaker in set(auth) else 0.0)
             for s, k in zip(table, splits)]  # fmt: skip
    return BuildPlan(table, splits, speakers, auth, unmatched_excl, factor, tasks, attrs,
                     fingerprint)  # fmt: skip


def _task(src: SourceFile, split: int, config: BuildConfig, extra: float) -> dict[str, Any]:
    """The build_worker.process_file task of one recording (plain data: it crosses processes)."""
    fcfg = config.feature_config
    hop = None if config.chunk_hop_s is None else int(round(config.chunk_hop_s * fcfg.sample_rate))
    return {
        "path": str(src.path),
        "feature_config": fcfg.to_dict(),
        "seed": config.seed,
        "vad_aggressiveness": config.vad_aggressiveness,
        "hop_samples": hop,
        "min_fraction": config.min_chunk_fraction,
        "train": split == 0,
        "augment": list(config.augment),
        "n_aug": config.n_aug,
        "extra_copies": extra,
        "max_file_s": config.max_file_s,
    }


# --------------------------------------------------------------------------- selection


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


def check_speakers(speakers: Sequence[str], auth_set: set[str], what: str) -> None:
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


def _oversampling(
    table: Sequence[SourceFile], splits: Sequence[int], auth_set: set[str], config: BuildConfig
) -> tuple[float, float]:
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
