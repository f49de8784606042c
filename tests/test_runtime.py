"""core/runtime.py: passive OpenMP waiting and one thread for live commands, the stage clock."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from voxgate.core.runtime import PASSIVE_OPENMP_ENV, StageClock


def _run(code: str, env: dict[str, str]) -> str:
    full = {k: v for k, v in os.environ.items() if k not in PASSIVE_OPENMP_ENV}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**full, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.mark.parametrize(
    ("argv", "threads"), [(["verify", "--file", "x.wav"], 1), (["-v", "gui"], 1), (["train"], 0)]
)
def test_configure_threads_in_a_fresh_process(argv: list[str], threads: int) -> None:
    code = (
        "import os, torch\n"
        "from voxgate.core.runtime import configure_threads\n"
        "default = torch.get_num_threads()\n"
        f"live = configure_threads({argv!r})\n"
        "print(os.environ.get('OMP_WAIT_POLICY', '-'), os.environ.get('KMP_BLOCKTIME', '-'), "
        "live, torch.get_num_threads() if live else 0)"
    )
    policy, blocktime, live, n = _run(code, {}).split()
    # live: workers sleep when idle; batch jobs (train) keep OpenMP's default spin
    assert (policy, blocktime) == (("PASSIVE", "0") if threads == 1 else ("-", "-"))
    assert live == str(threads == 1) and int(n) == threads


def test_user_environment_wins() -> None:
    code = (
        "import os\nfrom voxgate.core.runtime import configure_threads\n"
        "configure_threads(['verify'])\nprint(os.environ['OMP_WAIT_POLICY'])"
    )
    assert _run(code, {"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"


def test_stage_clock_is_off_by_default_and_accumulates_per_stage() -> None:
    off = StageClock()
    with off.stage("a"):
        sum(range(20000))
    assert off.cpu_s == {} and off.calls == {}
    clock = StageClock(enabled=True)
    for _ in range(3):
        with clock.stage("a"):
            sum(range(20000))
    with pytest.raises(KeyError), clock.stage("b"):
        raise KeyError("x")  # counted even when the stage fails
    assert clock.calls == {"a": 3, "b": 1} and clock.cpu_s["a"] > 0
    clock.reset()
    assert clock.cpu_s == {} and clock.calls == {}
