"""log_mel parity with librosa (melspectrogram + power_to_db(ref=max, top_db=80)), shapes, batches."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from conftest import SR, VOWELS, silence, tone, voiced, white_noise
from voxgate.core.config import FeatureConfig
from voxgate.core.features import log_mel

PRESETS = ["report", "speaker"]


def _librosa_db(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=wave.astype(np.float32),
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win,
        window="hann",
        center=True,
        pad_mode="constant",
        power=2.0,
        n_mels=cfg.n_mels,
        fmin=cfg.f_min,
        fmax=cfg.fmax,
    )
    return librosa.power_to_db(mel, ref=np.max, top_db=cfg.top_db).T  # (T, M)


def _waves() -> list[np.ndarray]:
    return [
        voiced(120.0, VOWELS["a"], 1.0),
        voiced(210.0, VOWELS["i"], 1.0, seed=3),
        tone(1000.0, 1.0, amp=0.3) + white_noise(1.0, amp=0.01),
        white_noise(1.0, amp=0.2, seed=5),
    ]


@pytest.mark.parametrize("preset", PRESETS)
def test_parity_with_librosa(preset: str) -> None:
    cfg = FeatureConfig.preset(preset)
    for wave in _waves():
        ours = log_mel(wave, cfg).numpy()
        ref = _librosa_db(wave, cfg)
        assert ours.shape == ref.shape == (cfg.frames_per_chunk, cfg.n_mels)
        assert ours.max() == pytest.approx(0.0, abs=1e-4)
        assert ours.min() >= -cfg.top_db - 1e-3
        # float32 STFT vs librosa's: dB differences are tiny except near the -80 dB floor
        np.testing.assert_allclose(ours, ref, atol=0.05)
        assert np.mean(np.abs(ours - ref)) < 5e-3


@pytest.mark.parametrize(("preset", "frames", "mels"), [("report", 32, 64), ("speaker", 101, 80)])
def test_shapes_dtype_and_frame_count(preset: str, frames: int, mels: int) -> None:
    cfg = FeatureConfig.preset(preset)
    assert cfg.chunk_samples == SR and cfg.frames_per_chunk == frames
    x = voiced(seconds=1.0)
    single = log_mel(x, cfg)
    assert isinstance(single, torch.Tensor) and single.dtype == torch.float32
    assert single.shape == (frames, mels)
    for n in (0, 1, cfg.hop_length - 1, cfg.hop_length, 12345):
        assert log_mel(np.zeros(n, np.float32) + 0.1 * (n > 0), cfg).shape == (
            1 + n // cfg.hop_length,
            mels,
        )
    # float64 numpy and torch inputs give the same float32 output
    torch.testing.assert_close(log_mel(x.astype(np.float64), cfg), single)
    torch.testing.assert_close(log_mel(torch.from_numpy(x), cfg), single)


@pytest.mark.parametrize("preset", PRESETS)
def test_batch_equals_single(preset: str) -> None:
    cfg = FeatureConfig.preset(preset)
    waves = np.stack(_waves())
    batch = log_mel(waves, cfg)
    assert batch.shape == (len(waves), cfg.frames_per_chunk, cfg.n_mels)
    for i, w in enumerate(waves):
        torch.testing.assert_close(batch[i], log_mel(w, cfg), rtol=0, atol=1e-4)


def test_peak_reference_is_per_item() -> None:
    cfg = FeatureConfig.preset("report")
    loud = voiced(seconds=1.0, amp=0.9)
    quiet = loud * 0.01
    out = log_mel(np.stack([loud, quiet]), cfg)
    # ref=max per item: scaling an item does not change its features
    torch.testing.assert_close(out[0], out[1], rtol=0, atol=1e-3)
    assert out[0].amax() == 0.0 and out[1].amax() == 0.0


def test_silence_is_flat_at_zero_db() -> None:
    # all-zero input: every bin equals the floor and the peak, so the output is 0 dB everywhere
    out = log_mel(silence(1.0), FeatureConfig.preset("report"))
    assert torch.all(out == 0.0)


def test_absolute_reference_keeps_level() -> None:
    cfg = FeatureConfig(ref="absolute")
    a = log_mel(tone(500.0, 1.0, amp=0.5), cfg)
    b = log_mel(tone(500.0, 1.0, amp=0.05), cfg)
    assert float(a.amax() - b.amax()) == pytest.approx(20.0, abs=0.05)  # 10x amplitude = 20 dB


def test_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        log_mel(np.zeros((2, 2, 100), np.float32), FeatureConfig())


@pytest.mark.parametrize("preset", ["report", "speaker"])
def test_frame_mel_power_is_mel_power_without_centering(preset: str) -> None:
    from voxgate.core.features import frame_mel_power, mel_power

    cfg = FeatureConfig.preset(preset)
    x = np.random.default_rng(1).standard_normal(cfg.n_fft + 5 * cfg.hop_length + 7)
    x = (0.3 * x).astype(np.float32)
    ref = mel_power(torch.from_numpy(x)[None, :], cfg, center=False)[0].numpy()
    got = frame_mel_power(x, cfg)
    assert got.shape == ref.shape == (cfg.n_mels, 6) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6 * ref.max())


@pytest.mark.parametrize(
    "cfg",
    [FeatureConfig.preset("report"), FeatureConfig.preset("speaker"),
     FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256, f_min=300.0, f_max=3400.0)],
)  # fmt: skip
def test_mel_filterbank_equals_librosas_without_importing_it(cfg: FeatureConfig) -> None:
    from voxgate.core.features import mel_filterbank

    ref = librosa.filters.mel(
        sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.f_min, fmax=cfg.fmax
    )
    np.testing.assert_allclose(mel_filterbank(cfg).numpy(), ref, rtol=1e-6, atol=1e-9)


def test_features_do_not_import_librosa() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom voxgate.core.features import log_mel\n"
        "log_mel([0.0] * 16000)\nprint('librosa' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
