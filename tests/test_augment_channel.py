"""Channel augmentation: the telephone band and codec, and the synthetic room."""

import numpy as np
import pytest

from voxgate.training.augment import DEFAULT_AUGMENTATIONS, parse_augmentations
from voxgate.training.augment_channel import (
    RT60_RANGE_S,
    channel_augment,
    mu_law,
    reverb,
    room_impulse,
    telephone,
)

SR = 16000


def _band_energy(x: np.ndarray, lo_hz: float, hi_hz: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / SR)
    return float(spec[(freqs >= lo_hz) & (freqs < hi_hz)].sum())


def test_channel_tags_are_opt_in():
    assert "telephone" not in DEFAULT_AUGMENTATIONS and "reverb" not in DEFAULT_AUGMENTATIONS
    assert parse_augmentations("reverb,telephone,vtlp") == ("vtlp", "telephone", "reverb")


def test_telephone_keeps_only_the_phone_band():
    x = (np.random.default_rng(0).standard_normal(SR) * 0.1).astype(np.float32)
    y = telephone(x, SR)
    assert y.shape == x.shape and y.dtype == np.float32
    assert _band_energy(y, 4200, 8000) < 0.01 * _band_energy(y, 300, 3800)
    assert _band_energy(y, 0, 150) < 0.05 * _band_energy(x, 0, 150)
    assert _band_energy(y, 500, 3000) > 0.5 * _band_energy(x, 500, 3000)


def test_mu_law_quantises_to_its_codebook():
    x = np.linspace(-1, 1, 10001, dtype=np.float32)
    y = mu_law(x, bits=8)
    assert len(np.unique(y)) <= 256
    assert np.max(np.abs(y - x)) < 0.05  # coarse only where the signal is loud
    small = np.abs(x) < 0.01
    assert np.max(np.abs(y[small] - x[small])) < 0.001  # fine near zero


def test_room_impulse_decays_within_its_rt60():
    rng = np.random.default_rng(1)
    rir = room_impulse(rng, SR)
    assert rir[0] == pytest.approx(1.0) and np.max(np.abs(rir)) == pytest.approx(1.0)
    assert RT60_RANGE_S[0] * SR <= rir.size <= RT60_RANGE_S[1] * SR
    tail = rir[int(0.0025 * SR) :]
    quarter = tail.size // 4
    assert np.sum(tail[:quarter] ** 2) > 100 * np.sum(tail[-quarter:] ** 2)


def test_reverb_smears_an_impulse_and_keeps_length_and_peak():
    x = np.zeros(SR, dtype=np.float32)
    x[1000] = 0.5
    y = reverb(x, np.random.default_rng(2), SR)
    assert y.shape == x.shape and np.max(np.abs(y)) == pytest.approx(0.5, rel=1e-5)
    assert np.count_nonzero(np.abs(y[1100:]) > 1e-4) > 1000  # a tail where there was silence
    assert np.all(reverb(np.zeros(100, np.float32), np.random.default_rng(0)) == 0)


def test_channel_augment_dispatches_and_refuses_others():
    x = (np.random.default_rng(3).standard_normal(SR) * 0.1).astype(np.float32)
    np.testing.assert_array_equal(channel_augment("telephone", x, np.random.default_rng(0)), telephone(x))
    a = channel_augment("reverb", x, np.random.default_rng(4))
    np.testing.assert_array_equal(a, reverb(x, np.random.default_rng(4)))
    with pytest.raises(ValueError):
        channel_augment("vtlp", x, np.random.default_rng(0))
