"""Learned filters: a first layer reading RGB is one colour patch per filter (each filter
stretched from its own minimum to its maximum), every filter is numbered, hovering reads
its weights at the tap under the mouse, and a click shows that filter's maps for the
current image in "Try an image"."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from cnn_explorer.engine.network import default_classifier
from cnn_explorer.training.events import conv_filters
from cnn_explorer.training.model import TrainedModel
from cnn_explorer.training.prediction import predict
from cnn_explorer.ui.training.filter_grid import FilterGrid, colour_patches
from cnn_explorer.ui.training.results import TrainingResults


def _rgb_net():  # type: ignore[no-untyped-def]
    return default_classifier((3, 8, 8), 2, seed=4)


def test_colour_patches_stretch_each_filter_to_its_own_range() -> None:
    w = np.zeros((2, 3, 2, 2), np.float32)
    w[0, 0, 0, 0] = 1.0  # filter 0: one red tap, everything else its minimum 0
    w[1] = -5.0
    w[1, 2, 1, 1] = 5.0  # filter 1: one blue tap at its maximum, the rest its minimum
    patches = colour_patches(w)
    assert patches.shape == (2, 2 * 4 - 2, 4)
    assert patches[0, 0, :3].tolist() == [255, 0, 0] and patches[1, 1, :3].tolist() == [0, 0, 0]
    assert patches[1, 5, :3].tolist() == [0, 0, 255] and patches[0, 4, :3].tolist() == [0, 0, 0]
    assert patches[0, 2, :3].tolist() == patches[0, 3, :3].tolist() == [236, 236, 236]  # gap
    flat = colour_patches(np.full((1, 3, 1, 1), 0.3, np.float32))
    assert flat[0, 0, :3].tolist() == [128, 128, 128], "a constant filter is mid grey"


@pytest.fixture
def grid(qtbot):  # type: ignore[no-untyped-def]
    g = FilterGrid()
    qtbot.addWidget(g)
    g.resize(700, 420)
    g.show()
    qtbot.waitExposed(g)
    return g


def test_rgb_first_layer_is_colour_patches_and_deeper_layers_keep_channels(grid) -> None:  # type: ignore[no-untyped-def]
    net = _rgb_net()
    layers = conv_filters(net)
    (_, first), (_, second) = layers
    grid.add_snapshot("after epoch 1", layers)
    assert grid.drawn(0).shape == (3, 8 * 5 - 2, 4), "one row of 8 colour patches"
    np.testing.assert_array_equal(grid.drawn(0), colour_patches(first))
    o, c, kh, kw = second.shape
    assert grid.drawn(1).shape == (c * (kh + 1) - 1, o * (kw + 2) - 2, 4), "channels as rows"
    assert "reads an RGB image" in grid.caption.text()
    gray = default_classifier((1, 8, 8), 2, seed=4)
    grid.add_snapshot("gray", conv_filters(gray))
    assert grid.drawn(0).shape == (3, 8 * 5 - 2, 4) and "RGB" not in grid.caption.text()


def test_every_filter_is_numbered_without_colliding_labels(grid) -> None:  # type: ignore[no-untyped-def]
    grid.add_snapshot("after epoch 1", conv_filters(_rgb_net()))
    QApplication.processEvents()
    canvas = QImage(10, 10, QImage.Format.Format_ARGB32)
    for layer, count in ((0, 8), (1, 16)):
        axis = grid.view.getItem(2 * layer + 1, 0).getAxis("bottom")
        painter = QPainter(canvas)
        *_, texts = axis.generateDrawSpecs(painter)  # what the axis draws
        painter.end()
        drawn = sorted((rect.left(), rect.right(), text) for rect, _, text in texts)
        names = [text for *_, text in drawn]
        step = int(names[1]) if len(names) > 1 else count
        assert step in (1, 2, 5) and names == [str(k) for k in range(0, count, step)], names
        if count <= 8:
            assert step == 1, "a wide layer numbers every filter"
        for (_, right, _), (left, _, _) in pairwise(drawn):
            assert right <= left, f"labels overlap: {names}"
        first, last = (grid.tap_point(layer, k, 0, 0) for k in (0, count - 1))
        assert first.x() < last.x()


def test_hover_reads_the_weights_at_the_tap(qtbot, grid, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(pg.CONFIG_OPTIONS, "mouseRateLimit", -1)  # every move counts
    net = _rgb_net()
    layers = conv_filters(net)
    grid.add_snapshot("after epoch 1", layers)
    QApplication.processEvents()  # lay the plots out before pointing at them
    w = layers[0][1]
    QTest.mouseMove(grid.view.viewport(), grid.tap_point(0, 5, 1, 2))
    text = grid.hover.text()
    assert text.startswith("layer 1 conv · filter 5 · tap (row 1, col 2): ")
    for name, v in zip("RGB", w[5, :, 1, 2], strict=True):
        assert f"{name} {v:+.4g}" in text
    w2 = layers[1][1]
    QTest.mouseMove(grid.view.viewport(), grid.tap_point(1, 3, 0, 1))
    assert grid.hover.text().startswith("layer 4 conv · filter 3 · tap (row 0, col 1) · input")
    assert f"input channel 0: {w2[3, 0, 0, 1]:+.4g}" in grid.hover.text()


def test_clicking_a_filter_shows_its_maps_for_the_current_image(qtbot) -> None:  # type: ignore[no-untyped-def]
    results = TrainingResults()
    qtbot.addWidget(results)
    results.resize(900, 700)
    results.show()
    qtbot.waitExposed(results)
    net = _rgb_net()
    results.show_model(TrainedModel(net, ["a", "b"], (3, 8, 8)), clear_run=True)
    images = np.random.default_rng(1).random((3, 3, 8, 8), dtype=np.float32)
    results.prediction.set_images(images, np.array([0, 1, 0]))
    grid = results.filters
    QApplication.processEvents()
    assert results.tabs.currentWidget() is grid
    with qtbot.waitSignal(grid.filter_clicked) as clicked:
        QTest.mouseClick(
            grid.view.viewport(), Qt.MouseButton.LeftButton, pos=grid.tap_point(0, 6, 1, 1)
        )
    assert clicked.args == [0, 6]
    panel = results.prediction
    assert results.tabs.currentWidget() is panel
    maps = predict(net, images[0]).maps
    # conv 1 is layer 0, its ReLU layer 1: the panel shows the ReLU's output, channel 6
    np.testing.assert_array_equal(panel.selected_map, maps[2][0, 6])
    assert "filter 6 of conv layer 1" in panel.result.text()
    panel.index.setValue(2)  # the selection follows the image
    np.testing.assert_array_equal(panel.selected_map, predict(net, images[2]).maps[2][0, 6])
