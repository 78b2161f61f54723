"""Every feature map of the network, input first, one pyqtgraph ImageItem per channel.

Three levels of change, cheapest first:

* a value edit only calls ``setImage(..., autoLevels=False)`` on the existing items (on
  screen now, off screen when scrolled to) and updates numbers, captions and overlays;
* a layout change (width, tile size, fit, collapse, overview, enlarged channel) moves the
  existing items (:meth:`MapScene.place`);
* a structure change (maps or channels added or removed, a shape, the scale mode) adds or
  removes only the tiles that appeared or went (:meth:`MapScene.sync`).

Items are positioned by hand in one scene of a fixed-size GraphicsView inside a
QScrollArea (pixel = scene unit); colour bars are moved on scroll to stay in view; tiles
are drawn (their view boxes made) when in view, a few per turn (``map_drawing.py``).
"""

from __future__ import annotations

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")


import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtWidgets import QScrollArea, QVBoxLayout, QWidget

from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.model import Change
from cnn_explorer.explorer.results import Results
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.explorer.map_composite import PICTURE_HINT, composite_mode
from cnn_explorer.ui.explorer.map_drawing import TileDrawer, visible_scene_rect
from cnn_explorer.ui.explorer.map_items import MapGroup, MapTile
from cnn_explorer.ui.explorer.map_layout import (
    MARGIN,
    OVERVIEW_CHANNELS,
    SectionSpec,
    fit_px,
    inner_width,
    plan_sections,
)
from cnn_explorer.ui.explorer.map_numbers import NumbersItem
from cnn_explorer.ui.explorer.map_pages import MapPages
from cnn_explorer.ui.explorer.map_scene import MapScene
from cnn_explorer.ui.explorer.map_toolbar import (
    CHANNEL_MODES,
    HOVER_HINT,
    SCALE_MODES,
    MapToolbar,
    has_cell,
    hover_text,
    map_titles,
    missing_notes,
    set_combo,
)
from cnn_explorer.ui.explorer.map_values import push_values, set_pending, stats_of
from cnn_explorer.ui.explorer.row_maps import RowMapsView


