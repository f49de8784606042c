"""DecisionAggregator on hand-made score sequences: exact states, scores and window counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from voxgate.core.decision import DecisionAggregator, windows_for_decision
from voxgate.core.errors import ConfigError
from voxgate.core.events import DecisionState, ScoreEvent


def score(t: float, scores: dict[str, float], spread: dict[str, float] | None = None) -> ScoreEvent:
    best = max(scores, key=scores.__getitem__) if scores else None
    spread = spread or {k: 0.0 for k in scores}
    return ScoreEvent(
        t_start_s=t,
        t_end_s=t + 1.0,
        speech_ratio=1.0,
        scores=scores,
        spread=spread,
        best=best,
        best_score=scores[best] if best else math.nan,
        best_spread=spread.get(best, 0.0) if best else 0.0,
        threshold=0.6,
    )


def test_windows_for_decision() -> None:
    assert windows_for_decision(3.0, 1.0, 0.5) == 5
    assert windows_for_decision(3.0, 1.0, 0.25) == 9
    assert windows_for_decision(1.0, 1.0, 0.5) == 1
    assert windows_for_decision(0.5, 1.0, 0.5) == 1
    assert windows_for_decision(3.0, 1.0, 1.0) == 3
    assert windows_for_decision(3.0, 1.0, 0.1) == 21
    # A hop longer than the window used to give K = 1 (one second of speech for a "3-s"
    # decision); every hop now gives windows that hold at least decision_s of audio.
    assert windows_for_decision(3.0, 1.0, 5.0) == 3
    for hop in np.arange(0.05, 6.0, 0.05):
        k = windows_for_decision(3.0, 1.0, float(hop))
        assert 1.0 + (k - 1) * min(hop, 1.0) >= 3.0 - 1e-9, hop
        assert k == 1 or 1.0 + (k - 2) * min(hop, 1.0) < 3.0 - 1e-9, hop  # the fewest
    with pytest.raises(ConfigError):
        windows_for_decision(3.0, 1.0, 0.0)


def test_no_decision_on_less_speech_than_k_windows_by_default() -> None:
    agg = DecisionAggregator(3, threshold=0.6)
    assert agg.k_min == 3
    states = [agg.push(score(0.5 * i, {"ann": 0.9})).state for i in range(3)]
    assert states == [DecisionState.LISTENING] * 2 + [DecisionState.ACCEPTED]
    assert agg.final is not None and agg.final.n_windows == 3


def test_first_final_decision_is_kept_as_the_verdict() -> None:
    agg = DecisionAggregator(1, threshold=0.6)
    first = agg.push(score(0.0, {"ann": 0.2}))
    agg.push(score(0.5, {"ann": 0.9}))
    assert first.state == DecisionState.REJECTED and agg.final == first
    agg.reset()
    assert agg.final is None


def test_a_known_voice_that_is_not_admissible_is_rejected_and_named() -> None:
    agg = DecisionAggregator(1, threshold=0.5, mode="identification", admissible=["ann"])
    d = agg.push(score(0.0, {"ann": 0.3, "bob": 0.9}))
    assert d.state == DecisionState.REJECTED and d.who == "bob"
    d = agg.push(score(0.5, {"ann": 0.9, "bob": 0.3}))
    assert d.state == DecisionState.ACCEPTED and d.who == "ann"


def test_listening_until_k_min_then_accept() -> None:
    agg = DecisionAggregator(5, threshold=0.6, k_min=2)
    assert agg.k_min == 2
    d1 = agg.push(score(0.0, {"ann": 0.9, "bob": 0.2}))
    assert d1.state == DecisionState.LISTENING and d1.who is None and d1.n_windows == 1
    d2 = agg.push(score(0.5, {"ann": 0.7, "bob": 0.3}))
    assert d2.state == DecisionState.ACCEPTED and d2.who == "ann"
    assert d2.score == pytest.approx(0.8) and d2.n_windows == 2 and d2.t_s == 1.5


def test_mean_over_last_k_windows_flips_to_rejected() -> None:
    agg = DecisionAggregator(3, threshold=0.6, k_min=1)
    states = [agg.push(score(0.5 * i, {"ann": s})) for i, s in enumerate([0.9, 0.9, 0.9, 0.3, 0.3])]
    # means over the last 3: 0.9, 0.9, 0.9, 0.7, 0.5
    assert [d.state for d in states] == [DecisionState.ACCEPTED] * 4 + [DecisionState.REJECTED]
    assert [round(d.score, 6) for d in states] == [0.9, 0.9, 0.9, 0.7, 0.5]
    assert states[-1].who is None and states[-1].n_windows == 3


def test_identification_best_by_mean_and_unknown() -> None:
    agg = DecisionAggregator(2, threshold=0.5, k_min=2, mode="identification")
    agg.push(score(0.0, {"ann": 0.9, "bob": 0.6}))
    d = agg.push(score(0.5, {"ann": 0.3, "bob": 0.7}))  # means: ann 0.6, bob 0.65
    assert d.state == DecisionState.ACCEPTED and d.who == "bob" and d.mode == "identification"
    d = agg.push(score(1.0, {"ann": 0.1, "bob": 0.2}))  # means: ann 0.2, bob 0.45
    assert d.state == DecisionState.REJECTED and d.who is None
    assert d.score == pytest.approx(0.45)


def test_uncertain_when_spread_is_wide() -> None:
    agg = DecisionAggregator(2, threshold=0.5, k_min=1, uncertain_std=0.08)
    d = agg.push(score(0.0, {"ann": 0.9}, {"ann": 0.1}))
    assert d.state == DecisionState.UNCERTAIN and d.who == "ann" and d.spread == pytest.approx(0.1)
    d = agg.push(score(0.5, {"ann": 0.9}, {"ann": 0.02}))  # rms(0.1, 0.02) = 0.0721
    assert d.state == DecisionState.ACCEPTED
    assert d.spread == pytest.approx(math.sqrt((0.1**2 + 0.02**2) / 2))


def test_no_candidates_is_rejected() -> None:
    agg = DecisionAggregator(1, threshold=0.5)
    d = agg.push(score(0.0, {}))
    assert d.state == DecisionState.REJECTED and d.who is None and math.isnan(d.score)


def test_gap_clears_history_and_idle_reports_listening_once() -> None:
    agg = DecisionAggregator(5, threshold=0.5, max_gap_s=2.0, k_min=2)
    agg.push(score(0.0, {"ann": 0.9}))
    assert agg.push(score(0.5, {"ann": 0.9})).state == DecisionState.ACCEPTED
    assert agg.idle(2.5) is None  # 1.0 s after the last scored window ended
    d = agg.idle(4.0)
    assert d is not None and d.state == DecisionState.LISTENING and d.n_windows == 0
    assert agg.idle(5.0) is None
    # A new speaker after a gap starts from scratch.
    d = agg.push(score(10.0, {"ann": 0.1}))
    assert d.state == DecisionState.LISTENING and d.n_windows == 1


def test_invalid_arguments() -> None:
    with pytest.raises(ConfigError):
        DecisionAggregator(0, threshold=0.5)
    with pytest.raises(ConfigError):
        DecisionAggregator(3, threshold=0.5, k_min=4)
