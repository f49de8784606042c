"""Bounded memory on long files, measured in fresh processes (tests/memory_probe.py): under
an RLIMIT_AS cap that a whole 10-min 48 kHz stereo file does not fit in, FileSource,
load_audio and a dataset-build task still decode it; ``voxgate verify`` peaks no higher on
it than on a short file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from memory_probe import write_sparse_wav

PROBE = Path(__file__).with_name("memory_probe.py")
HEADROOM_MB = 150  # the whole file: 10 min x 48 kHz x 2 ch x 4 B = 230 MB as float32
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS, /proc")


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory) -> Path:
    return write_sparse_wav(tmp_path_factory.mktemp("mem") / "long.wav", 600.0, 48000, 2)


def probe(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PROBE), *args], capture_output=True, text=True, timeout=timeout
    )


def test_the_cap_is_too_small_for_the_whole_file(long_wav) -> None:
    """Reading the file at once (what load_audio and FileSource did) fails under the cap."""
    proc = probe("whole", str(long_wav), "--as-headroom-mb", str(HEADROOM_MB))
    assert proc.returncode != 0 and "MemoryError" in proc.stderr


@pytest.mark.parametrize(("mode", "seconds"), [("source", 600.0), ("load", 600.0), ("build", 0.0)])
def test_long_file_decodes_under_the_cap(long_wav, mode, seconds) -> None:
    proc = probe(mode, str(long_wav), "--as-headroom-mb", str(HEADROOM_MB))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["seconds"] == pytest.approx(seconds, abs=0.01)  # build: silence has no speech
    assert out["rlimit_as_mb"] is not None


@pytest.mark.slow
def test_verify_on_a_long_file_peaks_like_on_a_short_one(tmp_path, long_wav) -> None:
    short = write_sparse_wav(tmp_path / "short.wav", 5.0, 48000, 2)
    peaks = {}
    for name, path in (("short", short), ("long", long_wav)):
        proc = probe("cli", "--", sys.executable, "-m", "voxgate", "verify", "--untrained",
                     "--profiles", str(tmp_path / "profiles"), "--no-lockout", "--file",
                     str(path))  # fmt: skip
        out = json.loads(proc.stdout)
        assert out["rc"] == 4, out["stderr"]  # silence: undecided, after the whole file
        peaks[name] = out["peak_rss_mb"]
    assert peaks["long"] - peaks["short"] < 50, peaks
