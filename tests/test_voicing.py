"""Voiced-speech check: noise, tones, hum, chirps and clipping are not a voice; speech is."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from conftest import SHARED_DATA, voiced, write_wav
from voxgate.cli import main
from voxgate.core import voicing as V
from voxgate.core.enroll import enroll_from_files
from voxgate.core.errors import TooShortError
from voxgate.core.inference import SpeakerEncoder

SR = 16000


def _noise(kind: str, seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = rng.standard_normal(n)
    if kind == "pink":
        f = np.fft.rfftfreq(n, 1 / SR)
        f[0] = 1.0
        x = np.fft.irfft(np.fft.rfft(x) / np.sqrt(f), n)
    elif kind == "brown":
        x = np.cumsum(x)
        x -= np.linspace(x[0], x[-1], n)  # no drift out of range
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def _tone(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _chirp(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (100 * t + 300 * t**2))).astype(np.float32)


def _hum(seconds: float, hz: float = 60.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, 8))
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


NOT_A_VOICE = {
    "white": (_noise("white", 1.0), V.REASON_NOISE),
    "pink": (_noise("pink", 1.0), V.REASON_NOISE),
    "brown": (_noise("brown", 1.0), V.REASON_NOISE),
    "tone 220 Hz": (_tone(220, 1.0), V.REASON_TONE),
    "tone 1 kHz": (_tone(1000, 1.0), V.REASON_TONE),
    "chirp": (_chirp(1.0), V.REASON_TONE),
    "mains hum": (_hum(1.0), V.REASON_HUM),
    "silence": (np.zeros(SR, np.float32), V.REASON_SILENCE),
    "clipped speech": (np.clip(voiced(seconds=1.0) * 4, -1, 1), V.REASON_CLIPPING),
}


@pytest.mark.parametrize("name", sorted(NOT_A_VOICE))
def test_not_a_voice_is_refused_with_its_reason(name) -> None:
    wave, reason = NOT_A_VOICE[name]
    assert V.rejection_reason(V.voicing_stats(wave, SR)) == reason
    assert not V.is_voiced_speech(wave, SR)


def test_real_speech_of_every_corpus_is_accepted() -> None:
    from voxgate.core.audio import load_audio
    from voxgate.core.config import FeatureConfig
    from voxgate.core.scoring import windows

    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    with open(SHARED_DATA / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    for corpus in ("librispeech", "speechocean762", "msc", "emodb"):  # fsdd: narrowband
        picked = [r for r in rows if r["corpus"] == corpus][:: 97][:4]
        ok = total = 0
        for r in picked:
            win = windows(load_audio(SHARED_DATA / r["path"], SR), FeatureConfig())
            for i in np.flatnonzero(win.speech_ratio >= 0.5):
                total += 1
                ok += V.is_voiced_speech(win.waves[i], SR)
        assert total >= 4 and ok / total >= 0.85, (corpus, ok, total)


@pytest.mark.parametrize("kind", ["white", "pink", "brown"])
def test_noise_cannot_be_enrolled(kind, tmp_path) -> None:
    path = write_wav(tmp_path, f"{kind}.wav", _noise(kind, 15.0, seed=3))
    enc = SpeakerEncoder.untrained()
    with pytest.raises(TooShortError, match="refused as (too much noise|noise, not a voice)"):
        enroll_from_files(enc, [path], "noise")


def test_cli_refuses_a_tone_and_enrolls_speech(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("VOXGATE_HOME", str(tmp_path / "home"))
    tone = write_wav(tmp_path, "tone.wav", _tone(440, 12.0))
    assert main(["enroll", "x", "--untrained", "--file", str(tone)]) == 1
    assert "a tone or whistle" in capsys.readouterr().err
    speech = write_wav(tmp_path, "speech.wav", voiced(seconds=7.0))
    assert main(["enroll", "x", "--untrained", "--file", str(speech)]) == 0


def test_band_limited_audio_is_not_scored() -> None:
    """Telephone-band speech (nothing above 4 kHz): the model cannot tell voices apart there,
    and the threshold was not calibrated for it."""
    from scipy.signal import butter, sosfiltfilt

    wide = voiced(seconds=1.0, seed=3)
    assert V.is_voiced_speech(wide, SR)
    narrow = sosfiltfilt(butter(10, 3600, fs=SR, output="sos"), wide).astype(np.float32)
    stats = V.voicing_stats(narrow, SR)
    assert stats.high_band_db < V.MIN_HIGH_BAND_DB < V.voicing_stats(wide, SR).high_band_db
    assert V.rejection_reason(stats) == V.REASON_BANDLIMITED


def test_real_narrowband_recordings_are_mostly_refused() -> None:
    from voxgate.core.audio import load_audio
    from voxgate.core.config import FeatureConfig
    from voxgate.core.scoring import windows

    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    with open(SHARED_DATA / "manifest.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["corpus"] == "fsdd"][::50]
    reasons = []
    for r in rows:
        win = windows(load_audio(SHARED_DATA / r["path"], SR), FeatureConfig())
        for i in np.flatnonzero(win.speech_ratio >= 0.5):
            reasons.append(V.rejection_reason(V.voicing_stats(win.waves[i], SR)))
    assert len(reasons) >= 10 and reasons.count(V.REASON_BANDLIMITED) / len(reasons) >= 0.7
