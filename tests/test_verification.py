"""Open-set verification: recording collection, enrollment/test planning, trials, embed export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import SR, VOWELS, silence, tiny_model_config, voiced, write_wav
from voxgate.core.config import FeatureConfig
from voxgate.core.errors import DatasetError
from voxgate.core.live_config import DEFAULT_HOP_S

TINY = tiny_model_config(n_mels=64, gru_layers=1, embed_dim=16)
VOICES = {"alice": (210.0, "i"), "bob": (105.0, "a"), "carol": (160.0, "e")}


def _speech(f0: float, vowel: str, seconds: float, seed: int) -> np.ndarray:
    # voiced speech between short silences, so the VAD has something to remove
    return np.concatenate(
        [silence(0.3), voiced(f0, VOWELS[vowel], seconds, seed=seed), silence(0.3)]
    )


@pytest.fixture
def speaker_dir(tmp_path: Path) -> Path:
    """alice: 3 recordings in 2 sessions; bob: 2 recordings; carol: a single recording."""
    root = tmp_path / "voices"
    layout = {
        "alice": [("s1", 3.0), ("s1", 2.5), ("s2", 3.0)],
        "bob": [("s1", 3.0), ("s1", 3.0)],
        "carol": [("", 6.0)],
    }
    for spk, recs in layout.items():
        f0, vowel = VOICES[spk]
        for i, (session, secs) in enumerate(recs):
            folder = root / spk / session if session else root / spk
            folder.mkdir(parents=True, exist_ok=True)
            write_wav(folder, f"{spk}-{i}.wav", _speech(f0, vowel, secs, seed=i))
    (root / "notes.txt").write_text("not audio")
    return root


@pytest.fixture
def encoder():
    from voxgate.core.inference import SpeakerEncoder

    return SpeakerEncoder.untrained(FeatureConfig(), TINY, seed=0)


def test_plan_speaker_never_shares_a_recording() -> None:
    from voxgate.training.verification import plan_speaker

    sec = np.ones(SR, dtype=np.float32)
    speech = [np.tile(sec, 2), np.tile(sec, 2), np.tile(sec, 5)]
    p = plan_speaker("x", ["r1", "r2", "r3"], speech, enroll_s=3.0)
    assert p.enroll_recordings == ["r1", "r2"] and p.test_recordings == ["r3"]
    assert p.enroll_speech_s == pytest.approx(3.0) and p.test_speech_s == pytest.approx(5.0)
    # asking for more than all but the last recording: the last stays a test recording
    p = plan_speaker("x", ["r1", "r2", "r3"], speech, enroll_s=10.0)
    assert p.enroll_recordings == ["r1", "r2"] and p.test_recordings == ["r3"]
    assert p.enroll_speech_s == pytest.approx(4.0) and not p.single_recording
    p = plan_speaker("x", ["r1"], [np.tile(sec, 5)], enroll_s=2.0)
    assert p.single_recording and p.enroll_speech_s == 2.0 and p.test_speech_s == 3.0


def test_collect_recordings_folder_and_manifest(speaker_dir: Path, tmp_path: Path) -> None:
    from voxgate.training.verification import collect_recordings

    recs = collect_recordings(speaker_dir)
    assert list(recs) == ["alice", "bob", "carol"]
    assert [r.session for r in recs["alice"]] == ["s1", "s1", "s2"]
    assert [r.path.name for r in recs["alice"]] == ["alice-0.wav", "alice-1.wav", "alice-2.wav"]
    assert list(collect_recordings(speaker_dir, speakers=["bob"])) == ["bob"]
    manifest = tmp_path / "manifest.csv"
    rows = ["corpus,subset,speaker,session,path,duration_s,gender,age"]
    for spk in ("alice", "bob"):
        for r in recs[spk]:
            subset = "keep" if spk == "alice" else "drop"
            rows.append(f"syn,{subset},{spk},{r.session},{r.path.relative_to(tmp_path)},1,F,")
    manifest.write_text("\n".join(rows) + "\n")
    by_csv = collect_recordings(manifest, subsets=["keep"])
    assert list(by_csv) == ["syn-alice"] and len(by_csv["syn-alice"]) == 3
    assert by_csv["syn-alice"][0].path.is_file()
    with pytest.raises(DatasetError):
        collect_recordings(manifest, subsets=["nothing"])


def test_trials_counts_and_recording_separation(speaker_dir: Path, encoder) -> None:
    from voxgate.training.verification import (
        VoxgateBackend,
        build_plan,
        collect_recordings,
        score_plan,
        test_segments,
        trials_metrics,
    )

    plan = build_plan(collect_recordings(speaker_dir), enroll_s=2.0)
    assert [p.speaker for p in plan.speakers] == ["alice", "bob", "carol"]
    assert plan.single_recording_speakers == ["carol"]
    for sp in plan.speakers:
        assert sp.enroll_speech_s == pytest.approx(2.0, abs=0.05)
        if not sp.single_recording:
            assert not set(sp.enroll_recordings) & set(sp.test_recordings)
    alice = plan.speakers[0]
    assert [Path(r).name for r in alice.enroll_recordings] == ["alice-0.wav"]
    assert [Path(r).name for r in alice.test_recordings] == ["alice-1.wav", "alice-2.wav"]

    scored = score_plan(plan, VoxgateBackend(encoder), (1.0, 2.0))
    for t, trials in scored.items():
        expected = sum(len(w) // int(t * SR) for sp in plan.speakers for w in sp.test_waves)
        segs = test_segments(plan, t)
        assert len(trials.segments) == len(segs) == expected > 0
        for seg in segs:
            sp = next(p for p in plan.speakers if p.speaker == seg.speaker)
            assert len(seg.wave) == int(t * SR)
            if not sp.single_recording:
                assert seg.recording not in sp.enroll_recordings
        m = trials_metrics(trials)
        assert m["n_genuine"] == expected and m["n_impostor"] == expected * 2
        assert trials.scores.shape == (expected, 3)
        assert np.all(trials.genuine_mask.sum(axis=1) == 1)
        assert np.all(np.abs(trials.scores) <= 1.0 + 1e-5)
        assert m["eer"] is not None and 0.0 <= m["eer"] <= 1.0
    # carol's test segments start after her enrollment speech
    carol = [s for s in test_segments(plan, 1.0) if s.speaker == "carol"]
    assert carol and min(s.start_s for s in carol) == pytest.approx(2.0)


def test_voxgate_backend_segment_is_the_profile_of_its_windows(encoder) -> None:
    from voxgate.core.scoring import make_profile
    from voxgate.training.verification import VoxgateBackend

    be = VoxgateBackend(encoder, hop_s=0.5)
    wave = voiced(140.0, VOWELS["o"], 2.0, seed=5)
    windows = np.stack([wave[s : s + SR] for s in (0, SR // 2, SR)])  # 3 windows, hop 0.5 s
    expected = make_profile(encoder.embed(windows))
    got = be.embed_segments([wave])
    assert got.shape == (1, 16)
    np.testing.assert_allclose(got[0], expected, atol=1e-5)
    # Enrollment windows come every ENROLL_HOP_S (0.5 s) whatever the scoring hop.
    np.testing.assert_allclose(VoxgateBackend(encoder).enroll([wave]), expected, atol=1e-5)
    prof = be.enroll([wave, wave[: SR // 2]])  # a short piece is padded to one window
    assert prof.shape == (16,) and np.linalg.norm(prof) == pytest.approx(1.0, abs=1e-5)


def test_evaluate_verification_reports_single_recording(speaker_dir: Path, encoder) -> None:
    from voxgate.training.verification import VoxgateBackend, evaluate_verification

    res = evaluate_verification(
        speaker_dir, backend=VoxgateBackend(encoder), enroll_s=2.0, test_s=(1.0, 3.0)
    )
    assert res["n_speakers"] == 3 and res["single_recording_speakers"] == ["carol"]
    assert "single recording" in res["note"]
    assert set(res["by_length"]) == {"1s", "3s"}
    one = res["by_length"]["1s"]
    assert one["n_trials"] == one["n_genuine"] * 3
    assert {"eer", "min_dcf", "frr_at_far_1%", "n_speakers"} <= set(one)


def test_embed_files_per_file_and_per_window(tmp_path: Path, encoder) -> None:
    from voxgate.training.verification import embed_files

    # 1 s of silence, then 3 s of speech: windows start after the silence
    p1 = write_wav(tmp_path, "a.wav", np.concatenate([silence(1.0), voiced(120.0, seconds=3.0)]))
    p2 = write_wav(tmp_path, "b.wav", voiced(200.0, VOWELS["i"], 2.0, seed=2))
    per_file = embed_files(encoder, [p1, p2])
    assert per_file["embeddings"].shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(per_file["embeddings"], axis=1), 1.0, atol=1e-5)
    per_win = embed_files(encoder, [p1, p2], per_window=True)
    n = per_win["n_windows"]
    assert per_win["embeddings"].shape == (n.sum(), 16)
    assert per_win["file_index"].tolist() == [0] * n[0] + [1] * n[1]
    starts_a = per_win["window_starts"][: n[0]]
    assert starts_a[0] >= 0.6 and np.all(np.diff(starts_a) > 0) and starts_a[-1] <= 3.0
    assert n[0] == pytest.approx(1 + 2 / DEFAULT_HOP_S, abs=1)  # ~3 s of speech, 1-s windows


@pytest.mark.slow
def test_resemblyzer_backend_runs_on_the_same_trials(speaker_dir: Path) -> None:
    pytest.importorskip("resemblyzer")
    from voxgate.training.verification import (
        ResemblyzerBackend,
        build_plan,
        collect_recordings,
        score_plan,
    )

    plan = build_plan(collect_recordings(speaker_dir, speakers=["alice", "bob"]), enroll_s=2.0)
    trials = score_plan(plan, ResemblyzerBackend(), (1.0,))[1.0]
    assert trials.scores.shape == (len(trials.segments), 2)
    # two clearly different synthetic voices: genuine scores beat impostor scores on average
    assert trials.genuine.mean() > trials.impostor.mean()


def test_parse_id_list_inline_and_from_file(tmp_path: Path) -> None:
    from voxgate.training.verification import parse_id_list

    assert parse_id_list(" a, b,,c ") == ["a", "b", "c"]
    ids = tmp_path / "ids.txt"
    ids.write_text("# authorized\nann  # first\n\nben\n")
    assert parse_id_list(f"@{ids}") == ["ann", "ben"]
    with pytest.raises(DatasetError, match="not found"):
        parse_id_list(f"@{tmp_path / 'missing.txt'}")


@pytest.mark.parametrize("mixed", [False, True])
def test_build_and_verification_give_the_same_speaker_ids(tmp_path: Path, mixed) -> None:
    from voxgate.training.build import collect_sources
    from voxgate.training.verification import collect_recordings

    rows = ["corpus,subset,speaker,session,path"]
    for i, (corpus, spk) in enumerate(
        [("librispeech", "1089"), ("librispeech", "121"), ("msc" if mixed else "librispeech", "7")]
    ):
        write_wav(tmp_path, f"f{i}.wav", voiced(seconds=1.0, seed=i))
        rows.append(f"{corpus},test,{spk},,f{i}.wav")
    manifest = tmp_path / "m.csv"
    manifest.write_text("\ufeff" + "\n".join(rows) + "\n", encoding="utf-8")  # with a BOM
    built = sorted({s.speaker for s in collect_sources([manifest])})
    verified = sorted(collect_recordings(manifest))
    assert built == verified
    assert "librispeech-1089" in built  # prefixed whether or not corpora are mixed
    subset = ["librispeech/test"]
    assert sorted({s.speaker for s in collect_sources([manifest], subset)}) == sorted(
        collect_recordings(manifest, subsets=subset)
    )
