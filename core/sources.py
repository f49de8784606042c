"""Audio sources for the streaming pipeline: their common API, and a file or array played as
blocks (the microphone is ``core.microphone``; its devices ``core.input_devices``).

Every source delivers float32 mono blocks at 16 kHz from ``read`` on the pipeline thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .events import StatusEvent
from .live_config import LIVE_BLOCK_S

__all__ = ["AudioSource", "FileSource", "PIPELINE_RATE", "source_status"]

PIPELINE_RATE = 16000


class AudioSource:
    """Common API: ``start()``, ``read(timeout_s)`` -> float32 (n,) at ``sample_rate`` or None
    when nothing is ready yet, ``finished``, ``stop()``, ``stats()``."""

    name: str = "source"
    sample_rate: int = PIPELINE_RATE

    def start(self) -> None:
        raise NotImplementedError

    def read(self, timeout_s: float = 0.1) -> np.ndarray | None:
        raise NotImplementedError

    @property
    def finished(self) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def stats(self) -> dict[str, int]:
        """Counters since the last start: blocks delivered, input overflows, dropped blocks."""
        raise NotImplementedError


class FileSource(AudioSource):
    """Plays a recording (any format ``load_audio`` reads) or a float32 array as blocks.

    A file is decoded block by block while it plays (``iter_audio``), so memory does not grow
    with its length; a damaged file raises its AudioError from ``read`` once the readable
    part has played (PartialAudioError says how many seconds). The file is checked (exists,
    header, sample rate, ``max_duration_s``) when the source is made.
    realtime=True paces blocks like a microphone: block i becomes readable at
    start + (i + 1) * block_s on a monotonic clock (deadlines, so no drift accumulates);
    realtime=False delivers them as fast as they are read. ``start()`` rewinds.
    """

    def __init__(
        self,
        path_or_wave: str | Path | np.ndarray,
        *,
        sample_rate: int = PIPELINE_RATE,
        realtime: bool = False,
        block_s: float = LIVE_BLOCK_S,
        name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_duration_s: float | None = None,
    ):
        if block_s <= 0:
            raise ValueError(f"block_s must be > 0, got {block_s}")
        self.path: Path | None = None
        self.wave: np.ndarray | None = None
        if isinstance(path_or_wave, np.ndarray):
            wave = np.asarray(path_or_wave, dtype=np.float32)
            if wave.ndim != 1:
                raise ValueError(f"FileSource expects a mono array (N,), got shape {wave.shape}")
            if sample_rate != PIPELINE_RATE:
                from .audio import resample

                wave = resample(wave, sample_rate, PIPELINE_RATE)
            self.wave = np.ascontiguousarray(wave, dtype=np.float32)
            self.name = name or "array"
        else:
            self.path = Path(path_or_wave)
            self.name = name or self.path.name
        self.max_duration_s = max_duration_s
        self.sample_rate = PIPELINE_RATE
        self.realtime = bool(realtime)
        self.block_samples = max(1, int(round(block_s * PIPELINE_RATE)))
        self.block_s = self.block_samples / PIPELINE_RATE
        self._clock = clock
        self._sleep = sleep
        self._decoded: Iterator[np.ndarray] | None = None
        self._fresh = False
        self._pending = np.zeros(0, np.float32)
        self._exhausted = False
        self._blocks = 0
        self._t0 = 0.0
        self._running = False
        self._stopped = False
        self._rewind()  # a file is checked now, so a bad one fails before the pipeline starts

    @property
    def duration_s(self) -> float | None:
        """Length in seconds (None for a file whose header does not tell, e.g. via ffmpeg)."""
        if self.wave is not None:
            return self.wave.size / PIPELINE_RATE
        from .audio import audio_duration_s

        return audio_duration_s(self.path)  # type: ignore[arg-type]

    def _rewind(self) -> None:
        self._close_decoder()
        self._fresh = True
        self._exhausted = False
        if self.wave is not None:
            self._pending = self.wave
            self._exhausted = True
            return
        from .audio import iter_audio

        self._pending = np.zeros(0, np.float32)
        self._decoded = iter_audio(
            self.path,  # type: ignore[arg-type]
            PIPELINE_RATE,
            block_s=max(self.block_s, 0.25),
            max_duration_s=self.max_duration_s,
        )

    def _close_decoder(self) -> None:
        if self._decoded is not None:
            close = getattr(self._decoded, "close", None)
            self._decoded = None
            if close is not None:
                close()

    def _fill(self) -> None:
        """Decode until a whole block is pending or the file ends; decode errors propagate."""
        parts = [self._pending]
        have = self._pending.size
        while have < self.block_samples and not self._exhausted:
            try:
                b = next(self._decoded)  # type: ignore[arg-type]
            except StopIteration:
                self._exhausted = True
                self._decoded = None
                break
            except BaseException:
                self._exhausted = True
                self._pending = np.zeros(0, np.float32)
                self._close_decoder()
                raise
            parts.append(b)
            have += b.size
        self._pending = parts[0] if len(parts) == 1 else np.concatenate(parts)

    def start(self) -> None:
        if not self._fresh:  # rewind, unless the decoder was just opened and is untouched
            self._rewind()
        self._fresh = False
        self._blocks = 0
        self._t0 = self._clock()
        self._running = True
        self._stopped = False

    def read(self, timeout_s: float = 0.1) -> np.ndarray | None:
        """The next block (n,) float32 (the last one may be shorter), or None when it is not
        due yet (realtime) or the file is finished. Raises the file's AudioError if decoding
        fails part-way."""
        if not self._running or self.finished:
            return None
        if self.realtime:
            due = self._t0 + (self._blocks + 1) * self.block_s
            wait = due - self._clock()
            if wait > 0:
                if wait > timeout_s:
                    self._sleep(max(0.0, timeout_s))
                    return None
                self._sleep(wait)
        self._fill()
        if self._pending.size == 0:
            return None
        block = self._pending[: self.block_samples].copy()
        self._pending = self._pending[block.size :]
        self._blocks += 1
        return block

    @property
    def finished(self) -> bool:
        return self._stopped or (self._exhausted and self._pending.size == 0)

    def stop(self) -> None:
        self._running = False
        self._stopped = True
        self._close_decoder()

    def stats(self) -> dict[str, int]:
        return {"blocks": self._blocks, "overflows": 0, "drops": 0}


def source_status(source: AudioSource, t_s: float, running: bool, **kw: Any) -> StatusEvent:
    """A StatusEvent at stream time ``t_s`` with ``source``'s name and counters (``kw``: a
    message, error or extra). A source whose ``stats()`` fails gives zero counters: it must
    not hide the error being reported."""
    try:
        stats = source.stats()
    except Exception:
        stats = {}
    return StatusEvent(
        t_s=t_s,
        running=running,
        device=str(getattr(source, "name", "source")),
        blocks=int(stats.get("blocks", 0)),
        overflows=int(stats.get("overflows", 0)),
        drops=int(stats.get("drops", 0)),
        **kw,
    )
