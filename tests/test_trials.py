"""Tests for training/trials.py (scores.npz, embeddings.npz) and the pyplot-free plotting package."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from voxgate.core.errors import ConfigError
from voxgate.training.trials import (
    EmbeddingSet,
    read_embeddings,
    read_scores,
    write_embeddings,
    write_scores,
)


def test_scores_round_trip_keeps_values_and_families(tmp_path):
    s = np.array([0.9, 0.1, 0.5, 0.7])
    y = np.array([1, 0, 0, 1])
    path = write_scores({("cosine", "chunk"): (s, y), ("heads", "decision"): (s[:2], y[:2])},
                        tmp_path / "scores.npz")  # fmt: skip
    got = read_scores(path)
    assert set(got) == {("cosine", "chunk"), ("heads", "decision")}
    np.testing.assert_array_equal(got[("cosine", "chunk")][0], s)
    np.testing.assert_array_equal(got[("cosine", "chunk")][1], y)
    np.testing.assert_array_equal(got[("heads", "decision")][1], [1, 0])


def test_unreadable_scores_file_is_a_config_error(tmp_path):
    (tmp_path / "scores.npz").write_bytes(b"junk")
    with pytest.raises(ConfigError):
        read_scores(tmp_path / "scores.npz")


def test_embeddings_round_trip_keeps_rows_labels_and_speakers(tmp_path):
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    emb = EmbeddingSet(x, np.array([1, 0, 0, 1, 0]), np.array([0, 2, 2, 1, 2]), ["a", "b", "c"], "val")
    got = read_embeddings(write_embeddings(emb, tmp_path / "embeddings.npz"))
    np.testing.assert_array_equal(got.embeddings, x)
    np.testing.assert_array_equal(got.label, [1, 0, 0, 1, 0])
    np.testing.assert_array_equal(got.speaker, [0, 2, 2, 1, 2])
    assert got.speakers == ["a", "b", "c"] and got.split == "val" and len(got) == 5


def test_bad_embeddings_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="readable"):
        read_embeddings(tmp_path / "missing.npz")
    x = np.zeros((3, 2), np.float32)
    bad = EmbeddingSet(x, np.zeros(3, int), np.array([0, 1, 5]), ["a", "b"], "test")
    with pytest.raises(ConfigError, match="speaker index"):
        read_embeddings(write_embeddings(bad, tmp_path / "e.npz"))
    np.savez(tmp_path / "short.npz", embeddings=x, label=np.zeros(2), speaker=np.zeros(3),
             speakers=np.array(["a"]), split=np.array("test"))  # fmt: skip
    with pytest.raises(ConfigError, match="disagree"):
        read_embeddings(tmp_path / "short.npz")


def test_report_and_evaluate_load_no_pyplot():
    code = (
        "import sys, matplotlib; import voxgate.training.report, voxgate.training.evaluate; "
        "from voxgate.training import plots; plots.fig_mc({'a': (__import__('numpy').ones(3),"
        " __import__('numpy').zeros(3), __import__('numpy').ones(3, int), 0.5)}); "
        "assert 'matplotlib.pyplot' not in sys.modules; print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
