"""Closed-set evaluation and calibration on a tiny synthetic HDF5 file and a random model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import (
    CHUNKS_PER_FILE,
    voiced,
    write_synthetic_h5,
    write_tiny_checkpoint,
    write_wav,
)


@pytest.fixture
def h5_path(tmp_path: Path) -> Path:
    return write_synthetic_h5(tmp_path / "data.h5")


@pytest.fixture
def ckpt_path(tmp_path: Path) -> Path:
    return write_tiny_checkpoint(tmp_path / "model.pt")


def test_decision_groups_take_consecutive_chunks_of_one_file() -> None:
    from voxgate.training.evaluate import decision_groups

    # rows:          0  1  2  3  4  5  6  7  8  9 10 11 12
    file_ids = np.array([5, 2, 5, 5, 2, 9, 5, 2, 9, 9, 5, 9, 2])
    chunk_idx = np.array([3, 0, 0, 1, 2, 4, 2, 1, 0, 1, 4, 5, 3])
    groups = decision_groups(file_ids, chunk_idx, 3)
    # file 2: chunks 0,1,2 -> rows 1,7,4 (chunk 3 left over);
    # file 5: chunks 0..4 -> rows 2,3,6 (3, 4 left over);
    # file 9: chunks 0,1 | gap | 4,5 -> runs too short, nothing.
    assert groups.tolist() == [[1, 7, 4], [2, 3, 6]]
    assert decision_groups(file_ids, chunk_idx, 2).tolist() == [
        [1, 7],
        [4, 12],
        [2, 3],
        [6, 0],
        [8, 9],
        [5, 11],
    ]
    assert decision_groups(np.zeros(0), np.zeros(0), 3).shape == (0, 3)


def test_group_mean_and_profiles() -> None:
    from voxgate.training.evaluate import group_mean, speaker_profiles

    vals = np.arange(6.0)
    assert group_mean(vals, np.array([[0, 1, 2], [3, 4, 5]])).tolist() == [1.0, 4.0]
    mc = np.stack([vals, 2 * vals])  # (passes, N)
    assert group_mean(mc, np.array([[0, 1]]), axis=1).tolist() == [[0.5], [1.0]]
    emb = np.array([[3.0, 0], [0, 2.0], [1.0, 0]])
    ids, prof = speaker_profiles(emb, np.array([7, 7, 1]))
    assert ids.tolist() == [1, 7]
    np.testing.assert_allclose(prof, [[1, 0], [np.sqrt(0.5), np.sqrt(0.5)]], atol=1e-6)


def test_auth_metrics_numbers() -> None:
    from voxgate.training.evaluate import auth_metrics

    scores = np.array([0.9, 0.8, 0.4, 0.1, 0.2, 0.85])
    y = np.array([1, 1, 1, 0, 0, 0])
    m = auth_metrics(scores, y, threshold=0.5)
    assert m["far"] == pytest.approx(1 / 3) and m["frr"] == pytest.approx(1 / 3)
    assert m["confusion"] == [[2, 1], [1, 2]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["report"]["per_class"]["authorized"]["precision"] == pytest.approx(2 / 3)
    assert m["threshold_source"] == "calibrated"
    assert auth_metrics(scores, y)["threshold_source"] == "eer"


def test_evaluate_writes_metrics_and_figures(
    tmp_path: Path, h5_path: Path, ckpt_path: Path
) -> None:
    from voxgate.training.evaluate import evaluate_checkpoint
    from voxgate.training.trials import EMBEDDINGS_FILE, read_embeddings

    outsiders = tmp_path / "outsiders" / "x"
    outsiders.mkdir(parents=True)
    write_wav(outsiders, "a.wav", voiced(f0=230.0, seconds=4.0, seed=3))
    out = tmp_path / "eval"
    m = evaluate_checkpoint(
        ckpt_path,
        h5_path,
        "test",
        out_dir=out,
        impostors=outsiders.parent,
        mc_passes=3,
        batch_size=16,
    )
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["n_chunks"] == 6 * CHUNKS_PER_FILE and on_disk["n_decisions"] == 12
    for family in ("cosine", "heads"):
        auth = on_disk[family]["authentication"]
        for level, n in (("chunk", 42), ("decision", 12)):
            a = auth[level]
            assert a["n"] == n and a["n_genuine"] == n // 3
            for key in (
                "accuracy",
                "far",
                "frr",
                "eer",
                "min_dcf",
                "frr_at_far_0.2%",
                "frr_at_far_1%",
                "confusion",
                "report",
            ):
                assert key in a, (family, level, key)
            assert a["threshold_source"] == "eer"
            assert np.sum(a["confusion"]) == n
            assert set(a["report"]) >= {"per_class", "macro", "weighted", "accuracy"}
            mc = on_disk[family]["mc_dropout"][level]
            assert mc["passes"] == 3 and mc["n_confident"] + mc["n_uncertain"] == n
        ident = on_disk[family]["identification"]
        assert ident["chunk"]["n_present"] == 6
        assert np.array(ident["chunk"]["confusion"]).shape == (6, 7)
        assert 0.0 <= ident["decision"]["top1_accuracy"] <= 1.0
    assert on_disk["cosine"]["enrollment"]["n_chunks"] == 6 * CHUNKS_PER_FILE  # no augmented
    assert "speed" not in on_disk  # speed is measured by bench inference-throughput only
    emb = read_embeddings(out / EMBEDDINGS_FILE)  # the report's t-SNE input
    assert emb.embeddings.shape[0] == on_disk["n_chunks"] and emb.split == "test"
    np.testing.assert_allclose(np.linalg.norm(emb.embeddings, axis=1), 1.0, rtol=1e-4)
    assert int(emb.label.sum()) == on_disk["cosine"]["authentication"]["chunk"]["n_genuine"]
    assert len(set(emb.speaker.tolist())) == on_disk["n_speakers"] and len(emb.speakers) >= 6
    uo = on_disk["unseen_outsiders"]
    assert uo["n_files"] == 1 and uo["n_chunks"] >= 3 and uo["cosine"]["chunk"]["far"] is not None
    for name in (
        "det_chunk.png",
        "det_decision.png",
        "confusion_auth_cosine_chunk.png",
        "confusion_auth_heads_decision.csv",
        "confusion_ident_heads_chunk.png",
        "mc_dropout.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert m["figures"] == on_disk["figures"]


def test_calibration_threshold_meets_target_far(h5_path: Path, ckpt_path: Path) -> None:
    import h5py

    from voxgate.core.checkpoint import load_checkpoint
    from voxgate.training.evaluate import calibrate_checkpoint

    threshold_before = load_checkpoint(ckpt_path)[1]["threshold"]
    cal = calibrate_checkpoint(ckpt_path, h5_path, "val", target_far=0.1)
    model, meta = load_checkpoint(ckpt_path)
    assert meta["threshold"] == threshold_before  # the client's threshold is not touched
    assert cal["n_impostor"] == 4 * CHUNKS_PER_FILE and cal["n_genuine"] == 2 * CHUNKS_PER_FILE
    assert meta["calibration"]["closed_set"]["cosine_3s"] == pytest.approx(cal["cosine_3s"])
    assert set(cal) >= {"target_far", "split", "cosine_1s", "cosine_3s", "auth_prob_1s", "source"}
    # Recompute the scores from the raw HDF5 columns with plain numpy and the model alone,
    # none of the evaluation helpers under test.
    with h5py.File(h5_path, "r") as f:
        feats = f["features"][:].astype(np.float32)
        split, aug = f["split"][:], f["aug"][:]
        spk, label, chunk = f["speaker"][:], f["label"][:], f["chunk_index"][:]
    with torch.inference_mode():
        emb = model(torch.from_numpy(feats)).numpy()
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    train, val = (split == 0) & (aug == 0), split == 1
    prof = np.stack([emb[train & (spk == s)].mean(axis=0) for s in (0, 1)])  # authorized
    prof /= np.linalg.norm(prof, axis=1, keepdims=True)
    cos1 = (emb[val] @ prof.T).max(axis=1)
    y = label[val]
    eps = 1e-6  # float32 sums in another order than the evaluation's
    assert np.mean(cos1[y == 0] >= cal["cosine_1s"] + eps) <= 0.1
    # 3-chunk decisions: chunks 0-2 and 3-5 of each validation recording (one per speaker)
    groups = [(spk[val] == s) & (chunk[val] // 3 == k) for s in range(6) for k in (0, 1)]
    cos3 = np.array([cos1[g].mean() for g in groups])
    y3 = np.array([y[g][0] for g in groups])
    assert np.mean(cos3[y3 == 0] >= cal["cosine_3s"] + eps) <= 0.1
    with torch.inference_mode():
        p = model.head_probs(torch.from_numpy(emb[val]), "authentication")[:, 1].numpy()
    assert np.mean(p[y == 0] >= cal["auth_prob_1s"]) <= 0.1
