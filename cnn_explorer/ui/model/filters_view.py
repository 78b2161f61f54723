"""The Model tab's filters of the selected conv node, as a grid of pictures.

A conv reading the RGB picture shows one colour patch per filter, each stretched from its
own minimum to its own maximum (what colour and edge it looks for, the way CNN papers
draw first layers). Deeper convs show one row per input channel in a diverging colour map
(blue negative, white 0, red positive): all rows when the layer is small, otherwise one
input channel at a time, chosen with the spin box (a 512×512 layer is 262 144 kernels).
Filters are numbered along the bottom; hovering reads the weights under the mouse;
clicking a filter emits :attr:`FiltersView.filter_clicked` (the tab then shows that
filter's output channel). The pictures come from :mod:`cnn_explorer.ui.common.filter_mosaic`
(shared with the Training tab).
"""

from __future__ import annotations

import html
import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from cnn_explorer.engine.graph import Graph
from cnn_explorer.ui.common.filter_mosaic import (
    colour_patches,
    index_ticks,
    locate,
    mosaic,
    tick_step,
    to_rgba,
)

COLORMAP = "CET-D1"
MAX_ALL_KERNELS = 4096
"""Largest filters × input channels drawn all at once; above, one input channel at a
time (the mosaic is built in a Python loop over kernels)."""
HINT = "Hover a filter to read its weights; click it to see its output channel."


def reads_picture(graph: Graph, name: str) -> bool:
    """True when node ``name`` reads the model's input, directly or through padding."""
    node = graph.node(name)
    while node.inputs[0] != Graph.INPUT:
        node = graph.node(node.inputs[0])
        if node.layer.kind != "pad":
            return False
    return True


