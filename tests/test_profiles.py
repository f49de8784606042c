"""ProfileStore: atomic 0600 JSON files, corrupt files, rename/delete/authorize, compatibility."""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest

from voxgate.core.errors import ProfileError
from voxgate.core.profiles import Profile, ProfileStore, default_profile_dir


def unit(d: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(d).astype(np.float32)
    return v / np.linalg.norm(v)


def make(name: str = "Ann Lee", seed: int = 0, fp: str = "abc123") -> Profile:
    return Profile(
        name=name, embedding=unit(seed=seed), model_fingerprint=fp, n_windows=7, speech_s=3.5
    )


def test_default_profile_dir_uses_voxgate_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VOXGATE_HOME", str(tmp_path))
    assert default_profile_dir() == tmp_path / "profiles"
    monkeypatch.delenv("VOXGATE_HOME")
    assert default_profile_dir().name == "profiles"
    assert "voxgate" in str(default_profile_dir())


def test_save_get_roundtrip_private_file(tmp_path) -> None:
    store = ProfileStore(tmp_path / "p")
    p = make("Ann Lee")  # a name with a space
    p.quality = {"mean_cos": 0.9}
    path = store.save(p)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    # no temp files left: only the profile and the store's lock file
    assert sorted(f.name for f in store.root.iterdir()) == [".lock", path.name]
    q = store.get("Ann Lee")
    assert q.name == "Ann Lee" and q.authorized and q.n_windows == 7 and q.speech_s == 3.5
    np.testing.assert_array_equal(q.embedding, p.embedding)
    assert q.embedding.dtype == np.float32 and q.quality == {"mean_cos": 0.9}
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and len(data["embedding"]) == 8


def test_list_skips_and_reports_corrupt_files(tmp_path) -> None:
    store = ProfileStore(tmp_path)
    store.save(make("b", 1))
    store.save(make("a", 2))
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "wrong.json").write_text(json.dumps({"schema_version": 1, "name": "x"}))
    assert [p.name for p in store.list()] == ["a", "b"]
    assert len(store.problems) == 2
    assert any("broken.json" in str(e) for e in store.problems)
    bad = store.path_for("c")
    bad.write_text('{"schema_version": 1, "name": "c", "embedding": [1.0, NaN]}')
    with pytest.raises(ProfileError, match=bad.name):
        store.get("c")


def test_get_missing_names_known_profiles(tmp_path) -> None:
    store = ProfileStore(tmp_path)
    store.save(make("ann"))
    with pytest.raises(ProfileError, match="known: ann"):
        store.get("zed")


def test_rename_delete_authorize(tmp_path) -> None:
    store = ProfileStore(tmp_path)
    store.save(make("ann", 1))
    store.save(make("bob", 2), audio=np.zeros(1600, np.float32))
    assert store.audio_path_for("bob").is_file()
    assert stat.S_IMODE(store.audio_path_for("bob").stat().st_mode) == 0o600
    with pytest.raises(ProfileError, match="already exists"):
        store.rename("bob", "ann")
    store.rename("bob", "carl")
    assert not store.exists("bob") and store.exists("carl")
    assert store.get("carl").recording == store.audio_path_for("carl").name
    assert store.audio_path_for("carl").is_file()
    assert store.set_authorized("carl", False).authorized is False
    assert store.get("carl").authorized is False
    store.delete("carl")
    assert [p.name for p in store.list()] == ["ann"]
    assert not store.audio_path_for("carl").exists()
    with pytest.raises(ProfileError):
        store.delete("carl")


def test_invalid_names_and_embeddings() -> None:
    for name in ("", "   ", "a/b", "x" * 65, "tab\there"):
        with pytest.raises(ProfileError):
            Profile(name=name, embedding=unit())
    with pytest.raises(ProfileError):
        Profile(name="ok", embedding=np.zeros((2, 2), np.float32))


def test_similar_names_get_distinct_files(tmp_path) -> None:
    store = ProfileStore(tmp_path)
    assert store.path_for("Ann Lee") != store.path_for("Ann_Lee")


def test_is_compatible_checks_fingerprint_and_size() -> None:
    from voxgate.core.inference import SpeakerEncoder

    enc = SpeakerEncoder.untrained()
    other = SpeakerEncoder.untrained(seed=1)
    d = enc.model_config.embed_dim
    good = Profile(name="a", embedding=unit(d), model_fingerprint=enc.fingerprint)
    assert ProfileStore.is_compatible(good, enc)
    assert not ProfileStore.is_compatible(good, other)
    unknown = Profile(name="a", embedding=unit(d), model_fingerprint="")
    assert not ProfileStore.is_compatible(unknown, enc)
    short = Profile(name="a", embedding=unit(8), model_fingerprint=enc.fingerprint)
    assert not ProfileStore.is_compatible(short, enc)
