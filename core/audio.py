"""Audio loading: any supported file to a float32 mono waveform at 16 kHz, or a typed error."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from .errors import (
    AudioError,
    AudioFileNotFoundError,
    CorruptAudioError,
    EmptyAudioError,
    InvalidSamplesError,
    UnsupportedFormatError,
)

__all__ = [
    "SAMPLE_RATE",
    "AUDIO_EXTENSIONS",
    "SOUNDFILE_EXTENSIONS",
    "load_audio",
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
FFMPEG_TIMEOUT_S = 300.0

# libsndfile's WAV parser notes a data chunk shorter than its header claims like this.
_WAV_SHORT_DATA = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def ffmpeg_available() -> bool:
    """True when an ``ffmpeg`` executable is on PATH (used for M4A/WMA/AAC and fallbacks)."""
    return shutil.which("ffmpeg") is not None


def load_audio(
    path: str | Path, sample_rate: int = SAMPLE_RATE, *, normalize: str | None = None
) -> np.ndarray:
    """Decode ``path`` to a mono float32 waveform of shape (N,) at ``sample_rate`` Hz, in [-1, 1].

    WAV/FLAC/OGG/Opus/MP3/AIFF go through soundfile; anything soundfile refuses (M4A, WMA,
    AAC, ...) through ffmpeg when it is installed. Channels are averaged; the rate is
    converted with soxr. ``normalize``: None (as decoded), "peak" (max |x| = 0.99) or
    "rms" (rms = 0.1, i.e. -20 dBFS, then clipped).

    Raises AudioFileNotFoundError, EmptyAudioError (0 bytes / 0 samples), CorruptAudioError
    (truncated or undecodable), UnsupportedFormatError (no decoder; says to install ffmpeg),
    InvalidSamplesError (NaN/Inf). All are AudioError with ``.path`` and ``.reason``.
    """
    if normalize not in (None, "peak", "rms"):
        raise ValueError(f"normalize must be None, 'peak' or 'rms', got {normalize!r}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
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

    wave, sr = _decode(p, sample_rate)
    if wave.size == 0:
        raise EmptyAudioError(p, "the file holds no samples")
    if not np.all(np.isfinite(wave)):
        bad = int(np.count_nonzero(~np.isfinite(wave)))
        raise InvalidSamplesError(p, f"{bad} sample(s) are NaN or infinite")
    wave = resample(wave, sr, sample_rate)
    if normalize is not None:
        wave = normalize_wave(wave, normalize)
    return np.clip(wave, -1.0, 1.0, out=wave)


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


def _decode(path: Path, sample_rate: int) -> tuple[np.ndarray, int]:
    """Decode to mono float32 at the file's own rate (soundfile) or ``sample_rate`` (ffmpeg)."""
    ext = path.suffix.lower()
    try:
        return _decode_soundfile(path)
    except AudioError:
        raise
    # soundfile's LibsndfileError is a RuntimeError; odd headers can raise ValueError/EOFError.
    except (RuntimeError, ValueError, OSError, EOFError) as exc:
        sf_reason = _first_line(exc)
        sf_exc = exc
    if ffmpeg_available():
        return _decode_ffmpeg(path, sample_rate), sample_rate
    if ext in SOUNDFILE_EXTENSIONS:
        raise CorruptAudioError(path, f"cannot decode {ext} data: {sf_reason}") from sf_exc
    raise UnsupportedFormatError(
        path,
        f"format {ext or '(no extension)'} is not readable by soundfile ({sf_reason}); "
        "install ffmpeg to read M4A/WMA/AAC and other formats",
    ) from sf_exc


def _decode_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        sr = int(f.samplerate)
        if f.format == "WAV":
            _check_wav_complete(path, f.extra_info)
        data = f.read(dtype="float32", always_2d=True)  # (N, C)
    wave = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(wave, dtype=np.float32), sr


def _check_wav_complete(path: Path, extra_info: str) -> None:
    """Reject a WAV whose data chunk is shorter than its header says (a cut-off file).

    Streamed WAVs write 0 or 0xFFFFFFFF as a placeholder size; those are not truncation.
    """
    m = _WAV_SHORT_DATA.search(extra_info or "")
    if m:
        declared, actual = int(m.group(1)), int(m.group(2))
        if 0 < actual < declared < 0xFFFFFFF0:
            raise CorruptAudioError(
                path, f"truncated WAV: the header declares {declared} data bytes, {actual} present"
            )


def _decode_ffmpeg(path: Path, sample_rate: int) -> np.ndarray:
    """Decode with the ffmpeg executable to f32le mono at ``sample_rate``; returns (N,)."""
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
        "-i", str(path), "-vn", "-f", "f32le", "-acodec", "pcm_f32le",
        "-ac", "1", "-ar", str(int(sample_rate)), "pipe:1",
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise CorruptAudioError(
            path, f"ffmpeg did not finish within {FFMPEG_TIMEOUT_S:.0f} s"
        ) from exc
    except OSError as exc:
        raise UnsupportedFormatError(path, f"cannot run ffmpeg ({exc}); install ffmpeg") from exc
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = err[-1] if err else f"exit status {proc.returncode}"
        raise CorruptAudioError(path, f"ffmpeg cannot decode the file: {reason}")
    raw = proc.stdout
    usable = len(raw) - len(raw) % 4
    return np.frombuffer(raw[:usable], dtype="<f4").astype(np.float32)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
