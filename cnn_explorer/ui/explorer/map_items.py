"""The scene items of one feature-map tile: the coloured map, its numbers, the highlight
overlays, and the plain records the view keeps per tile and per map.

A tile knows how to show new values, a receptive-field highlight and a traced cell; where
tiles go and when they are updated is the view's business (``feature_map_view.py``).
"""

from __future__ import annotations

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QPainter,
    QStaticText,
    QTransform,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsObject,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
)

from cnn_explorer.explorer.explain import Selection
from cnn_explorer.ui.common import colors

DISPLAY_MAX = 256
"""Maps larger than this are uploaded decimated (the tiles are at most 256 px)."""

NUMBERS_MAX = 16
"""Maps with both sides ≤ this draw their values in the cells."""

LABEL_W = 126
"""Width (px) a tile needs for its three-line label ("min -0.565  max 0.438")."""

TITLE_H = 44
"""Height (px) of a tile's label above its map."""

HoverSlot = Callable[[tuple[int, int, int, int] | None], None]
"""Told ``(map, channel, row, col)`` under the mouse, or None when it leaves a map."""
ClickSlot = Callable[[Selection], None]
"""Told the cell a left click landed on."""


LABEL_PAD = 2
"""Pixels kept free between a number and its cell's left and right edges."""


def label_choices(v: float) -> list[str]:
    """Texts that can stand for ``v`` in a cell, most precise first: the usual label
    (:func:`colors.fmt`), then fewer decimals ("0.7", ".7"), then none ("1"); big values
    also as "1234", "1.2k" (and "-758" as "-.8k")."""
    full = colors.fmt(v)
    out = [full]
    if not np.isfinite(v):
        return out
    a = abs(v)
    if a >= 1000:
        if a < 1e6:
            out.append(f"{v:.0f}")
        for div, unit in ((1e3, "k"), (1e6, "M"), (1e9, "G")):
            if a < div * 1000 or unit == "G":
                out += [_strip(f"{v / div:.1f}") + unit, f"{v / div:.0f}{unit}"]
                break
    elif a >= 100:  # "-758" or, narrower, "-.8k"
        out.append(_strip(f"{v / 1e3:.1f}").replace("0.", ".", 1) + "k")
    elif full.lstrip("-").isdigit():
        return out
    else:
        for k in (2, 1, 0):
            s = _strip(f"{v:.{k}f}")
            out.append(s)
            if s.lstrip("-").startswith("0."):
                out.append(s.replace("0.", ".", 1))  # "0.7" → ".7"
    return list(dict.fromkeys(out))


def _strip(s: str) -> str:
    """Trailing zeros off a fixed-point string; "-0" is "0"."""
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


