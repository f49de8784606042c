"""The evaluation section of ``voxgate report``: what ``voxgate evaluate`` wrote
(metrics.json, scores.npz) mapped onto EvalData, then tables and figures."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .plots import AUTH_COLOR, OUT_COLOR, fig_confusion, fig_det, fig_per_class, fig_score_hist
from .report_html import ReportBuilder
from .trials import read_scores

__all__ = ["EvalData", "eval_from_metrics", "eval_from_scores", "evaluation_section"]


@dataclasses.dataclass
class EvalData:
    """What the evaluation figures need; every field is optional.

    Scores: higher = more likely genuine (cosine). Rates are fractions in [0, 1].
    """

    auth_confusion: np.ndarray | None = None  # (2, 2) int counts, rows = true, cols = predicted
    auth_labels: list[str] = dataclasses.field(default_factory=lambda: ["outsider", "authorized"])
    auth_report: dict[str, Any] | None = None  # classification_report dict
    id_confusion: np.ndarray | None = None  # (N, N) int counts
    id_labels: list[str] | None = None  # row labels
    id_col_labels: list[str] | None = None  # column labels when they differ (e.g. + "other")
    id_report: dict[str, Any] | None = None
    genuine: np.ndarray | None = None  # (G,) scores of genuine trials
    impostor: np.ndarray | None = None  # (I,) scores of impostor trials
    det_far: np.ndarray | None = None
    det_frr: np.ndarray | None = None
    eer: float | None = None
    eer_threshold: float | None = None
    threshold: float | None = None  # operating threshold
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)  # scalar metrics for a table
    source: str = ""

    def merge_missing(self, other: EvalData) -> None:
        """Fill this object's empty fields from ``other``."""
        for f in dataclasses.fields(self):
            if f.name in ("summary", "source", "auth_labels", "id_col_labels", "id_labels"):
                continue
            if getattr(self, f.name) is None and getattr(other, f.name) is not None:
                setattr(self, f.name, getattr(other, f.name))
                if f.name == "auth_confusion":
                    self.auth_labels = other.auth_labels
                if f.name == "genuine":
                    self.source += f" (trial scores {other.source})"
                if f.name == "id_confusion":
                    self.id_labels, self.id_col_labels = other.id_labels, other.id_col_labels
        for k, v in other.summary.items():
            self.summary.setdefault(k, v)


def _find(d: Any, keys: Sequence[str]) -> Any:
    """First value found under any of ``keys`` (dotted paths allowed) in nested dict d."""
    for key in keys:
        cur = d
        for part in key.split("."):
            if isinstance(cur, Mapping) and part in cur:
                cur = cur[part]
            else:
                cur = None
                break
        if cur is not None:
            return cur
    return None


def _array(value: Any, ndim: int | None = None) -> np.ndarray | None:
    if value is None:
        return None
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if ndim is not None and arr.ndim != ndim:
        return None
    return arr


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def eval_from_metrics(
    metrics: Mapping[str, Any], family: str = "cosine", level: str = "chunk"
) -> EvalData:
    """Map ``voxgate evaluate``'s metrics.json onto EvalData, taking whatever keys exist.

    Layout (training/evaluate.py): metrics[family]["authentication"|"identification"][level],
    family "cosine" (profiles from the train split; the client's score) or "heads", level
    "chunk" (1 s) or "decision" (3 s). Authentication entries hold confusion (2x2, rows = true
    [outsider, authorized]), report (classification_report), eer, eer_threshold, threshold,
    far, frr, min_dcf, accuracy; identification entries hold confusion (rows = present
    classes, columns = those + "other"), confusion_labels, per_class, top1_accuracy, macro_f1.
    metrics.json holds no per-trial scores; DET and histograms come from scores.npz.
    """
    data = EvalData(source=f"metrics.json: {family}, per {level}")
    fam = metrics.get(family) if isinstance(metrics.get(family), Mapping) else None
    if fam is None:
        for other in ("cosine", "heads"):
            if isinstance(metrics.get(other), Mapping):
                fam, family = metrics[other], other
                data.source = f"metrics.json: {family}, per {level}"
                break
    fam = fam or {}
    am = _find(fam, [f"authentication.{level}"]) or {}
    cm = _array(am.get("confusion"), 2)
    if cm is not None and cm.shape == (2, 2):
        data.auth_confusion = cm.astype(np.int64)
    rep = am.get("report")
    if isinstance(rep, Mapping) and isinstance(rep.get("per_class"), Mapping):
        data.auth_report = dict(rep)
        data.auth_labels = [str(k) for k in rep["per_class"]][:2] or data.auth_labels
    data.eer = _float(am.get("eer"))
    data.eer_threshold = _float(am.get("eer_threshold"))
    data.threshold = _float(am.get("threshold"))
    im = _find(fam, [f"identification.{level}"]) or {}
    cm = _array(im.get("confusion"), 2)
    labels = im.get("confusion_labels")
    if cm is not None and isinstance(labels, list) and cm.shape[1] == len(labels):
        data.id_confusion = cm.astype(np.int64)
        data.id_col_labels = [str(x) for x in labels]
        data.id_labels = data.id_col_labels[: cm.shape[0]]
    if isinstance(im.get("per_class"), Mapping):
        data.id_report = {
            "per_class": dict(im["per_class"]),
            "macro": {"f1": im["macro_f1"]} if im.get("macro_f1") is not None else {},
            "accuracy": im.get("top1_accuracy"),
        }
    data.summary.update(_summary_numbers(metrics))
    return data


