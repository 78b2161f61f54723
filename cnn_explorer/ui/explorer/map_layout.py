"""Where the feature maps go: tile sizes, the flow of maps across the width, and the
scene built from that plan (titles, tiles, colour bars, arrows, notes for missing maps).

Pixel = scene unit: the view shows the scene 1:1 in a scroll area, so every number here
is a screen size. Planning (:func:`flow_tiles`, :func:`plan_groups`) is plain arithmetic;
:class:`MapScene` turns a plan into items and owns them until the next rebuild.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsTextItem,
)

from cnn_explorer.ui.common import colors
from cnn_explorer.ui.explorer.map_items import (
    LABEL_W,
    NUMBERS_MAX,
    TITLE_H,
    ClickSlot,
    HoverSlot,
    MapGroup,
    make_tile,
)

MARGIN = 12
GAP = 14
GROUP_TITLE_H = 24
CBAR_W = 62
ARROW_GAP = 36
"""Horizontal space between two maps on one line (an arrow points from one to the next)."""


SIDE_MIN = 160
"""Drawn side (px) of the smallest maps: room for big, legible numbers."""
SIDE_MAX = 256
"""Drawn side (px) of every map from 16×16 up (bigger maps are shown decimated)."""


def map_side(h: int, w: int) -> int:
    """On-screen size (px) of the longer side of an ``h×w`` map.

    ``64·√n`` for the longer side ``n``, held between :data:`SIDE_MIN` (n ≤ 6) and
    :data:`SIDE_MAX` (n ≥ 16): continuous and never decreasing, so maps of neighbouring
    sizes are drawn at neighbouring sizes (a 16×16 and a 17×17 map both 256 px), while
    the cells shrink smoothly (40 px for 4×4, 18 px for 12×12, 16 px for 16×16)."""
    n = max(h, w, 1)
    return int(min(SIDE_MAX, max(SIDE_MIN, 64 * math.sqrt(n))))


def flow_tiles(channels: int, h: int, w: int, avail: int) -> tuple[int, int]:
    """``(side, per_row)``: tile size (px of the longer map side) and tiles per row for
    ``channels`` maps of ``h×w`` in ``avail`` px of width.

    Tiles keep their natural size (:func:`map_side`) when all fit on one row; otherwise
    big maps shrink (down to the label width, or what the numbers need) so that the row
    fills the width instead of leaving one tall column with empty space beside it."""
    side = map_side(h, w)
    natural = max(side, LABEL_W) + GAP
    fit = max(1, avail // natural)
    if fit >= channels:
        return side, channels
    numbers = max(h, w) <= NUMBERS_MAX
    smallest = max(LABEL_W, 22 * max(h, w)) if numbers else LABEL_W
    if smallest >= side:
        return side, fit
    per_row = min(channels, max(fit, avail // (smallest + GAP)))
    # Fewest rows for that many columns, then the biggest tile that still fits.
    rows = -(-channels // per_row)
    per_row = -(-channels // rows)
    side = int(min(side, max(smallest, avail // per_row - GAP)))
    return side, per_row


@dataclass
class GroupPlan:
    """Where one map (all its channels) goes in the scene."""

    x: int
    y: int
    tile_w: int
    tile_h: int
    per_row: int
    channels: int
    width: int
    """The block's width: its tiles and colour bar, or its title if that is wider."""
    arrow: bool
    """True when another map stands to its left on the same line."""

    @property
    def cell_w(self) -> int:
        return max(self.tile_w, LABEL_W) + GAP

    @property
    def height(self) -> int:
        rows = -(-self.channels // self.per_row)
        return GROUP_TITLE_H + rows * (self.tile_h + TITLE_H + GAP)

    def map_rect(self, ch: int) -> QRectF:
        """Scene rectangle of channel ``ch``'s map (its label sits above it)."""
        col, row = ch % self.per_row, ch // self.per_row
        y = self.y + GROUP_TITLE_H + row * (self.tile_h + TITLE_H + GAP) + TITLE_H
        return QRectF(self.x + col * self.cell_w, y, self.tile_w, self.tile_h)

    def cbar_rect(self) -> QRectF:
        bx = self.x + self.per_row * self.cell_w - GAP + 4
        y = self.y + GROUP_TITLE_H + TITLE_H - 6
        return QRectF(bx, y, CBAR_W, max(self.tile_h, 90) + 12)


def plan_groups(
    shapes: list[tuple[int, int, int]], title_widths: list[int], avail: int, with_bar: bool
) -> tuple[list[GroupPlan], int, int]:
    """Place maps of ``(C, H, W)`` left to right, wrapping to a new line when the next one
    does not fit in ``avail`` px. Returns the plans, the widest line's right edge and the y
    below the last line."""
    plans = []
    x0, y, line_h, max_x = MARGIN, MARGIN, 0, 0
    bar_w = CBAR_W if with_bar else 0
    for (c, h, w), title_w in zip(shapes, title_widths, strict=True):
        side, per_row = flow_tiles(c, h, w, avail - 2 * MARGIN - bar_w)
        tw = max(8, int(side * w / max(h, w)))
        th = max(8, int(side * h / max(h, w)))
        plan = GroupPlan(x0, y, tw, th, per_row, c, 0, False)
        plan.width = max(per_row * plan.cell_w + bar_w, title_w + 40)
        if x0 > MARGIN and x0 + plan.width > avail - MARGIN:
            x0, y, line_h = MARGIN, y + line_h + 8, 0
            plan.x, plan.y = x0, y
        plan.arrow = x0 > MARGIN
        plans.append(plan)
        max_x = max(max_x, x0 + plan.width)
        x0 += plan.width + ARROW_GAP
        line_h = max(line_h, plan.height)
    return plans, max_x, y + line_h + 8


class MapScene:
    """Builds every map's items into a scene and removes them again on the next build."""

    def __init__(self, scene: QGraphicsScene, hover: HoverSlot, click: ClickSlot) -> None:
        self.scene = scene
        self._slots = (hover, click)
        self._items: list[QGraphicsItem] = []
        self._layout: tuple | None = None  # what the current items were built for
        self.bold = QFont()
        self.bold.setBold(True)
        self.bold.setPointSize(10)
        self.small = QFont()
        self.small.setPointSize(7)

    def add(self, item: QGraphicsItem) -> None:
        self.scene.addItem(item)
        self._items.append(item)

    def clear(self) -> None:
        for item in self._items:
            self.scene.removeItem(item)
        self._items = []

    def build(
        self,
        titles: list[str],
        shapes: list[tuple[int, int, int]],
        notes: list[tuple[str, bool]],
        avail: int,
        with_bar: bool,
    ) -> tuple[list[MapGroup], int, int]:
        """Items for maps of ``shapes`` titled ``titles``, then one line per note
        ``(text, is_error)`` (layers without a map). Returns the groups and the scene's
        width and height."""
        self.clear()
        heads = []
        for text in titles:
            head = QGraphicsSimpleTextItem(text)
            head.setFont(self.bold)
            heads.append(head)
        widths = [int(h.boundingRect().width()) for h in heads]
        plans, max_x, y = plan_groups(shapes, widths, avail, with_bar)
        self._layout = self._layout_key(plans, shapes, notes, with_bar)
        groups = [
            self._group(m, (shapes[m][1], shapes[m][2]), plan, head, with_bar)
            for m, (plan, head) in enumerate(zip(plans, heads, strict=True))
        ]
        for text, is_error in notes:  # wrapped to the visible width, never cut off
            label = QGraphicsTextItem(text)
            label.setFont(self.bold)
            label.setDefaultTextColor(QColor(180, 30, 30) if is_error else QColor(120, 120, 120))
            label.setTextWidth(max(avail - 2 * MARGIN, 100))
            label.setPos(MARGIN, y)
            self.add(label)
            y += max(GROUP_TITLE_H, int(label.boundingRect().height())) + 4
        return groups, max(max_x + MARGIN, avail), y + MARGIN

    def _layout_key(
        self,
        plans: list[GroupPlan],
        shapes: list[tuple[int, int, int]],
        notes: list[tuple[str, bool]],
        with_bar: bool,
    ) -> tuple:
        """Everything the items depend on but the maps' heights and widths (and whether a
        map is small enough to carry numbers, which adds items)."""
        small = tuple(max(h, w) <= NUMBERS_MAX for _, h, w in shapes)
        return (plans, small, notes, with_bar)

    def reuse(
        self,
        groups: list[MapGroup],
        titles: list[str],
        shapes: list[tuple[int, int, int]],
        notes: list[tuple[str, bool]],
        avail: int,
        with_bar: bool,
    ) -> bool:
        """Keep the items when only the maps' sizes changed and every tile keeps its place
        and size (a 512² input resized to 500²: tiles are capped at the same side); the
        tiles then just show the new extent. False when a rebuild is needed.

        Why: building a tile (a pyqtgraph ViewBox and its items) costs ~3 ms, so a
        64-filter layer took the GUI thread ~200 ms on every resize."""
        if self._layout is None or len(groups) != len(shapes):
            return False
        font = QGraphicsSimpleTextItem("")
        font.setFont(self.bold)
        widths = []
        for text in titles:
            font.setText(text)
            widths.append(int(font.boundingRect().width()))
        plans, _, _ = plan_groups(shapes, widths, avail, with_bar)
        if self._layout_key(plans, shapes, notes, with_bar) != self._layout:
            return False
        for group, (_, h, w), title in zip(groups, shapes, titles, strict=True):
            group.title.setText(title)
            for tile in group.tiles:
                tile.vb.setRange(xRange=(0, w), yRange=(0, h), padding=0)
        return True

    def _group(
        self,
        m: int,
        shape: tuple[int, int],
        plan: GroupPlan,
        head: QGraphicsSimpleTextItem,
        with_bar: bool,
    ) -> MapGroup:
        """The items of map ``m`` (``shape`` is one channel's ``(H, W)``) where ``plan`` says."""
        if plan.arrow:
            arrow = QGraphicsSimpleTextItem("➜")
            arrow.setFont(self.bold)
            arrow.setBrush(QBrush(QColor(120, 120, 120)))
            arrow.setPos(plan.x - 30, plan.y + GROUP_TITLE_H + TITLE_H + plan.tile_h / 2 - 8)
            self.add(arrow)
        head.setPos(plan.x, plan.y)
        self.add(head)
        tiles = []
        h, w = shape
        for ch in range(plan.channels):
            tile = make_tile(self.add, (m, ch, plan.map_rect(ch)), self.small, *self._slots)
            tile.vb.disableAutoRange()
            tile.vb.setRange(xRange=(0, w), yRange=(0, h), padding=0)
            tiles.append(tile)
        cbar = None
        if with_bar:
            cbar = pg.ColorBarItem(
                values=(0, 1), colorMap=colors.SEQUENTIAL, interactive=False, width=14
            )
            if not cbar.axis.label.isVisible():
                # No axis label, so no SI prefix is ever shown: skip re-rendering the
                # (hidden) label's HTML on every level change.
                cbar.axis.enableAutoSIPrefix(False)
            self.add(cbar)
            cbar.setGeometry(plan.cbar_rect())
        return MapGroup(m, head, tiles, cbar)
