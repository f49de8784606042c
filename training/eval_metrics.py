"""Authentication, identification and MC-dropout metrics of scored chunks, and a short
human-readable summary of an evaluation's metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from voxgate.core.checkpoint import (
    to_plain,
)

__all__ = [
    "AUTH_LABELS", "FAR_POINTS", "plain_float", "auth_metrics", "ident_metrics", "mc_metrics",
    "summary_lines",
]  # fmt: skip

AUTH_LABELS = ["outsider", "authorized"]
FAR_POINTS = (0.002, 0.01)  # FRR is reported at these false acceptance rates


def plain_float(x: Any) -> float | None:
    """Plain float, None for NaN/inf/None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def auth_metrics(
    scores: np.ndarray,
    y_true: np.ndarray,
    threshold: float | None = None,
    threshold_source: str = "calibrated",
) -> dict[str, Any]:
    """Authentication metrics of ``scores`` (N,) (higher = authorized) against ``y_true`` (N,).

    Accept when score >= threshold; the threshold defaults to the EER threshold. Returns
    rates as fractions: accuracy, per-class/macro/weighted precision/recall/F1, confusion
    (2x2, rows = true [outsider, authorized]), FAR, FRR, EER, minDCF(0.01), FRR at FAR 0.2 % / 1 %.
    """
    from voxgate.core import metrics as M

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y_true).astype(np.int64)
    gen, imp = s[y == 1], s[y == 0]
    out: dict[str, Any] = {
        "n": int(len(s)),
        "n_genuine": int(len(gen)),
        "n_impostor": int(len(imp)),
    }
    both = len(gen) > 0 and len(imp) > 0
    if both:
        e, e_thr = M.eer(gen, imp)
        out["eer"], out["eer_threshold"] = plain_float(e), plain_float(e_thr)
        d, d_thr = M.min_dcf(gen, imp, p_target=0.01)
        out["min_dcf"], out["min_dcf_threshold"] = plain_float(d), plain_float(d_thr)
        for p in FAR_POINTS:
            frr, thr = M.frr_at_far(gen, imp, p)
            out[f"frr_at_far_{p * 100:g}%"] = plain_float(frr)
            out[f"threshold_at_far_{p * 100:g}%"] = plain_float(thr)
    else:
        out.update(eer=None, eer_threshold=None, min_dcf=None, min_dcf_threshold=None)
    if threshold is None:
        threshold = out.get("eer_threshold")
        threshold_source = "eer"
    out["threshold"] = plain_float(threshold)
    out["threshold_source"] = threshold_source
    if threshold is None:
        return out
    pred = (s >= threshold).astype(np.int64)
    far = float(np.mean(imp >= threshold)) if len(imp) else None
    frr = float(np.mean(gen < threshold)) if len(gen) else None
    out["far"], out["frr"] = far, frr
    rep = M.classification_report(y, pred, AUTH_LABELS)
    out["accuracy"] = plain_float(rep["accuracy"])
    out["report"] = to_plain(rep, json_safe=True)
    out["confusion"] = np.asarray(M.confusion_matrix(y, pred, 2)).tolist()
    return out


