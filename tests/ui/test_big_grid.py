"""Large inputs: the grid paints from a cached image but still shows and edits values;
the kernel editor's preset box names the preset the kernel matches."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from ui_helpers import settle, type_into_table

from cnn_explorer.explorer.specs import act_spec, conv_spec
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.explorer.input_model import IMAGE_GRID
from cnn_explorer.ui.explorer.kernel_editor import NO_PRESET, matching_preset


def _big(window, side: int = 96) -> np.ndarray:
    x = np.random.default_rng(0).random((1, side, side), dtype=np.float32)
    window.doc.apply_document(x, [conv_spec(1, 4, (3, 3), padding="same", seed=1)])
    window.doc.recompute_now()
    return x


def test_big_grid_paints_from_image_and_still_edits(qtbot, window):
    x = _big(window)
    window.grid.set_display("Colour map")
    model = window.grid.model
    assert model.image_mode() and x.shape[1] > IMAGE_GRID
    img = model.image()
    assert (img.width(), img.height()) == (96, 96)
    window.grid.table.viewport().repaint()  # the image path paints without error
    # Values stay readable (tooltip/edit role) and typing into a cell still works.
    idx = model.index(5, 7)
    assert model.data(idx, Qt.ItemDataRole.EditRole) == f"{float(x[0, 5, 7]):g}"
    with qtbot.waitSignal(window.doc.results_ready):
        type_into_table(qtbot, window.grid.table, 5, 7, "0.5")
    assert window.doc.input[0, 5, 7] == 0.5
    # The cached image follows the edit (patched in place, same colour as qcolor).
    q = colors.qcolor(0.5, model._levels, model._signed)
    assert model.image().pixelColor(7, 5) == q
    assert model.data(idx, Qt.ItemDataRole.BackgroundRole) == q


def test_cell_colours_match_per_value_colouring(window):
    x = _big(window, 20)
    model = window.grid.model
    assert not model.image_mode()
    for r, c in [(0, 0), (3, 17), (19, 19)]:
        want = colors.qcolor(float(x[0, r, c]), model._levels, model._signed)
        assert model.data(model.index(r, c), Qt.ItemDataRole.BackgroundRole) == want
        assert model.data(model.index(r, c), Qt.ItemDataRole.ForegroundRole) == (
            colors.text_color(want)
        )


def test_rgba_matches_qcolor_including_nan():
    a = np.array([[-3, -1, 0, 0.5], [2, np.nan, np.inf, 0.123]], np.float32)
    for levels, signed in [((-2.0, 2.0), True), ((0.0, 1.0), False), ((1.0, 1.0), False)]:
        im = colors.rgba(a, levels, signed)
        for (r, c), v in np.ndenumerate(a):
            q = colors.qcolor(float(v), levels, signed)
            assert tuple(im[r, c]) == (q.red(), q.green(), q.blue(), 255)


def test_preset_combo_names_matching_preset(qtbot, window):
    # The worked example's kernel is the 2×2 of ones, not "Identity".
    assert window.kernel.preset_combo.currentText() == "Ones 2×2"
    with qtbot.waitSignal(window.doc.results_ready):
        type_into_table(qtbot, window.kernel.table, 0, 1, "-1")
    settle(qtbot, window)
    assert window.kernel.preset_combo.currentText() == NO_PRESET
    assert matching_preset(np.array([[1, -1], [1, -1]], np.float32)) == "Edge [[1,-1],[1,-1]]"
    before = window.doc.undo_stack.count()
    window.kernel.apply_preset(NO_PRESET)  # nothing chosen: a message, no edit
    assert window.doc.undo_stack.count() == before


def test_weight_edit_after_relu_equals_full_recompute(window):
    x = np.random.default_rng(2).random((3, 40, 40), dtype=np.float32) - 0.5
    layers = [
        conv_spec(3, 4, (3, 3), padding="same", seed=1),
        act_spec("relu"),
        conv_spec(4, 4, (3, 3), padding="same", seed=2),
        act_spec("relu"),
    ]
    doc = window.doc
    doc.apply_document(x, layers)
    doc.recompute_now()
    doc.set_weight(0, 2, 1, 0, 0, 0.75)
    doc.recompute_now()
    fast = [m.copy() for m in doc.results.maps]
    doc.apply_document(doc.input.copy(), [s.copy() for s in doc.layers])
    doc.recompute_now()
    for a, b in zip(fast, doc.results.maps, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_input_preset_combo_follows_the_input(qtbot, window):
    combo = window.grid.preset_combo
    assert combo.currentText() == "Worked example"
    with qtbot.waitSignal(window.doc.results_ready):
        type_into_table(qtbot, window.grid.table, 0, 0, "7")
    assert combo.currentText() == NO_PRESET
    window.doc.undo_stack.undo()  # back to the worked example: the name comes back
    assert combo.currentText() == "Worked example"
    window.grid.apply_preset("Checkerboard")
    assert combo.currentText() == "Checkerboard"
    window.doc.resize_input(9, 8)  # resized: no longer the 8×8 checkerboard
    assert combo.currentText() == NO_PRESET
    before = window.doc.undo_stack.count()
    window.grid.apply_preset(NO_PRESET)  # nothing chosen: a message, no edit
    assert window.doc.undo_stack.count() == before


def test_matching_input_preset_on_every_channel():
    from cnn_explorer.explorer import presets

    plane = presets.input_preset_plane("Vertical edge", 10, 12)
    assert presets.matching_input_preset(np.stack([plane] * 3)) == "Vertical edge"
    mixed = np.stack([plane, plane, np.zeros_like(plane)])
    assert presets.matching_input_preset(mixed) == NO_PRESET


def test_kernel_columns_fit_the_numbers(window):
    w = np.full((1, 1, 3, 3), 0.0937, np.float32)
    w[0, 0, 1, 1] = -0.123
    window.doc.set_weights(0, w, "small weights")
    fm = window.kernel.table.fontMetrics()
    col = window.kernel.table.columnWidth(0)
    assert col >= fm.horizontalAdvance(colors.fmt(-0.123)) + 8
    assert window.kernel.model.data(window.kernel.model.index(1, 1)) == "-0.123"
