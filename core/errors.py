"""Typed errors: every failure a user can cause has a class, a file name and a reason."""

from __future__ import annotations

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
