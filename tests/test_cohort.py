"""AS-norm against an impostor cohort (training/cohort.py): the formula, what it fixes, and
the cohort file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voxgate.core import metrics as M
from voxgate.core.errors import DatasetError
from voxgate.training.cohort import as_norm, build_cohort, load_cohort, save_cohort


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_as_norm_is_the_mean_of_the_two_z_scores_over_the_top_cohort():
    rng = np.random.default_rng(0)
    test, prof, cohort = (_unit(rng.standard_normal((n, 8))) for n in (3, 2, 10))
    scores = test @ prof.T
    got = as_norm(scores, test, prof, cohort, top_n=4)
    for i in range(3):
        for k in range(2):
            e = sorted(float(prof[k] @ c) for c in cohort)[-4:]
            t = sorted(float(test[i] @ c) for c in cohort)[-4:]
            want = 0.5 * (
                (scores[i, k] - np.mean(e)) / np.std(e) + (scores[i, k] - np.mean(t)) / np.std(t)
            )
            assert got[i, k] == pytest.approx(want, rel=1e-5)


def test_as_norm_puts_a_crowded_and_a_sparse_region_on_one_scale():
    """Voices of a crowded region (e.g. a channel the model knows badly) score high against
    everyone: on raw cosines one threshold cannot serve both regions; after AS-norm it can."""
    rng = np.random.default_rng(1)
    d = 64
    centre = _unit(rng.standard_normal(d))

    def noise(n: int) -> np.ndarray:
        return _unit(rng.standard_normal((n, d)))

    def crowded(n: int) -> np.ndarray:  # pairwise cosines ~0.8
        return _unit(centre + 0.5 * noise(n))

    speakers = np.concatenate([crowded(20), noise(20)])
    cohort = np.concatenate([crowded(60), noise(60)])
    # own-voice cosines: ~0.96 in the crowd, ~0.6 in the sparse region
    tests = _unit(speakers + np.array([0.3] * 20 + [1.3] * 20)[:, None] * noise(40))
    scores = tests @ speakers.T
    genuine = np.eye(len(speakers), dtype=bool)
    raw_eer = M.eer(scores[genuine], scores[~genuine])[0]
    normed = as_norm(scores, tests, speakers, cohort, top_n=20)
    norm_eer = M.eer(normed[genuine], normed[~genuine])[0]
    assert raw_eer > 0.05 and norm_eer < 0.5 * raw_eer, (raw_eer, norm_eer)


def test_as_norm_refuses_a_cohort_that_does_not_fit():
    x = _unit(np.ones((2, 4)))
    with pytest.raises(DatasetError):
        as_norm(x @ x.T, x, x, _unit(np.ones((1, 4))))
    with pytest.raises(DatasetError):
        as_norm(x @ x.T, x, x, _unit(np.ones((5, 3))))


class _MeanBackend:
    """Profile = unit mean of a few spectral statistics: a stand-in for an encoder."""

    def enroll(self, waves):
        x = np.concatenate(waves)
        return _unit(np.array([x.std(), np.abs(x).mean(), x.max(), 1.0]))


def test_build_cohort_leaves_out_excluded_speakers_and_round_trips(tmp_path: Path):
    from conftest import VOWELS, voiced, write_wav

    for spk, f0 in (("a", 110.0), ("b", 180.0), ("c", 240.0)):
        (tmp_path / spk).mkdir()
        write_wav(tmp_path / spk, "r.wav", voiced(f0, VOWELS["a"], 2.5, seed=1))
    names, emb = build_cohort(_MeanBackend(), tmp_path, exclude=["b"], seconds=2.0)
    assert names == ["a", "c"] and emb.shape == (2, 4)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    save_cohort(tmp_path / "c.npz", names, emb, {"model": "m"})
    np.testing.assert_array_equal(load_cohort(tmp_path / "c.npz"), emb)
    with pytest.raises(DatasetError):
        build_cohort(_MeanBackend(), tmp_path, exclude=["a", "b"])
    (tmp_path / "bad.npz").write_bytes(b"not a cohort")
    with pytest.raises(DatasetError):
        load_cohort(tmp_path / "bad.npz")
