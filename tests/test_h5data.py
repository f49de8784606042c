"""HDF5 reader: metadata and validation, split/speaker selection, cache, lazy handles, collate."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from conftest import write_voice_folders
from voxgate.core.errors import DatasetError
from voxgate.training.build import BuildConfig, build_dataset
from voxgate.training.h5data import H5ChunkDataset, _read_rows, pad_collate, read_meta
from voxgate.training.h5summary import format_summary, summary_dict


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    voices = (("ann", 220.0, 3), ("ben", 110.0, 3), ("cid", 160.0, 1))
    root = write_voice_folders(tmp_path_factory.mktemp("c"), voices, seconds=2.2)
    out = tmp_path_factory.mktemp("o") / "d.h5"
    build_dataset([root], out, ["ann"], BuildConfig(seed=1), workers=1)
    return out


def test_read_meta(data):
    m = read_meta(data)
    assert m.speakers == ["ann", "ben", "cid"] and m.authorized == ["ann"]
    assert m.aug_tags[0] == "none" and m.feature_config.n_mels == 64
    assert len(m.sources) == 7 and m.sources[0]["file_id"] == 0
    assert {s["split"] for s in m.sources if s["speaker"] == "ann"} == {0, 1, 2}
    assert sum(c["total"] for c in m.counts.values()) == m.n_chunks
    assert m.counts["val"]["augmented"] == 0 and m.counts["train"]["augmented"] > 0
    assert len(m.fingerprint) == 64 and m.build_config["seed"] == 1
    text = format_summary(m)
    assert "train" in text and "authorized" in text and "ann" in text
    js = summary_dict(m)
    assert js["counts"] == m.counts and set(js["files"]) == {"train", "val", "test"}
    assert sum(len(v) for v in js["files"].values()) == 7


def _copy(data: Path, tmp_path: Path) -> Path:
    p = tmp_path / "copy.h5"
    shutil.copy(data, p)
    return p


def test_incomplete_and_inconsistent_files_are_rejected(data, tmp_path):
    p = _copy(data, tmp_path)
    with h5py.File(p, "a") as f:
        f.attrs["complete"] = False
    with pytest.raises(DatasetError, match="incomplete"):
        read_meta(p)
    p = _copy(data, tmp_path)
    with h5py.File(p, "a") as f:
        f["file_id"][0] = 99
    with pytest.raises(DatasetError, match="file_id"):
        read_meta(p)
    p = _copy(data, tmp_path)
    with h5py.File(p, "a") as f:
        val = np.flatnonzero(f["split"][:] == 1)[0]
        f["aug"][val] = 1
    with pytest.raises(DatasetError, match="augmented"):
        read_meta(p)
    p = _copy(data, tmp_path)
    with h5py.File(p, "a") as f:
        f["label"].resize(3, axis=0)
    with pytest.raises(DatasetError, match="label"):
        read_meta(p)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(DatasetError):
        read_meta(tmp_path / "junk.h5")
    with pytest.raises(DatasetError, match="not found"):
        read_meta(tmp_path / "none.h5")


def test_selection_by_split_aug_and_speaker(data):
    m = read_meta(data)
    train = H5ChunkDataset(data, "train")
    assert len(train) == m.counts["train"]["total"]
    plain = H5ChunkDataset(data, "train", augmented=False)
    assert len(plain) == m.counts["train"]["original"] and np.all(plain.aug == 0)
    everything = H5ChunkDataset(data, None)
    assert len(everything) == m.n_chunks
    ben = H5ChunkDataset(data, "test", speakers=["ben"])
    assert len(ben) > 0 and np.all(ben.speakers == 1) and np.all(ben.labels == 0)
    assert len(H5ChunkDataset(data, "test", speakers=[1])) == len(ben)
    with pytest.raises(DatasetError):
        H5ChunkDataset(data, "dev")
    with pytest.raises(DatasetError):
        H5ChunkDataset(data, "train", speakers=["zed"])


def test_items_cache_and_lazy_handle(data):
    ds = H5ChunkDataset(data, "train")
    assert ds._h5 is None  # nothing opened at init
    item = ds[3]
    assert ds._h5 is not None
    assert item["features"].dtype == torch.float32 and item["features"].shape == (32, 64)
    with h5py.File(data, "r") as f:
        row = ds.rows[3]
        np.testing.assert_array_equal(
            item["features"].numpy(), f["features"][row].astype(np.float32)
        )
        assert item["label"] == f["label"][row] and item["file_id"] == f["file_id"][row]
        assert item["chunk_index"] == f["chunk_index"][row] and item["aug"] == f["aug"][row]
    clone = pickle.loads(pickle.dumps(ds))  # what a spawned DataLoader worker receives
    assert clone._h5 is None
    cached = H5ChunkDataset(data, "train", cache=True)
    for i in range(len(ds)):
        np.testing.assert_array_equal(cached[i]["features"], ds[i]["features"])
    ds.close()
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_read_rows_matches_fancy_indexing(data):
    with h5py.File(data, "r") as f:
        ds = f["features"]
        n = ds.shape[0]
        rng = np.random.default_rng(0)
        for k in (1, 5, n // 2, n):
            rows = np.sort(rng.choice(n, size=k, replace=False))
            np.testing.assert_array_equal(_read_rows(ds, rows, block=16), ds[:][rows])


def test_pad_collate_and_dataloader(data):
    items = [
        {
            "features": torch.ones(t, 8),
            "length": t,
            "label": 1,
            "speaker": 2,
            "file_id": 3,
            "aug": 0,
            "chunk_index": t,
        }
        for t in (5, 3)
    ]
    batch = pad_collate(items)
    assert batch["features"].shape == (2, 5, 8)
    assert torch.all(batch["features"][1, 3:] == 0) and torch.all(batch["features"][1, :3] == 1)
    assert batch["lengths"].tolist() == [5, 3] and batch["lengths"].dtype == torch.long
    assert batch["chunk_index"].tolist() == [5, 3]
    loader = DataLoader(H5ChunkDataset(data, "val"), batch_size=4, collate_fn=pad_collate)
    b = next(iter(loader))
    assert b["features"].shape[1:] == (32, 64) and b["label"].dtype == torch.long
