"""core/frontend.py: the live front end computes each display column once, exactly, and feeds
the VAD lazily without changing a flag."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import SR, silence, tone, voiced, white_noise
from voxgate.core.config import FeatureConfig
from voxgate.core.enroll import window_speech_ratio
from voxgate.core.events import LevelEvent, SpectrogramEvent
from voxgate.core.features import mel_power
from voxgate.core.frontend import Frontend, display_db, full_scale_db
from voxgate.core.vad import VoiceActivityDetector

PRESETS = [FeatureConfig.preset("report"), FeatureConfig.preset("speaker")]


def _stream() -> np.ndarray:
    return np.concatenate(
        [silence(0.7), voiced(seconds=2.5, seed=3), white_noise(0.6, amp=0.02), voiced(seconds=1.8)]
    )


def _run(fe: Frontend, x: np.ndarray, rng: np.random.Generator, max_block: int) -> tuple:
    windows, events, blocks, pos = [], [], 0, 0
    while pos < x.size:
        n = int(rng.integers(1, max_block + 1))
        windows += fe.push(x[pos : pos + n])
        events += fe.display()
        pos, blocks = pos + n, blocks + 1
    return windows, events, blocks


@pytest.mark.parametrize("fc", PRESETS, ids=["report", "speaker"])
def test_display_columns_equal_a_full_recompute(fc: FeatureConfig, rng) -> None:
    x = _stream()
    fe = Frontend(fc, 0.5, 2, 0.1)
    _, events, _ = _run(fe, x, rng, 1200)
    spec = [e for e in events if isinstance(e, SpectrogramEvent)]
    got = np.concatenate([e.columns for e in spec])
    full = display_db(mel_power(torch.from_numpy(x)[None, :], fc)[0], fc)  # (T, M)
    # Every column whose samples arrived before the last update, each once, in order.
    assert got.shape == (fe.columns.next_col, fc.n_mels)
    per_update = fe.display_hop // fc.hop_length
    assert fe.columns.last_ready(x.size) + 1 - got.shape[0] <= per_update
    np.testing.assert_allclose(got, full[: len(got)], atol=1e-3)
    # t_s is the centre of each event's last column.
    ends = np.cumsum([len(e.columns) for e in spec]) - 1
    np.testing.assert_allclose([e.t_s for e in spec], ends * fc.hop_length / SR)


def test_display_scale_is_fixed_full_scale_to_floor() -> None:
    fc = PRESETS[0]
    fe = Frontend(fc, 0.5, 2, 0.1)
    fe.push(tone(1000.0, seconds=1.0, amp=1.0))
    cols = np.concatenate([e.columns for e in fe.display() if isinstance(e, SpectrogramEvent)])
    assert cols[8:].max() == pytest.approx(0.0, abs=0.1)  # 0 dB = a full-scale sine
    fe.push(silence(1.0))
    cols = np.concatenate([e.columns for e in fe.display() if isinstance(e, SpectrogramEvent)])
    assert cols[-5:].max() == -fc.top_db  # silence sits on the floor, not rescaled to 0 dB
    assert full_scale_db(fc) > 0


def test_lazy_vad_gives_the_whole_file_flags_and_ratios(rng) -> None:
    fc = PRESETS[0]
    x = _stream()
    fe = Frontend(fc, 0.5, 2, 0.1)
    fe.clock.enabled = True
    windows, events, blocks = _run(fe, x, rng, 600)
    det = VoiceActivityDetector(SR, 2)
    flags = det.frame_flags(x)
    assert [s for s, _, _ in windows] == list(range(0, x.size - SR + 1, SR // 2))
    for s, w, ratio in windows:
        np.testing.assert_array_equal(w, x[s : s + SR])
        assert ratio == window_speech_ratio(flags, 0, det.frame_samples, s, SR)
    assert max(r for _, _, r in windows) > 0.9 and min(r for _, _, r in windows) < 0.5
    # The VAD runs when flags are needed (windows, display), not on every block.
    assert fe.clock.calls["vad"] < blocks / 2
    levels = [e for e in events if isinstance(e, LevelEvent)]
    assert any(e.speech for e in levels) and not levels[0].speech


def test_one_huge_block_loses_nothing() -> None:
    fc = PRESETS[0]
    x = _stream()
    fe = Frontend(fc, 0.5, 2, 0.1)
    windows = fe.push(x)  # 5.6 s in one block: more than the ring holds
    assert [s for s, _, _ in windows] == list(range(0, x.size - SR + 1, SR // 2))
    det = VoiceActivityDetector(SR, 2)
    flags = det.frame_flags(x)
    assert [r for _, _, r in windows] == [
        window_speech_ratio(flags, 0, det.frame_samples, s, SR) for s, _, _ in windows
    ]
    spec = [e for e in fe.display() if isinstance(e, SpectrogramEvent)]
    assert spec and spec[-1].t_s == fe.columns.last_ready(x.size) * fc.hop_length / SR


def test_without_a_display_the_windows_are_the_same_and_nothing_is_drawn() -> None:
    """``display_hop_s=None`` (the command line, calibration): no level or spectrogram
    work at all, and the very same windows and speech ratios as with the display."""
    fc = PRESETS[0]
    x = _stream()
    with_display = _run(Frontend(fc, 0.5, 2, 0.1), x, np.random.default_rng(5), 700)
    bare = Frontend(fc, 0.5, 2, None)
    windows, events, _ = _run(bare, x, np.random.default_rng(5), 700)
    assert events == [] and "display" not in bare.clock.calls
    assert [(s, r) for s, _, r in windows] == [(s, r) for s, _, r in with_display[0]]
    assert any(isinstance(e, SpectrogramEvent) for e in with_display[1])
