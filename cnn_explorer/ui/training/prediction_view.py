"""The pictures of "Try an image": the input, one mosaic per feature map, the probabilities.

A :class:`~cnn_explorer.ui.training.prediction_panel.Drawing` is drawn as one grid: a
caption row and a row of view boxes (one per picture), then the probability bars. A new
layout (another network or class list) makes its plot items column by column, at most
:data:`~cnn_explorer.ui.common.turns.MAKE_BUDGET_S` per event-loop turn: a fine-tuned
ResNet's twenty-odd columns took a quarter of a second to make in one go, now they appear
a few per turn while the GUI stays responsive. The next pictures of the same layout are
swapped into the items made so far (14 ms for a ResNet).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QGraphicsRectItem, QWidget

from cnn_explorer.ui.common.turns import MAKE_BUDGET_S

if TYPE_CHECKING:
    from cnn_explorer.ui.training.prediction_panel import Drawing, Tile

SELECTED_PEN = pg.mkPen("#ff7f0e", width=2)
CAPTION_SIZE = "9pt"
CAPTION_FONT = QFont()
CAPTION_FONT.setPointSize(9)
MIN_PICTURE_PX = 72
"""The narrowest a column gets, whatever its caption (a mosaic of maps stays readable)."""
PROBABILITY_PLOT_PX = 170
"""The probability plot's width besides its class names (axis, ticks and bars)."""


class PredictionView(pg.GraphicsLayoutWidget):
    """Draws one :class:`Drawing` at a time; :attr:`is_building` while columns of a new
    layout are still to be made (``finished`` when the last one is)."""

    finished = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.setMinimumHeight(160)
        self.budget_s = MAKE_BUDGET_S
        """Time (s) a turn may spend making columns (at least one is made per turn)."""
        self._layout: object = None  # (Drawing.layout(), class names) of the items
        self._class_names: list[str] = []
        self._pending: Drawing | None = None  # the drawing whose columns are still to make
        self._items: list[pg.ImageItem] = []  # the input's, then one per Drawing tile
        self._bars: pg.BarGraphItem | None = None
        self._next_turn = QTimer(self)
        self._next_turn.setSingleShot(True)
        self._next_turn.timeout.connect(self._make_some)

    @property
    def is_building(self) -> bool:
        return self._pending is not None

    def show_drawing(self, drawing: Drawing, class_names: list[str]) -> None:
        """Swap ``drawing``'s pictures and bars into the items when its layout is the one
        on show (or being made); else make new items, the first columns now."""
        layout = (drawing.layout(), tuple(class_names))
        if layout == self._layout:
            pictures = [drawing.image, *(t.rgba for t in drawing.tiles)]
            for item, rgba in zip(self._items, pictures, strict=False):  # made so far
                item.setImage(rgba)
            if self._bars is not None:
                self._bars.setOpts(width=drawing.prediction.probabilities)
            else:
                self._pending = drawing  # the columns still to make show this one
            return
        self.stop()
        self.clear()
        self._layout, self._class_names = layout, list(class_names)
        self._items, self._bars, self._pending = [], None, drawing
        self.setMinimumWidth(self._width_needed(drawing, class_names))
        self._make_some()

    def _width_needed(self, drawing: Drawing, class_names: list[str]) -> int:
        """Pixels every column needs to show its caption and a readable picture, plus the
        probability plot with its class names: the enclosing scroll area scrolls beyond."""
        metrics = QFontMetrics(CAPTION_FONT)
        captions = ["input", *(t.label for t in drawing.tiles)]
        pictures = sum(max(metrics.horizontalAdvance(c) + 16, MIN_PICTURE_PX) for c in captions)
        names = max((metrics.horizontalAdvance(n) for n in class_names), default=0)
        return pictures + names + PROBABILITY_PLOT_PX

    def finish(self) -> None:
        """Make every column still to make now, whatever it costs (tests, scripts)."""
        while self._pending is not None:
            self._make_some(math.inf)

    def stop(self) -> None:
        """Make no more columns (window close); the next drawing makes its items anew."""
        self._next_turn.stop()
        if self._pending is not None:
            self._pending, self._layout = None, None

    def _make_some(self, budget_s: float | None = None) -> None:
        """Make columns until this turn's budget is spent, the rest on the next turn."""
        drawing = self._pending
        if drawing is None:
            return
        end = time.perf_counter() + (self.budget_s if budget_s is None else budget_s)
        tiles: list[Tile | None] = [None, *drawing.tiles]
        while True:
            col = len(self._items)
            if col == len(tiles):
                self._add_bars(col, drawing.prediction.probabilities)
                self._pending = None
                self.finished.emit()
                return
            tile = tiles[col]
            if tile is None:
                self._add_picture(col, "input", drawing.image, "#222")
            else:
                box = self._add_picture(col, tile.label, tile.rgba, tile.colour)
                if tile.outline is not None:
                    _outline(box, tile.shape, tile.outline)
            if time.perf_counter() >= end:
                self._next_turn.start(0)
                return

    def _add_picture(self, col: int, label: str, rgba: np.ndarray, colour: str) -> pg.ViewBox:
        """Column ``col``: its caption over a view box of the ``(h, w, 4)`` picture."""
        self.addLabel(label, row=0, col=col, color=colour, size=CAPTION_SIZE)
        box = self.addViewBox(
            row=1, col=col, lockAspect=True, invertY=True, enableMouse=False, enableMenu=False
        )
        item = pg.ImageItem(rgba, axisOrder="row-major")
        box.addItem(item)
        self._items.append(item)
        return box

    def _add_bars(self, col: int, probabilities: np.ndarray) -> None:
        """The last column: one bar per class (``probabilities (K,)``)."""
        plot = self.addPlot(row=1, col=col, title="probability", enableMenu=False)
        self.addLabel("", row=0, col=col)
        n = len(probabilities)
        self._bars = pg.BarGraphItem(
            x0=0, y=np.arange(n), height=0.7, width=probabilities, brush="#1f77b4"
        )
        plot.addItem(self._bars)
        ticks = [(k, name) for k, name in enumerate(self._class_names)]
        plot.getAxis("left").setTicks([ticks])
        plot.getViewBox().invertY(True)
        plot.setXRange(0, 1, padding=0)
        plot.setMouseEnabled(False, False)
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTextPen("#222")


def _outline(box: pg.ViewBox, shape: tuple[int, ...], channel: int) -> None:
    """Outline tile ``channel`` of a ``tile_maps`` mosaic of ``shape (C, H, W)``."""
    c, h, w = shape
    row, col = divmod(channel, math.ceil(math.sqrt(c)))
    rect = QGraphicsRectItem(col * (w + 1) - 0.5, row * (h + 1) - 0.5, w + 1, h + 1)
    rect.setPen(SELECTED_PEN)
    box.addItem(rect)
