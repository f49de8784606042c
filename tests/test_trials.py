"""Tests for training/trials.py (scores.npz) and the pyplot-free plotting package."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from voxgate.core.errors import ConfigError
from voxgate.training.trials import read_scores, write_scores


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


def test_report_and_evaluate_load_no_pyplot():
    code = (
        "import sys, matplotlib; import voxgate.training.report, voxgate.training.evaluate; "
        "from voxgate.training import plots; plots.fig_mc({'a': (__import__('numpy').ones(3),"
        " __import__('numpy').zeros(3), __import__('numpy').ones(3, int), 0.5)}); "
        "assert 'matplotlib.pyplot' not in sys.modules; print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
