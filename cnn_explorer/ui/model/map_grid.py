"""The maps of one node: every channel as a tile of one mosaic image (one pyqtgraph
ImageItem however many channels: a 512-channel layer draws as fast as a 1-channel one),
a colour bar, hover values and click-to-select; vectors (a classifier's scores, a
``(C, 1, 1)`` pooled map) as a bar plot.

Tiles are laid out in rows chosen so the mosaic roughly fills the view; the cells between
tiles are NaN, which pyqtgraph leaves transparent. Colours come from
:mod:`cnn_explorer.ui.common.colors` (0 is white for signed data, dark for non-negative).
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsRectItem, QStackedWidget, QVBoxLayout, QWidget

from cnn_explorer.ui.common import colors


def mosaic_layout(c: int, h: int, w: int, aspect: float = 1.6) -> tuple[int, int]:
    """``(per_row, gap)`` for ``c`` tiles of ``h×w`` so that the mosaic's width/height is
    about ``aspect`` (the view's); ``gap`` cells separate the tiles."""
    gap = max(1, round(0.12 * max(h, w))) if c > 1 else 0
    per_row = max(1, min(c, round(math.sqrt(c * aspect * (h + gap) / (w + gap)))))
    return per_row, gap


def build_mosaic(maps: np.ndarray, per_row: int, gap: int) -> np.ndarray:
    """``(C, H, W)`` → one float32 image of the tiles, NaN between them."""
    c, h, w = maps.shape
    rows = -(-c // per_row)
    out = np.full((rows * (h + gap) - gap, per_row * (w + gap) - gap), np.nan, np.float32)
    for ch in range(c):
        r, q = divmod(ch, per_row)
        out[r * (h + gap) : r * (h + gap) + h, q * (w + gap) : q * (w + gap) + w] = maps[ch]
    return out


class _MosaicImage(pg.ImageItem):
    """Reports hover and click in mosaic pixels."""

    def __init__(self, grid: MapGrid) -> None:
        super().__init__(axisOrder="row-major")
        self.grid = grid
        self.setAcceptHoverEvents(True)

    def hoverEvent(self, ev: Any) -> None:
        self.grid.hover_at(None if ev.isExit() else ev.pos())

    def mouseClickEvent(self, ev: Any) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and self.grid.click_at(ev.pos()):
            ev.accept()


class MapGrid(QWidget):
    """One node's maps (or bars); emits the cell under the mouse and the cell clicked."""

    cell_clicked = Signal(tuple)  # (channel, row, col) of the maps, or (i,) of the bars
    hovered = Signal(tuple)  # the cell under the mouse, same form

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.maps: np.ndarray | None = None
        self.vector: np.ndarray | None = None
        self.label = ""
        self._layout: tuple[int, int] = (1, 0)
        self._marked: tuple[int, ...] | None = None
        self.maps_view = pg.GraphicsLayoutWidget()
        self.maps_view.setBackground("w")
        self.vb = self.maps_view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = _MosaicImage(self)
        self.vb.addItem(self.image)
        self.cell_box = self._box(pg.mkPen(20, 20, 20, width=3, cosmetic=True))
        self.cbar = pg.ColorBarItem(
            values=(0, 1), colorMap=colors.SEQUENTIAL, interactive=False, width=14
        )
        self.maps_view.addItem(self.cbar)
        self.bars_view = pg.PlotWidget(background="w")
        self.bars_view.setMenuEnabled(False)
        self.bars_view.showGrid(y=True, alpha=0.3)
        self.bars = pg.BarGraphItem(x=[0], height=[0], width=0.8, brush=(70, 110, 180))
        self.bars_view.addItem(self.bars)
        self.bar_mark = pg.BarGraphItem(x=[0], height=[0], width=0.8, brush=(230, 120, 20))
        self.bars_view.addItem(self.bar_mark)
        self.bars_view.scene().sigMouseClicked.connect(self._bar_clicked)
        self.bars_view.scene().sigMouseMoved.connect(self._bar_hovered)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.maps_view)
        self.stack.addWidget(self.bars_view)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.stack)

    def _box(self, pen: Any) -> QGraphicsRectItem:
        item = QGraphicsRectItem()
        item.setPen(pen)
        item.setZValue(10)
        item.setVisible(False)
        self.vb.addItem(item)
        return item

    def resizeEvent(self, event: Any) -> None:
        """Re-flow the tiles to the new shape of the view (one image: cheap)."""
        super().resizeEvent(event)
        if self.maps is not None:
            c, h, w = self.maps.shape
            if mosaic_layout(c, h, w, self._aspect()) != self._layout:
                self.show_maps(self.maps, self.label, self._marked)

    def _aspect(self) -> float:
        size = self.maps_view.size()
        return max(0.5, (size.width() - 90) / max(1, size.height()))

    @property
    def showing_bars(self) -> bool:
        return self.stack.currentWidget() is self.bars_view

    # ------------------------------------------------------------------ data
    def show_maps(
        self, maps: np.ndarray, label: str, marked: tuple[int, ...] | None = None
    ) -> None:
        """Show ``(C, H, W)`` as tiles with one colour scale."""
        self.maps, self.vector, self.label = maps, None, label
        c, h, w = maps.shape
        self._layout = mosaic_layout(c, h, w, self._aspect())
        mosaic = build_mosaic(maps, *self._layout)
        levels, signed = colors.levels_for(*colors.finite_range(maps))
        self.image.setImage(mosaic, autoLevels=False, levels=levels)
        self.image.setLookupTable(colors.lut(signed))
        self.cbar.setColorMap(colors.DIVERGING if signed else colors.SEQUENTIAL)
        self.cbar.setLevels(levels)
        self.vb.autoRange(padding=0.02)
        self.stack.setCurrentWidget(self.maps_view)
        self.mark(marked)

    def show_vector(self, v: np.ndarray, label: str) -> None:
        """Show a vector as bars, one per index."""
        self.maps, self.vector, self.label = None, np.asarray(v, np.float64).ravel(), label
        x = np.arange(self.vector.size)
        self.bars.setOpts(x=x, height=np.nan_to_num(self.vector), width=0.8)
        self.bar_mark.setOpts(x=[0], height=[0])
        self.bars_view.setLabel("bottom", "index")
        self.bars_view.autoRange()
        self.stack.setCurrentWidget(self.bars_view)

    def mark(self, where: tuple[int, ...] | None) -> None:
        """Outline the selected cell (``(c, r, q)`` of the maps or ``(i,)`` of the bars)."""
        self._marked = where
        if self.vector is not None:
            if where is None:
                self.bar_mark.setOpts(x=[0], height=[0])
            else:
                i = where[-1]
                self.bar_mark.setOpts(x=[i], height=[float(np.nan_to_num(self.vector[i]))])
            return
        if where is None or self.maps is None:
            self.cell_box.setVisible(False)
            return
        y, x = self.tile_origin(where[0])
        self.cell_box.setRect(QRectF(x + where[2], y + where[1], 1, 1))
        self.cell_box.setVisible(True)

    # ------------------------------------------------------------------ geometry
    def tile_origin(self, channel: int) -> tuple[int, int]:
        """Mosaic ``(row, col)`` of channel ``channel``'s top-left cell."""
        assert self.maps is not None
        _, h, w = self.maps.shape
        per_row, gap = self._layout
        r, q = divmod(channel, per_row)
        return r * (h + gap), q * (w + gap)

    def cell_at(self, y: float, x: float) -> tuple[int, int, int] | None:
        """The map cell ``(channel, row, col)`` at mosaic position ``(y, x)``, or None."""
        if self.maps is None:
            return None
        c, h, w = self.maps.shape
        per_row, gap = self._layout
        yi, xi = math.floor(y), math.floor(x)
        if yi < 0 or xi < 0:
            return None
        tr, rr = divmod(yi, h + gap)
        tq, qq = divmod(xi, w + gap)
        ch = tr * per_row + tq
        if rr >= h or qq >= w or tq >= per_row or ch >= c:
            return None
        return ch, rr, qq

    def hover_at(self, pos: Any) -> None:
        cell = None if pos is None else self.cell_at(pos.y(), pos.x())
        if cell is None or self.maps is None:
            return
        self.hovered.emit(cell)

    def click_at(self, pos: Any) -> bool:
        cell = self.cell_at(pos.y(), pos.x())
        if cell is None:
            return False
        self.cell_clicked.emit(cell)
        return True

    def _bar_index(self, scene_pos: Any) -> int | None:
        if self.vector is None:
            return None
        p = self.bars_view.getPlotItem().vb.mapSceneToView(scene_pos)
        i = round(p.x())
        return i if 0 <= i < self.vector.size else None

    def _bar_clicked(self, ev: Any) -> None:
        i = self._bar_index(ev.scenePos())
        if i is not None and ev.button() == Qt.MouseButton.LeftButton:
            self.cell_clicked.emit((i,))

    def _bar_hovered(self, scene_pos: Any) -> None:
        i = self._bar_index(scene_pos)
        if i is not None and self.vector is not None:
            self.hovered.emit((i,))
