"""Audio loading: any supported file to a float32 mono waveform at 16 kHz, or a typed error.

Files are checked here, then decoded and resampled in blocks by ``core.decoders`` (soundfile
blocks, soxr's streaming resampler, or ffmpeg's output pipe), so :func:`iter_audio` needs
memory for one block whatever the file's length, and :func:`load_audio` only for its 16 kHz
result.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .decoders import MPEG_FORMATS, ffmpeg_available, ffmpeg_blocks, first_line, soundfile_blocks
from .errors import (
    AudioFileNotFoundError,
    CorruptAudioError,
    EmptyAudioError,
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


# --------------------------------------------------------------------------- checks


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
        gen = ffmpeg_blocks(p, sample_rate, block_s)
        return _checked(gen, p, sample_rate, max_duration_s), None
    _check_header(p, info, max_duration_s)
    expected = -(-int(info.frames) * sample_rate // int(info.samplerate))
    if info.format in MPEG_FORMATS and ffmpeg_available():  # see soundfile_blocks on MP3
        gen = ffmpeg_blocks(p, sample_rate, block_s)
        return _checked(gen, p, sample_rate, max_duration_s), None
    gen = soundfile_blocks(p, info, sample_rate, block_s)
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
    sf_reason = first_line(sf_exc)
    if ext in SOUNDFILE_EXTENSIONS:
        raise CorruptAudioError(path, f"cannot decode {ext} data: {sf_reason}") from sf_exc
    raise UnsupportedFormatError(
        path,
        f"format {ext or '(no extension)'} is not readable by soundfile ({sf_reason}); "
        "install ffmpeg to read M4A/WMA/AAC and other formats",
    ) from sf_exc


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
