"""The scene items of one feature-map tile: the coloured map, its numbers, the highlight
overlays, and the plain records the view keeps per tile and per map.

A tile knows how to show new values, a receptive-field highlight and a traced cell; where
tiles go and when they are updated is the view's business (``feature_map_view.py``).
"""

from __future__ import annotations

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QRectF, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem

from cnn_explorer.explorer.explain import Selection
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.explorer.map_caption import (
    CAPTION_H,
    ColourBar,
    SectionHeader,
    TileCaption,
    stats_tooltip,
)
from cnn_explorer.ui.explorer.map_histogram import open_histogram
from cnn_explorer.ui.explorer.map_numbers import NumbersItem, label_choices

__all__ = ["NUMBERS_MAX", "MapGroup", "MapTile", "NumbersItem", "label_choices", "make_tile"]

DISPLAY_MAX = 256
"""Maps larger than this are uploaded decimated (the tiles are at most 256 px)."""

NUMBERS_MAX = 16
"""Maps with both sides ≤ this draw their values in the cells."""

FRAME_PEN = pg.mkPen(160, 160, 160)
FOCUS_PEN = pg.mkPen(20, 20, 20, width=3)
"""The frame of an overview's small tile whose channel is shown enlarged."""

HoverSlot = Callable[[tuple[int, int, int, int] | None], None]
"""Told ``(map, channel, row, col)`` under the mouse, or None when it leaves a map."""
ClickSlot = Callable[[Selection], None]
"""Told the cell a left click landed on."""


class MapImage(pg.ImageItem):
    """An ImageItem that reports hover and click in cell coordinates; a right click opens
    the map's histogram (:mod:`.map_histogram`)."""

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
                super().render()  # NaN cells are drawn transparent by pyqtgraph
                return
            lo, hi = float(levels[0]), float(levels[1])
            buf = img.astype(np.float32, copy=True)
            buf -= lo
            buf *= 256.0 / ((hi - lo) or 1.0)
            np.clip(buf, 0, 255, out=buf)
        self._rgb32 = colors.lut_argb32(lut).take(buf.astype(np.uint8))
        h, w = self._rgb32.shape
        self.qimage = QImage(self._rgb32.data, w, h, 4 * w, QImage.Format.Format_RGB32)
        # pyqtgraph's bookkeeping after a render (see ImageItem.render).
        self._processingBuffer = None
        self._displayBuffer = None
        self._renderRequired = False
        self._unrenderable = False

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
            self._click(Selection(self.map_index, self.channel, *cell))


