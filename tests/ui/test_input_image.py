"""The input as a picture: grey / RGB composite / colour map display, zoom and fit, and the
grid following the selected feature-map cell's receptive field."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication
from ui_helpers import settle

from cnn_explorer.explorer.explain import Selection
from cnn_explorer.imageio import save_png
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.common.messages import ImageOptions, RecordingReporter


def _photo(tmp_path, h: int = 48, w: int = 64) -> tuple[str, np.ndarray]:
    rgb = np.random.default_rng(3).integers(0, 256, (h, w, 3), dtype=np.uint8)
    path = str(tmp_path / "photo.png")
    save_png(rgb, path)
    return path, rgb


def _pixels(window) -> np.ndarray:
    return window.grid.model.pixels()[..., :3].astype(int)


def _viewport_colour(qtbot, window, row: int, col: int) -> tuple[int, int, int]:
    table = window.grid.table
    table.scrollTo(table.model().index(row, col))
    QApplication.processEvents()
    centre = table.visualRect(table.model().index(row, col)).center()
    c = table.viewport().grab().toImage().pixelColor(centre)
    return c.red(), c.green(), c.blue()


def test_a_colour_photo_shows_as_itself_and_in_grey(qtbot, window, tmp_path):
    path, rgb = _photo(tmp_path)
    assert window.load_image(path, ImageOptions(48, 64, 3))
    settle(qtbot, window)
    grid = window.grid
    assert grid.display == "Auto" and grid.model.shown_as() == "RGB"
    assert np.array_equal(_pixels(window), rgb)
    grid.set_cell_px(12)  # no numbers: painted from the picture
    assert _viewport_colour(qtbot, window, 30, 40) == tuple(rgb[30, 40])
    grid.display_combo.setCurrentText("Grey")
    assert grid.model.shown_as() == "Grey"
    x = window.doc.input.astype(np.float64)
    lum = np.rint(255 * (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]))
    assert np.abs(_pixels(window)[..., 0] - lum).max() <= 1
    assert np.array_equal(_pixels(window)[..., 0], _pixels(window)[..., 2])
    grid.set_display("Colour map")
    plane = window.doc.input[grid.model.channel]
    levels, signed = colors.nice_levels(*colors.finite_range(window.doc.input))
    assert np.array_equal(window.grid.model.pixels(), colors.rgba(plane, levels, signed))
    assert window.doc.undo_stack.count() == 1  # the display is view state, not an edit


def test_numbers_stay_editable_where_cells_are_big_enough(qtbot, window, tmp_path):
    path, _ = _photo(tmp_path)
    assert window.load_image(path, ImageOptions(48, 64, 3))
    model = window.grid.model
    window.grid.fit()
    assert model.data(model.index(2, 3)) == ""  # too small for numbers
    window.grid.set_cell_px(40)
    assert model.data(model.index(2, 3)) == colors.fmt(float(window.doc.input[0, 2, 3]))
    bg = model.data(model.index(2, 3), Qt.ItemDataRole.BackgroundRole)
    assert (bg.red(), bg.green(), bg.blue()) == tuple(_pixels(window)[2, 3])
    assert model.setData(model.index(2, 3), "0.25")
    assert window.doc.input[0, 2, 3] == 0.25
    assert tuple(_pixels(window)[2, 3]) == (64, *_pixels(window)[2, 3, 1:])


def test_display_choice_is_remembered(qtbot, window):
    from cnn_explorer.ui.main_window import MainWindow

    window.grid.set_display("Grey")
    window.save_window_state()
    assert QSettings().value("view/input_display") == "Grey"
    again = MainWindow(restore_state=True)
    again.reporter = RecordingReporter(again)
    qtbot.addWidget(again)
    assert again.grid.display == "Grey"
    assert again.grid.display_combo.currentText() == "Grey"
    again.doc.shutdown()


def test_zoom_and_fit_change_the_visible_cells(qtbot, window, tmp_path):
    path, _ = _photo(tmp_path, 96, 96)
    assert window.load_image(path, ImageOptions(96, 96, 3))
    grid = window.grid
    QApplication.processEvents()
    assert grid.fitting and grid.visible_cells() == (96, 96)
    grid.zoom(1)
    grid.zoom(1)
    grid.set_cell_px(30)
    rows, cols = grid.visible_cells()
    assert rows < 96 and cols < 96
    before = grid.cell_px
    vp = grid.table.viewport()
    ev = QWheelEvent(
        QPointF(vp.width() / 2, vp.height() / 2),
        QPointF(vp.mapToGlobal(QPoint(vp.width() // 2, vp.height() // 2))),
        QPoint(0, 0),
        QPoint(0, -120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ControlModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(vp, ev)
    assert grid.cell_px < before and not grid.fitting
    assert grid.visible_cells()[1] > cols
    grid.fit()
    assert grid.visible_cells() == (96, 96)
    window.grid_dock.resize(window.grid_dock.width() + 100, window.grid_dock.height())
    QApplication.processEvents()
    assert grid.visible_cells() == (96, 96)  # keeps fitting as the panel changes


@pytest.mark.parametrize("cell", [(3, 0, 46, 46), (1, 0, 0, 94), (0, 1, 80, 10)])
def test_the_grid_scrolls_to_the_selected_cells_receptive_field(qtbot, window, tmp_path, cell):
    path, _ = _photo(tmp_path, 96, 96)
    assert window.load_image(path, ImageOptions(96, 96, 3))
    settle(qtbot, window)
    grid = window.grid
    grid.set_cell_px(40)
    QApplication.processEvents()
    assert grid.visible_cells()[0] < 40
    window.doc.select_cell(Selection(*cell))
    QApplication.processEvents()
    rect = grid.table.region_rect()
    assert rect is not None and grid.table.viewport().rect().contains(rect)
    r0, r1, c0, c1 = grid.table.region
    m, _, row, col = cell
    if m == 0:
        assert (r0, r1, c0, c1) == (row, row, col, col)
    else:  # the worked example's 2×2 conv (and 2×2 max pool after it) feed these cells
        assert (r0, c0) == (row, col) and r1 - r0 == c1 - c0 == (2 if m == 3 else 1)
    window.doc.select_cell(None)
    assert grid.table.region is None


def test_a_colour_map_edit_repaints_one_cell_while_its_levels_hold(qtbot, window):
    """The colour map's levels are rounded ("nice"), so an edit that moves the exact
    maximum but not them repaints just its cell: the picture's exact levels must not
    count in the colour map (they made such edits repaint the whole grid)."""
    window.doc.set_input(np.full((1, 28, 28), 0.5, np.float32))
    window.grid.set_display("Colour map")
    window.doc.set_cell(0, 0, 0, 0.0)
    window.doc.set_cell(0, 0, 1, 1.9)  # colour-map levels [0, 2], exact range [0, 1.9]
    settle(qtbot, window)
    changed: list[tuple[int, int, int, int]] = []
    window.grid.model.dataChanged.connect(
        lambda a, b, *_: changed.append((a.row(), b.row(), a.column(), b.column()))
    )
    window.doc.set_cell(0, 5, 7, 1.95)  # a new exact maximum inside the same levels
    settle(qtbot, window)
    assert changed and all(c == (5, 5, 7, 7) for c in changed), changed
