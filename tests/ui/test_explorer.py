"""End-to-end behaviour through the real widgets (offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from ui_helpers import cell_texts, click_map_cell, map_values, settle, type_into_table

from cnn_explorer.explorer import presets
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.specs import conv_spec


def test_worked_example_on_launch(window):
    assert cell_texts(window, 1) == [["4", "2", "0"], ["2", "2", "2"], ["0", "2", "4"]]
    assert cell_texts(window, 2) == [["4", "2", "0"], ["2", "2", "2"], ["0", "2", "4"]]
    assert cell_texts(window, 3) == [["4", "2"], ["2", "4"]]
    assert window.grid.model.rowCount() == 4
    assert "1×2×2" in window.layers.row_text(2)


def test_type_value_updates_maps(qtbot, window):
    with qtbot.waitSignal(window.doc.results_ready):
        type_into_table(qtbot, window.grid.table, 0, 0, "5")
    assert window.doc.input[0, 0, 0] == 5
    assert cell_texts(window, 1)[0] == ["8", "2", "0"]
    assert cell_texts(window, 3)[0] == ["8", "2"]


def test_non_number_is_rejected_with_message(qtbot, window):
    before = window.doc.input.copy()
    type_into_table(qtbot, window.grid.table, 1, 1, "abc")
    assert "not a number: the cell keeps its value" in window.last_status
    assert np.array_equal(window.doc.input, before)
    assert window.doc.undo_stack.count() == 0


def test_non_number_weight_is_rejected_and_a_comma_decimal_accepted(qtbot, window):
    before = window.doc.layers[0].weight.copy()
    type_into_table(qtbot, window.kernel.table, 0, 1, "1.5x")
    assert "not a number: the weight keeps its value" in window.last_status
    assert np.array_equal(window.doc.layers[0].weight, before)
    assert window.doc.undo_stack.count() == 0
    type_into_table(qtbot, window.kernel.table, 0, 1, "-2,5")  # a decimal comma
    assert window.doc.layers[0].weight[0, 0, 0, 1] == -2.5
    model = window.kernel.table.model()  # (QTest cannot type a Unicode minus)
    assert model.setData(model.index(1, 0), "−0,25")
    assert window.doc.layers[0].weight[0, 0, 1, 0] == -0.25
    assert window.doc.undo_stack.count() == 2


def test_kernel_preset_changes_maps(qtbot, window):
    window.kernel.preset_combo.setCurrentText("Edge [[1,-1],[1,-1]]")
    with qtbot.waitSignal(window.doc.results_ready):
        qtbot.mouseClick(window.kernel.preset_btn, Qt.MouseButton.LeftButton)
    assert np.array_equal(map_values(window, 1), [[0, 2, 0], [0, 0, 0], [0, -2, 0]])
    assert cell_texts(window, 1) == [["0", "2", "0"], ["0", "0", "0"], ["0", "-2", "0"]]
    assert np.array_equal(map_values(window, 2), [[0, 2, 0], [0, 0, 0], [0, 0, 0]])
    tile = window.maps.tile(1, 0)
    assert tile.signed is True  # diverging colours for a signed map
    assert window.maps.tile(2, 0).signed is False


def test_type_weight_in_kernel_table(qtbot, window):
    with qtbot.waitSignal(window.doc.results_ready):
        type_into_table(qtbot, window.kernel.table, 0, 1, "-1")
    assert window.doc.layers[0].weight[0, 0, 0, 1] == -1
    assert map_values(window, 1)[0, 0] == 2  # 1·1 + 1·(-1) + 1·1 + 1·1


def test_kernel_size_change_keeps_values(qtbot, window):
    window.kernel.kh_spin.setValue(3)
    settle(qtbot, window)
    w = window.doc.layers[0].weight
    assert w.shape == (1, 1, 3, 2)
    assert np.array_equal(w[0, 0, :2], np.ones((2, 2)))
    assert np.array_equal(w[0, 0, 2], [0, 0])


def test_click_cell_shows_receptive_field_and_arithmetic(qtbot, window):
    with qtbot.waitSignal(window.doc.changed):
        click_map_cell(qtbot, window, 1, 0, 0, 1)
    assert window.doc.selection == Selection(1, 0, 0, 1)
    assert "out[0,1] = 1·1 + 0·1 + 1·1 + 0·1 = 2" in window.explanation.plain_text
    lit = window.maps.highlighted(0)
    expected = np.zeros((4, 4), bool)
    expected[0:2, 1:3] = True
    assert np.array_equal(lit, expected)
    # A max-pool cell: window + winner, field through two layers.
    click_map_cell(qtbot, window, 3, 0, 0, 1)
    assert "max(2, 0, 2, 2) = 2" in window.explanation.plain_text
    lit = window.maps.highlighted(0)
    expected = np.zeros((4, 4), bool)
    expected[0:3, 1:4] = True
    assert np.array_equal(lit, expected)
    assert window.maps.highlighted(1) is not None
    assert window.maps.traced_cell(2) == (0, 1)  # the max-pool winner in the ReLU map
    assert window.maps.traced_cell(1) == (0, 1)  # ... and the conv cell that fed it
    # Activation step.
    click_map_cell(qtbot, window, 2, 0, 2, 0)
    assert "relu" in window.explanation.plain_text.lower()


def test_hover_reports_value(qtbot, window):
    window.maps.set_hover((1, 0, 0, 0))
    assert "= 4" in window.maps.hover_label.text()


def test_undo_redo(qtbot, window):
    doc = window.doc
    doc.set_cell(0, 3, 3, 7)
    settle(qtbot, window)
    assert map_values(window, 1)[2, 2] == 10
    window.undo_action.trigger()
    settle(qtbot, window)
    assert map_values(window, 1)[2, 2] == 4
    window.redo_action.trigger()
    settle(qtbot, window)
    assert map_values(window, 1)[2, 2] == 10
    window.layers.list.setCurrentRow(1)
    qtbot.mouseClick(window.layers.remove_btn, Qt.MouseButton.LeftButton)
    settle(qtbot, window)
    assert len(doc.layers) == 2
    window.undo_action.trigger()
    settle(qtbot, window)
    assert [s.kind for s in doc.layers] == ["conv", "act", "maxpool"]


def test_paint_stroke_is_one_undo_step(qtbot, window):
    grid = window.grid
    grid.brush.setValue(3)
    grid.set_paint_mode(True)
    table = grid.table
    vp = table.viewport()

    def center(r, c):
        return table.visualRect(table.model().index(r, c)).center()

    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=center(0, 0))
    qtbot.mouseMove(vp, center(0, 3))
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QMouseEvent

    for pos in (center(0, 3), center(3, 3)):
        ev = QMouseEvent(
            QEvent.Type.MouseMove,
            QPointF(pos),
            QPointF(vp.mapToGlobal(pos)),
            Qt.MouseButton.NoButton,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
        table.eventFilter(vp, ev)
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=center(3, 3))
    settle(qtbot, window)
    x = window.doc.input[0]
    assert np.all(x[0, :] == 3) and np.all(x[:, 3] == 3)
    assert window.doc.undo_stack.count() == 1
    window.undo_action.trigger()
    settle(qtbot, window)
    assert np.array_equal(window.doc.input[0], presets.WORKED_EXAMPLE)


def test_fill_clear_invert_paste_copy(qtbot, window):
    grid = window.grid
    grid.invert()
    settle(qtbot, window)
    assert np.array_equal(window.doc.input[0], 1 - presets.WORKED_EXAMPLE)
    grid.clear()
    settle(qtbot, window)
    assert not window.doc.input.any()
    grid.table.setCurrentIndex(grid.model.index(1, 1))
    grid.paste("1,2\n3\t4")
    settle(qtbot, window)
    assert np.array_equal(window.doc.input[0, 1:3, 1:3], [[1, 2], [3, 4]])
    grid.paste("1 2 x")
    assert "not a number" in window.last_status
    grid.table.selectAll()
    text = grid.copy_selection()
    assert text.splitlines()[1] == "0\t1\t2\t0"
    grid.brush.setValue(2)
    grid.fill_selection(2)
    settle(qtbot, window)
    assert np.all(window.doc.input == 2)


def test_resize_and_presets_and_rgb(qtbot, window):
    grid = window.grid
    grid.rows_spin.setValue(6)
    settle(qtbot, window)
    assert window.doc.input.shape == (1, 6, 4)
    assert np.array_equal(window.doc.input[0, :4], presets.WORKED_EXAMPLE)
    for name in presets.INPUT_PRESETS:
        grid.apply_preset(name)
        settle(qtbot, window)
        assert all(s.error is None for s in window.doc.statuses), name
    grid.channels_combo.setCurrentIndex(1)
    settle(qtbot, window)
    assert window.doc.input.shape[0] == 3
    assert window.doc.layers[0].weight.shape[1] == 3
    assert grid.channel_combo.count() == 3
    grid.channel_combo.setCurrentIndex(2)
    assert grid.model.channel == 2
    assert len(window.maps.group(0).tiles) == 3


def test_scale_modes_and_numbers_toggle(qtbot, window):
    for mode in ("Per map", "Global", "Per layer"):
        window.maps.set_scale_mode(mode)
        assert cell_texts(window, 3) == [["4", "2"], ["2", "4"]]
    window.maps.numbers_check.setChecked(False)
    assert not window.maps.tile(1, 0).numbers.isVisible()


def test_training_tab_and_open_trained_network(qtbot, window):
    from cnn_explorer.engine import layers as eng

    tab = window.show_training()
    assert window.tabs.currentWidget() is tab
    assert not window.layers_dock.isVisible()
    trained = [
        eng.Conv2D(1, 2, 3, padding=1, rng=0),
        eng.Activation("relu"),
        eng.MaxPool2D(2),
        eng.Flatten(),
        eng.Dense(2 * 4 * 4, 3, rng=0),
    ]
    image = np.random.default_rng(0).random((1, 8, 8)).astype(np.float32)
    tab.open_in_explorer.emit(trained, image)
    settle(qtbot, window)
    assert window.tabs.currentIndex() == 0 and window.layers_dock.isVisible()
    assert [s.kind for s in window.doc.layers] == ["conv", "act", "maxpool"]
    assert np.array_equal(window.doc.layers[0].weight, trained[0].params["weight"])
    assert window.doc.results.maps[-1].shape == (2, 4, 4)
    assert "left out 2 layers" in window.last_status
    window.undo_action.trigger()
    assert [s.kind for s in window.doc.layers] == ["conv", "act", "maxpool"]
    assert window.doc.input.shape == (1, 4, 4)


def test_value_edit_never_rebuilds_the_scene(qtbot, window, monkeypatch):
    calls = []
    orig = window.maps._rebuild
    monkeypatch.setattr(window.maps, "_rebuild", lambda res: (calls.append(1), orig(res)))
    qtbot.wait(250)  # the window's first layout (after its docks settle) is in place
    items_before = len(window.maps.scene.items())
    for v in (2.0, 3.0, 5.0):
        window.doc.set_cell(0, 1, 2, v)
        settle(qtbot, window)
    window.kernel.apply_preset("Edge [[1,-1],[1,-1]]")
    settle(qtbot, window)
    assert calls == []
    assert len(window.maps.scene.items()) == items_before
    window.doc.update_config(0, kernel=[3, 3])  # a shape change does rebuild
    settle(qtbot, window)
    assert calls == [1]


def test_kernel_larger_than_input_from_the_kernel_editor(qtbot, window):
    window.kernel.kh_spin.setValue(6)
    window.kernel.kw_spin.setValue(6)
    settle(qtbot, window)
    assert "6×6" in window.layers.row_text(0) and "⚠" in window.layers.row_text(0)
    assert window.doc.layers[0].weight.shape == (1, 1, 6, 6)
    assert np.array_equal(window.doc.layers[0].weight[0, 0, :2, :2], np.ones((2, 2)))
    assert window.maps.group(1) is None  # no maps past the invalid layer
    window.undo_action.trigger()
    window.undo_action.trigger()
    settle(qtbot, window)
    assert cell_texts(window, 3) == [["4", "2"], ["2", "4"]]


def test_kernel_editor_navigation_random_normalise(qtbot, window):
    window.doc.update_config(0, filters=3)
    settle(qtbot, window)
    k = window.kernel
    k.filter_spin.setValue(2)
    assert window.doc.selected_filter == 2
    k.seed_spin.setValue(7)
    k.randomise()
    w1 = window.doc.layers[0].weight.copy()
    k.randomise()
    assert np.array_equal(window.doc.layers[0].weight, w1)  # seeded
    k.normalise()
    assert (
        abs(float(window.doc.layers[0].weight[2, 0].sum()) - 1) < 1e-5
        or abs(float(np.abs(window.doc.layers[0].weight[2, 0]).sum()) - 2) < 1e-5
    )
    window.layers.form.c_bias.setChecked(True)
    k.bias_spin.setValue(0.5)
    settle(qtbot, window)
    assert window.doc.layers[0].bias[2] == 0.5
    assert window.doc.results.maps[1].shape == (3, 3, 3)


def test_kernel_navigation_while_another_layer_is_selected(qtbot, window):
    """The kernel editor shows the nearest conv while the ReLU is selected; navigating its
    filters selects that conv (it once wrote the document's selection directly)."""
    window.doc.update_config(0, filters=3)
    window.layers.list.setCurrentRow(1)
    settle(qtbot, window)
    assert window.doc.selected_layer == 1
    window.kernel.filter_spin.setValue(2)
    assert (window.doc.selected_layer, window.doc.selected_filter) == (0, 2)


def test_slow_recompute_runs_in_background_with_busy_indicator(qtbot, window):
    doc = window.doc
    doc.set_input(np.random.default_rng(0).random((1, 200, 200)).astype(np.float32))
    settle(qtbot, window)
    doc.async_cost = 0  # treat every recompute as slow
    with qtbot.waitSignal(doc.busy_changed) as started:
        window.kernel.apply_preset("Sobel x")
    assert started.args == [True]
    assert window.busy_bar.isVisible()
    with qtbot.waitSignal(doc.results_ready, timeout=20_000):
        pass
    settle(qtbot, window)
    assert not window.busy_bar.isVisible()
    assert doc.results.maps[1].shape == (1, 198, 198)


def test_weight_edit_with_a_later_conv_updates_every_map(qtbot, window):
    from cnn_explorer.explorer.specs import conv_spec

    doc = window.doc
    doc.set_input(np.tile(presets.WORKED_EXAMPLE, (2, 2))[None])
    doc.add_layer(conv_spec(1, 1, (1, 1), weight=np.full((1, 1, 1, 1), 2, np.float32)), at=3)
    settle(qtbot, window)
    window.layers.list.setCurrentRow(0)  # the kernel editor follows the selected conv
    window.kernel.apply_preset("Edge [[1,-1],[1,-1]]")
    settle(qtbot, window)
    assert doc.layers[3].weight.shape == (1, 1, 1, 1)
    fresh = [m.copy() for m in doc.results.maps]
    assert cell_texts(window, 1)[0][:3] == ["0", "2", "0"]
    assert cell_texts(window, 4)[0][0] == str(int(2 * fresh[3][0, 0, 0]))
    for m in range(1, 5):
        tile = window.maps.tile(m, 0)
        assert np.array_equal(tile.numbers._a, fresh[m][0])


def test_sections_flow_across_the_width():
    from cnn_explorer.ui.explorer.map_layout import (
        SectionSpec,
        fit_px,
        inner_width,
        map_side,
        plan_sections,
    )

    specs = [SectionSpec(8, 256, 256, 100)]
    px = fit_px(256, specs, inner_width(560, True))  # one 256-px column: shrink to two
    assert 200 < px < 256
    (plan,), right, _ = plan_sections(specs, px, 560, True)
    xs = {r.x() for r in plan.tiles}
    assert len(xs) == 2 and right <= 560 and all(r.right() <= 560 for r in plan.tiles)
    (plan,), _, _ = plan_sections([SectionSpec(3, 8, 8, 100)], 256, 2000, True)
    assert {r.width() for r in plan.tiles} == {map_side(8, 8)}  # all fit: natural size
    assert len({r.y() for r in plan.tiles}) == 1
    (plan,), _, _ = plan_sections([SectionSpec(2, 256, 256, 100)], 256, 100, True)
    assert len(plan.tiles) == 2  # never zero columns


def test_big_maps_flow_in_several_columns(qtbot, window):
    x = np.random.default_rng(0).random((1, 256, 256), dtype=np.float32)
    window.doc.apply_document(x, [conv_spec(1, 8, (3, 3), padding="same", seed=1)])
    window.doc.recompute_now()
    settle(qtbot, window)
    window.maps.relayout()
    xs = {round(t.vb.geometry().x()) for t in window.maps.group(1).tiles}
    assert len(xs) > 1


def _view_action(window, text: str):
    (view,) = [a.menu() for a in window.menuBar().actions() if a.text() == "&View"]
    (action,) = [a for a in view.actions() if a.text() == text]
    return action


def test_numbers_menu_and_check_box_stay_in_sync(qtbot, window):
    action = _view_action(window, "&Numbers in cells")
    check = window.maps.numbers_check
    assert action.isCheckable() and action.isChecked() and check.isChecked()
    action.trigger()  # View ▸ Numbers in cells (raised TypeError and did nothing)
    assert not action.isChecked() and not check.isChecked()
    assert not window.maps.tile(1, 0).numbers.isVisible()
    action.trigger()
    assert action.isChecked() and check.isChecked()
    assert window.maps.tile(1, 0).numbers.isVisible()
    check.setChecked(False)  # the check box moves the menu's check mark too
    assert not action.isChecked()
    check.setChecked(True)
    assert action.isChecked()


@pytest.mark.parametrize("text", ["1e39", "-1e39", "inf", "nan"])
def test_values_outside_float32_are_refused(qtbot, window, text):
    x0, w0 = window.doc.input.copy(), window.doc.layers[0].weight.copy()
    type_into_table(qtbot, window.grid.table, 1, 1, text)
    assert "the cell keeps its value" in window.last_status and text in window.last_status
    type_into_table(qtbot, window.kernel.table, 0, 1, text)
    assert "the weight keeps its value" in window.last_status
    window.grid.table.setCurrentIndex(window.grid.model.index(0, 0))
    window.grid.paste(f"1 {text}")
    assert "Paste rejected" in window.last_status and text in window.last_status
    assert np.array_equal(window.doc.input, x0)
    assert np.array_equal(window.doc.layers[0].weight, w0)
    assert window.doc.undo_stack.count() == 0


def test_largest_float32_is_accepted(qtbot, window):
    type_into_table(qtbot, window.grid.table, 1, 1, "3e38")
    assert window.doc.input[0, 1, 1] == np.float32(3e38)


def test_redo_and_quit_have_their_usual_keys(qtbot, window):
    from PySide6.QtGui import QKeySequence

    redo = {k.toString() for k in window.redo_action.shortcuts()}
    assert {"Ctrl+Y", "Ctrl+Shift+Z"} <= redo
    quits = [a for a in window.menuBar().actions()[0].menu().actions() if a.text() == "&Quit"]
    assert quits and quits[0].shortcut() == QKeySequence("Ctrl+Q")


def test_hover_value_follows_edits_and_clears_when_its_map_is_gone(qtbot, window):
    maps = window.maps
    maps.set_hover((3, 0, 1, 1))
    assert maps.hover_label.text().endswith("= 4")
    window.doc.set_cell(0, 3, 3, 5.0)
    settle(qtbot, window)
    assert maps.hover_label.text().endswith("= 8")  # the value now, not the stale one
    window.doc.remove_layer(2)
    settle(qtbot, window)
    assert "Hover a map" in maps.hover_label.text()


def test_every_control_of_the_explorer_panels_says_what_it_does(qtbot, window):
    from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox

    silent = []
    for i in range(len(window.doc.layers)):  # every page of the layer form
        window.layers.list.setCurrentRow(i)
        for panel in (window.grid, window.kernel, window.layers, window.maps):
            for kind in (QAbstractButton, QComboBox, QAbstractSpinBox):
                for w in panel.findChildren(kind):
                    corner = w.objectName() == "qt_tableview_cornerbutton"
                    if w.isVisible() and not corner and not w.toolTip():
                        silent.append(f"{type(w).__name__} {getattr(w, 'text', str)()!r}")
    assert not silent, silent


def test_clicking_a_cell_shows_the_filter_that_made_its_channel(qtbot, window):
    window.doc.update_config(0, filters=3)
    settle(qtbot, window)
    click_map_cell(qtbot, window, 3, 2, 0, 0)  # the pool's channel 2 comes from filter 2
    assert (window.doc.selected_layer, window.doc.selected_filter) == (0, 2)
    assert window.kernel.filter_spin.value() == 2
    click_map_cell(qtbot, window, 0, 0, 0, 0)  # an input cell leaves the kernel as it is
    assert window.doc.selected_filter == 2


def test_a_trained_network_with_batchnorm_and_dropout_opens_fully(qtbot, window):
    from cnn_explorer.engine import layers as eng

    bn = eng.BatchNorm2D(2)
    bn.buffers["running_var"][...] = [2.0, 0.5]
    trained = [
        eng.Conv2D(1, 2, 3, padding=1, rng=0),
        bn,
        eng.Activation("relu"),
        eng.Dropout(0.3),
        eng.MaxPool2D(2),
        eng.Flatten(),
        eng.Dense(2 * 4 * 4, 3, rng=0),
    ]
    image = np.random.default_rng(0).random((1, 8, 8)).astype(np.float32)
    window.open_trained(trained, image)
    settle(qtbot, window)
    assert [s.kind for s in window.doc.layers] == ["conv", "batchnorm", "act", "dropout", "maxpool"]
    from cnn_explorer.engine.network import Network

    expected = Network(trained[:5]).forward(image[None])  # inference mode
    for got, want in zip(window.doc.results.maps, expected, strict=True):
        np.testing.assert_allclose(got, want[0], rtol=1e-6, atol=1e-6)
    window.layers.list.setCurrentRow(1)
    settle(qtbot, window)
    form = window.layers.form
    assert form.pages.currentWidget() is form.note_page
    assert "inference mode" in form.note_page.text() and "<td>0.5</td>" in form.note_page.text()
    window.layers.list.setCurrentRow(3)
    settle(qtbot, window)
    assert "identity" in form.note_page.text()
