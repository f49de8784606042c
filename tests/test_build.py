"""Dataset build: sources, ids, the per-recording split (no leaks), augmentation rows, crash safety."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import VOWELS, voiced, write_wav
from voxgate.core.errors import ConfigError, DatasetError
from voxgate.training.build import (
    BuildConfig,
    SourceFile,
    assign_splits,
    build_dataset,
    collect_sources,
    resolve_speaker_ids,
)
from voxgate.training.build_plan import _split_sessions as split_sessions

F0 = {"ann": 210.0, "ben": 105.0, "cid": 140.0, "dot": 250.0}


def make_corpus(root: Path, files: dict[str, int], seconds: float = 2.3, sessions: int = 1) -> Path:
    """root/<speaker>/[s<k>/]f<j>.wav of formant-like voiced audio, distinct f0 per speaker."""
    vowels = list(VOWELS.values())
    for spk, n in files.items():
        for j in range(n):
            d = root / spk / f"s{j % sessions}" if sessions > 1 else root / spk
            d.mkdir(parents=True, exist_ok=True)
            write_wav(d, f"f{j}.wav", voiced(F0[spk], vowels[j % 5], seconds=seconds, seed=j))
    return root


def read_all(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        out = {k: f[k][:] for k in f if k != "sources"}
        out["sources"] = f["sources"][:]
        out["attrs"] = dict(f.attrs)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"), {"ann": 5, "ben": 4, "cid": 2, "dot": 1})


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("out") / "data.h5"
    summary = build_dataset([corpus], out, ["ann"], BuildConfig(seed=7), workers=1)
    return out, summary


# --------------------------------------------------------------------------- sources and ids


def test_folder_sources_sessions_and_prefixes(tmp_path):
    a = make_corpus(tmp_path / "setA", {"ann": 3}, seconds=0.5, sessions=2)
    b = make_corpus(tmp_path / "setB", {"ann": 1}, seconds=0.5)
    one = collect_sources([a])
    assert [s.speaker for s in one] == ["ann"] * 3
    assert sorted(s.session for s in one) == ["s0", "s0", "s1"]
    two = collect_sources([a, b])  # two SRCs: ids carry the folder name, so "ann" never merges
    assert sorted({s.speaker for s in two}) == ["setA-ann", "setB-ann"]
    assert {s.session for s in two if s.speaker == "setB-ann"} == {""}


def test_manifest_sources(tmp_path):
    make_corpus(tmp_path / "audio", {"ann": 2, "ben": 1}, seconds=0.5)
    csv = tmp_path / "m.csv"
    csv.write_text(
        "corpus,subset,speaker,session,path,duration_s,gender,extra\n"
        "c1,tr,ann,x,audio/ann/f0.wav,0.5,F,zz\n"
        "c1,te,ann,y,audio/ann/f1.wav,0.5,F,zz\n"
        "c2,tr,ann,,audio/ben/f0.wav,,M,zz\n"
    )
    rows = collect_sources([csv])
    assert sorted({r.speaker for r in rows}) == ["c1-ann", "c2-ann"]  # two corpora: prefixed
    assert all(r.path.is_file() for r in rows)  # paths relative to the CSV
    assert {r.gender for r in rows} == {"F", "M"}
    assert [r.subset for r in collect_sources([csv], subsets=["te"])] == ["te"]
    bad = tmp_path / "bad.csv"
    bad.write_text("speaker,file\nann,a.wav\n")
    with pytest.raises(DatasetError, match="path"):
        collect_sources([bad])
    with pytest.raises(DatasetError):
        collect_sources([tmp_path / "missing"])


def test_resolve_speaker_ids():
    speakers = ["libri-1089", "libri-121", "ocean-121", "ocean-0001"]
    assert resolve_speaker_ids(["1089", "ocean-121"], speakers) == (["libri-1089", "ocean-121"], [])
    assert resolve_speaker_ids(["0001", "zz"], speakers) == (["ocean-0001"], ["zz"])
    with pytest.raises(DatasetError, match="ambiguous"):
        resolve_speaker_ids(["121"], speakers)


# --------------------------------------------------------------------------- split


def _table(spec: dict[str, list[tuple[str, float]]]) -> list[SourceFile]:
    return [
        SourceFile(Path(f"/x/{spk}/{k}.wav"), spk, sess, duration_s=d)
        for spk, files in spec.items()
        for k, (sess, d) in enumerate(files)
    ]


def test_split_by_file_counts_and_determinism():
    table = _table(
        {"a": [("", 1.0)], "b": [("", 1.0)] * 2, "c": [("", 1.0)] * 3, "d": [("", 1.0)] * 20}
    )
    s = assign_splits(table, seed=0)
    by = {spk: sorted(k for t, k in zip(table, s) if t.speaker == spk) for spk in "abcd"}
    assert by["a"] == [0]
    assert by["b"] == [0, 2]
    assert by["c"] == [0, 1, 2]
    assert by["d"].count(1) == 2 and by["d"].count(2) == 2 and by["d"].count(0) == 16
    assert assign_splits(table, seed=0) == s
    assert any(assign_splits(table, seed=k) != s for k in range(1, 6))


def test_split_by_whole_sessions_closest_to_80_10_10():
    best = split_sessions([80.0, 10.0, 10.0], np.random.default_rng(0))
    assert best[0] == 0 and sorted(best[1:]) == [1, 2]
    got = split_sessions([10.0, 50.0, 30.0, 10.0], np.random.default_rng(1))
    assert got[1] == 0 and got[2] == 0 and sorted([got[0], got[3]]) == [1, 2]
    many = split_sessions([5.0] * 12, np.random.default_rng(2))  # greedy path
    assert set(many) == {0, 1, 2} and many.count(0) >= 8
    table = _table({"s": [("A", 5.0)] * 4 + [("B", 1.0)] * 2 + [("C", 1.0)] * 2 + [("", 0.5)]})
    splits = assign_splits(table, seed=3)
    for sess in "ABC":  # a session never spans two splits
        assert len({k for t, k in zip(table, splits) if t.session == sess}) == 1
    assert {k for t, k in zip(table, splits) if t.session == "A"} == {0}
    assert set(splits) == {0, 1, 2}


# --------------------------------------------------------------------------- build


def test_build_has_no_leaks_and_consistent_rows(built, corpus):
    out, summary = built
    d = read_all(out)
    n = len(d["features"])
    assert n == summary.n_chunks and all(
        len(d[c]) == n
        for c in ("label", "speaker", "file_id", "split", "aug", "chunk_index", "lengths")
    )
    # No recording in two splits; its chunks agree with the sources table.
    for fid in np.unique(d["file_id"]):
        assert len(np.unique(d["split"][d["file_id"] == fid])) == 1
        assert d["sources"]["split"][fid] == d["split"][d["file_id"] == fid][0]
    assert np.all(d["aug"][d["split"] != 0] == 0)
    assert np.any(d["aug"][d["split"] == 0] != 0)
    speakers = json.loads(d["attrs"]["speakers"])
    assert speakers == ["ann", "ben", "cid", "dot"]
    for spk_name, n_files in (("ann", 5), ("ben", 4)):  # >= 3 recordings: present in every split
        rows = d["speaker"] == speakers.index(spk_name)
        assert set(np.unique(d["split"][rows])) == {0, 1, 2}
        assert len(np.unique(d["file_id"][rows])) == n_files
    cid = d["speaker"] == speakers.index("cid")
    assert set(np.unique(d["split"][cid])) == {0, 2}
    assert set(np.unique(d["split"][d["speaker"] == speakers.index("dot")])) == {0}
    np.testing.assert_array_equal(d["label"], (d["speaker"] == 0).astype(np.int8))
    # Originals of a recording: chunk_index 0..K-1, consecutive rows; 2.3 s -> 2 full + 0.3 s dropped.
    for fid in np.unique(d["file_id"]):
        orig = np.flatnonzero((d["file_id"] == fid) & (d["aug"] == 0))
        assert np.array_equal(d["chunk_index"][orig], np.arange(len(orig)))
        assert np.all(np.diff(orig) == 1)
        assert d["sources"]["chunks"][fid] == len(orig)
    assert d["features"].dtype == np.float16 and d["features"].shape[1:] == (32, 64)
    assert d["features"].max() <= 0.0 and d["features"].min() >= -80.5
    assert bool(d["attrs"]["complete"]) and d["attrs"]["schema_version"] == 1
    assert len(d["attrs"]["fingerprint"]) == 64


def test_augmented_copy_counts_and_oversampling(built):
    out, summary = built
    d = read_all(out)
    train = d["split"] == 0
    orig = train & (d["aug"] == 0)
    # Outsiders: exactly aug_per_chunk=2 distinct augmented copies per train chunk.
    for fid in np.unique(d["file_id"][train & (d["label"] == 0)]):
        rows = d["file_id"] == fid
        for ci in d["chunk_index"][rows & (d["aug"] == 0)]:
            tags = d["aug"][rows & (d["chunk_index"] == ci) & (d["aug"] != 0)]
            assert len(tags) == 2 and len(set(tags)) == 2
    # Authorized: oversampled toward balance, by at most oversample_max.
    f = summary.oversample_factor
    assert 1.0 < f <= 4.0
    auth_rows = np.sum(train & (d["label"] == 1)) / np.sum(orig & (d["label"] == 1))
    assert auth_rows == pytest.approx(3 * f, rel=0.25)
    assert summary.counts["train"]["augmented"] == int(np.sum(train & (d["aug"] != 0)))


def test_partial_last_chunk_is_padded_and_its_length_recorded(tmp_path):
    src = make_corpus(tmp_path / "c", {"ann": 1, "ben": 1}, seconds=2.9)
    out = tmp_path / "p.h5"
    build_dataset([src], out, ["ann"], BuildConfig(augment=()), workers=1)
    d = read_all(out)
    assert set(d["chunk_index"]) == {0, 1, 2}  # 2.9 s speech -> 2 full + a padded third chunk
    last = d["chunk_index"] == 2
    assert np.all(d["lengths"][last] < 32) and np.all(d["lengths"][last] >= 16)
    assert np.all(d["lengths"][~last] == 32)


@pytest.mark.slow
def test_build_is_deterministic_and_parallel_equals_serial(tmp_path, corpus, built):
    cfg = BuildConfig(seed=3, aug_per_chunk="all")
    a = read_all(build_dataset([corpus], tmp_path / "a.h5", ["ben"], cfg, workers=1).out)
    b = read_all(build_dataset([corpus], tmp_path / "b.h5", ["ben"], cfg, workers=2).out)
    for key in (
        "features",
        "label",
        "speaker",
        "file_id",
        "split",
        "aug",
        "chunk_index",
        "lengths",
    ):
        np.testing.assert_array_equal(a[key], b[key])
    assert a["attrs"]["fingerprint"] == b["attrs"]["fingerprint"]
    assert built[1].fingerprint != a["attrs"]["fingerprint"]  # other seed and authorized list


def test_bad_files_are_skipped_and_listed(tmp_path):
    src = make_corpus(tmp_path / "c", {"ann": 2, "ben": 2}, seconds=1.5)
    (src / "ben" / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    write_wav(src / "ben", "quiet.wav", np.zeros(16000, np.float32))
    out = tmp_path / "s.h5"
    summary = build_dataset([src], out, ["ann"], BuildConfig(augment=()), workers=1)
    skipped = dict(summary.skipped)
    assert set(skipped) == {str(src / "ben" / "broken.wav"), str(src / "ben" / "quiet.wav")}
    assert "Error" in skipped[str(src / "ben" / "broken.wav")]
    with h5py.File(out, "r") as f:
        assert dict(json.loads(f.attrs["skipped"])) == skipped
        assert len(f["sources"]) == 4


def test_authorized_errors_leave_no_file(tmp_path, corpus):
    out = tmp_path / "x.h5"
    with pytest.raises(DatasetError, match="zed"):
        build_dataset([corpus], out, ["ann", "zed"], workers=1)
    with pytest.raises(DatasetError, match="excluded"):
        build_dataset([corpus], out, ["ann"], BuildConfig(exclude_speakers=("ann",)), workers=1)
    with pytest.raises(ConfigError):
        build_dataset([corpus], out, ["ann"], workers=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_interrupted_build_leaves_neither_output_nor_tmp(tmp_path, corpus, exc):
    out = tmp_path / "data.h5"
    seen = []

    def hook(done: int, total: int) -> None:
        seen.append(done)
        if done == 3:
            assert [p.name.startswith(".data.h5.") for p in tmp_path.iterdir()] == [True]
            raise exc("stop")

    with pytest.raises(exc):
        build_dataset([corpus], out, ["ann"], BuildConfig(augment=()), workers=1, on_file=hook)
    assert seen == [1, 2, 3]
    assert list(tmp_path.iterdir()) == []


def test_limits_and_exclusions(tmp_path, corpus):
    cfg = BuildConfig(augment=(), max_files_per_speaker=2, exclude_speakers=("dot", "nobody"))
    s = build_dataset([corpus], tmp_path / "l.h5", ["ann"], cfg, workers=1)
    assert s.speakers == ["ann", "ben", "cid"] and s.n_sources == 6
    assert s.unmatched_excludes == ["nobody"]
    s2 = build_dataset(
        [corpus],
        tmp_path / "m.h5",
        ["ann"],
        BuildConfig(augment=(), max_seconds_per_speaker=4.0),
        workers=1,
    )
    assert s2.n_sources == 2 + 2 + 2 + 1  # files of 2.3 s: two reach 4 s


def test_channel_augmentations_add_telephone_and_room_copies(tmp_path, corpus):
    """augment=telephone,reverb: one copy of each per train chunk, features that differ from
    the original (the phone line removes the top band), and the tags stored by name."""
    cfg = BuildConfig(augment=("telephone", "reverb"), aug_per_chunk="all", oversample=False)
    d = read_all(build_dataset([corpus], tmp_path / "c.h5", ["ann"], cfg, workers=1).out)
    tags = json.loads(d["attrs"]["aug_tags"])
    tel, rev = tags.index("telephone"), tags.index("reverb")
    train = d["split"] == 0
    n_orig = int(np.sum(train & (d["aug"] == 0)))
    assert np.sum(train & (d["aug"] == tel)) == n_orig == np.sum(train & (d["aug"] == rev))
    assert not np.any(~train & (d["aug"] != 0))  # val/test stay clean
    first = np.flatnonzero(train & (d["aug"] == 0))[0]
    fid, ci = d["file_id"][first], d["chunk_index"][first]
    same = (d["file_id"] == fid) & (d["chunk_index"] == ci)
    orig = d["features"][same & (d["aug"] == 0)][0].astype(np.float32)
    phone = d["features"][same & (d["aug"] == tel)][0].astype(np.float32)
    top = slice(56, 64)  # mel bands above ~4.5 kHz: gone on the phone line
    assert phone[:, top].mean() < orig[:, top].mean() - 20.0
    room = d["features"][same & (d["aug"] == rev)][0].astype(np.float32)
    assert not np.allclose(room, orig, atol=1.0)
