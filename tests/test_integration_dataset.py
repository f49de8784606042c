"""Build from real LibriSpeech test-clean speech (3 speakers x 2 files) and read it back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voxgate.cli import main
from voxgate.training.h5data import H5ChunkDataset, read_meta

pytestmark = pytest.mark.integration

SPEAKERS = ("1089", "121", "237")


def test_build_from_test_clean(shared_data, tmp_path, capsys):
    root = shared_data / "librispeech" / "test-clean"
    if not all((root / s).is_dir() for s in SPEAKERS):
        pytest.skip("test-clean speakers not present")
    src = tmp_path / "test-clean"
    src.mkdir()
    for s in SPEAKERS:
        (src / s).symlink_to(root / s, target_is_directory=True)
    out = tmp_path / "tc.h5"
    rc = main(
        ["dataset", "build", str(src), "--out", str(out), "--authorized", "121",
         "--max-files-per-speaker", "2", "--workers", "1", "--quiet", "--json", "--seed", "5"]
    )  # fmt: skip
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped"] == [] and summary["n_sources"] == 6
    meta = read_meta(out)
    assert meta.speakers == list(SPEAKERS) and meta.authorized == ["121"]
    for s in SPEAKERS:  # 2 files each: one train, one test; sessions are the chapters
        assert sorted(r["split"] for r in meta.sources if r["speaker"] == s) == [0, 2]
    assert all(r["session"] and r["speech_s"] <= r["duration_s"] for r in meta.sources)
    speech_s = sum(r["speech_s"] for r in meta.sources)
    originals = sum(c["original"] for c in meta.counts.values())
    assert speech_s - 6 < originals <= speech_s + 6  # ~one 1-s chunk per second of speech
    ds = H5ChunkDataset(out, "test")
    x = ds[0]["features"].numpy()
    assert x.shape == (32, 64) and x.max() == pytest.approx(0.0, abs=0.01) and np.isfinite(x).all()
    assert main(["dataset", "info", str(out)]) == 0
    assert "121" in capsys.readouterr().out
