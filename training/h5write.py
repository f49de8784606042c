"""The HDF5 writer of ``dataset build``: rows appended to growing datasets, through a file
object that turns a failed write (full disk, EFBIG, EIO) into an OSError for the caller
instead of a broken HDF5 library state."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from .h5schema import COLUMN_DTYPES, source_dtype

__all__ = ["GuardedFile", "ChunkWriter", "sources_array"]

class GuardedFile:
    """The file object h5py writes through. The first OSError of a write (ENOSPC, EFBIG,
    EIO...) is kept in ``error`` and later writes and truncates are dropped, so HDF5 never
    sees a failed write: its state stays sound, closing works, and the caller raises
    ``error``. (A failed write inside HDF5 left its object ids inconsistent, and the next
    close or garbage collection crashed the interpreter.)"""

    def __init__(self, path: Path):
        self.raw = open(path, "w+b", buffering=0)  # unbuffered: errors surface at the write
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self.error is None:
            try:
                done = 0
                while done < len(view):
                    done += self.raw.write(view[done:]) or 0
            except OSError as exc:
                self.error = exc
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self.raw.truncate(size)
            except OSError as exc:
                self.error = exc
        return size or 0

    def __getattr__(self, name: str) -> Any:  # read, readinto, seek, tell, flush
        return getattr(self.raw, name)


class ChunkWriter:
    """Appends feature rows to a growing HDF5 file; :meth:`check` raises a write error."""

    def __init__(self, path: Path, out: Path, frames: int, n_mels: int, compression: str | None):
        import h5py

        self.out = out
        self.file = GuardedFile(path)
        self.f = h5py.File(self.file, "w")
        self.n = 0
        kw: dict[str, Any] = {"compression": compression} if compression else {}
        rows = max(1, min(256, (1 << 20) // (frames * n_mels * 2)))
        self.f.create_dataset(
            "features", (0, frames, n_mels), np.float16, maxshape=(None, frames, n_mels),
            chunks=(rows, frames, n_mels), **kw,
        )  # fmt: skip
        self.cols = COLUMN_DTYPES
        for name, dt in self.cols.items():
            self.f.create_dataset(name, (0,), dt, maxshape=(None,), chunks=(8192,), **kw)

    def append(self, res: dict[str, Any], *, file_id: int, speaker: int, label: int, split: int):
        r = len(res["aug"])
        a, b = self.n, self.n + r
        values = {
            "lengths": res["lengths"], "aug": res["aug"], "chunk_index": res["chunk_index"],
            "label": np.full(r, label), "speaker": np.full(r, speaker),
            "file_id": np.full(r, file_id), "split": np.full(r, split),
        }  # fmt: skip
        self.f["features"].resize(b, axis=0)
        self.f["features"][a:b] = res["features"]
        for name, dt in self.cols.items():
            self.f[name].resize(b, axis=0)
            self.f[name][a:b] = np.asarray(values[name], dtype=dt)
        self.n = b
        self.check()

    def check(self) -> None:
        """Raise the first write error as an OSError naming ``out`` (the file the user asked for)."""
        exc = self.file.error
        if exc is not None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.out)) from exc

    def close(self) -> None:
        """Close HDF5, then the file; a write error (also one of the final flush) is raised."""
        try:
            self.f.close()
        finally:
            self.file.raw.close()
        self.check()

    def discard(self) -> None:
        """Close after a failure; errors here must not hide the one being raised."""
        with contextlib.suppress(Exception):
            self.f.close()
        with contextlib.suppress(OSError):
            self.file.raw.close()


def sources_array(rows: list[dict[str, Any]]) -> np.ndarray:
    """The ``sources`` table from one dict per recording (keys: h5schema.SOURCE_FIELDS)."""
    dt = source_dtype()
    arr = np.zeros(len(rows), dtype=dt)
    for i, r in enumerate(rows):
        arr[i] = tuple(r[k] for k in dt.names)
    return arr
