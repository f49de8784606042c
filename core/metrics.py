"""Verification and classification metrics in numpy (no sklearn at run time).

Scores: higher means more likely genuine; a trial is accepted when score >= threshold.
FAR = accepted impostor trials / impostor trials; FRR = rejected genuine / genuine trials.
All rates are fractions in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "eer",
    "far_frr",
    "threshold_at_far",
    "frr_at_far",
    "min_dcf",
    "det_curve",
    "confusion_matrix",
    "classification_report",
    "top_k_accuracy",
]

# Tolerance when comparing a FAR (a ratio of counts) with a target FAR.
_RATE_EPS = 1e-12


def _scores(x: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{name}: no scores")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: scores must be finite")
    return a


def det_curve(
    genuine: Sequence[float] | np.ndarray, impostor: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FAR and FRR at every distinct score used as threshold, plus +inf (accept nothing).

    Returns (far, frr, thresholds), float64, thresholds ascending; far non-increasing from 1,
    frr non-decreasing to 1.
    """
    g = np.sort(_scores(genuine, "genuine"))
    i = np.sort(_scores(impostor, "impostor"))
    thresholds = np.append(np.unique(np.concatenate([g, i])), np.inf)
    frr = np.searchsorted(g, thresholds, side="left") / g.size  # genuine < t
    far = (i.size - np.searchsorted(i, thresholds, side="left")) / i.size  # impostor >= t
    return far, frr, thresholds


def far_frr(
    genuine: Sequence[float] | np.ndarray, impostor: Sequence[float] | np.ndarray, threshold: float
) -> tuple[float, float]:
    """(FAR, FRR) when accepting score >= threshold."""
    g = _scores(genuine, "genuine")
    i = _scores(impostor, "impostor")
    return float(np.mean(i >= threshold)), float(np.mean(g < threshold))


def eer(
    genuine: Sequence[float] | np.ndarray, impostor: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """Equal error rate and its threshold.

    Sweeps the sorted thresholds of :func:`det_curve`; where FAR - FRR changes sign between
    two thresholds, FAR, FRR and the threshold are interpolated linearly to the crossing.
    Perfectly separated scores give (0.0, lowest genuine score).
    """
    far, frr, thr = det_curve(genuine, impostor)
    d = far - frr  # non-increasing, starts at 1 (t = min score), ends at -1 (t = inf)
    k = int(np.argmax(d <= 0))
    if d[k] == 0 or k == 0:
        return float(far[k]), float(thr[k])
    alpha = d[k - 1] / (d[k - 1] - d[k])
    rate = far[k - 1] + alpha * (far[k] - far[k - 1])
    t_hi = thr[k] if np.isfinite(thr[k]) else thr[k - 1]
    return float(rate), float(thr[k - 1] + alpha * (t_hi - thr[k - 1]))


def threshold_at_far(impostor: Sequence[float] | np.ndarray, target_far: float) -> float:
    """Smallest threshold, among the impostor scores, whose FAR <= target_far.

    When no impostor score qualifies (target below 1 / n_impostor), returns the next float
    above the highest impostor score (FAR = 0).
    """
    if not 0.0 <= target_far <= 1.0:
        raise ValueError(f"target_far must be in [0, 1], got {target_far}")
    i = np.sort(_scores(impostor, "impostor"))
    u = np.unique(i)
    far = (i.size - np.searchsorted(i, u, side="left")) / i.size
    ok = far <= target_far + _RATE_EPS
    if ok.any():
        return float(u[int(np.argmax(ok))])
    return float(np.nextafter(u[-1], np.inf))


def frr_at_far(
    genuine: Sequence[float] | np.ndarray,
    impostor: Sequence[float] | np.ndarray,
    target_far: float,
) -> tuple[float, float]:
    """(FRR, threshold) at the operating point of :func:`threshold_at_far`."""
    t = threshold_at_far(impostor, target_far)
    return far_frr(genuine, impostor, t)[1], t


def min_dcf(
    genuine: Sequence[float] | np.ndarray,
    impostor: Sequence[float] | np.ndarray,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> tuple[float, float]:
    """Minimum normalised detection cost and its threshold.

    DCF(t) = c_miss * FRR(t) * p_target + c_fa * FAR(t) * (1 - p_target), divided by
    min(c_miss * p_target, c_fa * (1 - p_target)) (the cost of the best trivial system).
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    far, frr, thr = det_curve(genuine, impostor)
    dcf = c_miss * frr * p_target + c_fa * far * (1.0 - p_target)
    k = int(np.argmin(dcf))
    norm = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return float(dcf[k] / norm), float(thr[k])


def _labels(y: Sequence[int] | np.ndarray, n_classes: int, name: str) -> np.ndarray:
    a = np.asarray(y).ravel()
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name}: expected integer class indices, got {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= n_classes):
        raise ValueError(f"{name}: class indices must be in [0, {n_classes})")
    return a


def confusion_matrix(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, n_classes: int
) -> np.ndarray:
    """int64 (n_classes, n_classes): row = true class, column = predicted class."""
    t = _labels(y_true, n_classes, "y_true")
    p = _labels(y_pred, n_classes, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length ({t.size} vs {p.size})")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def classification_report(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, labels: list[str]
) -> dict:
    """Precision, recall, F1 and support per class, their macro and support-weighted means,
    and accuracy. Class i is ``labels[i]``; an undefined ratio (0 / 0) counts as 0.

    The macro mean is over the classes that occur (in ``y_true`` or ``y_pred``), as
    scikit-learn does by default: a validation split that holds 200 of 600 training
    speakers is not penalised for the 400 it cannot contain. ``per_class`` lists all."""
    n = len(labels)
    cm = confusion_matrix(y_true, y_pred, n)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / denom, 0.0)
    total = int(support.sum())
    per_class = {
        labels[k]: {
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "support": int(support[k]),
        }
        for k in range(n)
    }
    w = support / total if total else np.zeros(n)
    seen = (support > 0) | (predicted > 0)
    return {
        "per_class": per_class,
        "macro": {
            "precision": float(precision[seen].mean()) if seen.any() else 0.0,
            "recall": float(recall[seen].mean()) if seen.any() else 0.0,
            "f1": float(f1[seen].mean()) if seen.any() else 0.0,
            "support": total,
            "classes": int(seen.sum()),
        },
        "weighted": {
            "precision": float((w * precision).sum()),
            "recall": float((w * recall).sum()),
            "f1": float((w * f1).sum()),
            "support": total,
        },
        "accuracy": float(tp.sum() / total) if total else 0.0,
    }


def top_k_accuracy(scores: np.ndarray, y_true: Sequence[int] | np.ndarray, k: int = 1) -> float:
    """Fraction of rows whose true class is among the k highest scores. scores: (B, C)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must have shape (B, C), got {s.shape}")
    t = _labels(y_true, s.shape[1], "y_true")
    if t.size != s.shape[0]:
        raise ValueError(f"{s.shape[0]} score rows but {t.size} labels")
    if t.size == 0:
        return 0.0
    k = max(1, min(int(k), s.shape[1]))
    top = np.argpartition(-s, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == t[:, None], axis=1)))
