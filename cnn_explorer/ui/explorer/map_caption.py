"""The one-line caption above a feature-map tile and the clickable header of each layer.

A tile's caption is one short line of statistics ("ch 3 · −0.91…1.34 · mean 0.22") that
drops detail until it fits the tile's width; with a per-map colour scale it carries the
tile's own tiny colour bar between its min and max instead. The full statistics are in
the tooltip (:func:`stats_tooltip`). Both items paint themselves (no layout, no widgets),
so thirty-two of them cost nothing on an edit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject

from cnn_explorer.explorer.stats import MapStats, channel_flags
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.explorer.map_numbers import label_choices

CAPTION_H = 15
"""Height (px) of a tile's caption line above its map."""
CAPTION_PX = 10
"""Pixel size of the caption font."""
BAR_MIN, BAR_MAX = 10, 44
"""Width range (px) of a caption's own colour bar (per-map scale)."""


@dataclass(frozen=True)
class TileStats:
    """What a tile's caption says about its channel (plain numbers, already computed)."""

    channel: int
    lo: float
    hi: float
    mean: float
    zeros: float
    """Fraction of exact zeros."""
    cells: int = 0
    nonfinite: int = 0
    flags: tuple[str, ...] = ()
    """Warnings, worst first (:func:`~cnn_explorer.explorer.stats.channel_flags`): the
    caption leads with them, in red."""

    @classmethod
    def of(cls, st: MapStats, c: int) -> TileStats:
        """Channel ``c`` of a map's statistics (a mean that is float noise reads 0)."""
        lo, hi = float(st.mins[c]), float(st.maxs[c])
        mean = colors.snap(float(st.means[c]), max(abs(lo), abs(hi)))
        zeros = float(st.zeros[c] / max(1, st.n))
        flags = tuple(channel_flags(st, c))
        return cls(c, lo, hi, mean, zeros, st.n, int(st.nonfinite[c]), flags)


def caption_texts(s: TileStats) -> list[str]:
    """The caption's possible texts, most detailed first (the first that fits is drawn)."""
    lo, hi, mean = colors.fmt(s.lo), colors.fmt(s.hi), colors.fmt(s.mean)
    rng = f"{lo}…{hi}"
    short = f"{colors.fmt_short(s.lo)}…{colors.fmt_short(s.hi)}"
    ch = f"ch {s.channel}"
    zeros = f" · {s.zeros:.0%} zeros" if s.zeros > 0 else ""
    if s.flags:  # a dead or NaN map says so before anything else
        short = "NaN" if s.nonfinite else "dead"
        return [
            f"{ch} · {' · '.join(s.flags)}",
            f"{ch} · {s.flags[0]}",
            f"{ch} · {short}",
            f"{s.channel} {short}",
            ch,
            str(s.channel),
        ]
    return [
        f"{ch} · {rng} · mean {mean}{zeros}",
        f"{ch} · {rng} · mean {mean}",
        f"{ch} · {rng}",
        f"{ch} · {short}",
        ch,
        str(s.channel),
    ]


def stats_tooltip(title: str, s: TileStats) -> str:
    """Every statistic of one channel, for the tile's tooltip."""
    lines = [
        f"{title}, channel {s.channel}",
        f"min {colors.fmt(s.lo, 6)}   max {colors.fmt(s.hi, 6)}",
        f"mean {colors.fmt(s.mean, 6)}",
        f"zeros {s.zeros:.1%}" + (f" of {s.cells} cells" if s.cells else ""),
    ]
    if s.nonfinite:
        lines.append(f"NaN/infinite: {s.nonfinite}")
    if s.flags and not s.nonfinite:
        lines.append("dead: every value is 0 on this input")
    lines.append("Right-click the map for its histogram")
    return "\n".join(lines)


def _font(bold: bool = False, px: int = CAPTION_PX) -> QFont:
    f = QFont()
    f.setPixelSize(px)
    f.setBold(bold)
    return f


