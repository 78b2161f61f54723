"""Feature-map tile sizes grow continuously with the map, and numbers in cells never
collide: each is drawn only when it fits its cell."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QTransform
from PySide6.QtWidgets import QApplication, QGraphicsScene
from ui_helpers import settle

from cnn_explorer.explorer.specs import act_spec
from cnn_explorer.ui.explorer.map_items import NumbersItem
from cnn_explorer.ui.explorer.map_layout import SIDE_MAX, map_side

VALUES = np.array([0.702, -12.5, 1234.5, 0.201, -0.0146, 4.0, 1e-5, -758.25], np.float32)


def _values(h: int, w: int) -> np.ndarray:
    return np.resize(VALUES, h * w).reshape(h, w)


def test_map_side_is_continuous_and_non_decreasing():
    prev = map_side(1, 1)
    assert prev >= 150  # a 1×1 map is big enough to read
    for n in range(2, 601):
        side = map_side(n, n)
        assert side >= prev, n
        assert side * n <= prev * (n + 1), (n, prev, side)
        assert map_side(1, n) == map_side(n, 1) == side
        prev = side
    assert map_side(600, 600) <= SIDE_MAX <= 260
    assert map_side(3, 3) >= 150  # the worked example keeps its big tiles


def _show_input(qtbot, window, n: int, layers: list | None = None) -> None:
    window.doc.apply_document(_values(n, n)[None], layers or [])
    window.doc.recompute_now()
    settle(qtbot, window)
    window.maps.relayout()
    QApplication.processEvents()


def test_16_and_17_cell_maps_are_drawn_at_neighbouring_sizes(qtbot, window):
    sides = {}
    for n in (16, 17):
        _show_input(qtbot, window, n, [act_spec("relu")])
        rect = window.maps.tile(0, 0).vb.geometry()
        assert window.maps.tile(1, 0).vb.geometry().size() == rect.size()
        sides[n] = max(rect.width(), rect.height())
        assert window.maps.tile(0, 0).rect.height() >= rect.height()
    assert sides[16] <= sides[17] <= sides[16] * 17 / 16
    assert sides[17] >= 200  # big maps are not shrunk to a thumbnail


def _check_labels(item: NumbersItem, a: np.ndarray) -> int:
    """No two drawn labels overlap and each lies inside its cell; returns how many."""
    labels = item.labels()
    tr = item.sceneTransform()
    for r, c, text, rect in labels:
        cell = tr.mapRect(QRectF(c, r, 1, 1))
        assert cell.contains(rect), (r, c, text, rect, cell)
        assert text == item.text(r, c)
        v = float(a[r, c])
        assert abs(float(text.replace("k", "e3")) - v) <= max(0.5, abs(v) / 2), (text, v)
    rects = sorted((rect.left(), rect.right(), rect.top(), rect.bottom()) for *_, rect in labels)
    for i, (_, r1, t1, b1) in enumerate(rects):
        for l2, _, t2, b2 in rects[i + 1 :]:
            if l2 >= r1:
                break
            assert b1 <= t2 or b2 <= t1, "labels overlap"
    return len(labels)


def test_numbers_fit_their_cells_in_every_map_size(qtbot, window):
    drawn = {}
    for n in range(1, 21):
        _show_input(qtbot, window, n)
        tile = window.maps.tile(0, 0)
        if tile.numbers is None:
            assert n > 16
            continue
        drawn[n] = _check_labels(tile.numbers, _values(n, n))
    assert drawn[1] == 1 and drawn[4] == 16  # small maps show every number
    assert drawn[12] > 0 and drawn[16] > 0  # middle ones still show (shortened) numbers


@pytest.mark.parametrize("shape", [(3, 40), (12, 12), (1, 1), (20, 3)])
@pytest.mark.parametrize("cell", [8.0, 12.0, 14.5, 18.4, 22.0, 30.0, 53.3])
def test_numbers_never_collide_at_any_cell_size(qapp, shape, cell):
    scene = QGraphicsScene()
    item = NumbersItem()
    scene.addItem(item)
    item.setTransform(QTransform.fromScale(cell, cell * 0.9))
    a = _values(*shape)
    item.set_data(a, (-1.0, 1.0), [])
    n = _check_labels(item, a)
    assert (n > 0) == (cell >= 14), (cell, n)
