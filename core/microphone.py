"""Live input through PortAudio (sounddevice): the callback copies each block into a bounded
queue; ``read`` resamples it to 16 kHz on the pipeline thread and notices a lost device."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from . import input_devices  # import_sounddevice through the module: tests replace it there
from .errors import DeviceLostError
from .input_devices import (
    device_error_sentence,
    find_input_device,
    query_input_devices,
    rescan_devices,
    stream_opened,
)
from .live_config import LIVE_BLOCK_S
from .sources import PIPELINE_RATE, AudioSource

__all__ = ["MicrophoneSource", "QUEUE_S"]

# Seconds of audio the callback's queue holds while the pipeline is busy; older audio is not
# worth deciding on, so beyond it blocks are dropped (and counted).
QUEUE_S = 2.0


class MicrophoneSource(AudioSource):
    """Live input through PortAudio (sounddevice), mono float32.

    device: index, or a case-insensitive substring of the device name, or None (default).
    The stream runs at 16 kHz when the device supports it, else at the device's default rate,
    and blocks are resampled to 16 kHz (soxr, streaming) in ``read`` on the pipeline thread.
    The callback copies each block into a bounded queue (``queue_blocks``, default
    ``QUEUE_S`` of audio); when it is full the block is dropped and counted. ``read`` raises
    DeviceLostError when the stream stops by itself, PortAudio fails, or no block arrives
    for ``lost_after_s`` while running
    (``first_block_s`` for the first block: an idle PulseAudio source takes ~2 s to wake).
    ``start`` re-reads PortAudio's device list when no other stream is open, so a device
    plugged in after start-up is found. Restartable: ``stop(); start()``.
    """

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sample_rate: int = PIPELINE_RATE,
        block_s: float = LIVE_BLOCK_S,
        queue_blocks: int | None = None,
        lost_after_s: float = 2.0,
        first_block_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if block_s <= 0:
            raise ValueError(f"block_s must be > 0, got {block_s}")
        if queue_blocks is None:
            queue_blocks = max(1, round(QUEUE_S / block_s))
        if queue_blocks < 1:
            raise ValueError("queue_blocks must be >= 1")
        self.device = device
        self.requested_rate = int(sample_rate)
        self.sample_rate = PIPELINE_RATE
        self.block_s = float(block_s)
        self.queue_blocks = int(queue_blocks)
        self.lost_after_s = float(lost_after_s)
        self.first_block_s = float(first_block_s)
        self._clock = clock
        self.name = "default microphone" if device is None else str(device)
        self.stream_rate = self.requested_rate
        self._stream: Any = None
        self._resampler: Any = None
        self._running = False
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=self.queue_blocks)
        self._blocks = 0  # delivered by read()
        self._overflows = 0  # PortAudio reported input overflow
        self._drops = 0  # queue full: block thrown away
        self._callback_errors = 0
        self._last_block_t = self._clock()

    # -- the PortAudio callback: runs on PortAudio's thread -------------------------------
    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """Copy the first channel and enqueue it; never raises, logs or touches torch."""
        try:
            if status is not None and getattr(status, "input_overflow", False):
                self._overflows += 1
            block = indata[:, 0].copy() if indata.ndim == 2 else indata.copy()
            self._queue.put_nowait(block)
        except queue.Full:
            self._drops += 1
        except Exception:  # a callback that raises is never called again: count and go on
            self._callback_errors += 1

    # -- control, on the caller's thread --------------------------------------------------
    def _open_stream(self) -> Any:
        """Resolve the device, choose the rate and return an (unstarted) sd.InputStream."""
        sd = input_devices.import_sounddevice()
        rescan_devices(sd)  # a no-op while another stream is open
        index = self._resolve_device(sd)
        try:
            sd.check_input_settings(
                device=index, samplerate=self.requested_rate, channels=1, dtype="float32"
            )
            rate = self.requested_rate
        except Exception:
            rate = int(sd.query_devices(index)["default_samplerate"])
        self.stream_rate = rate
        try:
            return sd.InputStream(
                device=index,
                samplerate=rate,
                channels=1,
                dtype="float32",
                blocksize=max(1, int(round(self.block_s * rate))),
                callback=self._callback,
            )
        except Exception as exc:  # sd.PortAudioError
            raise DeviceLostError(
                f"cannot open {self.name!r}: {device_error_sentence(exc)}; "
                "choose another input device or look for devices again"
            ) from exc

    def _resolve_device(self, sd: Any) -> int:
        """The PortAudio index of ``self.device`` in ``sd``'s list; names the source after it."""
        chosen = find_input_device(query_input_devices(sd), self.device)
        self.name = chosen.name
        return chosen.index

    def start(self) -> None:
        """Open and start the stream. Raises PortAudioMissingError, NoInputDeviceError,
        DeviceLostError (the device could not be opened)."""
        if self._running:
            return
        self._reset_counters()
        stream = self._open_stream()
        self._stream = stream
        stream_opened(self, True)
        self._resampler = None
        if self.stream_rate != PIPELINE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(
                self.stream_rate, PIPELINE_RATE, 1, dtype="float32"
            )
        try:
            stream.start()
        except Exception as exc:
            _close_quietly(stream)
            self._stream = None
            stream_opened(self, False)
            raise DeviceLostError(
                f"cannot start {self.name!r}: {device_error_sentence(exc)}"
            ) from exc
        self._last_block_t = self._clock()
        self._running = True

    def read(self, timeout_s: float = 0.1) -> np.ndarray | None:
        """Next block, float32 (n,) at 16 kHz, or None when none arrived within ``timeout_s``."""
        try:
            if timeout_s > 0:
                block = self._queue.get(timeout=timeout_s)
            else:
                block = self._queue.get_nowait()
        except queue.Empty:
            if self._running:
                self._check_alive()
            return None
        self._last_block_t = self._clock()
        self._blocks += 1
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block)
        return np.asarray(block, dtype=np.float32)

    def _check_alive(self) -> None:
        stream = self._stream
        try:
            active = stream is None or bool(stream.active)
        except Exception as exc:  # PortAudioError
            self.stop()
            raise DeviceLostError(f"{self.name!r} failed: {device_error_sentence(exc)}") from exc
        if not active:
            self.stop()
            raise DeviceLostError(f"{self.name!r} stopped delivering audio (device unplugged?)")
        silent_s = self._clock() - self._last_block_t
        if silent_s > (self.lost_after_s if self._blocks else self.first_block_s):
            self.stop()
            raise DeviceLostError(f"no audio from {self.name!r} for {silent_s:.1f} s")

    @property
    def running(self) -> bool:
        return self._running

    @property
    def finished(self) -> bool:
        return not self._running and self._queue.empty()

    def stop(self) -> None:
        self._running = False
        stream, self._stream = self._stream, None
        if stream is not None:
            _close_quietly(stream)
            stream_opened(self, False)

    def stats(self) -> dict[str, int]:
        """Counters since the last start. A caller that prints them (the CLI's note) should do
        so only when they change: compare with the previous dict."""
        return {"blocks": self._blocks, "overflows": self._overflows, "drops": self._drops}


def _close_quietly(stream: Any) -> None:
    if stream is None:
        return
    for method in ("stop", "close"):
        try:
            getattr(stream, method)()
        except Exception:  # already gone: nothing left to release
            pass
