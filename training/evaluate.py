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

import json
import logging
from collections.abc import Sequence
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

from .eval_embed import (
    SplitEmbeddings,
    _select,
    decision_groups,
    embed_features,
    group_mean,
    speaker_profiles,
)
from .eval_figures import save_figures
from .eval_metrics import (
    AUTH_LABELS,
    auth_metrics,
    ident_metrics,
    mc_metrics,
    plain_float,
    summary_lines,
)
from .eval_speed import measure_speed
from .outsiders import score_outsiders
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


# --------------------------------------------------------------------------------------
# embeddings of an HDF5 split
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# decisions over consecutive chunks
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as plain, indented JSON (numpy converted, NaN as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_plain(obj, json_safe=True), indent=2, allow_nan=False) + "\n"
    return atomic_write(path, text)


# --------------------------------------------------------------------------------------
# speed
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# unseen outsiders
# --------------------------------------------------------------------------------------


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
    speakers, authorized = list(h5.speakers), list(h5.authorized)
    calib = dict(meta.get("calibration") or {})
    log.info("embedding the %s split", split)
    test = embed_features(
        model, data_path, split, mc_passes=mc_passes, batch_size=batch_size, device=dev
    )
    enroll = _enrollment(model, data_path, split, test, batch_size, dev)
    keep_names: set[str] | None = None
    if speakers_subset:
        test, enroll, keep_names = _keep_speakers(test, enroll, speakers, speakers_subset, data_path)
    prof_ids, profiles, auth_cols = _profiles(enroll, speakers, authorized)
    groups = decision_groups(test.file_ids, test.chunk_index, decision_chunks)
    metrics = _header(model, meta, h5, model_path, data_path, split, test, groups, decision_chunks)
    metrics["speakers_subset"] = sorted(keep_names) if keep_names else None
    result = EvaluationResult(metrics)
    hd = _head_family(model, meta, test, dev)  # (a) trained heads
    if keep_names and "ident" in hd:
        cols = [i for i, n in enumerate(hd["ident_names"]) if n in keep_names]
        hd["ident"] = hd["ident"][:, cols]
        hd["ident_names"] = [hd["ident_names"][i] for i in cols]
    cos = _cosine_family(test, prof_ids, profiles, auth_cols, speakers)  # (b) vs profiles
    families = _auth_families(result, cos, hd, test, groups, calib)
    _ident_families(families, cos, hd, test, groups, prof_ids, speakers)
    metrics["cosine"] = families["cosine"]
    metrics["cosine"]["enrollment"] = {
        "split": "train", "augmented": False, "n_chunks": len(enroll),
        "n_profiles": int(len(prof_ids)), "n_authorized_profiles": int(len(auth_cols)),
    }  # fmt: skip
    metrics["heads"] = families.get("heads")
    if speed:
        log.info("measuring inference speed")
        from voxgate.core.config import FeatureConfig

        fcfg = FeatureConfig.from_dict(meta["feature_config"])
        metrics["speed"] = measure_speed(
            model, fcfg, mc_passes=mc_passes, min_time_s=speed_min_time_s
        )
    if impostors is not None:
        log.info("scoring unseen outsiders from %s", impostors)
        metrics["unseen_outsiders"] = _unseen_outsiders(
            model, meta, dev, families, profiles[auth_cols], calib, impostors,
            impostor_subsets, impostor_speakers,
        )  # fmt: skip
    result.metrics = to_plain(metrics, json_safe=True)
    return result


def _keep_speakers(
    test: SplitEmbeddings,
    enroll: SplitEmbeddings,
    speakers: list[str],
    subset: Sequence[str],
    data_path: str | Path,
) -> tuple[SplitEmbeddings, SplitEmbeddings, set[str]]:
    """Test and enrollment chunks of the ``subset`` speakers only; DatasetError for unknown ids."""
    unknown = sorted(set(subset) - set(speakers))
    if unknown:
        raise DatasetError(f"{data_path}: speakers not in the dataset: {unknown[:5]}")
    keep_names = set(subset)
    keep = np.array(sorted(speakers.index(s) for s in keep_names), dtype=np.int64)
    return (
        _select(test, np.isin(test.speakers, keep)),
        _select(enroll, np.isin(enroll.speakers, keep)),
        keep_names,
    )