@dataclass
class MapTile:
    """The items of one displayed channel."""

    map_index: int
    channel: int
    vb: pg.ViewBox
    image: MapImage
    caption: TileCaption
    overlay: pg.ImageItem | None
    """Dims what lies outside a receptive field; made on first use (~0.4 ms a tile)."""
    outline: QGraphicsRectItem
    cell_box: QGraphicsRectItem
    trace_box: QGraphicsRectItem
    numbers: NumbersItem | None = None
    signed: bool | None = None
    levels: tuple[float, float] = (0.0, 1.0)
    shape: tuple[int, int] = (0, 0)
    title_text: str = ""
    """What the caption reads ("ch 3 · −0.91…1.34 · mean 0.22")."""
    rect: QRectF = field(default_factory=QRectF)
    """Scene rectangle of the tile (caption + map), for the visibility test; empty while
    the tile is hidden (its layer collapsed)."""
    pending: tuple | None = None
    """``(values, levels, signed, stats, own_bar, layer_title)`` not yet shown: the tile
    was off screen at the last update and is refreshed when it scrolls into view (or is
    read through ``tile``)."""

    def flush(self, text_colors: dict[bool, list[QColor]], numbers_visible: bool) -> None:
        """Push the pending values to the items (image, numbers, caption, tooltip)."""
        a, levels, signed, stats, own_bar, title = self.pending  # type: ignore[misc]
        self.pending = None
        self.show_values(a, levels, signed, text_colors[signed], numbers_visible)
        self.caption.set_stats(stats, (levels, signed) if own_bar else None)
        self.title_text = self.caption.text
        self.image.title = title
        self._set_tip(stats_tooltip(title, stats))

    def _set_tip(self, tip: str) -> None:
        """The full statistics on the caption, and on the map of an overview's small tile
        (a large map is hovered to read cell values: no tooltip over it)."""
        if tip != self.caption.toolTip():
            self.caption.setToolTip(tip)
        on_map = tip if self.caption.compact else ""
        if on_map != self.image.toolTip():
            self.image.setToolTip(on_map)

    def place(self, box: QRectF | None, compact: bool = False) -> None:
        """Draw the map in the scene rectangle ``box`` (its caption above, ``compact`` for
        an overview's small tile); None hides it."""
        shown = box is not None
        if self.vb.isVisible() != shown:
            self.vb.setVisible(shown)
            self.caption.setVisible(shown)
        if box is None:
            self.rect = QRectF()
            return
        if self.vb.geometry() != box:
            self.vb.setGeometry(box)
            self.vb.updateMatrix()  # now, not at the next paint: cell sizes are read before
        self.caption.setPos(box.x(), box.y() - CAPTION_H)
        self.caption.set_width(max(box.width(), 24.0), compact)
        self._set_tip(self.caption.toolTip())
        self.rect = QRectF(box.x(), box.y() - CAPTION_H, box.width(), box.height() + CAPTION_H)

    def set_channel(self, channel: int) -> None:
        """Show another channel of the same map (an overview's enlarged tile)."""
        self.channel = channel
        self.image.channel = channel

    def items(self) -> list[QGraphicsItem]:
        """The tile's top-level scene items (the rest are children of the view box)."""
        return [self.caption, self.vb]

    def show_values(
        self,
        a: np.ndarray,
        levels: tuple[float, float],
        signed: bool,
        text_colors: list[QColor],
        numbers_visible: bool,
    ) -> None:
        """Colour the map (and its numbers, for small maps) with ``levels``."""
        self.image.data2d = a
        hh, ww = a.shape
        # Never upload more pixels than the tile shows: big maps are displayed decimated
        # (values, hover and export still use the full array).
        step = max(1, min(hh, ww) // DISPLAY_MAX)
        shown = a[::step, ::step] if step > 1 else a
        self.image.setImage(shown, autoLevels=False, levels=levels)
        if self.shape != (hh, ww):
            self.image.setRect(QRectF(0, 0, ww, hh))
            self.shape = (hh, ww)
        if self.signed != signed:
            self.image.setLookupTable(colors.lut(signed))
            self.signed = signed
        self.levels = levels
        if max(hh, ww) <= NUMBERS_MAX:
            if self.numbers is None:
                self.numbers = NumbersItem()
                self.numbers.setVisible(numbers_visible)
                self.vb.addItem(self.numbers)
            self.numbers.set_data(a, levels, text_colors)
        elif self.numbers is not None and self.numbers.has_data():
            self.numbers.set_data(np.zeros((0, 0), np.float32), levels, text_colors)

    def highlight(self, sel: Selection | None, region: Any) -> None:
        """Mark the selected cell and dim what lies outside the receptive field."""
        here = sel is not None and (sel.map_index, sel.channel) == (self.map_index, self.channel)
        self.cell_box.setVisible(here)
        if sel is not None and here:
            self.cell_box.setRect(QRectF(sel.col, sel.row, 1, 1))
        if region is None:
            if self.overlay is not None:
                self.overlay.setVisible(False)
            self.outline.setVisible(False)
            return
        h, w = region.shape
        chans = region.channels
        used = chans is None or self.channel in set(int(v) for v in chans)
        mask = region.mask if used else np.zeros((h, w), bool)
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., 3] = np.where(mask, 0, 150 if max(h, w) <= NUMBERS_MAX else 105)
        rgba[..., :3] = 255
        if self.overlay is None:
            self.overlay = pg.ImageItem(axisOrder="row-major")
            self.overlay.setZValue(5)
            self.vb.addItem(self.overlay)
        self.overlay.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.overlay.setRect(QRectF(0, 0, w, h))
        self.overlay.setVisible(True)
        tr, tc = region.touched_rows, region.touched_cols
        if used and region.rows.size and region.cols.size:
            rows = tr if tr.size else region.rows
            cols = tc if tc.size else region.cols
            r0, r1 = int(rows.min()), int(rows.max())
            c0, c1 = int(cols.min()), int(cols.max())
            self.outline.setRect(QRectF(c0, r0, c1 - c0 + 1, r1 - r0 + 1))
            self.outline.setVisible(True)
        else:
            self.outline.setVisible(False)

    def trace(self, src: Selection | None) -> None:
        """Outline the cell the selected value came from (None: no outline)."""
        self.trace_box.setVisible(src is not None)
        if src is not None:
            self.trace_box.setRect(QRectF(src.col, src.row, 1, 1))

    def export_rgb(self) -> np.ndarray:
        """``(H, W, 3)`` uint8 colour rendering of the map as currently displayed."""
        a = self.image.data2d
        lo, hi = self.levels
        with np.errstate(all="ignore"):
            idx = np.clip((a - lo) / ((hi - lo) or 1.0) * 255, 0, 255)
        idx = np.nan_to_num(idx, nan=255).astype(np.uint8)
        return colors.lut(bool(self.signed))[idx][..., :3]


