"""A filter's weights (all its input channels) or a whole layer's have a histogram on
demand: from the kernel editor's "Histogram" menu and from a right click on a learned
filter in the training tab's grid; both open the same window as a map's histogram."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from cnn_explorer.engine.network import default_classifier
from cnn_explorer.explorer.document import Document
from cnn_explorer.training.events import conv_filters
from cnn_explorer.ui.common.histogram_window import HistogramPopup
from cnn_explorer.ui.explorer.kernel_editor import KernelEditor
from cnn_explorer.ui.training.filter_grid import FilterGrid


def _popups() -> list[HistogramPopup]:
    QApplication.processEvents()
    return [
        w for w in QApplication.topLevelWidgets() if isinstance(w, HistogramPopup) and w.isVisible()
    ]


def test_kernel_editor_histogram_of_the_filter_and_of_the_layer(qtbot) -> None:  # type: ignore[no-untyped-def]
    doc = Document(async_cost=10**12)
    editor = KernelEditor(doc)
    qtbot.addWidget(editor)
    editor.show()
    conv = next(i for i, s in enumerate(doc.layers) if s.kind == "conv")
    doc.update_config(conv, filters=3)
    editor.seed_spin.setValue(3)
    editor.randomise()
    editor.filter_spin.setValue(2)
    weight = doc.layers[conv].weight
    assert weight is not None and editor.hist_btn.isEnabled()
    editor.filter_hist_action.trigger()
    (popup,) = _popups()
    assert int(popup.hist.counts.sum()) == weight[2].size
    assert "filter 2" in popup.windowTitle()
    assert popup.hist.edges[0] == weight[2].min() and popup.hist.edges[-1] == weight[2].max()
    popup.close()
    editor.layer_hist_action.trigger()
    (popup,) = _popups()
    assert int(popup.hist.counts.sum()) == weight.size == 3 * np.prod(weight.shape[1:])
    assert f"{weight.size} values" in popup.summary.text()
    popup.close()


def test_right_click_on_a_learned_filter_opens_its_weights_histogram(qtbot) -> None:  # type: ignore[no-untyped-def]
    grid = FilterGrid()
    qtbot.addWidget(grid)
    grid.resize(700, 420)
    grid.show()
    qtbot.waitExposed(grid)
    layers = conv_filters(default_classifier((1, 8, 8), 2, seed=4))
    grid.add_snapshot("after epoch 1", layers)
    QApplication.processEvents()
    weight = layers[1][1]
    clicked: list[tuple[int, int]] = []
    grid.filter_clicked.connect(lambda *a: clicked.append(a))
    QTest.mouseClick(grid.view.viewport(), Qt.MouseButton.RightButton, pos=grid.tap_point(1, 3))
    (popup,) = _popups()
    assert int(popup.hist.counts.sum()) == weight[3].size
    assert "filter 3" in popup.windowTitle() and "after epoch 1" in popup.windowTitle()
    assert clicked == [], "a right click does not also show the filter's maps"
    popup.close()
