"""The Model tab's filters view: the selected conv's filters as a grid (a conv reading the
RGB picture as colour patches, each filter stretched to its own range; deeper convs by
input channel), weights read on hover, a click on a filter selects that output channel's
strongest cell and zooms the maps onto it; other nodes hide the view."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from cnn_explorer.ui.common.filter_mosaic import colour_patches, mosaic

FIXTURES = Path(__file__).resolve().parents[1] / "interchange" / "fixtures"


def _open(qtbot, window, name: str):  # type: ignore[no-untyped-def]
    tab = window.model_tab
    assert window.open_path(str(FIXTURES / f"{name}.onnx"))
    tab.wait()
    qtbot.waitUntil(lambda: tab.doc.ready, timeout=30_000)
    return tab, tab.doc.view


def _convs(vm):  # type: ignore[no-untyped-def]
    return [n for n in vm.graph.nodes if n.layer.kind == "conv"]


def test_first_conv_shows_colour_patches_and_hover_reads_rgb(qtbot, window):
    tab, vm = _open(qtbot, window, "vgg_bn")
    conv = _convs(vm)[0]
    tab.doc.select_node(conv.name)
    view = tab.filters
    assert view.isVisible() and view.colour and view.input_channel is None
    weight = conv.layer.params["weight"]
    np.testing.assert_array_equal(view.drawn(), colour_patches(weight))
    assert f"{weight.shape[0]} colour filters" in view.title.text()
    QTest.mouseMove(view.view.viewport(), view.tap_point(3, 1, 2))
    found = re.search(r"filter 3 · tap \(row (\d+), col (\d+)\)", view.hover.text())
    assert found is not None
    r, g, b = weight[3, :, int(found[1]), int(found[2])]
    assert f"R {r:+.4g}, G {g:+.4g}, B {b:+.4g}" in view.hover.text()


def test_deeper_conv_by_input_channel(qtbot, window):
    tab, vm = _open(qtbot, window, "vgg_bn")
    conv = _convs(vm)[1]
    tab.doc.select_node(conv.name)
    view = tab.filters
    weight = conv.layer.params["weight"]
    assert not view.colour and view.input_channel is None  # small: every input channel
    values, _ = mosaic(weight)
    assert view.drawn().shape[:2] == values.shape
    view.set_input_channel(2)
    assert view.input_channel == 2 and "input channel 2" in view.title.text()
    assert view.drawn().shape[:2] == mosaic(weight[:, 2:3])[0].shape
    QTest.mouseMove(view.view.viewport(), view.tap_point(4, 0, 1))
    found = re.search(r"filter 4 · tap \(row (\d+), col (\d+)\)", view.hover.text())
    assert found is not None  # small tiles: the pixel may round to a neighbouring tap
    r, c = int(found[1]), int(found[2])
    assert f"input channel 2: {weight[4, 2, r, c]:+.4g}" in view.hover.text()


def test_clicking_a_filter_shows_its_output_channel(qtbot, window):
    tab, vm = _open(qtbot, window, "resnet")
    conv = _convs(vm)[0]
    tab.doc.select_node(conv.name)
    view = tab.filters
    qtbot.mouseClick(view.view.viewport(), Qt.MouseButton.LeftButton, pos=view.tap_point(2))
    cell = vm.selection
    assert cell is not None and cell.tensor == conv.name and cell.index[0] == 2
    out = vm.tensor(conv.name)[2]
    assert out[cell.index[1:]] == out.max()
    (x0, x1), (y0, y1) = tab.grid.vb.viewRange()
    y, x = tab.grid.tile_origin(2)
    assert x0 <= x and x + out.shape[1] <= x1 and y0 <= y and y + out.shape[0] <= y1
    assert x1 - x0 < 2 * out.shape[1]  # zoomed onto the one tile


def test_other_nodes_hide_the_view(qtbot, window):
    tab, vm = _open(qtbot, window, "lenet5")
    conv = _convs(vm)[0]
    tab.doc.select_node(conv.name)
    assert tab.filters.isVisible() and not tab.filters.colour  # grey input: one channel
    assert tab.filters.input_channel == 0 and not tab.filters.channel.isVisible()
    other = next(n for n in vm.graph.nodes if n.layer.kind != "conv")
    tab.doc.select_node(other.name)
    assert not tab.filters.isVisible()
    tab.doc.select_node("input")
    assert not tab.filters.isVisible()
