"""The evaluate / calibrate / evaluate-verification / embed subcommands, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import (
    VOWELS,
    silence,
    voiced,
    write_synthetic_h5,
    write_tiny_checkpoint,
    write_wav,
)
from voxgate.cli import main


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    h5 = write_synthetic_h5(tmp_path / "data.h5")
    ckpt = write_tiny_checkpoint(tmp_path / "model.pt")
    return h5, ckpt


@pytest.fixture
def voices(tmp_path: Path) -> Path:
    root = tmp_path / "voices"
    for spk, f0, vowel in (("a", 110.0, "a"), ("b", 190.0, "i")):
        for i in range(2):
            (root / spk).mkdir(parents=True, exist_ok=True)
            wave = np.concatenate([silence(0.2), voiced(f0, VOWELS[vowel], 3.6, seed=i)])
            write_wav(root / spk, f"{i}.wav", wave)
    return root


def test_evaluate_cli_writes_metrics(files, tmp_path: Path, capsys) -> None:
    h5, ckpt = files
    out = tmp_path / "eval"
    rc = main(
        [
            "evaluate",
            "--model",
            str(ckpt),
            "--data",
            str(h5),
            "--mc-passes",
            "2",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "test split: 42 chunks, 12 decisions" in text and "cosine auth" in text
    m = json.loads((out / "metrics.json").read_text())
    assert m["cosine"]["mc_dropout"]["chunk"]["passes"] == 2 and "speed" not in m
    assert (out / "det_decision.png").is_file()


def test_closed_set_calibration_sets_head_figures_not_the_client_threshold(files, capsys) -> None:
    from voxgate.core.checkpoint import read_checkpoint

    h5, ckpt = files
    assert main(["calibrate", "--model", str(ckpt), "--data", str(h5), "--dry-run"]) == 0
    assert read_checkpoint(ckpt)["threshold"] is None
    assert main(["calibrate", "--model", str(ckpt), "--data", str(h5), "--target-far", "0.05"]) == 0
    meta = read_checkpoint(ckpt)
    assert meta["calibration"]["closed_set"]["split"] == "val"
    assert meta["threshold"] is None  # only decisions replayed on held-out voices set it
    # a bad FAR is an argparse error (exit 2), not a traceback
    with pytest.raises(SystemExit) as exc:
        main(["calibrate", "--model", str(ckpt), "--data", str(h5), "--target-far", "5"])
    assert exc.value.code == 2


@pytest.fixture
def held_out(tmp_path: Path) -> Path:
    """Three synthetic voices, two recordings each: 7 s to enroll, 7 s to test."""
    root = tmp_path / "held-out"
    for spk, f0, vowel in (("a", 110.0, "a"), ("b", 190.0, "i"), ("c", 150.0, "u")):
        (root / spk).mkdir(parents=True)
        for i in range(2):
            wave = np.concatenate([silence(0.3), voiced(f0, VOWELS[vowel], 7.0, seed=i)])
            write_wav(root / spk, f"{i}.wav", wave, subtype="FLOAT")
    return root


def test_calibration_replays_the_decisions_verify_makes(files, held_out, tmp_path, capsys) -> None:
    """The contract: the score calibration saw for a clip is the score verify reports."""
    import soundfile as sf

    from voxgate.core.checkpoint import read_checkpoint
    from voxgate.core.inference import SpeakerEncoder
    from voxgate.training.calibration import prepare_clips, replay_trials

    _, ckpt = files
    args = ["calibrate", "--model", str(ckpt), "--verification", str(held_out)]
    assert main([*args, "--enroll-s", "6", "--clip-s", "3", "--target-far", "0.2"]) == 0
    meta = read_checkpoint(ckpt)
    cal = meta["calibration"]
    assert meta["threshold"] == pytest.approx(cal["threshold"]) and cal["k_windows"] == 3
    at = cal["at_threshold"]
    assert at["n_impostor"] == 2 * at["n_genuine"] > 0 and at["far"] <= 0.2
    # Replay again, then run the CLI on the very clips, enrolled the same way.
    encoder = SpeakerEncoder.from_checkpoint(ckpt)
    clips = prepare_clips(held_out, enroll_s=6, clip_s=3)
    trials = replay_trials(encoder, clips)
    home = tmp_path / "store"
    for spk, waves in clips.enroll.items():
        path = write_wav(tmp_path, f"enroll-{spk}.wav", np.concatenate(waves), subtype="FLOAT")
        cmd = ["enroll", spk, "--model", str(ckpt), "--profiles", str(home), "--file", str(path)]
        assert main(cmd) == 0
    capsys.readouterr()
    by_clip = {cid: w for cid, _, w in clips.clips}
    for t in trials[:6]:
        path = tmp_path / "clip.wav"
        sf.write(path, by_clip[t.clip], 16000, subtype="FLOAT")
        cmd = ["verify", "--model", str(ckpt), "--profiles", str(home), "--user", t.profile]
        main([*cmd, "--json", "--scores", "--no-lockout", "--file", str(path)])
        row = json.loads(capsys.readouterr().out)
        assert row["score"] == pytest.approx(t.score, abs=1e-4), t


def test_verification_cli_writes_metrics(files, voices, tmp_path: Path, capsys) -> None:
    _, ckpt = files
    out = tmp_path / "ver"
    spk_file = tmp_path / "speakers.txt"
    spk_file.write_text("a\nb  # both\n")
    rc = main(
        [
            "evaluate-verification",
            str(voices),
            "--model",
            str(ckpt),
            "--enroll-s",
            "1.5",
            "--test-s",
            "1",
            "--speakers-file",
            str(spk_file),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_speakers"] == 2 and list(m["by_length"]) == ["1s"]
    one = m["by_length"]["1s"]
    assert one["n_impostor"] == one["n_genuine"] > 0
    assert "EER" in capsys.readouterr().out


def test_verification_cli_missing_source_is_an_error(files, tmp_path: Path, capsys) -> None:
    _, ckpt = files
    rc = main(["evaluate-verification", str(tmp_path / "nope"), "--model", str(ckpt)])
    assert rc == 1 and "not a folder" in capsys.readouterr().err


def test_embed_cli_shapes(files, voices, tmp_path: Path) -> None:
    _, ckpt = files
    wavs = sorted(voices.rglob("*.wav"))[:3]
    out = tmp_path / "emb.npz"
    assert main(["embed", "--model", str(ckpt), *map(str, wavs), "--out", str(out)]) == 0
    with np.load(out) as z:
        assert z["embeddings"].shape == (3, 16) and z["names"].shape == (3,)
        np.testing.assert_allclose(np.linalg.norm(z["embeddings"], axis=1), 1.0, atol=1e-5)
    out_w = tmp_path / "win.npz"
    assert (
        main(["embed", "--model", str(ckpt), str(wavs[0]), "--out", str(out_w), "--per-window"])
        == 0
    )
    with np.load(out_w) as z:
        n = int(z["n_windows"][0])
        assert n >= 3 and z["embeddings"].shape == (n, 16)
        # the client's windows: every 0.5 s from the file's start, speech ones only
        assert z["window_starts"].shape == (n,) and np.allclose(z["window_starts"] % 0.5, 0)


def test_ood_suite_scores_every_set_on_the_same_trials(files, tmp_path: Path, capsys) -> None:
    """One command: test-other, MSC held-out, EmoDB (enroll on neutral) and FSDD."""
    _, ckpt = files
    rows = ["corpus,subset,speaker,session,path"]
    sets = [("librispeech", "test-other"), ("msc", "heldout"), ("emodb", "eval"), ("fsdd", "eval")]
    for corpus, subset in sets:
        for k, (spk, f0) in enumerate((("a", 110.0), ("b", 200.0))):
            for i, session in enumerate(("neutral", "anger", "anger")):
                name = f"{corpus}-{spk}-{i}.wav"
                write_wav(tmp_path, name, voiced(f0, VOWELS["a" if k else "i"], 3.2, seed=i))
                rows.append(
                    f"{corpus},{subset},{spk},{session if corpus == 'emodb' else ''},{name}"
                )
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(rows) + "\n")
    args = ["evaluate-verification", str(manifest), "--model", str(ckpt), "--suite", "ood"]
    assert main([*args, "--enroll-s", "3", "--test-s", "1,3", "--out", str(tmp_path / "o")]) == 0
    table = capsys.readouterr().out
    for label in ("test-other", "MSC held-out", "EmoDB", "FSDD"):
        assert sum(label in line for line in table.splitlines()) == 2  # 1 s and 3 s rows
    data = json.loads((tmp_path / "o" / "ood.json").read_text())
    emodb = [r for r in data["rows"] if r["set"].startswith("EmoDB") and r["test_s"] == 1.0][0]
    # enrolled on the neutral recording only: its 2 emotional recordings are the tests
    assert emodb["n_genuine"] == 2 * 2 * 3 and emodb["n_impostor"] == emodb["n_genuine"]

    from voxgate.training import cohort

    co = tmp_path / "cohort.npz"
    assert cohort.main(["--model", str(ckpt), "--manifest", str(manifest), "--out", str(co),
                        "--subsets", "msc/heldout", "fsdd/eval"]) == 0  # fmt: skip
    assert main([*args, "--test-s", "1", "--cohort", str(co), "--out", str(tmp_path / "n")]) == 0
    rows = json.loads((tmp_path / "n" / "ood.json").read_text())["rows"]
    plain = [r for r in rows if r["backend"] == "voxgate"]
    normed = [r for r in rows if r["backend"] == "voxgate+asnorm"]
    assert len(normed) == len(plain) == 4
    for a, b in zip(plain, normed):  # the same trials, other scores
        assert (a["set"], a["n_genuine"], a["n_impostor"]) == (
            b["set"],
            b["n_genuine"],
            b["n_impostor"],
        )
        assert a["mean_genuine"] != b["mean_genuine"]


def _fake_calibration(monkeypatch, prepare, trials) -> None:
    """calibrate() with these clips and trials, a stub encoder and an empty checkpoint."""
    from voxgate.training import calibration as C

    class Enc:
        class feature_config:
            chunk_s = 1.0

    monkeypatch.setattr(
        "voxgate.core.inference.SpeakerEncoder.from_checkpoint", lambda *a, **k: Enc
    )
    monkeypatch.setattr("voxgate.core.checkpoint.read_checkpoint", lambda p: {"calibration": {}})
    monkeypatch.setattr(C, "prepare_clips", prepare)
    monkeypatch.setattr(C, "replay_trials", trials)


def test_calibration_threshold_holds_on_every_set(monkeypatch) -> None:
    """Two sets, one easy, one hard: the stored threshold is the hard set's."""
    from voxgate.training import calibration as C

    def fake_trials(encoder, cs, cfg):
        base = 0.9 if cs.source == "hard" else 0.1
        imp = [C.Trial(f"c{i}", "x", "y", "rejected", base - i / 1000) for i in range(200)]
        return imp + [C.Trial("g", "y", "y", "accepted", 0.95)]

    _fake_calibration(monkeypatch, lambda src, **kw: C.ClipSet({}, [], [], str(src)), fake_trials)
    cal = C.calibrate("m.pt", [("easy", None), ("hard", None)], 0.01, write=False)
    hard = [p for p in cal["per_set"] if p["data"] == "hard"][0]
    assert cal["threshold"] == hard["set_threshold"] and hard["far"] <= 0.01
    easy = [p for p in cal["per_set"] if p["data"] == "easy"][0]
    assert easy["set_threshold"] < cal["threshold"] and easy["far"] == 0.0


def test_calibration_keeps_only_the_held_out_speakers(monkeypatch) -> None:
    """``--speakers @file``: every set is restricted to those ids, and the block says so."""
    from voxgate.training import calibration as C

    seen = []

    def fake_prepare(src, **kw):
        seen.append((src, kw["speakers"]))
        return C.ClipSet({}, [], [], str(src))

    def fake_trials(encoder, cs, cfg):
        return [C.Trial(f"c{i}", "x", "y", "rejected", i / 1000) for i in range(200)]

    _fake_calibration(monkeypatch, fake_prepare, fake_trials)
    cal = C.calibrate("m.pt", [("a", None), ("b", None)], 0.01, write=False, speakers=["s2", "s1"])
    assert seen == [("a", ["s2", "s1"]), ("b", ["s2", "s1"])]
    assert cal["speakers"] == ["s1", "s2"]
