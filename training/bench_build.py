"""``bench build-throughput``: hours of audio per wall-clock minute of the dataset builder."""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

from voxgate.core.errors import ConfigError, DatasetError

from .bench_common import add_threads_out, emit, shared_data, torch_threads

__all__ = ["measure_build_throughput", "add_build_throughput", "cmd_build_throughput"]


def measure_build_throughput(
    *,
    files: int = 8,
    speakers: int = 2,
    subset: str = "test-clean",
    manifest: str | Path | None = None,
    preset: str = "report",
    workers: int = 1,
    threads: int = 1,
) -> dict[str, Any]:
    """Time ``build_dataset`` (default BuildConfig but ``preset``) on ``files`` recordings.

    The files come round-robin from the first ``speakers`` speakers of ``subset`` in
    ``manifest`` (default: the shared data's manifest.csv), written to a temporary manifest;
    the first speaker is authorized. The builder does not store its timing in the HDF5
    file, so this runs a build into a temporary folder. Returns hours of audio per minute.
    """
    import tempfile

    from .build import BuildConfig, build_dataset

    if files < 1 or speakers < 1:
        raise ConfigError("files and speakers must be >= 1")
    src = Path(manifest) if manifest else shared_data() / "manifest.csv"
    chosen = _choose_rows(src, subset, files, speakers)
    with tempfile.TemporaryDirectory() as tmp, torch_threads(threads) as n_threads:
        tmp_manifest = Path(tmp) / "bench.csv"
        with open(tmp_manifest, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(chosen[0]))
            writer.writeheader()
            for r in chosen:
                writer.writerow({**r, "path": str((src.parent / r["path"]).resolve())})
        out_path = Path(tmp) / "bench.h5"
        summary = build_dataset(
            [tmp_manifest], out_path, [chosen[0]["speaker"]],
            BuildConfig(feature_preset=preset), workers=workers,
        )  # fmt: skip
        size_mb = out_path.stat().st_size / 1e6
    return {
        "bench": "build-throughput",
        "hours_per_minute": summary.hours_per_minute,
        "audio_hours": summary.audio_hours,
        "speech_hours": summary.speech_hours,
        "seconds": summary.seconds,
        "x_realtime": summary.audio_hours * 3600.0 / max(summary.seconds, 1e-9),
        "files": len(chosen),
        "sources": summary.n_sources,
        "speakers": len(summary.speakers),
        "chunks": summary.n_chunks,
        "skipped": len(summary.skipped),
        "size_mb": size_mb,
        "preset": preset,
        "subset": subset,
        "workers": workers,
        "threads": n_threads,
        "source": "timed build (the HDF5 file stores no build timing)",
    }


def _choose_rows(src: Path, subset: str, files: int, speakers: int) -> list[dict[str, str]]:
    """``files`` manifest rows of ``subset`` whose file exists, round-robin over the first
    ``speakers`` speakers; DatasetError when the manifest or every such file is missing."""
    if not src.is_file():
        raise DatasetError(f"no manifest at {src}")
    with open(src, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("subset") == subset]
    by_spk: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if (src.parent / r["path"]).is_file():
            by_spk[r["speaker"]].append(r)
    spk = list(by_spk)[:speakers]
    chosen: list[dict[str, str]] = []
    for i in range(files):
        pool = [s for s in spk if len(by_spk[s]) > i // len(spk)] if spk else []
        if not pool:
            break
        chosen.append(by_spk[pool[i % len(pool)]][i // len(spk)])
    if not chosen:
        raise DatasetError(f"no existing files of subset {subset!r} in {src}")
    return chosen[:files]


def add_build_throughput(p: argparse.ArgumentParser) -> None:
    p.add_argument("--files", type=int, default=8, help="recordings to build from")
    p.add_argument("--speakers", type=int, default=2, help="speakers the files come from")
    p.add_argument("--subset", default="test-clean", help="manifest subset")
    p.add_argument("--manifest", help="manifest.csv (default: the shared data's)")
    p.add_argument("--features", choices=("report", "speaker"), default="report")
    p.add_argument("--workers", type=int, default=1, help="build processes (1: in process)")
    add_threads_out(p)


def cmd_build_throughput(args: argparse.Namespace) -> int:
    result = measure_build_throughput(
        files=args.files, speakers=args.speakers, subset=args.subset, manifest=args.manifest,
        preset=args.features, workers=args.workers, threads=args.threads,
    )  # fmt: skip
    return emit(result, args.out)
