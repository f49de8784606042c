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


# -- the store as an attacker and concurrent commands see it ------------------------------


def _write_fields(store: ProfileStore, name: str, **fields) -> None:
    path = store.path_for(name)
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data))


def test_fields_are_validated_by_type_and_the_file_is_named(tmp_path) -> None:
    store = ProfileStore(tmp_path)
    for name, fields in [
        ("a", {"authorized": "false"}),  # a string is not a boolean: never "authorized"
        ("b", {"n_windows": "abc"}),
        ("c", {"embedding": [0.0] * 8}),  # would block every comparison
        ("d", {"speech_s": -1.0}),
    ]:
        store.save(make(name))
        _write_fields(store, name, **fields)
    store.save(make("ok", 5))
    assert [p.name for p in store.list()] == ["ok"]  # listing never crashes
    assert len(store.problems) == 4
    assert all(store.root.name in str(e) and ".json" in str(e) for e in store.problems)
    with pytest.raises(ProfileError, match="authorized"):
        store.get("a")


def test_world_writable_store_and_profiles_are_refused(tmp_path) -> None:
    store = ProfileStore(tmp_path / "p")
    store.save(make("ann"))
    store.root.chmod(0o777)
    with pytest.raises(ProfileError, match="chmod 700"):
        store.list()
    store.root.chmod(0o700)
    store.path_for("ann").chmod(0o666)
    assert store.list() == [] and "chmod 600" in str(store.problems[0])


def test_unreadable_store_is_an_error_not_empty(tmp_path, monkeypatch) -> None:
    import os

    store = ProfileStore(tmp_path)
    store.save(make("ann"))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "listdir", denied)
    monkeypatch.setattr(os, "scandir", denied)
    with pytest.raises(ProfileError, match="cannot read the profile store"):
        store.list()


def test_a_profile_file_must_hold_its_own_name(tmp_path) -> None:
    store = ProfileStore(tmp_path)
    store.save(make("ann"))
    store.path_for("ann").rename(store.path_for("mallory"))  # planted under another name
    with pytest.raises(ProfileError, match="another file name"):
        store.get("mallory")


def test_enroll_without_replace_fails_if_the_name_appears_meanwhile(tmp_path) -> None:
    store = ProfileStore(tmp_path)
    store.save(make("carol", 1), replace=False)
    with pytest.raises(ProfileError, match="exists"):
        store.save(make("carol", 2), replace=False)
    np.testing.assert_array_equal(store.get("carol").embedding, unit(seed=1))


def _racer(root: str, action: str, barrier, out, slot: int) -> None:
    store = ProfileStore(root)
    barrier.wait()
    try:
        if action == "enroll":
            store.save(make("carol", 2), replace=False)
        elif action == "rename":
            store.rename("ann", "anne")
        else:
            store.set_authorized("ann", False)
        out.put((slot, "ok"))
    except ProfileError as exc:
        out.put((slot, str(exc)))


def _race(root, actions: list[str]) -> list[str]:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(len(actions)), ctx.Queue()
    procs = [
        ctx.Process(target=_racer, args=(str(root), a, barrier, out, i))
        for i, a in enumerate(actions)
    ]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    return [results[i] for i in range(len(actions))]


def test_concurrent_commands_never_lose_an_update(tmp_path) -> None:
    for round_ in range(6):
        root = tmp_path / f"r{round_}"
        store = ProfileStore(root)
        store.save(make("ann", 1))
        results = _race(root, ["enroll", "enroll", "rename" if round_ % 2 else "authorize"])
        assert results[:2].count("ok") == 1  # exactly one of two concurrent enrolls wins
        names = [p.name for p in store.list()]
        assert names.count("carol") == 1 and len(names) == 2  # no duplicated voice
    # rename racing authorize --off, in either order: one profile, the revocation survives.
    for round_ in range(10):
        root = tmp_path / f"a{round_}"
        ProfileStore(root).save(make("ann", 1))
        results = _race(root, ["rename", "off"])
        profiles = ProfileStore(root).list()
        assert len(profiles) == 1, results
        assert results[1] != "ok" or profiles[0].authorized is False, results


def test_temp_files_of_a_killed_write_are_cleaned_on_the_next_write(tmp_path) -> None:
    import os

    store = ProfileStore(tmp_path)
    store.save(make("ann"))
    stale = tmp_path / ".x.json.abc.vxtmp"
    stale.write_text("half a profile")
    os.utime(stale, (0, 0))
    store.save(make("bob"))
    assert not stale.exists()
