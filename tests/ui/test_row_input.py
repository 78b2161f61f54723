"""A 1-row (1-D) input: line plots instead of strips, the first conv's response beneath
the input, a layout where nothing overlaps, and clicks that select cells."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtWidgets import QApplication, QWidget
from ui_helpers import settle

from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.specs import LayerSpec, act_spec, conv_spec
from cnn_explorer.ui.explorer.row_maps import column_axes


def _row_document(window, width: int = 32) -> None:
    x = np.sin(np.linspace(0, 4 * np.pi, width))[None, None].astype(np.float32)
    w = np.array([[[[1, 0, -1]]], [[[1, 2, 1]]], [[[-1, 2, -1]]]], np.float32)
    layers = [
        conv_spec(1, 3, (1, 3), weight=w, bias=False),
        act_spec("relu"),
        LayerSpec("maxpool", {"size": [1, 2], "stride": [1, 2], "padding": 0}),
    ]
    window.doc.apply_document(x, layers)
    window.doc.recompute_now()
    QApplication.processEvents()


def _rect_in(widget: QWidget, top: QWidget) -> QRect:
    return QRect(widget.mapTo(top, QPoint(0, 0)), widget.size())


def _assert_apart(widgets: list[QWidget], top: QWidget) -> None:
    rects = [_rect_in(w, top) for w in widgets]
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert not a.intersects(b), (a, b)


def test_a_1x32_input_is_drawn_as_line_plots_that_never_overlap(qtbot, window):
    _row_document(window)
    rows = window.maps.rows_view
    assert window.maps.stack.currentWidget() is rows
    assert rows.map_indices == [0, 1, 2, 3]
    widgets = [w for pair in zip(rows.titles, rows.plots, strict=True) for w in pair]
    assert all(w.isVisible() for w in widgets)
    assert all(p.height() >= 100 for p in rows.plots)  # plots, not 8-px strips
    _assert_apart(widgets, rows)
    for label, plot in zip(rows.titles, rows.plots, strict=True):  # each title above its plot
        assert _rect_in(label, rows).bottom() < _rect_in(plot, rows).top()
    curves = rows.plots[1].getPlotItem().listDataItems()
    assert len(curves) == 3  # one per filter
    xs, ys = curves[0].getData()
    np.testing.assert_allclose(xs, np.arange(30) + 1)  # under the centre of each window
    np.testing.assert_allclose(ys, window.doc.results.maps[1][0, 0])
    # The input panel: the numbers, then the input and the first conv's response.
    grid = window.grid
    assert grid.row_plots.isVisible() and grid.row_plots.map_indices == [0, 1]
    pairs = zip(grid.row_plots.titles, grid.row_plots.plots, strict=True)
    panel = [grid.table, *(w for pair in pairs for w in pair)]
    _assert_apart(panel, grid)
    assert all(p.height() >= 60 for p in grid.row_plots.plots)


def test_clicking_a_line_plot_selects_and_shades_the_receptive_field(qtbot, window):
    _row_document(window)
    rows = window.maps.rows_view
    plot = rows.plots[1]
    vb = plot.getPlotItem().getViewBox()
    y = float(window.doc.results.maps[1][1, 0, 10])
    scene_pt = vb.mapViewToScene(QPointF(11.0, y))  # on filter 1's curve at column 10
    pos = plot.mapFromScene(scene_pt)
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos.x(), pos.y()))
    assert window.doc.selection == Selection(1, 1, 0, 10)
    assert rows.marked(0) == (9.5, 12.5)  # input columns 10–12 feed conv column 10
    assert window.grid.row_plots.marked(0) == (9.5, 12.5)
    assert window.grid.table.region == (0, 0, 10, 12)


def test_back_to_two_dimensions_shows_the_maps_as_images(qtbot, window):
    _row_document(window)
    window.doc.resize_input(8, 32)
    settle(qtbot, window)
    QApplication.processEvents()
    assert window.maps.stack.currentWidget() is window.maps.scroll
    assert not window.grid.row_plots.isVisible()
    assert window.maps.tile(0, 0) is not None


def test_column_axes_compose_the_windows():
    layers = [
        conv_spec(1, 1, (1, 3), padding=1),  # column j at j − 1 + 1 = j
        act_spec("relu"),
        LayerSpec("maxpool", {"size": [1, 2], "stride": [1, 2], "padding": 0}),  # 2j + 0.5
        conv_spec(1, 1, (1, 3), dilation=(1, 2)),  # 2(j + 2) + 0.5
    ]
    axes = column_axes(layers, [16, 16, 16, 8, 4])
    assert axes == [(1.0, 0.0), (1.0, 0.0), (1.0, 0.0), (2.0, 0.5), (2.0, 4.5)]
