"""Decisions over several seconds of speech: a pure aggregator of per-window scores."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from .errors import ConfigError
from .events import DecisionEvent, DecisionState, ScoreEvent

__all__ = ["DecisionAggregator", "windows_for_decision"]

_FINAL = (DecisionState.ACCEPTED, DecisionState.REJECTED)


def windows_for_decision(decision_s: float, window_s: float, hop_s: float) -> int:
    """The fewest windows K (``window_s`` long, every ``hop_s``) holding ``decision_s`` of audio.

    Consecutive windows add min(hop_s, window_s) each, so K = 1 + ceil((decision_s -
    window_s) / min(hop_s, window_s)), at least 1: 3.0 s of 1-s windows is K = 5 every 0.5 s,
    K = 3 every 1 s, and still K = 3 every 5 s (windows that do not touch add only their own
    second: a longer hop never lets a decision rest on less speech).
    """
    if decision_s <= 0 or window_s <= 0 or hop_s <= 0:
        raise ConfigError("decision_s, window_s and hop_s must be > 0")
    step = min(float(hop_s), float(window_s))
    return max(1, 1 + math.ceil((float(decision_s) - float(window_s)) / step - 1e-9))


class DecisionAggregator:
    """Turns a stream of :class:`ScoreEvent` into :class:`DecisionEvent` over the last K windows.

    For each candidate the aggregated score is the mean of its per-window scores over the
    last ``k`` scored windows; its spread is the root-mean-square of the per-window MC-dropout
    std (the typical spread of one window; 0 when deterministic). Then, in this order:

    - fewer than ``k_min`` windows: LISTENING (who None);
    - no candidate at all (nothing enrolled / authorized): REJECTED (who None);
    - spread of the best candidate > ``uncertain_std``: UNCERTAIN (who = best, "keep speaking");
    - best mean score >= ``threshold`` and best is admissible: ACCEPTED (who = best);
    - best mean score >= ``threshold`` but best is not admissible (a known voice that is not
      authorized now): REJECTED with who = best;
    - otherwise REJECTED (who None: an outsider, or "unknown" in identification).

    ``admissible``: the names that may ever be accepted (None: every candidate). ``final`` is
    the first ACCEPTED or REJECTED decision since the last :meth:`reset`: the verdict of an
    attempt.

    A gap of more than ``max_gap_s`` seconds between scored windows (the speaker stopped,
    maybe someone else comes) clears the history first. Pure: no clocks, no threads.
    """

    def __init__(
        self,
        k: int,
        threshold: float,
        *,
        k_min: int | None = None,
        uncertain_std: float = 0.08,
        mode: str = "authentication",
        max_gap_s: float = 2.0,
        admissible: Sequence[str] | None = None,
    ):
        if k < 1:
            raise ConfigError(f"DecisionAggregator: k must be >= 1, got {k}")
        self.k = int(k)
        self.k_min = self.k if k_min is None else int(k_min)
        if not 1 <= self.k_min <= self.k:
            raise ConfigError(f"DecisionAggregator: k_min must be in [1, {self.k}], got {k_min}")
        self.threshold = float(threshold)
        self.uncertain_std = float(uncertain_std)
        self.mode = mode
        self.max_gap_s = float(max_gap_s)
        self.admissible = None if admissible is None else frozenset(admissible)
        self._windows: deque[ScoreEvent] = deque(maxlen=self.k)
        self.last: DecisionEvent | None = None
        self.final: DecisionEvent | None = None

    def reset(self) -> None:
        """Forget all windows (the next decision is LISTENING until k_min windows arrive)."""
        self._windows.clear()
        self.last = None
        self.final = None

    @property
    def n_windows(self) -> int:
        return len(self._windows)

    def push(self, event: ScoreEvent) -> DecisionEvent:
        """Add one scored window; returns the decision over the last (up to) k windows."""
        if self._windows and event.t_start_s - self._windows[-1].t_end_s > self.max_gap_s:
            self._windows.clear()
        self._windows.append(event)
        self.last = self._decide(event.t_end_s)
        if self.final is None and self.last.state in _FINAL:
            self.final = self.last
        return self.last

    def idle(self, t_s: float) -> DecisionEvent | None:
        """Called for windows without enough speech: after ``max_gap_s`` of them the history
        is cleared and one LISTENING decision is returned (None otherwise)."""
        if not self._windows or t_s - self._windows[-1].t_end_s <= self.max_gap_s:
            return None
        self._windows.clear()
        self.last = self._event(t_s, DecisionState.LISTENING, None, math.nan, 0.0)
        return self.last

    def _decide(self, t_s: float) -> DecisionEvent:
        n = len(self._windows)
        best, score, spread = self._best()
        if n < self.k_min:
            return self._event(t_s, DecisionState.LISTENING, None, score, spread)
        if best is None:
            return self._event(t_s, DecisionState.REJECTED, None, score, spread)
        if spread > self.uncertain_std:
            return self._event(t_s, DecisionState.UNCERTAIN, best, score, spread)
        if score >= self.threshold:
            if self.admissible is not None and best not in self.admissible:
                return self._event(t_s, DecisionState.REJECTED, best, score, spread)
            return self._event(t_s, DecisionState.ACCEPTED, best, score, spread)
        return self._event(t_s, DecisionState.REJECTED, None, score, spread)

    def _best(self) -> tuple[str | None, float, float]:
        """Best candidate by mean score over the held windows, its mean and its rms spread."""
        sums: dict[str, float] = {}
        sq_spread: dict[str, float] = {}
        counts: dict[str, int] = {}
        for ev in self._windows:
            for name, value in ev.scores.items():
                sums[name] = sums.get(name, 0.0) + float(value)
                sq_spread[name] = sq_spread.get(name, 0.0) + float(ev.spread.get(name, 0.0)) ** 2
                counts[name] = counts.get(name, 0) + 1
        if not sums:
            return None, math.nan, 0.0
        # Ties resolve to the name that sorts first, so decisions are reproducible.
        best = max(sorted(sums), key=lambda name: sums[name] / counts[name])
        return best, sums[best] / counts[best], math.sqrt(sq_spread[best] / counts[best])

    def _event(
        self, t_s: float, state: DecisionState, who: str | None, score: float, spread: float
    ) -> DecisionEvent:
        return DecisionEvent(
            t_s=float(t_s),
            state=state,
            who=who,
            score=float(score),
            spread=float(spread),
            threshold=self.threshold,
            n_windows=len(self._windows),
            mode=self.mode,
        )
