"""The scene items of every feature map, kept across layouts.

A tile (a pyqtgraph ViewBox and its items) costs 1–3 ms to build, so a photo with 32
filters took the GUI thread ~300 ms on every relayout when the scene was rebuilt. Here
each ``(map, channel)`` keeps its tile for as long as it exists: :meth:`MapScene.sync`
only adds and removes tiles when the number of maps or channels changes, and
:meth:`MapScene.place` moves the existing items where a plan says (~0.3 ms a tile).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsTextItem,
)

from cnn_explorer.ui.explorer.map_caption import HEADER_H, ColourBar, SectionHeader
from cnn_explorer.ui.explorer.map_composite import CompositeTile
from cnn_explorer.ui.explorer.map_items import (
    COMPOSITE,
    FRAME_PEN,
    ClickSlot,
    HoverSlot,
    MapGroup,
    MapTile,
    make_tile,
)
from cnn_explorer.ui.explorer.map_layout import ARROW_GAP, MARGIN, SectionPlan, pinned_bar_y

Shape = tuple[int, int, int]


class MapScene:
    """Owns every map's items in ``scene``: one :class:`MapGroup` per map."""

    def __init__(
        self,
        scene: QGraphicsScene,
        hover: HoverSlot,
        click: ClickSlot,
        toggle: Callable[[int], None],
    ) -> None:
        self.scene = scene
        self._slots = (hover, click)
        self._toggle = toggle
        self.groups: dict[int, MapGroup] = {}
        self._shapes: dict[int, Shape] = {}
        self._extra: list[QGraphicsItem] = []
        self.plans: list[SectionPlan] = []
        self.bold = QFont()
        self.bold.setBold(True)
        self.bold.setPointSize(10)

    # ------------------------------------------------------------------ items
    def _new_tile(self, m: int, ch: int, shape: Shape) -> MapTile:
        tile = make_tile(self.scene.addItem, (m, ch), *self._slots)
        tile.set_extent(shape[1], shape[2])
        return tile

    def _drop_tile(self, tile: MapTile) -> None:
        for item in tile.items():
            self.scene.removeItem(item)

    def _drop_group(self, m: int) -> None:
        g = self.groups.pop(m)
        self._shapes.pop(m, None)
        for t in g.all_tiles():
            self._drop_tile(t)
        self.scene.removeItem(g.title)
        if g.cbar is not None:
            self.scene.removeItem(g.cbar)

    def sync(
        self,
        shapes: list[Shape],
        overview: list[bool],
        with_bar: bool,
        pictures: list[str | None] | None = None,
    ) -> list[MapGroup]:
        """One group per map of ``shapes`` with one tile per channel (plus an enlarged
        tile for maps shown as an ``overview``, a picture tile for maps whose
        ``pictures`` entry is "RGB" or "Grey") and a colour bar when ``with_bar`` (an
        unused one stays, hidden by :meth:`place`).
        Existing tiles are kept; new ones stay hidden until :meth:`place`."""
        for m in [m for m in self.groups if m >= len(shapes)]:
            self._drop_group(m)
        for m, shape in enumerate(shapes):
            g = self.groups.get(m)
            if g is None:
                header = SectionHeader(m, self._toggle)
                self.scene.addItem(header)
                g = self.groups[m] = MapGroup(m, header, [])
            c = shape[0]
            if self._shapes.get(m, shape)[1:] != shape[1:]:
                for t in g.all_tiles():
                    t.set_extent(shape[1], shape[2])
            self._shapes[m] = shape
            while len(g.tiles) > c:
                self._drop_tile(g.tiles.pop())
            while len(g.tiles) < c:
                g.tiles.append(self._new_tile(m, len(g.tiles), shape))
            self._sync_focus(g, shape, overview[m])
            self._sync_picture(g, shape, pictures[m] if pictures else None)
            if with_bar and g.cbar is None:  # kept, hidden, while the scale is per map
                g.cbar = ColourBar()
                self.scene.addItem(g.cbar)
                g.signed = g.levels = None
        return [self.groups[m] for m in range(len(shapes))]

    def _sync_focus(self, g: MapGroup, shape: Shape, overview: bool) -> None:
        if overview and g.focus is None:
            g.focus = self._new_tile(g.map_index, 0, shape)
            g.set_focus(0)
        elif not overview and g.focus is not None:
            if g.focus.channel < len(g.tiles):
                g.tiles[g.focus.channel].set_border(FRAME_PEN)
            self._drop_tile(g.focus)
            g.focus = None
        if g.focus is not None and g.focus.channel >= shape[0]:
            g.set_focus(0)

    def _sync_picture(self, g: MapGroup, shape: Shape, mode: str | None) -> None:
        if mode is not None and g.composite is None:
            tile = make_tile(
                self.scene.addItem, (g.map_index, COMPOSITE), *self._slots, CompositeTile
            )
            tile.set_extent(shape[1], shape[2])
            g.composite = tile
        elif mode is None and g.composite is not None:
            self._drop_tile(g.composite)
            g.composite = None
        if isinstance(g.composite, CompositeTile) and g.composite.mode != mode:
            g.composite.mode = mode or "RGB"
            g.composite.levels = (0.0, 0.0)  # redrawn in the new mode at the next values

    # ------------------------------------------------------------------ placing
    def place(
        self, plans: list[SectionPlan], notes: list[tuple[str, bool]], y: float, width: float
    ) -> tuple[float, float]:
        """Move every group's items where ``plans`` say, then one paragraph per note
        ``(text, is_error)`` from ``y`` down, wrapped to the visible ``width`` (a long
        error is never cut off). Returns the notes' right and bottom edges."""
        for item in self._extra:
            self.scene.removeItem(item)
        self._extra = []
        self.plans = plans
        for m, plan in enumerate(plans):
            g = self.groups[m]
            g.title.setPos(plan.x, plan.y)
            g.title.set_width(min(float(g.title.natural_width()), plan.width))
            g.title.set_collapsed(not plan.tiles)
            small = plan.focus is not None and g.composite is None  # an overview's thumbs
            for ch, t in enumerate(g.tiles):
                t.place(plan.tiles[ch] if plan.tiles else None, small)
            big = g.focus or g.composite
            if big is not None:
                big.place(plan.focus if plan.tiles else None)
            if g.cbar is not None:
                g.cbar.setVisible(plan.bar is not None)
                if plan.bar is not None:
                    g.cbar.set_rect(plan.bar)
            if plan.arrow:
                self._arrow(plan)
        right = 0.0
        for text, is_error in notes:
            label = QGraphicsTextItem(text)
            label.setFont(self.bold)
            label.setDefaultTextColor(QColor(180, 30, 30) if is_error else QColor(120, 120, 120))
            label.setTextWidth(max(width - 2 * MARGIN, 100))
            label.setPos(MARGIN, y)
            self.scene.addItem(label)
            self._extra.append(label)
            right = max(right, MARGIN + label.boundingRect().width())
            y += max(HEADER_H, label.boundingRect().height()) + 4
        return right, y

    def _arrow(self, plan: SectionPlan) -> None:
        arrow = QGraphicsSimpleTextItem("➜")
        arrow.setFont(self.bold)
        arrow.setBrush(QBrush(QColor(120, 120, 120)))
        first = plan.focus or (plan.tiles[0] if plan.tiles else None)
        mid = first.center().y() if first is not None else plan.y + HEADER_H / 2
        arrow.setPos(plan.x - ARROW_GAP + 8, mid - 8 if first is not None else plan.y + 3)
        self.scene.addItem(arrow)
        self._extra.append(arrow)

    def pin_bars(self, view_top: float) -> None:
        """Keep each colour bar beside its section's tiles in view (``view_top`` = the
        scene y at the top of the viewport): it slides down with the scroll until the
        section's last row."""
        for m, plan in enumerate(self.plans):
            g = self.groups.get(m)
            if g is None or g.cbar is None or plan.bar is None:
                continue
            y = pinned_bar_y(plan, view_top)
            if g.cbar.pos().y() != y:
                g.cbar.setPos(plan.bar.x(), y)
