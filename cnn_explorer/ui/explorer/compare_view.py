"""Compare mode's maps: A | B | B − A side by side, one row per map, synced selection.

A is the document, B its edited copy (two :class:`Document` objects sharing the input).
Every map index gets a row: A's tiles, B's tiles with the colour bar they share (one scale
per layer on both sides, so a colour means the same value in A and in B), and the
difference ``B − A`` on a diverging scale centred on 0 with its own bar. A layer without
a counterpart, or whose output shape differs, says so in words instead of a difference.

The tiles are the feature-map view's (:func:`make_tile`, :class:`MapTile`): the same
colours, numbers, captions and receptive-field overlays. A click on any of the three
selects that cell in A and in B; each side lights its own receptive field. New values go
to the tiles on screen at once and to the others when they scroll into view.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer import compare
from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.model import Change
from cnn_explorer.explorer.results import Results
from cnn_explorer.explorer.stats import MapStats, map_stats
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.explorer.compare_layout import SIDES
from cnn_explorer.ui.explorer.compare_scene import CompareScene, Row
from cnn_explorer.ui.explorer.map_caption import TileStats
from cnn_explorer.ui.explorer.map_items import MapTile
from cnn_explorer.ui.explorer.map_toolbar import ElidedLabel, map_titles
from cnn_explorer.ui.explorer.map_values import stats_of

SIDE_NAMES = {"a": "A", "b": "B", "d": "B − A"}
HINT = "Click a cell in any column: A, B and B − A select it together."


class CompareView(QWidget):
    """Three columns A | B | B − A of every map, for compare mode."""

    hover_text = Signal(str)

    def __init__(self, a: Document, b: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.a, self.b = a, b
        self.active = False
        self.zoom = 1.0
        """View ▸ Zoom: screen pixels per scene unit (the feature-map view's too)."""
        self.paint_count = 0
        self._struct: tuple = ()
        self._layout_key: tuple = ()
        self._shown: dict[int, tuple] = {}  # id(tile) → the levels it was last given
        self._later: dict[int, tuple] = {}  # id(tile) → values waiting to be drawn
        self._lit = False  # a selection is drawn somewhere
        self._view_rect: QRectF | None = None  # the visible part, during a refresh
        self._diffs: dict[int, list] = {}  # map → [A's map, B's map, B − A, its stats]
        self._text_colors = {s: colors.lut_text_colors(s) for s in (True, False)}
        self._build_ui()
        self._items = CompareScene(self.scene, self._hover, self._click)
        self._relayout = QTimer(self, singleShot=True, interval=60, timeout=self._place)
        a.results_ready.connect(lambda res: self._on_results("a", res))
        b.results_ready.connect(lambda res: self._on_results("b", res))
        for doc in (a, b):
            doc.changed.connect(self._on_changed)

    # ------------------------------------------------------------------ widgets
    def _build_ui(self) -> None:
        self.bar = QHBoxLayout()
        self.bar.setContentsMargins(6, 4, 6, 0)
        self.hover_label = ElidedLabel(HINT)
        self.hover_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.hover_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.bar.addStretch(0)
        self.bar.addWidget(self.hover_label, 1)
        self.about = QLabel(
            "<b>Compare</b>: B starts as a copy of A. The Layers and Kernel panels edit "
            "<b>B</b>; input edits apply to both. A and B share a colour scale per layer; "
            "B − A is blue where B is lower, red where it is higher."
        )
        self.about.setWordWrap(True)
        self.about.setStyleSheet("color: #444; padding: 0 6px;")
        self.view = pg.GraphicsView(background="w")
        self.view.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scene = self.view.scene()
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.view)
        self.scroll.setWidgetResizable(False)
        self.scroll.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.scroll.setStyleSheet("QScrollArea { background: white; }")
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.scroll.verticalScrollBar().valueChanged.connect(self._flush_visible)
        self.scroll.horizontalScrollBar().valueChanged.connect(self._flush_visible)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addLayout(self.bar)
        lay.addWidget(self.about)
        lay.addWidget(self.scroll, 1)

    def add_button(self, action: object) -> QToolButton:
        """A button for ``action`` (a QAction) at the left of the bar above the maps."""
        btn = QToolButton()
        btn.setDefaultAction(action)  # type: ignore[arg-type]
        btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.bar.insertWidget(self.bar.count() - 2, btn)
        return btn

    def set_active(self, on: bool) -> None:
        """Follow both documents (on) or ignore them (off: compare mode left)."""
        self.active = on
        if on:
            self._struct = ()
            self.refresh()

    # ------------------------------------------------------------------ reading (tests)
    def row_indices(self) -> list[int]:
        return [r.index for r in self._items.rows]

    def tile(self, side: str, map_index: int, channel: int = 0) -> MapTile | None:
        """A tile of column ``side`` ("a", "b" or "d"), brought up to date."""
        for r in self._items.rows:
            if r.index == map_index and channel < len(r.tiles.get(side, [])):
                t = r.tiles[side][channel]
                if id(t) in self._later:
                    self._show(t)
                return t
        return None

    def shown_values(self, side: str, map_index: int, channel: int = 0) -> np.ndarray | None:
        t = self.tile(side, map_index, channel)
        return None if t is None else t.image.data2d

    def levels(self, side: str, map_index: int, channel: int = 0) -> tuple[float, float] | None:
        t = self.tile(side, map_index, channel)
        return None if t is None else t.levels

    def note(self, map_index: int) -> str:
        """What the difference column says instead of a map ("" when there is a map)."""
        for r in self._items.rows:
            if r.index == map_index:
                return r.pair.note
        return ""

    def title(self, side: str, map_index: int) -> str:
        for r in self._items.rows:
            if r.index == map_index:
                return r.title_text.get(side, "")
        return ""

    def highlighted(self, side: str, map_index: int, channel: int = 0) -> np.ndarray | None:
        """Boolean mask of the lit cells (None when nothing is lit)."""
        t = self.tile(side, map_index, channel)
        if t is None or t.overlay is None or not t.overlay.isVisible():
            return None
        return np.asarray(t.overlay.image[..., 3] == 0)

    def selected_cell(self, side: str, map_index: int, channel: int = 0) -> tuple[int, int] | None:
        t = self.tile(side, map_index, channel)
        if t is None or not t.cell_box.isVisible():
            return None
        r = t.cell_box.rect()
        return int(r.y()), int(r.x())

    # ------------------------------------------------------------------ updates
    def _on_results(self, side: str, res: Results) -> None:
        if self.active:
            self.refresh(side, res)

    def _on_changed(self, change: Change) -> None:
        if self.active and change.kind == "cell":
            self._apply_selection()

    def refresh(self, source: str | None = None, res: Results | None = None) -> None:
        """Show both documents' latest results (rebuilding only when a shape changed).

        ``source`` ("a" or "b") and its new ``res`` narrow the work: that side's maps
        before ``res.first`` and channels outside ``res.channels`` kept their values, and
        the other side's all did, so only their colour levels can have moved."""
        ra, rb = self.a.results, self.b.results
        pairs = compare.pair_maps(ra, rb)
        struct = tuple((p.a_shape, p.b_shape, p.a_why, p.b_why) for p in pairs)
        if struct != self._struct:
            self._struct = struct
            self._items.rebuild(pairs)
            self._shown.clear()
            self._later.clear()
            self._diffs.clear()
            self._layout_key = ()
            self._place()
            source = None
        titles = {"a": map_titles(self.a.layers, ra), "b": map_titles(self.b.layers, rb)}
        first, channels = (0, {}) if res is None else (res.first, res.channels)
        self._view_rect = self._visible_rect()
        for row in self._items.rows:
            m = row.index

            def changed(side: str, c: int, m: int = m) -> bool:
                if source is None:
                    return True
                if side not in (source, "d") or m < first:
                    return False
                only = channels.get(m)
                return only is None or c in only

            self._update_row(row, titles, changed)
        if self._lit or self.a.selection is not None or self.b.selection is not None:
            self._apply_selection()
        self.paint_count += 1

    def _update_row(
        self, row: Row, titles: dict[str, list[str]], changed: Callable[[str, int], bool]
    ) -> None:
        m, p = row.index, row.pair
        ra, rb = self.a.results, self.b.results
        am = ra.maps[m] if p.a_shape is not None else None
        bm = rb.maps[m] if p.b_shape is not None else None
        stats = {"a": stats_of(ra, m) if am is not None else None}
        stats["b"] = stats_of(rb, m) if bm is not None else None
        ranges = [st.range() for st in stats.values() if st is not None]
        lo = min((r[0] for r in ranges), default=0.0)
        levels, signed = colors.nice_levels(lo, max((r[1] for r in ranges), default=0.0))
        row.bars["ab"].set_scale(levels, signed)
        for side, x in (("a", am), ("b", bm)):
            title = titles[side][m] if m < len(titles[side]) else ""
            short = title.split(": ", 1)[-1] if m else title
            st = stats[side]
            if x is not None and st is not None:
                self._items.set_title(row, side, f"{SIDE_NAMES[side]} · {short}")
                for t in row.tiles[side]:
                    self._push(t, x, (levels, signed), st, title, changed(side, t.channel))
            else:
                self._items.set_title(row, side, f"{SIDE_NAMES[side]} · no map")
        if am is None or bm is None or not p.paired:
            self._items.set_title(row, "d", "B − A · none")
            return
        d = self._difference(m, am, bm)
        bound = compare.diff_bound(d)
        top = colors.nice_ceil(bound) or 1.0
        row.bars["d"].set_scale((-top, top), True)
        text = "B − A · identical (0)" if bound == 0 else f"B − A · up to ±{colors.fmt(bound)}"
        self._items.set_title(row, "d", text)
        for t in row.tiles["d"]:
            lv = ((-top, top), True)
            self._push(t, d, lv, None, f"Map {m}, B − A", changed("d", t.channel))

    def _difference(self, m: int, am: np.ndarray, bm: np.ndarray) -> np.ndarray:
        """B − A of map ``m``, recomputed only when A's or B's map changed."""
        hit = self._diffs.get(m)
        if hit is not None and hit[0] is am and hit[1] is bm:
            return hit[2]
        d = compare.difference(self.a.results, self.b.results, m)
        assert d is not None
        self._diffs[m] = [am, bm, d, None]
        return d

    def _diff_stats(self, d: np.ndarray) -> MapStats:
        """The statistics of a difference map, computed once, when a tile first shows it."""
        for hit in self._diffs.values():
            if hit[2] is d:
                if hit[3] is None:
                    hit[3] = map_stats(d)
                return hit[3]
        return map_stats(d)

    def _push(
        self,
        t: MapTile,
        x: np.ndarray,
        lv: tuple,
        st: MapStats | None,
        title: str,
        changed: bool,
    ) -> None:
        """Give ``t`` its channel of ``x`` under levels ``lv`` (unless its values did not
        change and it shows ``lv`` already): now when on screen, else when scrolled to.
        ``st`` None: ``x`` is a difference map (its statistics are made when shown)."""
        if not changed and self._shown.get(id(t)) == lv:
            return
        self._shown[id(t)] = lv
        self._later[id(t)] = (t, x, lv, st, title)
        view = self._view_rect
        if view is None or view.intersects(t.rect):
            self._show(t)

    def _show(self, t: MapTile) -> None:
        """Draw the values waiting for ``t``."""
        _, x, lv, st, title = self._later.pop(id(t))
        c = t.channel
        st = self._diff_stats(x) if st is None else st
        t.pending = (x[c], lv[0], lv[1], TileStats.of(st, c), False, title)
        t.flush(self._text_colors, True)

    # ------------------------------------------------------------------ placing
    def _avail(self) -> int:
        """Width (scene units) the columns share: the viewport's at the current zoom."""
        return max(300, int(self.scroll.viewport().width() / self.zoom))

    def set_zoom(self, factor: float) -> None:
        """Draw everything ``factor`` times larger (View ▸ Zoom); the columns narrow."""
        if factor != self.zoom:
            self.zoom = factor
            self._layout_key = ()
            self._place()

    def _place(self) -> None:
        avail = self._avail()
        key = (avail, self._struct)
        if key == self._layout_key:
            return
        self._layout_key = key
        w, h = self._items.place(avail)
        w = max(w, avail)
        z = self.zoom
        self.view.setFixedSize(max(1, round(w * z)), max(1, round(h * z)))
        self.view.setRange(QRectF(0, 0, w, h), padding=0)
        self._flush_visible()

    def _visible_rect(self) -> QRectF | None:
        if not self.view.isVisible():
            return None
        vp, z = self.scroll.viewport(), self.zoom
        x = self.scroll.horizontalScrollBar().value() / z
        y = self.scroll.verticalScrollBar().value() / z
        return QRectF(x - 32, y - 32, vp.width() / z + 64, vp.height() / z + 64)

    def _flush_visible(self) -> None:
        shown = self._visible_rect()
        for t, *_ in list(self._later.values()):
            if shown is None or shown.intersects(t.rect):
                self._show(t)

    def resizeEvent(self, ev: object) -> None:
        super().resizeEvent(ev)  # type: ignore[arg-type]
        self._relayout.start()

    def showEvent(self, ev: object) -> None:
        super().showEvent(ev)  # type: ignore[arg-type]
        self._place()
        self._flush_visible()

    # ------------------------------------------------------------------ hover / selection
    def _click(self, sel: Selection) -> None:
        """One cell selected in A and in B (each keeps it only if it has that cell)."""
        self.a.select_cell(sel)
        self.b.select_cell(sel)

    def _hover(self, side: str, where: tuple[int, int, int, int] | None) -> None:
        if where is None:
            self.hover_label.setText(HINT)
            return
        m, ch, r, c = where
        if side == "d":
            hit = self._diffs.get(m)
            x = None if hit is None else hit[2]  # the difference shown
        else:
            res = (self.a if side == "a" else self.b).results
            x = res.maps[m] if m < len(res.maps) else None
        if x is None or not (ch < x.shape[0] and r < x.shape[1] and c < x.shape[2]):
            return
        name = "input" if m == 0 else f"layer {m}"
        text = f"{SIDE_NAMES[side]}: {name}[{ch},{r},{c}] = {float(x[ch, r, c]):.6g}"
        self.hover_label.setText(text)
        self.hover_text.emit(text)

    def _apply_selection(self) -> None:
        """Each side marks its own selected cell and lights its own receptive field; the
        difference follows B (A when B has no such cell)."""
        lit = {}
        for side, doc in (("a", self.a), ("b", self.b)):
            sel = doc.selection
            regions, traced = {}, {}
            if sel is not None:
                try:
                    regions = {r.map_index: r for r in doc.model.receptive_field(sel)}
                    traced = {(t.map_index, t.channel): t for t in doc.model.trace(sel)}
                except Exception:
                    regions, traced = {}, {}
            lit[side] = (sel, regions, traced)
        lit["d"] = lit["b"] if lit["b"][0] is not None else lit["a"]
        self._lit = lit["d"][0] is not None
        for row in self._items.rows:
            for side in SIDES:
                sel, regions, traced = lit[side]
                region = regions.get(row.index)
                shape = row.pair.a_shape if side == "a" else row.pair.b_shape
                if region is not None and (shape is None or tuple(region.shape) != shape[1:]):
                    region = None  # lit in the other side's geometry: not this map's cells
                for t in row.tiles[side]:
                    t.highlight(sel, region)
                    t.trace(traced.get((t.map_index, t.channel)))
