"""load_audio: formats, mono mix, resampling, normalisation and a typed error for each bad file."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SR, tone, voiced, white_noise, write_wav
from voxgate.core.audio import (
    AUDIO_EXTENSIONS,
    SAMPLE_RATE,
    audio_duration_s,
    iter_audio,
    load_audio,
    normalize_wave,
    resample,
)
from voxgate.core.decoders import ffmpeg_available
from voxgate.core.errors import (
    AudioError,
    AudioFileNotFoundError,
    CorruptAudioError,
    EmptyAudioError,
    InvalidSamplesError,
    PartialAudioError,
    SampleRateError,
    TooLongError,
    UnsupportedFormatError,
)


def _dominant_hz(x: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spec) * sr / x.size)


def test_constants() -> None:
    assert SAMPLE_RATE == 16000
    assert {".wav", ".flac", ".opus", ".mp3", ".m4a", ".wma"} <= AUDIO_EXTENSIONS


@pytest.mark.parametrize(
    ("name", "subtype"),
    [
        ("a.wav", "PCM_16"),
        ("a.wav", "FLOAT"),
        ("a.flac", None),
        ("a.ogg", None),
        ("a.opus", "OPUS"),
        ("a.mp3", "MPEG_LAYER_III"),
    ],
)
def test_roundtrip_formats_at_16k(tmp_path: Path, name: str, subtype: str | None) -> None:
    x = tone(440.0, 1.0, amp=0.5)
    fmt = {"opus": "OGG", "mp3": "MP3"}.get(name.rsplit(".", 1)[1])
    path = tmp_path / name
    sf.write(str(path), x, SR, subtype=subtype, format=fmt)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size - x.size) <= 0.1 * SR  # lossy codecs may pad a little
    assert abs(_dominant_hz(y) - 440.0) < 2.0
    mid = y[1000:-1000]  # lossy codecs ring at the abrupt start and end
    assert abs(np.sqrt(np.mean(mid**2)) - 0.5 / np.sqrt(2)) < 0.02
    assert np.max(np.abs(y)) <= 1.0
    if name.endswith((".wav", ".flac")):
        np.testing.assert_allclose(y, x, atol=1e-4)


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_resampled_to_16k(tmp_path: Path, sr: int) -> None:
    x = tone(1000.0, 2.0, sr=sr, amp=0.5)
    y = load_audio(write_wav(tmp_path, f"t{sr}.wav", x, sr))
    assert abs(y.size - 2 * SR) <= 1
    assert abs(_dominant_hz(y) - 1000.0) < 1.0
    mid = y[SR // 2 : -SR // 2]  # away from the filter's edge effects
    assert abs(np.sqrt(np.mean(mid**2)) - 0.5 / np.sqrt(2)) < 0.01


def test_target_rate_argument(tmp_path: Path) -> None:
    y = load_audio(write_wav(tmp_path, "t.wav", tone(300.0, 1.0), SR), sample_rate=8000)
    assert y.size == 8000 and abs(_dominant_hz(y, 8000) - 300.0) < 1.5


def test_stereo_is_mixed_to_mono(tmp_path: Path) -> None:
    left, right = tone(440.0, 1.0, amp=0.4), tone(440.0, 1.0, amp=0.2)
    y = load_audio(write_wav(tmp_path, "st.wav", np.stack([left, right], axis=1), SR))
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-4)
    # opposite-phase channels cancel
    y0 = load_audio(write_wav(tmp_path, "anti.wav", np.stack([left, -left], axis=1), SR))
    assert np.max(np.abs(y0)) < 1e-4


def test_normalisation(tmp_path: Path) -> None:
    path = write_wav(tmp_path, "q.wav", voiced(seconds=1.0, amp=0.05), SR)
    assert abs(np.max(np.abs(load_audio(path))) - 0.05) < 1e-3
    assert abs(np.max(np.abs(load_audio(path, normalize="peak"))) - 0.99) < 1e-5
    rms = load_audio(path, normalize="rms")
    assert abs(np.sqrt(np.mean(rms.astype(np.float64) ** 2)) - 0.1) < 2e-3
    with pytest.raises(ValueError):
        load_audio(path, normalize="loud")
    np.testing.assert_array_equal(normalize_wave(np.zeros(10, np.float32), "peak"), 0.0)
    loud = normalize_wave(white_noise(0.5, amp=0.9), "rms")
    assert np.max(np.abs(loud)) <= 1.0  # rms scaling clips


def test_float_wav_out_of_range_is_clipped(tmp_path: Path) -> None:
    y = load_audio(write_wav(tmp_path, "hot.wav", tone(440.0, 0.5, amp=1.5), SR, subtype="FLOAT"))
    assert np.max(np.abs(y)) == 1.0


def test_resample_function() -> None:
    x = tone(500.0, 1.0, sr=48000)
    y = resample(x, 48000, 16000)
    assert y.dtype == np.float32 and y.size == 16000
    assert abs(_dominant_hz(y) - 500.0) < 1.0
    same = resample(x, 48000, 48000)
    assert same is not x and np.array_equal(same, x)
    with pytest.raises(ValueError):
        resample(x, 0, 16000)
    with pytest.raises(ValueError):
        resample(np.zeros((2, 10), np.float32), 16000, 8000)


# --- typed errors -----------------------------------------------------------------


def _check(exc: AudioError, path: Path, *words: str) -> None:
    assert exc.path == str(path)
    assert path.name in str(exc)
    for w in words:
        assert w in exc.reason.lower()


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioFileNotFoundError) as info:
        load_audio(path)
    _check(info.value, path, "not found")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(AudioFileNotFoundError):
        load_audio(tmp_path)  # a directory


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudioError) as info:
        load_audio(path)
    _check(info.value, path, "0 bytes")


def test_zero_sample_file(tmp_path: Path) -> None:
    path = write_wav(tmp_path, "nosamples.wav", np.zeros(0, np.float32), SR)
    assert path.stat().st_size > 0
    with pytest.raises(EmptyAudioError) as info:
        load_audio(path)
    _check(info.value, path, "no samples")


@pytest.mark.parametrize("name", ["hdr.wav", "hdr.flac"])
def test_truncated_header(tmp_path: Path, name: str) -> None:
    good = write_wav(tmp_path, "good" + Path(name).suffix, white_noise(1.0), SR)
    path = tmp_path / name
    path.write_bytes(good.read_bytes()[:30])
    with pytest.raises(CorruptAudioError) as info:
        load_audio(path)
    _check(info.value, path, "cannot decode")


@pytest.fixture(params=["with-ffmpeg", "without-ffmpeg"])
def ffmpeg_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run a test with the real ffmpeg on PATH (skipped where it is not installed) and without."""
    if request.param == "with-ffmpeg":
        if not ffmpeg_available():
            pytest.skip("ffmpeg is not installed (.ci/run installs it)")
    else:
        empty = tmp_path / "emptybin"
        empty.mkdir()
        monkeypatch.setenv("PATH", str(empty))
        assert not ffmpeg_available()
    return request.param


