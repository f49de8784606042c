"""PortAudio's input devices: listing, re-scanning, choosing one, and its errors as sentences.

PortAudio is process-global: the streams ``core.microphone`` opens are registered here, so that
a re-scan never terminates PortAudio under an open stream.
"""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from .errors import NoInputDeviceError, PortAudioMissingError

__all__ = [
    "InputDevice",
    "PORTAUDIO_HINT",
    "device_error_sentence",
    "find_input_device",
    "import_sounddevice",
    "list_input_devices",
    "open_stream_count",
    "query_input_devices",
    "rescan_devices",
    "stream_opened",
]

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
    return query_input_devices(sd)


# PortAudio is process-global: it may only be re-initialised while no stream is open.
# The sources holding an open stream (weak: a source dropped without stop() no longer counts).
_streams_lock = threading.Lock()
_open_sources: weakref.WeakSet[Any] = weakref.WeakSet()


def stream_opened(source: Any, is_open: bool) -> None:
    """Register (``is_open``) or forget a source whose ``_stream`` holds a PortAudio stream."""
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


def query_input_devices(sd: Any) -> list[InputDevice]:
    """The input devices in ``sd``'s (sounddevice's) current list. Raises NoInputDeviceError."""
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


def find_input_device(devices: list[InputDevice], spec: int | str | None) -> InputDevice:
    """The device ``spec`` names: None (the default), an index, or a case-insensitive name
    (the exact name first, then a part of one). Raises NoInputDeviceError, listing the others."""
    listing = "; ".join(f"[{d.index}] {d.name}" for d in devices) or "none"
    if not devices:
        raise NoInputDeviceError("no audio input device found (available input devices: none)")
    if spec is None:
        chosen = next((d for d in devices if d.is_default), devices[0])
    elif isinstance(spec, int) or str(spec).isdigit():
        chosen = next((d for d in devices if d.index == int(spec)), None)
    else:  # the exact name first (indices change when devices come and go), then a part
        needle = str(spec).lower()
        chosen = next((d for d in devices if needle == d.name.lower()), None) or next(
            (d for d in devices if needle in d.name.lower()), None
        )
    if chosen is None:
        raise NoInputDeviceError(
            f"no input device matches {spec!r}; available input devices: {listing}"
        )
    return chosen
