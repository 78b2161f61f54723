"""Choosing the Insight target cell by clicking: a real mouse click on the shown image
picks the cell of the chosen layer's map under it (a filter's one cell), and the saliency
that follows is that cell's input gradient; Grad-CAM (which explains a class) ignores the
click with a hint."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from cnn_explorer.engine.network import default_classifier
from cnn_explorer.insight.saliency import input_gradient
from cnn_explorer.insight.targets import Target
from cnn_explorer.ui.training.insight_controls import FILTER
from cnn_explorer.ui.training.insight_panel import InsightPanel

TIMEOUT = 60_000


@pytest.fixture
def panel(qtbot):  # type: ignore[no-untyped-def]
    p = InsightPanel()
    qtbot.addWidget(p)
    p.resize(900, 600)
    images = np.random.default_rng(0).random((4, 1, 16, 12)).astype(np.float32)
    p.set_images(images, np.zeros(4, np.int64))
    p.set_network(default_classifier((1, 16, 12), 3, seed=1), ["a", "b", "c"])
    p.show()
    qtbot.waitExposed(p)
    yield p
    assert p.shutdown(TIMEOUT)


def _click(qtbot, panel: InsightPanel, row: float, col: float) -> None:  # type: ignore[no-untyped-def]
    p = panel.view.view_point(row, col)
    qtbot.mouseClick(
        panel.view.graphics.viewport(),
        Qt.MouseButton.LeftButton,
        pos=QPoint(round(p.x()), round(p.y())),
    )


def _choose(combo, data) -> None:  # type: ignore[no-untyped-def]
    combo.setCurrentIndex(combo.findData(data))


def test_clicking_the_image_picks_the_cell_under_it(qtbot, panel: InsightPanel) -> None:  # type: ignore[no-untyped-def]
    c = panel.controls
    _choose(c.method, "saliency")
    _choose(c.layer, 4)  # conv 2 + ReLU: an 8×6 map over the 16×12 image
    c.filter.setValue(5)
    _click(qtbot, panel, 13.5, 2.5)  # image pixel (13, 2) → map cell (6, 1)
    assert c.target.currentData() == FILTER and c.one_cell.isChecked()
    assert (c.row.value(), c.col.value()) == (6, 1)
    assert "row 6, column 1" in panel.status.text()
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT):
        panel.run_button.click()
    net = panel.network.copy()
    want = input_gradient(net, panel.current_image(), Target(4, 5, cell=(6, 1), reduce="mean"))
    np.testing.assert_allclose(panel.result.heatmap, want.heatmap("abs"), rtol=1e-6)
    # the heatmap now shown is clickable too
    _click(qtbot, panel, 0.5, 11.5)
    assert (c.row.value(), c.col.value()) == (0, 5)


def test_grad_cam_ignores_the_click_with_a_hint(qtbot, panel: InsightPanel) -> None:  # type: ignore[no-untyped-def]
    c = panel.controls
    _choose(c.method, "gradcam")
    _click(qtbot, panel, 3.5, 3.5)
    assert not c.one_cell.isChecked()
    assert "Grad-CAM explains a class" in panel.status.text()
