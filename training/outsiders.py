"""Unseen outsiders: recordings of speakers the model never saw, scored against the
authorized profiles to measure the false acceptance rate on them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxgate.core.scoring import unit

from .eval_metrics import plain_float

__all__ = ["score_outsiders"]

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
    from voxgate.training.recordings import collect_recordings

    recordings = collect_recordings(source, subsets=subsets, speakers=speakers)
    prof = unit(np.asarray(profiles, dtype=np.float32))
    cos_all, prob_all, decisions, spk_of, skipped = _score_recordings(
        encoder, recordings, prof, auth_index, batch_size
    )
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
        out[family] = {
            level: _far_entry(vals, thresholds.get(tkey)) for level, (vals, tkey) in by_level.items()
        }
    return out


def _score_recordings(
    encoder: Any, recordings: dict[str, list[Any]], prof: np.ndarray, auth_index: int | None,
    batch_size: int,
) -> tuple[list[np.ndarray], list[np.ndarray], list[float], list[str], list[list[str]]]:
    """Every recording through the client's path against ``prof`` enrolled in a temporary
    profile store: (cosines, head probabilities, decision scores, speaker per scored file,
    skipped [path, reason])."""
    import tempfile

    from voxgate.core.audio import load_audio
    from voxgate.core.errors import AudioError
    from voxgate.core.pipeline import Pipeline, PipelineConfig
    from voxgate.core.profiles import Profile, ProfileStore

    cos_all, prob_all, decisions, spk_of, skipped = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="voxgate-outsiders-") as tmp:
        store = ProfileStore(Path(tmp) / "profiles")
        for k, vec in enumerate(prof):
            store.save(Profile(f"authorized-{k}", vec, model_fingerprint=encoder.fingerprint))
        pipe = Pipeline(
            encoder, store, PipelineConfig(lockout=False, threshold=0.0), display_hop_s=None
        )
        for speaker, recs in recordings.items():
            for rec in recs:
                try:
                    wave = load_audio(rec.path, encoder.feature_config.sample_rate)
                except AudioError as exc:
                    skipped.append([str(rec.path), exc.reason])
                    continue
                scored = _score_recording(encoder, pipe, prof, wave, auth_index, batch_size)
                if scored is None:
                    skipped.append([str(rec.path), "no window of voiced speech"])
                    continue
                cos_all.append(scored[0])
                if scored[1] is not None:
                    prob_all.append(scored[1])
                if scored[2] is not None:
                    decisions.append(scored[2])
                spk_of.append(speaker)
    return cos_all, prob_all, decisions, spk_of, skipped


def _score_recording(
    encoder: Any,
    pipe: Any,
    prof: np.ndarray,
    wave: np.ndarray,
    auth_index: int | None,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray | None, float | None] | None:
    """(best cosine per voiced window (W,), P(authorized) per window or None, the recording's
    decision score as ``verify --file`` decides or None); None without voiced speech."""
    from voxgate.core.scoring import embed_windows, speech_mask, windows

    win = windows(wave, encoder.feature_config)
    mask = speech_mask(win)
    if not mask.any():
        return None
    emb = embed_windows(encoder, win.waves[mask], batch_size)
    prob = None
    if auth_index is not None:
        with torch.inference_mode():
            p = encoder.model.head_probs(torch.from_numpy(emb).to(encoder.device), "authentication")
        prob = p[:, auth_index].cpu().numpy()
    verdicts = [v for v in pipe.replay(wave).values() if v is not None]
    final = [v.score for v in verdicts if v.state.value in ("accepted", "rejected")]
    return (emb @ prof.T).max(axis=1), prob, (max(final) if final else None)


def _far_entry(vals: np.ndarray, thr: float | None) -> dict[str, Any]:
    """FAR at ``thr`` (score >= thr accepted) and the score range of outsider trials ``vals``."""
    return {
        "threshold": plain_float(thr),
        "n": int(len(vals)),
        "far": plain_float(np.mean(vals >= thr)) if thr is not None and len(vals) else None,
        "mean_score": plain_float(vals.mean()) if len(vals) else None,
        "max_score": plain_float(vals.max()) if len(vals) else None,
    }
