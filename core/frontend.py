"""The live front end: ring buffer, streaming VAD, windower and display, before the model."""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import FeatureConfig
from .enroll import CLIP_PEAK, rms_dbfs, window_speech_ratio
from .events import LevelEvent, SpectrogramEvent

__all__ = ["Frontend"]

Event = Any


class Frontend:
    """Per-stream state before the model: ring buffer, streaming VAD, windower, display.

    ``push(block)`` returns the windows the block completed as (start sample, float32
    (window,), speech ratio); ``display()`` returns Level/Spectrogram events for the audio
    that arrived since the last display update (every ``display_hop_s``).
    """

    def __init__(
        self, fc: FeatureConfig, hop_s: float, vad_aggressiveness: int, display_hop_s: float
    ):
        from .chunking import Windower
        from .ringbuffer import RingBuffer
        from .vad import StreamingVAD

        self.fc = fc
        self.sr = fc.sample_rate
        self.window = fc.chunk_samples
        self.hop = max(1, int(round(hop_s * self.sr)))
        self.ring = RingBuffer(self.window + 2 * self.sr)
        self.display_reader = self.ring.reader(0)  # the display's own cursor into the ring
        # Display updates in whole STFT hops, so spectrogram columns tile the stream exactly.
        self.display_hop = max(1, round(display_hop_s * self.sr / fc.hop_length)) * fc.hop_length
        self.vad = StreamingVAD(self.sr, vad_aggressiveness)
        self.windower = Windower(self.window, self.hop)
        self.flags = np.zeros(0, dtype=bool)
        self.first_frame = 0  # absolute frame index of self.flags[0]

    @property
    def t_s(self) -> float:
        return self.ring.written / self.sr

    def push(self, block: np.ndarray) -> list[tuple[int, np.ndarray, float]]:
        self.ring.write(block)
        new_flags = self.vad.push(block)
        if new_flags.size:
            self.flags = np.concatenate([self.flags, new_flags])
        windows = self.windower.push(block)
        fs = self.vad.frame_samples
        out = [
            (s, w, window_speech_ratio(self.flags, self.first_frame, fs, s, self.window))
            for s, w in windows
        ]
        # Forget flags no future window can cover.
        drop = self.windower.next_start // fs - self.first_frame
        if drop > 0:
            self.flags = self.flags[drop:]
            self.first_frame += drop
        return out

    def display(self) -> list[Event]:
        from .features import log_mel

        reader = self.display_reader
        if reader.lost:
            reader.seek(self.ring.oldest)
        if reader.pending < self.display_hop:
            return []
        n_new = reader.pending // self.fc.hop_length
        fresh = reader.read(n_new * self.fc.hop_length)
        t_s = reader.position / self.sr
        peak = float(np.max(np.abs(fresh)))
        events: list[Event] = [
            LevelEvent(
                t_s=t_s,
                rms_dbfs=rms_dbfs(fresh),
                peak=min(1.0, peak),
                speech=self.vad.speech,
                clipping=peak >= CLIP_PEAK,
            )
        ]
        recent = self.ring.latest(min(self.ring.available, self.window))
        if recent.size > self.fc.hop_length:
            cols = log_mel(recent, self.fc).numpy()  # (T, M); the last column is half padding
            n = min(n_new, cols.shape[0] - 1)
            if n > 0:
                columns = np.ascontiguousarray(cols[-1 - n : -1], dtype=np.float32)
                events.append(SpectrogramEvent(t_s=t_s, columns=columns))
        return events
