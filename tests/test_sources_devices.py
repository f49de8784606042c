"""MicrophoneSource and the device list as devices come and go (a fake PortAudio module:
there is no sound card here)."""

from __future__ import annotations

import numpy as np
import pytest

from voxgate.core import input_devices
from voxgate.core.errors import DeviceLostError
from voxgate.core.input_devices import device_error_sentence, open_stream_count, rescan_devices
from voxgate.core.microphone import MicrophoneSource


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class FakeSD:
    """The sounddevice calls MicrophoneSource makes; the device list is read at initialise
    time, like PortAudio's."""

    def __init__(self, plugged: list[str]) -> None:
        self.plugged = plugged
        self.devices: list[dict] = []
        self.inits = 0
        self._initialize()

    class default:
        device = (0, 0)

    def _terminate(self) -> None:
        self.devices = []

    def _initialize(self) -> None:
        self.inits += 1
        self.devices = [
            {"name": n, "max_input_channels": 1, "default_samplerate": 16000.0}
            for n in self.plugged
        ]

    def query_devices(self, index=None):
        return self.devices if index is None else self.devices[index]

    def check_input_settings(self, **_kw) -> None:
        pass

    def InputStream(self, device, **_kw):  # noqa: N802 (sounddevice naming)
        if device >= len(self.plugged) or self.devices[device]["name"] != self.plugged[device]:
            raise RuntimeError(
                "Error opening InputStream: Illegal combination of I/O devices [PaErrorCode -9993]"
            )
        return FakeStream()


class FakeStream:
    active = False

    def start(self) -> None:
        self.active = True

    def stop(self) -> None:
        self.active = False

    def close(self) -> None:
        pass


@pytest.fixture
def fake_sd(monkeypatch) -> FakeSD:
    sd = FakeSD(["Built-in Mic"])
    monkeypatch.setattr(input_devices, "import_sounddevice", lambda: sd)
    return sd


def test_rescan_finds_a_plugged_device_but_never_under_an_open_stream(fake_sd) -> None:
    assert [d.name for d in input_devices.list_input_devices()] == ["Built-in Mic"]
    fake_sd.plugged.append("USB Headset")
    assert len(input_devices.list_input_devices()) == 1  # PortAudio's cached list
    assert [d.name for d in input_devices.list_input_devices(rescan=True)] == [
        "Built-in Mic", "USB Headset"
    ]  # fmt: skip
    mic = MicrophoneSource("USB Headset")
    mic.start()
    assert open_stream_count() == 1 and mic.name == "USB Headset"
    inits = fake_sd.inits
    assert rescan_devices(fake_sd) is False and fake_sd.inits == inits  # the stream stays
    mic.stop()
    mic.stop()  # idempotent: the count never goes below zero
    assert open_stream_count() == 0
    assert rescan_devices(fake_sd) is True and fake_sd.inits == inits + 1


def test_a_vanished_device_is_a_plain_sentence(fake_sd) -> None:
    fake_sd.plugged[:] = ["USB Headset"]
    input_devices.list_input_devices(rescan=True)
    fake_sd.plugged.clear()  # unplugged; start() looks again and finds nothing
    with pytest.raises(Exception, match="no audio input device found") as err:
        MicrophoneSource("USB Headset").start()
    assert "PaErrorCode" not in str(err.value)
    # a stale list (another stream kept PortAudio from looking again): the open fails plainly
    fake_sd.plugged[:] = ["USB Headset"]
    input_devices.list_input_devices(rescan=True)
    other = MicrophoneSource("USB Headset")
    other.start()
    fake_sd.plugged[:] = ["Other"]
    with pytest.raises(DeviceLostError) as err:
        MicrophoneSource("USB Headset").start()
    other.stop()
    text = str(err.value)
    assert "PaErrorCode" not in text and "-9993" not in text
    assert "no longer available (unplugged?)" in text
    assert open_stream_count() == 0


def test_device_error_sentence() -> None:
    assert device_error_sentence(RuntimeError("x [PaErrorCode -9996]")) == (
        "the device is no longer available (unplugged?)"
    )
    assert device_error_sentence(RuntimeError("odd failure [PaErrorCode -1]")) == "odd failure"


def test_first_block_may_take_five_seconds() -> None:
    """An idle PulseAudio source delivered its first block after 2.03 s: not a lost device."""
    clock = FakeClock()
    mic = MicrophoneSource(clock=clock)
    mic._stream = FakeStream()
    mic._stream.active = True
    mic._running = True
    mic._last_block_t = clock.t
    clock.t += 4.9
    assert mic.read(0.0) is None
    mic._callback(np.zeros((512, 1), np.float32), 512, None, None)
    assert mic.read(0.0).size == 512
    clock.t += 2.1  # after the first block the 2-s watchdog applies
    with pytest.raises(DeviceLostError, match="no audio from"):
        mic.read(0.0)
    mic2 = MicrophoneSource(clock=clock)
    mic2._stream, mic2._running, mic2._last_block_t = FakeStream(), True, clock.t
    mic2._stream.active = True
    clock.t += 5.1
    with pytest.raises(DeviceLostError, match="no audio from .* for 5.1 s"):
        mic2.read(0.0)
