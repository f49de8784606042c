"""Shared test helpers: synthetic audio (tones, noise, silence, speech-like voiced signals),
a WAV writer, and the path of the real data set (tests that need it skip when it is absent)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

SR = 16000
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Formant centre frequencies (Hz) of a few vowels (adult male, roughly Peterson & Barney).
VOWELS: dict[str, tuple[float, float, float]] = {
    "a": (730.0, 1090.0, 2440.0),
    "i": (270.0, 2290.0, 3010.0),
    "u": (300.0, 870.0, 2240.0),
    "e": (530.0, 1840.0, 2480.0),
    "o": (570.0, 840.0, 2410.0),
}


def tone(freq: float = 440.0, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    """Sine tone, float32 (round(seconds * sr),)."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def white_noise(seconds: float = 1.0, sr: int = SR, amp: float = 0.1, seed: int = 0) -> np.ndarray:
    """Gaussian white noise with standard deviation ``amp``, clipped to [-1, 1], float32."""
    rng = np.random.default_rng(seed)
    x = amp * rng.standard_normal(int(round(seconds * sr)))
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def silence(seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    """Digital silence, float32 zeros."""
    return np.zeros(int(round(seconds * sr)), dtype=np.float32)


def voiced(
    f0: float = 120.0,
    formants: Sequence[float] = VOWELS["a"],
    seconds: float = 1.0,
    sr: int = SR,
    *,
    syllable_hz: float = 4.0,
    amp: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """Speech-like voiced signal, float32 (round(seconds * sr),), peak ``amp``.

    A glottal pulse train at ``f0`` Hz (with slow vibrato and jitter) through second-order
    resonators at ``formants`` (Hz), amplitude-modulated at ``syllable_hz`` syllables per
    second with short dips between syllables, plus faint aspiration and breath noise. webrtcvad
    classifies it as speech.
    """
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    drift = 0.01 * rng.standard_normal(n).cumsum() / max(1.0, np.sqrt(n))
    inst_f0 = f0 * (1.0 + 0.03 * np.sin(2 * np.pi * 5.0 * t) + drift)
    phase = np.cumsum(inst_f0) / sr
    # Rosenberg-like glottal flow derivative approximated by a differentiated skewed pulse.
    frac = phase - np.floor(phase)
    flow = np.where(frac < 0.6, np.sin(np.pi * frac / 0.6) ** 2, 0.0)
    source = np.diff(flow, prepend=0.0) + 0.01 * rng.standard_normal(n)
    x = np.zeros(n)
    for i, fc in enumerate(formants):
        bw = 60.0 + 40.0 * i  # bandwidths grow with formant number
        r = np.exp(-np.pi * bw / sr)
        theta = 2 * np.pi * fc / sr
        a = [1.0, -2 * r * np.cos(theta), r * r]
        x += lfilter([1.0 - r], a, source) / (i + 1)
    # Syllable envelope: raised-cosine bumps with short near-silent gaps.
    env = 0.5 - 0.5 * np.cos(2 * np.pi * syllable_hz * t)
    env = np.clip(env * 1.25, 0.0, 1.0) ** 0.5
    # Breath and fricative noise across the whole band (34 dB below the voice), as in real
    # wideband speech: without it the signal would look band-limited (telephone-like).
    x += 0.02 * np.std(x) * rng.standard_normal(n)
    x *= env
    peak = np.max(np.abs(x)) or 1.0
    return (amp * x / peak).astype(np.float32)


def write_wav(
    tmp_path: Path, name: str, wave: np.ndarray, sr: int = SR, subtype: str | None = None
) -> Path:
    """Write ``wave`` ((N,) or (N, C)) to ``tmp_path / name`` with soundfile; returns the path."""
    import soundfile as sf

    path = Path(tmp_path) / name
    sf.write(str(path), wave, sr, subtype=subtype)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def shared_data() -> Path:
    """The real data directory (../shared/data); skips the test when it is absent."""
    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def write_voice_folders(
    root: Path, voices: Sequence[tuple[str, float, int]], seconds: float
) -> Path:
    """``root/<speaker>/<j>.wav``: for each (speaker, f0, n), n voiced recordings of
    ``seconds`` s at ``f0`` Hz (seed j). Returns ``root``."""
    for spk, f0, n in voices:
        (root / spk).mkdir(parents=True, exist_ok=True)
        for j in range(n):
            write_wav(root / spk, f"{j}.wav", voiced(f0, seconds=seconds, seed=j))
    return root


def skip_unless_portaudio_present() -> None:
    """Skip the calling test when sounddevice cannot load PortAudio (CI installs it)."""
    import importlib

    try:
        importlib.import_module("sounddevice")
    except OSError:
        pytest.skip("PortAudio is not installed here")


def skip_unless_portaudio_missing() -> None:
    """Skip the calling test when sounddevice loads (PortAudio is installed)."""
    import importlib

    try:
        importlib.import_module("sounddevice")
    except OSError:
        return
    pytest.skip("PortAudio is installed here")


# ---------------------------------------------------------------- tiny models and checkpoints
# Tiny random models keep the tests fast; the plumbing is the same as for the real one.


def tiny_model_config(**changes):
    """A tiny ModelConfig (16 mels, channels (4, 8, 8), GRU 16, embedding 12) with ``changes``."""
    from voxgate.core.model import ModelConfig

    base = dict(
        n_mels=16, channels=(4, 8, 8), se_reduction=2, gru_hidden=16, attention_dim=8,
        embed_dim=12,
    )  # fmt: skip
    return ModelConfig(**{**base, **changes})


def small_model_config(**changes):
    """A small ModelConfig for the streaming tests (64 mels, one GRU layer, embedding 32, a
    3-class identification head) with ``changes``."""
    from voxgate.core.model import ModelConfig

    base = dict(
        channels=(8, 16, 16), se_reduction=4, gru_hidden=32, gru_layers=1, gru_dropout=0.0,
        attention_dim=16, embed_dim=32, heads=(("identification", 3),),
    )  # fmt: skip
    return ModelConfig(**{**base, **changes})


def save_test_checkpoint(path: Path, model, feature_config, **fields) -> Path:
    """``save_checkpoint`` with neutral metadata (authentication mode, no labels, no threshold,
    empty dicts) unless given in ``fields``. Returns ``path``."""
    from voxgate.core.checkpoint import save_checkpoint

    meta = dict(
        mode="authentication", labels={}, authorized=[], threshold=None, calibration={},
        metrics={}, train_config={}, data_fingerprint="test",
    )  # fmt: skip
    save_checkpoint(path, model, feature_config=feature_config, **{**meta, **fields})
    return path


# ---------------------------------------------------------------- synthetic HDF5 datasets

SPEAKERS = [f"spk{i}" for i in range(6)]
AUTHORIZED = ["spk0", "spk1"]
COLUMN_DTYPES = {
    "lengths": np.int16, "label": np.int8, "speaker": np.int32, "file_id": np.int32,
    "split": np.int8, "aug": np.int8, "chunk_index": np.int32,
}  # fmt: skip


def write_h5_dataset(
    path: Path,
    features: np.ndarray,
    columns: dict,
    sources: Sequence[tuple],
    *,
    feature_config,
    speakers: Sequence[str],
    authorized: Sequence[str],
    aug_tags: Sequence[str] = ("none",),
    build_config: dict | None = None,
    fingerprint: str = "synthetic",
    **feature_options,
) -> Path:
    """Write a complete dataset file in the contract's layout.

    features (N, T, M) dB (stored float16, with ``feature_options`` such as chunks or
    compression); columns: the per-chunk columns of COLUMN_DTYPES as sequences (N,);
    sources: rows (path, speaker, session, corpus, subset, gender, duration_s, speech_s,
    chunks, split). The complete flag is set last.
    """
    import h5py

    sdt = h5py.string_dtype()
    src_dtype = np.dtype(
        [("path", sdt), ("speaker", sdt), ("session", sdt), ("corpus", sdt), ("subset", sdt),
         ("gender", sdt), ("duration_s", np.float32), ("speech_s", np.float32),
         ("chunks", np.int32), ("split", np.int8)]
    )  # fmt: skip
    table = np.zeros(len(sources), dtype=src_dtype)
    for i, row in enumerate(sources):
        table[i] = row
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "features", data=np.asarray(features).astype(np.float16), **feature_options
        )
        for key, values in columns.items():
            f.create_dataset(key, data=np.asarray(values, dtype=COLUMN_DTYPES[key]))
        f.create_dataset("sources", data=table)
        attrs = {
            "schema_version": 1,
            "feature_config": feature_config.to_json(),
            "speakers": json.dumps(list(speakers)),
            "authorized": json.dumps(list(authorized)),
            "aug_tags": json.dumps(list(aug_tags)),
            "split_names": json.dumps(["train", "val", "test"]),
            "build_config": json.dumps(build_config or {}),
            "skipped": json.dumps([]),
            "fingerprint": fingerprint,
        }
        for key, value in attrs.items():
            f.attrs[key] = value
        f.attrs["complete"] = True
    return path


# 8 frames x 16 mels per chunk: hop 2048 at 16 kHz gives 1 + 16000 // 2048 = 8 frames.
def tiny_features():
    """FeatureConfig of the training tests' datasets: 16 mels, 8 frames per 1-s chunk."""
    from voxgate.core.config import FeatureConfig

    return FeatureConfig(n_mels=16, n_fft=2048, hop_length=2048)


# ModelConfig overrides (TrainConfig.model) of the training tests.
TINY_TRAIN_MODEL = {
    "channels": [4, 8, 8],
    "se_reduction": 2,
    "gru_hidden": 16,
    "gru_layers": 1,
    "gru_dropout": 0.0,
    "attention_dim": 8,
    "embed_dim": 16,
}


def make_tiny_h5(
    path: Path, *, chunks_per_recording: int = 8, recordings: int = 4, seed: int = 0
) -> Path:
    """A dataset for the training tests (features of :func:`tiny_features`).

    6 speakers (spk0, spk1 authorized), ``recordings`` per speaker: recording 0..r-3 train,
    r-2 val, r-1 test; recording 0 of each speaker also has augmented copies (aug 1, train).
    Features: a per-speaker spectral template (dB) plus noise, so the speaker is learnable;
    every third chunk is 2 frames short (exercises padding).
    """
    fc = tiny_features()
    rng = np.random.default_rng(seed)
    t, m = fc.frames_per_chunk, fc.n_mels
    templates = rng.normal(0.0, 12.0, size=(len(SPEAKERS), m))
    feats = []
    cols: dict[str, list] = {k: [] for k in COLUMN_DTYPES}
    sources = []
    for s, spk in enumerate(SPEAKERS):
        for r in range(recordings):
            split = 0 if r < recordings - 2 else (1 if r == recordings - 2 else 2)
            file_id = len(sources)
            sources.append((f"/synthetic/{spk}/rec{r}.wav", spk, f"sess{r}", "synthetic", "tiny",
                            "f" if s % 2 else "m", float(chunks_per_recording),
                            float(chunks_per_recording), chunks_per_recording, split))  # fmt: skip
            for c in range(chunks_per_recording):
                copies = (0, 1) if (split == 0 and r == 0) else (0,)
                for aug in copies:
                    x = -40.0 + templates[s][None, :] + rng.normal(0.0, 6.0, size=(t, m))
                    if aug:
                        x = x + rng.normal(0.0, 3.0, size=(t, m))
                    length = t - 2 if c % 3 == 2 else t
                    x[length:] = 0.0
                    feats.append(x)
                    for key, val in (("lengths", length), ("label", int(spk in AUTHORIZED)),
                                     ("speaker", s), ("file_id", file_id), ("split", split),
                                     ("aug", aug), ("chunk_index", c)):  # fmt: skip
                        cols[key].append(val)
    return write_h5_dataset(
        path, np.asarray(feats), cols, sources, feature_config=fc, speakers=SPEAKERS,
        authorized=AUTHORIZED, aug_tags=("none", "noise"), build_config={"synthetic": True},
        fingerprint=f"synthetic-{seed}",
    )  # fmt: skip


CHUNKS_PER_FILE = 7  # write_synthetic_h5: 2 decisions of 3 chunks + 1 leftover per file


def write_synthetic_h5(path: Path, seed: int = 0) -> Path:
    """A dataset for the evaluation tests (default FeatureConfig): 6 speakers x one recording
    per split x 7 chunks, plus 2 augmented train chunks per speaker; features are
    speaker-dependent."""
    from voxgate.core.config import FeatureConfig

    cfg = FeatureConfig()
    t, m = cfg.frames_per_chunk, cfg.n_mels
    rng = np.random.default_rng(seed)
    feats, cols, sources = [], {k: [] for k in COLUMN_DTYPES}, []
    for s, spk in enumerate(SPEAKERS):
        pattern = rng.uniform(-60, -10, size=(1, m))
        for split in range(3):
            file_id = len(sources)
            sources.append(
                (f"/audio/{spk}/{split}.wav", spk, str(split), "synth", "x", "F", 8.0, 7.5,
                 CHUNKS_PER_FILE, split)
            )  # fmt: skip
            augs = [0] * CHUNKS_PER_FILE + ([1, 1] if split == 0 else [])
            for k, aug in enumerate(augs):
                feats.append(pattern + rng.normal(0, 6, size=(t, m)))
                cols["lengths"].append(t)
                cols["label"].append(int(spk in AUTHORIZED))
                cols["speaker"].append(s)
                cols["file_id"].append(file_id)
                cols["split"].append(split)
                cols["aug"].append(aug)
                cols["chunk_index"].append(k % CHUNKS_PER_FILE)
    return write_h5_dataset(
        path, np.clip(np.array(feats), -80, 0), cols, sources, feature_config=cfg,
        speakers=SPEAKERS, authorized=AUTHORIZED, aug_tags=("none", "noise"),
    )  # fmt: skip


def write_tiny_checkpoint(path: Path, *, heads: bool = True, seed: int = 0) -> Path:
    """A random 64-mel checkpoint for :func:`write_synthetic_h5`'s speakers; with ``heads``
    an authentication and a 6-class identification head (mode "both")."""
    import torch

    from voxgate.core.config import FeatureConfig
    from voxgate.core.model import SpeakerNet

    head_cfg = (("authentication", 2), ("identification", len(SPEAKERS))) if heads else ()
    torch.manual_seed(seed)
    model = SpeakerNet(tiny_model_config(n_mels=64, gru_layers=1, embed_dim=16, heads=head_cfg))
    labels = {"authentication": ["outsider", "authorized"], "identification": SPEAKERS}
    return save_test_checkpoint(
        path, model, FeatureConfig(), mode="both" if heads else "authentication",
        labels=labels if heads else {}, authorized=AUTHORIZED, data_fingerprint="synthetic",
    )  # fmt: skip


@pytest.fixture
def store(tmp_path):
    """An empty profile store in the test's folder."""
    from voxgate.core.profiles import ProfileStore

    return ProfileStore(tmp_path / "profiles")


@pytest.fixture
def settings(tmp_path):
    """The GUI's settings in an INI file of the test's folder (Qt imported only here)."""
    from PySide6.QtCore import QSettings

    from voxgate.app.settings import Settings

    return Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
