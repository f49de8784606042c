"""VAD: webrtcvad on 30 ms frames, onset/hangover smoothing, streaming == whole-file flags."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SR, VOWELS, silence, tone, voiced, white_noise
from voxgate.core.errors import ConfigError, TooShortError
from voxgate.core.vad import (
    StreamingVAD,
    VoiceActivityDetector,
    remove_silence,
    smooth_flags,
)


def _speech_in_silence() -> np.ndarray:
    """1 s silence, 1.5 s voiced, 1 s silence, 1 s voiced (another vowel), 0.5 s silence."""
    return np.concatenate(
        [
            silence(1.0),
            voiced(120.0, VOWELS["a"], 1.5),
            silence(1.0),
            voiced(180.0, VOWELS["e"], 1.0, seed=1),
            silence(0.5),
        ]
    )


def test_frame_geometry_and_validation() -> None:
    det = VoiceActivityDetector()
    assert det.frame_samples == 480
    assert det.hangover_frames == 10 and det.onset_frames == 2
    assert det.frame_flags(np.zeros(479, np.float32)).shape == (0,)
    assert det.frame_flags(np.zeros(480 * 7 + 100, np.float32)).shape == (7,)
    for bad in (-1, 4, 2.5, True):
        with pytest.raises(ConfigError):
            VoiceActivityDetector(aggressiveness=bad)
    with pytest.raises(ConfigError):
        VoiceActivityDetector(sample_rate=22050)
    with pytest.raises(ConfigError):
        VoiceActivityDetector(frame_ms=25)
    with pytest.raises(ValueError):
        VoiceActivityDetector().frame_flags(np.zeros((2, 480), np.float32))


def test_smoothing_onset_and_hangover_exact() -> None:
    raw = np.zeros(40, dtype=bool)
    raw[3] = True  # isolated spurious frame: must not trigger
    raw[10:13] = True  # 3 voiced frames: on from the 2nd, then 4 hangover frames
    got = smooth_flags(raw, onset_frames=2, hangover_frames=4)
    expected = np.zeros(40, dtype=bool)
    expected[11:17] = True  # frames 11, 12 voiced+on; 13..16 hangover; 17 off
    np.testing.assert_array_equal(got, expected)
    # a gap shorter than the hangover keeps speech on without a new onset
    raw2 = np.zeros(20, dtype=bool)
    raw2[[0, 1, 5, 12]] = True
    np.testing.assert_array_equal(
        smooth_flags(raw2, 2, 3), [0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    )
    np.testing.assert_array_equal(smooth_flags(raw2, 1, 0), raw2)


def test_voiced_signal_is_speech_and_silence_is_not() -> None:
    det = VoiceActivityDetector(aggressiveness=2)
    flags = det.frame_flags(_speech_in_silence())

    def f(t_s: float) -> int:  # index of the frame that contains time t_s
        return int(t_s * SR) // det.frame_samples

    assert not flags[: f(1.0)].any()  # leading silence
    assert flags[f(1.0) + 3 : f(2.5)].mean() > 0.95  # first voiced segment
    assert flags[f(2.5) + 1 : f(2.5) + 9].all()  # 300 ms hangover after the last voiced frame
    # webrtcvad itself stays on ~3 frames after voicing stops, then our 10 hangover frames
    assert not flags[f(2.5) + 15 : f(3.5)].any()  # the silent gap
    assert flags[f(3.5) + 3 : f(4.5)].mean() > 0.95  # second voiced segment
    assert flags[f(4.5) + 1 : f(4.5) + 9].all() and not flags[f(4.5) + 15 :].any()


def test_hangover_length_in_frames() -> None:
    x = np.concatenate([silence(0.3), voiced(seconds=0.6), silence(1.0)])
    for hangover_ms, frames in [(0, 0), (90, 3), (300, 10)]:
        det = VoiceActivityDetector(hangover_ms=hangover_ms)
        raw = det.raw_flags(x)
        last_voiced = int(np.flatnonzero(raw).max())
        flags = det.frame_flags(x)
        assert flags[last_voiced + 1 : last_voiced + 1 + frames].all()
        assert not flags[last_voiced + 1 + frames :].any()


def test_aggressiveness_changes_decisions_on_a_tone() -> None:
    x = tone(440.0, 2.0)
    lenient = VoiceActivityDetector(aggressiveness=0).raw_flags(x).mean()
    strict = VoiceActivityDetector(aggressiveness=3).raw_flags(x).mean()
    assert lenient > 0.9 and strict < 0.2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_equals_whole_signal_with_random_blocks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.concatenate([_speech_in_silence(), white_noise(0.5, amp=0.003, seed=seed)])
    expected = VoiceActivityDetector().frame_flags(x)
    svad = StreamingVAD()
    got, pos, states = [], 0, []
    while pos < x.size:
        n = int(rng.integers(0, 2000))
        flags = svad.push(x[pos : pos + n])
        pos += n
        got.append(flags)
        if flags.size:
            states.append((svad.speech, bool(flags[-1])))
    np.testing.assert_array_equal(np.concatenate(got), expected)
    assert svad.frames == expected.size
    assert all(s == f for s, f in states)  # .speech is the state of the last frame
    # reset restarts webrtcvad's adaptation too: a second run gives the same flags
    svad.reset()
    np.testing.assert_array_equal(svad.push(x), expected)


def test_remove_silence_keeps_the_speech() -> None:
    x = _speech_in_silence()
    speech = remove_silence(x)
    assert speech.dtype == np.float32 and speech.size % 480 == 0
    # 2.5 s voiced, minus one onset frame per segment, plus per segment ~3 frames of
    # webrtcvad's own hangover and our 10 frames (300 ms)
    assert 2.4 <= speech.size / SR <= 3.4
    silent_in = np.mean(np.abs(x) < 1e-6)  # 2.5 of 5 s
    silent_out = np.mean(np.abs(speech) < 1e-6)  # only the hangover frames
    assert silent_in > 0.49 and silent_out < 0.26


def test_remove_silence_raises_too_short() -> None:
    with pytest.raises(TooShortError, match="no speech") as info:
        remove_silence(silence(2.0), path="quiet.wav")
    assert info.value.path == "quiet.wav"
    x = np.concatenate([silence(1.0), voiced(seconds=0.5), silence(1.0)])
    assert remove_silence(x, min_speech_s=0.5).size / SR >= 0.5
    with pytest.raises(TooShortError, match="need 2.00 s"):
        remove_silence(x, min_speech_s=2.0)
