"""1-row (1-D) inputs drawn as line plots: a 1×N input is a signal, not a picture.

Image tiles of a 1×N map are N×1-pixel strips with nothing to read; here every map is a
line plot of its channels (one curve each) on an x axis in *input* columns, so a conv's
response sits right under the stretch of signal its kernel read. Plots are stacked in a
scroll area with their titles above them (nothing overlaps), click a point to select that
cell (its arithmetic and receptive field follow, as in the image view), and the selected
cell's receptive field is shaded in every earlier plot.

:class:`RowMapsView` serves two places: the feature-map view shows every map with it when
the input has one row, and the input panel shows the input with the first conv's
response beneath it.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from cnn_explorer.explorer import explain
from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.model import Change
from cnn_explorer.explorer.results import Results
from cnn_explorer.explorer.specs import LayerSpec

PLOT_HEIGHT = 140
"""Height of one map's plot in pixels (readable, never a strip)."""
MIN_PLOT_HEIGHT = 72
"""The input panel's two plots share its height, but never get smaller than this."""
RGB_PENS = ("#d62728", "#2ca02c", "#1f77b4")
"""Curves of a 3-channel input: red, green, blue."""


def column_axes(specs: Sequence[LayerSpec], widths: Sequence[int]) -> list[tuple[float, float]]:
    """``(a, b)`` per map so that column ``j`` of map ``m`` sits at input column
    ``a·j + b``: the centre of the input stretch it was computed from.

    Windows compose affinely: a layer with stride ``s``, left padding ``p``, dilation
    ``d`` and kernel width ``k`` puts its column ``j`` at ``j·s − p + d·(k − 1)/2`` of
    its input; elementwise layers keep the columns.
    """
    axes = [(1.0, 0.0)]
    for i in range(1, len(widths)):
        a, b = axes[-1]
        win = explain.window(specs[i - 1]) if i - 1 < len(specs) else None
        if win is None:
            axes.append((a, b))
            continue
        k, s, d, left = win.kernel[1], win.stride[1], win.dilation[1], win.padding[2]
        axes.append((a * s, a * (d * (k - 1) / 2 - left) + b))
    return axes


def _colour(channel: int, channels: int) -> str:
    """A curve's colour: dark grey alone, red/green/blue for three, else distinct hues."""
    if channels == 1:
        return "#333333"
    if channels == 3:
        return RGB_PENS[channel]
    return str(pg.intColor(channel, hues=channels).name())


