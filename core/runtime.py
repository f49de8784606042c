"""Process set-up for live scoring (threads, OpenMP waiting) and a per-stage CPU clock.

Live scoring runs one small model call every 0.5 s. Torch's default intra-op thread pool
spreads each call over every core and its OpenMP workers then spin-wait between calls,
which on a busy machine burns whole cores for nothing. ``configure_threads`` must run
before torch is imported to change the OpenMP wait policy.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

__all__ = ["LIVE_COMMANDS", "PASSIVE_OPENMP_ENV", "configure_threads", "StageClock"]

# voxgate subcommands that stream audio through the model (one intra-op thread each).
LIVE_COMMANDS = frozenset({"verify", "identify", "enroll", "gui"})

# Set (unless the user already set them) before torch loads: OpenMP workers sleep instead
# of spinning when idle. GNU OpenMP reads OMP_WAIT_POLICY / GOMP_SPINCOUNT, Intel's
# KMP_BLOCKTIME (ms of spinning after a parallel region).
PASSIVE_OPENMP_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0", "KMP_BLOCKTIME": "0"}


def _command(argv: Sequence[str]) -> str | None:
    """The first argument that is not an option (the subcommand), or None."""
    return next((a for a in argv if not a.startswith("-")), None)


def configure_threads(argv: Sequence[str] | None = None, *, live: bool | None = None) -> bool:
    """When scoring live: passive OpenMP waiting and one intra-op torch thread.

    ``live``: None decides from ``argv`` (default ``sys.argv[1:]``): True when its
    subcommand is one of :data:`LIVE_COMMANDS`. Batch commands (train, evaluate, calibrate,
    dataset build) keep OpenMP's default short spin: they own the cores while they run, and
    sleeping between the many small parallel regions of a training step costs ~30 % of its
    throughput (161 against 226 samples/s, docs/benchmarks.md). Environment variables the
    user (or a parent process: the GUI's retraining) set win; torch is imported only when
    live. Returns whether the live settings were applied.
    """
    if live is None:
        live = _command(sys.argv[1:] if argv is None else argv) in LIVE_COMMANDS
    if not live:
        return False
    for key, value in PASSIVE_OPENMP_ENV.items():
        os.environ.setdefault(key, value)
    import torch

    torch.set_num_threads(1)
    return True


_OFF = nullcontext()


class StageClock:
    """Accumulates this thread's CPU seconds per named stage (``time.thread_time``).

    ``with clock.stage("vad"): ...``; ``cpu_s`` maps stage -> seconds, ``calls`` -> count.
    With one torch thread the model's work runs on the calling thread, so it is counted.
    Off by default: reading the thread's CPU clock costs ~5-15 us, ~1 ms per audio second
    at the live path's ~100 stage entries a second, so only the benchmark switches it on.
    """

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled
        self.cpu_s: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def stage(self, name: str) -> AbstractContextManager[None]:
        """A context that adds its CPU time to ``name`` (does nothing while disabled)."""
        return self._timed(name) if self.enabled else _OFF

    @contextmanager
    def _timed(self, name: str) -> Iterator[None]:
        t0 = time.thread_time()
        try:
            yield
        finally:
            self.cpu_s[name] = self.cpu_s.get(name, 0.0) + time.thread_time() - t0
            self.calls[name] = self.calls.get(name, 0) + 1

    def reset(self) -> None:
        self.cpu_s.clear()
        self.calls.clear()
