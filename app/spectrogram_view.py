"""Scrolling log-mel spectrogram: a ring of columns drawn by a timer, never per audio block."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QWidget

from voxgate.core.config import FeatureConfig
from voxgate.core.events import SpectrogramEvent

from .redraw_timer import start_redraw_timer

LEVELS_DB = (-80.0, 0.0)  # fixed colour levels: no per-frame autoscaling
TICK_HZ = (250, 500, 1000, 2000, 4000, 8000)


def mel_band_ticks(cfg: FeatureConfig) -> list[tuple[float, str]]:
    """(band position, label) for the frequencies in ``TICK_HZ`` that lie inside the mel range."""
    import librosa

    centres = librosa.mel_frequencies(n_mels=cfg.n_mels + 2, fmin=cfg.f_min, fmax=cfg.fmax)[1:-1]
    ticks = []
    for hz in TICK_HZ:
        if centres[0] <= hz <= centres[-1]:
            pos = float(np.interp(hz, centres, np.arange(cfg.n_mels))) + 0.5
            ticks.append((pos, f"{hz // 1000}k" if hz >= 1000 else str(hz)))
    return ticks


class SpectrogramView(pg.PlotWidget):
    """Log-mel spectrogram of the last ``window_s`` seconds.

    Columns (float32 dB, 0 = peak) go into a row-major ring ``(n_mels, n_columns)``;
    :meth:`redraw` unrolls it into the ImageItem at most ``fps`` times a second.
    x axis: stream time in s; y axis: mel band, labelled in Hz.
    """

    def __init__(
        self,
        feature_config: FeatureConfig | None = None,
        *,
        window_s: float = 8.0,
        fps: float = 30.0,
        colormap: str = "inferno",
        parent: QWidget | None = None,
    ):
        super().__init__(parent=parent)
        self.feature_config = feature_config or FeatureConfig()
        self.column_s = self.feature_config.hop_length / self.feature_config.sample_rate
        self.window_s = window_s
        self.n_columns = max(8, int(round(window_s / self.column_s)))
        self._alloc(self.feature_config.n_mels)
        self.t_end_s = 0.0
        self.columns_written = 0  # total columns ever pushed
        self.frames_drawn = 0
        self._dirty = False

        self.image_item = pg.ImageItem(axisOrder="row-major")
        lut = pg.colormap.get(colormap).getLookupTable(nPts=256)
        self.image_item.setLookupTable(lut)
        self.image_item.setLevels(LEVELS_DB)
        self.addItem(self.image_item)
        plot = self.getPlotItem()
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.setLabel("bottom", "time", units="s")
        plot.setLabel("left", "frequency (Hz, mel scale)")
        plot.getAxis("left").setTicks([mel_band_ticks(self.feature_config)])
        self.colorbar = pg.ColorBarItem(
            values=LEVELS_DB, colorMap=pg.colormap.get(colormap), interactive=False, width=12
        )
        self.colorbar.setImageItem(self.image_item, insert_in=plot)
        self.colorbar.axis.setLabel("dB")
        self.redraw(force=True)

        self._timer = start_redraw_timer(self, fps, self.redraw)

    def _alloc(self, n_mels: int) -> None:
        self.n_mels = n_mels
        self.ring = np.full((n_mels, self.n_columns), LEVELS_DB[0], dtype=np.float32)
        self._display = np.empty_like(self.ring)
        self._pos = 0  # next column to write

    def push(self, event: SpectrogramEvent) -> None:
        """Append ``event.columns`` (n, n_mels) to the ring; drawing happens in :meth:`redraw`."""
        cols = np.asarray(event.columns, dtype=np.float32)
        if cols.ndim != 2 or cols.shape[0] == 0:
            return
        if cols.shape[1] != self.n_mels:
            self._alloc(cols.shape[1])
        # NaN and ±inf (log of digital silence) are drawn at the floor, never the brightest
        cols = np.nan_to_num(cols, nan=LEVELS_DB[0], posinf=LEVELS_DB[0], neginf=LEVELS_DB[0])
        cols = np.clip(cols, *LEVELS_DB)[-self.n_columns :]
        n = cols.shape[0]
        first = min(n, self.n_columns - self._pos)
        self.ring[:, self._pos : self._pos + first] = cols[:first].T
        if n > first:
            self.ring[:, : n - first] = cols[first:].T
        self._pos = (self._pos + n) % self.n_columns
        self.columns_written += n
        self.t_end_s = float(event.t_s)
        self._dirty = True

    def reset(self) -> None:
        self.ring.fill(LEVELS_DB[0])
        self._pos = 0
        self.columns_written = 0
        self.t_end_s = 0.0
        self._dirty = True

    def image(self) -> np.ndarray:
        """The ring unrolled oldest-to-newest, float32 (n_mels, n_columns) dB."""
        k = self.n_columns - self._pos
        self._display[:, :k] = self.ring[:, self._pos :]
        self._display[:, k:] = self.ring[:, : self._pos]
        return self._display

    def redraw(self, force: bool = False) -> None:
        """Copy the ring into the ImageItem if new columns arrived (timer slot)."""
        if not (self._dirty or force):
            return
        self._dirty = False
        self.image_item.setImage(self.image(), autoLevels=False, levels=LEVELS_DB)
        # The newest column sits at t_end_s; before the ring has filled, the view starts at 0.
        end = self.t_end_s
        self.image_item.setRect(QRectF(end - self.window_s, 0.0, self.window_s, self.n_mels))
        x0 = max(0.0, end - self.window_s)
        self.getPlotItem().setRange(
            xRange=(x0, x0 + self.window_s), yRange=(0, self.n_mels), padding=0
        )
        self.frames_drawn += 1