class TileCaption(QGraphicsItem):
    """One line above a tile: its statistics, or (per-map scale) its own min–max colour bar.

    ``set_width`` fits it to the tile; ``set_stats`` sets what it says. Text that does not
    fit drops detail (see :func:`caption_texts`) and is never drawn past the width."""

    def __init__(self) -> None:
        super().__init__()
        self._w = 60.0
        self._stats: TileStats | None = None
        self._bar: tuple[tuple[float, float], bool] | None = None
        self._font = _font()
        self._metrics = QFontMetricsF(self._font)
        self._text = ""
        self._compact = False
        self._labels: list[str] = []

    @property
    def text(self) -> str:
        """What the caption currently reads (the bar is drawn between min and max)."""
        return self._text

    @property
    def compact(self) -> bool:
        """True on an overview's small tile."""
        return self._compact

    def set_width(self, w: float, compact: bool = False) -> None:
        """Fit the caption in ``w`` px; ``compact`` (an overview's small tile) keeps it
        to the channel number and, with a per-map scale, the tile's range."""
        if (w, compact) != (self._w, self._compact):
            self.prepareGeometryChange()
            self._w, self._compact = w, compact
            self._relayout()

    def set_stats(self, s: TileStats, bar: tuple[tuple[float, float], bool] | None) -> None:
        """Show ``s``; ``bar`` = ``(levels, signed)`` draws the tile's own colour bar."""
        if (s, bar) != (self._stats, self._bar):
            self._stats, self._bar = s, bar
            self._relayout()

    def set_labels(self, texts: list[str]) -> None:
        """Say one of ``texts`` (most detailed first, the first that fits) instead of
        statistics: a picture tile names what it shows."""
        if (texts, None) != (self._labels, self._stats):
            self._labels, self._stats, self._bar = texts, None, None
            self._relayout()

    def _relayout(self) -> None:
        before = self._text
        s = self._stats
        if s is None:
            fits = [t for t in self._labels if self._metrics.horizontalAdvance(t) <= self._w]
            self._text = fits[0] if fits else ""
        elif self._bar is None or s.flags:
            texts = caption_texts(s)
            if self._compact:  # the channel number, and a flag's one word if it has one
                texts = texts[-4:] if s.flags else texts[-2:]
            fits = [t for t in texts if self._metrics.horizontalAdvance(t) <= self._w]
            self._text = fits[0] if fits else ""
        else:
            self._text = self._bar_text(s)
        if self._text != before or self._bar is not None:  # a bar's colours follow the stats
            self.update()  # the same text is not repainted (a cell edit moves every mean)

    def _bar_parts(self, s: TileStats) -> list[tuple[str, str, str]]:
        """``(prefix, min, max)`` texts around the bar, most detailed first."""
        los, his = label_choices(s.lo), label_choices(s.hi)
        n = max(len(los), len(his))
        pairs = [(los[min(i, len(los) - 1)], his[min(i, len(his) - 1)]) for i in range(n)]
        heads = [f"{s.channel} ", ""] if self._compact else [f"ch {s.channel} ", f"{s.channel} "]
        return [(head, lo, hi) for head in heads for lo, hi in pairs]

    def _bar_text(self, s: TileStats) -> str:
        for prefix, lo, hi in self._bar_parts(s):
            need = self._metrics.horizontalAdvance(prefix + lo + hi) + BAR_MIN + 6
            if need <= self._w:
                return f"{prefix}{lo} ▭ {hi}"
        return ""

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._w, CAPTION_H)

    def paint(self, painter: QPainter, option: object, widget: object = None) -> None:
        if not self._text:
            return
        painter.setFont(self._font)
        flagged = self._stats is not None and bool(self._stats.flags)
        painter.setPen(QColor(176, 0, 32) if flagged else QColor(60, 60, 60))
        base = CAPTION_H - 4.0
        if self._bar is None or self._stats is None or flagged:
            painter.drawText(QPointF(0, base), self._text)
            return
        head, hi = self._text.split(" ▭ ")
        x = self._metrics.horizontalAdvance(head) + 3
        right = self._metrics.horizontalAdvance(hi)
        bar_w = min(BAR_MAX, self._w - x - right - 3)
        painter.drawText(QPointF(0, base), head)
        painter.drawText(QPointF(x + bar_w + 3, base), hi)
        (lo_l, hi_l), signed = self._bar
        table = colors.lut(signed)
        grad = QLinearGradient(x, 0, x + bar_w, 0)
        s = self._stats
        span = (hi_l - lo_l) or 1.0
        for t, v in ((0.0, s.lo), (0.5, (s.lo + s.hi) / 2), (1.0, s.hi)):
            i = int(min(255, max(0, (v - lo_l) / span * 255)))
            r, g, b = (int(c) for c in table[i][:3])
            grad.setColorAt(t, QColor(r, g, b))
        painter.setPen(QPen(QColor(150, 150, 150), 0))
        painter.setBrush(grad)
        painter.drawRect(QRectF(x, 3, bar_w, CAPTION_H - 6))


HEADER_H = 24
"""Height (px) of a layer's header line."""


