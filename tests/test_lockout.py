"""Failed-attempt throttling and lockout (NIST SP 800-63B), with a fake clock."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import small_model_config, voiced
from voxgate.cli import main
from voxgate.core.errors import LockedOutError, ProfileError
from voxgate.core.events import DecisionState, StatusEvent
from voxgate.core.inference import SpeakerEncoder
from voxgate.core.lockout import DEVICE_KEY, Lockout, delay_s
from voxgate.core.pipeline import Pipeline, PipelineConfig
from voxgate.core.profiles import Profile, ProfileStore
from voxgate.core.sources import FileSource


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def fail(lock: Lockout, key: str, n: int) -> None:
    for _ in range(n):
        lock.record(key, accepted=False)


def test_five_failures_impose_a_wait_that_grows(tmp_path) -> None:
    clock = Clock()
    lock = Lockout(ProfileStore(tmp_path), clock)
    fail(lock, "ann", 4)
    assert lock.check("ann").left == 1  # the fifth failure is still allowed
    fail(lock, "ann", 1)
    with pytest.raises(LockedOutError, match="wait 30 s") as exc:
        lock.check("ann")
    assert exc.value.wait_s == pytest.approx(30.0) and not exc.value.disabled
    clock.t += 29.0
    with pytest.raises(LockedOutError):
        lock.check("ann")
    clock.t += 1.0
    lock.check("ann")  # 30 s later one more attempt is allowed
    fail(lock, "ann", 1)
    assert lock.status("ann").wait_s == pytest.approx(60.0)  # doubles with each failure
    assert lock.status("bob").failures == 0  # keys are independent
    lock.record("ann", accepted=True)
    assert lock.check("ann").failures == 0  # success resets


def test_fifty_failures_disable_until_unlocked_and_state_survives_restarts(tmp_path) -> None:
    clock = Clock()
    fail(Lockout(ProfileStore(tmp_path), clock), DEVICE_KEY, 50)
    clock.t += 10**7  # waiting is not enough
    again = Lockout(ProfileStore(tmp_path), clock)  # a new process reads the same state
    with pytest.raises(LockedOutError, match="disabled") as exc:
        again.check(DEVICE_KEY)
    assert exc.value.disabled and "profiles unlock --device" in str(exc.value)
    again.unlock(DEVICE_KEY)
    assert again.check(DEVICE_KEY).failures == 0


def test_delay_schedule() -> None:
    assert [delay_s(n) for n in (0, 4, 5, 6, 7)] == [0, 0, 30, 60, 120]
    assert delay_s(49) == 15 * 60


def test_tampered_lockout_state_fails_closed(tmp_path) -> None:
    lock = Lockout(ProfileStore(tmp_path))
    fail(lock, "ann", 1)
    lock.path.write_text('{"version": 1, "keys": {"ann": {"failures": "0"}}}')
    with pytest.raises(ProfileError, match="invalid lockout"):
        lock.check("ann")


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return SpeakerEncoder.untrained(model_config=small_model_config())


def test_pipeline_counts_rejected_attempts_and_refuses_a_locked_key(encoder, tmp_path) -> None:
    store = ProfileStore(tmp_path)
    # A profile pointing away from this voice: every attempt ends REJECTED.
    emb = -encoder.embed(voiced(seconds=1.0, seed=1)[None])[0]
    store.save(Profile("ann", emb, model_fingerprint=encoder.fingerprint))
    clock = Clock()
    pipe = Pipeline(encoder, store, PipelineConfig(threshold=0.5), wall_clock=clock)
    for k in range(5):
        events = list(pipe.run(FileSource(voiced(seconds=3.0, seed=2))))
        assert pipe.attempt.verdict.state == DecisionState.REJECTED
        assert f"{4 - k} attempt(s) left" in events[-1].message or k == 4
    events = list(pipe.run(FileSource(voiced(seconds=3.0, seed=2))))
    assert len(events) == 1 and isinstance(events[0], StatusEvent)
    assert events[0].extra["locked"] == 1.0 and events[0].extra["wait_s"] == pytest.approx(30)
    # An attempt stopped before its decision still counts once it scored a window.
    clock.t += 30
    pipe.update_config(stop_on_decision=False)
    for ev in pipe.run(FileSource(voiced(seconds=3.0, seed=2))):
        if getattr(ev, "best_score", None) is not None:
            pipe.stop()
    assert Lockout(store, clock).status(DEVICE_KEY).failures == 6


def test_cli_gives_exit_5_with_the_wait(tmp_path, monkeypatch, capsys) -> None:
    from conftest import write_wav

    monkeypatch.setenv("VOXGATE_HOME", str(tmp_path / "home"))
    enroll_wav = write_wav(tmp_path, "ann.wav", voiced(seconds=7.0, seed=1))
    probe = write_wav(tmp_path, "probe.wav", voiced(seconds=3.5, seed=2))
    assert main(["enroll", "ann", "--untrained", "--file", str(enroll_wav)]) == 0
    cmd = ["verify", "--untrained", "--threshold", "0.9999", "--user", "ann", "--file"]
    codes = [main([*cmd, str(probe)]) for _ in range(6)]
    assert codes == [3, 3, 3, 3, 3, 5]
    err = capsys.readouterr().err
    assert "1 attempt(s) left for profile 'ann'" in err
    assert re.search(r"too many failed attempts for profile 'ann': wait (2\d|30) s", err)
    assert main(["profiles", "list"]) == 0
    assert "LOCKED: too many failed attempts for profile 'ann'" in capsys.readouterr().out
    assert main(["profiles", "unlock", "ann"]) == 0
    assert main([*cmd, str(probe)]) == 3


def test_the_lockout_state_is_not_listed_as_a_broken_profile(tmp_path, capsys) -> None:
    """Every verify after a failed attempt used to print "skipped unreadable profile:
    …/lockout.json" (the store read its own attempt counters as a voice profile)."""
    store = ProfileStore(tmp_path)
    store.save(Profile("ann", np.ones(8, np.float32)))
    fail(Lockout(store, Clock()), "ann", 1)
    assert (tmp_path / ProfileStore.LOCKOUT_NAME).is_file()
    assert [p.name for p in store.list()] == ["ann"] and store.problems == []
