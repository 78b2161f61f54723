"""The numbers drawn in the cells of a small feature map: one item paints them all, each
number only where it fits its cell, with fewer digits in narrow cells (never colliding).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QStaticText, QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject

from cnn_explorer.ui.common import colors

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

    A value edit just stores the new array and schedules a repaint, so maps off screen
    cost nothing. Each number is drawn centred in its cell, and only when it fits: the
    most precise of :func:`label_choices` whose width (measured with the font drawn
    with) leaves :data:`LABEL_PAD` px free on both sides; nothing when none fits.

    ``zoom`` (class-wide, set by View ▸ Zoom) lets the numbers grow with the maps.
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

    def has_data(self) -> bool:
        return bool(self._a.size)

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
