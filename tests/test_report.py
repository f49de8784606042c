"""Tests for training/report.py: figures and the self-contained HTML report."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from conftest import write_h5_dataset
from voxgate.core.config import FeatureConfig
from voxgate.core.errors import ConfigError, DatasetError
from voxgate.training import report as R
from voxgate.training.trials import (
    EMBEDDINGS_FILE,
    SCORES_FILE,
    EmbeddingSet,
    write_embeddings,
    write_scores,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T, M = 32, 64
SPEAKERS = ["s0", "s1", "s2", "s3", "s4", "s5"]
AUTHORIZED = ["s0", "s1"]
GENDERS = ["M", "F", "M", "F", "", "M"]
RATE = 0.5  # chunks per second of raw duration, exact in the fixture
N_AUG = 2  # augmented copies per train chunk


def _write_h5(path: Path) -> dict:
    """A tiny dataset in the contract's layout; returns the numbers it wrote."""
    rng = np.random.default_rng(0)
    rows: dict[str, list] = {
        k: [] for k in ("label", "speaker", "file_id", "split", "aug", "chunk_index", "lengths")
    }
    feats: list[np.ndarray] = []
    sources = []
    for s, spk in enumerate(SPEAKERS):
        auth = spk in AUTHORIZED
        for r, dur in enumerate((4.0, 6.0, 8.0) if s % 2 == 0 else (6.0, 8.0, 10.0)):
            split = r  # one recording per split: 0 train, 1 val, 2 test
            n = int(dur * RATE)
            fid = len(sources)
            sources.append(
                (f"/data/{spk}/{r}.flac", spk, f"{spk}-{r}", "synthetic", "test-clean",
                 GENDERS[s], dur, dur * 0.8, n, split)
            )  # fmt: skip
            for c in range(n):
                for a in range(1 + (N_AUG if split == 0 else 0)):
                    x = rng.uniform(-80, -20, size=(T, M))
                    if auth:
                        x[:, : M // 2] += 10.0  # authorized: more low-band energy
                    length = T if c < n - 1 else T // 2  # final partial chunk
                    x[length:] = -80.0
                    feats.append(x.astype(np.float16))
                    for key, v in (("label", int(auth)), ("speaker", s), ("file_id", fid),
                                   ("split", split), ("aug", a), ("chunk_index", c),
                                   ("lengths", length)):  # fmt: skip
                        rows[key].append(v)
    # Chunked and compressed like training/build.py, with a small chunk to span several.
    write_h5_dataset(
        path, np.stack(feats), rows, sources, feature_config=FeatureConfig(), speakers=SPEAKERS,
        authorized=AUTHORIZED, aug_tags=("none", "noise_low", "noise_high"),
        build_config={"min_chunk_fraction": 0.5}, fingerprint="abc123", chunks=(8, T, M),
        compression="lzf",
    )  # fmt: skip
    aug = np.asarray(rows["aug"])
    label = np.asarray(rows["label"])
    return {
        "n_chunks": len(feats),
        "n_original": int((aug == 0).sum()),
        "n_auth_original": int(((aug == 0) & (label == 1)).sum()),
        "n_recordings": len(sources),
    }


EPOCHS = 2


def _write_run(run_dir: Path, heads: tuple[str, ...]) -> dict[str, list[float]]:
    """history.json of EPOCHS epochs as ``voxgate train`` writes it (batch scalars in the
    first record's ``batches``); returns the series each tag should read back as."""
    written: dict[str, list[float]] = {}
    head_keys = (("train_acc", "train_acc"), ("val_acc", "accuracy"), ("val_mc_spread", "mc_spread"),
                 ("val_macro_f1", "macro_f1"), ("val_macro_precision", "macro_precision"),
                 ("val_macro_recall", "macro_recall"))  # fmt: skip
    batches: dict[str, list[list[float]]] = {}
    for step in range(6):
        for tag, value in (("batch/loss", 2.0 - 0.2 * step), ("batch/lr", 1e-3),
                           ("batch/acc", 0.4 + 0.05 * step)):  # fmt: skip
            batches.setdefault(tag, []).append([step, value])
            written.setdefault(tag, []).append(value)
    records = []
    for e in range(EPOCHS):
        rec: dict = {"epoch": e, "heads": {}, "batches": batches if e == 0 else {}}
        for key, val in (("train_loss", 1.5 - 0.5 * e), ("val_loss", 1.6 - 0.4 * e),
                         ("lr", 1e-3 * (1 - 0.5 * e)), ("samples_per_s", 900.0 + e)):  # fmt: skip
            rec[key] = val
            written.setdefault(f"epoch/{key}", []).append(val)
        rec["selection"] = 0.5 + 0.1 * e
        multi = len(heads) > 1
        if multi:
            written.setdefault("epoch/val_macro_f1", []).append(rec["selection"])
        for k, h in enumerate(heads):
            suffix = f"/{h}" if multi else ""
            values = (0.6 + 0.1 * e, 0.55 + 0.1 * e + 0.01 * k, 0.05, 0.5 + 0.1 * e, 0.5, 0.5)
            rec["heads"][h] = {key: v for (_, key), v in zip(head_keys, values)}
            for (tag, _), v in zip(head_keys, values):
                written.setdefault(f"epoch/{tag}{suffix}", []).append(v)
        records.append(rec)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "history.json").write_text(json.dumps(records))
    return written


