"""Summaries of a dataset file's metadata for ``voxgate dataset info``: a table like the
course report's Table 1 (chunks per split x class), and the same as plain JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .h5schema import SPLIT_NAMES

if TYPE_CHECKING:
    from .h5data import H5Meta

__all__ = ["format_summary", "summary_dict"]


def format_summary(meta: H5Meta) -> str:
    """Human-readable summary like the course report's Table 1 (chunks per split x class)."""
    lines = [f"{meta.path}  ({meta.n_chunks} chunks, fingerprint {meta.fingerprint[:16]})"]
    fc = meta.feature_config
    lines.append(
        f"features: {fc.frames_per_chunk} frames x {fc.n_mels} mels per {fc.chunk_s:g}-s chunk "
        f"(n_fft {fc.n_fft}, hop {fc.hop_length})"
    )
    header = f"{'split':<6} {'authorized':>10} {'outsider':>9} {'total':>8} {'original':>9} {'augmented':>9} {'speakers':>8} {'recordings':>10} {'speech h':>8}"
    lines += ["", header, "-" * len(header)]
    tot: dict[str, float] = {}
    for k, name in enumerate(SPLIT_NAMES):
        c = meta.counts[name]
        srcs = [s for s in meta.sources if s["split"] == k]
        spk = len({s["speaker"] for s in srcs})
        hours = sum(s["speech_s"] for s in srcs) / 3600.0
        lines.append(
            f"{name:<6} {c['authorized']:>10} {c['outsider']:>9} {c['total']:>8} {c['original']:>9} "
            f"{c['augmented']:>9} {spk:>8} {len(srcs):>10} {hours:>8.2f}"
        )
        for key in ("authorized", "outsider", "total", "original", "augmented"):
            tot[key] = tot.get(key, 0) + c[key]
    hours = sum(s["speech_s"] for s in meta.sources) / 3600.0
    lines.append(
        f"{'all':<6} {tot['authorized']:>10} {tot['outsider']:>9} {tot['total']:>8} {tot['original']:>9} "
        f"{tot['augmented']:>9} {len(meta.speakers):>8} {len(meta.sources):>10} {hours:>8.2f}"
    )
    audio_h = sum(s["duration_s"] for s in meta.sources) / 3600.0
    lines += [
        "",
        f"speakers: {len(meta.speakers)} ({len(meta.authorized)} authorized: {', '.join(meta.authorized)})",
        f"audio: {audio_h:.2f} h in {len(meta.sources)} recordings, {hours:.2f} h speech after VAD",
        f"augmentations: {', '.join(meta.build_config.get('augment', []) or ['none'])}",
    ]
    if meta.skipped:
        lines.append(f"skipped {len(meta.skipped)} file(s):")
        lines += [f"  {p}: {reason}" for p, reason in meta.skipped]
    return "\n".join(lines)


def summary_dict(meta: H5Meta) -> dict[str, Any]:
    """JSON-ready summary: counts per split and class, speaker map, authorized, files per split."""
    return {
        "path": str(meta.path),
        "schema_version": meta.schema_version,
        "fingerprint": meta.fingerprint,
        "n_chunks": meta.n_chunks,
        "counts": meta.counts,
        "speakers": {i: s for i, s in enumerate(meta.speakers)},
        "authorized": meta.authorized,
        "aug_tags": meta.aug_tags,
        "feature_config": meta.feature_config.to_dict(),
        "files": {
            name: [s["path"] for s in meta.sources if s["split"] == k]
            for k, name in enumerate(SPLIT_NAMES)
        },
        "skipped": meta.skipped,
        "build_config": meta.build_config,
    }
