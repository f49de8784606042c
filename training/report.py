"""Figures and a self-contained HTML report for a dataset, training runs and an evaluation.

Every ``fig_*`` function takes plain data (numpy arrays, dicts) and returns a matplotlib
:class:`~matplotlib.figure.Figure` built without pyplot (no global backend state; rendered by
Agg on save). :func:`build_report` reads the HDF5 file, the TensorBoard events of the runs and
an evaluation's ``metrics.json``, saves one PNG per figure and writes ``index.html`` with every
figure embedded as a base64 data URI.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from voxgate.core.errors import CheckpointError, ConfigError
from voxgate.core.fileio import atomic_write

from .h5data import read_columns, read_features, read_meta
from .plots import (
    AUTH_COLOR,
    DPI,
    OTHER_COLOR,
    OUT_COLOR,
    TOP_SPEAKERS,
    Scalars,
    fig_batch_curves,
    fig_class_balance,
    fig_confusion,
    fig_det,
    fig_duration_vs_chunks,
    fig_durations,
    fig_gender,
    fig_mean_spectrograms,
    fig_per_class,
    fig_score_hist,
    fig_speaker_chunks,
    fig_training_curves,
    fig_tsne,
    fig_val_accuracy_mc,
    save_png,
    split_tag,
)
from .trials import SCORES_FILE, read_scores

__all__ = [
    "AUTH_COLOR",
    "OUT_COLOR",
    "OTHER_COLOR",
    "DPI",
    "DatasetSummary",
    "ChunkRateFit",
    "EvalData",
    "ReportFigure",
    "ReportResult",
    "load_dataset_summary",
    "recording_table",
    "chunk_rate_fit",
    "masked_mean_spectrogram",
    "pooled_features",
    "tsne_2d",
    "read_run_scalars",
    "split_tag",
    "eval_from_metrics",
    "eval_from_scores",
    "fig_class_balance",
    "fig_speaker_chunks",
    "fig_gender",
    "fig_durations",
    "fig_duration_vs_chunks",
    "fig_mean_spectrograms",
    "fig_tsne",
    "fig_training_curves",
    "fig_val_accuracy_mc",
    "fig_batch_curves",
    "fig_confusion",
    "fig_per_class",
    "fig_det",
    "fig_score_hist",
    "build_report",
]

log = logging.getLogger(__name__)

# One colour per class, used in every figure (Okabe-Ito: colour-blind safe).


# --------------------------------------------------------------------------------------------
# Dataset reading
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class DatasetSummary:
    """Everything but the features of a voxgate HDF5 dataset.

    Per-chunk arrays have shape (N,): label int8 (1 = authorized), speaker int32 (index into
    ``speakers``), file_id int32 (row of ``sources``), split int8 (0 train, 1 val, 2 test),
    aug int8 (index into ``aug_tags``; 0 = original), lengths int16 (valid frames).
    """

    path: Path
    speakers: list[str]
    authorized: list[str]
    aug_tags: list[str]
    split_names: list[str]
    feature_config: dict[str, Any]
    build_config: dict[str, Any]
    fingerprint: str
    feature_shape: tuple[int, int]  # (T frames, M mel bands) per chunk
    label: np.ndarray
    speaker: np.ndarray
    file_id: np.ndarray
    split: np.ndarray
    aug: np.ndarray
    lengths: np.ndarray
    sources: list[dict[str, Any]]

    @property
    def n_chunks(self) -> int:
        return int(self.label.shape[0])

    @property
    def speaker_authorized(self) -> np.ndarray:
        """bool (S,): whether speaker index s is in the authorized group."""
        auth = set(self.authorized)
        return np.array([s in auth for s in self.speakers], dtype=bool)


def load_dataset_summary(path: str | Path) -> DatasetSummary:
    """Read the validated metadata, per-chunk columns and sources table (not the features).

    Raises DatasetError when the file is missing, not HDF5, incomplete or inconsistent.
    """
    meta = read_meta(path)
    cols = read_columns(path, ("label", "speaker", "file_id", "split", "aug", "lengths"))
    fc = meta.feature_config
    return DatasetSummary(
        path=Path(path),
        speakers=list(meta.speakers),
        authorized=list(meta.authorized),
        aug_tags=list(meta.aug_tags),
        split_names=list(meta.split_names),
        feature_config=fc.to_dict(),
        build_config=dict(meta.build_config or {}),
        fingerprint=meta.fingerprint,
        feature_shape=(fc.frames_per_chunk, fc.n_mels),
        label=cols["label"],
        speaker=cols["speaker"],
        file_id=cols["file_id"],
        split=cols["split"],
        aug=cols["aug"],
        lengths=cols["lengths"].astype(np.int32),
        sources=meta.sources,
    )


def recording_table(summary: DatasetSummary) -> dict[str, np.ndarray]:
    """Per source recording (R rows of ``sources``; or of file ids when the table is absent).

    Returns dict of (R,) arrays: duration_s float, speech_s float (NaN when unknown),
    chunks int (original chunks, aug == 0, counted from the chunk rows), aug_chunks int,
    label int (1 authorized, -1 unknown), speaker int (-1 unknown), split int, gender str.
    """
    n_rec = len(summary.sources)
    if summary.n_chunks:
        n_rec = max(n_rec, int(summary.file_id.max()) + 1)
    orig = summary.aug == 0
    chunks = np.bincount(summary.file_id[orig], minlength=n_rec)[:n_rec]
    aug_chunks = np.bincount(summary.file_id[~orig], minlength=n_rec)[:n_rec]
    label = np.full(n_rec, -1, dtype=np.int64)
    speaker = np.full(n_rec, -1, dtype=np.int64)
    split = np.full(n_rec, -1, dtype=np.int64)
    label[summary.file_id] = summary.label
    speaker[summary.file_id] = summary.speaker
    split[summary.file_id] = summary.split
    duration = np.full(n_rec, np.nan)
    speech = np.full(n_rec, np.nan)
    gender = np.array([""] * n_rec, dtype=object)
    index = {s: i for i, s in enumerate(summary.speakers)}
    auth = set(summary.authorized)
    split_index = {s: i for i, s in enumerate(summary.split_names)}
    for i, row in enumerate(summary.sources):
        duration[i] = float(row.get("duration_s", np.nan))
        speech[i] = float(row.get("speech_s", np.nan))
        gender[i] = str(row.get("gender", "") or "").strip().upper()
        spk = str(row.get("speaker", ""))
        if speaker[i] < 0 and spk in index:  # a recording without chunks
            speaker[i] = index[spk]
            label[i] = int(spk in auth)
        if split[i] < 0:
            sp = row.get("split")
            split[i] = (
                split_index.get(sp, -1)
                if isinstance(sp, str)
                else int(sp if sp is not None else -1)
            )
    return {
        "duration_s": duration,
        "speech_s": speech,
        "chunks": chunks.astype(np.int64),
        "aug_chunks": aug_chunks.astype(np.int64),
        "label": label,
        "speaker": speaker,
        "split": split,
        "gender": gender,
    }


def _class_counts(
    summary: DatasetSummary, rec: dict[str, np.ndarray]
) -> dict[str, tuple[int, int]]:
    """{group: (authorized, outsiders)} for speakers, recordings, chunks (original / all)."""
    auth_mask = summary.speaker_authorized
    present = np.zeros(len(summary.speakers), dtype=bool)
    present[summary.speaker] = True
    orig = summary.aug == 0
    return {
        "speakers": (int((auth_mask & present).sum()), int((~auth_mask & present).sum())),
        "recordings": (int((rec["label"] == 1).sum()), int((rec["label"] == 0).sum())),
        "chunks (original)": (
            int((summary.label[orig] == 1).sum()),
            int((summary.label[orig] == 0).sum()),
        ),
        "chunks (with augmented)": (
            int((summary.label == 1).sum()),
            int((summary.label == 0).sum()),
        ),
    }


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ChunkRateFit:
    """Least-squares line chunks = slope * duration_s + intercept, and per-recording rates."""

    slope: float  # chunks per second of raw recording
    intercept: float  # chunks
    r2: float
    rates: np.ndarray  # (R,) chunks / duration_s per recording

    @property
    def mean_rate(self) -> float:
        return float(np.mean(self.rates)) if self.rates.size else float("nan")


def chunk_rate_fit(duration_s: np.ndarray, chunks: np.ndarray) -> ChunkRateFit:
    """Fit chunks against raw duration (s); recordings with NaN or zero duration are skipped."""
    d = np.asarray(duration_s, dtype=np.float64)
    c = np.asarray(chunks, dtype=np.float64)
    ok = np.isfinite(d) & (d > 0) & np.isfinite(c)
    d, c = d[ok], c[ok]
    if d.size == 0:
        return ChunkRateFit(float("nan"), float("nan"), float("nan"), np.zeros(0))
    if d.size < 2 or np.ptp(d) == 0:
        slope = float(c.sum() / d.sum())
        intercept = 0.0
    else:
        slope, intercept = (float(v) for v in np.polyfit(d, c, 1))
    resid = c - (slope * d + intercept)
    tot = float(((c - c.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / tot if tot > 0 else 1.0
    return ChunkRateFit(slope, intercept, r2, c / d)


def masked_mean_spectrogram(feats: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Mean log-mel (dB) over chunks, frame by frame, ignoring padded frames.

    feats (N, T, M) float; lengths (N,) valid frames. Returns (T, M) float64 (NaN where no
    chunk has that frame).
    """
    feats = np.asarray(feats, dtype=np.float64)
    t = feats.shape[1]
    mask = np.arange(t)[None, :] < np.asarray(lengths)[:, None]  # (N, T)
    total = (feats * mask[:, :, None]).sum(axis=0)
    count = mask.sum(axis=0)[:, None].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def pooled_features(feats: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Mean ‖ std over valid frames of each chunk's log-mel: (N, T, M) -> (N, 2M) float32."""
    feats = np.asarray(feats, dtype=np.float64)
    t = feats.shape[1]
    lengths = np.clip(np.asarray(lengths), 1, t)
    mask = (np.arange(t)[None, :] < lengths[:, None])[:, :, None]
    n = lengths[:, None].astype(np.float64)
    mean = (feats * mask).sum(axis=1) / n
    var = (((feats - mean[:, None, :]) ** 2) * mask).sum(axis=1) / n
    return np.concatenate([mean, np.sqrt(var)], axis=1).astype(np.float32)


def tsne_2d(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Standardise (N, D), reduce to <= 50 dims by PCA, run seeded t-SNE; returns (N, 2) float32.

    Exact gradients for N < 200 (faster there), Barnes-Hut above.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < 4:
        raise ValueError("t-SNE needs at least 4 points")
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    n_pca = min(50, x.shape[0], x.shape[1])
    if x.shape[1] > n_pca:
        x = PCA(n_components=n_pca, random_state=seed).fit_transform(x)
    perplexity = float(min(30.0, max(2.0, (x.shape[0] - 1) / 3.0)))
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        init="pca",
        random_state=seed,
        method="exact" if x.shape[0] < 200 else "barnes_hut",
    )
    return tsne.fit_transform(x).astype(np.float32)


def _sample(rng: np.random.Generator, idx: np.ndarray, n: int) -> np.ndarray:
    """At most n of idx, chosen without replacement, returned sorted (h5py needs sorted)."""
    if idx.size > n:
        idx = rng.choice(idx, size=n, replace=False)
    return np.sort(idx)


def _read_features(path: Path, idx: np.ndarray) -> np.ndarray:
    """features[idx] as float32 (n, T, M) for sorted row indices ``idx``."""
    return read_features(path, idx)


# --------------------------------------------------------------------------------------------
# Data figures
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Training runs (TensorBoard)
# --------------------------------------------------------------------------------------------


def _tb_dir(run_dir: Path) -> Path:
    for cand in (run_dir / "tb", run_dir):
        if cand.is_dir() and any(p.name.startswith("events.out.tfevents") for p in cand.iterdir()):
            return cand
    raise ConfigError(f"{run_dir}: no TensorBoard event files in it or in its tb/ folder")


def read_run_scalars(run_dir: str | Path) -> Scalars:
    """All scalar series of a run (``run_dir/tb`` or ``run_dir`` itself holding event files).

    Duplicate steps (e.g. after a resume) keep the last written value. Raises ConfigError when
    the folder or its event files are missing.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: run folder not found")
    tb = _tb_dir(run_dir)
    by_tag: dict[str, dict[int, float]] = {}
    for events in sorted(tb.glob("events.out.tfevents*")):  # sorted = written order
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            for ev in acc.Scalars(tag):
                by_tag.setdefault(tag, {})[int(ev.step)] = float(ev.value)
    series: Scalars = {}
    for tag, by_step in by_tag.items():
        steps = sorted(by_step)
        series[tag] = (
            np.array(steps, dtype=np.int64),
            np.array([by_step[k] for k in steps], dtype=np.float64),
        )
    return series


def _training_rows(runs: Mapping[str, Scalars]) -> list[list[str]]:
    rows = []
    for run, scalars in runs.items():
        heads = sorted({split_tag(t)[1] for t in scalars if t.startswith("epoch/val_")}) or [""]
        for head in heads:

            def get(base: str, head: str = head, scalars: Scalars = scalars) -> Any:
                return scalars.get(f"{base}/{head}" if head else base) or scalars.get(base)

            f1, acc, vloss = get("epoch/val_macro_f1"), get("epoch/val_acc"), get("epoch/val_loss")
            sps = get("epoch/samples_per_s")
            epochs = max(
                (len(v[0]) for k, v in scalars.items() if k.startswith("epoch/")), default=0
            )
            best = f"{f1[1].max():.4f} (epoch {int(f1[0][f1[1].argmax()])})" if f1 else "–"
            rows.append(
                [
                    run,
                    head or "–",
                    str(epochs),
                    best,
                    f"{acc[1][-1]:.4f}" if acc else "–",
                    f"{vloss[1].min():.4f}" if vloss else "–",
                    f"{sps[1].mean():,.0f}" if sps else "–",
                ]
            )
    return rows


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


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
                    data.summary[f"{name} authentication {lev}: {key}"] = float(val)
        for lev, i in (f.get("identification") or {}).items():
            for key in ("top1_accuracy", "macro_f1"):
                if _float(i.get(key)) is not None:
                    data.summary[f"{name} identification {lev}: {key}"] = float(i[key])
    unseen = metrics.get("unseen_outsiders")
    if isinstance(unseen, Mapping):
        for name in ("cosine", "heads"):
            for lev, u in (unseen.get(name) or {}).items():
                if _float(u.get("far")) is not None:
                    data.summary[f"unseen outsiders {name} {lev}: FAR"] = float(u["far"])
    return data


def _embed(encoder: Any, feats: np.ndarray, batch: int = 256) -> np.ndarray:
    """Embeddings (n, D) float32 of log-mel features (n, T, M) via ``encoder.embed_features``."""
    import torch

    parts = [
        np.asarray(encoder.embed_features(torch.from_numpy(feats[i : i + batch])))
        for i in range(0, len(feats), batch)
    ]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 0), np.float32)


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


# --------------------------------------------------------------------------------------------
# Report assembly
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ReportFigure:
    name: str  # file stem, e.g. "class_balance"
    section: str  # "Dataset" | "Training" | "Evaluation"
    title: str
    caption: str
    path: Path


@dataclasses.dataclass
class ReportResult:
    index: Path
    figures: list[ReportFigure]
    missing: list[str]  # what could not be shown, and why
    numbers: dict[str, Any]  # key numbers shown in the tables


class _Report:
    """Collects figures, tables and notes per section, then writes index.html."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.figures: list[ReportFigure] = []
        self.tables: dict[str, list[tuple[str, list[str], list[list[str]]]]] = {}
        self.missing: list[str] = []
        self.numbers: dict[str, Any] = {}

    def add(self, section: str, name: str, fig: Figure, title: str, caption: str) -> None:
        path = self.out_dir / f"{name}.png"
        save_png(fig, path)
        self.figures.append(ReportFigure(name, section, title, caption, path))

    def table(self, section: str, title: str, header: list[str], rows: list[list[Any]]) -> None:
        self.tables.setdefault(section, []).append(
            (title, header, [[str(c) for c in r] for r in rows])
        )

    def write_html(self, title: str, intro: str) -> Path:
        esc = html.escape
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{esc(title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>{esc(title)}</h1>",
            f"<p class='intro'>{esc(intro)}</p>",
        ]
        sections = ["Dataset", "Training", "Evaluation"]
        for section in sections:
            figs = [f for f in self.figures if f.section == section]
            tables = self.tables.get(section, [])
            if not figs and not tables:
                continue
            parts.append(f"<section><h2>{esc(section)}</h2>")
            for t_title, header, rows in tables:
                parts.append(f"<h3>{esc(t_title)}</h3><table><thead><tr>")
                parts += [f"<th>{esc(h)}</th>" for h in header]
                parts.append("</tr></thead><tbody>")
                for row in rows:
                    parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
                parts.append("</tbody></table>")
            for f in figs:
                data = base64.b64encode(f.path.read_bytes()).decode("ascii")
                parts.append(
                    f"<figure id='{esc(f.name)}'><h3>{esc(f.title)}</h3>"
                    f"<img src='data:image/png;base64,{data}' alt='{esc(f.title)}'>"
                    f"<figcaption>{esc(f.caption)}</figcaption></figure>"
                )
            parts.append("</section>")
        if self.missing:
            parts.append("<section><h2>Not shown</h2><ul class='missing'>")
            parts += [f"<li>{esc(m)}</li>" for m in self.missing]
            parts.append("</ul></section>")
        parts.append("</body></html>")
        index = self.out_dir / "index.html"
        atomic_write(index, "\n".join(parts))
        return index


_CSS = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1200px;margin:2em auto;"
    "padding:0 1em;color:#222;line-height:1.45}h1{border-bottom:2px solid #D55E00}"
    "h2{margin-top:2em;border-bottom:1px solid #ccc}table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f2f2f2}"
    "td:first-child,th:first-child{text-align:left}figure{margin:1.5em 0}"
    "img{max-width:100%;border:1px solid #eee}figcaption{font-size:.92em;color:#444;max-width:60em}"
    ".intro{color:#555}.missing li{color:#8a4b00}"
)


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "–"


def _dataset_section(
    rep: _Report, summary: DatasetSummary, *, seed: int, max_tsne: int, max_spec: int, encoder: Any
) -> None:
    rec = recording_table(summary)
    counts = _class_counts(summary, rec)
    orig = summary.aug == 0
    n_orig, n_all = int(orig.sum()), summary.n_chunks
    rep.numbers.update(
        {
            "chunks_total": n_all,
            "chunks_original": n_orig,
            "recordings": int(len(rec["chunks"])),
            "speakers": len(summary.speakers),
            "authorized": list(summary.authorized),
        }
    )
    # Tables: classes and splits.
    rows = [
        [group, f"{a:,}", f"{o:,}", f"{a + o:,}", _pct(a, a + o)]
        for group, (a, o) in counts.items()
    ]
    rep.table(
        "Dataset",
        "Class balance",
        ["", "authorized", "outsiders", "total", "authorized share"],
        rows,
    )
    rows = []
    for k, name in enumerate(summary.split_names):
        sel = summary.split == k
        rows.append(
            [
                name,
                f"{int((rec['split'] == k).sum()):,}",
                f"{int((sel & orig & (summary.label == 1)).sum()):,}",
                f"{int((sel & orig & (summary.label == 0)).sum()):,}",
                f"{int((sel & orig).sum()):,}",
                f"{int(sel.sum()):,}",
            ]
        )
        rep.numbers[f"chunks_{name}"] = int(sel.sum())
        rep.numbers[f"chunks_{name}_original"] = int((sel & orig).sum())
    rows.append(
        [
            "all",
            f"{len(rec['chunks']):,}",
            f"{counts['chunks (original)'][0]:,}",
            f"{counts['chunks (original)'][1]:,}",
            f"{n_orig:,}",
            f"{n_all:,}",
        ]
    )
    rep.table(
        "Dataset",
        "Splits (by source recording)",
        [
            "split",
            "recordings",
            "authorized chunks",
            "outsider chunks",
            "original chunks",
            "all chunks (with augmented)",
        ],
        rows,
    )
    train = summary.split == 0
    n_train_orig = int((train & orig).sum())
    multiplier = int(train.sum()) / n_train_orig if n_train_orig else float("nan")
    rep.numbers["augmentation_multiplier"] = multiplier
    aug_rows = [
        [tag, f"{int((summary.aug == k).sum()):,}"] for k, tag in enumerate(summary.aug_tags)
    ]
    aug_rows.append(["train-split multiplier (all / original)", f"{multiplier:.2f}×"])
    rep.table("Dataset", "Augmentation (chunks per tag)", ["aug tag", "chunks"], aug_rows)
    dur = rec["duration_s"]
    speech = rec["speech_s"]
    info = [
        ["file", str(summary.path)],
        ["fingerprint", summary.fingerprint or "–"],
        ["speakers (authorized / total)", f"{counts['speakers'][0]} / {len(summary.speakers)}"],
        ["authorized group", ", ".join(summary.authorized)],
        ["raw audio (h)", f"{np.nansum(dur) / 3600:.2f}" if np.isfinite(dur).any() else "–"],
        [
            "speech after VAD (h)",
            f"{np.nansum(speech) / 3600:.2f}" if np.isfinite(speech).any() else "–",
        ],
        [
            "chunk shape (frames × mel bands)",
            f"{summary.feature_shape[0]} × {summary.feature_shape[1]}",
        ],
        ["feature config", json.dumps(summary.feature_config, sort_keys=True)],
    ]
    rep.table("Dataset", "Summary", ["", "value"], info)

    rep.add(
        "Dataset",
        "class_balance",
        fig_class_balance(counts),
        "Class balance",
        "Authorized vs outsiders in speakers, source recordings, original chunks (aug = 0) and all "
        f"chunks including augmented copies. The authorized share of original chunks is "
        f"{_pct(counts['chunks (original)'][0], n_orig)}; "
        "training oversamples the authorized class rather than relying on this ratio.",
    )
    s = len(summary.speakers)
    per_orig = np.bincount(summary.speaker[orig], minlength=s)[:s]
    per_aug = np.bincount(summary.speaker[~orig], minlength=s)[:s]
    rep.add(
        "Dataset",
        "speaker_chunks",
        fig_speaker_chunks(summary.speakers, per_orig, per_aug, summary.speaker_authorized),
        "Chunks per speaker",
        f"1-s chunks per speaker, sorted; authorized speakers in orange, outsiders in blue. Solid: "
        f"original chunks (min {per_orig.min() if s else 0}, median {np.median(per_orig) if s else 0:.0f}, "
        f"max {per_orig.max() if s else 0}); light: augmented copies (train split only).",
    )

    genders = rec["gender"]
    if any(g in ("M", "F") for g in genders):
        by_speaker: dict[int, Counter] = {}
        for spk, g in zip(rec["speaker"], genders):
            if spk >= 0:
                by_speaker.setdefault(int(spk), Counter())[g if g in ("M", "F") else "unknown"] += 1
        gcounts: dict[str, Counter] = {"authorized": Counter(), "outsiders": Counter()}
        auth_mask = summary.speaker_authorized
        for spk, c in by_speaker.items():
            gcounts["authorized" if auth_mask[spk] else "outsiders"][c.most_common(1)[0][0]] += 1
        rep.add(
            "Dataset",
            "gender",
            fig_gender(gcounts),
            "Gender split",
            "Speakers by gender (from the sources table; a speaker's most frequent entry; empty = "
            "unknown), per class.",
        )
        rep.table(
            "Dataset",
            "Gender (speakers)",
            ["class", "male", "female", "unknown"],
            [[c, v["M"], v["F"], v["unknown"]] for c, v in gcounts.items()],
        )
    else:
        rep.missing.append("gender split: the sources table has no gender values")

    if np.isfinite(dur).any():
        rep.add(
            "Dataset",
            "durations",
            fig_durations(dur, rec["label"]),
            "Recording durations",
            f"Raw duration of each source recording before silence removal (log-spaced bins). "
            f"Median {np.nanmedian(dur):.1f} s, range {np.nanmin(dur):.1f}–{np.nanmax(dur):.1f} s "
            f"over {int(np.isfinite(dur).sum())} recordings.",
        )
        fit = chunk_rate_fit(dur, rec["chunks"])
        fig = fig_duration_vs_chunks(dur, rec["chunks"], rec["label"], fit)
        rep.numbers["chunks_per_second_slope"] = fit.slope
        rep.numbers["chunks_per_second_mean"] = fit.mean_rate
        ok = np.isfinite(speech) & (speech > 0)
        per_speech = float(rec["chunks"][ok].sum() / speech[ok].sum()) if ok.any() else float("nan")
        rep.numbers["chunks_per_speech_second"] = per_speech
        min_frac = summary.build_config.get("min_chunk_fraction", None)
        frac_txt = f" (min_chunk_fraction = {min_frac})" if min_frac is not None else ""
        rep.add(
            "Dataset",
            "duration_vs_chunks",
            fig,
            "Duration vs chunk count",
            f"Original chunks (aug = 0 rows only) against the raw recording duration. Fitted slope: "
            f"{fit.slope:.3f} chunks per second (intercept {fit.intercept:.2f}, R² {fit.r2:.3f}); mean "
            f"per-recording rate {fit.mean_rate:.3f}/s; {per_speech:.3f} chunks per second of speech. "
            f"Chunks are cut from the speech left after VAD silence removal, so a recording yields "
            f"fewer chunks than its raw duration in seconds; a final partial chunk is kept only when it "
            f"is at least min_chunk_fraction of a chunk{frac_txt}. Augmented copies multiply the "
            f"train-split chunks by {multiplier:.2f}× and are not counted here. The course report found "
            f"a rate above 1.0 because its chunk count included augmented copies and overlapping chunks.",
        )
    else:
        rep.missing.append("duration figures: the sources table has no duration_s")

    rng = np.random.default_rng(seed)
    frame_s = None
    hop = summary.feature_config.get("hop_length")
    sr = summary.feature_config.get("sample_rate")
    if hop and sr:
        frame_s = float(hop) / float(sr)
    means, ns = [], []
    for cls in (1, 0):
        idx = _sample(rng, np.flatnonzero(orig & (summary.label == cls)), max_spec)
        ns.append(int(idx.size))
        if idx.size:
            means.append(
                masked_mean_spectrogram(_read_features(summary.path, idx), summary.lengths[idx])
            )
        else:
            means.append(None)
    if all(m is not None for m in means):
        rep.add(
            "Dataset",
            "mean_spectrograms",
            fig_mean_spectrograms(means[0], means[1], frame_s=frame_s, n_auth=ns[0], n_out=ns[1]),
            "Average log-mel spectrogram per class",
            f"Mean log-mel (dB relative to each chunk's peak) over {ns[0]} authorized and {ns[1]} "
            f"outsider original chunks (seeded sample, padded frames excluded); mel band 0 is the "
            f"lowest frequency. Right: authorized minus outsiders (red = more energy in the "
            f"authorized group).",
        )
    else:
        rep.missing.append("average spectrograms: one class has no original chunks")

    idx = _sample(rng, np.flatnonzero(orig), max_tsne)
    if idx.size >= 10:
        feats = _read_features(summary.path, idx)
        xy = tsne_2d(pooled_features(feats, summary.lengths[idx]), seed=seed)
        rep.add(
            "Dataset",
            "tsne_features",
            fig_tsne(
                xy,
                summary.label[idx],
                summary.speaker[idx],
                summary.speakers,
                "t-SNE of pooled log-mel features (mean ‖ std over time)",
            ),
            "t-SNE of pooled features",
            f"{idx.size} original chunks sampled with seed {seed}; each chunk is its log-mel mean and "
            f"standard deviation over time ({2 * summary.feature_shape[1]} values, standardised). "
            f"Left by class, right by speaker (the {TOP_SPEAKERS} most frequent speakers in the "
            f"sample; others grey).",
        )
        if encoder is not None:
            emb = _embed(encoder, feats)
            xy = tsne_2d(emb, seed=seed)
            rep.add(
                "Dataset",
                "tsne_embeddings",
                fig_tsne(
                    xy,
                    summary.label[idx],
                    summary.speaker[idx],
                    summary.speakers,
                    "t-SNE of model embeddings",
                ),
                "t-SNE of model embeddings",
                f"The same {idx.size} chunks embedded by the model ({emb.shape[1]}-d, L2-normalised). "
                f"Tight single-colour clusters in the right panel mean the model separates speakers.",
            )
    else:
        rep.missing.append("t-SNE: fewer than 10 original chunks")


def _training_section(rep: _Report, run_dirs: Sequence[Path]) -> None:
    runs: dict[str, Scalars] = {}
    for d in run_dirs:
        name = d.name if d.name != "tb" else d.parent.name
        while name in runs:
            name += "'"
        runs[name] = read_run_scalars(d)
    rep.add(
        "Training",
        "training_curves",
        fig_training_curves(runs),
        "Training curves",
        "Loss, accuracy, learning rate and macro-F1 per epoch; training solid, validation dashed. "
        "Runs in mode 'both' show one series per head (authentication, identification). Validation "
        "uses held-out recordings (split by recording), so it is not optimistic.",
    )
    if any(split_tag(t)[0] == "epoch/val_acc" for s in runs.values() for t in s):
        has_spread = any(split_tag(t)[0] == "epoch/val_mc_spread" for s in runs.values() for t in s)
        rep.add(
            "Training",
            "val_accuracy_mc",
            fig_val_accuracy_mc(runs),
            "Validation accuracy with MC-dropout spread",
            "Validation accuracy per epoch; error bars and band: ± the mean standard deviation of "
            "the MC-dropout passes (epoch/val_mc_spread)."
            + ("" if has_spread else " No MC spread was logged, so no error bars are drawn."),
        )
    else:
        rep.missing.append("validation accuracy with MC error bars: no epoch/val_acc logged")
    fig = fig_batch_curves(runs)
    if fig is not None:
        rep.add(
            "Training",
            "batch_curves",
            fig,
            "Batch-level curves",
            "Per-batch training loss and accuracy (faint) with a moving average (solid).",
        )
    rep.table(
        "Training",
        "Runs",
        [
            "run",
            "head",
            "epochs",
            "best val macro-F1",
            "final val acc",
            "min val loss",
            "samples/s",
        ],
        _training_rows(runs),
    )
    rep.numbers["runs"] = list(runs)


def _evaluation_section(rep: _Report, data: EvalData) -> None:
    wanted = []
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
    summary = dict(data.summary)
    if det_eer is not None and has_scores:
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
    rep.missing += [f"evaluation: {w} not available" for w in wanted]


def build_report(
    data_path: str | Path | None,
    out_dir: str | Path,
    *,
    runs: Sequence[str | Path] = (),
    model: str | Path | None = None,
    eval_dir: str | Path | None = None,
    seed: int = 0,
    max_tsne: int = 1500,
    max_spec: int = 2000,
) -> ReportResult:
    """Write PNG figures and a self-contained ``index.html`` into ``out_dir``.

    data_path: the HDF5 dataset (dataset figures). runs: run folders (``runs/NAME`` with
    TensorBoard events in ``tb/``), overlaid. model: a checkpoint for a t-SNE of its embeddings.
    eval_dir: a ``voxgate evaluate`` output folder holding ``metrics.json`` and (for DET curve
    and score histograms) ``scores.npz``; the report runs no evaluation itself.
    Raises DatasetError / ConfigError / CheckpointError on bad inputs.
    """
    out = Path(out_dir)
    summary = load_dataset_summary(data_path) if data_path is not None else None
    encoder = None
    if model is not None:
        from voxgate.core.inference import SpeakerEncoder

        encoder = SpeakerEncoder.from_checkpoint(Path(model))
        if summary is not None and summary.feature_config:
            enc_cfg = encoder.feature_config
            enc_dict = enc_cfg.to_dict() if hasattr(enc_cfg, "to_dict") else dict(enc_cfg)
            if enc_dict != summary.feature_config:
                raise CheckpointError(
                    f"{model}: the model's feature config differs from the dataset's "
                    f"({enc_dict} vs {summary.feature_config})"
                )
    for r in runs:  # fail before the slow dataset figures, not after
        if not Path(r).is_dir():
            raise ConfigError(f"{r}: run folder not found")
        _tb_dir(Path(r))
    if eval_dir is not None and not (Path(eval_dir) / "metrics.json").is_file():
        raise ConfigError(f"{eval_dir}: no metrics.json in this folder")
    out.mkdir(parents=True, exist_ok=True)
    rep = _Report(out)
    if summary is not None:
        _dataset_section(
            rep, summary, seed=seed, max_tsne=max_tsne, max_spec=max_spec, encoder=encoder
        )
    else:
        rep.missing.append("dataset figures: no --data given")
    if runs:
        _training_section(rep, [Path(r) for r in runs])
    else:
        rep.missing.append("training figures: no --run given")
    data: EvalData | None = None
    if eval_dir is not None:
        metrics_path = Path(eval_dir) / "metrics.json"
        if not metrics_path.is_file():
            raise ConfigError(f"{eval_dir}: no metrics.json in this folder")
        try:
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{metrics_path}: not valid JSON ({exc})") from exc
        data = eval_from_metrics(metrics)
        scores_path = Path(eval_dir) / SCORES_FILE
        if scores_path.is_file():
            data.merge_missing(eval_from_scores(scores_path))
    if data is not None:
        _evaluation_section(rep, data)
    else:
        rep.missing.append("evaluation figures: give --eval DIR (a voxgate evaluate output folder)")
    title = "voxgate report"
    if summary is not None:
        title += f": {summary.path.name}"
    intro = (
        "Figures generated by `voxgate report`"
        + (f" from {summary.path}" if summary is not None else "")
        + (f", runs {', '.join(str(r) for r in runs)}" if runs else "")
        + (f", model {model}" if model else "")
        + (f", evaluation {eval_dir}" if eval_dir else "")
        + f". Sampling seed {seed}. Authorized speakers are drawn in orange, outsiders in blue."
    )
    index = rep.write_html(title, intro)
    return ReportResult(index=index, figures=rep.figures, missing=rep.missing, numbers=rep.numbers)