class FiltersView(QWidget):
    """The filters of one conv node; hidden for other nodes."""

    filter_clicked = Signal(int)
    """The clicked filter's index (= the conv's output channel)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.weight: np.ndarray | None = None
        """The conv weight ``(O, C/groups, kh, kw)`` shown (None: not a conv)."""
        self.node = ""
        self.colour = False
        self._shown: np.ndarray | None = None  # the weight slice drawn (O, c, kh, kw)
        self._cmap = pg.colormap.get(COLORMAP)
        self.title = QLabel("")
        self.channel = QSpinBox()
        self.channel.setSpecialValueText("all")
        self.channel.setToolTip("Which input channel of each filter to draw")
        self.channel.valueChanged.connect(lambda _: self._draw())
        self.channel_label = QLabel("input channel:")
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.view.setMinimumHeight(90)
        self.plot = self.view.addPlot()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setTextPen("#222")
            axis.setPen("#bbb")
            axis.setStyle(tickLength=-3)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.plot.getViewBox().sigRangeChanged.connect(lambda *_: self._fit_ticks())
        self.view.scene().sigMouseMoved.connect(self._hovered)
        self.view.scene().sigMouseClicked.connect(self._clicked)
        self.hover = QLabel(HINT)
        self.hover.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.channel_label)
        top.addWidget(self.channel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.hover)
        self.setMaximumHeight(300)
        self.setVisible(False)

    # ------------------------------------------------------------------ data
    def show_node(self, graph: Graph, name: str) -> None:
        """Show the filters of node ``name`` of ``graph`` when it is a conv, else hide."""
        if name == Graph.INPUT:
            self.show_filters(name, None)
            return
        layer = graph.node(name).layer
        weight = layer.params.get("weight") if layer.kind == "conv" else None
        self.show_filters(name, weight, weight is not None and reads_picture(graph, name))

    def show_filters(
        self, node: str, weight: np.ndarray | None, reads_picture: bool = False
    ) -> None:
        """Show conv ``weight`` ``(O, C/groups, kh, kw)`` of ``node`` (None hides the view).
        ``reads_picture``: the conv reads the (RGB) input, so 3-channel filters are drawn
        as colour patches."""
        if weight is None or np.asarray(weight).ndim != 4:
            self.weight, self.node = None, node
            self.setVisible(False)
            return
        w = np.asarray(weight, np.float32)
        same = self.node == node and self.weight is not None and self.weight.shape == w.shape
        self.weight, self.node = w, node
        o, c, _, _ = w.shape
        self.colour = reads_picture and c == 3
        small = o * c <= MAX_ALL_KERNELS
        self.channel.blockSignals(True)
        self.channel.setRange(-1 if small else 0, c - 1)
        if not same:
            self.channel.setValue(-1 if small else 0)
        self.channel.blockSignals(False)
        show_pick = not self.colour and c > 1
        self.channel.setVisible(show_pick)
        self.channel_label.setVisible(show_pick)
        self.setVisible(True)
        self._draw()

    @property
    def input_channel(self) -> int | None:
        """The input channel drawn (None: all of them, or a colour patch)."""
        if self.colour or self.weight is None:
            return None
        if self.weight.shape[1] == 1:
            return 0
        v = self.channel.value()
        return None if v < 0 else v

    def set_input_channel(self, channel: int) -> None:
        self.channel.setValue(channel)

    def drawn(self) -> np.ndarray:
        """The ``(H, W, 4)`` RGBA image drawn."""
        return np.asarray(self.image.image)

    def _draw(self) -> None:
        w = self.weight
        if w is None:
            return
        o, c, kh, kw = w.shape
        if self.colour:
            shown, rgba = w, colour_patches(w)
            text = f"{o} colour filters (RGB input), {kh}×{kw}, each stretched min→max"
        else:
            k = self.input_channel
            shown = w if k is None else w[:, k : k + 1]
            values, limit = mosaic(shown)
            rgba = to_rgba(values, limit, self._cmap)
            which = f"all {c} input channels (rows)" if k is None else f"input channel {k}"
            text = (
                f"{o} filters × {c} input channel{'s' * (c > 1)}, {kh}×{kw} — {which}, "
                f"blue − / red +, ±{limit:.3g}"
            )
        self._shown = shown
        self.title.setText(f"<b>Filters of {html.escape(self.node)}</b>: {text}")
        self.image.setImage(rgba, autoLevels=False)
        self.plot.setRange(
            xRange=(0, self.image.width()), yRange=(0, self.image.height()), padding=0.01
        )
        self._fit_ticks()

    def _fit_ticks(self) -> None:
        if self._shown is None:
            return
        o, c, kh, kw = self._shown.shape
        px, py = self.plot.getViewBox().viewPixelSize()
        metrics = QFontMetrics(self.font())
        step = tick_step(o, (kw + 2) / px if px > 0 else 0.0, metrics.horizontalAdvance(str(o)) + 8)
        self.plot.getAxis("bottom").setTicks(index_ticks(o, kw, 2, step))
        if self.colour:
            self.plot.getAxis("left").setTicks([[(kh / 2, "RGB")]])
            return
        first = 0 if self.input_channel is None else self.input_channel
        rows = tick_step(c, (kh + 1) / py if py > 0 else 0.0, metrics.height() + 2)
        ticks = [(j * (kh + 1) + kh / 2, str(first + j)) for j in range(0, c, rows)]
        self.plot.getAxis("left").setTicks([ticks])

    # ------------------------------------------------------------------ hover and click
    def tap_point(self, filt: int, row: int = 0, col: int = 0) -> QPoint:
        """Where (in :attr:`view` coordinates) tap ``(row, col)`` of filter ``filt`` is
        drawn (first row shown): for pointing at it."""
        assert self._shown is not None
        kw = self._shown.shape[3]
        scene = self.image.mapToScene(QPointF(filt * (kw + 2) + col + 0.5, row + 0.5))
        return self.view.mapFromScene(scene)

    def _hit(self, scene_pos: QPointF) -> tuple[int, int | None, int, int] | None:
        """``(filter, input channel or None for a colour patch, row, col)`` under the
        mouse."""
        if self._shown is None:
            return None
        p = self.image.mapFromScene(scene_pos)
        if not (0 <= p.x() < self.image.width() and 0 <= p.y() < self.image.height()):
            return None
        tap = locate(self._shown.shape, self.colour, p.x(), p.y())
        if tap is None:
            return None
        channel = None if tap.channel is None else tap.channel + (self.input_channel or 0)
        return tap.filter, channel, tap.row, tap.col

    def _hovered(self, scene_pos: QPointF) -> None:
        hit = self._hit(scene_pos)
        if hit is None or self.weight is None:
            self.hover.setText(HINT)
            return
        f, ch, r, q = hit
        where = f"{self.node} · filter {f} · tap (row {r}, col {q})"
        if ch is None:
            rgb = self.weight[f, :, r, q]
            values = ", ".join(f"{n} {v:+.4g}" for n, v in zip("RGB", rgb, strict=True))
            self.hover.setText(f"{where}: {values}. Click to see its output channel.")
        else:
            value = float(self.weight[f, ch, r, q])
            self.hover.setText(
                f"{where} · input channel {ch}: {value:+.4g}. Click to see its output channel."
            )

    def _clicked(self, event: Any) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        hit = self._hit(event.scenePos())
        if hit is not None:
            event.accept()
            self.filter_clicked.emit(hit[0])
