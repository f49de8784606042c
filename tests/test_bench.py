"""Benchmarks (training/bench.py): each subcommand prints one JSON line with consistent numbers.

Durations are tiny; the tests check keys, signs and internal consistency, never speed.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import SR, VOWELS, save_test_checkpoint, silence, voiced, write_wav
from voxgate.core.config import FeatureConfig
from voxgate.core.live_config import DEFAULT_HOP_S
from voxgate.core.model import ModelConfig, SpeakerNet
from voxgate.training import bench

TINY = dict(channels=(8, 8, 16), gru_hidden=16, gru_layers=1, attention_dim=16, embed_dim=32)


@pytest.fixture(autouse=True)
def _no_shipped_model(monkeypatch, tmp_path):
    """Make "the shipped model" absent, so defaults fall back to an untrained model."""
    monkeypatch.setenv("VOXGATE_MODEL", str(tmp_path / "absent.pt"))


@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    fc = FeatureConfig.preset("report")
    model = SpeakerNet(ModelConfig(n_mels=fc.n_mels, **TINY))
    return save_test_checkpoint(tmp_path / "tiny.pt", model, fc, threshold=0.3)


def run_cli(argv: list[str], capsys, out: Path | None = None) -> dict:
    """Run the bench CLI; returns the printed JSON (checked equal to the --out file)."""
    if out is not None:
        argv = [*argv, "--out", str(out)]
    assert bench.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    if out is not None:
        assert json.loads(out.read_text()) == result
    return result


def check_percentiles(d: dict, prefix: str = "", suffix: str = "_ms") -> None:
    p50, p95, top = (d[f"{prefix}{k}{suffix}"] for k in ("p50", "p95", "max"))
    assert 0 < p50 <= p95 <= top


def test_subcommands_registered():
    assert {"train-throughput", "features", "inference", "inference-throughput", "pipeline",
            "build-throughput", "frontend"} <= set(bench.SUBCOMMANDS)  # fmt: skip


def test_features(capsys, tmp_path):
    r = run_cli(["features", "--seconds", "0.01"], capsys, tmp_path / "f.json")
    assert r["bench"] == "features" and r["threads"] == 1
    assert set(r["presets"]) == {"report", "speaker"}
    assert r["presets"]["report"]["frames_per_s"] == 32
    assert r["presets"]["speaker"]["frames_per_s"] == 101
    for preset in r["presets"].values():
        for case, audio_s in (("chunk_1s", 1.0), ("batch_64", 64.0), ("wave_60s", 60.0)):
            c = preset[case]
            assert c["audio_s_per_call"] == audio_s and c["calls"] >= 1
            assert c["x_realtime"] > 0 and c["x_realtime_cpu"] > 0
            # x real time = audio seconds per call / seconds per call
            expected = audio_s / (c["ms_per_call"] / 1000.0)
            assert c["x_realtime"] == pytest.approx(expected, rel=1e-3)


def test_features_restores_thread_count():
    import torch

    before = torch.get_num_threads()
    r = bench.measure_features(threads=1, seconds=0.0, presets=("report",))
    assert r["threads"] == 1 and set(r["presets"]) == {"report"}
    assert torch.get_num_threads() == before


def test_inference_untrained_default(capsys):
    r = run_cli(["inference", "--iters", "3", "--warmup", "1", "--mc-passes", "2"], capsys)
    assert r["model"] == "untrained (report preset)"
    assert (r["frames"], r["n_mels"], r["embed_dim"], r["batch"]) == (32, 64, 256, 1)
    assert r["mc_passes"] == 2 and r["iters"] == 3 and r["threads"] == 1 and r["finite"]
    for case in ("features_only", "deterministic", "mc"):
        check_percentiles(r[case])
        assert r[case]["mean_ms"] > 0 and r[case]["cpu_mean_ms"] >= 0
    assert r["mc_over_deterministic"] == pytest.approx(
        r["mc"]["p50_ms"] / r["deterministic"]["p50_ms"], rel=1e-3
    )


def test_inference_checkpoint_and_speaker_preset(capsys, tiny_checkpoint):
    r = run_cli(["inference", "--model", str(tiny_checkpoint), "--iters", "2",
                 "--mc-passes", "2"], capsys)  # fmt: skip
    assert r["model"] == str(tiny_checkpoint) and r["embed_dim"] == 32
    r = bench.measure_inference(features="speaker", iters=2, warmup=0, mc_passes=2)
    assert (r["features"], r["frames"], r["n_mels"]) == ("speaker", 101, 80)


def test_inference_throughput_rows(capsys, tiny_checkpoint):
    import torch

    threads = torch.get_num_threads()
    r = run_cli(["inference-throughput", "--model", str(tiny_checkpoint), "--batch-sizes", "1,4",
                 "--mc-passes", "2", "--seconds", "0", "--no-cuda"], capsys)  # fmt: skip
    assert r["model"] == str(tiny_checkpoint) and r["unit"] == "chunks/s" and r["chunk_s"] == 1.0
    rows = {(x["device"], x["batch"], x["mode"]): x for x in r["results"]}
    assert ("cpu_1_thread", 4, "mc") in rows and ("cpu_1_thread", 1, "deterministic") in rows
    assert len(rows) == 8 and not any(d == "cuda" for d, _, _ in rows)  # 2 CPU settings x 2 x 2
    for (_, batch, mode), x in rows.items():
        assert x["passes"] == (2 if mode == "mc" else 0)
        assert x["chunks_per_s"] == pytest.approx(batch / (x["ms_per_batch"] / 1000), rel=1e-3)
    assert torch.get_num_threads() == threads
    assert bench.main(["inference-throughput", "--batch-sizes", "0"]) == 1
    assert "batch-sizes" in capsys.readouterr().err


def test_inference_rejects_bad_passes(capsys):
    assert bench.main(["inference", "--mc-passes", "1"]) == 1
    assert "mc_passes" in capsys.readouterr().err


def test_pipeline_realtime_and_fast(capsys, tmp_path, tiny_checkpoint):
    speech = np.concatenate([voiced(f0=110, formants=VOWELS[v], seconds=2.0, seed=i)
                             for i, v in enumerate("aeiou")])  # fmt: skip
    wav = write_wav(tmp_path, "speech.wav", speech)
    r = run_cli(["pipeline", "--file", str(wav), "--seconds", "2.5", "--mc-passes", "2",
                 "--model", str(tiny_checkpoint)], capsys, tmp_path / "p.json")  # fmt: skip
    assert r["file"] == str(wav) and r["file_s"] == pytest.approx(10.0)
    assert r["audio_s"] == pytest.approx(2.5) and r["looped"] is False
    assert r["enroll"]["speech_s"] >= 3.0 and r["enroll"]["n_windows"] > 0
    counts = set()
    for mode in ("realtime", "fast"):
        for kind, passes in (("deterministic", 0), ("mc", 2)):
            run = r[mode][kind]
            assert run["mc_passes"] == passes
            assert run["windows_scored"] > 0 and run["decisions"] > 0
            counts.add(run["windows_scored"])
            check_percentiles(run, "latency_")
            assert run["cpu_s"] > 0 and run["wall_s"] > 0
            assert run["cpu_pct_of_core"] == pytest.approx(100 * run["cpu_rtf"], rel=1e-3)
            assert run["x_realtime"] == pytest.approx(2.5 / run["wall_s"], rel=1e-3)
            stages = run["stage_cpu_ms_per_audio_s"]
            assert set(stages) == {"vad", "windows", "display", "features", "model", "decision"}
            assert all(v >= 0 for v in stages.values()) and stages["model"] > 0
            assert stages["vad"] > 0 and stages["features"] > 0
            # realtime runs the GUI's pipeline (with its display), fast the CLI's (without)
            assert (stages["display"] > 0) == (mode == "realtime")
            # The stages split this thread's CPU time, which the process's time includes.
            assert sum(stages.values()) <= 1000 * run["cpu_rtf"] * 1.05 + 1.0
    # Same audio, same VAD: every run scores the same windows (1-s windows, 0.5-s hop: <= 4).
    assert len(counts) == 1 and counts.pop() <= 4
    # Paced runs cannot go faster than the audio arrives.
    assert r["realtime"]["deterministic"]["wall_s"] >= 2.5 * 0.95


def test_pipeline_synthetic_loops_and_skips_mc(capsys, tiny_checkpoint):
    r = run_cli(["pipeline", "--synthetic", "--seconds", "14", "--mc-passes", "0",
                 "--modes", "fast", "--model", str(tiny_checkpoint), "--load", "1",
                 "--no-stages"], capsys)  # fmt: skip
    assert r["load_processes"] == 1
    assert r["fast"]["deterministic"]["stage_cpu_ms_per_audio_s"] is None
    assert r["file"] == "synthetic voiced" and r["file_s"] == pytest.approx(12.0)
    assert r["looped"] is True and r["audio_s"] == pytest.approx(14.0)
    assert set(r) >= {"fast", "enroll"} and "realtime" not in r
    assert set(r["fast"]) == {"deterministic"}
    # Every window is scored: the benchmark does not stop at the first final decision
    # (1-s windows every DEFAULT_HOP_S over the 14 s).
    assert r["fast"]["deterministic"]["windows_scored"] == 1 + round(13 / DEFAULT_HOP_S)


def test_busy_cores_runs_and_ends_its_processes():
    with bench.busy_cores(2) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
    assert all(p.poll() is not None for p in procs)  # killed and reaped


def test_pipeline_errors(capsys, tmp_path, tiny_checkpoint):
    assert bench.main(["pipeline", "--synthetic", "--modes", "slow"]) == 1
    assert "modes" in capsys.readouterr().err
    wav = write_wav(tmp_path, "quiet.wav", silence(5.0))
    argv = ["pipeline", "--file", str(wav), "--seconds", "1", "--model", str(tiny_checkpoint)]
    assert bench.main(argv) == 1
    assert "enrollment" in capsys.readouterr().err


def _manifest(tmp_path: Path) -> Path:
    rows = []
    for s, spk in enumerate(("alice", "bob")):
        for k in range(2):
            wave = voiced(f0=100 + 40 * s, formants=VOWELS["aeiou"[k]], seconds=3.0, seed=k)
            path = write_wav(tmp_path, f"{spk}{k}.wav", wave)
            rows.append({"corpus": "syn", "subset": "test", "speaker": spk, "session": str(k),
                         "path": path.name, "duration_s": "3.0"})  # fmt: skip
    rows.append({**rows[0], "path": "missing.wav"})  # listed but absent: left out
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return manifest


def test_build_throughput(capsys, tmp_path):
    manifest = _manifest(tmp_path)
    r = run_cli(["build-throughput", "--manifest", str(manifest), "--subset", "test",
                 "--files", "3"], capsys, tmp_path / "b.json")  # fmt: skip
    assert (r["files"], r["sources"], r["speakers"], r["skipped"]) == (3, 3, 2, 0)
    assert r["audio_hours"] == pytest.approx(9.0 / 3600, rel=1e-3)
    assert r["chunks"] >= 9 and r["size_mb"] > 0 and r["seconds"] > 0
    assert r["hours_per_minute"] == pytest.approx(r["audio_hours"] / (r["seconds"] / 60), rel=1e-3)
    assert r["x_realtime"] == pytest.approx(60 * r["hours_per_minute"], rel=1e-3)
    assert not any(p.suffix == ".h5" for p in tmp_path.rglob("*"))


def test_build_throughput_errors(capsys, tmp_path):
    assert bench.main(["build-throughput", "--manifest", str(tmp_path / "none.csv")]) == 1
    assert "manifest" in capsys.readouterr().err
    manifest = _manifest(tmp_path)
    assert bench.main(["build-throughput", "--manifest", str(manifest), "--subset", "x"]) == 1
    assert "no existing files" in capsys.readouterr().err


def test_synth_voiced_is_speech():
    from voxgate.core.vad import VoiceActivityDetector

    x = bench.synth_voiced(3.0)
    assert x.dtype == np.float32 and x.shape == (3 * SR,)
    assert math.isclose(float(np.max(np.abs(x))), 0.5, rel_tol=1e-5)
    assert VoiceActivityDetector(SR, 2).frame_flags(x).mean() > 0.8


def test_frontend_counts_its_blocks(capsys, tmp_path):
    wav = write_wav(tmp_path, "v.wav", voiced(seconds=2.0, seed=3))
    r = run_cli(["frontend", "--seconds", "1.5", "--file", str(wav)], capsys)
    assert r["blocks"] == 15 and r["display"] is True and r["pause_s"] == 0.0
    assert r["median_us_per_block"] > 0
    assert r["cpu_ms_per_audio_s"] * 1.5 >= r["median_us_per_block"] / 1e3  # a sum of 15 blocks
    quiet = run_cli(["frontend", "--seconds", "1.0", "--file", str(wav), "--no-display"], capsys)
    assert quiet["blocks"] == 10 and quiet["display"] is False
