"""Dataset build under failure: inputs never overwritten, full/read-only disks, SIGTERM, bad
and partial files, manifests with a BOM, selections that cannot train. Nothing is ever left
at or beside --out after a failure, and the CLI prints one ``voxgate: error:`` line."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import white_noise, write_voice_folders, write_wav
from voxgate.cli import main
from voxgate.core.errors import DatasetError
from voxgate.training import build, build_worker, h5write
from voxgate.training.build import BuildConfig, build_dataset

FAST = BuildConfig(augment=())
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    voices = (("ann", 220.0, 2), ("ben", 110.0, 2), ("cid", 160.0, 2))
    return write_voice_folders(tmp_path_factory.mktemp("c"), voices, seconds=1.3)


@pytest.fixture(scope="module")
def dataset(corpus, tmp_path_factory) -> Path:
    """A finished dataset (its bytes are compared after failed rebuilds over it)."""
    out = tmp_path_factory.mktemp("done") / "data.h5"
    build_dataset([corpus], out, ["ann"], FAST, workers=1)
    return out


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def counting(monkeypatch) -> list[str]:
    """Record every file the build decodes (to prove a refusal came before any work)."""
    seen: list[str] = []
    real = build.process_file

    def spy(task):
        seen.append(task["path"])
        return real(task)

    monkeypatch.setattr(build, "process_file", spy)
    return seen


# --------------------------------------------------------------------------- --out


def test_out_that_is_an_input_is_refused_even_with_force(tmp_path, corpus, monkeypatch) -> None:
    seen = counting(monkeypatch)
    manifest = tmp_path / "m.csv"
    rows = [f"{p.parent.name},{p}" for p in sorted(corpus.rglob("*.wav"))]
    manifest.write_text("speaker,path\n" + "\n".join(rows) + "\n")
    before = manifest.read_bytes()
    with pytest.raises(DatasetError, match="is one of the inputs"):
        build_dataset([manifest], manifest, ["ann"], FAST, workers=1, force=True)
    assert manifest.read_bytes() == before
    wav = corpus / "ben" / "0.wav"
    wav_bytes = wav.read_bytes()
    with pytest.raises(DatasetError, match=r"one of the inputs \(.*0\.wav\)"):
        build_dataset([corpus], wav, ["ann"], FAST, workers=1, force=True)
    assert wav.read_bytes() == wav_bytes
    with pytest.raises(DatasetError, match="is a folder"):
        build_dataset([corpus], tmp_path, ["ann"], FAST, workers=1)
    assert seen == [] and names(tmp_path) == ["m.csv"]


def test_existing_out_is_replaced_only_with_force(tmp_path, corpus, dataset, capsys) -> None:
    out = tmp_path / "data.h5"
    out.write_bytes(dataset.read_bytes())
    rc = main(["dataset", "build", str(corpus), "--out", str(out), "--authorized", "ben",
               "--workers", "1", "--quiet", "--augment", "none"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and err == f"voxgate: error: {out} exists; use --force to replace it\n"
    assert out.read_bytes() == dataset.read_bytes()
    rc = main(["dataset", "build", str(corpus), "--out", str(out), "--authorized", "ben",
               "--workers", "1", "--quiet", "--augment", "none", "--force", "--json"])  # fmt: skip
    assert rc == 0 and names(tmp_path) == ["data.h5"]
    with h5py.File(out, "r") as f:
        assert f.attrs["authorized"] == '["ben"]'


def test_unwritable_folder_is_refused_before_any_work(tmp_path, corpus, monkeypatch) -> None:
    seen = counting(monkeypatch)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / ".x.vxtmp"))

    monkeypatch.setattr(build.tempfile, "mkstemp", read_only)
    with pytest.raises(DatasetError, match=f"cannot write to {tmp_path}: Read-only file system"):
        build_dataset([corpus], tmp_path / "d.h5", ["ann"], FAST, workers=1)
    assert seen == []


# --------------------------------------------------------------------------- disk errors


class FailingRaw:
    """Stands in for the temp file: accepts ``budget`` bytes, then fails with ``err``."""

    def __init__(self, raw, budget: int, err: int):
        self.raw, self.budget, self.err = raw, budget, err

    def write(self, data) -> int:
        n = len(memoryview(data).cast("B"))
        if self.budget < n:
            raise OSError(self.err, os.strerror(self.err))
        self.budget -= n
        return self.raw.write(data)

    def __getattr__(self, name):
        return getattr(self.raw, name)


def fail_writes_after(monkeypatch, budget: int, err: int = errno.ENOSPC) -> None:
    real_init = h5write.GuardedFile.__init__

    def init(self, path):
        real_init(self, path)
        self.raw = FailingRaw(self.raw, budget, err)

    monkeypatch.setattr(h5write.GuardedFile, "__init__", init)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.9])
def test_full_disk_is_one_line_and_leaves_the_old_file(
    tmp_path, corpus, dataset, monkeypatch, capsys, fraction
) -> None:
    """The disk fills after ``fraction`` of the dataset's size (0.9: during the final flush)."""
    out = tmp_path / "data.h5"
    out.write_bytes(dataset.read_bytes())
    fail_writes_after(monkeypatch, int(fraction * dataset.stat().st_size))
    rc = main(["dataset", "build", str(corpus), "--out", str(out), "--authorized", "ben",
               "--workers", "1", "--quiet", "--augment", "none", "--force"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and err == f"voxgate: error: {out}: No space left on device\n"
    assert names(tmp_path) == ["data.h5"] and out.read_bytes() == dataset.read_bytes()


def test_cleanup_failing_on_a_read_only_disk_does_not_hide_the_error(
    tmp_path, corpus, monkeypatch, capsys
) -> None:
    from voxgate.core import fileio

    fail_writes_after(monkeypatch, 0, errno.ENOSPC)

    def unlink_fails(path, *a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(fileio.os, "unlink", unlink_fails)
    out = tmp_path / "d.h5"
    rc = main(["dataset", "build", str(corpus), "--out", str(out), "--authorized", "ann",
               "--workers", "1", "--quiet", "--augment", "none"])  # fmt: skip
    assert rc == 1
    assert capsys.readouterr().err == f"voxgate: error: {out}: No space left on device\n"


def run_script(code: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip


@pytest.mark.parametrize("limit", [4096, 40_000])
def test_file_size_limit_in_hdf5_no_segfault(tmp_path, corpus, dataset, limit) -> None:
    """RLIMIT_FSIZE makes the real HDF5 writes fail (EFBIG) as a full disk does; this used to
    end in a segmentation fault (exit 139) with a temp file left beside --out."""
    out = tmp_path / "data.h5"
    out.write_bytes(dataset.read_bytes())
    code = """
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        lim = int(sys.argv[1])
        resource.setrlimit(resource.RLIMIT_FSIZE, (lim, lim))
        from voxgate.cli import main
        sys.exit(main(["dataset", "build", sys.argv[2], "--out", sys.argv[3], "--force",
                       "--authorized", "ben", "--workers", "1", "--quiet", "--augment", "none"]))
    """
    proc = run_script(code, str(limit), str(corpus), str(out))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == f"voxgate: error: {out}: File too large\n"
    assert names(tmp_path) == ["data.h5"] and out.read_bytes() == dataset.read_bytes()


def test_sigterm_is_handled_like_ctrl_c(tmp_path, corpus, dataset) -> None:
    out = tmp_path / "data.h5"
    out.write_bytes(dataset.read_bytes())
    code = """
        import os, signal, sys
        from voxgate.training import build
        real, calls = build.process_file, []

        def process_file(task):  # SIGTERM arrives while the temp file is half written
            calls.append(task)
            if len(calls) == 3:
                os.kill(os.getpid(), signal.SIGTERM)
            return real(task)

        build.process_file = process_file
        from voxgate.cli import main
        sys.exit(main(["dataset", "build", sys.argv[1], "--out", sys.argv[2], "--force",
                       "--authorized", "ann", "--workers", "1", "--quiet", "--augment", "none"]))
    """
    proc = run_script(code, str(corpus), str(out))
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    assert proc.stderr == "voxgate: terminated\n"
    assert names(tmp_path) == ["data.h5"] and out.read_bytes() == dataset.read_bytes()


# --------------------------------------------------------------------------- selections


def test_one_speaker_or_no_outsider_is_refused_before_any_work(tmp_path, corpus, monkeypatch):
    seen = counting(monkeypatch)
    with pytest.raises(DatasetError, match="the selection has 1 speaker"):
        build_dataset([corpus], tmp_path / "a.h5", ["ann"],
                      BuildConfig(augment=(), exclude_speakers=("ben", "cid")), workers=1)  # fmt: skip
    with pytest.raises(DatasetError, match="no outsider: every speaker .* is authorized"):
        build_dataset([corpus], tmp_path / "b.h5", ["ann", "ben", "cid"], FAST, workers=1)
    assert seen == [] and names(tmp_path) == []


def test_outsiders_without_usable_audio_are_refused_after_the_build(tmp_path) -> None:
    src = write_voice_folders(tmp_path / "c", (("ann", 220.0, 2), ("cid", 160.0, 2)), seconds=1.3)
    (src / "ben").mkdir()
    write_wav(src / "ben", "quiet.wav", np.zeros(16000, np.float32))  # no speech: skipped
    with pytest.raises(DatasetError, match="after skipping unusable files.* no outsider"):
        build_dataset([src], tmp_path / "d.h5", ["ann", "cid"], FAST, workers=1)
    with pytest.raises(DatasetError, match=r"the dataset has 1 speaker\(s\) \(ann\)"):
        build_dataset([src], tmp_path / "e.h5", ["ann"], BuildConfig(augment=(),
                      exclude_speakers=("cid",)), workers=1)  # fmt: skip
    assert names(tmp_path) == ["c"]


def test_manifest_with_a_utf8_bom(tmp_path, corpus) -> None:
    manifest = tmp_path / "bom.csv"
    rows = [f"{p.parent.name},{p}" for p in sorted(corpus.rglob("*.wav"))]
    manifest.write_bytes(("speaker,path\n" + "\n".join(rows) + "\n").encode("utf-8-sig"))
    assert manifest.read_bytes().startswith(b"\xef\xbb\xbf")
    summary = build_dataset([manifest], tmp_path / "d.h5", ["ann"], FAST, workers=1)
    assert summary.speakers == ["ann", "ben", "cid"]  # the BOM once hid the speaker column
    assert summary.n_sources == 6


def test_nothing_usable_lists_the_first_20_reasons_and_a_count(tmp_path) -> None:
    src = tmp_path / "c"
    for spk, n in (("ann", 12), ("ben", 13)):
        (src / spk).mkdir(parents=True)
        for j in range(n):
            (src / spk / f"{j:02d}.wav").write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(DatasetError) as info:
        build_dataset([src], tmp_path / "d.h5", ["ann"], FAST, workers=1)
    msg = str(info.value)
    assert msg.startswith("no chunks were produced: all 25 file(s) were skipped:")
    listed = [line for line in msg.splitlines() if line.startswith("  ") and ".wav: " in line]
    assert len(listed) == 20 and "CorruptAudioError" in listed[0]
    assert msg.rstrip().endswith("... and 5 more")
    assert names(tmp_path) == ["c"]


def test_partial_and_too_long_files_are_skipped_with_the_reason(tmp_path, corpus) -> None:
    src = tmp_path / "c"
    for spk in ("ann", "ben"):
        (src / spk).mkdir(parents=True)
        for p in (corpus / spk).iterdir():
            (src / spk / p.name).write_bytes(p.read_bytes())
    good = write_wav(tmp_path, "good.flac", white_noise(4.0, amp=0.3), 16000)
    (src / "ben" / "cut.flac").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    write_wav(src / "ann", "long.wav", white_noise(6.0, amp=0.3), 16000)
    cfg = BuildConfig(augment=(), max_file_s=5.0)
    summary = build_dataset([src], tmp_path / "d.h5", ["ann"], cfg, workers=1)
    skipped = dict(summary.skipped)
    cut = skipped[str(src / "ben" / "cut.flac")]
    assert cut.startswith("PartialAudioError: only the first ") and " s decode" in cut
    assert skipped[str(src / "ann" / "long.wav")] == (
        "TooLongError: 6 s long, more than the limit of 5 s"
    )
    assert summary.n_sources == 4


# --------------------------------------------------------------------------- long files


def test_long_recording_is_processed_in_segments(tmp_path, monkeypatch) -> None:
    """Past SEGMENT_S a file is decoded and processed piece by piece (bounded memory); a file
    within one segment gives exactly the rows of a whole-file pass."""
    from conftest import voiced

    path = write_wav(tmp_path, "five.wav", voiced(150.0, seconds=5.0, seed=3), 16000)
    task = {
        "path": str(path), "feature_config": BuildConfig().feature_config.to_dict(), "seed": 1,
        "vad_aggressiveness": 2, "hop_samples": None, "min_fraction": 0.5, "train": True,
        "augment": ["noise_low", "specaug_freq"], "n_aug": 2, "extra_copies": 0.0,
        "max_file_s": None,
    }  # fmt: skip
    whole = build.process_file(task)
    monkeypatch.setattr(build_worker, "SEGMENT_S", 2.0)
    pieces = build.process_file(task)
    assert whole["ok"] and pieces["ok"]
    assert pieces["duration_s"] == pytest.approx(5.0) == whole["duration_s"]
    n = pieces["chunks"]
    assert n >= 3 and abs(n - whole["chunks"]) <= 2  # a partial chunk at each segment's end
    originals = pieces["aug"] == 0
    assert np.all(pieces["aug"][: n] == 0) and originals.sum() == n  # originals first
    assert sorted(pieces["chunk_index"][originals]) == list(range(n))  # unique across segments
    assert len(pieces["aug"]) == 3 * n  # every chunk has its two augmented copies
    monkeypatch.setattr(build_worker, "SEGMENT_S", 5.5)
    again = build.process_file(task)
    np.testing.assert_array_equal(again["features"], whole["features"])
    np.testing.assert_array_equal(again["chunk_index"], whole["chunk_index"])
