"""The dataset section of ``voxgate report``: tables and figures from a DatasetSummary."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from .plots import (
    TOP_SPEAKERS,
    fig_class_balance,
    fig_duration_vs_chunks,
    fig_durations,
    fig_gender,
    fig_mean_spectrograms,
    fig_speaker_chunks,
    fig_tsne,
)
from .report_data import (
    DatasetSummary,
    _class_counts,
    _read_features,
    _sample,
    chunk_rate_fit,
    masked_mean_spectrogram,
    pooled_features,
    recording_table,
    tsne_2d,
)
from .report_html import ReportBuilder, pct

__all__ = ["dataset_section"]


def dataset_section(
    rep: ReportBuilder, summary: DatasetSummary, *, seed: int, max_tsne: int, max_spec: int
) -> None:
    """Tables and figures of the dataset: classes, splits, augmentation, speakers, gender,
    durations, spectrograms, t-SNE of pooled features."""
    rec = recording_table(summary)
    counts = _class_counts(summary, rec)
    _class_split_tables(rep, summary, rec, counts)
    multiplier = _summary_tables(rep, summary, rec, counts)
    _balance_figures(rep, summary, counts)
    _gender_figure(rep, summary, rec)
    _duration_figures(rep, summary, rec, multiplier)
    rng = np.random.default_rng(seed)
    _spectrogram_figure(rep, summary, rng, max_spec)
    _tsne_figure(rep, summary, rng, seed=seed, max_tsne=max_tsne)


def _class_split_tables(
    rep: ReportBuilder, summary: DatasetSummary, rec: dict[str, np.ndarray], counts: dict
) -> None:
    orig = summary.aug == 0
    n_orig, n_all = int(orig.sum()), summary.n_chunks
    rep.numbers.update(
        {
            "chunks_total": n_all,
            "chunks_original": n_orig,
            "recordings": int(len(rec["chunks"])),
            "speakers": len(summary.speakers),
            "authorized": list(summary.authorized),
        }
    )
    # Tables: classes and splits.
    rows = [
        [group, f"{a:,}", f"{o:,}", f"{a + o:,}", pct(a, a + o)]
        for group, (a, o) in counts.items()
    ]
    rep.table(
        "Dataset",
        "Class balance",
        ["", "authorized", "outsiders", "total", "authorized share"],
        rows,
    )
    rows = []
    for k, name in enumerate(summary.split_names):
        sel = summary.split == k
        rows.append(
            [
                name,
                f"{int((rec['split'] == k).sum()):,}",
                f"{int((sel & orig & (summary.label == 1)).sum()):,}",
                f"{int((sel & orig & (summary.label == 0)).sum()):,}",
                f"{int((sel & orig).sum()):,}",
                f"{int(sel.sum()):,}",
            ]
        )
        rep.numbers[f"chunks_{name}"] = int(sel.sum())
        rep.numbers[f"chunks_{name}_original"] = int((sel & orig).sum())
    rows.append(
        [
            "all",
            f"{len(rec['chunks']):,}",
            f"{counts['chunks (original)'][0]:,}",
            f"{counts['chunks (original)'][1]:,}",
            f"{n_orig:,}",
            f"{n_all:,}",
        ]
    )
    rep.table(
        "Dataset",
        "Splits (by source recording)",
        ["split", "recordings", "authorized chunks", "outsider chunks", "original chunks",
         "all chunks (with augmented)"],  # fmt: skip
        rows,
    )


def _summary_tables(
    rep: ReportBuilder, summary: DatasetSummary, rec: dict[str, np.ndarray], counts: dict
) -> float:
    """Augmentation and summary tables; returns the train-split augmentation multiplier."""
    orig = summary.aug == 0
    train = summary.split == 0
    n_train_orig = int((train & orig).sum())
    multiplier = int(train.sum()) / n_train_orig if n_train_orig else float("nan")
    rep.numbers["augmentation_multiplier"] = multiplier
    aug_rows = [
        [tag, f"{int((summary.aug == k).sum()):,}"] for k, tag in enumerate(summary.aug_tags)
    ]
    aug_rows.append(["train-split multiplier (all / original)", f"{multiplier:.2f}×"])
    rep.table("Dataset", "Augmentation (chunks per tag)", ["aug tag", "chunks"], aug_rows)
    dur = rec["duration_s"]
    speech = rec["speech_s"]
    info = [
        ["file", str(summary.path)],
        ["fingerprint", summary.fingerprint or "–"],
        ["speakers (authorized / total)", f"{counts['speakers'][0]} / {len(summary.speakers)}"],
        ["authorized group", ", ".join(summary.authorized)],
        ["raw audio (h)", f"{np.nansum(dur) / 3600:.2f}" if np.isfinite(dur).any() else "–"],
        [
            "speech after VAD (h)",
            f"{np.nansum(speech) / 3600:.2f}" if np.isfinite(speech).any() else "–",
        ],
        [
            "chunk shape (frames × mel bands)",
            f"{summary.feature_shape[0]} × {summary.feature_shape[1]}",
        ],
        ["feature config", json.dumps(summary.feature_config, sort_keys=True)],
    ]
    rep.table("Dataset", "Summary", ["", "value"], info)
    return multiplier


def _balance_figures(rep: ReportBuilder, summary: DatasetSummary, counts: dict) -> None:
    orig = summary.aug == 0
    n_orig = int(orig.sum())
    rep.add(
        "Dataset",
        "class_balance",
        fig_class_balance(counts),
        "Class balance",
        "Authorized vs outsiders in speakers, source recordings, original chunks (aug = 0) and all "
        f"chunks including augmented copies. The authorized share of original chunks is "
        f"{pct(counts['chunks (original)'][0], n_orig)}; "
        "training oversamples the authorized class rather than relying on this ratio.",
    )
    s = len(summary.speakers)
    per_orig = np.bincount(summary.speaker[orig], minlength=s)[:s]
    per_aug = np.bincount(summary.speaker[~orig], minlength=s)[:s]
    rep.add(
        "Dataset",
        "speaker_chunks",
        fig_speaker_chunks(summary.speakers, per_orig, per_aug, summary.speaker_authorized),
        "Chunks per speaker",
        f"1-s chunks per speaker, sorted; authorized speakers in orange, outsiders in blue. Solid: "
        f"original chunks (min {per_orig.min() if s else 0}, median {np.median(per_orig) if s else 0:.0f}, "
        f"max {per_orig.max() if s else 0}); light: augmented copies (train split only).",
    )


def _gender_figure(rep: ReportBuilder, summary: DatasetSummary, rec: dict[str, np.ndarray]) -> None:
    genders = rec["gender"]
    if any(g in ("M", "F") for g in genders):
        by_speaker: dict[int, Counter] = {}
        for spk, g in zip(rec["speaker"], genders):
            if spk >= 0:
                by_speaker.setdefault(int(spk), Counter())[g if g in ("M", "F") else "unknown"] += 1
        gcounts: dict[str, Counter] = {"authorized": Counter(), "outsiders": Counter()}
        auth_mask = summary.speaker_authorized
        for spk, c in by_speaker.items():
            gcounts["authorized" if auth_mask[spk] else "outsiders"][c.most_common(1)[0][0]] += 1
        rep.add(
            "Dataset",
            "gender",
            fig_gender(gcounts),
            "Gender split",
            "Speakers by gender (from the sources table; a speaker's most frequent entry; empty = "
            "unknown), per class.",
        )
        rep.table(
            "Dataset",
            "Gender (speakers)",
            ["class", "male", "female", "unknown"],
            [[c, v["M"], v["F"], v["unknown"]] for c, v in gcounts.items()],
        )
    else:
        rep.missing.append("gender split: the sources table has no gender values")


def _duration_figures(
    rep: ReportBuilder, summary: DatasetSummary, rec: dict[str, np.ndarray], multiplier: float
) -> None:
    dur, speech = rec["duration_s"], rec["speech_s"]
    if np.isfinite(dur).any():
        rep.add(
            "Dataset",
            "durations",
            fig_durations(dur, rec["label"]),
            "Recording durations",
            f"Raw duration of each source recording before silence removal (log-spaced bins). "
            f"Median {np.nanmedian(dur):.1f} s, range {np.nanmin(dur):.1f}–{np.nanmax(dur):.1f} s "
            f"over {int(np.isfinite(dur).sum())} recordings.",
        )
        fit = chunk_rate_fit(dur, rec["chunks"])
        fig = fig_duration_vs_chunks(dur, rec["chunks"], rec["label"], fit)
        rep.numbers["chunks_per_second_slope"] = fit.slope
        rep.numbers["chunks_per_second_mean"] = fit.mean_rate
        ok = np.isfinite(speech) & (speech > 0)
        per_speech = float(rec["chunks"][ok].sum() / speech[ok].sum()) if ok.any() else float("nan")
        rep.numbers["chunks_per_speech_second"] = per_speech
        min_frac = summary.build_config.get("min_chunk_fraction", None)
        frac_txt = f" (min_chunk_fraction = {min_frac})" if min_frac is not None else ""
        rep.add(
            "Dataset",
            "duration_vs_chunks",
            fig,
            "Duration vs chunk count",
            f"Original chunks (aug = 0 rows only) against the raw recording duration. Fitted slope: "
            f"{fit.slope:.3f} chunks per second (intercept {fit.intercept:.2f}, R² {fit.r2:.3f}); mean "
            f"per-recording rate {fit.mean_rate:.3f}/s; {per_speech:.3f} chunks per second of speech. "
            f"Chunks are cut from the speech left after VAD silence removal, so a recording yields "
            f"fewer chunks than its raw duration in seconds; a final partial chunk is kept only when it "
            f"is at least min_chunk_fraction of a chunk{frac_txt}. Augmented copies multiply the "
            f"train-split chunks by {multiplier:.2f}× and are not counted here. The course report found "
            f"a rate above 1.0 because its chunk count included augmented copies and overlapping chunks.",
        )
    else:
        rep.missing.append("duration figures: the sources table has no duration_s")


def _spectrogram_figure(
    rep: ReportBuilder, summary: DatasetSummary, rng: np.random.Generator, max_spec: int
) -> None:
    orig = summary.aug == 0
    frame_s = None
    hop = summary.feature_config.get("hop_length")
    sr = summary.feature_config.get("sample_rate")
    if hop and sr:
        frame_s = float(hop) / float(sr)
    means, ns = [], []
    for cls in (1, 0):
        idx = _sample(rng, np.flatnonzero(orig & (summary.label == cls)), max_spec)
        ns.append(int(idx.size))
        if idx.size:
            means.append(
                masked_mean_spectrogram(_read_features(summary.path, idx), summary.lengths[idx])
            )
        else:
            means.append(None)
    if all(m is not None for m in means):
        rep.add(
            "Dataset",
            "mean_spectrograms",
            fig_mean_spectrograms(means[0], means[1], frame_s=frame_s, n_auth=ns[0], n_out=ns[1]),
            "Average log-mel spectrogram per class",
            f"Mean log-mel (dB relative to each chunk's peak) over {ns[0]} authorized and {ns[1]} "
            f"outsider original chunks (seeded sample, padded frames excluded); mel band 0 is the "
            f"lowest frequency. Right: authorized minus outsiders (red = more energy in the "
            f"authorized group).",
        )
    else:
        rep.missing.append("average spectrograms: one class has no original chunks")


def _tsne_figure(
    rep: ReportBuilder, summary: DatasetSummary, rng: np.random.Generator, *, seed: int,
    max_tsne: int,
) -> None:  # fmt: skip
    orig = summary.aug == 0
    idx = _sample(rng, np.flatnonzero(orig), max_tsne)
    if idx.size < 10:
        rep.missing.append("t-SNE: fewer than 10 original chunks")
        return
    feats = _read_features(summary.path, idx)
    xy = tsne_2d(pooled_features(feats, summary.lengths[idx]), seed=seed)
    rep.add(
        "Dataset",
        "tsne_features",
        fig_tsne(
            xy,
            summary.label[idx],
            summary.speaker[idx],
            summary.speakers,
            "t-SNE of pooled log-mel features (mean ‖ std over time)",
        ),
        "t-SNE of pooled features",
        f"{idx.size} original chunks sampled with seed {seed}; each chunk is its log-mel mean and "
        f"standard deviation over time ({2 * summary.feature_shape[1]} values, standardised). "
        f"Left by class, right by speaker (the {TOP_SPEAKERS} most frequent speakers in the "
        f"sample; others grey).",
    )
