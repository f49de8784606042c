"""Atomic file writes: every file voxgate writes goes through :func:`atomic_write`.

A temp file in the destination's own folder is written, flushed, fsynced and renamed over
the destination; on any failure it is removed, and a failing cleanup never hides the
original error. Temp files carry the prefix ``.<name>.`` and the suffix ``.vxtmp`` so that
:func:`remove_stale_temps` can clean what a killed writer left behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "atomic_path", "remove_stale_temps", "TEMP_SUFFIX"]

TEMP_SUFFIX = ".vxtmp"


def _unlink_quietly(path: str | Path) -> None:
    with contextlib.suppress(OSError):  # cleanup must never mask the error being raised
        os.unlink(path)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be fsynced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, mode: int = 0o644) -> Iterator[Path]:
    """Yields a temp path beside ``path`` for a writer that wants a file name (h5py,
    soundfile); on normal exit it is fsynced and renamed to ``path`` with ``mode``,
    on any exception (KeyboardInterrupt too) it is removed and the exception re-raised."""
    dest = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=TEMP_SUFFIX, dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dest)
    except OSError as exc:
        _unlink_quietly(tmp)
        if exc.filename is None or str(exc.filename) == tmp:
            # write() errors (ENOSPC, EFBIG) name no file: name the one the user asked for
            raise OSError(exc.errno, exc.strerror or str(exc), str(dest)) from exc
        raise
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(dest.parent)


def atomic_write(
    path: str | Path,
    data: bytes | str | Callable[[IO[Any]], Any],
    *,
    mode: int = 0o644,
    encoding: str = "utf-8",
) -> Path:
    """Write ``data`` (bytes, text, or a function that writes to a binary file object) to
    ``path`` atomically with permission bits ``mode``; returns ``path`` as a Path.

    Raises the OSError of the write (ENOSPC, EROFS, EACCES...) after removing the temp file.
    """
    dest = Path(path)
    with atomic_path(dest, mode=mode) as tmp:
        with open(tmp, "wb") as fh:
            if isinstance(data, str):
                fh.write(data.encode(encoding))
            elif isinstance(data, (bytes, bytearray, memoryview)):
                fh.write(data)
            else:
                data(fh)
            fh.flush()
    return dest


def remove_stale_temps(folder: str | Path, *, older_than_s: float = 60.0) -> list[Path]:
    """Remove temp files of :func:`atomic_write` in ``folder`` older than ``older_than_s``
    (left by a killed writer); returns what was removed. Missing folders are fine."""
    import time

    removed = []
    root = Path(folder)
    if not root.is_dir():
        return removed
    now = time.time()
    for p in root.glob(f".*{TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime >= older_than_s:
                p.unlink()
                removed.append(p)
    return removed
