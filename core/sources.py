"""Audio sources for the streaming pipeline: a microphone (PortAudio) or a file / array.

Every source delivers float32 mono blocks at 16 kHz from ``read`` on the pipeline thread.
The microphone's PortAudio callback only copies the block into a bounded queue.
"""

from __future__ import annotations

import queue
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DeviceLostError, NoInputDeviceError, PortAudioMissingError

__all__ = [
    "AudioSource",
    "FileSource",
    "MicrophoneSource",
    "InputDevice",
    "list_input_devices",
    "rescan_devices",
    "device_error_sentence",
    "import_sounddevice",
    "PORTAUDIO_HINT",
]

PIPELINE_RATE = 16000
PORTAUDIO_HINT = (
    "install the PortAudio library: sudo apt install libportaudio2 (Debian/Ubuntu), "
    "brew install portaudio (macOS)"
)


def import_sounddevice() -> Any:
    """Import sounddevice, or raise PortAudioMissingError when the PortAudio library is absent."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise PortAudioMissingError(f"no microphone input: {exc}; {PORTAUDIO_HINT}") from exc
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    """One audio input device as PortAudio reports it."""

    index: int
    name: str
    channels: int
    default_samplerate: float
    is_default: bool


def list_input_devices(rescan: bool = False) -> list[InputDevice]:
    """All devices with at least one input channel. Raises PortAudioMissingError.

    PortAudio enumerates devices once, when it is initialised: ``rescan`` re-initialises it
    first (see :func:`rescan_devices`) so that plugged and unplugged devices show up."""
    sd = import_sounddevice()
    if rescan:
        rescan_devices(sd)
    return _input_devices(sd)


# PortAudio is process-global: it may only be re-initialised while no stream is open.
# The sources holding an open stream (weak: a source dropped without stop() no longer counts).
_streams_lock = threading.Lock()
_open_sources: weakref.WeakSet[Any] = weakref.WeakSet()


def _stream_opened(source: Any, is_open: bool) -> None:
    with _streams_lock:
        if is_open:
            _open_sources.add(source)
        else:
            _open_sources.discard(source)


def open_stream_count() -> int:
    """How many MicrophoneSource streams are open in this process."""
    return sum(1 for s in list(_open_sources) if getattr(s, "_stream", None) is not None)


def rescan_devices(sd: Any | None = None) -> bool:
    """Re-initialise PortAudio so that its device list is current; True if it did.

    Skipped (False) while a stream is open: terminating PortAudio would close it."""
    sd = sd or import_sounddevice()
    with _streams_lock:
        if any(getattr(s, "_stream", None) is not None for s in list(_open_sources)):
            return False
        try:
            sd._terminate()
            sd._initialize()
        except Exception as exc:  # PortAudioError: the host API failed to start again
            raise NoInputDeviceError(
                f"cannot look for audio devices: {device_error_sentence(exc)}"
            ) from exc
    return True


# PortAudio error codes -> what they mean to someone at the microphone
_PA_CODE = re.compile(r"\s*\[PaErrorCode (-?\d+)\]")
_PA_SENTENCES = {
    -9996: "the device is no longer available (unplugged?)",  # paInvalidDevice
    -9993: "the device is no longer available (unplugged?)",  # paBadIODeviceCombination
    -9985: "the device is busy or no longer available",  # paDeviceUnavailable
    -9997: "the device does not support this sample rate",  # paInvalidSampleRate
    -9998: "the device does not have enough input channels",  # paInvalidChannelCount
    -9999: "the sound system reported an error (unplugged?)",  # paUnanticipatedHostError
}


def device_error_sentence(exc: BaseException) -> str:
    """A plain sentence for a PortAudio error: never a PaErrorCode."""
    text = str(exc)
    m = _PA_CODE.search(text)
    if m and int(m.group(1)) in _PA_SENTENCES:
        return _PA_SENTENCES[int(m.group(1))]
    return _PA_CODE.sub("", text).strip() or type(exc).__name__


def _input_devices(sd: Any) -> list[InputDevice]:
    try:
        devices = sd.query_devices()
        default_in = sd.default.device[0]
    except Exception as exc:  # PortAudioError: the host API failed to enumerate
        raise NoInputDeviceError(f"cannot list audio devices: {exc}") from exc
    out = []
    for index, dev in enumerate(devices):
        if int(dev.get("max_input_channels", 0)) > 0:
            out.append(
                InputDevice(
                    index=index,
                    name=str(dev.get("name", f"device {index}")),
                    channels=int(dev["max_input_channels"]),
                    default_samplerate=float(dev.get("default_samplerate", 0.0)),
                    is_default=index == default_in,
                )
            )
    return out


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
        block_s: float = 0.032,
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


class MicrophoneSource(AudioSource):
    """Live input through PortAudio (sounddevice), mono float32.

    device: index, or a case-insensitive substring of the device name, or None (default).
    The stream runs at 16 kHz when the device supports it, else at the device's default rate,
    and blocks are resampled to 16 kHz (soxr, streaming) in ``read`` on the pipeline thread.
    The callback copies each block into a bounded queue (``queue_blocks``); when it is full
    the block is dropped and counted. ``read`` raises DeviceLostError when the stream stops
    by itself, PortAudio fails, or no block arrives for ``lost_after_s`` while running
    (``first_block_s`` for the first block: an idle PulseAudio source takes ~2 s to wake).
    ``start`` re-reads PortAudio's device list when no other stream is open, so a device
    plugged in after start-up is found. Restartable: ``stop(); start()``.
    """

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sample_rate: int = PIPELINE_RATE,
        block_s: float = 0.032,
        queue_blocks: int = 64,
        lost_after_s: float = 2.0,
        first_block_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if queue_blocks < 1 or block_s <= 0:
            raise ValueError("queue_blocks must be >= 1 and block_s > 0")
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
        sd = import_sounddevice()
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
        devices = _input_devices(sd)
        listing = "; ".join(f"[{d.index}] {d.name}" for d in devices) or "none"
        if not devices:
            raise NoInputDeviceError("no audio input device found (available input devices: none)")
        if self.device is None:
            chosen = next((d for d in devices if d.is_default), devices[0])
        elif isinstance(self.device, int) or str(self.device).isdigit():
            chosen = next((d for d in devices if d.index == int(self.device)), None)
        else:  # the exact name first (indices change when devices come and go), then a part
            needle = str(self.device).lower()
            chosen = next((d for d in devices if needle == d.name.lower()), None) or next(
                (d for d in devices if needle in d.name.lower()), None
            )
        if chosen is None:
            raise NoInputDeviceError(
                f"no input device matches {self.device!r}; available input devices: {listing}"
            )
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
        _stream_opened(self, True)
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
            _stream_opened(self, False)
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
            _stream_opened(self, False)

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