def ident_metrics(
    scores: np.ndarray, y_true: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Identification by argmax of ``scores`` (N, C) against ``y_true`` (N,) class indices.

    ``y_true == -1`` marks a speaker with no class (always an error). Top-1 accuracy over all
    rows; macro-F1 over the classes present in ``y_true``. The confusion matrix is restricted
    to present classes (rows) x present classes + "other" (last column).
    """
    from voxgate.core import metrics as M

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y_true).astype(np.int64)
    names = list(class_names)
    pred = s.argmax(axis=1) if len(s) else np.zeros(0, dtype=np.int64)
    unseen = y < 0
    if unseen.any():
        names = names + ["<unseen>"]
        y = np.where(unseen, len(names) - 1, y)
    rep = M.classification_report(y, pred, names)
    present = sorted(set(y.tolist()))
    per_class = rep["per_class"]
    f1s = [per_class[names[i]]["f1"] for i in present]
    cm = np.asarray(M.confusion_matrix(y, pred, len(names)))
    rows = cm[present]
    inside = rows[:, present]
    other = rows.sum(axis=1) - inside.sum(axis=1)
    return {
        "n": int(len(y)),
        "n_classes": len(class_names),
        "n_present": len(present),
        "n_unseen_rows": int(unseen.sum()),
        "top1_accuracy": plain_float(np.mean(pred == y)) if len(y) else None,
        "macro_f1": plain_float(np.mean(f1s)) if f1s else None,
        "weighted_f1": plain_float(rep["weighted"]["f1"]),
        "per_class": {names[i]: to_plain(per_class[names[i]], json_safe=True) for i in present},
        "confusion_labels": [names[i] for i in present] + ["other"],
        "confusion": np.concatenate([inside, other[:, None]], axis=1).tolist(),
    }


def mc_metrics(
    mean: np.ndarray,
    std: np.ndarray,
    y_true: np.ndarray,
    threshold: float,
    uncertain_std: float | None = None,
) -> dict[str, Any]:
    """MC-dropout summary: decisions at ``threshold`` on the mean score, split by spread.

    A row is "uncertain" when its std exceeds ``uncertain_std`` (default: the median std).
    Reports accuracy of all, confident and uncertain decisions, and mean std per class.
    """
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    y = np.asarray(y_true).astype(np.int64)
    split = float(np.median(std)) if uncertain_std is None else float(uncertain_std)
    correct = (mean >= threshold).astype(np.int64) == y
    unc = std > split

    def acc(mask: np.ndarray) -> float | None:
        return plain_float(correct[mask].mean()) if mask.any() else None

    return {
        "threshold": plain_float(threshold),
        "std_split": split,
        "std_split_source": "median" if uncertain_std is None else "fixed",
        "mean_std": plain_float(std.mean()) if len(std) else None,
        "mean_std_genuine": plain_float(std[y == 1].mean()) if (y == 1).any() else None,
        "mean_std_impostor": plain_float(std[y == 0].mean()) if (y == 0).any() else None,
        "accuracy": acc(np.ones_like(unc)),
        "accuracy_confident": acc(~unc),
        "accuracy_uncertain": acc(unc),
        "n_confident": int((~unc).sum()),
        "n_uncertain": int(unc.sum()),
        "mean_std_correct": plain_float(std[correct].mean()) if correct.any() else None,
        "mean_std_wrong": plain_float(std[~correct].mean()) if (~correct).any() else None,
    }


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """A short human-readable summary of an evaluation's metrics."""

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.2f} %"

    lines = [
        f"{metrics['split']} split: {metrics['n_chunks']} chunks, {metrics['n_decisions']} "
        f"decisions of {metrics['decision_s']:g} s, {metrics['n_speakers']} speakers"
    ]
    for family in ("heads", "cosine"):
        fm = metrics.get(family)
        if not fm:
            continue
        for level, am in (fm.get("authentication") or {}).items():
            lines.append(
                f"  {family:6s} auth  {level:8s} acc {pct(am.get('accuracy'))}  "
                f"FAR {pct(am.get('far'))}  FRR {pct(am.get('frr'))}  EER {pct(am.get('eer'))}  "
                f"minDCF {am.get('min_dcf') if am.get('min_dcf') is None else round(am['min_dcf'], 4)}"
                f"  macro-F1 {pct((am.get('report') or {}).get('macro', {}).get('f1'))}"
                f"  (thr {am.get('threshold')}, {am.get('threshold_source')})"
            )
        for level, im in (fm.get("identification") or {}).items():
            lines.append(
                f"  {family:6s} ident {level:8s} top-1 {pct(im.get('top1_accuracy'))}  "
                f"macro-F1 {pct(im.get('macro_f1'))}"
            )
        for level, mm in (fm.get("mc_dropout") or {}).items():
            lines.append(
                f"  {family:6s} MC    {level:8s} acc confident {pct(mm.get('accuracy_confident'))}"
                f" vs uncertain {pct(mm.get('accuracy_uncertain'))} (std split {mm['std_split']:.4f})"
            )
    uo = metrics.get("unseen_outsiders")
    if uo:
        lines.append(
            f"  unseen outsiders: {uo['n_speakers']} speakers, {uo['n_files']} files, "
            f"{uo.get('n_chunks', 0)} chunks"
        )
        for family in ("cosine", "heads"):
            for level, r in (uo.get(family) or {}).items():
                lines.append(f"    {family:6s} {level:8s} FAR {pct(r['far'])} at {r['threshold']}")
    return lines
