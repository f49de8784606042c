"""Read the HDF5 chunk dataset: metadata with validation, columns and features, a torch
Dataset and its collate. Its human-readable and JSON summaries are in h5summary.py."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from voxgate.core.config import FeatureConfig
from voxgate.core.errors import ConfigError, DatasetError

from .h5schema import ATTRS, COLUMN_DTYPES, COLUMNS, SCHEMA_VERSION, SOURCE_FIELDS, SPLIT_NAMES

__all__ = [
    "SCHEMA_VERSION",
    "SPLIT_NAMES",
    "H5Meta",
    "read_meta",
    "open_complete",
    "count_chunks",
    "read_columns",
    "read_features",
    "H5ChunkDataset",
    "pad_collate",
]

@dataclasses.dataclass
class H5Meta:
    """Dataset metadata. counts[split] = {authorized, outsider, total, original, augmented}
    chunk rows; sources: one dict per recording (row = file_id), fields as in the file."""

    path: Path
    feature_config: FeatureConfig
    speakers: list[str]
    authorized: list[str]
    aug_tags: list[str]
    counts: dict[str, dict[str, int]]
    fingerprint: str
    n_chunks: int
    sources: list[dict[str, Any]]
    split_names: list[str]
    build_config: dict[str, Any]
    skipped: list[list[str]]
    schema_version: int = SCHEMA_VERSION


def count_chunks(
    label: np.ndarray, split: np.ndarray, aug: np.ndarray
) -> dict[str, dict[str, int]]:
    """Rows per split and class: {split: {authorized, outsider, total, original, augmented}}."""
    counts = {}
    for k, name in enumerate(SPLIT_NAMES):
        m = split == k
        counts[name] = {
            "authorized": int(np.sum(m & (label == 1))),
            "outsider": int(np.sum(m & (label == 0))),
            "total": int(np.sum(m)),
            "original": int(np.sum(m & (aug == 0))),
            "augmented": int(np.sum(m & (aug != 0))),
        }
    return counts


def _decode(v: Any) -> Any:
    return v.decode("utf-8") if isinstance(v, bytes) else v


def _json_attr(f, name: str) -> Any:
    try:
        return json.loads(_decode(f.attrs[name]))
    except (KeyError, ValueError) as exc:
        raise DatasetError(f"{f.filename}: attribute {name!r} is missing or not JSON") from exc


def open_complete(path: str | Path) -> Any:
    """Open a dataset file read-only (an ``h5py.File``; use it as a context manager).

    Raises DatasetError when the file is missing, not HDF5, or its ``complete`` attribute
    is not set (the build did not finish).
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: dataset file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable HDF5 file ({exc})") from exc
    if not bool(f.attrs.get("complete", False)):
        f.close()
        raise DatasetError(f"{path}: incomplete dataset (the build did not finish)")
    return f


def read_meta(path: str | Path, *, validate: bool = True) -> H5Meta:
    """Read and (by default) validate a dataset file's metadata.

    Validation: the complete flag, schema version, all attributes and datasets present,
    equal column lengths, feature shape matching the feature config, and every index (speaker,
    file_id, split, aug) in range; labels agree with the authorized list.
    Raises DatasetError for a missing, incomplete or inconsistent file.
    """
    path = Path(path)
    with open_complete(path) as f:
        missing = [a for a in ATTRS if a not in f.attrs]
        if missing:
            raise DatasetError(f"{path}: missing attribute(s) {missing}")
        version = int(f.attrs["schema_version"])
        if version != SCHEMA_VERSION:
            raise DatasetError(
                f"{path}: schema_version {version}, this voxgate reads {SCHEMA_VERSION}"
            )
        try:
            fcfg = FeatureConfig.from_json(_decode(f.attrs["feature_config"]))
        except (ConfigError, ValueError) as exc:
            raise DatasetError(f"{path}: bad feature_config: {exc}") from exc
        speakers = _json_attr(f, "speakers")
        authorized = _json_attr(f, "authorized")
        aug_tags = _json_attr(f, "aug_tags")
        split_names = _json_attr(f, "split_names")
        for name in ("features", "sources", *COLUMNS):
            if name not in f:
                raise DatasetError(f"{path}: dataset {name!r} is missing")
        n = f["features"].shape[0]
        cols = {c: f[c][:] for c in ("label", "split", "aug")}
        sources_raw = f["sources"][:]
        if validate:
            _validate(
                f, path, n, fcfg, speakers, authorized, aug_tags, split_names, len(sources_raw)
            )
        names = sources_raw.dtype.names or ()
        if set(SOURCE_FIELDS) - set(names):
            raise DatasetError(
                f"{path}: sources lacks field(s) {sorted(set(SOURCE_FIELDS) - set(names))}"
            )
        sources = []
        for i, row in enumerate(sources_raw):
            d = {k: _decode(row[k]) for k in names}
            for k in ("duration_s", "speech_s"):
                d[k] = float(d[k])
            d["chunks"], d["split"], d["file_id"] = int(d["chunks"]), int(d["split"]), i
            sources.append(d)
        return H5Meta(
            path=path, feature_config=fcfg, speakers=list(speakers), authorized=list(authorized),
            aug_tags=list(aug_tags), counts=count_chunks(cols["label"], cols["split"], cols["aug"]),
            fingerprint=_decode(f.attrs["fingerprint"]), n_chunks=int(n), sources=sources,
            split_names=list(split_names), build_config=_json_attr(f, "build_config"),
            skipped=_json_attr(f, "skipped"), schema_version=version,
        )  # fmt: skip


