"""Peak memory of decoding a long file, measured in a fresh process (used by test_memory.py
and for docs/benchmarks.md "Memory").

    python tests/memory_probe.py write FILE SECONDS [RATE CHANNELS]   # a sparse silent WAV
    python tests/memory_probe.py source|load|build|whole FILE [--as-headroom-mb N]
    python tests/memory_probe.py cli -- voxgate ARGS...               # peak RSS of a command

``source`` plays FILE through FileSource, ``load`` calls load_audio, ``build`` runs
process_file (one dataset-build worker task) on it, ``whole`` reads it at once with
soundfile (what load_audio did before it decoded in blocks). Prints one JSON line: peak RSS in MB
(ru_maxrss), seconds of 16 kHz audio produced, and the RLIMIT_AS set, if any. With
``--as-headroom-mb N`` the address space is capped at N MB above what the process uses after
its imports and a warm-up on a short file, so holding the whole file fails with MemoryError.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
from pathlib import Path


def write_sparse_wav(path: Path, seconds: float, rate: int = 48000, channels: int = 2) -> Path:
    """A 16-bit PCM WAV of digital silence whose data is a sparse hole: an hour at 48 kHz
    stereo (691 MB) takes no disk space and no time to write."""
    data_bytes = int(seconds * rate) * channels * 2
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2,
                                    channels * 2, 16)  # fmt: skip
    header += b"data" + struct.pack("<I", data_bytes)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.truncate(len(header) + data_bytes)
    return path


def _vm_size_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux: kB


def _run(mode: str, path: str) -> float:
    """Decode ``path`` as ``mode`` does; returns seconds of 16 kHz audio produced."""
    if mode == "source":
        from voxgate.core.sources import FileSource

        src = FileSource(path, block_s=0.032)
        src.start()
        n = 0
        while not src.finished:
            block = src.read(0.1)
            n += 0 if block is None else block.size
        return n / 16000
    if mode == "whole":  # what load_audio and FileSource did before: the file at once
        import soundfile as sf

        return sf.read(path, dtype="float32")[0].shape[0] / sf.info(path).samplerate
    if mode == "load":
        from voxgate.core.audio import load_audio

        return load_audio(path, max_duration_s=None).size / 16000
    if mode == "build":
        from voxgate.core.config import FeatureConfig
        from voxgate.training.build import process_file

        task = {
            "path": path, "feature_config": FeatureConfig.preset("report").to_dict(), "seed": 0,
            "vad_aggressiveness": 2, "hop_samples": None, "min_fraction": 0.5, "train": True,
            "augment": [], "n_aug": 0, "extra_copies": 0.0, "max_file_s": None,
        }  # fmt: skip
        res = process_file(task)
        return float(res.get("duration_s", 0.0))
    raise SystemExit(f"unknown mode {mode!r}")


def main(argv: list[str]) -> int:
    if argv[0] == "write":
        rate = int(argv[3]) if len(argv) > 3 else 48000
        channels = int(argv[4]) if len(argv) > 4 else 2
        write_sparse_wav(Path(argv[1]), float(argv[2]), rate, channels)
        return 0
    if argv[0] == "cli":
        cmd = argv[argv.index("--") + 1 :]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        print(json.dumps({"peak_rss_mb": round(_peak_rss_mb(resource.RUSAGE_CHILDREN), 1),
                          "rc": proc.returncode, "stderr": proc.stderr[-500:]}))  # fmt: skip
        return 0
    mode, path = argv[0], argv[1]
    limit = None
    if "--as-headroom-mb" in argv:
        headroom = int(argv[argv.index("--as-headroom-mb") + 1]) << 20
        with tempfile.TemporaryDirectory() as tmp:  # warm-up: imports, first allocations
            _run(mode, str(write_sparse_wav(Path(tmp) / "short.wav", 2.0)))
        limit = _vm_size_bytes() + headroom
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    seconds = _run(mode, path)
    print(json.dumps({"mode": mode, "peak_rss_mb": round(_peak_rss_mb(), 1),
                      "seconds": round(seconds, 2),
                      "rlimit_as_mb": None if limit is None else limit >> 20}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.fspath(Path(__file__).resolve().parents[1]))
    sys.exit(main(sys.argv[1:]))