class NumbersItem(QGraphicsObject):
    """All the numbers of one small map, painted in one pass (one reused item per map).

    ``zoom`` (class-wide, set by View ▸ Zoom) lets the numbers grow with the maps.

    A value edit just stores the new array and schedules a repaint, so maps off screen
    cost nothing. Each number is drawn centred in its cell, and only when it fits: the
    most precise of :func:`label_choices` whose width (measured with the font drawn
    with) leaves :data:`LABEL_PAD` px free on both sides; nothing when none fits.
    """

    zoom = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(8)
        self._a = np.zeros((0, 0), np.float32)
        self._levels = (0.0, 1.0)
        self._colors: list[QColor] = []
        self._font = QFont()
        self._font.setPixelSize(12)
        self._metrics = QFontMetricsF(self._font)
        self._fit_key: tuple[int, float, float] = (12, 0.0, 0.0)
        self._static: dict[float, tuple[QStaticText, float] | None] = {}
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    def set_data(
        self, a: np.ndarray, levels: tuple[float, float], text_colors: list[QColor]
    ) -> None:
        if a.shape != self._a.shape:
            self.prepareGeometryChange()
        self._a, self._levels, self._colors = a.copy(), levels, text_colors
        if len(self._static) > 4096:
            self._static.clear()
        self.update()

    def _fit(self, cell_w: float, cell_h: float) -> bool:
        """Use the font for cells of ``cell_w × cell_h`` px; False when they are too
        small for any number."""
        if min(cell_w, cell_h) < 12:
            return False
        px = int(max(8, min(16 * self.zoom, min(cell_w, cell_h) * 0.38)))
        key = (px, round(cell_w, 2), round(cell_h, 2))
        if key != self._fit_key:
            self._fit_key = key
            self._font.setPixelSize(px)
            self._metrics = QFontMetricsF(self._font)
            self._static.clear()
        return self._metrics.height() <= cell_h

    def _label(self, v: float) -> tuple[QStaticText, float] | None:
        """The prepared text drawn for ``v`` in the current cells and its width."""
        if v in self._static:
            return self._static[v]
        room = self._fit_key[1] - 2 * LABEL_PAD
        found = None
        for s in label_choices(v):
            width = self._metrics.horizontalAdvance(s)
            if width <= room:
                st = QStaticText(s)
                st.prepare(QTransform(), self._font)
                found = (st, width)
                break
        self._static[v] = found
        return found

    def _cell_px(self) -> QPointF:
        """Size (px = scene units) of one cell as the view shows it."""
        tr = self.sceneTransform()
        return tr.map(QPointF(1, 1)) - tr.map(QPointF(0, 0))

    def label_rect(self, origin: QPointF, d: QPointF, r: int, c: int, width: float) -> QRectF:
        """Where a label ``width`` px wide goes in cell ``(r, c)`` (cells of ``d`` px
        from ``origin``, in device or scene coordinates)."""
        h = self._metrics.height()
        cx, cy = origin.x() + (c + 0.5) * d.x(), origin.y() + (r + 0.5) * d.y()
        return QRectF(cx - width / 2, cy - h / 2, width, h)

    def choose(self, v: float) -> str:
        """The text drawn for the value ``v`` at the tile's current size ("" if none)."""
        d = self._cell_px()
        if not self._fit(d.x(), d.y()):
            return ""
        found = self._label(float(v))
        return found[0].text() if found is not None else ""

    def text(self, r: int, c: int) -> str:
        """The text drawn in cell ``(r, c)`` at the tile's current size ("" if none)."""
        return self.choose(float(self._a[r, c]))

    def labels(self) -> list[tuple[int, int, str, QRectF]]:
        """``(row, col, text, scene rectangle)`` of every drawn number (tests)."""
        d = self._cell_px()
        h, w = self._a.shape
        if not h or not w or not self._fit(d.x(), d.y()):
            return []
        o = self.sceneTransform().map(QPointF(0, 0))
        out = []
        for r in range(h):
            for c in range(w):
                found = self._label(float(self._a[r, c]))
                if found is not None:
                    rect = self.label_rect(o, d, r, c, found[1])
                    out.append((r, c, found[0].text(), rect))
        return out

    def boundingRect(self) -> QRectF:
        h, w = self._a.shape
        return QRectF(0, 0, w, h)

    def paint(self, painter: QPainter, option: object, widget: object = None) -> None:
        h, w = self._a.shape
        if not h or not w:
            return
        tr = painter.transform()
        o = tr.map(QPointF(0, 0))
        d = tr.map(QPointF(1, 1)) - o
        if not self._fit(d.x(), d.y()):
            return  # too small to read
        exposed = option.exposedRect  # type: ignore[attr-defined]
        r0, r1 = max(0, int(exposed.top())), min(h, int(np.ceil(exposed.bottom())))
        c0, c1 = max(0, int(exposed.left())), min(w, int(np.ceil(exposed.right())))
        painter.save()
        painter.resetTransform()
        painter.setFont(self._font)
        lo, hi = self._levels
        scale = 255.0 / ((hi - lo) or 1.0)
        a = self._a
        current = None
        for r in range(r0, r1):
            for c in range(c0, c1):
                v = float(a[r, c])
                found = self._label(v)
                if found is None:
                    continue
                i = int(min(255.0, max(0.0, (v - lo) * scale))) if v == v else 255
                pen = self._colors[i] if self._colors else QColor(0, 0, 0)
                if pen is not current:
                    painter.setPen(pen)
                    current = pen
                rect = self.label_rect(o, d, r, c, found[1])
                painter.drawStaticText(rect.topLeft(), found[0])
        painter.restore()