def _validate(f, path, n, fcfg, speakers, authorized, aug_tags, split_names, n_sources) -> None:
    def bad(msg: str) -> DatasetError:
        return DatasetError(f"{path}: invalid dataset: {msg}")

    shape = f["features"].shape
    if len(shape) != 3 or shape[2] != fcfg.n_mels or shape[1] != fcfg.frames_per_chunk:
        raise bad(
            f"features shape {shape} does not match (N, {fcfg.frames_per_chunk}, {fcfg.n_mels})"
        )
    for c in COLUMNS:
        if f[c].shape != (n,):
            raise bad(f"{c} has shape {f[c].shape}, expected ({n},)")
    if list(split_names) != list(SPLIT_NAMES):
        raise bad(f"split_names {split_names}")
    if not set(authorized) <= set(speakers):
        raise bad("authorized ids not in the speaker map")
    spk, fid = f["speaker"][:], f["file_id"][:]
    split, aug, label = f["split"][:], f["aug"][:], f["label"][:]
    lengths = f["lengths"][:]
    checks = [
        ("speaker", spk, len(speakers)), ("file_id", fid, n_sources),
        ("split", split, len(split_names)), ("aug", aug, len(aug_tags)),
    ]  # fmt: skip
    for name, arr, hi in checks:
        if arr.size and (arr.min() < 0 or arr.max() >= hi):
            raise bad(f"{name} index out of range [0, {hi})")
    if lengths.size and (lengths.min() < 1 or lengths.max() > shape[1]):
        raise bad(f"lengths outside [1, {shape[1]}]")
    auth_idx = np.array([speakers.index(a) for a in authorized], dtype=np.int64)
    if not np.array_equal(label.astype(bool), np.isin(spk, auth_idx)):
        raise bad("label disagrees with the authorized speaker list")
    if np.any((aug != 0) & (split != 0)):
        raise bad("augmented rows outside the train split")
    src_split = f["sources"]["split"][:]
    if fid.size and not np.array_equal(src_split[fid], split):
        raise bad("a chunk's split differs from its recording's split")


def _read_rows(ds, rows: np.ndarray, block: int = 4096) -> np.ndarray:
    """ds[rows] for sorted unique ``rows``: dense blocks are read as slices, sparse ones with
    (sorted) fancy indexing, so a scattered selection never reads the whole file."""
    out = np.empty((len(rows), *ds.shape[1:]), dtype=ds.dtype)
    pos = 0
    i = 0
    while i < len(rows):
        start = rows[i]
        j = int(np.searchsorted(rows, start + block, side="left"))
        sel = rows[i:j]
        if len(sel) >= 0.25 * (sel[-1] - start + 1):
            chunk = ds[start : sel[-1] + 1]
            out[pos : pos + len(sel)] = chunk[sel - start]
        else:
            out[pos : pos + len(sel)] = ds[sel.tolist()]
        pos += len(sel)
        i = j
    return out


def read_columns(path: str | Path, names: Sequence[str] = COLUMNS) -> dict[str, np.ndarray]:
    """Per-chunk columns {name: (N,) array} of a complete file, each in its schema dtype."""
    with open_complete(path) as f:
        missing = [c for c in names if c not in f]
        if missing:
            raise DatasetError(f"{path}: dataset(s) {missing} missing")
        return {c: f[c][()].astype(COLUMN_DTYPES[c], copy=False) for c in names}