@pytest.mark.parametrize("name", ["cut.wav", "cut.flac"])
def test_truncated_data_is_partial_with_seconds_read(
    tmp_path: Path, name: str, ffmpeg_mode: str
) -> None:
    """A file cut in half is refused, whichever decoder reads it, and says how much decoded
    (the old ffmpeg fallback returned the first half silently)."""
    good = write_wav(tmp_path, "good" + Path(name).suffix, white_noise(2.0), SR)
    data = good.read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PartialAudioError) as info:
        load_audio(path)
    assert isinstance(info.value, CorruptAudioError) and info.value.path == str(path)
    assert 0.2 < info.value.seconds_read < 1.2
    assert f"{info.value.seconds_read:.2f} s" in info.value.reason
    with pytest.raises(PartialAudioError):
        list(iter_audio(path, block_s=0.1))


@pytest.mark.parametrize(("name", "flags"), [("cut.m4a", ["-movflags", "+faststart"]), ("cut.aac", [])])
def test_real_ffmpeg_cut_file_is_partial(tmp_path: Path, name: str, flags: list[str]) -> None:
    """Formats only ffmpeg reads: a cut file used to come back as its first half (exit 0)."""
    import subprocess

    if not ffmpeg_available():
        pytest.skip("ffmpeg is not installed (.ci/run installs it)")
    full = tmp_path / ("full" + Path(name).suffix)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         "sine=frequency=440:duration=4:sample_rate=44100", "-c:a", "aac", *flags, str(full)],
        check=True,
    )  # fmt: skip
    y = load_audio(full)
    assert abs(y.size / SR - 4.0) < 0.1 and abs(_dominant_hz(y) - 440.0) < 2.0
    path = tmp_path / name
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(PartialAudioError) as info:
        load_audio(path)
    assert 1.0 < info.value.seconds_read < 3.0 and "ffmpeg stopped" in info.value.reason


