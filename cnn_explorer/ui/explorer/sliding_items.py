"""The scene of the sliding-window animation: the padded input (padding hatched, the
window's taps with their products), the kernel as applied and the output map filling in.

Items are made once per structure (:meth:`SlidingScene.build`) and a step only rewrites
the cells whose text or colours changed (:class:`CellGrid` remembers what each cell
shows), so a step costs a few item updates, never a rebuild. Maps larger than
:data:`CROP` cells a side are shown through a window that follows the sliding window.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QKeyEvent, QMouseEvent, QPen
from PySide6.QtWidgets import (
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
)

from cnn_explorer.engine.geometry import fmt_number
from cnn_explorer.explorer.sliding import BEYOND, PADDING, CellAnimation, SlidingWindow
from cnn_explorer.ui.common import colors

CELL = 50
"""Side of a cell in scene pixels (room for ``x·w`` over ``= product``)."""
CROP = 11
"""At most this many cells a side are drawn per map; bigger maps follow the window."""
GAP = 44
"""Pixels between the blocks (input, kernel, output)."""
TITLE = 42
"""Height of the two-line title above each block."""
TITLE_W = 240
"""Width a block's title may take (the next block starts after it)."""

WHITE = QBrush(QColor(255, 255, 255))
PAD_BG = QBrush(QColor(226, 226, 232))
PAD_HATCH = QBrush(QColor(150, 150, 165), Qt.BrushStyle.BDiagPattern)
BEYOND_BG = QBrush(QColor(245, 245, 245))
TAP_DONE = QBrush(QColor(255, 214, 153))
TAP_NOW = QBrush(QColor(255, 170, 60))
TAP_LATER = QBrush(QColor(255, 238, 214))
WINNER = QBrush(QColor(140, 215, 140))
THIN = QPen(QColor(190, 190, 200), 1)
NOW_PEN = QPen(QColor(200, 80, 0), 3)
TAP_PEN = QPen(QColor(230, 130, 30), 1.5)
INK = QColor(20, 20, 20)
FAINT = QColor(120, 120, 130)
PAD_INK = QColor(70, 70, 90)

Cell = tuple[str, QBrush, QPen, QColor, bool]
"""What a cell shows: text, fill, outline, text colour, bold."""


def num(v: float, digits: int = 3) -> str:
    """A cell's number: the explanation's format (true minus), 3 significant digits."""
    return fmt_number(v, digits)