def read_features(path: str | Path, rows: np.ndarray) -> np.ndarray:
    """features[rows] as float32 (n, T, M) for sorted unique row indices ``rows``."""
    with open_complete(path) as f:
        return _read_rows(f["features"], np.asarray(rows, dtype=np.int64)).astype(np.float32)


class H5ChunkDataset(Dataset):
    """Chunks of one split of a dataset file, as a torch Dataset.

    split: "train" | "val" | "test" | None (all). augmented=False keeps original chunks only.
    speakers: ids (str) or indices (int) to keep, None = all. meta: the file's read_meta()
    when the caller already has it (skips a second validation). cache=True loads the selected
    features into RAM at init. Without the cache the HDF5 file opens lazily, once per process,
    on the first ``__getitem__`` (so each DataLoader worker has its own handle).
    Item: dict(features float32 (T, M) dB, length, label, speaker, file_id, aug, chunk_index).
    """

    def __init__(
        self,
        path: str | Path,
        split: str | None = "train",
        *,
        cache: bool = False,
        augmented: bool = True,
        speakers: Sequence[str | int] | None = None,
        meta: H5Meta | None = None,
    ):
        import h5py

        self.path = Path(path)
        self.meta = meta if meta is not None else read_meta(self.path)  # validated once by caller
        if split is not None and split not in SPLIT_NAMES:
            raise DatasetError(f"unknown split {split!r}; known: {list(SPLIT_NAMES)}")
        self.split = split
        with h5py.File(self.path, "r") as f:
            cols = {c: f[c][:] for c in COLUMNS}
            mask = np.ones(self.meta.n_chunks, dtype=bool)
            if split is not None:
                mask &= cols["split"] == SPLIT_NAMES.index(split)
            if not augmented:
                mask &= cols["aug"] == 0
            if speakers is not None:
                idx = []
                for s in speakers:
                    if isinstance(s, (int, np.integer)):
                        idx.append(int(s))
                    elif s in self.meta.speakers:
                        idx.append(self.meta.speakers.index(s))
                    else:
                        raise DatasetError(f"speaker {s!r} is not in {self.path}")
                mask &= np.isin(cols["speaker"], idx)
            self.rows = np.flatnonzero(mask)
            self.labels = cols["label"][self.rows]
            self.speakers = cols["speaker"][self.rows]
            self.file_ids = cols["file_id"][self.rows]
            self.chunk_index = cols["chunk_index"][self.rows]
            self.aug = cols["aug"][self.rows]
            self.lengths = cols["lengths"][self.rows]
            self._cache = _read_rows(f["features"], self.rows) if cache else None
        self._h5 = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def _features(self, i: int) -> np.ndarray:
        if self._cache is not None:
            return self._cache[i]
        if self._h5 is None or self._pid != os.getpid():
            import h5py

            self._h5 = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._h5["features"][int(self.rows[i])]

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i = i % len(self)
        return {
            "features": torch.from_numpy(self._features(i).astype(np.float32)),
            "length": int(self.lengths[i]),
            "label": int(self.labels[i]),
            "speaker": int(self.speakers[i]),
            "file_id": int(self.file_ids[i]),
            "aug": int(self.aug[i]),
            "chunk_index": int(self.chunk_index[i]),
        }

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"], state["_pid"] = None, None  # handles never cross processes
        return state

    def close(self) -> None:
        """Close this process's HDF5 handle (reopened on the next access)."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None


def pad_collate(items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Batch items: features (B, Tmax, M) float32 zero-padded at the end, lengths (B,) long,
    label/speaker/file_id/aug/chunk_index (B,) long."""
    if not items:
        raise ValueError("pad_collate: empty batch")
    t_max = max(int(it["features"].shape[0]) for it in items)
    m = int(items[0]["features"].shape[1])
    feats = torch.zeros(len(items), t_max, m, dtype=torch.float32)
    for b, it in enumerate(items):
        x = it["features"]
        feats[b, : x.shape[0]] = x
    out = {
        "features": feats,
        "lengths": torch.tensor([it["length"] for it in items], dtype=torch.long),
    }
    for key in ("label", "speaker", "file_id", "aug", "chunk_index"):
        out[key] = torch.tensor([it[key] for it in items], dtype=torch.long)
    return out