class SectionHeader(QGraphicsObject):
    """A layer's title with a collapse arrow; a click anywhere on it toggles the layer."""

    def __init__(self, map_index: int, toggle: Callable[[int], None]) -> None:
        super().__init__()
        self.map_index = map_index
        self._toggle = toggle
        self._font = _font(True, 13)
        self._hint_font = _font(False, 11)
        self._metrics = QFontMetricsF(self._font)
        self._hint_metrics = QFontMetricsF(self._hint_font)
        self._title = ""
        self._hint = ""
        self._width = 0.0  # 0: as wide as the text
        self.collapsed = False
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Click to collapse or expand this layer")

    def set_text(self, title: str, hint: str = "") -> None:
        if (title, hint) != (self._title, self._hint):
            self.prepareGeometryChange()
            self._title, self._hint = title, hint
            self.update()

    def text(self) -> str:
        return self._title

    @property
    def hint(self) -> str:
        """The grey note after the title ("overview · click a tile to enlarge it")."""
        return self._hint

    def set_collapsed(self, on: bool) -> None:
        if on != self.collapsed:
            self.collapsed = on
            self.update()

    def natural_width(self) -> int:
        w = 20 + self._metrics.horizontalAdvance(self._title)
        if self._hint:
            w += 12 + self._hint_metrics.horizontalAdvance(self._hint)
        return int(w) + 2

    def set_width(self, w: float) -> None:
        """Draw in at most ``w`` px: the hint goes first, then the title is elided."""
        if w != self._width:
            self.prepareGeometryChange()
            self._width = w
            self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._width or self.natural_width(), HEADER_H)

    def paint(self, painter: QPainter, option: object, widget: object = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(90, 90, 90))
        cy = HEADER_H / 2
        if self.collapsed:  # ▸
            pts = [QPointF(3, cy - 5), QPointF(11, cy), QPointF(3, cy + 5)]
        else:  # ▾
            pts = [QPointF(2, cy - 3), QPointF(12, cy - 3), QPointF(7, cy + 4)]
        painter.drawPolygon(pts)
        painter.setPen(QColor(20, 20, 20))
        painter.setFont(self._font)
        base = cy + self._metrics.ascent() / 2 - 1
        room = (self._width or self.natural_width()) - 19
        title = self._metrics.elidedText(self._title, Qt.TextElideMode.ElideRight, room)
        painter.drawText(QPointF(20, base), title)
        fits = self.natural_width() <= (self._width or self.natural_width())
        if self._hint and fits and not self.collapsed:
            painter.setFont(self._hint_font)
            painter.setPen(QColor(110, 110, 110))
            x = 32 + self._metrics.horizontalAdvance(self._title)
            painter.drawText(QPointF(x, base), self._hint)

    def mousePressEvent(self, ev: Any) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._toggle(self.map_index)
        else:
            ev.ignore()


def nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """At most ``most`` round values from ``lo`` to ``hi`` (steps of 1, 2, 2.5 or 5 × 10^k)."""
    span = hi - lo
    if not (np.isfinite(span) and span > 0):
        return [lo] if np.isfinite(lo) else []
    raw = span / max(1, most - 1)
    e = 10.0 ** np.floor(np.log10(raw))
    step = next(k * e for k in (1.0, 2.0, 2.5, 5.0, 10.0) if k * e >= raw * (1 - 1e-9))
    first = np.ceil(lo / step - 1e-9) * step
    n = int(np.floor((hi - first) / step + 1e-9)) + 1
    return [float(round(first + i * step, 12)) or 0.0 for i in range(max(0, n))]


class ColourBar(QGraphicsObject):
    """A layer's colour scale: a vertical strip of the colour map with round ticks.

    Painted by itself (a pyqtgraph ColorBarItem is a whole PlotItem: ~11 ms to build and
    an axis to lay out on every change); the view slides it along its layer's rows while
    scrolling (:meth:`MapScene.pin_bars`)."""

    STRIP_W = 14

    def __init__(self) -> None:
        super().__init__()
        self._rect = QRectF(0, 0, 60, 100)
        self._levels = (0.0, 1.0)
        self._signed = False
        self._font = _font(px=10)
        self._metrics = QFontMetricsF(self._font)
        self.setZValue(20)

    def levels(self) -> tuple[float, float]:
        return self._levels

    def set_scale(self, levels: tuple[float, float], signed: bool) -> None:
        """Show the colours of ``signed`` data over ``levels``."""
        if (levels, signed) != (self._levels, self._signed):
            self._levels, self._signed = levels, signed
            self.update()

    def set_rect(self, rect: QRectF) -> None:
        """Put the bar in the scene rectangle ``rect`` (its ticks inside it too)."""
        self.prepareGeometryChange()
        self.setPos(rect.topLeft())
        self._rect = QRectF(0, 0, rect.width(), rect.height())

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option: object, widget: object = None) -> None:
        pad = self._metrics.height() / 2  # room for the end labels
        strip = QRectF(0, pad, self.STRIP_W, self._rect.height() - 2 * pad)
        grad = QLinearGradient(0, strip.bottom(), 0, strip.top())
        table = colors.lut(self._signed)
        for i in range(0, 256, 32):
            r, g, b = (int(v) for v in table[i][:3])
            grad.setColorAt(i / 255, QColor(r, g, b))
        r, g, b = (int(v) for v in table[255][:3])
        grad.setColorAt(1.0, QColor(r, g, b))
        painter.setPen(QPen(QColor(150, 150, 150), 0))
        painter.setBrush(grad)
        painter.drawRect(strip)
        lo, hi = self._levels
        span = (hi - lo) or 1.0
        painter.setFont(self._font)
        painter.setPen(QColor(90, 90, 90))
        x = self.STRIP_W + 6
        for v in nice_ticks(lo, hi, max(2, min(6, int(strip.height() // 22) + 1))):
            y = strip.bottom() - (v - lo) / span * strip.height()
            painter.drawLine(QPointF(self.STRIP_W, y), QPointF(self.STRIP_W + 3, y))
            painter.drawText(QPointF(x, y + self._metrics.ascent() / 2 - 1), colors.fmt(v))
