"""Enrolled voice profiles: one JSON file each (0600), written atomically, tied to one model."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ProfileError
from .fileio import atomic_write, remove_stale_temps

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
        """Inverse of :meth:`to_dict`; ProfileError on missing/unknown keys or on any field
        of the wrong type or out of range (a string "false" is not a boolean)."""
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
        for key, check in _FIELD_CHECKS.items():
            if key in data and not check(data[key]):
                raise ProfileError(f"field {key!r} has an invalid value {data[key]!r:.60}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ProfileError(str(exc)) from exc


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_embedding(x: Any) -> bool:
    if not isinstance(x, list) or not 0 < len(x) <= 4096 or not all(map(_is_number, x)):
        return False
    return float(np.linalg.norm(np.asarray(x, dtype=np.float64))) > 1e-6


_FIELD_CHECKS: dict[str, Any] = {
    "embedding": _is_embedding,
    "authorized": lambda x: isinstance(x, bool),
    "created": lambda x: isinstance(x, str),
    "updated": lambda x: isinstance(x, str),
    "model_fingerprint": lambda x: isinstance(x, str),
    "n_windows": lambda x: isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 10**7,
    "speech_s": lambda x: _is_number(x) and 0 <= x <= 10**6,
    "quality": lambda x: (
        isinstance(x, dict) and all(isinstance(k, str) and _is_number(v) for k, v in x.items())
    ),
    "recording": lambda x: x is None or (isinstance(x, str) and "/" not in x and x != ".."),
}


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

    Kept recordings (opt-in) are ``<same stem>.wav`` beside the JSON. Every read-modify-write
    (save, rename, authorize, delete, the lockout state) runs under :meth:`lock`, an
    ``fcntl.flock`` on ``<root>/.lock``. A store or profile that other users may write is
    refused (anyone could plant an authorized voice), and an unreadable store is an error.
    ``list()`` skips corrupt files and records them in ``problems``.
    """

    LOCK_NAME = ".lock"
    # The store's attempt counters (core/lockout.py): a JSON file beside the profiles that
    # is not one (profile files are always <slug>-<hash>.json).
    LOCKOUT_NAME = "lockout.json"

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root).expanduser() if root is not None else default_profile_dir()
        self.problems: list[ProfileError] = []

    # -- safety ---------------------------------------------------------------------------

    def check(self) -> bool:
        """True when the store exists and is safe to use, False when it does not exist yet;
        ProfileError when it is not a folder, unreadable, or writable by other users."""
        try:
            st = self.root.stat()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ProfileError(
                f"cannot read the profile store {self.root}: {exc.strerror}"
            ) from exc
        if not stat.S_ISDIR(st.st_mode):
            raise ProfileError(f"the profile store {self.root} is not a folder")
        if st.st_mode & stat.S_IWOTH:
            raise ProfileError(
                f"the profile store {self.root} is writable by every user, so anyone could "
                f"plant a voice; fix it with: chmod 700 '{self.root}'"
            )
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise ProfileError(f"cannot read the profile store {self.root}: permission denied")
        return True

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock of the store (blocks until free); creates the store if needed."""
        import fcntl

        if not self.check():
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.root / self.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # -- reading --------------------------------------------------------------------------

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
            with open(path, encoding="utf-8") as fh:
                if os.fstat(fh.fileno()).st_mode & stat.S_IWOTH:
                    raise ProfileError(
                        f"writable by every user, refused; fix it with: chmod 600 '{path}'"
                    )
                data = json.loads(fh.read(1_000_000))
            profile = Profile.from_dict(data)
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, ProfileError) as exc:
            raise ProfileError(f"{path}: unusable voice profile ({exc})") from exc
        if path.name != f"{_stem(profile.name)}.json":
            raise ProfileError(f"{path}: holds profile {profile.name!r} under another file name")
        return profile

    def list(self) -> list[Profile]:
        """All readable profiles, sorted by name; unusable files go to ``self.problems``.

        ProfileError when the store itself is unsafe or unreadable."""
        self.problems = []
        if not self.check():
            return []
        try:
            names = os.listdir(self.root)  # raises where glob would silently find nothing
        except OSError as exc:
            raise ProfileError(
                f"cannot read the profile store {self.root}: {exc.strerror}"
            ) from exc
        out = []
        files = [n for n in names if n.endswith(".json") and n != self.LOCKOUT_NAME]
        for path in sorted(self.root / n for n in files):
            try:
                out.append(self._load(path))
            except ProfileError as exc:
                self.problems.append(exc)
        return sorted(out, key=lambda p: p.name.lower())

    def get(self, name: str) -> Profile:
        """The profile called ``name``; ProfileError if it does not exist or is unusable."""
        self.check()
        path = self.path_for(name)
        try:
            return self._load(path)
        except FileNotFoundError:
            known = ", ".join(p.name for p in self.list()) or "none"
            raise ProfileError(
                f"no voice profile named {name!r} in {self.root} (known: {known})"
            ) from None

    # -- writing (each under the store lock) ----------------------------------------------

    def save(
        self,
        profile: Profile,
        *,
        audio: np.ndarray | None = None,
        sample_rate: int = 16000,
        replace: bool = True,
    ) -> Path:
        """Write ``profile`` atomically (mode 0600) under the store lock; returns its path.

        replace=False: ProfileError if a profile of that name exists at write time.
        audio: float32 (N,) enrollment speech to keep beside it as a WAV (only when the user
        opted in); sets ``profile.recording``.
        """
        with self.lock():
            path = self.path_for(profile.name)
            if not replace and path.exists():
                raise ProfileError(
                    f"a profile named {profile.name!r} exists; use --force to replace it"
                )
            self._write(profile, audio=audio, sample_rate=sample_rate)
            return path

    def _write(
        self, profile: Profile, *, audio: np.ndarray | None = None, sample_rate: int = 16000
    ) -> Path:
        """Write under a lock the caller holds."""
        remove_stale_temps(self.root)
        path = self.path_for(profile.name)
        if audio is not None:
            import soundfile as sf

            samples = np.asarray(audio, dtype=np.float32)
            atomic_write(
                path.with_suffix(".wav"),
                lambda fh: sf.write(fh, samples, sample_rate, format="WAV"),
                mode=0o600,
            )
            profile.recording = path.with_suffix(".wav").name
        profile.updated = _now()
        return atomic_write(path, json.dumps(profile.to_dict(), indent=1) + "\n", mode=0o600)

    def delete(self, name: str) -> None:
        """Remove the profile (and its kept recording); ProfileError if it does not exist."""
        with self.lock():
            self.get(name)  # raises with the list of known names
            path = self.path_for(name)
            path.unlink()
            path.with_suffix(".wav").unlink(missing_ok=True)

    def rename(self, old: str, new: str) -> Profile:
        """Rename a profile (its recording follows); ProfileError if ``new`` already exists."""
        with self.lock():
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
            self._write(profile)
            self.path_for(old).unlink()
            return profile

    def set_authorized(self, name: str, flag: bool) -> Profile:
        """Mark a profile as authorized (may pass authentication) or not; returns it."""
        with self.lock():
            profile = self.get(name)
            profile.authorized = bool(flag)
            self._write(profile)
            return profile

    @staticmethod
    def is_compatible(profile: Profile, encoder: Any) -> bool:
        """True when ``profile`` was made with ``encoder``'s model (same fingerprint and
        embedding size); otherwise it needs re-enrollment and is never compared."""
        return bool(profile.model_fingerprint) and (
            profile.model_fingerprint == encoder.fingerprint
            and profile.embedding.shape[0] == int(encoder.model_config.embed_dim)
        )