def test_intact_flac_streams_identically(tmp_path: Path, ffmpeg_mode: str) -> None:
    x = white_noise(3.0)
    path = write_wav(tmp_path, "ok.flac", x, SR)
    np.testing.assert_allclose(load_audio(path), x, atol=1e-4)
    assert np.concatenate(list(iter_audio(path, block_s=0.25))).size == x.size


@pytest.mark.parametrize("rate", [1, 4000, 7999, 192001, 384000])
def test_sample_rate_outside_8_to_192_khz_is_refused(tmp_path: Path, rate: int) -> None:
    """A 32 kB WAV whose header claims 1 Hz once asked for 4.4 h of audio at 16 kHz."""
    path = write_wav(tmp_path, "r.wav", np.zeros(16000, np.float32), SR)
    data = bytearray(path.read_bytes())
    data[24:28] = rate.to_bytes(4, "little")  # fmt chunk: sample rate
    data[28:32] = (2 * rate).to_bytes(4, "little")  # byte rate (16-bit mono)
    path.write_bytes(bytes(data))
    with pytest.raises(SampleRateError) as info:
        load_audio(path)
    _check(info.value, path, f"{rate} hz", "8000-192000")
    with pytest.raises(SampleRateError):
        iter_audio(path)  # refused before any decoding


def test_length_limit(tmp_path: Path) -> None:
    path = write_wav(tmp_path, "long.wav", white_noise(3.0), SR)
    with pytest.raises(TooLongError) as info:
        load_audio(path, max_duration_s=2.0)
    _check(info.value, path, "3 s long", "limit of 2 s")
    with pytest.raises(TooLongError):
        iter_audio(path, max_duration_s=2.5)
    assert load_audio(path, max_duration_s=3.5).size == 3 * SR
    assert audio_duration_s(path) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        load_audio(path, max_duration_s=0)


def test_iter_audio_blocks_match_load_audio_48k_stereo(tmp_path: Path) -> None:
    left, right = tone(700.0, 5.0, sr=48000, amp=0.6), white_noise(5.0, sr=48000, amp=0.2)
    path = write_wav(tmp_path, "st48.wav", np.stack([left, right], axis=1), 48000)
    blocks = list(iter_audio(path, block_s=0.5))
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    assert max(b.size for b in blocks) <= 0.6 * SR  # one block at a time, at 16 kHz
    streamed = np.concatenate(blocks)
    whole = resample((left + right) / 2, 48000, SR)
    assert abs(streamed.size - whole.size) <= 1 and abs(streamed.size - 5 * SR) <= 1
    mid = slice(SR, 4 * SR)  # away from the edges, streaming and one-shot soxr agree
    np.testing.assert_allclose(streamed[mid], whole[mid], atol=1e-3)
    np.testing.assert_array_equal(load_audio(path), streamed)