@dataclass
class MapGroup:
    """One map (input or one layer's output): header, tiles, colour bar, and in an
    overview the enlarged tile (``focus``, showing channel ``focus.channel``)."""

    map_index: int
    title: SectionHeader
    tiles: list[MapTile]
    cbar: ColourBar | None = None
    signed: bool | None = None
    levels: tuple[float, float] | None = None
    focus: MapTile | None = None

    def set_focus(self, channel: int) -> None:
        """Enlarge ``channel`` (an overview) and frame its small tile."""
        if self.focus is None:
            return
        old = self.focus.channel
        self.focus.set_channel(channel)
        for ch, pen in ((old, FRAME_PEN), (channel, FOCUS_PEN)):
            if ch < len(self.tiles):
                self.tiles[ch].vb.setBorder(pen)

    def all_tiles(self) -> list[MapTile]:
        """The channel tiles and the enlarged one (if any)."""
        return [*self.tiles, self.focus] if self.focus is not None else list(self.tiles)


def make_tile(
    add: Callable[[QGraphicsItem], None],
    where: tuple[int, int],
    hover: HoverSlot,
    click: ClickSlot,
) -> MapTile:
    """Create the (hidden until placed) items of channel ``where[1]`` of map ``where[0]``;
    ``add`` puts items in the scene. :meth:`MapTile.place` puts them somewhere."""
    m, ch = where
    caption = TileCaption()
    caption.setVisible(False)
    add(caption)
    vb = pg.ViewBox(lockAspect=True, invertY=True, enableMouse=False, enableMenu=False)
    vb.setBorder(FRAME_PEN)
    vb.setVisible(False)
    add(vb)
    img = MapImage(m, ch, hover, click)
    vb.addItem(img)
    outline = _box(pg.mkPen(255, 140, 0, width=3, cosmetic=True), 10)
    cell_box = _box(pg.mkPen(20, 20, 20, width=3, cosmetic=True), 11)
    dash = Qt.PenStyle.DashLine
    trace_box = _box(pg.mkPen(20, 20, 20, width=2, style=dash, cosmetic=True), 11)
    for item in (outline, cell_box, trace_box):
        vb.addItem(item)
    vb.disableAutoRange()
    tile = MapTile(m, ch, vb, img, caption, None, outline, cell_box, trace_box)
    return tile


def _box(pen: Any, z: float) -> QGraphicsRectItem:
    item = QGraphicsRectItem()
    item.setPen(pen)
    item.setZValue(z)
    item.setVisible(False)
    return item
