"""Audio loading: any supported file to a float32 mono waveform at 16 kHz, or a typed error.

Files are decoded and resampled in blocks (soundfile blocks, soxr's streaming resampler, or
ffmpeg's output pipe), so :func:`iter_audio` needs memory for one block whatever the file's
length, and :func:`load_audio` only for its 16 kHz result.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import (
    AudioFileNotFoundError,
    CorruptAudioError,
    EmptyAudioError,
    InvalidSamplesError,
    PartialAudioError,
    SampleRateError,
    TooLongError,
    UnsupportedFormatError,
)

__all__ = [
    "SAMPLE_RATE",
    "AUDIO_EXTENSIONS",
    "SOUNDFILE_EXTENSIONS",
    "load_audio",
    "iter_audio",
    "audio_duration_s",
    "MIN_SAMPLE_RATE",
    "MAX_SAMPLE_RATE",
    "DEFAULT_MAX_DURATION_S",
    "resample",
    "normalize_wave",
    "ffmpeg_available",
]

SAMPLE_RATE = 16000
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".wma", ".aac", ".aiff"}
)
# Formats libsndfile (>= 1.1) decodes itself; a refusal for these means the data is bad.
SOUNDFILE_EXTENSIONS: frozenset[str] = frozenset(
    {".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif"}
)
PEAK_TARGET = 0.99  # peak normalisation: max |sample| after scaling
RMS_TARGET = 0.1  # rms normalisation: -20 dBFS, then clipped to [-1, 1]
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000  # Hz; a file outside is refused
# load_audio's default limit: 2 h is 460 MB as 16 kHz float32. iter_audio streams, no limit.
DEFAULT_MAX_DURATION_S = 7200.0
DECODE_BLOCK_S = 1.0  # seconds of source audio decoded per step

# libsndfile's WAV parser notes a data chunk shorter than its header claims like this.
_WAV_SHORT_DATA = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def ffmpeg_available() -> bool:
    """True when an ``ffmpeg`` executable is on PATH (used for M4A/WMA/AAC and fallbacks)."""
    return shutil.which("ffmpeg") is not None


def load_audio(
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    *,
    normalize: str | None = None,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
) -> np.ndarray:
    """Decode ``path`` to a mono float32 waveform of shape (N,) at ``sample_rate`` Hz, in [-1, 1].

    WAV/FLAC/OGG/Opus/MP3/AIFF go through soundfile; anything soundfile refuses (M4A, WMA,
    AAC, ...) through ffmpeg when it is installed. Channels are averaged; the rate is
    converted with soxr, block by block. ``normalize``: None (as decoded), "peak" (max |x| =
    0.99) or "rms" (rms = 0.1, i.e. -20 dBFS, then clipped). ``max_duration_s``: longer files
    are refused (None: no limit); the result needs 64 kB per second of audio.

    Raises AudioFileNotFoundError, EmptyAudioError (0 bytes / 0 samples), CorruptAudioError
    (undecodable; PartialAudioError when only the start decodes), UnsupportedFormatError (no
    decoder; says to install ffmpeg), SampleRateError (outside 8-192 kHz), TooLongError,
    InvalidSamplesError (NaN/Inf). All are AudioError with ``.path`` and ``.reason``.
    """
    if normalize not in (None, "peak", "rms"):
        raise ValueError(f"normalize must be None, 'peak' or 'rms', got {normalize!r}")
    blocks, expected = _open_blocks(path, sample_rate, max_duration_s, DECODE_BLOCK_S)
    wave = _collect(blocks, expected)
    if normalize is not None:
        wave = normalize_wave(wave, normalize)
    return np.clip(wave, -1.0, 1.0, out=wave)


def iter_audio(
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    *,
    block_s: float = DECODE_BLOCK_S,
    max_duration_s: float | None = None,
) -> Iterator[np.ndarray]:
    """Decode ``path`` block by block: yields float32 mono blocks (n,) at ``sample_rate`` Hz,
    clipped to [-1, 1], each about ``block_s`` seconds (sizes vary; the first may be shorter
    while the resampler fills). Memory stays at a few blocks whatever the file's length.

    The file is checked before this returns (missing, empty, header, sample rate, length from
    the header); errors found while decoding (PartialAudioError, InvalidSamplesError, ...)
    are raised by the iteration, after the blocks that decoded. Closing the iterator early
    stops the decoder (ffmpeg included).
    """
    if block_s <= 0:
        raise ValueError(f"block_s must be > 0, got {block_s}")
    blocks, _ = _open_blocks(path, sample_rate, max_duration_s, block_s)
    return _clipped(blocks)


def audio_duration_s(path: str | Path) -> float | None:
    """Duration in seconds from the file's header (soundfile), or None when only ffmpeg reads it."""
    import soundfile as sf

    try:
        return float(sf.info(str(path)).duration)
    except (RuntimeError, ValueError, OSError, EOFError):
        return None


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono waveform (N,) from ``orig_sr`` to ``target_sr`` Hz with soxr (HQ).

    Returns float32 of length about N * target_sr / orig_sr (a copy, also when the rates match).
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be > 0, got {orig_sr} -> {target_sr}")
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"resample expects a mono waveform (N,), got shape {x.shape}")
    if orig_sr == target_sr or x.size == 0:
        return x.copy()
    import soxr

    return np.ascontiguousarray(soxr.resample(x, orig_sr, target_sr, quality="HQ"), np.float32)


