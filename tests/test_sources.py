"""Audio sources: FileSource blocks and pacing, the microphone callback's counters, failures.

There is no sound card here: MicrophoneSource's callback is exercised by calling it with numpy
blocks (the real code path), and its stream by a subclass whose stream is a plain object.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import skip_unless_portaudio_missing, tone, white_noise, write_wav
from voxgate.core.audio import load_audio
from voxgate.core.errors import (
    AudioFileNotFoundError,
    DeviceLostError,
    NoInputDeviceError,
    PartialAudioError,
    PortAudioMissingError,
    TooLongError,
)
from voxgate.core.input_devices import list_input_devices
from voxgate.core.live_config import LIVE_BLOCK_S
from voxgate.core.microphone import QUEUE_S, MicrophoneSource
from voxgate.core.sources import FileSource


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def drain(src) -> list[np.ndarray]:
    out = []
    while not src.finished:
        b = src.read(0.1)
        if b is not None:
            out.append(b)
    return out


def test_file_source_array_blocks_cover_the_wave_exactly() -> None:
    wave = tone(seconds=1.0)
    src = FileSource(wave, block_s=0.032)
    src.start()
    blocks = drain(src)
    assert [b.size for b in blocks[:-1]] == [512] * 31 and blocks[-1].size == 16000 - 31 * 512
    np.testing.assert_array_equal(np.concatenate(blocks), wave)
    assert src.stats() == {"blocks": 32, "overflows": 0, "drops": 0}
    assert src.read(0.1) is None
    src.start()  # rewinds
    assert src.read(0.1).size == 512 and src.stats()["blocks"] == 1


def test_file_source_path_and_resampled_array(tmp_path) -> None:
    path = write_wav(tmp_path, "t.wav", tone(seconds=0.5, sr=8000), sr=8000)
    src = FileSource(path)
    assert src.name == "t.wav" and src.sample_rate == 16000
    assert src.wave is None and src.duration_s == pytest.approx(0.5)  # streamed, not loaded
    src.start()
    assert sum(b.size for b in drain(src)) == 8000
    arr = FileSource(tone(seconds=0.5, sr=48000), sample_rate=48000)
    assert arr.wave.size == 8000 and arr.duration_s == pytest.approx(0.5)


def test_file_source_streams_a_file_in_exact_blocks_and_rewinds(tmp_path) -> None:
    x = white_noise(2.0, sr=48000, amp=0.3)
    path = write_wav(tmp_path, "n48.wav", np.stack([x, -0.5 * x], axis=1), sr=48000)
    expected = load_audio(path)
    src = FileSource(path, block_s=0.032)
    src.start()
    blocks = drain(src)
    assert {b.size for b in blocks[:-1]} == {512} and 0 < blocks[-1].size <= 512
    np.testing.assert_array_equal(np.concatenate(blocks), expected)
    assert src._pending.size == 0  # nothing held back once finished
    src.start()  # rewinds: the file is decoded again from its start
    np.testing.assert_array_equal(src.read(0.1), expected[:512])
    src.stop()
    assert src.finished and src.read(0.1) is None and src._decoded is None
    src.start()  # started and stopped again before a single read: still plays from the start
    src.stop()
    src.start()
    np.testing.assert_array_equal(np.concatenate(drain(src)), expected)


def test_file_source_checks_the_file_when_made(tmp_path) -> None:
    with pytest.raises(AudioFileNotFoundError):
        FileSource(tmp_path / "missing.wav")
    path = write_wav(tmp_path, "long.wav", tone(seconds=2.0), sr=16000)
    with pytest.raises(TooLongError):
        FileSource(path, max_duration_s=1.0)


def test_file_source_truncated_file_fails_after_the_readable_part(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg: soundfile's own error path
    good = write_wav(tmp_path, "good.flac", white_noise(2.0), sr=16000)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    src = FileSource(cut)
    src.start()
    got = 0
    with pytest.raises(PartialAudioError) as info:
        while not src.finished:
            got += src.read(0.1).size
    assert 0 < got <= info.value.seconds_read * 16000  # blocks before the damage did play
    assert src.finished  # a failed decoder does not leave the source half-open


def test_file_source_realtime_uses_deadlines() -> None:
    clock = FakeClock()
    src = FileSource(
        np.zeros(1600, np.float32), realtime=True, block_s=0.05, clock=clock, sleep=clock.sleep
    )
    src.start()
    assert src.read(timeout_s=0.0) is None  # block 0 is due at t0 + 0.05
    assert src.read(timeout_s=0.1).size == 800  # waits exactly until the deadline
    assert clock.t == pytest.approx(100.05)
    clock.t += 0.2  # the consumer was slow: the next block is overdue, no wait, no drift
    n = len(clock.slept)
    assert src.read(timeout_s=0.1).size == 800 and len(clock.slept) == n
    assert src.finished


def test_microphone_callback_counts_drops_exactly() -> None:
    mic = MicrophoneSource(queue_blocks=4)
    blocks = [np.full((512, 1), i, np.float32) for i in range(7)]
    for b in blocks:
        mic._callback(b, 512, None, None)
    assert mic.stats() == {"blocks": 0, "overflows": 0, "drops": 3}
    got = [mic.read(0.0) for _ in range(5)]
    assert [int(g[0]) for g in got[:4]] == [0, 1, 2, 3] and got[4] is None
    assert got[0].shape == (512,) and got[0].dtype == np.float32
    assert mic.stats()["blocks"] == 4


@pytest.mark.parametrize("block_s", [0.032, LIVE_BLOCK_S, 0.25])
def test_microphone_queue_holds_two_seconds_whatever_the_block(block_s) -> None:
    """A stalled pipeline: the callback keeps QUEUE_S of audio (2 s), then drops."""
    mic = MicrophoneSource(block_s=block_s)
    n = round(block_s * 16000)
    for i in range(200):
        mic._callback(np.full((n, 1), i, np.float32), n, None, None)
    kept = 200 - mic.stats()["drops"]
    assert kept * block_s == pytest.approx(QUEUE_S, abs=block_s)  # within one block


def test_microphone_callback_copies_and_counts_overflows() -> None:
    class Flags:  # the attribute sounddevice.CallbackFlags has
        input_overflow = True

    mic = MicrophoneSource(queue_blocks=8)
    indata = np.ones((256, 2), np.float32)
    mic._callback(indata, 256, None, Flags())
    indata[:] = 5.0  # PortAudio reuses its buffer: the queued block must be a copy
    assert mic.stats()["overflows"] == 1
    assert np.all(mic.read(0.0) == 1.0)


def test_microphone_callback_never_raises() -> None:
    mic = MicrophoneSource()
    mic._callback(None, 0, None, None)  # garbage in: counted, not raised
    assert mic._callback_errors == 1


class FakeStream:
    def __init__(self) -> None:
        self.active = False
        self.closed = False

    def start(self) -> None:
        self.active = True

    def stop(self) -> None:
        self.active = False

    def close(self) -> None:
        self.closed = True


class StreamedMic(MicrophoneSource):
    """The real MicrophoneSource with the PortAudio stream replaced by a plain object."""

    def __init__(self, rate: int = 16000, **kw) -> None:
        super().__init__(**kw)
        self.rate = rate
        self.streams: list[FakeStream] = []

    def _open_stream(self) -> FakeStream:
        self.stream_rate = self.rate
        self.streams.append(FakeStream())
        return self.streams[-1]


def test_device_lost_when_stream_stops_and_restart_works() -> None:
    mic = StreamedMic()
    mic.start()
    mic._callback(np.zeros((512, 1), np.float32), 512, None, None)
    assert mic.read(0.0).size == 512
    mic.streams[-1].active = False  # unplugged
    with pytest.raises(DeviceLostError, match="stopped delivering"):
        mic.read(0.0)
    assert mic.streams[-1].closed and not mic.running and mic.finished
    mic.stop()
    mic.start()
    assert len(mic.streams) == 2 and mic.running and mic.stats()["blocks"] == 0
    mic._callback(np.zeros((512, 1), np.float32), 512, None, None)
    assert mic.read(0.0).size == 512


def test_device_lost_after_two_seconds_without_blocks() -> None:
    clock = FakeClock()
    mic = StreamedMic(clock=clock)
    mic.start()
    mic._callback(np.zeros((512, 1), np.float32), 512, None, None)
    assert mic.read(0.0).size == 512  # after the first block, 2 s of silence is a loss
    assert mic.read(0.0) is None
    clock.t += 1.9
    assert mic.read(0.0) is None
    clock.t += 0.2
    with pytest.raises(DeviceLostError, match="no audio"):
        mic.read(0.0)


def test_microphone_resamples_device_rate_on_read() -> None:
    mic = StreamedMic(rate=48000)
    mic.start()
    wave = tone(1000.0, seconds=1.0, sr=48000)
    for block in wave.reshape(10, 4800, 1):
        mic._callback(block, 4800, None, None)
    out = np.concatenate([mic.read(0.0) for _ in range(10)])
    assert mic.sample_rate == 16000
    assert 15500 < out.size <= 16000  # soxr's streaming delay holds back ~20 ms
    spectrum = np.abs(np.fft.rfft(out[-8000:]))
    assert np.argmax(spectrum) * 16000 / 8000 == pytest.approx(1000.0, abs=4.0)


def test_missing_portaudio_is_a_clear_error() -> None:
    skip_unless_portaudio_missing()
    with pytest.raises(PortAudioMissingError, match="libportaudio2"):
        list_input_devices()
    with pytest.raises(PortAudioMissingError, match="brew install portaudio"):
        MicrophoneSource().start()


def test_unknown_device_lists_available_ones() -> None:
    class FakeSD:  # the two calls MicrophoneSource makes to enumerate devices
        class default:
            device = (1, 0)

        @staticmethod
        def query_devices():
            return [
                {"name": "HDMI out", "max_input_channels": 0, "default_samplerate": 48000.0},
                {"name": "USB Mic", "max_input_channels": 1, "default_samplerate": 44100.0},
            ]

    mic = MicrophoneSource("webcam")
    with pytest.raises(NoInputDeviceError, match=r"\[1\] USB Mic"):
        mic._resolve_device(FakeSD)
    assert MicrophoneSource("usb")._resolve_device(FakeSD) == 1
    assert MicrophoneSource(None)._resolve_device(FakeSD) == 1
    with pytest.raises(NoInputDeviceError):
        MicrophoneSource(0)._resolve_device(FakeSD)  # device 0 has no input channels
