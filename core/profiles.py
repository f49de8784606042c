"""Enrolled voice profiles: one JSON file each (0600), written atomically, tied to one model."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ProfileError

__all__ = ["Profile", "ProfileStore", "default_profile_dir", "PROFILE_SCHEMA_VERSION"]

PROFILE_SCHEMA_VERSION = 1
_MAX_NAME_LEN = 64


def default_profile_dir() -> Path:
    """``$VOXGATE_HOME/profiles`` when VOXGATE_HOME is set, else the platform's user data
    directory for voxgate (e.g. ~/.local/share/voxgate/profiles on Linux)."""
    home = os.environ.get("VOXGATE_HOME")
    if home:
        return Path(home).expanduser() / "profiles"
    import platformdirs

    return Path(platformdirs.user_data_dir("voxgate")) / "profiles"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass
class Profile:
    """One enrolled person.

    embedding: float32 (D,), L2-normalised mean of the enrollment windows' embeddings.
    model_fingerprint: the encoder's fingerprint; a profile is only ever compared with
    embeddings of the same model. quality: e.g. mean_cos / std_cos / min_cos of the windows
    to the profile. recording: file name of the kept enrollment audio (opt-in), else None.
    """

    name: str
    embedding: np.ndarray
    authorized: bool = True
    created: str = dataclasses.field(default_factory=_now)
    updated: str = dataclasses.field(default_factory=_now)
    model_fingerprint: str = ""
    n_windows: int = 0
    speech_s: float = 0.0
    quality: dict[str, float] = dataclasses.field(default_factory=dict)
    recording: str | None = None

    def __post_init__(self) -> None:
        self.name = _check_name(self.name)
        emb = np.asarray(self.embedding, dtype=np.float32)
        if emb.ndim != 1 or emb.size == 0 or not np.all(np.isfinite(emb)):
            raise ProfileError(f"profile {self.name!r}: embedding must be a finite 1-D vector")
        self.embedding = emb

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": PROFILE_SCHEMA_VERSION,
            "name": self.name,
            "embedding": [float(v) for v in self.embedding],
            "authorized": bool(self.authorized),
            "created": self.created,
            "updated": self.updated,
            "model_fingerprint": self.model_fingerprint,
            "n_windows": int(self.n_windows),
            "speech_s": float(self.speech_s),
            "quality": {k: float(v) for k, v in self.quality.items()},
            "recording": self.recording,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        """Inverse of :meth:`to_dict`; raises ProfileError on missing/unknown keys or bad values."""
        if not isinstance(data, dict):
            raise ProfileError("not a JSON object")
        data = dict(data)
        version = data.pop("schema_version", None)
        if version != PROFILE_SCHEMA_VERSION:
            raise ProfileError(f"unsupported profile schema_version {version!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ProfileError(f"unknown key(s) {unknown}")
        if "name" not in data or "embedding" not in data:
            raise ProfileError("missing 'name' or 'embedding'")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ProfileError(str(exc)) from exc


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ProfileError(f"a profile name must be a non-empty string, got {name!r}")
    name = name.strip()
    if len(name) > _MAX_NAME_LEN or any(ord(c) < 32 for c in name) or "/" in name:
        raise ProfileError(
            f"invalid profile name {name!r}: at most {_MAX_NAME_LEN} characters, no '/' "
            "or control characters"
        )
    return name


def _stem(name: str) -> str:
    """File stem for a profile name: readable slug + hash (distinct names never collide)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "profile"
    return f"{slug[:40]}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"


