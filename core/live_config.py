"""Live settings, written once: the defaults every path shares and the pipeline's config."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .errors import ConfigError

__all__ = [
    "DEFAULT_HOP_S",
    "LIVE_BLOCK_S",
    "ENROLL_HOP_S",
    "DEFAULT_DECISION_S",
    "DEFAULT_MIN_SPEECH_RATIO",
    "DEFAULT_VAD_AGGRESSIVENESS",
    "MIN_ENROLL_SPEECH_S",
    "MODES",
    "HEAD_MODES",
    "PipelineConfig",
    "Attempt",
]

# Seconds of audio per block a live source (microphone, paced file) hands the pipeline: the
# display's own rate (10 updates a second), so each block costs one pass of the loop, not
# three (32-ms blocks spent ~0.01 CPU s per audio s on the loop alone, docs/benchmarks.md).
LIVE_BLOCK_S = 0.1
# Seconds between scored 1-s windows, the VAD share a window needs, webrtcvad's mode.
# Non-overlapping windows: the 3-s decision is as accurate as with 0.5-s hops (K = 3 against
# K = 5 on the out-of-domain sets, docs/benchmarks.md) at half the streaming cost.
DEFAULT_HOP_S = 1.0
# Enrollment analyses its speech every 0.5 s: a denser profile and speech count, paid once.
ENROLL_HOP_S = 0.5
# Seconds of speech one decision spans (the shipped threshold is calibrated on it).
DEFAULT_DECISION_S = 3.0
# Bounds of the settings (a settings file or the command line may hold anything).
MAX_HOP_S = 10.0
MAX_DECISION_S = 60.0
MAX_MC_PASSES = 256  # each pass re-runs the GRU on every window: memory and time grow with it
DEFAULT_MIN_SPEECH_RATIO = 0.5
DEFAULT_VAD_AGGRESSIVENESS = 2
# The least voiced speech a profile is built from, in the CLI and the GUI alike.
MIN_ENROLL_SPEECH_S = 5.0
MODES = ("authentication", "identification", "head-authentication", "head-identification")
HEAD_MODES = MODES[2:]


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Live settings.

    hop_s: seconds between 1-s analysis windows; min_speech_ratio: fraction of VAD speech
    frames a window needs to be scored (it must also be voiced speech); decision_s: seconds
    of speech one decision spans (K windows); mc_passes: 0 = deterministic, N = MC-dropout
    passes (batched); uncertain_std: MC spread above which the decision is UNCERTAIN;
    threshold: None = the model's calibrated threshold; mode: "authentication" (authorized
    profiles, or only ``user``), "identification" (all profiles; only authorized ones are
    accepted), "head-authentication" / "head-identification" (the model's trained heads,
    only where ``core.gate.head_mode_problem`` allows); enroll_target_s: seconds of speech
    an enrollment collects; stop_on_decision: an attempt ends at its first ACCEPTED /
    REJECTED decision; lockout: count attempts and refuse locked keys (off only for offline
    evaluation of recordings).
    """

    hop_s: float = DEFAULT_HOP_S
    min_speech_ratio: float = DEFAULT_MIN_SPEECH_RATIO
    vad_aggressiveness: int = DEFAULT_VAD_AGGRESSIVENESS
    decision_s: float = DEFAULT_DECISION_S
    mc_passes: int = 0
    uncertain_std: float = 0.08
    threshold: float | None = None
    mode: str = "authentication"
    user: str | None = None
    enroll_target_s: float = 20.0
    stop_on_decision: bool = True
    lockout: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.hop_s <= MAX_HOP_S:
            raise ConfigError(f"hop_s must be in (0, {MAX_HOP_S:g}] s, got {self.hop_s}")
        if not 0.0 <= self.min_speech_ratio <= 1.0:
            raise ConfigError(f"min_speech_ratio must be in [0, 1], got {self.min_speech_ratio}")
        if self.vad_aggressiveness not in (0, 1, 2, 3):
            raise ConfigError(f"vad_aggressiveness must be 0..3, got {self.vad_aggressiveness}")
        if not 0 < self.decision_s <= MAX_DECISION_S:
            raise ConfigError(
                f"decision_s must be in (0, {MAX_DECISION_S:g}] s, got {self.decision_s}"
            )
        if self.mc_passes < 0 or self.mc_passes == 1 or self.mc_passes > MAX_MC_PASSES:
            raise ConfigError(
                f"mc_passes must be 0 (off) or 2..{MAX_MC_PASSES}, got {self.mc_passes}"
            )
        if not 0 <= self.uncertain_std < math.inf:
            raise ConfigError(f"uncertain_std must be finite and >= 0, got {self.uncertain_std}")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ConfigError(f"threshold must be finite, got {self.threshold}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not MIN_ENROLL_SPEECH_S <= self.enroll_target_s < math.inf:
            raise ConfigError(
                f"enroll_target_s must be finite and >= {MIN_ENROLL_SPEECH_S:g} s, "
                f"got {self.enroll_target_s}"
            )


@dataclasses.dataclass
class Attempt:
    """The outcome of one ``run``: the verdict (first final decision, or the last decision
    seen when none was final), seconds of scored speech, and the lockout state after it."""

    verdict: Any = None
    speech_s: float = 0.0
    windows_scored: int = 0
    lockout: Any = None
