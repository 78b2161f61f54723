"""The scene items of compare mode: per map a header, a title per column, A's, B's and
B − A's tiles (the feature-map view's :class:`MapTile`), two colour bars and notes.

:class:`CompareScene` builds them for a list of :class:`~cnn_explorer.explorer.compare.MapPair`
and places them for a width (see ``compare_layout.py``); what they show is the view's
business (``compare_view.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsTextItem,
)

from cnn_explorer.explorer import compare
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.ui.explorer.compare_layout import (
    COL_GAP,
    SIDES,
    column_width,
    column_x,
    grid_tiles,
)
from cnn_explorer.ui.explorer.map_caption import CAPTION_H, HEADER_H, ColourBar
from cnn_explorer.ui.explorer.map_items import MapTile, make_tile
from cnn_explorer.ui.explorer.map_layout import BAR_H_MIN, CBAR_W, LINE_GAP, MARGIN

HEADINGS = {"a": "A · document", "b": "B · edited copy", "d": "B − A · difference"}
TITLE_H = 18

SideHover = Callable[[str, tuple[int, int, int, int] | None], None]
"""Told the column ("a", "b" or "d") and ``(map, channel, row, col)`` under the mouse."""


def _font(px: int, bold: bool = False) -> QFont:
    f = QFont()
    f.setPixelSize(px)
    f.setBold(bold)
    return f


@dataclass
class Row:
    """The items of one map index: header, a title per column, tiles, bars, notes."""

    index: int
    pair: compare.MapPair
    header: QGraphicsSimpleTextItem
    titles: dict[str, QGraphicsSimpleTextItem]
    tiles: dict[str, list[MapTile]]
    bars: dict[str, ColourBar]
    notes: dict[str, QGraphicsTextItem]
    rule: QGraphicsLineItem
    title_text: dict[str, str] = field(default_factory=dict)

    def items(self) -> list[QGraphicsItem]:
        out: list[QGraphicsItem] = [self.header, self.rule, *self.titles.values()]
        out += [*self.bars.values(), *self.notes.values()]
        for tiles in self.tiles.values():
            for t in tiles:
                out += t.items()
        return out


class CompareScene:
    """Owns the rows of compare mode in ``scene``."""

    def __init__(
        self, scene: QGraphicsScene, hover: SideHover, click: Callable[[Selection], None]
    ) -> None:
        self.scene = scene
        self._hover, self._click = hover, click
        self.rows: list[Row] = []
        self._headings: list[QGraphicsSimpleTextItem] = []
        self._title_font = _font(11)
        self._metrics = QFontMetricsF(self._title_font)
        self.avail = 600

    def set_title(self, row: Row, side: str, text: str) -> None:
        """Show ``text`` over column ``side`` of ``row``, elided to its width."""
        if row.title_text.get(side) == text:
            return
        row.title_text[side] = text
        cw = column_width(self.avail) + (CBAR_W if side != "a" else COL_GAP - 4)
        item = row.titles[side]
        item.setText(self._metrics.elidedText(text, Qt.TextElideMode.ElideRight, cw))
        item.setToolTip(text)

    # ------------------------------------------------------------------ items
    def clear(self) -> None:
        for item in [*self._headings, *(i for r in self.rows for i in r.items())]:
            self.scene.removeItem(item)
        self.rows, self._headings = [], []

    def _text(self, text: str, font: QFont, color: QColor | None = None) -> QGraphicsSimpleTextItem:
        item = QGraphicsSimpleTextItem(text)
        item.setFont(font)
        if color is not None:
            item.setBrush(color)
        self.scene.addItem(item)
        return item

    def rebuild(self, pairs: list[compare.MapPair]) -> None:
        """New items for ``pairs`` (hidden until :meth:`place`)."""
        self.clear()
        for side in SIDES:
            self._headings.append(self._text(HEADINGS[side], _font(14, True)))
        for p in pairs:
            row = Row(
                p.index,
                p,
                self._text("Input" if p.index == 0 else f"Layer {p.index}", _font(13, True)),
                {s: self._text("", self._title_font, QColor(60, 60, 60)) for s in SIDES},
                {s: [] for s in SIDES},
                {},
                {},
                QGraphicsLineItem(),
            )
            row.rule.setPen(QPen(QColor(215, 215, 215), 0))
            self.scene.addItem(row.rule)
            for side, shape in (("a", p.a_shape), ("b", p.b_shape)):
                if shape is None:
                    why = p.a_why if side == "a" else p.b_why
                    row.notes[side] = self._note(f"No map: {why}")
                else:
                    row.tiles[side] = self._tiles(side, p.index, shape)
            if p.paired and p.a_shape is not None:
                row.tiles["d"] = self._tiles("d", p.index, p.a_shape)
                row.bars["d"] = self._bar()
            else:
                row.notes["d"] = self._note(p.note)
            row.bars["ab"] = self._bar()
            self.rows.append(row)

    def _tiles(self, side: str, m: int, shape: tuple[int, int, int]) -> list[MapTile]:
        def hover(where: tuple[int, int, int, int] | None) -> None:
            self._hover(side, where)

        tiles = []
        for c in range(shape[0]):
            t = make_tile(self.scene.addItem, (m, c), hover, self._click)
            t.set_extent(shape[1], shape[2])  # its view box is made when first drawn
            tiles.append(t)
        return tiles

    def _bar(self) -> ColourBar:
        bar = ColourBar()
        self.scene.addItem(bar)
        return bar

    def _note(self, text: str) -> QGraphicsTextItem:
        item = QGraphicsTextItem(text)
        item.setFont(_font(12))
        item.setDefaultTextColor(QColor(150, 60, 20))
        self.scene.addItem(item)
        return item

    # Long because it is one walk down the rows: each row's height depends on the
    # tallest of its three columns, and the next row starts below it.
    def place(self, avail: int) -> tuple[int, int]:
        """Put every item in place for a view ``avail`` px wide; returns the scene's size."""
        self.avail = avail
        cw = column_width(avail)
        xs = column_x(avail)
        y = float(MARGIN)
        heading_font = QFontMetricsF(_font(14, True))
        for side, item in zip(SIDES, self._headings, strict=True):
            item.setPos(xs[side], y)
            room = cw + (CBAR_W if side != "a" else COL_GAP - 4)
            item.setText(heading_font.elidedText(HEADINGS[side], Qt.TextElideMode.ElideRight, room))
        y += HEADER_H + 4
        for row in self.rows:
            row.rule.setLine(MARGIN, y - 6, xs["d"] + cw + CBAR_W, y - 6)
            row.header.setPos(MARGIN, y)
            y += HEADER_H
            for side in SIDES:
                row.titles[side].setPos(xs[side], y)
            y += TITLE_H
            body = BAR_H_MIN
            right = {"b": cw, "d": cw}  # a colour bar stands right of its column's tiles
            shapes = {"a": row.pair.a_shape, "b": row.pair.b_shape, "d": row.pair.a_shape}
            for side in SIDES:
                tiles, shape = row.tiles[side], shapes[side]
                if tiles and shape is not None:
                    rects, h = grid_tiles(shape, cw)
                    for t, r in zip(tiles, rects, strict=True):
                        t.place(r.translated(xs[side], y))
                        t.caption.set_width(max(r.width(), 24.0), False)
                    body = max(body, h)
                    right[side] = max(r.right() for r in rects)
                if side in row.notes:
                    note = row.notes[side]
                    note.setTextWidth(cw + (CBAR_W if side == "d" else 0))
                    note.setPos(xs[side], y)
                    body = max(body, note.boundingRect().height())
            bar_h = min(body, max(BAR_H_MIN, 240.0)) - CAPTION_H + 6
            for name, x in (("ab", xs["b"] + right["b"] + 8), ("d", xs["d"] + right["d"] + 8)):
                if name in row.bars:
                    row.bars[name].set_rect(QRectF(x, y + CAPTION_H - 6, CBAR_W - 6, bar_h))
            y += body + LINE_GAP
        for row in self.rows:
            for side in SIDES:
                title = row.title_text.pop(side, "")
                self.set_title(row, side, title)
        return int(xs["d"] + cw + CBAR_W + MARGIN), int(y + MARGIN)
