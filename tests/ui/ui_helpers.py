"""Helpers shared by the UI tests (gestures through the real widgets)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QAbstractItemView, QApplication

from cnn_explorer.ui.main_window import MainWindow


def settle(qtbot, win: MainWindow) -> None:
    """Wait until the document has published results for every pending edit."""
    doc = win.doc
    qtbot.waitUntil(lambda: doc.computed)


def map_values(win: MainWindow, m: int, c: int = 0) -> np.ndarray:
    return win.doc.results.maps[m][c]


def cell_texts(win: MainWindow, m: int, c: int = 0) -> list[list[str]]:
    h, w = win.doc.results.maps[m][c].shape
    return [[win.maps.cell_text(m, c, r, q) for q in range(w)] for r in range(h)]


def type_into_table(qtbot, table, row: int, col: int, text: str) -> None:
    """Select a cell, type like a user and press Enter."""
    idx = table.model().index(row, col)
    table.setCurrentIndex(idx)
    table.setFocus()
    qtbot.keyClicks(table, text[0])
    editor = table.focusWidget()
    assert editor is not table, "typing did not open a cell editor"
    if len(text) > 1:
        qtbot.keyClicks(editor, text[1:])
    QApplication.processEvents()  # let the delegate install its key filter
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: table.state() != QAbstractItemView.State.EditingState)


def click_map_cell(qtbot, win: MainWindow, m: int, c: int, row: int, col: int) -> None:
    """A real mouse click on a feature-map cell (scene → view coordinates)."""
    tile = win.maps.tile(m, c)
    assert tile is not None
    scene_pt = tile.image.mapToScene(col + 0.5, row + 0.5)
    view = win.maps.view
    win.maps.scroll.ensureVisible(int(scene_pt.x()), int(scene_pt.y()))
    pos = view.mapFromScene(scene_pt)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos.x(), pos.y()))


def drop_file(window: MainWindow, path: str) -> None:
    """Drop a file on the window as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path)])
    ev = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(ev)
