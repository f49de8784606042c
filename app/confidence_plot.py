"""Confidence over time: mean score with its MC-dropout ± std band and the threshold line."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from voxgate.core.events import ScoreEvent

from .redraw_timer import redraw_timer, request_redraw


class ConfidencePlot(pg.PlotWidget):
    """Best candidate's score per analysis window (x: window end, s; y: score).

    Points are kept for the last ``window_s`` seconds; :meth:`redraw` (a timer slot,
    at most ``fps`` per second) copies them into the curves. Windows more than ``gap_s``
    apart (silence: no speech, no score) are not joined: a NaN point breaks the line.
    """

    def __init__(
        self,
        *,
        window_s: float = 30.0,
        gap_s: float = 1.5,
        fps: float = 15.0,
        y_label: str = "score (cosine)",
        parent: QWidget | None = None,
    ):
        super().__init__(parent=parent)
        self.window_s = window_s
        self.gap_s = gap_s
        self.times = np.zeros(0, dtype=np.float64)
        self.means = np.zeros(0, dtype=np.float64)
        self.stds = np.zeros(0, dtype=np.float64)
        self.threshold: float | None = None
        self.frames_drawn = 0
        self._dirty = False

        plot = self.getPlotItem()
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLabel("bottom", "time", units="s")
        plot.setLabel("left", y_label)
        accent = QColor("#4fc3f7")
        self.mean_curve = plot.plot(pen=pg.mkPen(accent, width=2), name="mean", connect="finite")
        band_pen = pg.mkPen(None)
        self._upper = pg.PlotDataItem(pen=band_pen, connect="finite")
        self._lower = pg.PlotDataItem(pen=band_pen, connect="finite")
        fill = QColor(accent)
        fill.setAlpha(60)
        self.band = pg.FillBetweenItem(self._upper, self._lower, brush=pg.mkBrush(fill))
        plot.addItem(self.band)
        self.threshold_line = pg.InfiniteLine(
            angle=0,
            movable=False,
            pen=pg.mkPen("#ffb74d", width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine),
            label="threshold {value:.2f}",
            labelOpts={"position": 0.08, "color": "#ffb74d", "anchors": [(0, 1), (0, 1)]},
        )
        self.threshold_line.setVisible(False)
        plot.addItem(self.threshold_line)
        self.set_y_label(y_label)
        self.redraw(force=True)

        self._timer = redraw_timer(self, fps, self.redraw)

    def set_y_label(self, text: str) -> None:
        self.getPlotItem().setLabel("left", text)

    def set_threshold(self, value: float | None) -> None:
        self.threshold = None if value is None else float(value)
        # visible first: the line's label only re-renders its text while visible
        self.threshold_line.setVisible(self.threshold is not None)
        if self.threshold is not None:
            self.threshold_line.setValue(self.threshold)
            self.threshold_line.label.setFormat(f"threshold {self.threshold:.2f}")
            self._place_threshold_label()

    def _place_threshold_label(self) -> None:
        """The label sits above the line, or below it near the top (where it would be cut)."""
        if self.threshold is None:
            return
        lo, hi = self.getPlotItem().viewRange()[1]
        label = self.threshold_line.label
        room_px = (hi - self.threshold) / max(hi - lo, 1e-9) * self.getPlotItem().vb.height()
        below = room_px < label.boundingRect().height() + 4
        anchor = (0, 0) if below else (0, 1)
        if label.anchors[0] != anchor:
            label.anchors = [anchor, anchor]
            label.updatePosition()

    def add(self, event: ScoreEvent) -> None:
        """Append the best candidate's mean and spread of one :class:`ScoreEvent`."""
        if event.best is None or not np.isfinite(event.best_score):
            return
        t = float(event.t_end_s)
        keep = self.times > t - self.window_s
        times, means, stds = self.times[keep], self.means[keep], self.stds[keep]
        if times.size and t - times[-1] > self.gap_s:  # a silence: break the line
            times, means, stds = (np.append(a, v) for a, v in ((times, np.nan), (means, np.nan),
                                                                (stds, np.nan)))  # fmt: skip
            times[-1] = (times[-2] + t) / 2
        self.times = np.append(times, t)
        self.means = np.append(means, float(event.best_score))
        self.stds = np.append(stds, float(np.nan_to_num(event.best_spread)))
        if self.threshold is None and np.isfinite(event.threshold):
            self.set_threshold(event.threshold)
        self._dirty = True
        request_redraw(self._timer)

    def reset(self) -> None:
        self.times = self.times[:0]
        self.means = self.means[:0]
        self.stds = self.stds[:0]
        self._dirty = True
        request_redraw(self._timer)

    def redraw(self, force: bool = False) -> None:
        if not (self._dirty or force):
            return
        self._dirty = False
        self.mean_curve.setData(self.times, self.means)
        self._upper.setData(self.times, self.means + self.stds)
        self._lower.setData(self.times, self.means - self.stds)
        end = float(self.times[-1]) if self.times.size else 0.0
        x0 = max(0.0, end - self.window_s)
        finite = np.isfinite(self.means)
        lows = (self.means - self.stds)[finite]
        lo = min([-0.1] + ([float(lows.min())] if lows.size else []))
        if self.threshold is not None:
            lo = min(lo, self.threshold - 0.05)
        plot = self.getPlotItem()
        plot.setRange(xRange=(x0, x0 + self.window_s), yRange=(max(-1.05, lo), 1.05), padding=0)
        self._place_threshold_label()
        self.frames_drawn += 1
