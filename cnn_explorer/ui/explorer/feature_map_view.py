"""Every feature map of the network, input first, one pyqtgraph ImageItem per channel.

Layout is built once per *structure* (number of maps and their shapes); a value edit only
calls ``setImage(..., autoLevels=False)`` on the existing items and updates the reused
number TextItems, label texts and overlays. Items are positioned by hand in one scene of a
fixed-size GraphicsView inside a QScrollArea (pixel = scene unit), which keeps relayout
cost out of the edit path.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")


import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.model import Change
from cnn_explorer.explorer.results import Results
from cnn_explorer.explorer.stats import map_stats as map_stats_full
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.explorer.map_items import NUMBERS_MAX, MapGroup, MapTile, NumbersItem
from cnn_explorer.ui.explorer.map_layout import MapScene
from cnn_explorer.ui.explorer.row_maps import RowMapsView

SCALE_MODES = ("Per layer", "Per map", "Global")


HOVER_HINT = "Hover a map to read values; click a cell to explain it."


def _has_cell(maps: list[np.ndarray], where: tuple[int, int, int, int]) -> bool:
    m, ch, r, c = where
    if not 0 <= m < len(maps):
        return False
    n, h, w = maps[m].shape
    return 0 <= ch < n and 0 <= r < h and 0 <= c < w


class FeatureMapView(QWidget):
    """Scrollable grid of all maps with colour bars, numbers, hover and cell selection."""

    cell_clicked = Signal(object)  # Selection
    hover_text = Signal(str)
    numbers_changed = Signal(bool)  # numbers in cells shown (True) or hidden

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.scale_mode = SCALE_MODES[0]
        self.show_numbers = True
        self._groups: list[MapGroup] = []
        self._structure: tuple = ()
        self._titles: list[str] = []
        self._results: Results | None = None
        self._hovered: tuple[int, int, int, int] | None = None
        self._text_colors = {
            True: colors.lut_text_colors(True),
            False: colors.lut_text_colors(False),
        }
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
        self._relayout_timer.setInterval(150)
        self._relayout_timer.timeout.connect(self._maybe_relayout)
        self.scroll.horizontalScrollBar().valueChanged.connect(self._flush_visible)
        self.scroll.verticalScrollBar().valueChanged.connect(self._flush_visible)
        self.scroll.viewport().installEventFilter(self)
        self.show_results(doc.results)

    # ------------------------------------------------------------------ widgets
    def _build_ui(self) -> None:
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 2)
        bar.addWidget(QLabel("Colour scale:"))
        self.scale_combo = QComboBox()
        self.scale_combo.addItems(SCALE_MODES)
        self.scale_combo.setToolTip(
            "Per layer: all channels of a layer share one colour bar.\n"
            "Per map: each channel uses its own range.\nGlobal: one range for every map."
        )
        self.scale_combo.currentTextChanged.connect(self.set_scale_mode)
        bar.addWidget(self.scale_combo)
        self.numbers_check = QCheckBox("Numbers in cells")
        self.numbers_check.setChecked(True)
        self.numbers_check.setToolTip(f"Draw values in maps up to {NUMBERS_MAX}×{NUMBERS_MAX}")
        self.numbers_check.toggled.connect(self.set_show_numbers)
        bar.addWidget(self.numbers_check)
        self.hover_label = QLabel(HOVER_HINT)
        self.hover_label.setObjectName("hoverLabel")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hover_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.hover_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        bar.addWidget(self.hover_label, 1)

        self.view = pg.GraphicsView(background="w")
        self.view.setRenderHints(self.view.renderHints())
        self.view.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scene = self.view.scene()
        self._scene = MapScene(self.scene, self.set_hover, self.cell_clicked.emit)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.view)
        self.scroll.setWidgetResizable(False)
        self.scroll.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.scroll.setStyleSheet("QScrollArea { background: white; }")

        # A 1-row input's maps are line plots instead (its own widget; see row_maps.py).
        self.rows_view = RowMapsView(self.doc)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.scroll)
        self.stack.addWidget(self.rows_view)
        self.stack.setCurrentIndex(int(self.rows_view.applies))
        self.rows_view.applies_changed.connect(lambda on: self.stack.setCurrentIndex(int(on)))

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(bar)
        lay.addWidget(self.stack, 1)

    # ------------------------------------------------------------------ public
    def set_scale_mode(self, mode: str) -> None:
        if mode in SCALE_MODES and mode != self.scale_mode:
            self.scale_mode = mode
            if self.scale_combo.currentText() != mode:
                self.scale_combo.blockSignals(True)
                self.scale_combo.setCurrentText(mode)
                self.scale_combo.blockSignals(False)
            self._structure = ()  # colour bars appear/disappear
            if self._results is not None:
                self.show_results(self._results)

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
            for t in g.tiles:
                if t.numbers is not None:
                    t.numbers.setVisible(on)
        self.numbers_changed.emit(on)

    def group(self, map_index: int) -> MapGroup | None:
        for g in self._groups:
            if g.map_index == map_index:
                return g
        return None

    def tile(self, map_index: int, channel: int) -> MapTile | None:
        """The items of one channel, brought up to date if it was off screen."""
        g = self.group(map_index)
        if g is None or channel >= len(g.tiles):
            return None
        t = g.tiles[channel]
        if t.pending is not None:
            self._apply_pending(t)
        return t

    def cell_text(self, map_index: int, channel: int, row: int, col: int) -> str:
        """The number drawn in a cell ("" when numbers are not drawn) — for tests."""
        t = self.tile(map_index, channel)
        if t is None or t.numbers is None:
            return ""
        return t.numbers.text(row, col)

    # ------------------------------------------------------------------ results
    def _structure_of(self, res: Results) -> tuple:
        shapes = tuple(tuple(m.shape) for m in res.maps)
        errs = tuple((s.error or "") for s in res.statuses)
        return (shapes, errs, self.scale_mode, self._columns_hint())

    def show_results(self, res: Results) -> None:
        """Update the display: in place when the structure is unchanged, else rebuild."""
        self._results = res
        titles = self._group_titles(res)
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
                    g.title.setText(t)
            first = 0 if self.scale_mode == "Global" else res.first
            self._update_values(res, first, res.channels)
            self._apply_selection()
        self.set_hover(self._hovered)  # the hovered value changed, or its map is gone
        self.paint_count += 1

    def _group_titles(self, res: Results) -> list[str]:
        titles = []
        for m, x in enumerate(res.maps):
            c, h, w = x.shape
            if m == 0:
                titles.append(f"Input  ·  {c}×{h}×{w}")
                continue
            spec = self.doc.layers[m - 1] if m - 1 < len(self.doc.layers) else None
            name = spec.title if spec is not None else "?"
            off = "  (disabled: passes input)" if spec is not None and not spec.enabled else ""
            titles.append(f"Layer {m}: {name}  →  {c}×{h}×{w}{off}")
        return titles

    def _columns_hint(self) -> int:
        return max(1, self.scroll.viewport().width() // 100)

    def _rebuild(self, res: Results) -> None:
        """Recreate every item for the current maps, width and scale mode."""
        notes = []
        for i, st in enumerate(res.statuses):  # layers without maps: the invalid one on
            if i + 1 >= len(res.maps):
                spec = self.doc.layers[i] if i < len(self.doc.layers) else None
                msg = st.error or "not computed"
                title = spec.title if spec else "?"
                notes.append((f"Layer {i + 1}: {title}  —  {msg}", msg != "no input"))
        shapes = [(x.shape[0], x.shape[1], x.shape[2]) for x in res.maps]
        width_avail = max(400, int((self.scroll.viewport().width() - 4) / self.zoom))
        with_bar = self.scale_mode != "Per map"
        layout = (self._titles, shapes, notes, width_avail, with_bar)
        if self._scene.reuse(self._groups, *layout):
            self._update_values(res, 0)
            return
        self._groups, w, h = self._scene.build(*layout)
        self._scene_size = (w, h)
        self._fit_view()
        self._update_values(res, 0)

    # ------------------------------------------------------------------ value updates
    def _update_values(
        self, res: Results, first: int, channels: dict[int, frozenset[int]] | None = None
    ) -> None:
        """Push new values to the tiles of maps ``first`` on (to the visible ones now, the
        others when they scroll into view). A tile whose channel is not in
        ``channels[map]`` (unchanged data) is left alone unless its levels changed."""
        stats = (
            res.stats if len(res.stats) == len(res.maps) else [map_stats_full(m) for m in res.maps]
        )
        global_range = None
        if self.scale_mode == "Global":
            ranges = [st.range() for st in stats]
            global_range = (min(r[0] for r in ranges), max(r[1] for r in ranges))
        shown = self._visible_scene_rect()
        for g in self._groups:
            if g.map_index < first or g.map_index >= len(res.maps):
                continue
            x = res.maps[g.map_index]
            st = stats[g.map_index]
            # Shared scales end on nice numbers: the colour bar reads well, and a small
            # edit rarely moves it (which would recolour every tile of the layer).
            levels, signed = colors.nice_levels(*(global_range or st.range()))
            means = st.means
            only = (channels or {}).get(g.map_index)
            for t in g.tiles:
                c = t.channel
                lo, hi = float(st.mins[c]), float(st.maxs[c])
                if self.scale_mode == "Per map":
                    lv, sg = colors.levels_for(lo, hi)
                else:
                    lv, sg = levels, signed
                unchanged = only is not None and c not in only and t.pending is None
                if unchanged and (lv, sg) == (t.levels, t.signed):
                    continue
                zeros = st.zeros[c] / max(1, st.n)
                mean = colors.snap(float(means[c]), max(abs(lo), abs(hi)))
                t.pending = (x[c], lv, sg, (c, zeros, lo, hi, mean))
                if shown is None or t.rect is None or shown.intersects(t.rect):
                    self._apply_pending(t)
            if g.cbar is not None:
                if g.signed != signed:
                    g.cbar.setColorMap(colors.DIVERGING if signed else colors.SEQUENTIAL)
                    g.signed = signed
                if g.levels != levels:
                    g.levels = levels
                    g.cbar.setLevels(levels)

    def _visible_scene_rect(self) -> QRectF | None:
        """The part of the scene inside the scroll viewport (plus a margin), or None when
        the view is not on screen (then every tile is updated at once).

        The view has a fixed size with one scene unit per pixel, so the scroll bar values
        are the scene coordinates of the viewport's top-left corner."""
        if not self.view.isVisible():
            return None
        vp = self.scroll.viewport()
        x = self.scroll.horizontalScrollBar().value()
        y = self.scroll.verticalScrollBar().value()
        return QRectF(x - 32, y - 32, vp.width() + 64, vp.height() + 64)

    def _flush_visible(self) -> None:
        """Show the latest values of tiles that were off screen and are now in view."""
        shown = self._visible_scene_rect()
        for g in self._groups:
            for t in g.tiles:
                if t.pending is not None and (
                    shown is None or t.rect is None or shown.intersects(t.rect)
                ):
                    self._apply_pending(t)

    def eventFilter(self, obj: object, ev: object) -> bool:
        kind = ev.type()  # type: ignore[attr-defined]
        if kind in (QEvent.Type.Resize, QEvent.Type.Show):
            self._flush_visible()
        return False

    def _apply_pending(self, t: MapTile) -> None:
        t.flush(self._text_colors, self.show_numbers)

    # ------------------------------------------------------------------ hover / selection
    def set_hover(self, where: tuple[int, int, int, int] | None) -> None:
        """Show the value of the hovered cell (``(map, channel, row, col)``), or the hint
        when there is none or it no longer exists."""
        self._hovered = where
        maps = [] if self._results is None else self._results.maps
        if where is None or not _has_cell(maps, where):
            self.hover_label.setText(HOVER_HINT)
            return
        m, ch, r, c = where
        v = float(maps[m][ch, r, c])
        name = "input" if m == 0 else f"layer {m}"
        text = f"{name}[{ch},{r},{c}] = {v:.6g}"
        self.hover_label.setText(text)
        self.hover_text.emit(text)

    def _on_changed(self, change: Change) -> None:
        if change.kind == "cell":
            self._apply_selection()

    def _apply_selection(self) -> None:
        sel = self.doc.selection
        regions = {}
        traced: dict[tuple[int, int], Selection] = {}
        if sel is not None:
            try:
                regions = {r.map_index: r for r in self.doc.model.receptive_field(sel)}
                traced = {(c.map_index, c.channel): c for c in self.doc.model.trace(sel)}
            except Exception:
                regions, traced = {}, {}
        for g in self._groups:
            for t in g.tiles:
                t.highlight(sel, regions.get(g.map_index))
                t.trace(traced.get((t.map_index, t.channel)))

    def traced_cell(self, map_index: int, channel: int = 0) -> tuple[int, int] | None:
        """The (row, col) marked as the source of the selected value (tests)."""
        t = self.tile(map_index, channel)
        if t is None or not t.trace_box.isVisible():
            return None
        r = t.trace_box.rect()
        return int(r.y()), int(r.x())

    def highlighted(self, map_index: int, channel: int = 0) -> np.ndarray | None:
        """Boolean mask of the lit cells of one map (None when nothing is lit) — for tests."""
        t = self.tile(map_index, channel)
        if t is None or not t.overlay.isVisible() or t.overlay.image is None:
            return None
        return np.asarray(t.overlay.image[..., 3] == 0)

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
        self._relayout_timer.start()

    def relayout(self) -> None:
        """Rebuild the layout for the current width (after a resize)."""
        self._structure = ()
        if self._results is not None:
            self.show_results(self._results)

    def _maybe_relayout(self) -> None:
        if self._results is not None and self._structure_of(self._results) != self._structure:
            self.show_results(self._results)

    def export_image(self, map_index: int, channel: int) -> np.ndarray:
        """``(H, W, 3)`` uint8 colour rendering of a map as currently displayed."""
        t = self.tile(map_index, channel)
        if t is None:
            raise IndexError(f"no map {map_index} channel {channel}")
        return t.export_rgb()
