"""The HDF5 chunk dataset's schema, written once: version, split names, column and source
dtypes, attribute names. The writer (h5write) and the reader (h5data) both use it."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "SCHEMA_VERSION",
    "SPLIT_NAMES",
    "COLUMN_DTYPES",
    "COLUMNS",
    "ATTRS",
    "SOURCE_FIELDS",
    "source_dtype",
]

SCHEMA_VERSION = 1
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
# Per-chunk columns, shape (N,) each, beside ``features`` (N, T frames, M mels) float16 dB.
COLUMN_DTYPES: dict[str, Any] = {
    "lengths": np.int16,  # valid frames of the chunk
    "label": np.int8,  # 1 authorized, 0 outsider
    "speaker": np.int32,  # index into the ``speakers`` attribute
    "file_id": np.int32,  # row of ``sources``
    "split": np.int8,  # index into SPLIT_NAMES
    "aug": np.int8,  # index into ``aug_tags``; 0 = original
    "chunk_index": np.int32,  # position of the chunk in its recording
}
COLUMNS: tuple[str, ...] = tuple(COLUMN_DTYPES)
ATTRS = (
    "schema_version", "complete", "feature_config", "speakers", "authorized", "aug_tags",
    "split_names", "build_config", "skipped", "fingerprint",
)  # fmt: skip
# One row per recording; None marks a UTF-8 string field.
_SOURCE_TYPES: dict[str, Any] = {
    "path": None, "speaker": None, "session": None, "corpus": None, "subset": None,
    "gender": None, "duration_s": np.float32, "speech_s": np.float32, "chunks": np.int32,
    "split": np.int8,
}  # fmt: skip
SOURCE_FIELDS: tuple[str, ...] = tuple(_SOURCE_TYPES)


def source_dtype() -> np.dtype:
    """The compound dtype of the ``sources`` table (h5py variable-length strings)."""
    import h5py

    s = h5py.string_dtype()
    return np.dtype([(k, s if t is None else t) for k, t in _SOURCE_TYPES.items()])