class RowMapsView(QWidget):
    """Line plots of the maps of a 1-row input (see the module docstring).

    ``first_conv_only``: show the input and the first conv layer's output (the input
    panel) instead of every map. :attr:`applies_changed` tells the owner whether the
    current input has one row, i.e. whether this view should be shown.
    """

    applies_changed = Signal(bool)

    def __init__(
        self, doc: Document, first_conv_only: bool = False, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.doc = doc
        self.first_conv_only = first_conv_only
        self.applies = False
        self.plots: list[pg.PlotWidget] = []
        self.titles: list[QLabel] = []
        self.map_indices: list[int] = []
        self._axes: list[tuple[float, float]] = []
        self._maps: list[np.ndarray] = []
        self._marks: list[list[object]] = []
        self._body = QWidget()
        self._column = QVBoxLayout(self._body)
        self._column.setContentsMargins(6, 4, 6, 4)
        self._column.setSpacing(2)
        self._column.addStretch(0 if first_conv_only else 1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self._body)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.scroll)
        doc.results_ready.connect(self.show_results)
        doc.changed.connect(self._on_changed)
        self.show_results(doc.results)

    # ------------------------------------------------------------------ results
    def _shown(self, res: Results) -> list[int]:
        """Map indices to plot: every map, or the input and the first conv's output."""
        if not self.first_conv_only:
            return list(range(len(res.maps)))
        for i, spec in enumerate(self.doc.layers):
            if spec.enabled and spec.kind == "conv" and i + 1 < len(res.maps):
                return [0, i + 1]
        return [0]

    def show_results(self, res: Results) -> None:
        """Plot the maps of ``res`` (when the input has one row) and say whether it does."""
        applies = bool(res.maps) and res.maps[0].shape[1] == 1
        if applies != self.applies:
            self.applies = applies
            self.applies_changed.emit(applies)
        if not applies:
            return
        shown = [m for m in self._shown(res) if res.maps[m].shape[1] == 1]
        axes = column_axes(self.doc.layers, [int(x.shape[2]) for x in res.maps])
        titles = [self._title(res, m) for m in shown]
        if shown != self.map_indices or [self._curves(p) for p in self.plots] != [
            int(res.maps[m].shape[0]) for m in shown
        ]:
            self._rebuild([int(res.maps[m].shape[0]) for m in shown])
        self.map_indices = shown
        self._maps = [res.maps[m] for m in shown]
        self._axes = [axes[m] for m in shown]
        for plot, label, title, x, (a, b) in zip(
            self.plots, self.titles, titles, self._maps, self._axes, strict=True
        ):
            label.setText(title)
            xs = a * np.arange(x.shape[2]) + b
            for ch, item in enumerate(plot.getPlotItem().listDataItems()):
                item.setData(xs, np.nan_to_num(x[ch, 0], nan=0.0, posinf=0.0, neginf=0.0))
        self._show_selection()

    @staticmethod
    def _curves(plot: pg.PlotWidget) -> int:
        return len(plot.getPlotItem().listDataItems())

    def _title(self, res: Results, m: int) -> str:
        c, _, w = res.maps[m].shape
        if m == 0:
            name = "Input"
        else:
            spec = self.doc.layers[m - 1] if m - 1 < len(self.doc.layers) else None
            name = f"Layer {m}: {spec.title if spec is not None else '?'}"
        names = "RGB" if c == 3 and m == 0 else [str(i) for i in range(c)]
        keys = " ".join(
            f'<span style="color:{_colour(i, c)}">━ {names[i]}</span>' for i in range(min(c, 8))
        ) + (" …" if c > 8 else "")
        return f"<b>{name}</b> · {c}×1×{w} &nbsp; {keys}"

    def _rebuild(self, channels_per_plot: list[int]) -> None:
        """One titled plot per map with one curve per channel; x axes linked."""
        for w in (*self.plots, *self.titles):
            self._column.removeWidget(w)
            w.deleteLater()
        self.plots, self.titles, self._marks = [], [], []
        for i, channels in enumerate(channels_per_plot):
            label = QLabel()
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            plot = pg.PlotWidget(background="w")
            if self.first_conv_only:
                plot.setMinimumHeight(MIN_PLOT_HEIGHT)
            else:
                plot.setFixedHeight(PLOT_HEIGHT)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.showGrid(x=True, y=True, alpha=0.25)
            if not self.first_conv_only:  # the small panel keeps its height for the curves
                plot.getPlotItem().setLabel("bottom", "input column")
            if self.plots:
                plot.setXLink(self.plots[0])
            for ch in range(channels):
                colour = _colour(ch, channels)
                plot.plot(
                    pen=pg.mkPen(colour, width=2),
                    symbol="o",
                    symbolSize=4,
                    symbolPen=None,
                    symbolBrush=colour,
                )
            plot.scene().sigMouseClicked.connect(lambda ev, i=i: self._clicked(i, ev))
            at = self._column.count() - 1  # before the stretch
            self._column.insertWidget(at, label)
            self._column.insertWidget(at + 1, plot, 1)
            self.titles.append(label)
            self.plots.append(plot)
            self._marks.append([])

    # ------------------------------------------------------------------ selection
    def _clicked(self, i: int, ev: object) -> None:
        """Select the cell of plot ``i`` nearest the click (column, then channel)."""
        if i >= len(self._maps):
            return
        vb = self.plots[i].getPlotItem().getViewBox()
        pt = vb.mapSceneToView(ev.scenePos())  # type: ignore[attr-defined]
        x = self._maps[i]
        a, b = self._axes[i]
        col = int(np.clip(round((pt.x() - b) / a), 0, x.shape[2] - 1))
        ch = int(np.nanargmin(np.abs(x[:, 0, col] - pt.y())))
        self.doc.select_cell(Selection(self.map_indices[i], ch, 0, col))

    def _on_changed(self, change: Change) -> None:
        if change.kind == "cell" and self.applies:
            self._show_selection()

    def _show_selection(self) -> None:
        """Shade the receptive field in earlier plots and mark the selected cell."""
        for plot, marks in zip(self.plots, self._marks, strict=True):
            for item in marks:
                plot.removeItem(item)
            marks.clear()
        sel = self.doc.selection
        if sel is None:
            return
        try:
            regions = {r.map_index: r for r in self.doc.model.receptive_field(sel)}
        except Exception:  # results of another shape mid-recompute: no marks yet
            return
        for plot, marks, m, (a, b) in zip(
            self.plots, self._marks, self.map_indices, self._axes, strict=True
        ):
            region = regions.get(m)
            if region is not None and region.col_range is not None:
                c0, c1 = region.col_range
                span = (a * c0 + b - a / 2, a * c1 + b + a / 2)
                shade = pg.LinearRegionItem(span, movable=False, brush=(255, 160, 0, 60))
                marks.append(shade)
            if m == sel.map_index:
                marks.append(pg.InfiniteLine(a * sel.col + b, pen=pg.mkPen("#e6550d", width=2)))
            for item in marks:
                plot.addItem(item)

    def marked(self, map_index: int) -> tuple[float, float] | None:
        """The shaded x span of a map's plot (None when nothing is shaded) — for tests."""
        if map_index not in self.map_indices:
            return None
        for item in self._marks[self.map_indices.index(map_index)]:
            if isinstance(item, pg.LinearRegionItem):
                lo, hi = item.getRegion()
                return float(lo), float(hi)
        return None
