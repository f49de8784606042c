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
    model_fingerprint,
    to_plain,
)
from voxgate.core.device import resolve_device
from voxgate.core.errors import DatasetError
from voxgate.core.fileio import atomic_write

from .checkpoint_calibration import calibrate_checkpoint
from .eval_embed import (
    SplitEmbeddings,
    _select,
    decision_groups,
    embed_features,
    group_mean,
    speaker_profiles,
)
from .eval_families import (
    Scored,
    auth_index,
    check_features,
    cosine_family,
    enrolled_profiles,
    enrollment,
    head_family,
    load_model,
)
from .eval_figures import save_figures
from .eval_metrics import (
    auth_metrics,
    ident_metrics,
    mc_metrics,
    summary_lines,
)
from .h5data import read_meta
from .outsiders import score_outsiders
from .trials import EMBEDDINGS_FILE, SCORES_FILE, EmbeddingSet, write_embeddings, write_scores

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
# metrics
# --------------------------------------------------------------------------------------


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as plain, indented JSON (numpy converted, NaN as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_plain(obj, json_safe=True), indent=2, allow_nan=False) + "\n"
    return atomic_write(path, text)


# --------------------------------------------------------------------------------------
# the evaluation
# --------------------------------------------------------------------------------------


@dataclass
class EvaluationResult:
    """metrics: the plain-JSON result; the arrays below feed the figures and the report."""

    metrics: dict[str, Any]
    # the evaluated chunks' embeddings and labels (the report's t-SNE)
    embeddings: EmbeddingSet | None = None
    # (family, level) -> (scores (N,), y_true (N,) 0/1)
    auth_scores: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # (family, level) -> (mean (N,), std (N,), y_true (N,), threshold)
    mc: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray, float]] = field(
        default_factory=dict
    )


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
    batch_size: int = 256,
    device: str | torch.device | None = None,
    speakers_subset: Sequence[str] | None = None,
) -> EvaluationResult:
    """Everything :func:`evaluate_checkpoint` reports, plus the arrays behind the figures.

    ``speakers_subset``: evaluate only these speaker ids (test chunks, enrollment profiles
    and identification classes), e.g. the 40 LibriSpeech test-clean speakers of the
    report's scenario inside a dataset that also holds other corpora.
    """
    dev = resolve_device(device)
    model, meta = load_model(model_path, dev)
    h5 = read_meta(str(data_path))
    check_features(meta, h5, data_path)
    speakers, authorized = list(h5.speakers), list(h5.authorized)
    calib = dict(meta.get("calibration") or {})
    log.info("embedding the %s split", split)
    test = embed_features(
        model, data_path, split, mc_passes=mc_passes, batch_size=batch_size, device=dev, meta=h5
    )
    enroll = enrollment(model, data_path, split, test, batch_size, dev, meta=h5)
    keep_names: set[str] | None = None
    if speakers_subset:
        test, enroll, keep_names = _keep_speakers(test, enroll, speakers, speakers_subset, data_path)
    prof_ids, profiles, auth_cols = enrolled_profiles(enroll, speakers, authorized)
    groups = decision_groups(test.file_ids, test.chunk_index, decision_chunks)
    metrics = _header(model, meta, h5, model_path, data_path, split, test, groups, decision_chunks)
    metrics["speakers_subset"] = sorted(keep_names) if keep_names else None  # keeps key order
    result = EvaluationResult(metrics)
    hd = _keep_head_classes(head_family(model, meta, test, dev), keep_names)  # (a) trained heads
    cos = cosine_family(test, prof_ids, profiles, auth_cols, speakers)  # (b) vs profiles
    families = _auth_families(result, cos, hd, test, groups, calib)
    _ident_families(families, cos, hd, test, groups, prof_ids, speakers)
    metrics["cosine"] = families["cosine"]
    metrics["cosine"]["enrollment"] = {
        "split": "train", "augmented": False, "n_chunks": len(enroll),
        "n_profiles": int(len(prof_ids)), "n_authorized_profiles": int(len(auth_cols)),
    }  # fmt: skip
    metrics["heads"] = families.get("heads")
    result.embeddings = EmbeddingSet(test.embeddings, test.labels, test.speakers, speakers, split)
    if impostors is not None:
        log.info("scoring unseen outsiders from %s", impostors)
        metrics["unseen_outsiders"] = _unseen_outsiders(
            model, meta, dev, families, profiles[auth_cols], calib, impostors,
            impostor_subsets, impostor_speakers,
        )  # fmt: skip
    result.metrics = to_plain(metrics, json_safe=True)
    return result


def _keep_head_classes(hd: dict[str, Any], keep_names: set[str] | None) -> dict[str, Any]:
    """The identification head's scores restricted to the ``keep_names`` classes (all if None)."""
    if keep_names and "ident" in hd:
        cols = [i for i, n in enumerate(hd["ident_names"]) if n in keep_names]
        hd["ident"], hd["ident_names"] = hd["ident"][:, cols], [hd["ident_names"][i] for i in cols]
    return hd


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
    cos: Scored,
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
    cos: Scored,
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
        auth_index=auth_index(meta) if "heads" in families else None,
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
    decision_chunks, device, speakers_subset, ...).
    With ``out_dir``: writes metrics.json, per-trial scores (scores.npz), the evaluated
    chunks' embeddings and labels (embeddings.npz; both in trials.py), confusion CSVs and PNG
    figures there.
    """
    result = run_evaluation(model_path, data_path, split, **options)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        result.metrics["figures"] = [p.name for p in save_figures(result, out)]
        write_scores(result.auth_scores, out / SCORES_FILE)
        if result.embeddings is not None:
            write_embeddings(result.embeddings, out / EMBEDDINGS_FILE)
        write_json(result.metrics, out / "metrics.json")
    return result.metrics