class MapImage(pg.ImageItem):
    """An ImageItem that reports hover and click in cell coordinates."""

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
    title: QGraphicsSimpleTextItem
    overlay: pg.ImageItem
    outline: QGraphicsRectItem
    cell_box: QGraphicsRectItem
    trace_box: QGraphicsRectItem
    numbers: NumbersItem | None = None
    signed: bool | None = None
    levels: tuple[float, float] = (0.0, 1.0)
    shape: tuple[int, int] = (0, 0)
    title_text: str = ""
    rect: QRectF | None = None
    """Scene rectangle of the tile (label + map), for the visibility test."""
    pending: tuple | None = None
    """``(values, levels, signed, label)`` not yet shown: the tile was off screen at the
    last update and is refreshed when it scrolls into view (or is read through ``tile``)."""

    def flush(self, text_colors: dict[bool, list[QColor]], numbers_visible: bool) -> None:
        """Push the pending values to the items (image, numbers, label)."""
        a, levels, signed, (c, zeros, lo, hi, mean) = self.pending  # type: ignore[misc]
        self.pending = None
        self.show_values(a, levels, signed, text_colors[signed], numbers_visible)
        text = (
            f"ch {c} · zeros {zeros:.0%}\n"
            f"min {colors.fmt(lo)}  max {colors.fmt(hi)}\nmean {colors.fmt(mean)}"
        )
        if text != self.title_text:
            self.title_text = text
            self.title.setText(text)

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

    def highlight(self, sel: Selection | None, region: Any) -> None:
        """Mark the selected cell and dim what lies outside the receptive field."""
        here = sel is not None and (sel.map_index, sel.channel) == (self.map_index, self.channel)
        self.cell_box.setVisible(here)
        if sel is not None and here:
            self.cell_box.setRect(QRectF(sel.col, sel.row, 1, 1))
        if region is None:
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
    """One map (input or one layer's output): title, tiles, colour bar."""

    map_index: int
    title: QGraphicsSimpleTextItem
    tiles: list[MapTile]
    cbar: pg.ColorBarItem | None
    signed: bool | None = None
    levels: tuple[float, float] | None = None


def make_tile(
    add: Callable[[QGraphicsItem], None],
    where: tuple[int, int, QRectF],
    font: QFont,
    hover: HoverSlot,
    click: ClickSlot,
) -> MapTile:
    """Create the items of channel ``where[1]`` of map ``where[0]`` with the map drawn in
    the scene rectangle ``where[2]`` (its label above it); ``add`` puts items in the scene."""
    m, ch, box = where
    x, y, w, h = box.x(), box.y(), box.width(), box.height()
    title = QGraphicsSimpleTextItem("")
    title.setFont(font)
    title.setPos(x, y - TITLE_H)
    add(title)
    vb = pg.ViewBox(lockAspect=True, invertY=True, enableMouse=False, enableMenu=False)
    vb.setBorder(pg.mkPen(160, 160, 160))
    add(vb)
    vb.setGeometry(box)
    img = MapImage(m, ch, hover, click)
    vb.addItem(img)
    overlay = pg.ImageItem(axisOrder="row-major")
    overlay.setZValue(5)
    overlay.setVisible(False)
    vb.addItem(overlay)
    outline = _box(pg.mkPen(255, 140, 0, width=3, cosmetic=True), 10)
    cell_box = _box(pg.mkPen(20, 20, 20, width=3, cosmetic=True), 11)
    dash = Qt.PenStyle.DashLine
    trace_box = _box(pg.mkPen(20, 20, 20, width=2, style=dash, cosmetic=True), 11)
    for item in (outline, cell_box, trace_box):
        vb.addItem(item)
    tile = MapTile(m, ch, vb, img, title, overlay, outline, cell_box, trace_box)
    tile.rect = QRectF(x, y - TITLE_H, max(w, LABEL_W), h + TITLE_H)
    return tile


def _box(pen: Any, z: float) -> QGraphicsRectItem:
    item = QGraphicsRectItem()
    item.setPen(pen)
    item.setZValue(z)
    item.setVisible(False)
    return item
