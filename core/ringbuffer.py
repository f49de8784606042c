"""A numpy ring buffer addressed by absolute sample index, with independent reader cursors.

The write index only grows; each consumer (chunker, spectrogram, level meter) keeps its own
cursor, so none of them consumes samples another still needs. Not thread-safe: write and read
from one thread (the pipeline thread).
"""

from __future__ import annotations

import numpy as np

__all__ = ["RingBuffer", "RingReader"]


class RingBuffer:
    """Holds the last ``capacity`` samples of a stream (1-D, float32 by default).

    Samples are addressed by their absolute index since the start: samples
    [written - available, written) can be read.
    """

    def __init__(self, capacity: int, dtype: np.dtype | type = np.float32):
        if int(capacity) <= 0:
            raise ValueError(f"RingBuffer capacity must be > 0, got {capacity}")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, dtype=dtype)
        self._written = 0

    @property
    def written(self) -> int:
        """Total samples ever written (the absolute index of the next sample); only grows."""
        return self._written

    @property
    def available(self) -> int:
        """Number of samples that can still be read: min(written, capacity)."""
        return min(self._written, self.capacity)

    @property
    def oldest(self) -> int:
        """Absolute index of the oldest sample still held."""
        return self._written - self.available

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    def write(self, block: np.ndarray) -> None:
        """Append a 1-D block of any length (longer than capacity: only its tail is kept)."""
        x = np.asarray(block, dtype=self._data.dtype)
        if x.ndim != 1:
            raise ValueError(f"RingBuffer.write expects a 1-D block, got shape {x.shape}")
        n = x.size
        if n == 0:
            return
        tail = x[-self.capacity :]
        pos = (self._written + n - tail.size) % self.capacity
        first = min(tail.size, self.capacity - pos)
        self._data[pos : pos + first] = tail[:first]
        self._data[: tail.size - first] = tail[first:]
        self._written += n

    def read(self, start: int, n: int) -> np.ndarray:
        """Copy of samples [start, start + n) by absolute index, shape (n,).

        Raises IndexError when part of the range was overwritten or is not written yet.
        """
        start, n = int(start), int(n)
        if n < 0:
            raise IndexError(f"cannot read a negative number of samples ({n})")
        if start < self.oldest:
            raise IndexError(
                f"samples from {start} were overwritten (oldest held: {self.oldest}, "
                f"capacity {self.capacity})"
            )
        if start + n > self._written:
            raise IndexError(
                f"samples up to {start + n} are not written yet (written: {self._written})"
            )
        pos = start % self.capacity
        first = min(n, self.capacity - pos)
        out = np.empty(n, dtype=self._data.dtype)
        out[:first] = self._data[pos : pos + first]
        out[first:] = self._data[: n - first]
        return out

    def latest(self, n: int) -> np.ndarray:
        """Copy of the newest ``n`` samples (n,); IndexError if fewer than n are held."""
        if int(n) > self.available:
            raise IndexError(f"asked for the latest {n} samples, only {self.available} held")
        return self.read(self._written - int(n), n)

    def reader(self, start: int | None = None) -> RingReader:
        """A new cursor at absolute index ``start`` (default: the current write index)."""
        return RingReader(self, self._written if start is None else int(start))


class RingReader:
    """One consumer's cursor into a :class:`RingBuffer`; reading advances only this cursor."""

    def __init__(self, buffer: RingBuffer, position: int):
        self.buffer = buffer
        self.position = int(position)

    @property
    def pending(self) -> int:
        """Samples written but not yet read by this reader."""
        return self.buffer.written - self.position

    @property
    def lost(self) -> bool:
        """True when this reader fell behind and its next samples were overwritten."""
        return self.position < self.buffer.oldest

    def read(self, n: int | None = None) -> np.ndarray:
        """Read the next ``n`` samples (default: all pending) and advance; IndexError if the
        range was overwritten (see ``lost``) or is not written yet."""
        n = self.pending if n is None else int(n)
        out = self.buffer.read(self.position, n)
        self.position += n
        return out

    def peek(self, n: int) -> np.ndarray:
        """Like ``read`` but without advancing."""
        return self.buffer.read(self.position, n)

    def skip(self, n: int) -> None:
        """Advance the cursor by ``n`` samples without copying."""
        self.position += int(n)

    def seek(self, position: int) -> None:
        """Move the cursor to an absolute sample index."""
        self.position = int(position)
