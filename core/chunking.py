"""Fixed-length chunks from whole files and sliding windows over streams.

Both use the same boundaries: windows start at 0, hop, 2 * hop, ... of the signal.
"""

from __future__ import annotations

import numpy as np

from .ringbuffer import RingBuffer

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
    Blocks go into a ring buffer and windows are read out of it: nothing is re-concatenated.
    ``collect(ring)`` does the same over a ring buffer the caller writes (the live front end
    shares one ring between the windower, the VAD and the display).
    """

    def __init__(self, window_samples: int, hop_samples: int):
        _check_sizes(window_samples, hop_samples)
        self.window_samples = int(window_samples)
        self.hop_samples = int(hop_samples)
        # Room for one window plus a block piece; pieces of at most `_piece` samples keep
        # every window still to come readable (see push).
        self._piece = max(self.hop_samples, self.window_samples)
        self.reset()

    def reset(self) -> None:
        """Start over at sample 0."""
        self._ring = RingBuffer(self.window_samples + self._piece)
        self.next_start = 0  # absolute start of the next window

    @property
    def received(self) -> int:
        """Samples pushed so far."""
        return self._ring.written

    def push(self, block: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Append float32 samples (n,); returns the windows they completed, oldest first."""
        x = np.asarray(block, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"Windower.push expects a 1-D block, got shape {x.shape}")
        out: list[tuple[int, np.ndarray]] = []
        # Before a piece of p <= capacity - window samples is written, the next window
        # starts after written - window, so it is still held after the write.
        for i in range(0, x.size, self._piece):
            self._ring.write(x[i : i + self._piece])
            out += self.collect(self._ring)
        return out

    def collect(self, ring: RingBuffer) -> list[tuple[int, np.ndarray]]:
        """The windows completed in ``ring`` (absolute indices) since the last call.

        The caller writes the stream into ``ring`` and calls this after each write of at
        most ``ring.capacity - window_samples`` samples (else IndexError: overwritten).
        """
        out: list[tuple[int, np.ndarray]] = []
        w = self.window_samples
        while self.next_start + w <= ring.written:
            out.append((self.next_start, ring.read(self.next_start, w)))
            self.next_start += self.hop_samples
        return out


def _check_sizes(size: int, hop: int | None) -> None:
    if int(size) <= 0:
        raise ValueError(f"chunk/window size must be > 0 samples, got {size}")
    if hop is not None and int(hop) <= 0:
        raise ValueError(f"hop must be > 0 samples, got {hop}")