def _header(
    model: torch.nn.Module,
    meta: dict[str, Any],
    h5: Any,
    model_path: str | Path,
    data_path: str | Path,
    split: str,
    test: SplitEmbeddings,
    groups: np.ndarray,
    decision_chunks: int,
) -> dict[str, Any]:
    """The metrics' description of what was evaluated (model, data, counts, notes)."""
    authorized = list(h5.authorized)
    ck_auth = list(meta.get("authorized") or [])
    notes: list[str] = []
    if ck_auth and sorted(ck_auth) != sorted(authorized):
        notes.append(
            f"checkpoint authorized {sorted(ck_auth)} differs from the dataset's "
            f"{sorted(authorized)}; the dataset's labels are the ground truth"
        )
    return {
        "model": str(model_path),
        "model_fingerprint": model_fingerprint(model),
        "mode": meta.get("mode"),
        "data": str(data_path),
        "data_fingerprint": h5.fingerprint,
        "checkpoint_data_fingerprint": meta.get("data_fingerprint"),
        "split": split,
        "decision_chunks": int(decision_chunks),
        "decision_s": decision_chunks * float(meta["feature_config"].get("chunk_s", 1.0)),
        "n_chunks": len(test),
        "n_decisions": int(len(groups)),
        "n_files": int(len(np.unique(test.file_ids))),
        "n_speakers": int(len(np.unique(test.speakers))),
        "authorized": authorized,
        "speakers_subset": None,
        "calibration": dict(meta.get("calibration") or {}),
        "notes": notes,
    }


def _auth_families(
    result: EvaluationResult,
    cos: _Scored,
    hd: dict[str, Any],
    test: SplitEmbeddings,
    groups: np.ndarray,
    calib: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Authentication (and MC-dropout) metrics per family and level; fills result's arrays."""
    families: dict[str, dict[str, Any]] = {}
    y1 = (test.labels == 1).astype(np.int64)
    y3 = y1[groups[:, 0]] if len(groups) else y1[:0]
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
    return families


def _ident_families(
    families: dict[str, dict[str, Any]],
    cos: _Scored,
    hd: dict[str, Any],
    test: SplitEmbeddings,
    groups: np.ndarray,
    prof_ids: np.ndarray,
    speakers: list[str],
) -> None:
    """Identification metrics per family (per chunk and per decision) into ``families``."""
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


def _unseen_outsiders(
    model: torch.nn.Module,
    meta: dict[str, Any],
    dev: torch.device,
    families: dict[str, dict[str, Any]],
    auth_profiles: np.ndarray,
    calib: dict[str, Any],
    impostors: str | Path,
    impostor_subsets: Sequence[str] | None,
    impostor_speakers: Sequence[str] | None,
) -> dict[str, Any]:
    """FAR on recordings of unseen speakers at the thresholds this evaluation used."""
    from voxgate.core.inference import SpeakerEncoder

    encoder = SpeakerEncoder(model, meta, device=dev)
    used = {
        "cosine_1s": families["cosine"]["authentication"]["chunk"].get("threshold"),
        "cosine_3s": families["cosine"]["authentication"]["decision"].get("threshold"),
    }
    if "heads" in families:
        used["auth_prob_1s"] = families["heads"]["authentication"]["chunk"].get("threshold")
        used["auth_prob_3s"] = families["heads"]["authentication"]["decision"].get("threshold")
    out = score_outsiders(
        encoder,
        impostors,
        auth_profiles,
        subsets=impostor_subsets,
        speakers=impostor_speakers,
        thresholds=used,
        auth_index=_auth_index(meta) if "heads" in families else None,
    )
    out["thresholds_source"] = "calibrated" if calib else "eer of this split"
    return out


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
        return plain_float(M.threshold_at_far(imp, target_far)) if len(imp) else None

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
