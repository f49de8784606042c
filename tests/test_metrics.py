"""Tests for core/metrics.py: hand-computed small cases and sklearn cross-checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from voxgate.core import metrics as M

GEN = [0.9, 0.8, 0.7]
IMP = [0.1, 0.75, 0.2]


def test_det_curve_hand_case() -> None:
    far, frr, thr = M.det_curve(GEN, IMP)
    np.testing.assert_allclose(thr[:-1], [0.1, 0.2, 0.7, 0.75, 0.8, 0.9])
    assert np.isinf(thr[-1])
    np.testing.assert_allclose(far, [1, 2 / 3, 1 / 3, 1 / 3, 0, 0, 0])
    np.testing.assert_allclose(frr, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])


def test_eer_exact_crossing() -> None:
    rate, thr = M.eer(GEN, IMP)
    assert rate == pytest.approx(1 / 3)
    assert thr == pytest.approx(0.75)
    assert M.far_frr(GEN, IMP, thr) == pytest.approx((1 / 3, 1 / 3))


def test_eer_interpolates_between_thresholds() -> None:
    # At 0.5: FAR 1/2, FRR 1/3; at 0.6: FAR 0, FRR 1/3 -> crossing 1/3 of the way.
    rate, thr = M.eer([0.8, 0.6, 0.4], [0.5, 0.3])
    assert rate == pytest.approx(1 / 3)
    assert thr == pytest.approx(0.5 + 0.1 / 3)


def test_eer_perfect_separation_and_inverted() -> None:
    rate, thr = M.eer([0.9, 0.8], [0.1, 0.2])
    assert rate == 0.0
    assert thr == pytest.approx(0.8)
    assert M.far_frr([0.9, 0.8], [0.1, 0.2], thr) == (0.0, 0.0)
    rate, _ = M.eer([0.1, 0.2], [0.9, 0.8])
    assert rate == pytest.approx(1.0)


def test_eer_matches_roc_on_random_scores(rng: np.random.Generator) -> None:
    g = rng.normal(1.0, 1.0, 2000)
    i = rng.normal(-1.0, 1.0, 3000)
    rate, thr = M.eer(g, i)
    # Two unit-variance Gaussians 2 apart: EER = Phi(-1) = 0.1587.
    assert rate == pytest.approx(0.1587, abs=0.015)
    far, frr = M.far_frr(g, i, thr)
    assert abs(far - frr) < 2e-3
    fpr, tpr, _ = skm.roc_curve(np.r_[np.ones(g.size), np.zeros(i.size)], np.r_[g, i])
    k = np.argmin(np.abs(fpr - (1 - tpr)))
    assert rate == pytest.approx((fpr[k] + 1 - tpr[k]) / 2, abs=1e-3)


def test_far_frr_accepts_equal_scores() -> None:
    assert M.far_frr([0.5, 0.4], [0.5, 0.1], 0.5) == (0.5, 0.5)


def test_threshold_at_far() -> None:
    imp = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert M.threshold_at_far(imp, 0.2) == pytest.approx(0.9)  # FAR(0.9) = 2/10
    assert M.threshold_at_far(imp, 0.25) == pytest.approx(0.9)
    assert M.threshold_at_far(imp, 1.0) == pytest.approx(0.1)
    t0 = M.threshold_at_far(imp, 0.0)
    assert t0 > 1.0 and t0 == pytest.approx(1.0)
    assert M.far_frr([2.0], imp, t0)[0] == 0.0
    # Ties: 0.5 appears 3 times among 4 scores; FAR(0.5) = 3/4 > 1/2, so the next one is used.
    assert M.threshold_at_far([0.5, 0.5, 0.5, 0.1], 0.5) > 0.5
    with pytest.raises(ValueError):
        M.threshold_at_far(imp, 1.5)


def test_frr_at_far() -> None:
    frr, thr = M.frr_at_far(GEN, IMP, 1 / 3)
    assert thr == pytest.approx(0.75)
    assert frr == pytest.approx(1 / 3)
    frr, thr = M.frr_at_far(GEN, IMP, 0.0)
    assert thr > 0.75 and frr == pytest.approx(1 / 3)


def test_min_dcf_hand_case() -> None:
    # p = 0.5, costs 1: DCF = (FRR + FAR) / 2, normalised by 0.5 -> FAR + FRR; its minimum
    # 1/3 is reached first at 0.7 (FAR 1/3, FRR 0).
    value, thr = M.min_dcf(GEN, IMP, p_target=0.5)
    assert value == pytest.approx(1 / 3)
    assert thr == pytest.approx(0.7)
    # c_fa 10x dearer: FAR must be 0; best is 0.8 (FRR 1/3), normalised by min(0.5, 5).
    value, thr = M.min_dcf(GEN, IMP, p_target=0.5, c_fa=10.0)
    assert value == pytest.approx((0.5 * 1 / 3) / 0.5)
    assert thr == pytest.approx(0.8)
    # Low p_target: missing is cheap, so never accept (threshold inf) costs normalised 1.0 at most.
    value, _ = M.min_dcf(GEN, IMP, p_target=0.01)
    assert 0.0 <= value <= 1.0
    value, _ = M.min_dcf([0.9, 0.8], [0.1, 0.2])
    assert value == 0.0


def test_errors_on_empty_or_nan() -> None:
    with pytest.raises(ValueError):
        M.eer([], [0.1])
    with pytest.raises(ValueError):
        M.eer([0.1, np.nan], [0.1])


def test_confusion_matrix_vs_sklearn(rng: np.random.Generator) -> None:
    t = rng.integers(0, 5, 300)
    p = rng.integers(0, 5, 300)
    np.testing.assert_array_equal(
        M.confusion_matrix(t, p, 5), skm.confusion_matrix(t, p, labels=list(range(5)))
    )
    assert M.confusion_matrix([0, 1, 1], [1, 1, 0], 2).tolist() == [[0, 1], [1, 1]]
    with pytest.raises(ValueError):
        M.confusion_matrix([0, 3], [0, 1], 2)


def test_classification_report_vs_sklearn(rng: np.random.Generator) -> None:
    t = rng.integers(0, 4, 200)
    p = np.where(rng.random(200) < 0.6, t, rng.integers(0, 4, 200))
    p[p == 3] = 2  # class 3 is never predicted: precision 0/0 -> 0
    labels = ["a", "b", "c", "d"]
    rep = M.classification_report(t, p, labels)
    ref = skm.classification_report(
        t, p, labels=[0, 1, 2, 3], target_names=labels, output_dict=True, zero_division=0
    )
    for name in labels:
        for key in ("precision", "recall", "f1-score", "support"):
            ours = rep["per_class"][name]["f1" if key == "f1-score" else key]
            assert ours == pytest.approx(ref[name][key])
    for ours, theirs in (("macro", "macro avg"), ("weighted", "weighted avg")):
        for key in ("precision", "recall", "f1-score"):
            assert rep[ours]["f1" if key == "f1-score" else key] == pytest.approx(ref[theirs][key])
    assert rep["accuracy"] == pytest.approx(skm.accuracy_score(t, p))
    assert rep["macro"]["f1"] == pytest.approx(skm.f1_score(t, p, average="macro"))
    assert rep["per_class"]["d"]["precision"] == 0.0


def test_macro_mean_skips_classes_that_never_occur() -> None:
    # classes 2 and 3 occur in neither y_true nor y_pred (e.g. speakers absent from val)
    t, p = [0, 0, 1, 1], [0, 1, 1, 1]
    rep = M.classification_report(t, p, ["a", "b", "c", "d"])
    assert rep["macro"]["classes"] == 2
    assert rep["macro"]["f1"] == pytest.approx(skm.f1_score(t, p, average="macro"))
    assert rep["macro"]["recall"] == pytest.approx((0.5 + 1.0) / 2)
    assert rep["per_class"]["c"]["support"] == 0


def test_top_k_accuracy() -> None:
    s = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    y = [1, 1, 0, 2]
    assert M.top_k_accuracy(s, y, 1) == pytest.approx(0.25)
    assert M.top_k_accuracy(s, y, 2) == pytest.approx(0.5)
    assert M.top_k_accuracy(s, y, 3) == pytest.approx(1.0)
    assert M.top_k_accuracy(s, y, 2) == pytest.approx(skm.top_k_accuracy_score(y, s, k=2))
