"""voxgate main(): one ``voxgate: error:`` line and exit 1 for OS errors, tracebacks only with
-v, SIGTERM unwinds like Ctrl+C, and one exit-code table in --help, the README and the guide."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from voxgate import cli
from voxgate.core.errors import DatasetError, os_error_message
from voxgate.exitcodes import (
    EXIT_ERROR,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_UNDECIDED,
    EXIT_USAGE,
    TABLE,
)

ROOT = Path(__file__).resolve().parents[1]
HDF5_ENOSPC = (
    "Can't write data (file write failed: time = Mon Nov 30 05:00:00 2026, filename = "
    "'/data/.out.h5.x.vxtmp', file descriptor = 5, errno = 28, error message = 'No space left "
    "on device', buf = 0x55d, total write size = 4096, bytes this sub-write = 4096, bytes "
    "actually written = 18446744073709551615, offset = 0)"
)


def _run_info_raising(monkeypatch, exc: BaseException, *argv: str) -> int:
    from voxgate.training import dataset_cli

    def boom(args):
        raise exc

    monkeypatch.setattr(dataset_cli, "_info", boom)
    return cli.main([*argv, "dataset", "info", "x.h5"])


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out.h5"), "out.h5: No space left on device"),
        (PermissionError(errno.EACCES, "Permission denied", "/ro/p.json"), "/ro/p.json: Permission denied"),
        (OSError(errno.EROFS, "Read-only file system", "a", None, "b"), "a -> b: Read-only file system"),
        (OSError(HDF5_ENOSPC), "/data/.out.h5.x.vxtmp: No space left on device"),
        (DatasetError("bad.csv: manifest lacks column(s) ['speaker']"), "bad.csv: manifest lacks"),
    ],
)
def test_errors_are_one_line_and_exit_1(monkeypatch, capsys, exc, line) -> None:
    assert _run_info_raising(monkeypatch, exc) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"voxgate: error: {line}") and err.count("\n") == 1
    assert "Traceback" not in err


def test_verbose_adds_the_traceback(monkeypatch, capsys) -> None:
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out.h5")
    assert _run_info_raising(monkeypatch, exc, "-v") == EXIT_ERROR
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().endswith("voxgate: error: out.h5: No space left on device")


def test_os_error_message_without_a_file() -> None:
    assert os_error_message(OSError(errno.EIO, "Input/output error")) == "Input/output error"
    assert os_error_message(OSError("plain text")) == "plain text"


def test_sigterm_is_handled_like_ctrl_c(monkeypatch, capsys) -> None:
    import signal

    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def handler_sends_sigterm(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        finally:
            seen.append("cleanup ran")

    from voxgate.training import dataset_cli

    monkeypatch.setattr(dataset_cli, "_info", handler_sends_sigterm)
    assert cli.main(["dataset", "info", "x.h5"]) == 128 + signal.SIGTERM
    assert seen == ["cleanup ran"]
    assert capsys.readouterr().err == "voxgate: terminated\n"
    assert signal.getsignal(signal.SIGTERM) == before  # restored for the caller


def test_exit_code_values() -> None:
    assert (EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED, EXIT_UNDECIDED, EXIT_LOCKED) == (
        0, 1, 2, 3, 4, 5,
    )  # fmt: skip


def test_one_exit_code_table_in_help_readme_and_guide(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    help_text = capsys.readouterr().out
    rows = TABLE.splitlines()[1:]
    assert [r.split()[0] for r in rows] == ["0", "1", "2", "3", "4", "5"]
    for doc in (ROOT / "README.md", ROOT / "docs" / "user-guide.md"):
        text = doc.read_text(encoding="utf-8")
        assert "```text\n" + "\n".join(rows) + "\n```" in text, doc.name
    assert TABLE in help_text


def test_no_command_is_a_usage_error(capsys) -> None:
    assert cli.main([]) == EXIT_USAGE


def test_wrapped_os_error_and_unexpected_errors_are_one_line(monkeypatch, capsys) -> None:
    try:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "model.pt")
    except OSError as cause:
        wrapped = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704")
        wrapped.__cause__ = cause
    assert _run_info_raising(monkeypatch, wrapped) == EXIT_ERROR
    assert capsys.readouterr().err == "voxgate: error: model.pt: No space left on device\n"
    assert _run_info_raising(monkeypatch, ZeroDivisionError("division by zero")) == EXIT_ERROR
    assert capsys.readouterr().err == (
        "voxgate: error: unexpected ZeroDivisionError: division by zero "
        "(run with -v for the traceback)\n"
    )
