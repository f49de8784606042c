"""Embedding backends for open-set verification: voxgate through the client's path, and the
pretrained Resemblyzer encoder for comparison (benchmark only). Both turn waveforms into
unit embeddings (``embed_segments``) and enrollment speech into a profile (``enroll``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from voxgate.core.errors import DatasetError
from voxgate.core.scoring import Encoder, make_profile, unit

__all__ = ["Backend", "VoxgateBackend", "ResemblyzerBackend", "make_backend", "SAMPLE_RATE"]

SAMPLE_RATE = 16000


class Backend(Protocol):
    name: str

    def embed_segments(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """One unit embedding per wave: float32 (S, D)."""

    def enroll(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """A speaker profile (D,) unit norm from its enrollment speech."""


class VoxgateBackend:
    """voxgate embeddings through the client's path (``core.scoring``): the 1-s windows of a
    segment (hop ``hop_s``, default the decision's) are embedded and combined with
    :func:`make_profile`, the same function that builds enrollment profiles (whose windows
    come every ``ENROLL_HOP_S``, as in the client's enrollment). Segments are already
    speech (silence removed), so every window is used; a piece shorter than a window is
    zero-padded to one."""

    name = "voxgate"

    def __init__(self, encoder: Encoder, hop_s: float | None = None, batch_size: int = 128):
        from voxgate.core.scoring import DEFAULT_HOP_S

        self.encoder = encoder
        self.hop_s = DEFAULT_HOP_S if hop_s is None else float(hop_s)
        self.batch_size = batch_size

    def _windows(self, wave: np.ndarray, hop_s: float | None = None) -> np.ndarray:
        from voxgate.core.scoring import windows

        n = self.encoder.feature_config.chunk_samples
        wave = np.asarray(wave, dtype=np.float32)
        if 0 < wave.size < n:
            wave = np.pad(wave, (0, n - wave.size))
        hop_s = self.hop_s if hop_s is None else hop_s
        return windows(wave, self.encoder.feature_config, hop_s).waves

    def window_embeddings(self, wave: np.ndarray, hop_s: float | None = None) -> np.ndarray:
        """Unit embeddings (W, D) of the windows of one wave (every ``hop_s``, default the
        backend's)."""
        from voxgate.core.scoring import embed_windows

        return embed_windows(self.encoder, self._windows(wave, hop_s), self.batch_size)

    def embed_segments(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        from voxgate.core.scoring import embed_windows, make_profile

        if not len(waves):
            return np.zeros((0, self.encoder.model_config.embed_dim), dtype=np.float32)
        wins = [self._windows(w) for w in waves]
        emb = embed_windows(self.encoder, np.concatenate(wins), self.batch_size)
        bounds = np.cumsum([0] + [len(w) for w in wins])
        return np.stack([make_profile(emb[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])

    def enroll(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """Windows every ENROLL_HOP_S, as the client's enrollment."""
        from voxgate.core.live_config import ENROLL_HOP_S
        from voxgate.core.scoring import make_profile

        emb = [self.window_embeddings(w, ENROLL_HOP_S) for w in waves if len(w)]
        return make_profile(np.concatenate(emb))


class ResemblyzerBackend:
    """Resemblyzer's pretrained GE2E encoder (benchmark only; imported lazily).

    Segment: ``embed_utterance(preprocess_wav(wave))``; profile: normalised mean of the
    partial embeddings over all enrollment speech.
    """

    name = "resemblyzer"

    def __init__(self, device: str = "cpu"):
        try:
            from resemblyzer import VoiceEncoder, preprocess_wav
        except ImportError as exc:
            raise DatasetError(
                "the resemblyzer backend needs the benchmark dependency: "
                "pip install 'voxgate[bench]' (or pip install resemblyzer)"
            ) from exc
        self._pre = preprocess_wav
        self.encoder = VoiceEncoder(device, verbose=False)

    def _prep(self, wave: np.ndarray) -> np.ndarray:
        w = self._pre(np.asarray(wave, dtype=np.float32))
        # its own silence trimming may eat a short, already speech-only segment
        return w if len(w) >= SAMPLE_RATE // 2 else np.asarray(wave, dtype=np.float32)

    def embed_segments(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        if not len(waves):
            return np.zeros((0, 256), dtype=np.float32)
        return unit(np.stack([self.encoder.embed_utterance(self._prep(w)) for w in waves]))

    def enroll(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        partials = []
        for w in waves:
            if len(w):
                _, parts, _ = self.encoder.embed_utterance(self._prep(w), return_partials=True)
                partials.append(parts)
        return make_profile(np.concatenate(partials))


def make_backend(
    name: str, model_path: str | Path | None = None, device: str | None = None
) -> Backend:
    """ "voxgate" (needs ``model_path``, default: the shipped model) or "resemblyzer"."""
    if name == "voxgate":
        from voxgate.core.inference import SpeakerEncoder

        return VoxgateBackend(SpeakerEncoder.from_checkpoint(model_path, device=device))
    if name == "resemblyzer":
        return ResemblyzerBackend(device or "cpu")
    raise DatasetError(f"unknown backend {name!r}; known: voxgate, resemblyzer")
