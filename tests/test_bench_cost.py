"""training/bench_cost.py: CPU per audio second of verify --file and of the GUI."""

from __future__ import annotations

import json
import os

import pytest

from conftest import SR, voiced, write_tiny_checkpoint, write_wav
from voxgate.core.errors import ConfigError
from voxgate.training import bench, bench_cost


def test_speech_wave_loops_to_length(tmp_path) -> None:
    wav = write_wav(tmp_path, "s.wav", voiced(seconds=2.0))
    wave, name = bench_cost.speech_wave(5.0, wav)
    assert name == str(wav) and wave.shape == (5 * SR,)
    assert wave[2 * SR + 100] == pytest.approx(wave[100], abs=1e-6)


@pytest.mark.slow
def test_cli_cost_runs_verify_twice_and_subtracts(tmp_path, capsys) -> None:
    wav = write_wav(tmp_path, "s.wav", voiced(seconds=8.0, seed=4))
    assert bench.main(["cli-cost", "--file", str(wav), "--untrained", "--long-s", "8",
                       "--short-s", "2"]) == 0  # fmt: skip
    r = json.loads(capsys.readouterr().out)
    assert r["short"]["cpu_s"] > 0.2 and r["long"]["cpu_s"] > 0.2  # start-up alone costs this
    assert r["long"]["exit_code"] in (0, 3, 4) and r["short"]["exit_code"] in (0, 3, 4)
    per_s = (r["long"]["cpu_s"] - r["short"]["cpu_s"]) / 6.0
    # The printed CPU times keep 5 significant digits: their difference (verify stops at its
    # decision, so it is near 0 s and can be negative) is known to ~2e-4 s.
    assert r["cpu_s_per_audio_s"] == pytest.approx(per_s, rel=1e-3, abs=2e-4 / 6.0)


def test_cli_cost_validates_lengths() -> None:
    with pytest.raises(ConfigError):
        bench_cost.measure_cli_cost(long_s=2.0, short_s=2.0)


@pytest.mark.slow
def test_gui_cost_paces_the_real_window(tmp_path, monkeypatch) -> None:
    pytest.importorskip("PySide6")
    monkeypatch.setitem(os.environ, "QT_QPA_PLATFORM", "offscreen")
    wav = write_wav(tmp_path, "s.wav", voiced(seconds=6.0, seed=2))
    model = write_tiny_checkpoint(tmp_path / "m.pt")
    r = bench_cost.measure_gui_cost(seconds=3.0, file=wav, model=str(model))
    assert r["error"] is None and r["audio_s"] == pytest.approx(3.0)
    assert r["wall_s"] >= 3.0 * 0.95  # paced in real time
    assert 0 < r["cpu_s_per_audio_s"] == pytest.approx(r["cpu_s"] / 3.0)


def test_gui_floor_runs_a_bare_window_for_its_seconds(monkeypatch, capsys) -> None:
    pytest.importorskip("PySide6")
    monkeypatch.setitem(os.environ, "QT_QPA_PLATFORM", "offscreen")
    assert bench.main(["gui-cost", "--floor", "repaint", "--seconds", "0.5"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["floor"] == "repaint" and r["seconds"] == 0.5
    assert r["cpu_s_per_s"] == pytest.approx(r["cpu_s"] / 0.5, rel=1e-3) and r["cpu_s"] >= 0
