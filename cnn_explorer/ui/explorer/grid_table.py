"""The input grid's table view: copy/paste/delete keys, paint strokes, Ctrl+wheel zoom and
resizes as signals; cells without numbers painted from the model's cached image in one
drawImage; the selected cell's receptive field outlined."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QKeyCombination, QObject, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QKeySequence, QPainter, QPen
from PySide6.QtWidgets import QAbstractItemView, QTableView

from cnn_explorer.ui.explorer.input_model import InputModel

MIN_CELL = 2
"""Smallest cell side in pixels (zoomed out or fitted; a 512-wide grid is 1 kpx)."""
MAX_CELL = 96
"""Largest cell side in pixels when zooming in."""
MAX_FIT = 64
"""Fit never makes cells bigger than this (a 2×2 grid would fill the panel)."""
LABEL_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 500)
"""Header labels go on every n-th row/column for the smallest n here that leaves room."""


def default_cell_px(rows: int, cols: int) -> int:
    """Cell side a freshly shaped small grid opens at (room for its numbers)."""
    side = max(rows, cols)
    return 40 if side <= 12 else 30 if side <= 24 else 22


def fit_cell_px(avail_w: int, avail_h: int, rows: int, cols: int) -> int:
    """Largest cell side (within ``MIN_CELL``..``MAX_FIT``) that shows ``rows × cols``
    cells in ``avail_w × avail_h`` pixels."""
    px = min(avail_w // max(cols, 1), avail_h // max(rows, 1))
    return max(MIN_CELL, min(MAX_FIT, px))


def label_step(label_px: int, cell_px: int) -> int:
    """How many sections one header label spans so labels ``label_px`` wide never touch."""
    for step in LABEL_STEPS:
        if step * cell_px >= label_px:
            return step
    return LABEL_STEPS[-1]


GRID_KEYS: dict[str, str] = {
    "Ctrl+=": "Input grid: zoom in",
    "Ctrl++": "Input grid: zoom in",
    "Ctrl+-": "Input grid: zoom out",
    "Ctrl+0": "Input grid: fit",
}
"""The grid's zoom keys. While the table has focus they zoom the grid, winning over the
window's View ▸ Zoom (the same keys), which zooms everything from anywhere else."""

_KEY_STEPS = {
    QKeySequence(k)[0]: (0 if "fit" in t else 1 if "in" in t else -1) for k, t in GRID_KEYS.items()
}


def _zoom_step(event: QKeyEvent) -> int | None:
    """+1 / −1 / 0 (fit) for a :data:`GRID_KEYS` key press, else None (Shift ignored:
    Ctrl++ is Ctrl+Shift+= on many keyboards)."""
    plain = event.modifiers() & ~(
        Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier
    )
    return _KEY_STEPS.get(QKeyCombination(plain, Qt.Key(event.key())))


