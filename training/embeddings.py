"""``voxgate embed``: speaker embeddings of audio files through the client's path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from voxgate.core.scoring import Encoder

__all__ = ["embed_files"]


def embed_files(
    encoder: Encoder,
    paths: Sequence[str | Path],
    *,
    per_window: bool = False,
    hop_s: float | None = None,
) -> dict[str, np.ndarray]:
    """Embeddings of audio files through the client's path: the windows ``core.scoring``
    scores (VAD speech ratio and voicing), embedded, and per file combined by
    :func:`make_profile`.

    Per file: ``names`` (F,) str, ``embeddings`` float32 (F, D), ``n_windows`` (F,). With
    ``per_window``: ``embeddings`` (W, D) one per scored window, ``file_index`` (W,) and
    ``window_starts`` (W,) seconds in the file. Files without speech raise TooShortError.
    """
    from voxgate.core.audio import load_audio
    from voxgate.core.errors import TooShortError
    from voxgate.core.scoring import (
        DEFAULT_HOP_S,
        embed_windows,
        make_profile,
        speech_mask,
        windows,
    )

    sr = encoder.feature_config.sample_rate
    hop_s = DEFAULT_HOP_S if hop_s is None else hop_s
    names, embs, n_windows, file_index, starts = [], [], [], [], []
    for i, p in enumerate(paths):
        win = windows(load_audio(p, sr), encoder.feature_config, hop_s)
        mask = speech_mask(win)
        if not mask.any():
            raise TooShortError(p, "no window of voiced speech found")
        emb = embed_windows(encoder, win.waves[mask])
        names.append(str(p))
        n_windows.append(len(emb))
        if per_window:
            embs.append(emb)
            file_index.append(np.full(len(emb), i))
            starts.append(win.starts[mask] / sr)
        else:
            embs.append(make_profile(emb)[None])
    out = {
        "names": np.array(names),
        "embeddings": np.concatenate(embs).astype(np.float32),
        "n_windows": np.array(n_windows, dtype=np.int64),
    }
    if per_window:
        out["file_index"] = np.concatenate(file_index).astype(np.int64)
        out["window_starts"] = np.concatenate(starts).astype(np.float64)
    return out
