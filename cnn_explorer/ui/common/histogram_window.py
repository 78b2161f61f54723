"""A histogram on demand, in a small window: a feature map's values (right click on a map
in the explorer) or a filter's or a whole layer's weights (kernel editor, training filter
grid). Bins over the finite range, with the count of exact zeros, NaN and ±inf said in
words: they are what a histogram hides. It lives in ``ui.common`` because both tabs use it.

The numbers are :func:`cnn_explorer.explorer.stats.histogram`'s; this file only draws them.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QDialog, QLabel, QVBoxLayout, QWidget

from cnn_explorer.explorer.stats import Histogram, histogram
from cnn_explorer.ui.common import colors

BINS = 32
TEXT = "#222"


def histogram_summary(values: np.ndarray, h: Histogram) -> str:
    """``"196 values · −0.91…1.34 · 22% zeros · 3 NaN/inf"`` under the plot."""
    a = np.asarray(values)
    finite = a[np.isfinite(a)]
    parts = [f"{a.size} values"]
    if finite.size:
        parts.append(f"{colors.fmt(float(finite.min()))}…{colors.fmt(float(finite.max()))}")
        zeros = float((finite == 0).sum()) / a.size
        if zeros:
            parts.append("all zeros (dead)" if zeros == 1 else f"{zeros:.0%} zeros")
    if h.nonfinite:
        parts.append(f"<b style='color:#b00020'>{h.nan} NaN, {h.posinf} +inf, {h.neginf} −inf</b>")
    return " · ".join(parts)


class HistogramPopup(QDialog):
    """A tool window with the histogram of ``values`` (any shape: a map ``(H, W)``, a filter
    ``(C, kh, kw)``, a layer ``(O, C, kh, kw)``); ``unit`` names what is counted on the
    y axis ("cells", "weights"). Closing it deletes it."""

    def __init__(
        self,
        values: np.ndarray,
        title: str,
        parent: QWidget | None = None,
        unit: str = "cells",
    ) -> None:
        super().__init__(parent, Qt.WindowType.Tool)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle(f"Histogram — {title}")
        self.hist = histogram(values, BINS)
        plot = pg.PlotWidget(background="w")
        centres = (self.hist.edges[:-1] + self.hist.edges[1:]) / 2
        width = float(self.hist.edges[1] - self.hist.edges[0])
        plot.addItem(
            pg.BarGraphItem(x=centres, height=self.hist.counts, width=width, brush="#1f77b4")
        )
        plot.setLabel("bottom", "value", color=TEXT)
        plot.setLabel("left", unit, color=TEXT)
        plot.setMouseEnabled(False, False)
        plot.setMenuEnabled(False)
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTextPen(TEXT)
        self.summary = QLabel(histogram_summary(values, self.hist))
        self.summary.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(QLabel(f"<b>{title}</b>"))
        lay.addWidget(plot, 1)
        lay.addWidget(self.summary)
        self.resize(340, 240)


def open_histogram(
    values: np.ndarray,
    title: str,
    parent: QWidget | None,
    at: QPoint | None = None,
    unit: str = "cells",
) -> HistogramPopup:
    """Show the histogram of ``values`` (a map ``(H, W)``, weights of any shape) near
    screen point ``at``."""
    popup = HistogramPopup(values, title, parent, unit)
    if at is not None:
        popup.move(at + QPoint(12, 12))
    popup.show()
    return popup


__all__ = ["HistogramPopup", "histogram_summary", "open_histogram"]