class GridTable(QTableView):
    """The table: copy/paste shortcuts and paint strokes, told to the panel by signals."""

    copy_requested = Signal()
    paste_requested = Signal()
    clear_requested = Signal()  # Delete / Backspace outside an editor
    stroke_started = Signal()
    painted = Signal(list)  # cells [(row, col), ...] the brush went over
    stroke_ended = Signal()
    zoom_requested = Signal(int)  # +1 zoom in, -1 zoom out (Ctrl+wheel, GRID_KEYS)
    fit_requested = Signal()  # Ctrl+0
    resized = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.region: tuple[int, int, int, int] | None = None
        """Cells ``(r0, r1, c0, c1)`` (inclusive) outlined as the receptive field."""
        self.painting = False
        self._stroke_active = False
        self._last_cell: tuple[int, int] | None = None
        self.viewport().installEventFilter(self)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride:
            assert isinstance(event, QKeyEvent)
            if _zoom_step(event) is not None:
                event.accept()  # a key press for this table, not the window's shortcut
                return True
        return super().event(event)

    def keyPressEvent(self, event: Any) -> None:
        step = _zoom_step(event)
        if step is not None:
            self.zoom_requested.emit(step) if step else self.fit_requested.emit()
            return
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_requested.emit()
            return
        if event.matches(QKeySequence.StandardKey.Paste):
            self.paste_requested.emit()
            return
        if (
            event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)
            and self.state() != QAbstractItemView.State.EditingState
        ):
            self.clear_requested.emit()
            return
        super().keyPressEvent(event)

    def wheelEvent(self, event: Any) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            dy = event.angleDelta().y()
            if dy:
                self.zoom_requested.emit(1 if dy > 0 else -1)
            event.accept()
            return
        super().wheelEvent(event)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self.resized.emit()

    def set_region(self, region: tuple[int, int, int, int] | None) -> None:
        """Outline cells ``(r0, r1, c0, c1)`` (inclusive), or nothing."""
        if region != self.region:
            self.region = region
            self.viewport().update()

    def region_rect(self) -> QRect | None:
        """The outlined cells in viewport coordinates (None without a region)."""
        if self.region is None or self.model() is None:
            return None
        r0, r1, c0, c1 = self.region
        m = self.model()
        a, b = self.visualRect(m.index(r0, c0)), self.visualRect(m.index(r1, c1))
        return a.united(b)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if not self.painting:
            return False
        t = event.type()
        if t == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            self._stroke_active = True
            self.stroke_started.emit()
            self._paint_at(event.position().toPoint())  # type: ignore[attr-defined]
            return True
        if t == QEvent.Type.MouseMove and self._stroke_active:
            self._paint_at(event.position().toPoint())  # type: ignore[attr-defined]
            return True
        if t == QEvent.Type.MouseButtonRelease and self._stroke_active:
            self._stroke_active = False
            self._last_cell = None
            self.stroke_ended.emit()
            return True
        return t == QEvent.Type.MouseButtonDblClick

    def paintEvent(self, event: object) -> None:
        """Large grids: the visible cells in one drawImage, then selection and focus."""
        model = self.model()
        if not isinstance(model, InputModel) or not model.image_mode():
            super().paintEvent(event)  # type: ignore[arg-type]
            self._paint_region()
            return
        hh, vh = self.horizontalHeader(), self.verticalHeader()
        vp = self.viewport()
        rows, cols = model.rowCount(), model.columnCount()
        c0, r0 = max(0, hh.logicalIndexAt(0)), max(0, vh.logicalIndexAt(0))
        c1 = hh.logicalIndexAt(vp.width() - 1)
        r1 = vh.logicalIndexAt(vp.height() - 1)
        c1 = cols - 1 if c1 < 0 else c1
        r1 = rows - 1 if r1 < 0 else r1
        cw, rh = hh.sectionSize(0), vh.sectionSize(0)
        x0, y0 = hh.sectionViewportPosition(c0), vh.sectionViewportPosition(r0)
        p = QPainter(vp)
        p.fillRect(vp.rect(), self.palette().base())
        p.drawImage(
            QRectF(x0, y0, (c1 - c0 + 1) * cw, (r1 - r0 + 1) * rh),
            model.image(),
            QRectF(c0, r0, c1 - c0 + 1, r1 - r0 + 1),
        )
        sel = self.selectionModel()
        if sel is not None:
            hl = QColor(self.palette().highlight().color())
            hl.setAlpha(90)
            for rng in sel.selection():
                rect = self.visualRect(rng.topLeft()).united(self.visualRect(rng.bottomRight()))
                p.fillRect(rect, hl)
            cur = self.currentIndex()
            if cur.isValid():
                p.setPen(QPen(QColor(20, 20, 20), 2))
                p.drawRect(self.visualRect(cur).adjusted(1, 1, -1, -1))
        p.end()
        self._paint_region()

    def _paint_region(self) -> None:
        """The receptive field: a dark and a light outline (visible on any colour)."""
        rect = self.region_rect()
        if rect is None:
            return
        p = QPainter(self.viewport())
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(QColor(255, 255, 255), 3))
        p.drawRect(rect.adjusted(0, 0, -1, -1))
        p.setPen(QPen(QColor(230, 40, 40), 1))
        p.drawRect(rect.adjusted(0, 0, -1, -1))
        p.end()

    def _paint_at(self, pos: object) -> None:
        idx = self.indexAt(pos)  # type: ignore[arg-type]
        if not idx.isValid():
            return
        cell = (idx.row(), idx.column())
        cells = _line(self._last_cell, cell) if self._last_cell else [cell]
        self._last_cell = cell
        self.painted.emit(cells)


def _line(a: tuple[int, int], b: tuple[int, int]) -> list[tuple[int, int]]:
    """Cells on the segment a→b (so a fast drag leaves no gaps)."""
    n = max(abs(b[0] - a[0]), abs(b[1] - a[1]), 1)
    return sorted(
        {
            (round(a[0] + (b[0] - a[0]) * i / n), round(a[1] + (b[1] - a[1]) * i / n))
            for i in range(n + 1)
        }
    )
