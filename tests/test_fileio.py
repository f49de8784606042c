"""Atomic writes: nothing half-written, temp files cleaned, errors name the file."""

from __future__ import annotations

import errno
import os

import pytest

from voxgate.core.fileio import TEMP_SUFFIX, atomic_write, remove_stale_temps


def test_replaces_whole_or_not_at_all(tmp_path) -> None:
    dest = tmp_path / "a.json"
    atomic_write(dest, "old")

    def half_then_fail(fh) -> None:
        fh.write(b"new but cut")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as exc:
        atomic_write(dest, half_then_fail)
    assert dest.read_text() == "old"
    assert exc.value.errno == errno.ENOSPC and exc.value.filename == str(dest)
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temp file left


def test_mode_and_binary_and_callback(tmp_path) -> None:
    p = atomic_write(tmp_path / "b.bin", b"\x00\x01", mode=0o600)
    assert p.read_bytes() == b"\x00\x01" and (p.stat().st_mode & 0o777) == 0o600
    atomic_write(tmp_path / "c.txt", lambda fh: fh.write(b"cb"))
    assert (tmp_path / "c.txt").read_text() == "cb"


def test_interrupt_leaves_no_temp(tmp_path) -> None:
    def interrupted(fh) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "d", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_stale_temps_are_removed_only_when_old(tmp_path) -> None:
    old = tmp_path / f".x.123{TEMP_SUFFIX}"
    new = tmp_path / f".y.456{TEMP_SUFFIX}"
    old.write_text("x")
    new.write_text("y")
    os.utime(old, (0, 0))
    assert remove_stale_temps(tmp_path) == [old]
    assert new.exists() and remove_stale_temps(tmp_path / "missing") == []