@pytest.mark.parametrize("name", ["garbage.wav", "garbage.flac", "garbage.mp3", "garbage.opus"])
def test_random_bytes(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(7).bytes(4096))
    with pytest.raises(CorruptAudioError) as info:
        load_audio(path)
    _check(info.value, path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_samples(tmp_path: Path, bad: float) -> None:
    x = tone(440.0, 0.5)
    x[1234] = bad
    path = write_wav(tmp_path, "nan.wav", x, SR, subtype="FLOAT")
    with pytest.raises(InvalidSamplesError) as info:
        load_audio(path)
    _check(info.value, path, "nan or infinite")


@pytest.fixture
def no_ffmpeg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PATH without ffmpeg, whether or not this machine has it."""
    empty = tmp_path / "emptybin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert not ffmpeg_available()


@pytest.mark.parametrize("name", ["voice.m4a", "voice.wma", "voice.aac", "voice.xyz"])
def test_unsupported_without_ffmpeg_says_install_ffmpeg(
    tmp_path: Path, no_ffmpeg: None, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + np.random.default_rng(1).bytes(2000))
    with pytest.raises(UnsupportedFormatError) as info:
        load_audio(path)
    _check(info.value, path, "install ffmpeg")


# ffmpeg is not installed on the development machine. This stand-in executable speaks
# ffmpeg's command line as load_audio uses it (-ar RATE, raw f32le on stdout), so the
# subprocess plumbing, rate handling and error mapping are exercised for real.
_FAKE_FFMPEG = """#!{python}
import sys, numpy as np
args = sys.argv[1:]
src = args[args.index("-i") + 1]
sr = int(args[args.index("-ar") + 1])
if src.endswith("broken.m4a"):
    sys.stderr.write("[mov,mp4] moov atom not found\\n" + src + ": Invalid data found\\n")
    sys.exit(1)
if src.endswith("empty.m4a"):
    sys.exit(0)
t = np.arange(sr // 2) / sr
sys.stdout.buffer.write((0.25 * np.sin(2 * np.pi * 440 * t)).astype("<f4").tobytes())
if src.endswith("cut.m4a"):
    sys.stderr.write("[aac @ 0x1] decode_frame() failed\\n")
    sys.exit(1)
"""


@pytest.fixture
def fake_ffmpeg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    exe = bindir / "ffmpeg"
    exe.write_text(_FAKE_FFMPEG.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir) + os.pathsep + os.environ.get("PATH", ""))
    assert ffmpeg_available()


@pytest.mark.skipif(sys.platform == "win32", reason="shebang script stands in for ffmpeg")
def test_ffmpeg_partial_decode_and_early_close(tmp_path: Path, fake_ffmpeg: None) -> None:
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(b"xx")
    with pytest.raises(PartialAudioError, match="decode_frame") as info:
        load_audio(cut)  # the fake writes 0.5 s, then fails like ffmpeg -xerror does
    assert info.value.seconds_read == pytest.approx(0.5)
    ok = tmp_path / "voice.m4a"
    ok.write_bytes(b"nonzero")
    it = iter_audio(ok, block_s=0.1)
    first = next(it)
    assert first.size == 1600
    it.close()  # stops (and reaps) the ffmpeg process without reading the rest


@pytest.mark.skipif(sys.platform == "win32", reason="shebang script stands in for ffmpeg")
def test_ffmpeg_fallback_path(tmp_path: Path, fake_ffmpeg: None) -> None:
    ok = tmp_path / "voice.m4a"
    ok.write_bytes(b"not really m4a but nonzero")
    y = load_audio(ok, sample_rate=8000)
    assert y.dtype == np.float32 and y.size == 4000
    assert abs(_dominant_hz(y, 8000) - 440.0) < 2.5
    broken = tmp_path / "broken.m4a"
    broken.write_bytes(b"xx")
    with pytest.raises(CorruptAudioError, match="Invalid data found") as info:
        load_audio(broken)
    assert info.value.path == str(broken)
    empty = tmp_path / "empty.m4a"
    empty.write_bytes(b"xx")
    with pytest.raises(EmptyAudioError):
        load_audio(empty)


# --- the real data ----------------------------------------------------------------


def test_real_opus_files_decode(shared_data: Path) -> None:
    with open(shared_data / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["path"].endswith(".opus")]
    if not rows:
        pytest.skip("no opus files in the manifest")
    rng = np.random.default_rng(0)
    picks = [rows[i] for i in rng.choice(len(rows), size=min(4, len(rows)), replace=False)]
    for row in picks:
        path = shared_data / row["path"]
        if not path.is_file():
            pytest.skip(f"{path} listed in the manifest but absent")
        assert sf.info(str(path)).samplerate in (16000, 48000)
        y = load_audio(path)
        assert y.dtype == np.float32 and y.ndim == 1
        assert abs(y.size / SR - float(row["duration_s"])) < 0.1
        assert 0.0 < np.max(np.abs(y)) <= 1.0
        assert np.sqrt(np.mean(y**2)) > 1e-3  # not silence
