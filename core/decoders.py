"""The decoders behind ``core.audio``: soundfile's blocks or ffmpeg's pipe, resampled with
soxr's streaming resampler to mono float32 at the rate asked for; a failure part-way says how
many seconds decoded (PartialAudioError)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import (
    CorruptAudioError,
    InvalidSamplesError,
    PartialAudioError,
    UnsupportedFormatError,
)

__all__ = [
    "MPEG_FORMATS",
    "ffmpeg_available",
    "ffmpeg_blocks",
    "first_line",
    "soundfile_blocks",
]


def ffmpeg_available() -> bool:
    """True when an ``ffmpeg`` executable is on PATH (used for M4A/WMA/AAC and fallbacks)."""
    return shutil.which("ffmpeg") is not None


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


# Lossless containers whose header frame count is exact: fewer frames read means truncation.
_EXACT_LENGTH_FORMATS = frozenset({"WAV", "WAVEX", "FLAC", "AIFF", "W64", "RF64", "CAF"})
_READ_FRAMES = 4096  # frames per soundfile read
MPEG_FORMATS = frozenset({"MP3", "MPEG"})  # soundfile's names for MPEG audio


def soundfile_blocks(
    path: Path, info: Any, sample_rate: int, block_s: float
) -> Iterator[np.ndarray]:
    """Decode ``path`` (``info``: its soundfile header) with libsndfile, ``block_s`` seconds
    at a time, to mono float32 at ``sample_rate``; ffmpeg takes over when libsndfile opens
    the file but cannot decode any of it."""
    import soundfile as sf

    sr = int(info.samplerate)
    n = max(1, int(round(block_s * sr)))
    piece = _READ_FRAMES
    if info.format in MPEG_FORMATS:  # libsndfile 1.2 garbles MP3 read in pieces: read it
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
                    yield from ffmpeg_blocks(path, sample_rate, block_s)
                    return
                raise _decode_failure(path, (frames + got) / sr, first_line(exc)) from exc
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


def ffmpeg_blocks(path: Path, sample_rate: int, block_s: float) -> Iterator[np.ndarray]:
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
            raise UnsupportedFormatError(
                path, f"cannot run ffmpeg ({exc}); install ffmpeg"
            ) from exc
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


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