def _metrics_json() -> dict:
    """A metrics.json in ``voxgate evaluate``'s layout (training/evaluate.py)."""
    labels = ["outsider", "authorized"]
    per = {"outsider": {"precision": 0.9, "recall": 0.8, "f1": 0.847, "support": 10},
           "authorized": {"precision": 0.7, "recall": 0.85, "f1": 0.768, "support": 20}}  # fmt: skip
    auth = {
        "eer": 0.1234, "eer_threshold": 0.61, "min_dcf": 0.4, "threshold": 0.65,
        "threshold_source": "calibrated", "far": 0.02, "frr": 0.3, "accuracy": 0.8,
        "report": {"per_class": per, "macro": {"precision": 0.8, "recall": 0.825, "f1": 0.8075},
                   "weighted": {"precision": 0.77, "recall": 0.83, "f1": 0.79}, "accuracy": 0.8},
        "confusion": [[8, 2], [3, 17]],
    }  # fmt: skip
    ident = {
        "top1_accuracy": 0.6, "macro_f1": 0.55,
        "per_class": {s: {"precision": 0.6, "recall": 0.5, "f1": 0.55, "support": 5} for s in SPEAKERS[:3]},
        "confusion_labels": SPEAKERS[:3] + ["other"],
        "confusion": [[3, 1, 0, 1], [0, 4, 1, 0], [1, 0, 3, 1]],
    }  # fmt: skip
    assert len(labels) == 2
    return {
        "split": "test",
        "cosine": {"authentication": {"chunk": auth, "decision": dict(auth, eer=0.05)},
                   "identification": {"chunk": ident}},
        "heads": None,
    }  # fmt: skip


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("report")
    info = _write_h5(root / "data.h5")
    info["run_a"] = _write_run(root / "runs" / "run_a", ("authentication",))
    info["run_b"] = _write_run(root / "runs" / "run_b", ("authentication", "identification"))
    (root / "eval").mkdir()
    (root / "eval" / "metrics.json").write_text(json.dumps(_metrics_json()))
    _write_scores(root / "data.h5", root / "eval" / SCORES_FILE)
    _write_embeddings(root / "data.h5", root / "eval" / EMBEDDINGS_FILE)
    return root, info


def _write_scores(data: Path, path: Path) -> None:
    """scores.npz as ``voxgate evaluate`` writes it: one score per original test chunk."""
    summary = R.load_dataset_summary(data)
    y = summary.label[(summary.split == 2) & (summary.aug == 0)]
    scores = np.random.default_rng(1).normal(0.3 + 0.4 * y, 0.2)
    write_scores({("cosine", "chunk"): (scores, y)}, path)


