"""One dataset-build task: a recording to feature rows (runs in the build's worker processes).

Pipeline per recording: decode in blocks -> 16 kHz mono -> segments of ``SEGMENT_S`` s ->
VAD silence removal -> 1-s chunks -> augmentation (train split only) -> log-mel (float16).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from voxgate.core.config import FeatureConfig
from voxgate.core.errors import AudioError

from .augment import (
    AUG_TAGS,
    CHANNEL_AUGMENTATIONS,
    SPEC_AUGMENTATIONS,
    SPEED_AUGMENTATIONS,
    add_noise,
    random_freq_mask,
    random_time_mask,
    speed_perturb,
    speed_window,
    vtlp,
)
from .augment_channel import channel_augment

__all__ = ["SEGMENT_S", "init_worker", "process_file"]

_FEATURE_BATCH = 256  # chunks per log_mel call
SEGMENT_S = 120.0  # a longer recording is processed in pieces of this many seconds of audio


def init_worker() -> None:
    """Pool initializer: one torch thread per worker process."""
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
    cat = {
        k: np.concatenate([p[k] for p in parts])
        for k in ("features", "lengths", "aug", "chunk_index")
    }
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
    speech: np.ndarray,
    task: dict[str, Any],
    cfg: FeatureConfig,
    rng: np.random.Generator,
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

    waves = [_cut(speech, int(s), int(v), cs) for s, v in zip(starts, valid)]
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
            w, v = _wave_copy(
                tag, waves[i], nvalid[i], speech, int(starts[i]), speed_cache, sr, rng
            )
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
    spec_feats = [_spec_copy(AUG_TAGS[t], feats[i], lengths[i], rng) for i, t in spec_rows]
    tags += [t for _, t in spec_rows]
    cidx += [i for i, _ in spec_rows]
    lengths += [lengths[i] for i, _ in spec_rows]
    if spec_feats:
        feats = np.concatenate([feats, np.stack(spec_feats)])
    return {
        "features": feats.astype(np.float16),
        "lengths": np.asarray(lengths, dtype=np.int16),
        "aug": np.asarray(tags, dtype=np.int8),
        "chunk_index": np.asarray(cidx, dtype=np.int32) + first_chunk,
        "chunks": len(starts),
    }


def _cut(x: np.ndarray, start: int, n: int, size: int) -> np.ndarray:
    """``n`` samples of ``x`` from ``start``, zero-padded to ``size`` (float32)."""
    out = np.zeros(size, dtype=np.float32)
    out[:n] = x[start : start + n]
    return out


def _spec_copy(tag: str, feats: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """One SpecAugment copy (T, M) of a chunk's features with ``length`` valid frames."""
    if tag == "specaug_time":
        return random_time_mask(feats, rng, valid_frames=length)[0]
    return random_freq_mask(feats, rng)[0]


def _wave_copy(
    tag: str,
    chunk: np.ndarray,
    v: int,
    speech: np.ndarray,
    start: int,
    speed_cache: dict[str, np.ndarray],
    sr: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """One augmented copy of a chunk by a waveform tag: (float32 (len(chunk),), valid
    samples). ``chunk`` has ``v`` valid samples and starts at ``start`` in ``speech``; speed
    copies are cut from the whole segment perturbed once (``speed_cache``)."""
    cs = chunk.size
    if tag in SPEED_AUGMENTATIONS:
        f = SPEED_AUGMENTATIONS[tag]
        if tag not in speed_cache:
            speed_cache[tag] = speed_perturb(speech, f)
        w = speed_window(speed_cache[tag], start, f, cs)
        return w, int(min(cs, max(1, speed_cache[tag].size - round(start / f))))
    w = np.zeros(cs, dtype=np.float32)
    if tag in CHANNEL_AUGMENTATIONS:
        w[:v] = channel_augment(tag, chunk[:v], rng, sr)
    elif tag == "vtlp":
        w[:v] = vtlp(chunk[:v], float(rng.uniform(0.9, 1.1)), sr)
    else:
        w[:v] = add_noise(chunk[:v], tag, rng)[0]
    return w, v


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
