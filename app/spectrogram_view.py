"""Scrolling log-mel spectrogram: a ring of columns, painted when Qt repaints, never per column.

A plain QWidget: the axes, labels and colour bar are painted once per resize into a cached
pixmap; each redraw maps the ring through the colour table into a small ARGB image that
Qt scales into the plot area. (The pyqtgraph plot it replaces spent ~0.08 CPU s per audio
second relaying out moving axes; docs/benchmarks.md, issue 16.)
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from voxgate.core.config import FeatureConfig
from voxgate.core.events import SpectrogramEvent

from .theme import MUTED, SURFACE

LEVELS_DB = (-80.0, 0.0)  # fixed colour levels: no per-frame autoscaling
TICK_HZ = (250, 500, 1000, 2000, 4000, 8000)
COLOURBAR_PX = 12


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


def colour_table(colormap: str, n: int = 256) -> np.ndarray:
    """``n`` opaque colours of a pyqtgraph colour map as uint32 ARGB (QImage.Format_ARGB32)."""
    import pyqtgraph as pg

    rgb = pg.colormap.get(colormap).getLookupTable(nPts=n, alpha=False).astype(np.uint32)
    return (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32)


class SpectrogramView(QWidget):
    """Log-mel spectrogram of the last ``window_s`` seconds.

    Columns (float32 dB, 0 = peak) go into a row-major ring ``(n_mels, n_columns)`` and
    ask Qt for a repaint of the plot area; Qt merges the requests that arrive before it
    paints (and the level meter's, which come with the same display update) into one pass,
    where the ring is unrolled through the colour table into :attr:`pixels`, once.
    x axis: seconds before now; y axis: mel band, in Hz.
    """

    def __init__(
        self,
        feature_config: FeatureConfig | None = None,
        *,
        window_s: float = 8.0,
        colormap: str = "inferno",
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.window_s = window_s
        self._feature_config = feature_config or FeatureConfig()
        self._columns_for(self._feature_config)
        self.lut = colour_table(colormap)
        self._alloc(self._feature_config.n_mels)
        self.t_end_s = 0.0
        self.columns_written = 0  # total columns ever pushed
        self.frames_drawn = 0
        self._dirty = False
        self._background: QPixmap | None = None
        self._plot_rect: QRect | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.redraw(force=True)

    @property
    def feature_config(self) -> FeatureConfig:
        return self._feature_config

    @feature_config.setter
    def feature_config(self, cfg: FeatureConfig) -> None:
        """Another model's features: new bands, column width and labels, the picture emptied."""
        self._feature_config = cfg
        self._columns_for(cfg)
        self._alloc(cfg.n_mels)
        self.reset()

    def _columns_for(self, cfg: FeatureConfig) -> None:
        """One column per STFT hop of ``cfg``, as many as ``window_s`` holds."""
        self.column_s = cfg.hop_length / cfg.sample_rate
        self.n_columns = max(8, int(round(self.window_s / self.column_s)))

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt naming)
        return QSize(480, 200)

    def _alloc(self, n_mels: int) -> None:
        self.n_mels = n_mels
        self.ring = np.full((n_mels, self.n_columns), LEVELS_DB[0], dtype=np.float32)
        self._display = np.empty_like(self.ring)
        self.pixels = np.empty((n_mels, self.n_columns), dtype=np.uint32)  # top row = top band
        # a view of pixels, not a copy: each paint shows what redraw wrote there
        self._image = QImage(self.pixels.data, self.n_columns, n_mels, self.n_columns * 4,
                             QImage.Format.Format_ARGB32)  # fmt: skip
        self._pos = 0  # next column to write
        self._background = None

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
        self.update(self.plot_rect())  # Qt paints later, once for every column pushed by then

    def reset(self) -> None:
        self.ring.fill(LEVELS_DB[0])
        self._pos = 0
        self.columns_written = 0
        self.t_end_s = 0.0
        self._dirty = True
        self.update(self.plot_rect())

    def image(self) -> np.ndarray:
        """The ring unrolled oldest-to-newest, float32 (n_mels, n_columns) dB."""
        k = self.n_columns - self._pos
        self._display[:, :k] = self.ring[:, self._pos :]
        self._display[:, k:] = self.ring[:, : self._pos]
        return self._display

    def colour_indices(self) -> np.ndarray:
        """:meth:`image` as rows of the colour table, lowest band first."""
        lo, hi = LEVELS_DB
        scaled = (self.image() - lo) * ((len(self.lut) - 1) / (hi - lo))
        return np.clip(np.rint(scaled), 0, len(self.lut) - 1).astype(np.intp)

    def redraw(self, force: bool = False) -> None:
        """Map the ring through the colour table into :attr:`pixels` if new columns arrived
        since the last time (``force``: anyway) and ask for a repaint."""
        if self._refresh_pixels(force):
            self.update(self.plot_rect())

    def _refresh_pixels(self, force: bool = False) -> bool:
        if not (self._dirty or force):
            return False
        self._dirty = False
        np.take(self.lut, self.colour_indices()[::-1], out=self.pixels)  # highest band on top
        self.frames_drawn += 1
        return True

    # ------------------------------------------------------------------ painting

    def plot_rect(self) -> QRect:
        """Where the picture goes: inside the axis labels and left of the colour bar."""
        if self._plot_rect is None:
            self._plot_rect = self._layout_plot_rect()
        return self._plot_rect

    def _layout_plot_rect(self) -> QRect:
        fm = self.fontMetrics()
        left = fm.horizontalAdvance("8k") + fm.height() + 10
        right = COLOURBAR_PX + fm.horizontalAdvance("-80 dB") + 14
        top, bottom = fm.height() // 2 + 2, 2 * fm.height() + 8
        return QRect(left, top, max(1, self.width() - left - right),
                     max(1, self.height() - top - bottom))  # fmt: skip

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        self._background = self._plot_rect = None
        super().resizeEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if self._background is None or self._background.size() != self.size():
            self._background = self._paint_background()
        self._refresh_pixels()  # the columns pushed since the last paint, unrolled once
        p = QPainter(self)
        plot = self.plot_rect()
        if not plot.contains(event.rect()):  # the axes, when they are part of the repaint
            p.drawPixmap(event.rect(), self._background, event.rect())
        p.drawImage(plot, self._image)  # nearest-neighbour scaling
        p.end()

    def _paint_background(self) -> QPixmap:
        """Axes, tick labels and the colour bar: everything but the picture."""
        pix = QPixmap(self.size())
        pix.fill(QColor(SURFACE))
        p = QPainter(pix)
        p.setPen(QColor(MUTED))
        fm, r = self.fontMetrics(), self.plot_rect()
        text_h = fm.height()
        for band, label in mel_band_ticks(self._feature_config):
            y = r.bottom() - round(band / self.n_mels * r.height())
            p.drawLine(r.left() - 4, y, r.left() - 1, y)
            p.drawText(QRect(0, y - text_h // 2, r.left() - 6, text_h),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)  # fmt: skip
        step = 2.0 if self.window_s >= 4 else 0.5
        for i in range(int(self.window_s / step) + 1):
            ago = i * step
            x = r.right() - round(ago / self.window_s * r.width())
            p.drawLine(x, r.bottom() + 1, x, r.bottom() + 4)
            p.drawText(QRect(x - 30, r.bottom() + 5, 60, text_h), Qt.AlignmentFlag.AlignHCenter,
                       "now" if ago == 0 else f"-{ago:g}")  # fmt: skip
        p.drawText(QRect(r.left(), r.bottom() + 5 + text_h, r.width(), text_h),
                   Qt.AlignmentFlag.AlignHCenter, "time (s)")  # fmt: skip
        p.save()
        p.translate(text_h // 2 + 1, r.center().y())
        p.rotate(-90)
        p.drawText(QRect(-r.height() // 2, -text_h // 2, r.height(), text_h),
                   Qt.AlignmentFlag.AlignHCenter, "frequency (Hz, mel scale)")  # fmt: skip
        p.restore()
        bar = QRect(r.right() + 8, r.top(), COLOURBAR_PX, r.height())
        ramp = np.ascontiguousarray(self.lut[::-1])  # 0 dB on top; alive while drawn
        p.drawImage(bar, QImage(ramp.data, 1, len(ramp), 4, QImage.Format.Format_ARGB32))
        for value, y in ((LEVELS_DB[1], bar.top()), (LEVELS_DB[0], bar.bottom() - text_h)):
            p.drawText(QRect(bar.right() + 4, y, 60, text_h), Qt.AlignmentFlag.AlignLeft,
                       f"{value:g} dB")  # fmt: skip
        p.end()
        return pix
