"""Augmentations: shapes, determinism, noise SNR, speed factor, VTLP warp, exact SpecAugment masks."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SR, tone, voiced
from voxgate.core.errors import ConfigError
from voxgate.training.augment import (
    AUG_TAGS,
    DEFAULT_AUGMENTATIONS,
    NOISE_SNR_DB,
    add_noise,
    add_noise_snr,
    mask_freq,
    mask_time,
    parse_augmentations,
    random_freq_mask,
    random_time_mask,
    speed_perturb,
    speed_window,
    vtlp,
    vtlp_warp,
)


def peak_hz(x: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * sr / len(x))


def test_tags_and_parse():
    assert AUG_TAGS[0] == "none" and len(set(AUG_TAGS)) == len(AUG_TAGS)
    # Stored as indices: the report's eight keep theirs, new tags are appended.
    assert AUG_TAGS[:8] == ("none",) + DEFAULT_AUGMENTATIONS
    assert parse_augmentations("all") == DEFAULT_AUGMENTATIONS
    assert parse_augmentations(None) == DEFAULT_AUGMENTATIONS
    assert parse_augmentations("none") == ()
    assert parse_augmentations("vtlp, noise_low") == ("noise_low", "vtlp")  # canonical order
    with pytest.raises(ConfigError, match="speed_2"):
        parse_augmentations("noise_low,speed_2")


@pytest.mark.parametrize("snr_db", [25.0, 7.5])
def test_noise_snr_within_tolerance(snr_db):
    x = voiced(150.0, seconds=1.0)
    y = add_noise_snr(x, snr_db, np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == np.float32
    measured = 10 * np.log10(
        np.mean(x.astype(np.float64) ** 2) / np.mean((y - x).astype(np.float64) ** 2)
    )
    assert abs(measured - snr_db) < 0.3


def test_noise_levels_draw_from_their_ranges_and_are_seeded():
    x = voiced(120.0, seconds=0.5)
    for level, (lo, hi) in NOISE_SNR_DB.items():
        y1, snr1 = add_noise(x, level, np.random.default_rng(3))
        y2, snr2 = add_noise(x, level, np.random.default_rng(3))
        assert lo <= snr1 <= hi and snr1 == snr2
        np.testing.assert_array_equal(y1, y2)
    y3, _ = add_noise(x, "noise_low", np.random.default_rng(4))
    assert not np.array_equal(y1, y3)
    silent = np.zeros(100, np.float32)
    np.testing.assert_array_equal(add_noise_snr(silent, 10.0, np.random.default_rng(0)), silent)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_duration_and_pitch_by_factor(factor):
    x = tone(1000.0, seconds=2.0)
    y = speed_perturb(x, factor)
    assert y.dtype == np.float32
    assert len(y) == round(len(x) / factor)
    assert peak_hz(y) == pytest.approx(1000.0 * factor, abs=2.0)
    np.testing.assert_array_equal(y, speed_perturb(x, factor))  # deterministic


def test_speed_window_aligns_with_the_original_chunk():
    x = np.arange(48000, dtype=np.float32)
    # A ramp stays a ramp: the window for chunk start s begins at s / factor in the new timeline.
    y = speed_perturb(x, 1.1)
    w = speed_window(y, 16000, 1.1, 16000)
    assert w.shape == (16000,) and w.dtype == np.float32
    assert w[100] == pytest.approx(16000 + 100 * 1.1, rel=2e-3)
    # At the end the window is zero-padded.
    tail = speed_window(y, 40000, 1.1, 16000)
    n_valid = len(y) - round(40000 / 1.1)
    assert np.all(tail[n_valid:] == 0) and tail[n_valid - 1] != 0


def test_vtlp_warp_maps_band_onto_itself():
    f = np.linspace(0, 8000, 257)
    for alpha in (0.9, 1.1):
        w = vtlp_warp(f, alpha)
        assert w[0] == 0 and w[-1] == pytest.approx(8000)
        assert np.all(np.diff(w) > 0)
        assert w[50] == pytest.approx(f[50] * alpha)  # below the boundary: linear scaling


def test_vtlp_moves_a_tone_by_alpha_and_keeps_shape():
    x = tone(1000.0, seconds=1.0)
    for alpha in (0.9, 1.1):
        y = vtlp(x, alpha)
        assert y.shape == x.shape and y.dtype == np.float32
        assert peak_hz(y) == pytest.approx(1000.0 * alpha, abs=3.0)
    np.testing.assert_allclose(vtlp(x, 1.0), x)


def test_masks_set_exactly_the_masked_region():
    rng = np.random.default_rng(0)
    feats = rng.uniform(-80, 0, size=(32, 64)).astype(np.float32)
    low = float(feats.min())
    t = mask_time(feats, 5, 4)
    assert np.all(t[5:9] == low)
    np.testing.assert_array_equal(t[:5], feats[:5])
    np.testing.assert_array_equal(t[9:], feats[9:])
    fm = mask_freq(feats, 10, 7)
    assert np.all(fm[:, 10:17] == low)
    np.testing.assert_array_equal(
        np.delete(fm, range(10, 17), axis=1), np.delete(feats, range(10, 17), axis=1)
    )
    assert feats.min() == low and not np.any(feats[5:9] == low)  # input untouched


def test_random_masks_are_seeded_and_bounded():
    feats = np.random.default_rng(1).uniform(-80, 0, size=(101, 80)).astype(np.float32)
    for _ in range(20):
        seed = int(np.random.default_rng().integers(1 << 30))
        m1, (s, w) = random_time_mask(
            feats, np.random.default_rng(seed), max_frac=0.2, valid_frames=50
        )
        m2, band2 = random_time_mask(
            feats, np.random.default_rng(seed), max_frac=0.2, valid_frames=50
        )
        assert (s, w) == band2 and np.array_equal(m1, m2)
        assert 1 <= w <= 10 and 0 <= s and s + w <= 50
        changed = np.flatnonzero(np.any(m1 != feats, axis=1))
        assert set(changed) <= set(range(s, s + w))
        f1, (fs, fw) = random_freq_mask(feats, np.random.default_rng(seed), max_frac=0.15)
        assert 1 <= fw <= 12 and fs + fw <= 80
        assert np.all(f1[:, fs : fs + fw] == feats.min())