class CellGrid:
    """``rows × cols`` cells (a rectangle and a centred text each) at ``(x0, y0)``;
    :meth:`set` touches an item only when what it shows changes."""

    def __init__(self, scene: QGraphicsScene, rows: int, cols: int, x0: float, y0: float) -> None:
        self.rows, self.cols, self.x0, self.y0 = rows, cols, x0, y0
        self.font = QFont()
        self.font.setPointSizeF(9.5)
        self.bold = QFont(self.font)
        self.bold.setBold(True)
        self.rects: list[QGraphicsRectItem] = []
        self.texts: list[QGraphicsSimpleTextItem] = []
        self.shown: list[Cell | None] = []
        for r in range(rows):
            for c in range(cols):
                rect = QGraphicsRectItem(x0 + c * CELL, y0 + r * CELL, CELL, CELL)
                rect.setPen(THIN)
                rect.setBrush(WHITE)
                scene.addItem(rect)
                text = QGraphicsSimpleTextItem(rect)
                text.setFont(self.font)
                self.rects.append(rect)
                self.texts.append(text)
                self.shown.append(None)

    @property
    def rect(self) -> QRectF:
        return QRectF(self.x0, self.y0, self.cols * CELL, self.rows * CELL)

    def cell_rect(self, r: int, c: int) -> QRectF:
        return QRectF(self.x0 + c * CELL, self.y0 + r * CELL, CELL, CELL)

    def hit(self, pos: QPointF) -> tuple[int, int] | None:
        """The cell under scene point ``pos``, or None."""
        if not self.rect.contains(pos):
            return None
        return int((pos.y() - self.y0) // CELL), int((pos.x() - self.x0) // CELL)

    def set(self, r: int, c: int, cell: Cell) -> None:
        k = r * self.cols + c
        old = self.shown[k]
        if old == cell:
            return
        self.shown[k] = cell
        text, brush, pen, ink, bold = cell
        rect, item = self.rects[k], self.texts[k]
        rect.setBrush(brush)
        rect.setPen(pen)
        rect.setZValue(2 if pen is NOW_PEN else 1 if pen is TAP_PEN else 0)
        item.setFont(self.bold if bold else self.font)
        item.setBrush(ink)
        item.setText(text)
        br = item.boundingRect()
        scale = min(1.0, (CELL - 6) / max(br.width(), 1.0), (CELL - 4) / max(br.height(), 1.0))
        item.setScale(scale)
        x = self.x0 + c * CELL + (CELL - br.width() * scale) / 2
        y = self.y0 + r * CELL + (CELL - br.height() * scale) / 2
        item.setPos(x, y)


def _origin(start: int, span: int, crop: int, total: int, current: int) -> int:
    """First shown index along one axis so ``[start, start + span)`` stays in view."""
    if start >= current and start + span <= current + crop:
        return current
    return max(0, min(total - crop, start - (crop - span) // 2))


class SlidingScene:
    """The animation's items in ``scene``: build once per structure, then :meth:`show`."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.scene = scene
        scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)  # items move a lot
        self.input: CellGrid | None = None
        self.kernel: CellGrid | None = None
        self.output: CellGrid | None = None
        self.in_origin = (0, 0)
        self.out_origin = (0, 0)
        self._texts: dict[tuple[int, int, int], str] = {}
        self._titles: list[QGraphicsSimpleTextItem] = []
        self._span = QGraphicsRectItem()
        self._border = QGraphicsRectItem()
        self._out_brushes: Callable[[int, int], tuple[QBrush, QColor]] = lambda r, c: (WHITE, INK)
        self._in_key = None
        self._touched = set()
        self._last_out = None

    def build(self, sw: SlidingWindow) -> None:
        """Make the items for ``sw``'s shapes (a new layer, channel or map size)."""
        self.scene.clear()
        self._texts.clear()
        fh, fw = sw.frame.shape
        kh, kw = sw.window.kernel
        oh, ow = sw.shape
        eh, ew = sw.window.effective_kernel
        crop = max(CROP, eh + 1, ew + 1)
        y0 = TITLE
        self.input = CellGrid(self.scene, min(fh, crop), min(fw, crop), 0, y0)
        x = max(self.input.rect.right(), TITLE_W) + GAP
        self.kernel = None
        if sw.kind == "conv":
            self.kernel = CellGrid(self.scene, kh, kw, x, y0)
            x = max(self.kernel.rect.right(), x + TITLE_W) + GAP
        self.output = CellGrid(self.scene, min(oh, CROP), min(ow, CROP), x, y0)
        self.in_origin = self.out_origin = (0, 0)
        self._titles = [self._text(0, 0) for _ in range(3)]
        self._border = QGraphicsRectItem()
        self._border.setPen(QPen(QColor(40, 40, 60), 2.5))
        self._border.setZValue(3)
        self.scene.addItem(self._border)
        self._span = QGraphicsRectItem()
        self._span.setPen(QPen(QColor(200, 80, 0), 2, Qt.PenStyle.DashLine))
        self._span.setZValue(4)
        self.scene.addItem(self._span)
        out = sw.out[sw.channel]
        levels, signed = colors.levels_for(*colors.finite_range(out))
        bgs, inks = colors.cell_colors(signed)
        brushes = [QBrush(c) for c in bgs]
        index = colors.lut_indices(out, levels)
        self._out_brushes = lambda r, c: (brushes[index[r, c]], inks[index[r, c]])
        self._in_key: tuple[int, int, int] | None = None
        self._touched: set[tuple[int, int]] = set()
        self._last_out: tuple[int, int, int] | None = None
        right = max(self.output.rect.right(), x + TITLE_W)
        bottom = max(g.rect.bottom() for g in (self.input, self.kernel, self.output) if g)
        self.scene.setSceneRect(QRectF(-8, -4, right + 16, bottom + 12))

    def _text(self, x: float, y: float) -> QGraphicsSimpleTextItem:
        item = QGraphicsSimpleTextItem()
        f = QFont()
        f.setPointSizeF(10)
        item.setFont(f)
        item.setPos(x, y)
        self.scene.addItem(item)
        return item

    def _value_text(self, sw: SlidingWindow, ch: int, fr: int, fc: int) -> str:
        key = (ch, fr, fc)
        text = self._texts.get(key)
        if text is None:
            kind = sw.frame.kinds[fr, fc]
            text = "" if kind == BEYOND else num(float(sw.frame.plane(ch)[fr, fc]))
            self._texts[key] = text
        return text

    # One function for the whole step on purpose: the three blocks share the cursor's
    # position and the window's taps, and reading it top to bottom is how it gets checked.
    def show(self, sw: SlidingWindow, in_ch: int, titles: tuple[str, str, str]) -> None:
        """Paint the cursor's step: ``in_ch`` is the input channel drawn."""
        assert self.input is not None and self.output is not None
        anim = sw.animation()
        step, top, left = sw.step, sw.frame.top, sw.frame.left
        fh, fw = sw.frame.shape
        eh, ew = sw.window.effective_kernel
        wr, wc = sw.cell[0] * sw.window.stride[0], sw.cell[1] * sw.window.stride[1]
        g = self.input
        r0 = _origin(wr, eh, g.rows, fh, self.in_origin[0])
        c0 = _origin(wc, ew, g.cols, fw, self.in_origin[1])
        self.in_origin = (r0, c0)
        taps = {
            (t.pos[0] + top - r0, t.pos[1] + left - c0): k
            for k, t in enumerate(anim.taps)
            if t.channel == in_ch
        }
        # only the cells the last and this window cover change, unless the view moved
        key = (in_ch, r0, c0)
        every = ((r, c) for r in range(g.rows) for c in range(g.cols))
        cells = every if key != self._in_key else self._touched | taps.keys()
        self._in_key, self._touched = key, set(taps)
        for r, c in cells:
            k = taps.get((r, c))
            if k is None:
                g.set(r, c, self._plain(sw, in_ch, r0 + r, c0 + c))
            else:
                g.set(r, c, self._tap_cell(anim, k, step))
        # the input's own cells outlined (the ring outside them is padding)
        h, w = sw.x.shape[1:]
        inner = QRectF((left - c0) * CELL, g.y0 + (top - r0) * CELL, w * CELL, h * CELL)
        self._border.setRect(inner.intersected(g.rect))
        self._span.setRect(QRectF((wc - c0) * CELL, g.y0 + (wr - r0) * CELL, ew * CELL, eh * CELL))
        if self.kernel is not None:
            self._show_kernel(anim, in_ch, step)
        self._show_output(sw, anim, step)
        xs = (g.x0, self.kernel.x0 if self.kernel else 0, self.output.x0)
        for item, text, x in zip(self._titles, titles, xs, strict=True):
            if item.text() != text:  # an unchanged title must not repaint its region
                item.setText(text)
            if item.x() != x:
                item.setPos(x, 0)
        self._titles[1].setVisible(self.kernel is not None)

    def _plain(self, sw: SlidingWindow, ch: int, fr: int, fc: int) -> Cell:
        kind = sw.frame.kinds[fr, fc]
        text = self._value_text(sw, ch, fr, fc)
        if kind == PADDING:
            return text, PAD_HATCH, THIN, PAD_INK, False
        if kind == BEYOND:
            return text, BEYOND_BG, THIN, FAINT, False
        return text, WHITE, THIN, INK, False

    def _tap_cell(self, anim: CellAnimation, k: int, step: int) -> Cell:
        t = anim.taps[k]
        done = k < step or anim.phase(step) != "tap"
        pen = NOW_PEN if k == step else TAP_PEN
        x = "−∞" if t.is_padding and anim.kind == "max_pool" else num(t.value)
        if anim.kind == "conv":  # x, ·w and = product on three short lines fill a cell
            w = num(t.weight, 2)
            w = f"({w})" if w.startswith("−") else w
            xs = num(t.value, 2)
            if k <= step or done:
                fill = TAP_NOW if k == step else TAP_DONE
                return f"{xs}\n·{w}\n= {num(t.product, 2)}", fill, pen, INK, k == step
            return f"{xs}\n·{w}", TAP_LATER, pen, FAINT, False
        winner = anim.winner if anim.phase(step) != "tap" else anim.taps[step].leader
        if anim.kind == "max_pool" and k == winner and (k <= step or done):
            return f"★ {x}", WINNER, pen, INK, True
        if k == step:
            return x, TAP_NOW, pen, INK, True
        return x, TAP_DONE if (k < step or done) else TAP_LATER, pen, INK, False

    def _show_kernel(self, anim: CellAnimation, in_ch: int, step: int) -> None:
        assert self.kernel is not None
        current = anim.taps[step].kernel_pos if anim.phase(step) == "tap" else None
        weights = {t.kernel_pos: t.weight for t in anim.taps if t.channel == in_ch}
        for (i, j), wv in weights.items():
            if (i, j) == current and anim.taps[step].channel == in_ch:
                self.kernel.set(i, j, (num(wv), TAP_NOW, NOW_PEN, INK, True))
            else:
                self.kernel.set(i, j, (num(wv), TAP_LATER, TAP_PEN, INK, False))

    def _show_output(self, sw: SlidingWindow, anim: CellAnimation, step: int) -> None:
        assert self.output is not None
        g = self.output
        oh, ow = sw.shape
        r0 = _origin(sw.cell[0], 1, g.rows, oh, self.out_origin[0])
        c0 = _origin(sw.cell[1], 1, g.cols, ow, self.out_origin[1])
        self.out_origin = (r0, c0)
        now = sw.index
        finished = anim.phase(step) == "result"
        out = sw.out[sw.channel]
        last = self._last_out
        self._last_out = (r0, c0, now)
        for r in range(g.rows):
            for c in range(g.cols):
                i = (r0 + r) * ow + (c0 + c)
                if (
                    last is not None
                    and last[:2] == (r0, c0)
                    and not min(now, last[2]) <= i <= max(now, last[2])
                ):
                    continue  # neither before nor after the cursor's move: unchanged
                if i < now or (i == now and finished):
                    v = float(out[r0 + r, c0 + c])
                    brush, ink = self._out_brushes(r0 + r, c0 + c)
                    pen = NOW_PEN if i == now else THIN
                    g.set(r, c, (num(v), brush, pen, ink, i == now))
                elif i == now:
                    running = anim.running(step)
                    text = "…" if not np.isfinite(running) else f"{num(running)}…"
                    g.set(r, c, (text, TAP_LATER, NOW_PEN, FAINT, False))
                else:
                    g.set(r, c, ("", WHITE, THIN, INK, False))

    def output_cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        """The output cell (map coordinates) under scene point ``pos``, or None."""
        hit = None if self.output is None else self.output.hit(pos)
        if hit is None:
            return None
        return hit[0] + self.out_origin[0], hit[1] + self.out_origin[1]

    def window_rect(self) -> QRectF:
        """Scene rectangle of the window's span (to keep it in view)."""
        return self._span.rect()


class SlidingCanvas(QGraphicsView):
    """The scene's view: reports clicks (scene coordinates) and leaves keys to the panel."""

    clicked = Signal(object)  # QPointF
    key = Signal(object)  # QKeyEvent

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.mapToScene(event.position().toPoint()))
        super().mousePressEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        self.key.emit(event)
        if not event.isAccepted():
            super().keyPressEvent(event)
