"""The dataset side of ``voxgate report``: a DatasetSummary read through h5data, per-recording
tables and the pure numeric helpers behind the dataset figures."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from .h5data import read_columns, read_features, read_meta

__all__ = [
    "DatasetSummary", "ChunkRateFit", "load_dataset_summary", "recording_table",
    "chunk_rate_fit", "masked_mean_spectrogram", "pooled_features", "tsne_2d",
]  # fmt: skip


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