def _write_embeddings(data: Path, path: Path) -> None:
    """embeddings.npz as ``voxgate evaluate`` writes it: one unit embedding per original test
    chunk (clustered by speaker), with its class and speaker."""
    summary = R.load_dataset_summary(data)
    test = (summary.split == 2) & (summary.aug == 0)
    spk = summary.speaker[test]
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(len(SPEAKERS), 16))
    x = centres[spk] + 0.1 * rng.normal(size=(len(spk), 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    write_embeddings(EmbeddingSet(x, summary.label[test], spk, SPEAKERS, "test"), path)


@pytest.fixture(scope="module")
def built(fixture_dir) -> tuple[R.ReportResult, dict]:
    """One full report: dataset, two runs and an evaluation folder (metrics.json, scores.npz
    and embeddings.npz, read from there by default)."""
    root, info = fixture_dir
    result = R.build_report(
        root / "data.h5",
        root / "out",
        runs=[root / "runs" / "run_a", root / "runs" / "run_b"],
        eval_dir=root / "eval",
        seed=0,
    )
    return result, info


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict[str, str]] = []
        self.ids: list[str] = []
        self.captions = 0
        self.cells: list[str] = []
        self._in_td = False
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if tag == "figure":
            self.ids.append(a.get("id", ""))
        if tag == "figcaption":
            self.captions += 1
        if tag in ("td", "th"):
            self._in_td = True
        if tag in ("link", "script") or (tag == "img" and not a.get("src", "").startswith("data:")):
            self.external.append(tag)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_td = False

    def handle_data(self, data):
        if self._in_td:
            self.cells.append(data.strip())


EXPECTED = {
    "class_balance", "speaker_chunks", "gender", "durations", "duration_vs_chunks",
    "mean_spectrograms", "tsne_features", "training_curves", "val_accuracy_mc", "batch_curves",
    "confusion_authentication", "confusion_identification", "per_class_authentication",
    "per_class_identification",
}  # fmt: skip


def test_report_writes_every_figure_as_valid_png(built):
    result, info = built
    names = {f.name for f in result.figures}
    assert EXPECTED <= names
    assert {"tsne_embeddings", "det_curve", "score_histogram"} <= names
    assert not any("t-SNE" in m for m in result.missing)
    for f in result.figures:
        data = f.path.read_bytes()
        assert data.startswith(PNG_MAGIC), f.name
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width >= 300 and height >= 200, (f.name, width, height)
        assert f.caption


def test_index_html_is_self_contained_with_numbers(built):
    result, info = built
    text = result.index.read_text(encoding="utf-8")
    p = _Collector()
    p.feed(text)
    p.close()
    assert not p.external  # no scripts, stylesheets or remote images
    assert "http://" not in text and "https://" not in text
    assert len(p.imgs) == len(result.figures) == p.captions
    for fig in result.figures:
        assert fig.name in p.ids
        m = re.search(
            rf"<figure id='{fig.name}'>.*?src='data:image/png;base64,([^']+)'", text, re.S
        )
        assert m is not None, fig.name
        assert base64.b64decode(m.group(1)) == fig.path.read_bytes()
    # Key numbers equal what the fixture wrote.
    assert str(info["n_chunks"]) in p.cells
    assert str(info["n_original"]) in p.cells
    assert str(info["n_auth_original"]) in p.cells
    assert result.numbers["chunks_total"] == info["n_chunks"]
    assert result.numbers["chunks_original"] == info["n_original"]
    assert result.numbers["recordings"] == info["n_recordings"]
    assert result.numbers["augmentation_multiplier"] == pytest.approx(1 + N_AUG)
    assert "3.00×" in p.cells  # the stated multiplier
    assert "0.1234" in p.cells  # EER from metrics.json


def test_model_scores_fill_what_metrics_json_lacks(built, fixture_dir):
    result, info = built
    root, _ = fixture_dir
    summary = R.load_dataset_summary(root / "data.h5")
    test = (summary.split == 2) & (summary.aug == 0)
    assert result.numbers["eval.test chunks scored"] == int(test.sum())
    assert 0.0 <= result.numbers["eval.det_eer"] <= 1.0
    # metrics.json keeps precedence for what it has.
    assert result.numbers["eval.cosine authentication chunk: EER"] == pytest.approx(0.1234)
    assert not any("DET" in m for m in result.missing)


def test_chunk_rate_uses_original_chunks_only(built):
    result, _ = built
    # With augmented copies counted the slope would be 3x higher on the train recordings.
    assert result.numbers["chunks_per_second_slope"] == pytest.approx(RATE, abs=1e-9)
    assert result.numbers["chunks_per_second_mean"] == pytest.approx(RATE, abs=1e-9)


def test_chunk_rate_fit_recovers_slope_and_rates():
    d = np.array([2.0, 5.0, 10.0, 40.0, np.nan, 0.0])
    fit = R.chunk_rate_fit(d, 0.8 * np.nan_to_num(d) + 1.0)
    assert fit.slope == pytest.approx(0.8)
    assert fit.intercept == pytest.approx(1.0)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.rates.shape == (4,)  # NaN and zero durations skipped
    assert fit.rates[0] == pytest.approx(0.8 + 1.0 / 2.0)


def test_recording_table_counts_chunks_per_recording(fixture_dir):
    root, _ = fixture_dir
    summary = R.load_dataset_summary(root / "data.h5")
    rec = R.recording_table(summary)
    np.testing.assert_array_equal(rec["chunks"], (rec["duration_s"] * RATE).astype(int))
    train = rec["split"] == 0
    np.testing.assert_array_equal(rec["aug_chunks"][train], N_AUG * rec["chunks"][train])
    assert (rec["aug_chunks"][~train] == 0).all()
    assert list(rec["gender"][::3]) == ["M", "F", "M", "F", "", "M"]
    assert (rec["label"] == 1).sum() == 3 * len(AUTHORIZED)


def test_masked_mean_and_pooled_features_ignore_padding():
    feats = np.zeros((2, 4, 3))
    feats[0] = 1.0
    feats[1, :2] = 3.0
    feats[1, 2:] = 1000.0  # padding, must be ignored
    lengths = np.array([4, 2])
    mean = R.masked_mean_spectrogram(feats, lengths)
    np.testing.assert_allclose(mean[:2], 2.0)
    np.testing.assert_allclose(mean[2:], 1.0)
    pooled = R.pooled_features(feats, lengths)
    assert pooled.shape == (2, 6)
    np.testing.assert_allclose(pooled[1], [3, 3, 3, 0, 0, 0])


def test_read_features_matches_direct_indexing(fixture_dir):
    import h5py

    root, info = fixture_dir
    idx = np.array([0, 3, 7, 8, 9, 30, info["n_chunks"] - 1])
    got = R._read_features(root / "data.h5", idx)
    with h5py.File(root / "data.h5", "r") as f:
        want = f["features"][idx].astype(np.float32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_read_run_scalars_and_tags(fixture_dir):
    root, info = fixture_dir
    scalars = R.read_run_scalars(root / "runs" / "run_b")
    assert set(scalars) == set(info["run_b"])
    steps, vals = scalars["epoch/val_acc/identification"]
    np.testing.assert_array_equal(steps, np.arange(EPOCHS))
    np.testing.assert_allclose(vals, info["run_b"]["epoch/val_acc/identification"], rtol=1e-6)
    assert R.split_tag("epoch/val_acc/identification") == ("epoch/val_acc", "identification")
    assert R.split_tag("epoch/val_acc") == ("epoch/val_acc", "")
    with pytest.raises(ConfigError):
        R.read_run_scalars(root / "no_such_run")


def test_eval_from_metrics_maps_evaluate_layout():
    data = R.eval_from_metrics(_metrics_json())
    np.testing.assert_array_equal(data.auth_confusion, [[8, 2], [3, 17]])
    assert data.eer == pytest.approx(0.1234) and data.threshold == pytest.approx(0.65)
    assert data.id_confusion.shape == (3, 4)
    assert data.id_col_labels[-1] == "other" and data.id_labels == SPEAKERS[:3]
    assert data.id_report["accuracy"] == pytest.approx(0.6)
    assert data.summary["cosine authentication decision: EER"] == pytest.approx(0.05)
    assert data.genuine is None  # no per-trial scores in metrics.json


def test_partial_metrics_render_what_exists(tmp_path):
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "metrics.json").write_text(
        json.dumps({"cosine": {"authentication": {"chunk": {"confusion": [[5, 1], [2, 9]]}}}})
    )
    result = R.build_report(None, tmp_path / "out", eval_dir=tmp_path / "ev")
    assert [f.name for f in result.figures] == ["confusion_authentication"]
    missing = " ".join(result.missing)
    for what in (
        "identification confusion",
        "per-class",
        "DET",
        "score histograms",
        "--data",
        "--run",
        "t-SNE of model embeddings",
    ):
        assert what in missing
    text = result.index.read_text()
    assert "Not shown" in text and "<li>" in text


def test_bad_inputs_raise_typed_errors(tmp_path):
    with pytest.raises(DatasetError):
        R.build_report(tmp_path / "missing.h5", tmp_path / "out")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(DatasetError):
        R.load_dataset_summary(tmp_path / "junk.h5")
    with pytest.raises(ConfigError):
        R.build_report(None, tmp_path / "out", eval_dir=tmp_path)  # no metrics.json
    with pytest.raises(ConfigError, match="embeddings"):
        R.build_report(None, tmp_path / "out", embeddings=tmp_path / "missing.npz")


def test_figure_rendering_is_deterministic(tmp_path):
    counts = {"speakers": (2, 4), "chunks": (30, 50)}
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    R.fig_class_balance(counts).savefig(a, dpi=R.DPI, metadata={"Software": None})
    R.fig_class_balance(counts).savefig(b, dpi=R.DPI, metadata={"Software": None})
    assert a.read_bytes() == b.read_bytes()
