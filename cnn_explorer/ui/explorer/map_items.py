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
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor
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
from cnn_explorer.ui.explorer.map_image import ClickSlot, HoverSlot, MapImage
from cnn_explorer.ui.explorer.map_numbers import NumbersItem, label_choices

__all__ = [
    "NUMBERS_MAX",
    "ClickSlot",
    "HoverSlot",
    "MapGroup",
    "MapImage",
    "MapTile",
    "NumbersItem",
    "label_choices",
    "make_tile",
]

DISPLAY_MAX = 256
"""Maps larger than this are uploaded decimated (the tiles are at most 256 px)."""

NUMBERS_MAX = 16
"""Maps with both sides ≤ this draw their values in the cells."""

FRAME_PEN = pg.mkPen(160, 160, 160)
FOCUS_PEN = pg.mkPen(20, 20, 20, width=3)
"""The frame of an overview's small tile whose channel is shown enlarged."""

COMPOSITE = -1
"""The channel number of a tile that shows a 3-channel map as one picture: its hover
reports this channel, a click selects channel 0."""


@dataclass
class TileItems:
    """The costly part of a tile (a ViewBox with its image and marks: 1–3 ms to build)."""

    vb: pg.ViewBox
    image: MapImage
    outline: QGraphicsRectItem
    cell_box: QGraphicsRectItem
    trace_box: QGraphicsRectItem


