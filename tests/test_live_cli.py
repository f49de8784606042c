"""The live commands, run in-process through voxgate.cli.main with a random model."""

from __future__ import annotations

import pytest

from conftest import (
    skip_unless_portaudio_missing,
    skip_unless_portaudio_present,
    voiced,
    write_wav,
)
from voxgate.cli import main

OTHER = dict(f0=300.0, formants=(400.0, 2600.0, 3300.0))


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VOXGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VOXGATE_MODEL", str(tmp_path / "no-model.pt"))
    return tmp_path


def test_enroll_verify_identify_and_manage_profiles(home, capsys) -> None:
    enroll_wav = write_wav(home, "ann1.wav", voiced(seconds=7.0, seed=1))
    same = write_wav(home, "ann2.wav", voiced(seconds=3.5, seed=2))
    other = write_wav(home, "bob.wav", voiced(seconds=3.5, seed=3, **OTHER))

    assert main(["enroll", "ann", "--file", str(enroll_wav), "--untrained"]) == 0
    out = capsys.readouterr().out
    assert "enrolled 'ann'" in out and "7.0 s of speech" in out
    assert main(["enroll", "ann", "--file", str(enroll_wav), "--untrained"]) == 1
    assert "--force" in capsys.readouterr().err

    # With random weights every score is high: 0.999 separates the signals (see test_pipeline).
    verify = ["verify", "--untrained", "--threshold", "0.999", "--file"]
    assert main([*verify, str(same)]) == 0
    out = capsys.readouterr().out
    assert "verdict: ACCEPTED ann" in out and "score" not in out  # no score oracle
    assert main([*verify, str(other)]) == 3
    assert "verdict: REJECTED" in capsys.readouterr().out
    assert main([*verify, str(same), "--scores"]) == 0
    assert "threshold 0.999" in capsys.readouterr().out
    assert main([*verify, str(same), "--user", "zed"]) == 1
    assert "no voice profile named 'zed'" in capsys.readouterr().err

    identify = ["identify", "--untrained", "--threshold", "0.999", "--file"]
    assert main([*identify, str(same)]) == 0
    assert "verdict: known: ann" in capsys.readouterr().out
    assert main([*identify, str(other)]) == 3
    assert "verdict: unknown" in capsys.readouterr().out

    assert main(["profiles", "list"]) == 0
    assert "ann" in capsys.readouterr().out
    assert main(["profiles", "authorize", "ann", "--off"]) == 0
    assert main([*verify, str(same)]) == 3  # nobody is authorized now
    assert "no authorized voice profile" in capsys.readouterr().err
    assert main([*verify, str(same), "--user", "ann"]) == 1  # nor is ann by name
    assert "not authorized" in capsys.readouterr().err
    assert main([*identify, str(same)]) == 3  # known, but not admitted
    assert "not authorized: ann" in capsys.readouterr().out
    assert (
        main(["profiles", "rename", "ann", "anne", "--profiles", str(home / "home/profiles")]) == 0
    )
    assert main(["profiles", "delete", "anne"]) == 0
    capsys.readouterr()
    assert main(["profiles", "list"]) == 0
    assert "no voice profiles" in capsys.readouterr().out
    assert main(["profiles", "delete", "anne"]) == 1


def test_many_files_in_one_process_with_json(home, capsys) -> None:
    import json

    enroll_wav = write_wav(home, "ann1.wav", voiced(seconds=7.0, seed=1))
    same = write_wav(home, "ann2.wav", voiced(seconds=3.5, seed=2))
    other = write_wav(home, "bob.wav", voiced(seconds=3.5, seed=3, **OTHER))
    short = write_wav(home, "short.wav", voiced(seconds=1.5, seed=4))
    assert main(["enroll", "ann", "--file", str(enroll_wav), "--untrained"]) == 0
    capsys.readouterr()
    files = [str(same), str(other), str(short)]
    cmd = ["verify", "--untrained", "--threshold", "0.999", "--json", "--no-lockout"]
    assert main([*cmd, "--file", *files]) == 3  # the worst outcome: a rejection
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in rows] == files
    assert [r["decision"] for r in rows] == ["accepted", "rejected", "undecided"]
    assert [r["who"] for r in rows] == ["ann", None, None]
    assert rows[0]["speech_s"] > rows[2]["speech_s"] > 0
    assert all("score" not in r for r in rows)
    assert main([*cmd, "--scores", "--file", str(same)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["threshold"] == 0.999 and row["score"] >= 0.999
    # --no-lockout is for recordings only
    assert main(["verify", "--untrained", "--mic", "--no-lockout"]) == 1


def test_missing_model_is_explained(home, capsys) -> None:
    wav = write_wav(home, "a.wav", voiced(seconds=2.0))
    assert main(["verify", "--file", str(wav)]) == 1
    err = capsys.readouterr().err
    assert "no model at" in err and "--untrained" in err and "Traceback" not in err


def test_undecided_when_there_is_no_speech(home, capsys) -> None:
    import numpy as np

    wav = write_wav(home, "quiet.wav", np.zeros(32000, np.float32))
    assert main(["verify", "--untrained", "--file", str(wav)]) == 4
    assert "NO DECISION" in capsys.readouterr().out


def test_devices_without_portaudio(home, capsys) -> None:
    skip_unless_portaudio_missing()
    assert main(["devices"]) == 1
    err = capsys.readouterr().err
    assert "sudo apt install libportaudio2" in err and "Traceback" not in err
    assert main(["enroll", "ann", "--mic", "--untrained"]) == 1
    assert "PortAudio" in capsys.readouterr().err


def test_devices_with_the_real_portaudio(home, capsys) -> None:
    """The real library, whatever this machine has: ``devices`` lists exactly the input
    devices PortAudio reports; with none (CI: no sound card) it says so in one line, and a
    microphone attempt is one error line too, never a traceback."""
    skip_unless_portaudio_present()
    import sounddevice as sd

    inputs = [d["name"] for d in sd.query_devices() if d["max_input_channels"] > 0]
    rc = main(["devices"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if inputs:
        assert rc == 0 and [line.split("] ", 1)[1].rsplit("  (", 1)[0]
                            for line in out.splitlines()] == inputs  # fmt: skip
    else:
        assert rc == 1 and err.startswith("voxgate: error: no audio input device found")
        assert main(["verify", "--mic", "--untrained"]) == 1
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("voxgate: error:")]
        assert errors == ["voxgate: error: no audio input device found (available input "
                          "devices: none)"] and "Traceback" not in err  # fmt: skip


def test_threshold_outside_the_score_range_is_refused(home, capsys) -> None:
    wav = write_wav(home, "a.wav", voiced(seconds=3.5))
    for bad in ("-5", "-1", "1.5"):
        assert main(["verify", "--untrained", "--threshold", bad, "--file", str(wav)]) == 1
        err = capsys.readouterr().err
        assert "threshold must be a cosine score in (-1, 1]" in err and "Traceback" not in err


def test_device_notes_only_when_the_counts_change(capsys) -> None:
    from voxgate.core.events import StatusEvent
    from voxgate.live_cli import _Notes

    notes = _Notes()
    for drops in (0, 2, 2, 2, 3):
        notes.show(StatusEvent(0.0, True, "mic", drops=drops))
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "note: 0 input overflows, 2 dropped blocks",
        "note: 0 input overflows, 3 dropped blocks",
    ]
