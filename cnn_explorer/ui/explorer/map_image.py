"""The coloured map of a feature-map tile: a pyqtgraph ImageItem that paints from one
32-bit image it colours itself, recolours only the cells an edit changed, and reports
hover and clicks in cell coordinates (``map_items.py`` puts it in a tile's view box).
"""

from __future__ import annotations

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QRectF, Qt
from PySide6.QtGui import QImage

from cnn_explorer.explorer.explain import Selection
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.common.histogram_window import open_histogram

HoverSlot = Callable[[tuple[int, int, int, int] | None], None]
"""Told ``(map, channel, row, col)`` under the mouse, or None when it leaves a map."""
ClickSlot = Callable[[Selection], None]
"""Told the cell a left click landed on."""


class MapImage(pg.ImageItem):
    """An ImageItem that reports hover and click in cell coordinates; a right click opens
    the map's histogram (:mod:`cnn_explorer.ui.common.histogram_window`)."""

    def __init__(
        self,
        map_index: int,
        channel: int,
        hover: HoverSlot | None = None,
        click: ClickSlot | None = None,
    ) -> None:
        super().__init__(axisOrder="row-major")
        self.map_index = map_index
        self.channel = channel
        self._hover, self._click = hover, click
        self.data2d: np.ndarray = np.zeros((1, 1), np.float32)
        self.title = ""  # the layer's title, for the histogram window
        self._rgb32 = np.zeros((0, 0), np.uint32)
        self._own = False  # the image on screen is render()'s _rgb32 (patch may write it)
        self.setAcceptHoverEvents(True)

    def render(self) -> None:
        """Colour the map straight into a 32-bit image (same indices as pyqtgraph's float
        path: ``trunc(clip((v - lo) · 256 / (hi - lo), 0, 255))``).

        pyqtgraph would build an Indexed8 image with a fresh 256-entry colour table each
        time, which QPainter then converts on every draw; an RGB32 image draws ~10× faster.
        Anything unusual (NaN, colour data, no LUT) takes pyqtgraph's own path."""
        img, lut, levels = self.image, self.lut, self.levels
        if (
            img is None
            or img.ndim != 2
            or img.size == 0
            or img.dtype != np.float32
            or not isinstance(lut, np.ndarray)
            or lut.shape != (256, 3)
            or levels is None
            or np.ndim(levels) != 1
        ):
            super().render()
            return
        with np.errstate(all="ignore"):
            if np.isnan(img.min()):
                self._own = False
                super().render()  # NaN cells are drawn transparent by pyqtgraph
                return
        self._rgb32 = self._argb(img)
        h, w = self._rgb32.shape
        self.qimage = QImage(self._rgb32.data, w, h, 4 * w, QImage.Format.Format_RGB32)
        self._own = True
        # pyqtgraph's bookkeeping after a render (see ImageItem.render).
        self._processingBuffer = None
        self._displayBuffer = None
        self._renderRequired = False
        self._unrenderable = False

    def _argb(self, values: np.ndarray) -> np.ndarray:
        """``values`` (2-D float32, no NaN) coloured with the current levels and LUT."""
        lo, hi = float(self.levels[0]), float(self.levels[1])  # type: ignore[index]
        with np.errstate(all="ignore"):
            buf = values.astype(np.float32, copy=True)
            buf -= lo
            buf *= 256.0 / ((hi - lo) or 1.0)
            np.clip(buf, 0, 255, out=buf)
        return colors.lut_argb32(self.lut).take(buf.astype(np.uint8))

    def patch(self, a: np.ndarray, window: tuple[int, int, int, int], step: int = 1) -> bool:
        """Show ``a`` (same shape, levels and LUT as shown, every ``step``-th row and
        column of it on screen) where only the cells ``window`` changed: recolour and
        repaint those alone (a cell edit of a ~100-map document repainted every tile in
        view). False, with nothing done, when the image on screen is not this class's
        rendering of an array of that shape, or the window holds NaN: then a full
        ``setImage`` is needed."""
        shown = a[::step, ::step] if step > 1 else a
        old = self.image
        if not self._own or self._renderRequired or old is None or old.shape != shown.shape:
            return False
        r0, r1, c0, c1 = (
            -(-window[0] // step),
            window[1] // step,
            -(-window[2] // step),
            window[3] // step,
        )
        block = shown[r0 : r1 + 1, c0 : c1 + 1]  # the shown samples inside the window
        with np.errstate(all="ignore"):
            if block.size and np.isnan(block.min()):
                return False
        self.image = shown
        if block.size:
            self._rgb32[r0 : r1 + 1, c0 : c1 + 1] = self._argb(block)
            self.update(QRectF(c0, r0, block.shape[1], block.shape[0]))
        return True

    def cell_at(self, pos: object) -> tuple[int, int] | None:
        x, y = pos.x(), pos.y()  # type: ignore[attr-defined]
        h, w = self.data2d.shape
        r, c = int(np.floor(y)), int(np.floor(x))
        if 0 <= r < h and 0 <= c < w:
            return r, c
        return None

    def hoverEvent(self, ev: Any) -> None:
        if self._hover is None:
            return
        if ev.isExit():
            self._hover(None)
            return
        cell = self.cell_at(ev.pos())
        if cell is not None:
            self._hover((self.map_index, self.channel, *cell))

    def mouseClickEvent(self, ev: Any) -> None:
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            views = self.scene().views() if self.scene() is not None else []
            pos = ev.screenPos()
            open_histogram(
                self.data2d,
                f"{self.title or f'map {self.map_index}'}, channel {self.channel}",
                views[0] if views else None,
                QPoint(int(pos.x()), int(pos.y())),
            )
            return
        if ev.button() != Qt.MouseButton.LeftButton or self._click is None:
            return
        cell = self.cell_at(ev.pos())
        if cell is not None:
            ev.accept()
            self._click(Selection(self.map_index, max(self.channel, 0), *cell))
