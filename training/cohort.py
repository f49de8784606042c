"""Adaptive score normalisation (AS-norm) against an impostor cohort: the experiment.

A cohort is one profile per *training* speaker, built by the backend's own enrollment
(``Backend.enroll``) from the first seconds of speech of each, so it holds embeddings only.
AS-norm (Cumani et al. 2011; Matejka et al. 2017, as in WeSpeaker and SpeechBrain) rescales a
cosine s(e, t) by the statistics of the ``top_n`` cohort cosines closest to each side:

    s' = ((s - mu_e) / sd_e + (s - mu_t) / sd_t) / 2

so a profile or a test segment that resembles many voices (a channel, a language the model
knows badly) is judged against its own crowd. ``evaluate-verification --cohort FILE`` scores
the same trials with and without it (rows ``voxgate`` and ``voxgate+asnorm``).

    python -m voxgate.training.cohort --model M --manifest ../shared/data/manifest.csv \\
        --subsets librispeech/train-clean-100 ... --exclude-speakers @models/heldout-speakers.txt \\
        --out work/cohort.npz
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.core.errors import DatasetError

__all__ = ["DEFAULT_TOP_N", "as_norm", "build_cohort", "save_cohort", "load_cohort"]

DEFAULT_TOP_N = 100


def _top_stats(cos: np.ndarray, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the ``top_n`` largest values of each row of (R, C)."""
    n = min(int(top_n), cos.shape[1])
    top = np.partition(cos, cos.shape[1] - n, axis=1)[:, -n:]
    return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-6)


def as_norm(
    scores: np.ndarray,
    test_emb: np.ndarray,
    profiles: np.ndarray,
    cohort: np.ndarray,
    top_n: int = DEFAULT_TOP_N,
) -> np.ndarray:
    """AS-norm of cosine ``scores`` (S, K) between unit ``test_emb`` (S, D) and unit
    ``profiles`` (K, D), against a unit ``cohort`` (C, D); returns float64 (S, K)."""
    if cohort.ndim != 2 or cohort.shape[0] < 2 or cohort.shape[1] != profiles.shape[1]:
        raise DatasetError(
            f"a cohort of (C >= 2, {profiles.shape[1]}) embeddings is needed, got {cohort.shape}"
        )
    mu_e, sd_e = _top_stats(profiles @ cohort.T, top_n)  # (K,)
    mu_t, sd_t = _top_stats(test_emb @ cohort.T, top_n)  # (S,)
    s = np.asarray(scores, dtype=np.float64)
    return 0.5 * ((s - mu_e[None, :]) / sd_e[None, :] + (s - mu_t[:, None]) / sd_t[:, None])


def _speaker_speech(recs: Sequence[Any], seconds: float, sr: int) -> list[np.ndarray]:
    """Speech (silence removed) of a speaker's first recordings, up to ``seconds``."""
    from voxgate.core.audio import load_audio
    from voxgate.core.errors import AudioError
    from voxgate.core.vad import remove_silence

    waves, total = [], 0
    for r in recs:
        try:
            speech = remove_silence(load_audio(r.path, sr), sr, 2, path=r.path)
        except AudioError:
            continue
        waves.append(speech[: int(seconds * sr) - total])
        total += waves[-1].size
        if total >= seconds * sr:
            break
    return waves


def build_cohort(
    backend: Any,
    source: str | Path,
    *,
    subsets: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    seconds: float = 6.0,
) -> tuple[list[str], np.ndarray]:
    """(speaker ids, unit profiles (C, D) float32) of every speaker of ``source`` not in
    ``exclude``, each enrolled by ``backend`` on its first ``seconds`` of speech."""
    from voxgate.training.backends import SAMPLE_RATE
    from voxgate.training.recordings import collect_recordings

    recs = collect_recordings(source, subsets=subsets)
    skip = set(exclude)
    names, profiles = [], []
    for spk, files in recs.items():
        if spk in skip:
            continue
        waves = [w for w in _speaker_speech(files, seconds, SAMPLE_RATE) if w.size]
        if sum(w.size for w in waves) >= SAMPLE_RATE:  # at least a window of speech
            names.append(spk)
            profiles.append(backend.enroll(waves))
    if len(names) < 2:
        raise DatasetError(f"{source}: a cohort needs at least 2 speakers, got {len(names)}")
    return names, np.stack(profiles).astype(np.float32)


def save_cohort(path: str | Path, names: Sequence[str], emb: np.ndarray, meta: dict) -> None:
    from voxgate.core.fileio import atomic_write

    def write(f: Any) -> None:
        np.savez(
            f, embeddings=emb, speakers=np.asarray(names), **{k: str(v) for k, v in meta.items()}
        )

    atomic_write(Path(path), write)


def load_cohort(path: str | Path) -> np.ndarray:
    """The unit cohort embeddings (C, D) of a file written by :func:`save_cohort`."""
    try:
        with np.load(path) as f:
            return np.asarray(f["embeddings"], dtype=np.float32)
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"{path}: not a cohort file ({exc})") from exc


def main(argv: Sequence[str] | None = None) -> int:
    from voxgate.training.backends import make_backend
    from voxgate.training.verification import parse_id_list

    p = argparse.ArgumentParser(prog="python -m voxgate.training.cohort", description=__doc__)
    p.add_argument("--model", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--subsets", nargs="+", required=True, help="training subsets only")
    p.add_argument("--exclude-speakers", default="", help="comma-separated or @file")
    p.add_argument("--seconds", type=float, default=6.0, help="speech per cohort speaker")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    backend = make_backend("voxgate", args.model, None)
    exclude = parse_id_list(args.exclude_speakers) if args.exclude_speakers else []
    names, emb = build_cohort(
        backend, args.manifest, subsets=args.subsets, exclude=exclude, seconds=args.seconds
    )
    meta = {"model": args.model, "fingerprint": getattr(backend.encoder, "fingerprint", None)}
    save_cohort(args.out, names, emb, meta)
    print(f"cohort of {len(names)} speakers ({emb.shape[1]}-d) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
