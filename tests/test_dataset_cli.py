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


def _parse(argv: list[str]):
    import argparse

    from voxgate.training.dataset_cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["dataset", "build", "src", "--out", "o.h5", "--authorized", "a", *argv])


def test_build_config_layers_defaults_file_set_then_options(tmp_path):
    from voxgate.training.build import BuildConfig
    from voxgate.training.dataset_cli import _config_from_args

    cfg_file = tmp_path / "build.json"
    cfg_file.write_text(json.dumps({"seed": 3, "min_chunk_fraction": 0.75, "augment": ["vtlp"]}))
    cfg = _config_from_args(_parse(["--config", str(cfg_file), "--set", "seed=5",
                                    "--no-oversample", "--subsets", "x,y"]))  # fmt: skip
    assert cfg.seed == 5 and cfg.min_chunk_fraction == 0.75 and cfg.augment == ("vtlp",)
    assert cfg.oversample is False and cfg.subsets == ("x", "y")
    assert cfg.oversample_max == BuildConfig.oversample_max and cfg.compression == "lzf"
    assert _config_from_args(_parse(["--set", "seed=5", "--seed", "7"])).seed == 7
    assert _config_from_args(_parse(["--compression", "none"])).compression is None
    assert _config_from_args(_parse([])) == BuildConfig()


def test_unknown_or_bad_config_keys_exit_1(corpus, tmp_path, capsys):
    out = tmp_path / "f.h5"
    base = ["dataset", "build", str(corpus), "--out", str(out), "--authorized", "ann", "--quiet"]
    assert main([*base, "--set", "sed=1"]) == 1
    assert "sed" in capsys.readouterr().err and not out.exists()
    assert main([*base, "--aug-per-chunk", "some"]) == 1
    assert "--aug-per-chunk" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("[1]")
    assert main([*base, "--config", str(tmp_path / "bad.json")]) == 1
    assert "JSON object" in capsys.readouterr().err
