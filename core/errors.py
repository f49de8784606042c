"""Typed errors: every failure a user can cause has a class, a file name and a reason."""

from __future__ import annotations

import re
from pathlib import Path


class VoxgateError(Exception):
    """Base of every error voxgate raises on purpose."""


class ConfigError(VoxgateError, ValueError):
    """A configuration has an unknown key, a wrong type or an impossible value."""


class AudioError(VoxgateError):
    """Audio could not be turned into a usable 16 kHz mono waveform."""

    def __init__(self, path: str | Path | None, reason: str):
        self.path = None if path is None else str(path)
        self.reason = reason
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}{reason}")


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """The file does not exist."""


class EmptyAudioError(AudioError):
    """The file has zero bytes or zero samples."""


class CorruptAudioError(AudioError):
    """The data is truncated or cannot be decoded."""


class PartialAudioError(CorruptAudioError):
    """Only the start of the file decodes (a cut-off or damaged file); ``seconds_read`` says
    how much audio (in seconds) came out before the decoder failed."""

    def __init__(self, path: str | Path | None, reason: str, seconds_read: float):
        self.seconds_read = float(seconds_read)
        super().__init__(path, reason)


class UnsupportedFormatError(AudioError):
    """No decoder (soundfile, or ffmpeg when installed) reads this format."""


class SampleRateError(AudioError):
    """The file's sample rate is outside what voxgate accepts (8-192 kHz)."""


class TooLongError(AudioError):
    """The recording is longer than the configured limit (``max_duration_s``)."""


class InvalidSamplesError(AudioError):
    """The waveform holds NaN or infinite samples."""


class TooShortError(AudioError):
    """Too little (speech) audio remains, e.g. after silence removal."""


class DeviceError(VoxgateError):
    """The audio input device is unavailable."""


class PortAudioMissingError(DeviceError):
    """The PortAudio system library (needed by sounddevice) is not installed."""


class NoInputDeviceError(DeviceError):
    """No (matching) input device exists."""


class DeviceLostError(DeviceError):
    """The input device disappeared or failed while streaming."""


class DatasetError(VoxgateError):
    """A dataset source or HDF5 file is missing, inconsistent or incomplete."""


class CheckpointError(VoxgateError):
    """A checkpoint is missing, not a voxgate checkpoint, or does not match its model."""


class ProfileError(VoxgateError):
    """A voice profile is missing, corrupt, or made with another model."""


class LockedOutError(ProfileError):
    """Too many failed attempts: wait ``wait_s`` seconds, or unlock (``disabled``)."""

    def __init__(self, message: str, *, wait_s: float = 0.0, disabled: bool = False):
        super().__init__(message)
        self.wait_s = float(wait_s)
        self.disabled = bool(disabled)


class InterruptedByUser(KeyboardInterrupt):
    """SIGTERM turned into an interrupt, so it unwinds (and cleans up) exactly like Ctrl+C."""


# HDF5 wraps the system error in its own text: "... name = 'x.h5', errno = 28, error message
# = 'No space left on device' ...".
_HDF5_ERRNO = re.compile(r"errno = (\d+), error message = '([^']*)'")
_HDF5_NAME = re.compile(r"name = '([^']*)'")


def os_error_message(exc: OSError) -> str:
    """One line for an OSError: ``<file>: <reason>`` (HDF5's long form reduced to its errno's
    text, e.g. "No space left on device"); no file part when the error names none."""
    text = str(exc)
    filename, reason = exc.filename, exc.strerror
    m = _HDF5_ERRNO.search(text)
    if m:
        reason = m.group(2)
        if filename is None and (n := _HDF5_NAME.search(text)):
            filename = n.group(1)
    if not reason:
        reason = text.splitlines()[0] if text.strip() else type(exc).__name__
    if exc.filename2 is not None:
        return f"{filename} -> {exc.filename2}: {reason}"
    return f"{filename}: {reason}" if filename is not None else reason