class ProfileStore:
    """Profiles as ``<root>/<slug>-<hash>.json`` (mode 0600; root 0700).

    Kept recordings (opt-in) are ``<same stem>.wav`` beside the JSON. ``list()`` skips
    corrupt files and records them in ``problems``; ``get`` raises ProfileError naming the file.
    """

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root).expanduser() if root is not None else default_profile_dir()
        self.problems: list[ProfileError] = []

    def path_for(self, name: str) -> Path:
        """The JSON path of profile ``name`` (whether or not it exists)."""
        return self.root / f"{_stem(_check_name(name))}.json"

    def audio_path_for(self, name: str) -> Path:
        """Where the kept enrollment recording of ``name`` lives (16 kHz WAV)."""
        return self.path_for(name).with_suffix(".wav")

    def exists(self, name: str) -> bool:
        return self.path_for(name).is_file()

    def _load(self, path: Path) -> Profile:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Profile.from_dict(data)
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, ProfileError) as exc:
            raise ProfileError(f"{path}: corrupt voice profile ({exc})") from exc

    def list(self) -> list[Profile]:
        """All readable profiles, sorted by name; unreadable files go to ``self.problems``."""
        self.problems = []
        if not self.root.is_dir():
            return []
        out = []
        for path in sorted(self.root.glob("*.json")):
            try:
                out.append(self._load(path))
            except ProfileError as exc:
                self.problems.append(exc)
        return sorted(out, key=lambda p: p.name.lower())

    def get(self, name: str) -> Profile:
        """The profile called ``name``; ProfileError if it does not exist or is corrupt."""
        path = self.path_for(name)
        try:
            return self._load(path)
        except FileNotFoundError:
            known = ", ".join(p.name for p in self.list()) or "none"
            raise ProfileError(
                f"no voice profile named {name!r} in {self.root} (known: {known})"
            ) from None

    def save(
        self, profile: Profile, *, audio: np.ndarray | None = None, sample_rate: int = 16000
    ) -> Path:
        """Write ``profile`` atomically (tmp file + os.replace, mode 0600); returns its path.

        audio: float32 (N,) enrollment speech to keep beside it as a WAV (only when the user
        opted in); sets ``profile.recording``.
        """
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.path_for(profile.name)
        if audio is not None:
            import soundfile as sf

            wav = path.with_suffix(".wav")
            tmp = wav.with_name(wav.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                sf.write(fh, np.asarray(audio, dtype=np.float32), sample_rate, format="WAV")
            os.replace(tmp, wav)
            profile.recording = wav.name
        profile.updated = _now()
        _write_private(path, json.dumps(profile.to_dict(), indent=1) + "\n")
        return path

    def delete(self, name: str) -> None:
        """Remove the profile (and its kept recording); ProfileError if it does not exist."""
        path = self.path_for(name)
        if not path.is_file():
            self.get(name)  # raises with the list of known names
        path.unlink()
        path.with_suffix(".wav").unlink(missing_ok=True)

    def rename(self, old: str, new: str) -> Profile:
        """Rename a profile (its recording follows); ProfileError if ``new`` already exists."""
        profile = self.get(old)
        new = _check_name(new)
        if new == profile.name:
            return profile
        if self.exists(new):
            raise ProfileError(f"a voice profile named {new!r} already exists")
        old_wav = self.audio_path_for(old)
        profile.name = new
        if old_wav.is_file():
            new_wav = self.audio_path_for(new)
            os.replace(old_wav, new_wav)
            profile.recording = new_wav.name
        self.save(profile)
        self.path_for(old).unlink()
        return profile

    def set_authorized(self, name: str, flag: bool) -> Profile:
        """Mark a profile as authorized (may pass authentication) or not; returns it."""
        profile = self.get(name)
        profile.authorized = bool(flag)
        self.save(profile)
        return profile

    @staticmethod
    def is_compatible(profile: Profile, encoder: Any) -> bool:
        """True when ``profile`` was made with ``encoder``'s model (same weights fingerprint
        and embedding size); otherwise it needs re-enrollment and is never compared."""
        return bool(profile.model_fingerprint) and (
            profile.model_fingerprint == encoder.fingerprint
            and profile.embedding.shape[0] == int(encoder.model_config.embed_dim)
        )


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