def _summary_numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Scalar metrics of every family and level in metrics.json, named for the key-numbers table."""
    out: dict[str, float] = {}
    for name in ("cosine", "heads"):
        f = metrics.get(name)
        if not isinstance(f, Mapping):
            continue
        for lev, a in (f.get("authentication") or {}).items():
            macro = ((a.get("report") or {}).get("macro") or {}).get("f1")
            for key, val in (
                ("accuracy", a.get("accuracy")),
                ("FAR", a.get("far")),
                ("FRR", a.get("frr")),
                ("EER", a.get("eer")),
                ("minDCF(0.01)", a.get("min_dcf")),
                ("macro-F1", macro),
                ("threshold", a.get("threshold")),
            ):
                if _float(val) is not None:
                    out[f"{name} authentication {lev}: {key}"] = float(val)
        for lev, i in (f.get("identification") or {}).items():
            for key in ("top1_accuracy", "macro_f1"):
                if _float(i.get(key)) is not None:
                    out[f"{name} identification {lev}: {key}"] = float(i[key])
    unseen = metrics.get("unseen_outsiders")
    if isinstance(unseen, Mapping):
        for name in ("cosine", "heads"):
            for lev, u in (unseen.get(name) or {}).items():
                if _float(u.get("far")) is not None:
                    out[f"unseen outsiders {name} {lev}: FAR"] = float(u["far"])
    return out


def eval_from_scores(path: str | Path, family: str = "cosine", level: str = "chunk") -> EvalData:
    """Genuine and impostor trial scores of one family and level from ``voxgate evaluate``'s
    scores.npz (see trials.py); the DET curve and its EER are computed from them."""
    trials = read_scores(path)
    if (family, level) not in trials:
        if not trials:
            return EvalData(source=f"{Path(path).name}: empty")
        family, level = next(iter(trials))
    scores, y = trials[(family, level)]
    data = EvalData(source=f"{Path(path).name}: {family}, per {level}")
    data.genuine, data.impostor = scores[y == 1], scores[y == 0]
    data.summary["test chunks scored"] = int(scores.size)
    return data


def evaluation_section(rep: ReportBuilder, data: EvalData) -> None:
    """Confusion matrices, per-class reports, DET curve, score histograms and key numbers."""
    wanted: list[str] = []
    _confusion_figures(rep, data, wanted)
    _per_class_reports(rep, data, wanted)
    det_eer, op = _score_figures(rep, data, wanted)
    _key_numbers(rep, data, det_eer, op)
    rep.missing += [f"evaluation: {w} not available" for w in wanted]


def _confusion_figures(rep: ReportBuilder, data: EvalData, wanted: list[str]) -> None:
    if data.auth_confusion is not None:
        rep.add(
            "Evaluation",
            "confusion_authentication",
            fig_confusion(data.auth_confusion, data.auth_labels, "Authentication confusion matrix"),
            "Authentication confusion matrix",
            "Test chunks (1 s) of held-out recordings: true class in rows, decision in columns; "
            "left counts, right each row divided by its total (so the diagonal is the recall).",
        )
    else:
        wanted.append("authentication confusion matrix")
    if data.id_confusion is not None:
        labels = data.id_labels or [str(i) for i in range(data.id_confusion.shape[0])]
        rep.add(
            "Evaluation",
            "confusion_identification",
            fig_confusion(
                data.id_confusion, labels, "Identification confusion matrix", data.id_col_labels
            ),
            "Identification confusion matrix",
            f"{len(labels)} speakers; true speaker in rows, predicted (nearest profile) in columns"
            + (
                "; 'other' collects predictions of speakers absent from this split."
                if data.id_col_labels
                else "."
            ),
        )
    else:
        wanted.append("identification confusion matrix")


def _per_class_reports(rep: ReportBuilder, data: EvalData, wanted: list[str]) -> None:
    for key, report, title in (
        ("authentication", data.auth_report, "Authentication: per-class scores"),
        ("identification", data.id_report, "Identification: per-class scores"),
    ):
        if report is None:
            wanted.append(f"{key} per-class report")
            continue
        colors = None
        if key == "authentication":
            colors = [
                AUTH_COLOR if "auth" in n and "out" not in n else OUT_COLOR
                for n in report["per_class"]
            ]
        rep.add(
            "Evaluation",
            f"per_class_{key}",
            fig_per_class(report, title, colors),
            title,
            "Precision, recall and F1 per class on the test split; n = support (test chunks).",
        )
        rows = [
            [
                name,
                f"{v.get('precision', float('nan')):.4f}",
                f"{v.get('recall', float('nan')):.4f}",
                f"{v.get('f1', float('nan')):.4f}",
                int(v.get("support", 0)),
            ]
            for name, v in report["per_class"].items()
        ]
        for avg in ("macro", "weighted"):
            if avg in report:
                v = report[avg]
                rows.append(
                    [
                        avg,
                        f"{v.get('precision', float('nan')):.4f}",
                        f"{v.get('recall', float('nan')):.4f}",
                        f"{v.get('f1', float('nan')):.4f}",
                        int(v.get("support", 0)),
                    ]
                )
        if key == "authentication" or len(rows) <= 60:
            rep.table(
                "Evaluation",
                f"{key.capitalize()} report",
                ["class", "precision", "recall", "F1", "support"],
                rows,
            )


def _score_figures(
    rep: ReportBuilder, data: EvalData, wanted: list[str]
) -> tuple[float | None, tuple[float, float] | None]:
    """DET curve and score histograms from the trial scores; returns (EER, (FAR, FRR) at the
    operating threshold)."""
    has_scores = data.genuine is not None and data.impostor is not None
    has_scores = has_scores and data.genuine.size > 0 and data.impostor.size > 0
    det_eer, det_eer_thr = data.eer, data.eer_threshold
    if has_scores:
        # The DET, its EER point and the histogram all come from the same trials.
        from voxgate.core import metrics as vm

        far, frr, _ = vm.det_curve(data.genuine, data.impostor)
        data.det_far, data.det_frr = np.asarray(far), np.asarray(frr)
        det_eer, det_eer_thr = (float(v) for v in vm.eer(data.genuine, data.impostor))
    op = None
    if data.threshold is not None and has_scores:
        op = (
            float(np.mean(data.impostor >= data.threshold)),
            float(np.mean(data.genuine < data.threshold)),
        )
    if data.det_far is not None and data.det_frr is not None:
        rep.add(
            "Evaluation",
            "det_curve",
            fig_det(
                data.det_far,
                data.det_frr,
                eer=det_eer,
                threshold_point=op,
                threshold=data.threshold,
            ),
            "DET curve",
            f"False rejection vs false acceptance rate of 1-s test chunks over all thresholds "
            f"(normal-deviate axes; {data.genuine.size if has_scores else '?'} genuine and "
            f"{data.impostor.size if has_scores else '?'} impostor trials). "
            + (f"EER {100 * det_eer:.2f}% (circle). " if det_eer is not None else "")
            + ("The square is the operating (calibrated 1-s) threshold." if op else ""),
        )
        rep.numbers["eval.det_eer"] = det_eer
    else:
        wanted.append(
            "DET curve (no per-trial scores: no scores.npz from voxgate evaluate in --eval DIR)"
        )
    if has_scores:
        rep.add(
            "Evaluation",
            "score_histogram",
            fig_score_hist(
                data.genuine, data.impostor, threshold=data.threshold, eer_threshold=det_eer_thr
            ),
            "Score distributions",
            "Genuine trials: test chunks of authorized speakers; impostor trials: outsiders. Score = "
            "cosine similarity to the closest authorized profile (mean train embedding of the "
            "speaker). Overlap is where errors happen.",
        )
    else:
        wanted.append("score histograms (need per-trial scores: scores.npz in --eval DIR)")
    return (det_eer if has_scores else None), op


def _key_numbers(
    rep: ReportBuilder, data: EvalData, det_eer: float | None, op: tuple[float, float] | None
) -> None:
    """The key-numbers table; det_eer is None unless it came from plotted trial scores."""
    summary = dict(data.summary)
    if det_eer is not None:
        summary["EER of the plotted trials"] = det_eer
    if data.threshold is not None:
        summary["operating threshold (1 s)"] = data.threshold
    if op is not None:
        summary["FAR at threshold"], summary["FRR at threshold"] = op
    if summary:
        rep.table(
            "Evaluation",
            f"Key numbers ({data.source})",
            ["metric", "value"],
            [[k, f"{v:.4f}" if isinstance(v, float) else v] for k, v in summary.items()],
        )
        rep.numbers.update({f"eval.{k}": v for k, v in summary.items()})