def normalize_wave(wave: np.ndarray, mode: str) -> np.ndarray:
    """Scale (N,) float32 to peak 0.99 (``mode="peak"``) or rms 0.1 (``"rms"``, clipped).

    Digital silence is returned unchanged (there is nothing to scale).
    """
    x = np.asarray(wave, dtype=np.float32)
    if mode == "peak":
        level, target = float(np.max(np.abs(x), initial=0.0)), PEAK_TARGET
    elif mode == "rms":
        level, target = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), RMS_TARGET
    else:
        raise ValueError(f"normalize mode must be 'peak' or 'rms', got {mode!r}")
    if level <= 1e-9:
        return x.copy()
    return np.clip(x * np.float32(target / level), -1.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- decoding


class _Resampler:
    """soxr's streaming resampler for mono float32 blocks (a pass-through at equal rates)."""

    def __init__(self, in_rate: int, out_rate: int):
        import soxr

        self._stream = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
        )

    def push(self, x: np.ndarray, *, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return x
        return np.ascontiguousarray(self._stream.resample_chunk(x, last=last), np.float32)


def _open_blocks(
    path: str | Path, sample_rate: int, max_duration_s: float | None, block_s: float
) -> tuple[Iterator[np.ndarray], int | None]:
    """Check the file, choose the decoder; returns (unclipped blocks, expected sample count)."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    if max_duration_s is not None and max_duration_s <= 0:
        raise ValueError(f"max_duration_s must be > 0 or None, got {max_duration_s}")
    p = _check_file(path)
    import soundfile as sf

    try:
        info = sf.info(str(p))
    # soundfile's LibsndfileError is a RuntimeError; odd headers can raise ValueError/EOFError.
    except (RuntimeError, ValueError, OSError, EOFError) as exc:
        _require_ffmpeg(p, exc)
        gen = _ffmpeg_blocks(p, sample_rate, block_s)
        return _checked(gen, p, sample_rate, max_duration_s), None
    _check_header(p, info, max_duration_s)
    expected = -(-int(info.frames) * sample_rate // int(info.samplerate))
    if info.format in _MPEG_FORMATS and ffmpeg_available():  # see _soundfile_blocks on MP3
        return _checked(_ffmpeg_blocks(p, sample_rate, block_s), p, sample_rate, max_duration_s), None
    gen = _soundfile_blocks(p, info, sample_rate, block_s)
    return _checked(gen, p, sample_rate, max_duration_s), expected


def _check_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise AudioFileNotFoundError(p, "file not found")
    if not p.is_file():
        raise AudioFileNotFoundError(p, "not a regular file")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise AudioFileNotFoundError(p, f"cannot access the file ({exc.strerror or exc})") from exc
    if size == 0:
        raise EmptyAudioError(p, "the file is empty (0 bytes)")
    return p


def _check_header(path: Path, info: Any, max_duration_s: float | None) -> None:
    """Refuse, before decoding, a rate outside 8-192 kHz, no samples, a cut WAV, a long file."""
    sr = int(info.samplerate)
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise SampleRateError(
            path, f"sample rate {sr} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
        )
    if info.frames <= 0:
        raise EmptyAudioError(path, "the file holds no samples")
    if info.format == "WAV":
        _check_wav_complete(path, info.extra_info, info.frames / sr)
    duration = info.frames / sr
    if max_duration_s is not None and duration > max_duration_s:
        raise TooLongError(
            path, f"{duration:.0f} s long, more than the limit of {max_duration_s:.0f} s"
        )


def _check_wav_complete(path: Path, extra_info: str, readable_s: float) -> None:
    """Reject a WAV whose data chunk is shorter than its header says (a cut-off file).

    Streamed WAVs write 0 or 0xFFFFFFFF as a placeholder size; those are not truncation.
    """
    m = _WAV_SHORT_DATA.search(extra_info or "")
    if m:
        declared, actual = int(m.group(1)), int(m.group(2))
        if 0 < actual < declared < 0xFFFFFFF0:
            raise PartialAudioError(
                path,
                f"truncated WAV: the header declares {declared} data bytes, {actual} present "
                f"(only the first {readable_s:.2f} s)",
                readable_s,
            )


def _require_ffmpeg(path: Path, sf_exc: BaseException) -> None:
    """Raise the right error when soundfile refused ``path`` and there is no ffmpeg."""
    if ffmpeg_available():
        return
    ext = path.suffix.lower()
    sf_reason = _first_line(sf_exc)
    if ext in SOUNDFILE_EXTENSIONS:
        raise CorruptAudioError(path, f"cannot decode {ext} data: {sf_reason}") from sf_exc
    raise UnsupportedFormatError(
        path,
        f"format {ext or '(no extension)'} is not readable by soundfile ({sf_reason}); "
        "install ffmpeg to read M4A/WMA/AAC and other formats",
    ) from sf_exc


# Lossless containers whose header frame count is exact: fewer frames read means truncation.
_EXACT_LENGTH_FORMATS = frozenset({"WAV", "WAVEX", "FLAC", "AIFF", "W64", "RF64", "CAF"})
_READ_FRAMES = 4096  # frames per soundfile read
_MPEG_FORMATS = frozenset({"MP3", "MPEG"})  # soundfile's names for MPEG audio


def _soundfile_blocks(
    path: Path, info: Any, sample_rate: int, block_s: float
) -> Iterator[np.ndarray]:
    import soundfile as sf

    sr = int(info.samplerate)
    n = max(1, int(round(block_s * sr)))
    piece = _READ_FRAMES
    if info.format in _MPEG_FORMATS:  # libsndfile 1.2 garbles MP3 read in pieces: read it
        n = piece = int(info.frames) + 1  # whole (ffmpeg streams MP3 when it is installed)
    rs = _Resampler(sr, sample_rate)
    frames = 0
    with sf.SoundFile(str(path)) as f:
        while True:
            parts: list[np.ndarray] = []
            got = 0
            try:  # small reads, so a failure mid-block still tells how much decoded
                while got < n and (part := f.read(min(n - got, piece), "float32", True)).size:
                    parts.append(part)
                    got += part.shape[0]
            except (RuntimeError, ValueError, OSError, EOFError) as exc:
                if frames + got == 0 and ffmpeg_available():  # opens, but libsndfile can't decode
                    yield from _ffmpeg_blocks(path, sample_rate, block_s)
                    return
                raise _decode_failure(path, (frames + got) / sr, _first_line(exc)) from exc
            if got == 0:
                break
            data = parts[0] if len(parts) == 1 else np.concatenate(parts)  # (got, C)
            mono = data[:, 0].copy() if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
            _check_finite(path, mono, frames / sr)
            frames += data.shape[0]
            out = rs.push(mono)
            if out.size:
                yield out
    tail = rs.push(np.zeros(0, np.float32), last=True)
    if tail.size:
        yield tail
    if info.format in _EXACT_LENGTH_FORMATS and frames < info.frames:
        raise _decode_failure(
            path, frames / sr, f"the header declares {info.frames / sr:.2f} s, the data ends early"
        )


def _ffmpeg_blocks(path: Path, sample_rate: int, block_s: float) -> Iterator[np.ndarray]:
    """Decode with the ffmpeg executable to f32le mono at ``sample_rate``, read from its pipe
    block by block; ``-xerror`` makes a damaged stream an error, not a silent early end."""
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-xerror",
        "-i", str(path), "-vn", "-f", "f32le", "-acodec", "pcm_f32le",
        "-ac", "1", "-ar", str(int(sample_rate)), "pipe:1",
    ]  # fmt: skip
    n_bytes = 4 * max(1, int(round(block_s * sample_rate)))
    samples = 0
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a chatty ffmpeg cannot block
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
            )
        except OSError as exc:
            raise UnsupportedFormatError(path, f"cannot run ffmpeg ({exc}); install ffmpeg") from exc
        try:
            assert proc.stdout is not None
            while raw := proc.stdout.read(n_bytes):
                block = np.frombuffer(raw[: len(raw) - len(raw) % 4], dtype="<f4")
                _check_finite(path, block, samples / sample_rate)
                samples += block.size
                if block.size:
                    yield block.astype(np.float32)
            rc = proc.wait()
        finally:  # also when the consumer stops early: never leave ffmpeg running
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
        if rc != 0:
            err.seek(0)
            lines = err.read().decode("utf-8", "replace").strip().splitlines()
            reason = lines[-1] if lines else f"exit status {rc}"
            raise _decode_failure(path, samples / sample_rate, reason, tool="ffmpeg")


def _decode_failure(
    path: Path, seconds_read: float, reason: str, *, tool: str = ""
) -> CorruptAudioError:
    """CorruptAudioError when nothing decoded, PartialAudioError with the seconds read if some did."""
    who = f"{tool} " if tool else ""
    if seconds_read <= 0:
        what = "the file" if tool else f"{path.suffix.lower()} data"
        return CorruptAudioError(path, f"{who}cannot decode {what}: {reason}")
    return PartialAudioError(
        path, f"only the first {seconds_read:.2f} s decode ({who}stopped: {reason})", seconds_read
    )


def _check_finite(path: Path, block: np.ndarray, at_s: float) -> None:
    if not np.all(np.isfinite(block)):
        bad = int(np.count_nonzero(~np.isfinite(block)))
        raise InvalidSamplesError(
            path, f"{bad} sample(s) are NaN or infinite (in the block at {at_s:.2f} s)"
        )


def _checked(
    blocks: Iterator[np.ndarray], path: Path, sample_rate: int, max_duration_s: float | None
) -> Iterator[np.ndarray]:
    """Pass blocks through, enforcing the length limit; no samples at all is an EmptyAudioError."""
    limit = None if max_duration_s is None else int(max_duration_s * sample_rate) + sample_rate
    total = 0
    try:
        for b in blocks:
            total += b.size
            if limit is not None and total > limit:
                raise TooLongError(path, f"longer than the limit of {max_duration_s:.0f} s")
            yield b
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
    if total == 0:
        raise EmptyAudioError(path, "the file holds no samples")


def _clipped(blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    try:
        for b in blocks:
            yield np.clip(b, -1.0, 1.0)
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()


def _collect(blocks: Iterator[np.ndarray], expected: int | None) -> np.ndarray:
    """Concatenate blocks into one float32 array, preallocated from the header's length so a
    long file needs its result's memory once, not twice."""
    buf = np.empty((expected or SAMPLE_RATE * 10) + 64, dtype=np.float32)
    n = 0
    for b in blocks:
        if n + b.size > buf.size:
            grown = np.empty(max(2 * buf.size, n + b.size), dtype=np.float32)
            grown[:n] = buf[:n]
            buf = grown
        buf[n : n + b.size] = b
        n += b.size
    return buf[:n] if buf.size - n <= 4096 else buf[:n].copy()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
