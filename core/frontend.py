"""The live front end: ring buffer, streaming VAD, windower and display, before the model.

Every consumer reads the one ring buffer through its own cursor: the VAD is fed what arrived
since its last read only when flags are needed (a window completed, a display update), the
windower reads its windows out of the ring, and the display computes only the STFT columns
whose samples arrived, each once.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch

from .config import FeatureConfig
from .enroll import CLIP_PEAK, rms_dbfs, window_speech_ratio
from .events import LevelEvent, SpectrogramEvent
from .features import _AMIN, frame_mel_power, mel_power, power_to_db
from .ringbuffer import RingBuffer
from .runtime import StageClock

__all__ = ["Frontend", "SpectrogramColumns", "display_db", "full_scale_db"]

Event = Any
# The display's floor when the feature config has no top_db: -80 dB below full scale.
_DISPLAY_FLOOR_DB = 80.0


@lru_cache(maxsize=8)
def full_scale_db(fc: FeatureConfig) -> float:
    """Mel power in dB of the loudest band of a full-scale (amplitude 1) 1-kHz sine.

    The display's fixed 0 dB: its columns never depend on what else is on screen.
    """
    t = np.arange(4 * fc.n_fft, dtype=np.float64) / fc.sample_rate
    sine = torch.from_numpy(np.sin(2 * np.pi * 1000.0 * t).astype(np.float32))[None, :]
    return float(power_to_db(mel_power(sine, fc, center=False)).max())


def display_db(power: np.ndarray | torch.Tensor, fc: FeatureConfig) -> np.ndarray:
    """Mel power (M, T) -> display columns float32 (T, M) in dB re :func:`full_scale_db`,
    floored at -top_db (-80 dB when top_db is 0)."""
    floor = -(fc.top_db if fc.top_db > 0 else _DISPLAY_FLOOR_DB)
    p = np.asarray(power, dtype=np.float32)
    db = 10.0 * np.log10(np.maximum(p, _AMIN)) - np.float32(full_scale_db(fc))
    return np.ascontiguousarray(np.maximum(db, floor).T, dtype=np.float32)


class SpectrogramColumns:
    """The display spectrogram of a stream, one log-mel column per STFT hop, each computed once.

    Column k is centred on sample k * hop_length (zeros before the stream start), exactly
    ``display_db(mel_power(whole stream, center=True))[k]``, and is ready once the samples up
    to k * hop_length + n_fft / 2 are written.
    """

    def __init__(self, fc: FeatureConfig):
        self.fc = fc
        self.half = fc.n_fft // 2
        self.next_col = 0  # the first column not computed yet

    def last_ready(self, written: int) -> int:
        """Index of the newest column whose samples are all in the first ``written``."""
        return (written - self.half) // self.fc.hop_length

    def take(self, ring: RingBuffer) -> tuple[int, np.ndarray]:
        """(index of the first, columns float32 (n, n_mels)) of the columns ready in ``ring``
        since the last call (n may be 0). Columns whose samples were overwritten are skipped."""
        hop, half = self.fc.hop_length, self.half
        k1 = self.last_ready(ring.written)
        # Zeros stand before the stream start; samples the ring dropped are lost.
        k0 = self.next_col
        if ring.oldest > 0:
            k0 = max(k0, -(-(ring.oldest + half) // hop))
        if k1 < k0:
            return k0, np.zeros((0, self.fc.n_mels), dtype=np.float32)
        start, end = k0 * hop - half, k1 * hop + half
        seg = np.zeros(end - start, dtype=np.float32)
        first = max(start, 0)  # zeros before the stream start, as center=True pads
        seg[first - start :] = ring.read(first, end - first)
        power = frame_mel_power(seg, self.fc)
        self.next_col = k1 + 1
        return k0, display_db(power, self.fc)


class Frontend:
    """Per-stream state before the model: ring buffer, streaming VAD, windower, display.

    ``push(block)`` returns the windows the block completed as (start sample, float32
    (window,), speech ratio); ``display()`` returns Level/Spectrogram events for the audio
    that arrived since the last display update (every ``display_hop_s``; never when it is
    None: the command line shows no spectrogram, so it computes none). ``clock`` holds the
    CPU seconds of the "vad", "windows" and "display" stages.
    """

    def __init__(
        self,
        fc: FeatureConfig,
        hop_s: float,
        vad_aggressiveness: int,
        display_hop_s: float | None,
    ):
        from .chunking import Windower
        from .vad import StreamingVAD

        self.fc = fc
        self.sr = fc.sample_rate
        self.window = fc.chunk_samples
        self.hop = max(1, int(round(hop_s * self.sr)))
        self.ring = RingBuffer(self.window + 2 * self.sr)
        # Blocks are written in pieces of at most this, so no reader falls behind the ring.
        self.max_piece = self.sr
        self.display_reader = self.ring.reader(0)  # the display's own cursor into the ring
        self.vad_reader = self.ring.reader(0)  # samples not yet given to the VAD
        # Display updates in whole STFT hops, so spectrogram columns tile the stream exactly.
        self.display_hop = (
            None
            if display_hop_s is None
            else max(1, round(display_hop_s * self.sr / fc.hop_length)) * fc.hop_length
        )
        self.columns = SpectrogramColumns(fc)
        self.vad = StreamingVAD(self.sr, vad_aggressiveness)
        self.windower = Windower(self.window, self.hop)
        self.flags = np.zeros(0, dtype=bool)
        self.first_frame = 0  # absolute frame index of self.flags[0]
        self.clock = StageClock()

    @property
    def t_s(self) -> float:
        return self.ring.written / self.sr

    def _feed_vad(self) -> None:
        """Give the VAD every sample it has not seen (its flags do not depend on how the
        stream is cut into calls)."""
        if self.vad_reader.pending == 0:
            return
        with self.clock.stage("vad"):
            new_flags = self.vad.push(self.vad_reader.read())
            if new_flags.size:
                self.flags = np.concatenate([self.flags, new_flags])

    def push(self, block: np.ndarray) -> list[tuple[int, np.ndarray, float]]:
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        windows: list[tuple[int, np.ndarray]] = []
        for i in range(0, x.size, self.max_piece):
            self.ring.write(x[i : i + self.max_piece])
            if self.vad_reader.pending >= self.max_piece:
                self._feed_vad()
            with self.clock.stage("windows"):
                windows += self.windower.collect(self.ring)
        if not windows:
            return []
        self._feed_vad()
        fs = self.vad.frame_samples
        with self.clock.stage("windows"):
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
        if self.display_hop is None:
            return []
        reader = self.display_reader
        if reader.lost:
            reader.seek(self.ring.oldest)
        if reader.pending < self.display_hop:
            return []
        self._feed_vad()  # the level event carries the current speech state
        with self.clock.stage("display"):
            fresh = reader.read(reader.pending // self.fc.hop_length * self.fc.hop_length)
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
            k0, cols = self.columns.take(self.ring)
            if len(cols):
                t_last = (k0 + len(cols) - 1) * self.fc.hop_length / self.sr
                events.append(SpectrogramEvent(t_s=t_last, columns=cols))
        return events
