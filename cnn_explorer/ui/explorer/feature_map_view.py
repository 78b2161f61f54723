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

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QStaticText, QTransform
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGraphicsItem,
    QGraphicsObject,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.model import Change, Results
from cnn_explorer.explorer.stats import map_stats as map_stats_full
from cnn_explorer.ui.common import colors

DISPLAY_MAX = 256
"""Maps larger than this are uploaded decimated (the tiles are at most 256 px)."""

NUMBERS_MAX = 16
"""Maps with both sides ≤ this draw their values in the cells."""

MARGIN = 12
GAP = 14
TITLE_H = 44
GROUP_TITLE_H = 24
CBAR_W = 62
SCALE_MODES = ("Per layer", "Per map", "Global")


def map_side(h: int, w: int) -> int:
    """On-screen size (px) of the longer side of an ``h×w`` map."""
    n = max(h, w)
    if n <= NUMBERS_MAX:
        return int(min(400, max(160, 30 * n)))
    return int(min(256, max(112, 4 * n)))


LABEL_W = 126
"""Width (px) a tile needs for its three-line label ("min -0.565  max 0.438")."""


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


class NumbersItem(QGraphicsObject):
    """All the numbers of one small map, painted in one pass (one reused item per map).

    A value edit just stores the new array and schedules a repaint, so maps off screen
    cost nothing; text is drawn at a fixed pixel size centred in each cell.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(8)
        self._a = np.zeros((0, 0), np.float32)
        self._levels = (0.0, 1.0)
        self._colors: list[QColor] = []
        self._font = QFont()
        self._font.setPixelSize(12)
        self._static: dict[float, QStaticText] = {}
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

    def text(self, r: int, c: int) -> str:
        return colors.fmt(float(self._a[r, c]))

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
        if min(d.x(), d.y()) < 12:
            return  # too small to read
        px = int(max(8, min(16, min(d.x(), d.y()) * 0.38)))
        if px != self._font.pixelSize():
            self._font.setPixelSize(px)
            self._static.clear()
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
                st = self._static.get(v)
                if st is None:
                    st = QStaticText(colors.fmt(v))
                    st.prepare(QTransform(), self._font)
                    self._static[v] = st
                i = int(min(255.0, max(0.0, (v - lo) * scale))) if v == v else 255
                pen = self._colors[i] if self._colors else QColor(0, 0, 0)
                if pen is not current:
                    painter.setPen(pen)
                    current = pen
                size = st.size()
                painter.drawStaticText(
                    QPointF(
                        o.x() + (c + 0.5) * d.x() - size.width() / 2,
                        o.y() + (r + 0.5) * d.y() - size.height() / 2,
                    ),
                    st,
                )
        painter.restore()


class MapImage(pg.ImageItem):
    """An ImageItem that reports hover and click in cell coordinates."""

    def __init__(self, view: FeatureMapView, map_index: int, channel: int) -> None:
        super().__init__(axisOrder="row-major")
        self.fmv = view
        self.map_index = map_index
        self.channel = channel
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

    def hoverEvent(self, ev: object) -> None:
        if ev.isExit():  # type: ignore[attr-defined]
            self.fmv.set_hover(None)
            return
        cell = self.cell_at(ev.pos())  # type: ignore[attr-defined]
        if cell is not None:
            self.fmv.set_hover((self.map_index, self.channel, *cell))

    def mouseClickEvent(self, ev: object) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            return
        cell = self.cell_at(ev.pos())  # type: ignore[attr-defined]
        if cell is not None:
            ev.accept()  # type: ignore[attr-defined]
            self.fmv.cell_clicked.emit(Selection(self.map_index, self.channel, *cell))


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


@dataclass
class MapGroup:
    """One map (input or one layer's output): title, tiles, colour bar."""

    map_index: int
    title: QGraphicsSimpleTextItem
    tiles: list[MapTile]
    cbar: pg.ColorBarItem | None
    signed: bool | None = None
    levels: tuple[float, float] | None = None


class FeatureMapView(QWidget):
    """Scrollable grid of all maps with colour bars, numbers, hover and cell selection."""

    cell_clicked = Signal(object)  # Selection
    hover_text = Signal(str)

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.scale_mode = SCALE_MODES[0]
        self.show_numbers = True
        self._groups: list[MapGroup] = []
        self._items: list[object] = []
        self._structure: tuple = ()
        self._titles: list[str] = []
        self._results: Results | None = None
        self._text_colors = {
            True: colors.lut_text_colors(True),
            False: colors.lut_text_colors(False),
        }
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
        self.hover_label = QLabel("Hover a map to read values; click a cell to explain it.")
        self.hover_label.setObjectName("hoverLabel")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hover_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.hover_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        bar.addWidget(self.hover_label, 1)

        self.view = pg.GraphicsView(background="w")
        self.view.setRenderHints(self.view.renderHints())
        self.view.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scene = self.view.scene()
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.view)
        self.scroll.setWidgetResizable(False)
        self.scroll.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.scroll.setStyleSheet("QScrollArea { background: white; }")

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(bar)
        lay.addWidget(self.scroll, 1)

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
        self.show_numbers = on
        for g in self._groups:
            for t in g.tiles:
                if t.numbers is not None:
                    t.numbers.setVisible(on)

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
        for item in self._items:
            self.scene.removeItem(item)
        self._items = []
        self._groups = []
        width_avail = max(400, self.scroll.viewport().width() - 4)
        x0, y, line_h = MARGIN, MARGIN, 0
        max_x = 0
        bold = QFont()
        bold.setBold(True)
        bold.setPointSize(10)
        small = QFont()
        small.setPointSize(7)
        with_bar = self.scale_mode != "Per map"
        for m, x in enumerate(res.maps):
            c, h, w = x.shape
            bar_w = CBAR_W if with_bar else 0
            side, per_row = flow_tiles(c, h, w, width_avail - 2 * MARGIN - bar_w)
            tw = max(8, int(side * w / max(h, w)))
            th = max(8, int(side * h / max(h, w)))
            cell_w = max(tw, LABEL_W) + GAP
            rows_used = (c + per_row - 1) // per_row
            title = QGraphicsSimpleTextItem(self._titles[m])
            title.setFont(bold)
            block_w = max(per_row * cell_w + bar_w, int(title.boundingRect().width()) + 40)
            block_h = GROUP_TITLE_H + rows_used * (th + TITLE_H + GAP)
            if x0 > MARGIN and x0 + block_w > width_avail - MARGIN:
                x0, y, line_h = MARGIN, y + line_h + 8, 0
            if x0 > MARGIN:
                arrow = QGraphicsSimpleTextItem("➜")
                arrow.setFont(bold)
                arrow.setBrush(QBrush(QColor(120, 120, 120)))
                arrow.setPos(x0 - 30, y + GROUP_TITLE_H + TITLE_H + th / 2 - 8)
                self._add(arrow)
            title.setPos(x0, y)
            self._add(title)
            ty0 = y + GROUP_TITLE_H
            tiles = []
            for ch in range(c):
                col_i, row_i = ch % per_row, ch // per_row
                tx = x0 + col_i * cell_w
                ty = ty0 + row_i * (th + TITLE_H + GAP)
                tile = self._make_tile(m, ch, tx, ty, tw, th, small)
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
                self._add(cbar)
                bx = x0 + per_row * cell_w - GAP + 4
                cbar.setGeometry(QRectF(bx, ty0 + TITLE_H - 6, CBAR_W, max(th, 90) + 12))
            self._groups.append(MapGroup(m, title, tiles, cbar))
            max_x = max(max_x, x0 + block_w)
            x0 += block_w + 36
            line_h = max(line_h, block_h)
        y += line_h + 8
        # Layers without maps (invalid one and those after it).
        for i, st in enumerate(res.statuses):
            if i + 1 < len(res.maps):
                continue
            spec = self.doc.layers[i] if i < len(self.doc.layers) else None
            msg = st.error or "not computed"
            label = QGraphicsSimpleTextItem(
                f"Layer {i + 1}: {spec.title if spec else '?'}  —  {msg}"
            )
            label.setFont(bold)
            label.setBrush(
                QBrush(QColor(180, 30, 30) if msg != "no input" else QColor(120, 120, 120))
            )
            label.setPos(MARGIN, y)
            self._add(label)
            max_x = max(max_x, MARGIN + int(label.boundingRect().width()))
            y += GROUP_TITLE_H + 4
        total_w = max(max_x + MARGIN, width_avail)
        self.view.setFixedSize(int(total_w), int(y + MARGIN))
        self.view.setRange(QRectF(0, 0, total_w, y + MARGIN), padding=0)
        self._update_values(res, 0)

    def _add(self, item: object) -> None:
        self.scene.addItem(item)  # type: ignore[arg-type]
        self._items.append(item)

    def _make_tile(self, m: int, ch: int, x: int, y: int, w: int, h: int, font: QFont) -> MapTile:
        title = QGraphicsSimpleTextItem("")
        title.setFont(font)
        title.setPos(x, y)
        self._add(title)
        vb = pg.ViewBox(lockAspect=True, invertY=True, enableMouse=False, enableMenu=False)
        vb.setBorder(pg.mkPen(160, 160, 160))
        self._add(vb)
        vb.setGeometry(QRectF(x, y + TITLE_H, w, h))
        img = MapImage(self, m, ch)
        vb.addItem(img)
        overlay = pg.ImageItem(axisOrder="row-major")
        overlay.setZValue(5)
        overlay.setVisible(False)
        vb.addItem(overlay)
        outline = QGraphicsRectItem()
        outline.setPen(pg.mkPen(255, 140, 0, width=3, cosmetic=True))
        outline.setZValue(10)
        outline.setVisible(False)
        vb.addItem(outline)
        cell_box = QGraphicsRectItem()
        cell_box.setPen(pg.mkPen(20, 20, 20, width=3, cosmetic=True))
        cell_box.setZValue(11)
        cell_box.setVisible(False)
        vb.addItem(cell_box)
        trace_box = QGraphicsRectItem()
        trace_box.setPen(pg.mkPen(20, 20, 20, width=2, style=Qt.PenStyle.DashLine, cosmetic=True))
        trace_box.setZValue(11)
        trace_box.setVisible(False)
        vb.addItem(trace_box)
        tile = MapTile(m, ch, vb, img, title, overlay, outline, cell_box, trace_box)
        tile.rect = QRectF(x, y, max(w, LABEL_W), h + TITLE_H)
        return tile

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
        """Push a tile's pending values to its items (image, numbers, label)."""
        a, levels, signed, (c, zeros, lo, hi, mean) = t.pending  # type: ignore[misc]
        t.pending = None
        self._set_tile(t, a, levels, signed)
        text = (
            f"ch {c} · zeros {zeros:.0%}\n"
            f"min {colors.fmt(lo)}  max {colors.fmt(hi)}\nmean {colors.fmt(mean)}"
        )
        if text != t.title_text:
            t.title_text = text
            t.title.setText(text)

    def _set_tile(
        self, t: MapTile, a: np.ndarray, levels: tuple[float, float], signed: bool
    ) -> None:
        t.image.data2d = a
        hh, ww = a.shape
        # Never upload more pixels than the tile shows: big maps are displayed decimated
        # (values, hover and export still use the full array).
        step = max(1, min(hh, ww) // DISPLAY_MAX)
        shown = a[::step, ::step] if step > 1 else a
        t.image.setImage(shown, autoLevels=False, levels=levels)
        if t.shape != (hh, ww):
            t.image.setRect(QRectF(0, 0, ww, hh))
            t.shape = (hh, ww)
        if t.signed != signed:
            t.image.setLookupTable(colors.lut(signed))
            t.signed = signed
        t.levels = levels
        if max(hh, ww) <= NUMBERS_MAX:
            if t.numbers is None:
                t.numbers = NumbersItem()
                t.numbers.setVisible(self.show_numbers)
                t.vb.addItem(t.numbers)
            t.numbers.set_data(a, levels, self._text_colors[signed])

    # ------------------------------------------------------------------ hover / selection
    def set_hover(self, where: tuple[int, int, int, int] | None) -> None:
        if where is None or self._results is None:
            return
        m, ch, r, c = where
        maps = self._results.maps
        if m >= len(maps):
            return
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
                self._highlight_tile(t, sel, regions.get(g.map_index))
                src = traced.get((t.map_index, t.channel))
                t.trace_box.setVisible(src is not None)
                if src is not None:
                    t.trace_box.setRect(QRectF(src.col, src.row, 1, 1))

    def _highlight_tile(self, t: MapTile, sel: Selection | None, region: object) -> None:
        is_sel = sel is not None and t.map_index == sel.map_index
        t.cell_box.setVisible(bool(is_sel and t.channel == sel.channel))
        if is_sel and t.channel == sel.channel:
            t.cell_box.setRect(QRectF(sel.col, sel.row, 1, 1))
        if region is None:
            t.overlay.setVisible(False)
            t.outline.setVisible(False)
            return
        h, w = region.shape  # type: ignore[attr-defined]
        chans = region.channels  # type: ignore[attr-defined]
        used = chans is None or t.channel in set(int(v) for v in chans)
        mask = region.mask if used else np.zeros((h, w), bool)  # type: ignore[attr-defined]
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., 3] = np.where(mask, 0, 150 if max(h, w) <= NUMBERS_MAX else 105)
        rgba[..., :3] = 255
        t.overlay.setImage(rgba, autoLevels=False, levels=(0, 255))
        t.overlay.setRect(QRectF(0, 0, w, h))
        t.overlay.setVisible(True)
        tr, tc = region.touched_rows, region.touched_cols  # type: ignore[attr-defined]
        if used and region.rows.size and region.cols.size:  # type: ignore[attr-defined]
            rows = tr if tr.size else region.rows  # type: ignore[attr-defined]
            cols = tc if tc.size else region.cols  # type: ignore[attr-defined]
            r0, r1 = int(rows.min()), int(rows.max())
            c0, c1 = int(cols.min()), int(cols.max())
            t.outline.setRect(QRectF(c0, r0, c1 - c0 + 1, r1 - r0 + 1))
            t.outline.setVisible(True)
        else:
            t.outline.setVisible(False)

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
        a = t.image.data2d
        lo, hi = t.levels
        with np.errstate(all="ignore"):
            idx = np.clip((a - lo) / ((hi - lo) or 1.0) * 255, 0, 255)
        idx = np.nan_to_num(idx, nan=255).astype(np.uint8)
        return colors.lut(bool(t.signed))[idx][..., :3]