@dataclass
class MapTile:
    """One displayed channel: a cheap record (caption, place, pending values) whose view
    box and image are made when first needed — when it is drawn on screen or read — so
    opening ~100 maps builds only the tiles in view (:attr:`made`)."""

    map_index: int
    channel: int
    caption: TileCaption
    add: Callable[[QGraphicsItem], None]
    """Puts an item in the scene (where the view box goes when it is made)."""
    slots: tuple[HoverSlot | None, ClickSlot | None] = (None, None)
    overlay: pg.ImageItem | None = None
    """Dims what lies outside a receptive field; made on first use (~0.4 ms a tile)."""
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
    pending_window: tuple[int, int, int, int] | None = None
    """The cells ``(r0, r1, c0, c1)`` outside which the pending values equal those shown
    (None: maybe anywhere)."""
    box: QRectF | None = None
    """Where the map is drawn (None: hidden)."""
    extent: tuple[int, int] = (1, 1)
    """``(rows, cols)`` the view box shows."""
    border: Any = field(default_factory=lambda: FRAME_PEN)
    marks: tuple[Any, Any, Any] = (None, None, None)
    """The last ``(selection, region, traced source)``, applied when the items are made."""
    _items: TileItems | None = None

    # ------------------------------------------------------------------ lazy items
    @property
    def made(self) -> bool:
        """True once the view box and image exist."""
        return self._items is not None

    def items_now(self) -> TileItems:
        """The view box and its items, made now if needed (set up as last told)."""
        if self._items is None:
            self._items = _make_items(self)
            vb = self._items.vb
            self.set_extent(*self.extent)
            vb.setBorder(self.border)
            self.place(self.box, self.caption.compact)
            self.highlight(*self.marks[:2])
            self.trace(self.marks[2])
        return self._items

    @property
    def vb(self) -> pg.ViewBox:
        return self.items_now().vb

    @property
    def image(self) -> MapImage:
        return self.items_now().image

    @property
    def outline(self) -> QGraphicsRectItem:
        return self.items_now().outline

    @property
    def cell_box(self) -> QGraphicsRectItem:
        return self.items_now().cell_box

    @property
    def trace_box(self) -> QGraphicsRectItem:
        return self.items_now().trace_box

    def set_extent(self, rows: int, cols: int) -> None:
        """Show ``rows × cols`` cells (the map's shape)."""
        self.extent = (rows, cols)
        if self._items is not None:
            self._items.vb.setRange(xRange=(0, cols), yRange=(0, rows), padding=0)

    def set_border(self, pen: Any) -> None:
        self.border = pen
        if self._items is not None:
            self._items.vb.setBorder(pen)

    # ------------------------------------------------------------------ showing
    def flush(self, text_colors: dict[bool, list[QColor]], numbers_visible: bool) -> None:
        """Push the pending values to the items (image, numbers, caption, tooltip)."""
        a, levels, signed, stats, own_bar, title = self.pending  # type: ignore[misc]
        window, self.pending, self.pending_window = self.pending_window, None, None
        self.show_values(a, levels, signed, text_colors[signed], numbers_visible, window)
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
        if self._items is not None and on_map != self._items.image.toolTip():
            self._items.image.setToolTip(on_map)

    def place(self, box: QRectF | None, compact: bool = False) -> None:
        """Draw the map in the scene rectangle ``box`` (its caption above, ``compact`` for
        an overview's small tile); None hides it."""
        shown = box is not None
        self.box = box
        if self.caption.isVisible() != shown:
            self.caption.setVisible(shown)
        vb = None if self._items is None else self._items.vb
        if vb is not None and vb.isVisible() != shown:
            vb.setVisible(shown)
        if box is None:
            self.rect = QRectF()
            return
        if vb is not None and vb.geometry() != box:
            vb.setGeometry(box)
            vb.updateMatrix()  # now, not at the next paint: cell sizes are read before
        self.caption.setPos(box.x(), box.y() - CAPTION_H)
        self.caption.set_width(max(box.width(), 24.0), compact)
        self._set_tip(self.caption.toolTip())
        self.rect = QRectF(box.x(), box.y() - CAPTION_H, box.width(), box.height() + CAPTION_H)

    def set_channel(self, channel: int) -> None:
        """Show another channel of the same map (an overview's enlarged tile)."""
        self.channel = channel
        if self._items is not None:
            self._items.image.channel = channel

    def items(self) -> list[QGraphicsItem]:
        """The tile's top-level scene items (the rest are children of the view box)."""
        return [self.caption] if self._items is None else [self.caption, self._items.vb]

    def show_values(
        self,
        a: np.ndarray,
        levels: tuple[float, float],
        signed: bool,
        text_colors: list[QColor],
        numbers_visible: bool,
        window: tuple[int, int, int, int] | None = None,
    ) -> None:
        """Colour the map (and its numbers, for small maps) with ``levels``; ``window``:
        only those cells changed since the values shown (same levels: see
        :meth:`MapImage.patch`)."""
        self.image.data2d = a
        hh, ww = a.shape
        # Never upload more pixels than the tile shows: big maps are displayed decimated
        # (values, hover and export still use the full array).
        step = max(1, min(hh, ww) // DISPLAY_MAX)
        same = (levels, signed) == (self.levels, self.signed)
        if not (same and window is not None and self.image.patch(a, window, step)):
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
        self.marks = (sel, region, self.marks[2])
        if self._items is None:
            return  # applied when the items are made
        picture = self.channel == COMPOSITE  # every channel at once
        here = (
            sel is not None
            and sel.map_index == self.map_index
            and (picture or sel.channel == self.channel)
        )
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
        used = chans is None or picture or self.channel in set(int(v) for v in chans)
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
        self.marks = (*self.marks[:2], src)
        if self._items is None:
            return
        self.trace_box.setVisible(src is not None)
        if src is not None:
            self.trace_box.setRect(QRectF(src.col, src.row, 1, 1))

    def traced_cell(self) -> tuple[int, int] | None:
        """The (row, col) outlined as the source of the selected value (None: none)."""
        if not self.trace_box.isVisible():
            return None
        r = self.trace_box.rect()
        return int(r.y()), int(r.x())

    def lit_mask(self) -> np.ndarray | None:
        """Boolean mask of the cells in the receptive field (None when nothing is lit)."""
        self.items_now()
        if self.overlay is None or not self.overlay.isVisible():
            return None
        return np.asarray(self.overlay.image[..., 3] == 0)

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
    composite: MapTile | None = None
    """A 3-channel map shown as one picture (its channels drawn small beside it)."""

    def set_focus(self, channel: int) -> None:
        """Enlarge ``channel`` (an overview) and frame its small tile."""
        if self.focus is None:
            return
        old = self.focus.channel
        self.focus.set_channel(channel)
        for ch, pen in ((old, FRAME_PEN), (channel, FOCUS_PEN)):
            if ch < len(self.tiles):
                self.tiles[ch].set_border(pen)

    def all_tiles(self) -> list[MapTile]:
        """The channel tiles, the enlarged one and the picture (if any)."""
        return [*self.tiles, *(t for t in (self.focus, self.composite) if t is not None)]


def make_tile(
    add: Callable[[QGraphicsItem], None],
    where: tuple[int, int],
    hover: HoverSlot,
    click: ClickSlot,
    kind: type[MapTile] = MapTile,
) -> MapTile:
    """The (hidden until placed) tile of channel ``where[1]`` of map ``where[0]``; ``add``
    puts items in the scene. :meth:`MapTile.place` puts it somewhere; its view box is
    made when first needed."""
    m, ch = where
    caption = TileCaption()
    caption.setVisible(False)
    add(caption)
    return kind(m, ch, caption, add, (hover, click))


def _make_items(tile: MapTile) -> TileItems:
    """The view box of ``tile`` with its image and marks, in the scene, hidden."""
    vb = pg.ViewBox(lockAspect=True, invertY=True, enableMouse=False, enableMenu=False)
    vb.disableAutoRange()  # first: each item added would otherwise fit the range again
    vb.setVisible(False)
    tile.add(vb)
    img = MapImage(tile.map_index, tile.channel, *tile.slots)
    vb.addItem(img)
    outline = _box(pg.mkPen(255, 140, 0, width=3, cosmetic=True), 10)
    cell_box = _box(pg.mkPen(20, 20, 20, width=3, cosmetic=True), 11)
    dash = Qt.PenStyle.DashLine
    trace_box = _box(pg.mkPen(20, 20, 20, width=2, style=dash, cosmetic=True), 11)
    for item in (outline, cell_box, trace_box):
        vb.addItem(item)
    return TileItems(vb, img, outline, cell_box, trace_box)


def _box(pen: Any, z: float) -> QGraphicsRectItem:
    item = QGraphicsRectItem()
    item.setPen(pen)
    item.setZValue(z)
    item.setVisible(False)
    return item
