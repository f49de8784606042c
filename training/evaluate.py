"""Closed-set evaluation and threshold calibration of a checkpoint on an HDF5 dataset split.

Two scoring families are reported side by side:

* ``heads``: the trained AAM heads (authentication P(authorized); identification argmax);
* ``cosine``: cosine similarity against enrolled profiles, i.e. the mean L2-normalised
  embedding of each speaker's train-split, non-augmented chunks (what the client does
  with its own enrolled voices).

Each is scored per 1-s chunk and per decision (the mean score over ``decision_chunks``
consecutive chunks of one held-out recording).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxgate.core.checkpoint import (
    load_checkpoint,
    model_fingerprint,
    read_checkpoint,
    to_plain,
    update_checkpoint,
)
from voxgate.core.device import resolve_device
from voxgate.core.errors import DatasetError
from voxgate.core.fileio import atomic_write
from voxgate.core.scoring import unit

from .trials import SCORES_FILE, write_scores

log = logging.getLogger(__name__)

__all__ = [
    "SplitEmbeddings",
    "EvaluationResult",
    "embed_features",
    "speaker_profiles",
    "decision_groups",
    "group_mean",
    "auth_metrics",
    "ident_metrics",
    "mc_metrics",
    "measure_speed",
    "score_outsiders",
    "run_evaluation",
    "evaluate_checkpoint",
    "save_figures",
    "write_json",
    "calibrate_checkpoint",
    "summary_lines",
]

AUTH_LABELS = ["outsider", "authorized"]
FAR_POINTS = (0.002, 0.01)  # FRR is reported at these false acceptance rates


# --------------------------------------------------------------------------------------
# embeddings of an HDF5 split
# --------------------------------------------------------------------------------------


@dataclass
class SplitEmbeddings:
    """Embeddings of the selected chunks of one split, in dataset order.

    embeddings: float32 (N, D) unit rows; mc: float32 (passes, N, D) or None;
    labels (N,) int (1 = authorized); speakers (N,) int (dataset speaker index);
    file_ids, chunk_index, aug: (N,) int.
    """

    embeddings: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray
    file_ids: np.ndarray
    chunk_index: np.ndarray
    aug: np.ndarray
    mc: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])


def _select(split: SplitEmbeddings, mask: np.ndarray) -> SplitEmbeddings:
    """The rows of ``split`` where ``mask`` is true."""
    return SplitEmbeddings(
        embeddings=split.embeddings[mask],
        labels=split.labels[mask],
        speakers=split.speakers[mask],
        file_ids=split.file_ids[mask],
        chunk_index=split.chunk_index[mask],
        aug=split.aug[mask],
        mc=None if split.mc is None else split.mc[:, mask],
    )


def embed_features(
    model: torch.nn.Module,
    data_path: str | Path,
    split: str | None,
    *,
    augmented: bool = False,
    mc_passes: int = 0,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> SplitEmbeddings:
    """Embed every chunk of ``split`` ("train" | "val" | "test" | None = all) of an HDF5 file.

    ``augmented=False`` keeps only original chunks (aug == 0). With ``mc_passes > 0`` also
    returns MC-dropout embeddings (passes, N, D). Runs under inference mode, in batches.
    """
    from voxgate.training.h5data import H5ChunkDataset, pad_collate

    dev = resolve_device(device)
    ds = H5ChunkDataset(str(data_path), split=split, augmented=augmented)
    n = len(ds)
    if n == 0:
        raise DatasetError(f"{data_path}: split {split!r} has no chunks")
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=False, num_workers=0, collate_fn=pad_collate
    )
    was_training = model.training
    model.eval()
    embs, mcs = [], []
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("label", "speaker", "file_id", "chunk_index", "aug")
    }
    try:
        with torch.inference_mode():
            for batch in loader:
                feats = batch["features"].to(dev, dtype=torch.float32)
                lengths = batch["lengths"].to(dev)
                if mc_passes > 0:
                    mc = model.embed_mc(feats, mc_passes, lengths)
                    mcs.append(mc.cpu().numpy().astype(np.float32))
                embs.append(model(feats, lengths).cpu().numpy().astype(np.float32))
                for k in cols:
                    cols[k].append(batch[k].numpy().astype(np.int64))
    finally:
        model.train(was_training)
    return SplitEmbeddings(
        embeddings=np.concatenate(embs),
        labels=np.concatenate(cols["label"]),
        speakers=np.concatenate(cols["speaker"]),
        file_ids=np.concatenate(cols["file_id"]),
        chunk_index=np.concatenate(cols["chunk_index"]),
        aug=np.concatenate(cols["aug"]),
        mc=np.concatenate(mcs, axis=1) if mcs else None,
    )


def speaker_profiles(embeddings: np.ndarray, speakers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Profiles: (speaker indices (K,) sorted, float32 (K, D) renormalised mean embeddings)."""
    ids = np.unique(speakers)
    emb = unit(np.asarray(embeddings, dtype=np.float32))
    prof = np.stack([emb[speakers == s].mean(axis=0) for s in ids]) if len(ids) else emb[:0]
    return ids, unit(prof)


