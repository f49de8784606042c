"""``voxgate dataset build|info`` run in-process through voxgate.cli.main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write_voice_folders
from voxgate.cli import main


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    voices = (("ann", 220.0, 3), ("ben", 110.0, 3), ("cid", 160.0, 2))
    return write_voice_folders(tmp_path_factory.mktemp("c"), voices, seconds=2.1)


def test_build_then_info(corpus, tmp_path, capsys):
    out = tmp_path / "d.h5"
    excl = tmp_path / "ex.txt"
    excl.write_text("# leave out\ncid\n")
    rc = main(
        ["dataset", "build", str(corpus), "--out", str(out), "--authorized", "ann",
         "--workers", "1", "--quiet", "--augment", "noise_low,specaug_freq",
         "--aug-per-chunk", "all", "--no-oversample", "--exclude-speakers", f"@{excl}", "--json"]
    )  # fmt: skip
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["speakers"] == ["ann", "ben"] and summary["oversample_factor"] == 1.0
    train = summary["counts"]["train"]
    assert train["augmented"] == 2 * train["original"]  # both augmentations on every chunk
    assert main(["dataset", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "valid" in text and "train" in text and "noise_low, specaug_freq" in text
    assert main(["dataset", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["counts"] == summary["counts"] and info["authorized"] == ["ann"]
    assert info["speakers"] == {"0": "ann", "1": "ben"}
    assert sum(len(v) for v in info["files"].values()) == 6


def test_errors_exit_1_with_a_message(corpus, tmp_path, capsys):
    out = tmp_path / "e.h5"
    rc = main(
        ["dataset", "build", str(corpus), "--out", str(out), "--authorized", "zed", "--quiet"]
    )
    assert rc == 1 and "zed" in capsys.readouterr().err and not out.exists()
    rc = main(["dataset", "build", str(corpus), "--out", str(out), "--authorized", "ann",
               "--augment", "echo", "--quiet"])  # fmt: skip
    assert rc == 1 and "echo" in capsys.readouterr().err
    (tmp_path / "bad.h5").write_bytes(b"x")
    assert main(["dataset", "info", str(tmp_path / "bad.h5")]) == 1
    assert "bad.h5" in capsys.readouterr().err
