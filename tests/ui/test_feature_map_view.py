"""The feature-map view's fast paths: off-screen tiles refreshed when scrolled into view,
direct RGB32 colouring identical to pyqtgraph's, one repaint per edit."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication
from ui_helpers import cell_texts, settle

from cnn_explorer.document import act_spec, conv_spec
from cnn_explorer.ui import colors
from cnn_explorer.ui.feature_map_view import MapImage


def _many_small_maps(window) -> None:
    """12×12 input and 3 conv layers of 8 maps: more tiles than the viewport shows."""
    x = np.random.default_rng(0).random((1, 12, 12), dtype=np.float32)
    layers = [
        conv_spec(1, 8, (3, 3), padding="same", seed=1),
        act_spec("relu"),
        conv_spec(8, 8, (3, 3), padding="same", seed=2),
        conv_spec(8, 8, (3, 3), padding="same", seed=3),
    ]
    window.doc.apply_document(x, layers)
    window.doc.recompute_now()
    window.maps.relayout()
    QApplication.processEvents()


def test_off_screen_tile_refreshes_when_scrolled_into_view(qtbot, window):
    _many_small_maps(window)
    maps, doc = window.maps, window.doc
    maps.scroll.verticalScrollBar().setValue(0)
    last = maps.group(len(doc.results.maps) - 1)
    assert maps.scroll.verticalScrollBar().maximum() > 0, "the test needs a scrolled view"
    doc.set_weight(0, 0, 0, 1, 1, float(doc.layers[0].weight[0, 0, 1, 1]) + 0.5)
    settle(qtbot, window)
    hidden = [t for t in last.tiles if t.pending is not None]
    assert hidden, "tiles below the viewport should wait until they are scrolled to"
    t = hidden[-1]
    maps.scroll.ensureVisible(int(t.rect.center().x()), int(t.rect.center().y()))
    assert t.pending is None
    fresh = doc.results.maps[last.map_index][t.channel]
    assert np.array_equal(t.numbers._a, fresh)
    assert np.array_equal(t.image.data2d, fresh)
    assert t.title_text.startswith(f"ch {t.channel}")


def test_tile_accessor_brings_an_off_screen_tile_up_to_date(qtbot, window):
    _many_small_maps(window)
    maps, doc = window.maps, window.doc
    maps.scroll.verticalScrollBar().setValue(0)
    m = len(doc.results.maps) - 1
    doc.set_weight(0, 0, 0, 0, 0, float(doc.layers[0].weight[0, 0, 0, 0]) - 1.0)
    settle(qtbot, window)
    for c in range(8):
        expected = [[colors.fmt(float(v)) for v in row] for row in doc.results.maps[m][c]]
        assert cell_texts(window, m, c) == expected
        assert maps.group(m).tiles[c].pending is None


@pytest.mark.parametrize("signed", [False, True])
def test_map_image_colours_exactly_like_pyqtgraph(qapp, signed):
    rng = np.random.default_rng(1)
    arrays = [
        rng.random((37, 29), dtype=np.float32) * 3 - 1,
        np.linspace(-2, 2, 400, dtype=np.float32).reshape(20, 20),
        rng.random((64, 64), dtype=np.float32)[::2, ::3],  # non-contiguous (decimated)
        np.array([[np.inf, -np.inf], [0.5, 3.0]], np.float32),
    ]
    for a in arrays:
        for levels in ((0.0, 2.0), (-2.0, 2.0), (1.0, 1.0)):
            ref = pg.ImageItem(axisOrder="row-major")
            ref.setLookupTable(colors.lut(signed))
            ref.setImage(a, autoLevels=False, levels=levels)
            ref.render()
            mine = MapImage(None, 0, 0)  # type: ignore[arg-type]
            mine.setLookupTable(colors.lut(signed))
            mine.setImage(a, autoLevels=False, levels=levels)
            mine.render()
            assert ref.qimage.convertToFormat(mine.qimage.format()) == mine.qimage


class _PaintCounter(QObject):
    count = 0

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if ev.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def test_an_edit_repaints_the_map_view_once(qtbot, window):
    doc = window.doc
    counter = _PaintCounter()
    window.maps.view.viewport().installEventFilter(counter)
    QApplication.processEvents()
    for k in range(3):
        counter.count = 0
        doc.set_weight(0, 0, 0, 0, 0, float(doc.layers[0].weight[0, 0, 0, 0]) + 1.0)
        settle(qtbot, window)
        QApplication.sendPostedEvents()
        QApplication.processEvents()
        assert counter.count == 1, f"edit {k}: {counter.count} repaints"