# --------------------------------------------------------------------------------------
# decisions over consecutive chunks
# --------------------------------------------------------------------------------------


def decision_groups(file_ids: np.ndarray, chunk_index: np.ndarray, n: int) -> np.ndarray:
    """Row indices (G, n) of non-overlapping groups of ``n`` consecutive chunks of one file.

    Within each file, chunks are ordered by chunk_index and cut into runs of consecutive
    indices (a gap starts a new run); each run is split into groups of ``n`` from its start
    and a leftover of fewer than ``n`` chunks is dropped. Groups are ordered by file, then time.
    """
    if n < 1:
        raise ValueError(f"decision chunks must be >= 1, got {n}")
    file_ids = np.asarray(file_ids)
    chunk_index = np.asarray(chunk_index)
    order = np.lexsort((chunk_index, file_ids))
    groups: list[np.ndarray] = []
    start = 0
    m = len(order)
    while start < m:
        end = start + 1
        while (
            end < m
            and file_ids[order[end]] == file_ids[order[start]]
            and chunk_index[order[end]] == chunk_index[order[end - 1]] + 1
        ):
            end += 1
        run = order[start:end]
        for g in range(len(run) // n):
            groups.append(run[g * n : (g + 1) * n])
        start = end
    if not groups:
        return np.zeros((0, n), dtype=np.int64)
    return np.stack(groups).astype(np.int64)


def group_mean(values: np.ndarray, groups: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean of ``values`` over each group of rows along ``axis``: (..., G, ...)."""
    v = np.asarray(values)
    taken = np.take(v, groups, axis=axis)  # inserts a group-size axis after ``axis``
    return taken.mean(axis=axis + 1)


# --------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------


def _f(x: Any) -> float | None:
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
        out["eer"], out["eer_threshold"] = _f(e), _f(e_thr)
        d, d_thr = M.min_dcf(gen, imp, p_target=0.01)
        out["min_dcf"], out["min_dcf_threshold"] = _f(d), _f(d_thr)
        for p in FAR_POINTS:
            frr, thr = M.frr_at_far(gen, imp, p)
            out[f"frr_at_far_{p * 100:g}%"] = _f(frr)
            out[f"threshold_at_far_{p * 100:g}%"] = _f(thr)
    else:
        out.update(eer=None, eer_threshold=None, min_dcf=None, min_dcf_threshold=None)
    if threshold is None:
        threshold = out.get("eer_threshold")
        threshold_source = "eer"
    out["threshold"] = _f(threshold)
    out["threshold_source"] = threshold_source
    if threshold is None:
        return out
    pred = (s >= threshold).astype(np.int64)
    far = float(np.mean(imp >= threshold)) if len(imp) else None
    frr = float(np.mean(gen < threshold)) if len(gen) else None
    out["far"], out["frr"] = far, frr
    rep = M.classification_report(y, pred, AUTH_LABELS)
    out["accuracy"] = _f(rep["accuracy"])
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
        "top1_accuracy": _f(np.mean(pred == y)) if len(y) else None,
        "macro_f1": _f(np.mean(f1s)) if f1s else None,
        "weighted_f1": _f(rep["weighted"]["f1"]),
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
        return _f(correct[mask].mean()) if mask.any() else None

    return {
        "threshold": _f(threshold),
        "std_split": split,
        "std_split_source": "median" if uncertain_std is None else "fixed",
        "mean_std": _f(std.mean()) if len(std) else None,
        "mean_std_genuine": _f(std[y == 1].mean()) if (y == 1).any() else None,
        "mean_std_impostor": _f(std[y == 0].mean()) if (y == 0).any() else None,
        "accuracy": acc(np.ones_like(unc)),
        "accuracy_confident": acc(~unc),
        "accuracy_uncertain": acc(unc),
        "n_confident": int((~unc).sum()),
        "n_uncertain": int(unc.sum()),
        "mean_std_correct": _f(std[correct].mean()) if correct.any() else None,
        "mean_std_wrong": _f(std[~correct].mean()) if (~correct).any() else None,
    }


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as plain, indented JSON (numpy converted, NaN as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_plain(obj, json_safe=True), indent=2, allow_nan=False) + "\n"
    return atomic_write(path, text)


# --------------------------------------------------------------------------------------
# speed
# --------------------------------------------------------------------------------------


def _time_loop(
    fn: Callable[[], Any], min_time_s: float, sync: Callable[[], None]
) -> tuple[int, float]:
    fn()  # warm-up
    sync()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        sync()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time_s and n >= 2:
            return n, elapsed


def measure_speed(
    model: torch.nn.Module,
    feature_config: Any,
    *,
    batch_sizes: Sequence[int] = (1, 64),
    mc_passes: int = 20,
    min_time_s: float = 1.0,
    cuda: bool | None = None,
) -> dict[str, Any]:
    """Inference throughput in 1-s chunks per second, from waveform (log-mel + model).

    CPU with 1 thread and with all threads, and CUDA when available (``cuda=None``);
    deterministic and MC dropout (``mc_passes``; skipped when 0). The thread count is restored.
    """
    from voxgate.core.features import log_mel

    n_samples = feature_config.chunk_samples
    rng = np.random.default_rng(0)
    threads_before = torch.get_num_threads()
    all_threads = max(threads_before, os.cpu_count() or 1)
    settings: list[tuple[str, torch.device, int | None]] = [
        ("cpu_1_thread", torch.device("cpu"), 1),
        (f"cpu_{all_threads}_threads", torch.device("cpu"), all_threads),
    ]
    if cuda is None:
        cuda = torch.cuda.is_available()
    if cuda:
        settings.append(("cuda", torch.device("cuda"), None))
    out: dict[str, Any] = {
        "unit": "chunks/s",
        "chunk_s": n_samples / feature_config.sample_rate,
        "includes_features": True,
        "mc_passes": int(mc_passes),
    }
    results: list[dict[str, Any]] = []
    was_training = model.training
    try:
        for name, dev, threads in settings:
            net = model if dev.type == "cpu" else copy.deepcopy(model).to(dev)
            net.eval()
            if threads is not None:
                torch.set_num_threads(threads)
            sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
            for bs in batch_sizes:
                waves = torch.from_numpy(
                    (0.1 * rng.standard_normal((bs, n_samples))).astype(np.float32)
                ).to(dev)
                modes = [("deterministic", 0)] + ([("mc", mc_passes)] if mc_passes > 0 else [])
                for mode, passes in modes:

                    def step(waves=waves, passes=passes, net=net) -> None:
                        with torch.inference_mode():
                            feats = log_mel(waves, feature_config)
                            if passes:
                                net.embed_mc(feats, passes)
                            else:
                                net(feats)

                    n, elapsed = _time_loop(step, min_time_s, sync)
                    results.append(
                        {
                            "device": name,
                            "batch": int(bs),
                            "mode": mode,
                            "passes": int(passes),
                            "chunks_per_s": n * bs / elapsed,
                            "ms_per_batch": 1000.0 * elapsed / n,
                        }
                    )
            if dev.type == "cuda":
                out["cuda_device"] = torch.cuda.get_device_name(dev)
    finally:
        torch.set_num_threads(threads_before)
        model.train(was_training)
    out["results"] = results
    return out


# --------------------------------------------------------------------------------------
# unseen outsiders
# --------------------------------------------------------------------------------------


def score_outsiders(
    encoder: Any,
    source: str | Path,
    profiles: np.ndarray,
    *,
    subsets: Sequence[str] | None = None,
    thresholds: dict[str, float | None],
    auth_index: int | None = None,
    batch_size: int = 128,
    speakers: Sequence[str] | None = None,
) -> dict[str, Any]:
    """FAR of speakers never seen in training against the authorized ``profiles`` (K, D),
    through the client's path (``core.scoring`` windows and voicing rule, ``Pipeline.replay``).

    ``source``: a folder of audio files (any depth) or a manifest CSV (filtered by
    ``subsets``). Chunk level: every scored window's best cosine (and head probability);
    decision level: each recording is one attempt against every profile, decided like
    ``verify --file`` (first K windows; its score is the best profile's). ``thresholds``
    keys: cosine_1s, cosine_3s, auth_prob_1s (None = skip).
    """
    import tempfile

    from voxgate.core.audio import load_audio
    from voxgate.core.errors import AudioError
    from voxgate.core.pipeline import Pipeline, PipelineConfig
    from voxgate.core.profiles import Profile, ProfileStore
    from voxgate.core.scoring import embed_windows, speech_mask, windows
    from voxgate.training.verification import collect_recordings

    recordings = collect_recordings(source, subsets=subsets, speakers=speakers)
    prof = unit(np.asarray(profiles, dtype=np.float32))
    cos_all, prob_all, decisions, spk_of, skipped = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="voxgate-outsiders-") as tmp:
        store = ProfileStore(Path(tmp) / "profiles")
        for k, vec in enumerate(prof):
            store.save(Profile(f"authorized-{k}", vec, model_fingerprint=encoder.fingerprint))
        pipe = Pipeline(encoder, store, PipelineConfig(lockout=False, threshold=0.0))
        for speaker, recs in recordings.items():
            for rec in recs:
                try:
                    wave = load_audio(rec.path, encoder.feature_config.sample_rate)
                except AudioError as exc:
                    skipped.append([str(rec.path), exc.reason])
                    continue
                win = windows(wave, encoder.feature_config)
                mask = speech_mask(win)
                if not mask.any():
                    skipped.append([str(rec.path), "no window of voiced speech"])
                    continue
                emb = embed_windows(encoder, win.waves[mask], batch_size)
                cos_all.append((emb @ prof.T).max(axis=1))
                if auth_index is not None:
                    with torch.inference_mode():
                        et = torch.from_numpy(emb).to(encoder.device)
                        p = encoder.model.head_probs(et, "authentication")
                    prob_all.append(p[:, auth_index].cpu().numpy())
                verdicts = [v for v in pipe.replay(wave).values() if v is not None]
                final = [v.score for v in verdicts if v.state.value in ("accepted", "rejected")]
                if final:
                    decisions.append(max(final))
                spk_of.append(speaker)
    out: dict[str, Any] = {
        "source": str(source),
        "subsets": list(subsets) if subsets else None,
        "n_files": len(spk_of),
        "n_speakers": len(set(spk_of)),
        "skipped": skipped,
        "decision": "first K scored windows of each recording, as verify --file",
    }
    if not spk_of:
        out["n_chunks"] = 0
        return out
    cos = np.concatenate(cos_all)
    out["n_chunks"], out["n_decisions"] = int(len(cos)), len(decisions)
    levels = {"cosine": {"chunk": (cos, "cosine_1s"), "decision": (np.array(decisions), "cosine_3s")}}
    if prob_all:
        levels["heads"] = {"chunk": (np.concatenate(prob_all), "auth_prob_1s")}
    for family, by_level in levels.items():
        out[family] = {}
        for level, (vals, tkey) in by_level.items():
            thr = thresholds.get(tkey)
            out[family][level] = {
                "threshold": _f(thr),
                "n": int(len(vals)),
                "far": _f(np.mean(vals >= thr)) if thr is not None and len(vals) else None,
                "mean_score": _f(vals.mean()) if len(vals) else None,
                "max_score": _f(vals.max()) if len(vals) else None,
            }
    return out


# --------------------------------------------------------------------------------------
# the evaluation
# --------------------------------------------------------------------------------------


@dataclass
class EvaluationResult:
    """metrics: the plain-JSON result; the arrays below feed the figures."""

    metrics: dict[str, Any]
    # (family, level) -> (scores (N,), y_true (N,) 0/1)
    auth_scores: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # (family, level) -> (mean (N,), std (N,), y_true (N,), threshold)
    mc: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray, float]] = field(
        default_factory=dict
    )


def _load(model_path: str | Path, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:

    return load_checkpoint(model_path, map_location=device)


def _check_features(meta: dict[str, Any], h5meta: Any, data_path: str | Path) -> None:
    from voxgate.core.config import FeatureConfig

    ck = FeatureConfig.from_dict(meta["feature_config"])
    ds = h5meta.feature_config
    if not isinstance(ds, FeatureConfig):
        ds = FeatureConfig.from_dict(ds if isinstance(ds, dict) else json.loads(ds))
    if ck != ds:
        raise DatasetError(
            f"{data_path}: dataset features {ds.to_dict()} differ from the checkpoint's "
            f"{ck.to_dict()}; rebuild the dataset or use the matching model"
        )


def _auth_index(meta: dict[str, Any]) -> int:
    labels = meta.get("labels", {}).get("authentication") or AUTH_LABELS
    return labels.index("authorized") if "authorized" in labels else len(labels) - 1


@dataclass
class _Scored:
    """Per-chunk scores of one family for the evaluated split."""

    auth: np.ndarray  # (N,) authentication score
    ident: np.ndarray | None  # (N, C) identification scores
    class_names: list[str]
    auth_mc: np.ndarray | None = None  # (passes, N)


def _cosine_family(
    split: SplitEmbeddings,
    prof_ids: np.ndarray,
    profiles: np.ndarray,
    auth_cols: np.ndarray,
    speakers: list[str],
) -> _Scored:
    sims = split.embeddings @ profiles.T  # (N, K)
    auth = sims[:, auth_cols].max(axis=1) if len(auth_cols) else np.full(len(sims), -1.0)
    mc = None
    if split.mc is not None and len(auth_cols):
        mc = (split.mc @ profiles[auth_cols].T).max(axis=2)  # (passes, N)
    return _Scored(auth, sims, [speakers[i] for i in prof_ids], mc)


def _head_family(
    model: torch.nn.Module, meta: dict[str, Any], split: SplitEmbeddings, device: torch.device
) -> dict[str, _Scored | np.ndarray | list[str]]:
    out: dict[str, Any] = {}
    heads = set(getattr(model, "heads", {}).keys())
    with torch.inference_mode():
        emb = torch.from_numpy(split.embeddings).to(device)
        if "authentication" in heads:
            ai = _auth_index(meta)
            out["auth"] = model.head_probs(emb, "authentication")[:, ai].cpu().numpy()
            if split.mc is not None:
                mc = torch.from_numpy(split.mc).to(device)
                p, n, d = mc.shape
                probs = model.head_probs(mc.reshape(p * n, d), "authentication")[:, ai]
                out["auth_mc"] = probs.reshape(p, n).cpu().numpy()
        if "identification" in heads:
            out["ident"] = model.head_probs(emb, "identification").cpu().numpy()
            names = meta.get("labels", {}).get("identification")
            if not names or len(names) != out["ident"].shape[1]:
                names = [str(i) for i in range(out["ident"].shape[1])]
            out["ident_names"] = list(names)
    return out


def _enrollment(
    model: torch.nn.Module,
    data_path: str | Path,
    split: str,
    split_emb: SplitEmbeddings,
    batch_size: int,
    device: torch.device,
) -> SplitEmbeddings:
    """Train-split embeddings for the enrollment profiles (``split_emb`` when it is train)."""
    if split == "train":
        return split_emb
    log.info("embedding the train split (enrollment profiles)")
    return embed_features(model, data_path, "train", batch_size=batch_size, device=device)


def _profiles(
    enroll: SplitEmbeddings, speakers: Sequence[str], authorized: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(profile speaker ids, profiles, columns of the authorized speakers' profiles)."""
    prof_ids, profiles = speaker_profiles(enroll.embeddings, enroll.speakers)
    auth_set = {speakers.index(a) for a in authorized if a in speakers}
    auth_cols = np.array([k for k, s in enumerate(prof_ids) if s in auth_set], dtype=np.int64)
    return prof_ids, profiles, auth_cols


def run_evaluation(
    model_path: str | Path,
    data_path: str | Path,
    split: str = "test",
    *,
    impostors: str | Path | None = None,
    impostor_subsets: Sequence[str] | None = None,
    impostor_speakers: Sequence[str] | None = None,
    mc_passes: int = 20,
    decision_chunks: int = 3,
    speed: bool = True,
    speed_min_time_s: float = 1.0,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    speakers_subset: Sequence[str] | None = None,
) -> EvaluationResult:
    """Everything :func:`evaluate_checkpoint` reports, plus the arrays behind the figures.

    ``speakers_subset``: evaluate only these speaker ids (test chunks, enrollment profiles
    and identification classes), e.g. the 40 LibriSpeech test-clean speakers of the
    report's scenario inside a dataset that also holds other corpora.
    """
    from voxgate.training.h5data import read_meta

    dev = resolve_device(device)
    model, meta = _load(model_path, dev)
    h5 = read_meta(str(data_path))
    _check_features(meta, h5, data_path)
    speakers = list(h5.speakers)
    authorized = list(h5.authorized)
    ck_auth = list(meta.get("authorized") or [])
    calib = dict(meta.get("calibration") or {})

    log.info("embedding the %s split", split)
    test = embed_features(
        model, data_path, split, mc_passes=mc_passes, batch_size=batch_size, device=dev
    )
    enroll = _enrollment(model, data_path, split, test, batch_size, dev)
    keep_names: set[str] | None = None
    if speakers_subset:
        unknown = sorted(set(speakers_subset) - set(speakers))
        if unknown:
            raise DatasetError(f"{data_path}: speakers not in the dataset: {unknown[:5]}")
        keep_names = set(speakers_subset)
        keep = np.array(sorted(speakers.index(s) for s in keep_names), dtype=np.int64)
        test = _select(test, np.isin(test.speakers, keep))
        enroll = _select(enroll, np.isin(enroll.speakers, keep))
    prof_ids, profiles, auth_cols = _profiles(enroll, speakers, authorized)

    groups = decision_groups(test.file_ids, test.chunk_index, decision_chunks)
    y1 = (test.labels == 1).astype(np.int64)
    y3 = y1[groups[:, 0]] if len(groups) else y1[:0]
    decision_s = decision_chunks * float(meta["feature_config"].get("chunk_s", 1.0))

    notes: list[str] = []
    if ck_auth and sorted(ck_auth) != sorted(authorized):
        notes.append(
            f"checkpoint authorized {sorted(ck_auth)} differs from the dataset's "
            f"{sorted(authorized)}; the dataset's labels are the ground truth"
        )
    present = np.unique(test.speakers)
    metrics: dict[str, Any] = {
        "model": str(model_path),
        "model_fingerprint": model_fingerprint(model),
        "mode": meta.get("mode"),
        "data": str(data_path),
        "data_fingerprint": h5.fingerprint,
        "checkpoint_data_fingerprint": meta.get("data_fingerprint"),
        "split": split,
        "decision_chunks": int(decision_chunks),
        "decision_s": decision_s,
        "n_chunks": len(test),
        "n_decisions": int(len(groups)),
        "n_files": int(len(np.unique(test.file_ids))),
        "n_speakers": int(len(present)),
        "authorized": authorized,
        "speakers_subset": sorted(keep_names) if keep_names else None,
        "calibration": calib,
        "notes": notes,
    }
    result = EvaluationResult(metrics)

    families: dict[str, dict[str, Any]] = {}
    # (a) trained heads
    hd = _head_family(model, meta, test, dev)
    if keep_names and "ident" in hd:
        cols = [i for i, n in enumerate(hd["ident_names"]) if n in keep_names]
        hd["ident"] = hd["ident"][:, cols]
        hd["ident_names"] = [hd["ident_names"][i] for i in cols]
    # (b) cosine against train-split profiles
    cos = _cosine_family(test, prof_ids, profiles, auth_cols, speakers)

    fam_defs = [("cosine", cos.auth, cos.auth_mc, "cosine")]
    if "auth" in hd:
        fam_defs.append(("heads", hd["auth"], hd.get("auth_mc"), "auth_prob"))
    for family, auth, auth_mc, key in fam_defs:
        fm: dict[str, Any] = {"authentication": {}, "mc_dropout": {}}
        for level, scores, y, mc, tkey in (
            ("chunk", auth, y1, auth_mc, f"{key}_1s"),
            (
                "decision",
                group_mean(auth, groups) if len(groups) else auth[:0],
                y3,
                group_mean(auth_mc, groups, axis=1)
                if auth_mc is not None and len(groups)
                else None,
                f"{key}_3s",
            ),
        ):
            thr = calib.get(tkey)
            am = auth_metrics(scores, y, thr, "calibrated" if thr is not None else "eer")
            fm["authentication"][level] = am
            result.auth_scores[(family, level)] = (scores, y)
            if mc is not None and am.get("threshold") is not None and len(y):
                mean, std = mc.mean(axis=0), mc.std(axis=0)
                mm = mc_metrics(mean, std, y, am["threshold"])
                mm["passes"] = int(mc.shape[0])
                fm["mc_dropout"][level] = mm
                result.mc[(family, level)] = (mean, std, y, am["threshold"])
        families[family] = fm

    # identification
    cos_names = cos.class_names
    prof_pos = {int(s): k for k, s in enumerate(prof_ids)}
    y_cos = np.array([prof_pos.get(int(s), -1) for s in test.speakers], dtype=np.int64)
    id_defs = [("cosine", cos.ident, y_cos, cos_names)]
    if "ident" in hd:
        names = hd["ident_names"]
        pos = {n: i for i, n in enumerate(names)}
        y_head = np.array([pos.get(speakers[s], -1) for s in test.speakers], dtype=np.int64)
        id_defs.append(("heads", hd["ident"], y_head, names))
    for family, sc, y, names in id_defs:
        idm: dict[str, Any] = {}
        idm["chunk"] = ident_metrics(sc, y, names)
        if len(groups):
            idm["decision"] = ident_metrics(group_mean(sc, groups), y[groups[:, 0]], names)
        families.setdefault(family, {})["identification"] = idm
    metrics["cosine"] = families["cosine"]
    metrics["cosine"]["enrollment"] = {
        "split": "train",
        "augmented": False,
        "n_chunks": len(enroll),
        "n_profiles": int(len(prof_ids)),
        "n_authorized_profiles": int(len(auth_cols)),
    }
    metrics["heads"] = families.get("heads")

    if speed:
        log.info("measuring inference speed")
        from voxgate.core.config import FeatureConfig

        metrics["speed"] = measure_speed(
            model,
            FeatureConfig.from_dict(meta["feature_config"]),
            mc_passes=mc_passes,
            min_time_s=speed_min_time_s,
        )
    if impostors is not None:
        log.info("scoring unseen outsiders from %s", impostors)
        from voxgate.core.inference import SpeakerEncoder

        encoder = SpeakerEncoder(model, meta, device=dev)
        used = {
            "cosine_1s": families["cosine"]["authentication"]["chunk"].get("threshold"),
            "cosine_3s": families["cosine"]["authentication"]["decision"].get("threshold"),
        }
        if "heads" in families:
            used["auth_prob_1s"] = families["heads"]["authentication"]["chunk"].get("threshold")
            used["auth_prob_3s"] = families["heads"]["authentication"]["decision"].get("threshold")
        metrics["unseen_outsiders"] = score_outsiders(
            encoder,
            impostors,
            profiles[auth_cols],
            subsets=impostor_subsets,
            speakers=impostor_speakers,
            thresholds=used,
            auth_index=_auth_index(meta) if "heads" in families else None,
        )
        metrics["unseen_outsiders"]["thresholds_source"] = (
            "calibrated" if calib else "eer of this split"
        )
    result.metrics = to_plain(metrics, json_safe=True)
    return result


def evaluate_checkpoint(
    model_path: str | Path,
    data_path: str | Path,
    split: str = "test",
    *,
    out_dir: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Evaluate a checkpoint on one split; returns the metrics dict (plain JSON).

    ``options``: the keyword arguments of :func:`run_evaluation` (impostors, mc_passes,
    decision_chunks, speed, device, speakers_subset, ...).
    With ``out_dir``: writes metrics.json, per-trial scores (scores.npz, see trials.py),
    confusion CSVs and PNG figures there.
    """
    result = run_evaluation(model_path, data_path, split, **options)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        result.metrics["figures"] = [p.name for p in save_figures(result, out)]
        write_scores(result.auth_scores, out / SCORES_FILE)
        write_json(result.metrics, out / "metrics.json")
    return result.metrics


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------


def _write_csv(
    path: Path, matrix: list[list[int]], labels: list[str], col_labels: list[str]
) -> Path:
    import csv
    import io

    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["true \\ predicted", *col_labels])
    for lab, row in zip(labels, matrix):
        w.writerow([lab, *row])
    return atomic_write(path, buf.getvalue())


def save_figures(result: EvaluationResult, out_dir: str | Path) -> list[Path]:
    """Write DET curves, confusion matrices (PNG + CSV) and MC-dropout plots; returns paths."""
    from .plots import fig_confusion, fig_det_families, fig_mc, save_png

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = result.metrics
    written: list[Path] = []
    for level in ("chunk", "decision"):
        curves = {}
        for (family, lev), (scores, y) in result.auth_scores.items():
            if lev == level and (y == 1).any() and (y == 0).any():
                curves[family] = (scores[y == 1], scores[y == 0])
        if curves:
            what = "1-s chunk" if level == "chunk" else f"{m['decision_s']:g}-s decision"
            title = f"DET, {m['split']} split, per {what}"
            written.append(save_png(fig_det_families(curves, title), out / f"det_{level}.png"))
    for family in ("cosine", "heads"):
        fm = m.get(family) or {}
        for level, am in (fm.get("authentication") or {}).items():
            if "confusion" in am:
                stem = f"confusion_auth_{family}_{level}"
                written.append(
                    _write_csv(out / f"{stem}.csv", am["confusion"], AUTH_LABELS, AUTH_LABELS)
                )
                title = f"authentication ({family}, {level}, thr {am['threshold']:.3f})"
                fig = fig_confusion(np.array(am["confusion"]), AUTH_LABELS, title)
                written.append(save_png(fig, out / f"{stem}.png"))
        for level, im in (fm.get("identification") or {}).items():
            stem = f"confusion_ident_{family}_{level}"
            cols = im["confusion_labels"]
            written.append(_write_csv(out / f"{stem}.csv", im["confusion"], cols[:-1], cols))
            top1 = 100 * (im["top1_accuracy"] or 0)
            title = f"identification ({family}, {level}), top-1 {top1:.1f} %"
            fig = fig_confusion(np.array(im["confusion"]), cols[:-1], title, col_labels=cols)
            written.append(save_png(fig, out / f"{stem}.png"))
    if result.mc:
        entries = {f"{fam} {lev}": v for (fam, lev), v in result.mc.items()}
        written.append(save_png(fig_mc(entries), out / "mc_dropout.png"))
    return written


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
    for r in (metrics.get("speed") or {}).get("results", []):
        lines.append(
            f"  speed {r['device']:16s} batch {r['batch']:3d} {r['mode']:13s} "
            f"{r['chunks_per_s']:9.1f} chunks/s"
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


# --------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------


def calibrate_checkpoint(
    model_path: str | Path,
    data_path: str | Path,
    split: str = "val",
    target_far: float = 0.01,
    *,
    decision_chunks: int = 3,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Choose thresholds at ``target_far`` on the impostor (outsider) chunks of ``split``.

    Cosine scores are max cosine against the authorized speakers' train-split profiles;
    head scores are P(authorized). 1-s chunks and decisions (mean over ``decision_chunks``
    consecutive chunks). ``threshold`` = the decision-level cosine one (the client's score).
    With ``write`` the checkpoint's calibration gets the head thresholds and, for reference,
    the closed-set cosine figures (``closed_set``); the client's threshold is left alone.
    """
    from voxgate.core import metrics as M
    from voxgate.training.h5data import read_meta

    if not 0.0 < target_far < 1.0:
        raise ValueError(f"target_far must be in (0, 1), got {target_far}")
    dev = resolve_device(device)
    model, meta = _load(model_path, dev)
    h5 = read_meta(str(data_path))
    _check_features(meta, h5, data_path)
    speakers = list(h5.speakers)
    val = embed_features(model, data_path, split, batch_size=batch_size, device=dev)
    enroll = _enrollment(model, data_path, split, val, batch_size, dev)
    _, profiles, auth_cols = _profiles(enroll, speakers, h5.authorized)
    if not len(auth_cols):
        raise DatasetError(f"{data_path}: no authorized speaker has train-split chunks to enroll")
    groups = decision_groups(val.file_ids, val.chunk_index, decision_chunks)
    y1 = (val.labels == 1).astype(np.int64)
    y3 = y1[groups[:, 0]] if len(groups) else y1[:0]
    if not (y1 == 0).any():
        raise DatasetError(f"{data_path}: split {split!r} has no outsider chunks to calibrate on")

    cos1 = (val.embeddings @ profiles[auth_cols].T).max(axis=1)
    hd = _head_family(model, meta, val, dev)

    def thr(scores: np.ndarray, y: np.ndarray) -> float | None:
        imp = scores[y == 0]
        return _f(M.threshold_at_far(imp, target_far)) if len(imp) else None

    cal: dict[str, Any] = {
        "target_far": float(target_far),
        "split": split,
        "cosine_1s": thr(cos1, y1),
        "cosine_3s": thr(group_mean(cos1, groups), y3) if len(groups) else None,
        "auth_prob_1s": None,
        "auth_prob_3s": None,
        "n_genuine": int((y1 == 1).sum()),
        "n_impostor": int((y1 == 0).sum()),
        "n_genuine_3s": int((y3 == 1).sum()),
        "n_impostor_3s": int((y3 == 0).sum()),
        "decision_chunks": int(decision_chunks),
        "source": f"{Path(data_path).name}:{split} (closed set, profiles from train split)",
    }
    if "auth" in hd:
        cal["auth_prob_1s"] = thr(hd["auth"], y1)
        cal["auth_prob_3s"] = thr(group_mean(hd["auth"], groups), y3) if len(groups) else None
    if cal["auth_prob_3s"] is not None or cal["auth_prob_1s"] is not None:
        # the pipeline's "head-authentication" mode decides on ~3 s of speech
        best = cal["auth_prob_3s"] if cal["auth_prob_3s"] is not None else cal["auth_prob_1s"]
        cal["head_thresholds"] = {"authentication": best}
    if write:
        # The client's cosine threshold comes only from ``calibrate --verification`` (decisions
        # replayed through the live path); closed-set chunk figures are kept for reference.
        old = dict(read_checkpoint(model_path).get("calibration") or {})
        old["closed_set"] = {k: cal[k] for k in ("cosine_1s", "cosine_3s", "source", "split")}
        old["head_thresholds"] = cal.get("head_thresholds")
        update_checkpoint(model_path, calibration=old)
    return cal