class FeatureMapView(QWidget):
    """Scrollable flow of all maps with colour bars, numbers, hover and cell selection."""

    cell_clicked = Signal(object)  # Selection
    hover_text = Signal(str)
    numbers_changed = Signal(bool)  # numbers in cells shown (True) or hidden

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.scale_mode = SCALE_MODES[0]
        self.channel_mode = CHANNEL_MODES[0]
        self.show_numbers = True
        self.fit_width = True
        self.image_display = "Auto"  # the input's display (the grid's "Show")
        self.tile_px = 0  # set from the slider in _build_ui
        self.drawn_px = 0.0
        """Drawn size of the largest tiles after fitting to the width."""
        self._collapsed: set[int] = set()
        self._groups: list[MapGroup] = []
        self._structure: tuple = ()
        self._layout_key: tuple = ()
        self._titles: list[str] = []
        self._results: Results | None = None
        self._hovered: tuple[int, int, int, int] | None = None
        self._text_colors = {signed: colors.lut_text_colors(signed) for signed in (True, False)}
        self.zoom = 1.0
        """View ▸ Zoom factor: the scene is drawn this many times larger."""
        self._scene_size = (1, 1)
        self._build_ui()
        self.paint_count = 0
        doc.results_ready.connect(self.show_results)
        doc.changed.connect(self._on_changed)
        self.cell_clicked.connect(doc.select_cell)
        self._relayout_timer = QTimer(self)
        self._relayout_timer.setSingleShot(True)
        self._relayout_timer.timeout.connect(self._place)
        self.scroll.horizontalScrollBar().valueChanged.connect(lambda _v: self._scrolled())
        self.scroll.verticalScrollBar().valueChanged.connect(self._scrolled)
        self.scroll.viewport().installEventFilter(self)
        self._drawer = TileDrawer(
            self._visible_scene_rect, self._all_tiles, self._apply_pending, self
        )
        self.show_results(doc.results)

    # ------------------------------------------------------------------ widgets
    def _build_ui(self) -> None:
        self.toolbar = MapToolbar()
        bar = self.toolbar
        self.scale_combo, self.numbers_check = bar.scale_combo, bar.numbers_check
        self.channels_combo, self.size_slider = bar.channels_combo, bar.size_slider
        self.fit_check, self.hover_label = bar.fit_check, bar.hover_label
        self.tile_px = self.size_slider.value()
        self.scale_combo.currentTextChanged.connect(self.set_scale_mode)
        self.numbers_check.toggled.connect(self.set_show_numbers)
        self.channels_combo.currentTextChanged.connect(self.set_channel_mode)
        self.size_slider.valueChanged.connect(self._slider_moved)
        self.fit_check.toggled.connect(self.set_fit_width)

        self.view = pg.GraphicsView(background="w")
        self.view.setRenderHints(self.view.renderHints())
        self.view.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scene = self.view.scene()
        self._scene = MapScene(self.scene, self.set_hover, self.cell_clicked.emit, self.toggle)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.view)
        self.scroll.setWidgetResizable(False)
        self.scroll.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.scroll.setStyleSheet("QScrollArea { background: white; }")
        # Always there, so the width the tiles flow in does not change when it appears.
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)

        # A 1-row input's maps are line plots instead (its own widget; see row_maps.py);
        # while a new document's maps are computed on the pool, a note (map_pages.py).
        self.rows_view = RowMapsView(self.doc)
        self.stack = MapPages(self.doc, self.scroll, self.rows_view)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(bar)
        lay.addWidget(self.stack, 1)

    # ------------------------------------------------------------------ public
    def set_scale_mode(self, mode: str) -> None:
        if mode in SCALE_MODES and mode != self.scale_mode:
            self.scale_mode = mode
            set_combo(self.scale_combo, mode)
            self._structure = ()  # colour bars appear/disappear
            if self._results is not None:
                self.show_results(self._results)

    def set_channel_mode(self, mode: str) -> None:
        """Auto, All large or Overview (see :data:`CHANNEL_MODES`)."""
        if mode in CHANNEL_MODES and mode != self.channel_mode:
            self.channel_mode = mode
            set_combo(self.channels_combo, mode)
            self._structure = ()  # overviews get (or lose) their enlarged tile
            if self._results is not None:
                self.show_results(self._results)

    def set_image_display(self, mode: str) -> None:
        """Follow the input's display mode: 3-channel maps may be drawn as one picture
        with their channels small beside it (see :func:`composite_mode`)."""
        if mode not in colors.DISPLAY_MODES:
            raise ValueError(f"unknown display mode {mode!r}")
        if mode != self.image_display:
            self.image_display = mode
            if self._results is not None:
                self.show_results(self._results)

    def set_tile_size(self, px: int) -> None:
        """Draw maps from 16×16 up ``px`` wide (smaller maps in proportion), now."""
        with QSignalBlocker(self.size_slider):
            self.size_slider.setValue(px)
        self.tile_px = self.size_slider.value()
        self._place()

    def _slider_moved(self, px: int) -> None:
        self.tile_px = px
        self._relayout_timer.start(40)  # a dragged slider lays out once per pause

    def set_fit_width(self, on: bool) -> None:
        """Let the tile size move a little so that rows end at the right edge."""
        if self.fit_check.isChecked() != on:
            self.fit_check.setChecked(on)
            return
        if on != self.fit_width:
            self.fit_width = on
            self._place()

    def toggle(self, map_index: int) -> None:
        """Collapse an expanded map, expand a collapsed one (a click on its header)."""
        self.set_collapsed(map_index, map_index not in self._collapsed)

    def set_collapsed(self, map_index: int, on: bool) -> None:
        if on != (map_index in self._collapsed):
            self._collapsed ^= {map_index}
            self._place()

    def is_collapsed(self, map_index: int) -> bool:
        return map_index in self._collapsed

    def is_overview(self, map_index: int) -> bool:
        g = self.group(map_index)
        return g is not None and g.focus is not None

    def focused_channel(self, map_index: int) -> int | None:
        """The channel an overview shows enlarged (None when the map is no overview)."""
        g = self.group(map_index)
        return None if g is None or g.focus is None else g.focus.channel

    def set_show_numbers(self, on: bool) -> None:
        """Draw (or hide) the numbers in small maps; the check box and
        :attr:`numbers_changed` follow, so a menu action can mirror the box."""
        if self.numbers_check.isChecked() != on:
            self.numbers_check.setChecked(on)  # toggled → back here with the same value
            return
        if on == self.show_numbers:
            return
        self.show_numbers = on
        for g in self._groups:
            for t in g.all_tiles():
                if t.numbers is not None:
                    t.numbers.setVisible(on)
        self.numbers_changed.emit(on)

    def group(self, map_index: int) -> MapGroup | None:
        return next((g for g in self._groups if g.map_index == map_index), None)

    def _fresh(self, t: MapTile | None) -> MapTile | None:
        """``t`` brought up to date (drawn now if it was off screen)."""
        if t is not None and t.pending is not None:
            self._apply_pending(t)
        return t

    def tile(self, map_index: int, channel: int) -> MapTile | None:
        """The items of one channel, brought up to date if it was off screen."""
        g = self.group(map_index)
        return None if g is None or channel >= len(g.tiles) else self._fresh(g.tiles[channel])

    def focus_tile(self, map_index: int) -> MapTile | None:
        """An overview's enlarged tile, brought up to date (None when there is none)."""
        g = self.group(map_index)
        return None if g is None else self._fresh(g.focus)

    def picture_tile(self, map_index: int) -> MapTile | None:
        """The picture of a 3-channel map, brought up to date (None when it has none)."""
        g = self.group(map_index)
        return None if g is None else self._fresh(g.composite)

    def shown_tiles(self) -> list[MapTile]:
        """Every tile on the scene (not collapsed), brought up to date — for tests."""
        return [self._fresh(t) for t in self._all_tiles() if not t.rect.isEmpty()]  # type: ignore[misc]

    def cell_text(self, map_index: int, channel: int, row: int, col: int) -> str:
        """The number drawn in a cell ("" when numbers are not drawn) — for tests."""
        t = self.tile(map_index, channel)
        return "" if t is None or t.numbers is None else t.numbers.text(row, col)

    # ------------------------------------------------------------------ results
    def _structure_of(self, res: Results) -> tuple:
        shapes = tuple(tuple(m.shape) for m in res.maps)
        errs = tuple((s.error or "") for s in res.statuses)
        return (shapes, errs, self.scale_mode, self.channel_mode, self._pictures(res))

    def _pictures(self, res: Results) -> tuple[str | None, ...]:
        return tuple(composite_mode(self.image_display, m, x.shape) for m, x in enumerate(res.maps))

    def show_results(self, res: Results) -> None:
        """Update the display: in place when the structure is unchanged, else rebuild."""
        self._results = res
        if self._relayout_timer.isActive():  # a resize is waiting: one repaint for both
            self._relayout_timer.stop()
            self._place()
        titles = map_titles(self.doc.layers, res)
        struct = self._structure_of(res)
        if struct != self._structure:
            self._structure = struct
            self._titles = titles
            self._rebuild(res)
            self._apply_selection()
        else:
            if titles != self._titles:
                self._titles = titles
                for g, t in zip(self._groups, titles, strict=False):
                    g.title.set_text(t, g.title.hint)
                self._layout_key = ()  # a wider title may move the sections
                self._place()
            first = 0 if self.scale_mode == "Global" else res.first
            self._update_values(res, first, res.channels)
            self._apply_selection()
        self.set_hover(self._hovered)  # the hovered value changed, or its map is gone
        self.stack.update_page()  # drawn while hidden: the tiles in view show when it shows
        self.paint_count += 1

    def _overview_of(self, channels: int) -> bool:
        most = 1 if self.channel_mode == "Overview" else OVERVIEW_CHANNELS
        return self.channel_mode != "All large" and channels > most

    def _rebuild(self, res: Results) -> None:
        """Bring the items in line with the current maps (adding or removing only the
        tiles that appeared or went), place them and show every value."""
        shapes = [(x.shape[0], x.shape[1], x.shape[2]) for x in res.maps]
        pictures = self._pictures(res)
        overview = [
            self._overview_of(c) and p is None
            for (c, _, _), p in zip(shapes, pictures, strict=True)
        ]
        with_bar = self.scale_mode != "Per map"
        self._groups = self._scene.sync(shapes, overview, with_bar, list(pictures))
        for g, title, over, pic in zip(self._groups, self._titles, overview, pictures, strict=True):
            hint = "overview · click a tile to enlarge it" if over else ""
            g.title.set_text(title, PICTURE_HINT.format(pic) if pic else hint)
        self._layout_key = ()
        self._place()
        self._drawer.spend_turn()  # new tiles are made from the next turn on (this one published)
        self._update_values(res, 0)

    def _avail(self) -> int:
        """Width (scene units) the maps flow in: the scroll viewport (its bar is always
        shown) at the current View ▸ Zoom."""
        return max(200, int(self.scroll.viewport().width() / self.zoom))

    def _place(self) -> None:
        """Lay the existing items out for the current width, tile size and view state."""
        res = self._results
        if res is None or len(self._groups) != len(res.maps):
            return
        avail = self._avail()
        specs = [
            SectionSpec(
                len(g.tiles),
                res.maps[g.map_index].shape[1],
                res.maps[g.map_index].shape[2],
                g.title.natural_width(),
                g.map_index in self._collapsed,
                g.focus is not None,
                g.composite is not None,
            )
            for g in self._groups
        ]
        with_bar = self.scale_mode != "Per map"
        notes = missing_notes(self.doc.layers, res)
        key = (avail, self.tile_px, self.fit_width, tuple(specs), with_bar, tuple(notes))
        if key == self._layout_key:
            return
        self._layout_key = key
        inner = inner_width(avail, with_bar)
        px = fit_px(self.tile_px, specs, inner) if self.fit_width else float(self.tile_px)
        self.drawn_px = px
        self.toolbar.show_size(px)
        plans, right, bottom = plan_sections(specs, px, avail, with_bar)
        note_right, bottom = self._scene.place(plans, notes, bottom, avail)
        w = int(max(right, note_right) + MARGIN)
        h = int(bottom + MARGIN)
        self._scene_size = (max(w, avail), h)
        self._fit_view()
        self._scrolled()

    # ------------------------------------------------------------------ value updates
    def _update_values(
        self, res: Results, first: int, channels: dict[int, frozenset[int]] | None = None
    ) -> None:
        """Push new values to the tiles of maps ``first`` on: to the visible ones now, the
        others when they scroll into view (see :func:`push_values`)."""
        shown = self._visible_scene_rect()

        def show(t: MapTile) -> None:
            if shown.intersects(t.rect):
                self._drawer.show(t)

        push_values(self._groups, res, self.scale_mode, self._titles, show, first, channels)

    def _visible_scene_rect(self) -> QRectF:
        return visible_scene_rect(self.view, self.scroll, self.zoom)

    def _scrolled(self) -> None:
        self._scene.pin_bars(self.scroll.verticalScrollBar().value() / self.zoom)
        self._drawer.flush_visible()  # tiles that were off screen and are now in view

    def _all_tiles(self) -> list[MapTile]:
        return [t for g in self._groups for t in g.all_tiles()]

    def finish_drawing(self) -> None:
        """Draw every tile in view now, whatever it costs (screenshots)."""
        self._drawer.finish()

    def eventFilter(self, obj: object, ev: object) -> bool:
        kind = ev.type()  # type: ignore[attr-defined]
        if kind == QEvent.Type.Show:
            self._place()  # the final width, at once (resizes wait for a pause)
        if kind in (QEvent.Type.Resize, QEvent.Type.Show):
            self._drawer.flush_visible()
        return False

    def _apply_pending(self, t: MapTile) -> None:
        t.flush(self._text_colors, self.show_numbers)

    # ------------------------------------------------------------------ hover / selection
    def set_hover(self, where: tuple[int, int, int, int] | None) -> None:
        """Show the value of the hovered cell (``(map, channel, row, col)``), or the hint
        when there is none or it no longer exists."""
        self._hovered = where
        maps = [] if self._results is None else self._results.maps
        if where is None or not has_cell(maps, where):
            self.hover_label.setText(HOVER_HINT)
            return
        text = hover_text(maps, where)
        self.hover_label.setText(text)
        self.hover_text.emit(text)

    def _on_changed(self, change: Change) -> None:
        if change.kind == "cell":
            self._apply_selection()

    def _follow(self, sel: Selection | None) -> None:
        """An overview enlarges the channel of the selected cell (a click on a small tile)."""
        g = None if sel is None else self.group(sel.map_index)
        res = self._results
        if sel is None or g is None or g.focus is None or res is None:
            return
        if g.focus.channel == sel.channel or sel.channel >= len(g.tiles):
            return
        g.set_focus(sel.channel)
        m = g.map_index
        shared = (g.levels or (0.0, 1.0), bool(g.signed))  # unused with a per-map scale
        title = self._titles[m] if m < len(self._titles) else ""
        set_pending(g.focus, res, stats_of(res, m), (self.scale_mode, shared), title)
        self._apply_pending(g.focus)

    def _apply_selection(self) -> None:
        sel = self.doc.selection
        self._follow(sel)
        regions = {}
        traced: dict[tuple[int, int], Selection] = {}
        if sel is not None:
            try:
                regions = {r.map_index: r for r in self.doc.model.receptive_field(sel)}
                traced = {(c.map_index, c.channel): c for c in self.doc.model.trace(sel)}
            except Exception:
                regions, traced = {}, {}
        for g in self._groups:
            for t in g.all_tiles():
                t.highlight(sel, regions.get(g.map_index))
                t.trace(traced.get((t.map_index, t.channel)))

    def reveal_selection(self) -> None:
        """Scroll the selected cell's tile into view (a selection made elsewhere)."""
        sel = self.doc.selection
        t = None if sel is None else self.tile(sel.map_index, sel.channel)
        if t is not None and not t.rect.isEmpty():
            c, z = t.rect.center(), self.zoom  # scene units → view pixels
            half = int(t.rect.height() * z / 2) + 20
            self.scroll.ensureVisible(int(c.x() * z), int(c.y() * z), 50, half)

    def traced_cell(self, map_index: int, channel: int = 0) -> tuple[int, int] | None:
        """The (row, col) marked as the source of the selected value (tests)."""
        t = self.tile(map_index, channel)
        return None if t is None else t.traced_cell()

    def highlighted(self, map_index: int, channel: int = 0) -> np.ndarray | None:
        """Boolean mask of the lit cells of one map (None when nothing is lit) — for tests."""
        t = self.tile(map_index, channel)
        return None if t is None else t.lit_mask()

    # ------------------------------------------------------------------ zoom
    def set_zoom(self, factor: float) -> None:
        """Draw every map, title and number ``factor`` times larger (View ▸ Zoom: a
        projector); the layout flows in the width that leaves."""
        if factor != self.zoom:
            self.zoom = NumbersItem.zoom = factor
            self._fit_view()
            self.relayout()

    def _fit_view(self) -> None:
        """Show the scene (pixel = scene unit at zoom 1) scaled by :attr:`zoom`."""
        w, h = self._scene_size
        self.view.setFixedSize(max(1, round(w * self.zoom)), max(1, round(h * self.zoom)))
        self.view.setRange(QRectF(0, 0, w, h), padding=0)

    # ------------------------------------------------------------------ resize
    def resizeEvent(self, ev: object) -> None:
        super().resizeEvent(ev)  # type: ignore[arg-type]
        self._relayout_timer.start(150)

    def relayout(self) -> None:
        """Lay the maps out again for the current width (after a resize)."""
        self._layout_key = ()
        self._place()

    def export_image(self, map_index: int, channel: int) -> np.ndarray:
        """``(H, W, 3)`` uint8 colour rendering of a map as currently displayed."""
        t = self.tile(map_index, channel)
        if t is None:
            raise IndexError(f"no map {map_index} channel {channel}")
        return t.export_rgb()
