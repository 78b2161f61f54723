"""The input grid's table view: copy/paste/delete keys and paint strokes as signals, and
large grids painted from the model's cached image in one drawImage."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QPainter, QPen
from PySide6.QtWidgets import QAbstractItemView, QTableView

from cnn_explorer.ui.explorer.input_model import InputModel


class GridTable(QTableView):
    """The table: copy/paste shortcuts and paint strokes, told to the panel by signals."""

    copy_requested = Signal()
    paste_requested = Signal()
    clear_requested = Signal()  # Delete / Backspace outside an editor
    stroke_started = Signal()
    painted = Signal(list)  # cells [(row, col), ...] the brush went over
    stroke_ended = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.painting = False
        self._stroke_active = False
        self._last_cell: tuple[int, int] | None = None
        self.viewport().installEventFilter(self)

    def keyPressEvent(self, event: Any) -> None:
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
