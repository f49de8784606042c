"""Fixed-length chunks from whole files and sliding windows over streams.

Both use the same boundaries: windows start at 0, hop, 2 * hop, ... of the signal.
"""

from __future__ import annotations

import numpy as np

__all__ = ["chunk_wave", "chunk_starts", "Windower"]


def chunk_starts(
    n_samples: int, chunk_samples: int, hop_samples: int | None = None, *, min_fraction: float = 1.0
) -> np.ndarray:
    """Start samples (K,) int64 of the chunks :func:`chunk_wave` returns."""
    _check_sizes(chunk_samples, hop_samples)
    if not 0.0 <= min_fraction <= 1.0:
        raise ValueError(f"min_fraction must be in [0, 1], got {min_fraction}")
    hop = chunk_samples if hop_samples is None else hop_samples
    n_full = 0 if n_samples < chunk_samples else 1 + (n_samples - chunk_samples) // hop
    starts = np.arange(n_full, dtype=np.int64) * hop
    tail = n_full * hop  # the first start that has no full chunk
    remainder = n_samples - tail
    if 0 < remainder < chunk_samples and remainder >= min_fraction * chunk_samples:
        starts = np.append(starts, tail)
    return starts


def chunk_wave(
    wave: np.ndarray,
    chunk_samples: int,
    hop_samples: int | None = None,
    *,
    min_fraction: float = 1.0,
) -> np.ndarray:
    """Cut (N,) into chunks: float32 (K, chunk_samples), chunk k = wave[k*hop : k*hop + chunk].

    hop_samples defaults to chunk_samples (no overlap). After the last full chunk, one partial
    chunk is kept, zero-padded at the end, if it holds at least ``min_fraction`` of a chunk
    (the default 1.0 keeps full chunks only). K may be 0.
    """
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"chunk_wave expects a mono waveform (N,), got shape {x.shape}")
    starts = chunk_starts(x.size, chunk_samples, hop_samples, min_fraction=min_fraction)
    out = np.zeros((len(starts), chunk_samples), dtype=np.float32)
    for i, s in enumerate(starts):
        piece = x[s : s + chunk_samples]
        out[i, : piece.size] = piece
    return out


class Windower:
    """Sliding windows over a stream fed in blocks of any size.

    ``push`` returns every window completed by the block as (absolute start sample, copy of
    shape (window_samples,) float32), with starts 0, hop, 2 * hop, ... exactly as if the
    windows were sliced from the whole signal. hop > window skips the samples in between.
    """

    def __init__(self, window_samples: int, hop_samples: int):
        _check_sizes(window_samples, hop_samples)
        self.window_samples = int(window_samples)
        self.hop_samples = int(hop_samples)
        self.reset()

    def reset(self) -> None:
        """Start over at sample 0."""
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0  # absolute index of self._buf[0]
        self.next_start = 0  # absolute start of the next window
        self.received = 0  # samples pushed so far

    def push(self, block: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Append float32 samples (n,); returns the windows they completed, oldest first."""
        x = np.asarray(block, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"Windower.push expects a 1-D block, got shape {x.shape}")
        self._buf = np.concatenate([self._buf, x]) if self._buf.size else x.copy()
        self.received += x.size
        out: list[tuple[int, np.ndarray]] = []
        w = self.window_samples
        while self.next_start + w <= self.received:
            i = self.next_start - self._buf_start
            out.append((self.next_start, self._buf[i : i + w].copy()))
            self.next_start += self.hop_samples
        # Keep only what a future window can still use.
        keep_from = min(self.next_start, self.received)
        if keep_from > self._buf_start:
            self._buf = self._buf[keep_from - self._buf_start :]
            self._buf_start = keep_from
        return out


def _check_sizes(size: int, hop: int | None) -> None:
    if int(size) <= 0:
        raise ValueError(f"chunk/window size must be > 0 samples, got {size}")
    if hop is not None and int(hop) <= 0:
        raise ValueError(f"hop must be > 0 samples, got {hop}")
