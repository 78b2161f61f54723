"""Compare mode in the window: A | B | B − A, B's editors, synced selection, swap, adopt."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QToolButton

from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.specs import act_spec

MAX = [[4, 2], [2, 4]]
AVG = [[2.5, 1.5], [1.5, 2.5]]


def enter(qtbot, window):
    window.compare.toggle_action.trigger()
    qtbot.waitUntil(lambda: window.compare.active)
    return window.compare.b, window.compare.view


def settle(qtbot, window) -> None:
    b = window.compare.b
    qtbot.waitUntil(lambda: window.doc.computed and (b is None or b.computed))


def click(qtbot, view, side: str, m: int, c: int, row: int, col: int) -> None:
    """A real mouse click on a cell of one column of the compare view."""
    tile = view.tile(side, m, c)
    assert tile is not None
    pt = tile.image.mapToScene(col + 0.5, row + 0.5)
    view.scroll.ensureVisible(int(pt.x()), int(pt.y()))
    pos = view.view.mapFromScene(pt)
    qtbot.mouseClick(view.view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos.x(), pos.y()))


def test_toggle_on_and_off(qtbot, window) -> None:
    docks = (window.layers_dock, window.kernel_dock, window.explain_dock)
    before = [d.widget() for d in docks]
    b, view = enter(qtbot, window)
    tabs = window.tabs
    assert tabs.currentWidget() is view
    assert not tabs.isTabVisible(tabs.indexOf(window.maps))
    assert window.layers_dock.widget().doc is b
    assert window.kernel_dock.widget().doc is b
    assert window.layers_dock.windowTitle().endswith("— B")
    assert "Compare mode" in view.whatsThis()  # Help ▸ What is this? knows the new panels
    assert all(b.whatsThis() for b in window.layers_dock.widget().findChildren(QToolButton))
    assert view.row_indices() == [0, 1, 2, 3]
    for m in range(4):
        a_map = window.doc.results.maps[m][0]
        assert np.array_equal(view.shown_values("a", m), a_map)
        assert np.array_equal(view.shown_values("b", m), a_map)
        assert not view.shown_values("d", m).any()
    window.compare.leave_action.trigger()
    assert not window.compare.active
    assert tabs.currentWidget() is window.maps and tabs.isTabVisible(tabs.indexOf(window.maps))
    assert tabs.indexOf(view) < 0
    assert [d.widget() for d in docks] == before
    assert window.layers_dock.windowTitle() == "Layers"
    assert not window.compare.toggle_action.isChecked()


def test_editing_b_changes_only_b_and_the_difference(qtbot, window) -> None:
    b, view = enter(qtbot, window)
    b.set_kind(2, "avgpool")  # what B's layer form does
    settle(qtbot, window)
    assert window.doc.layers[2].kind == "maxpool" and b.layers[2].kind == "avgpool"
    assert np.array_equal(view.shown_values("a", 3), MAX)
    assert np.array_equal(view.shown_values("b", 3), AVG)
    assert np.array_equal(view.shown_values("d", 3), np.subtract(AVG, MAX))
    assert not view.shown_values("d", 2).any()
    assert "Avg pool" in view.title("b", 3) and "Max pool" in view.title("a", 3)
    # one scale per layer for A and B; the difference's is centred on 0
    assert view.levels("a", 3) == view.levels("b", 3)
    lo, hi = view.levels("d", 3)
    assert lo == -hi and hi >= 1.5
    # B's edit is on B's stack, and Edit ▸ Undo undoes it
    assert window.doc.undo_stack.count() == 0 and b.undo_stack.count() == 1
    window.undo_action.trigger()
    settle(qtbot, window)
    assert b.layers[2].kind == "maxpool"
    assert not view.shown_values("d", 3).any()


def test_selection_is_synced(qtbot, window) -> None:
    b, view = enter(qtbot, window)
    b.update_config(0, stride=[1, 1], padding=1)  # B: 5×5 conv → different shapes below
    settle(qtbot, window)
    click(qtbot, view, "d", 0, 0, 1, 2)  # a cell of the input's difference
    sel = Selection(0, 0, 1, 2)
    assert window.doc.selection == sel and b.selection == sel
    for side in "abd":
        assert view.selected_cell(side, 0) == (1, 2)
    b.update_config(0, padding=0)  # back to A's shapes
    settle(qtbot, window)
    click(qtbot, view, "a", 3, 0, 0, 1)
    sel = Selection(3, 0, 0, 1)
    assert window.doc.selection == sel and b.selection == sel
    for side in "abd":
        assert view.selected_cell(side, 3) == (0, 1)
        lit = view.highlighted(side, 0)
        assert lit is not None and lit[:3, 1:].all() and not lit[3].any()
    assert "max(" in window.explanation.plain_text


def test_input_edits_reach_both(qtbot, window) -> None:
    b, view = enter(qtbot, window)
    b.set_kind(2, "avgpool")
    window.doc.set_cell(0, 0, 3, 4.0)  # what the input grid does
    settle(qtbot, window)
    assert b.input[0, 0, 3] == 4.0
    a3, b3 = window.doc.results.maps[3][0], b.results.maps[3][0]
    assert np.array_equal(view.shown_values("d", 3), b3 - a3)
    window.doc.resize_input(5, 5)
    settle(qtbot, window)
    assert b.input.shape == window.doc.input.shape == (1, 5, 5)
    assert view.shown_values("b", 3).shape == (3, 3)


def test_layers_without_a_counterpart_are_named(qtbot, window) -> None:
    b, view = enter(qtbot, window)
    b.add_layer(act_spec("sigmoid"), 3)
    settle(qtbot, window)
    assert view.row_indices() == [0, 1, 2, 3, 4]
    assert view.note(4).startswith("Layer 4: only in B")
    assert view.tile("d", 4) is None and view.tile("a", 4) is None
    assert view.tile("b", 4) is not None
    b.update_config(0, kernel=[3, 3])
    settle(qtbot, window)
    assert "different shapes" in view.note(1) and view.tile("d", 1) is None


def test_swap(qtbot, window) -> None:
    b, view = enter(qtbot, window)
    b.set_kind(2, "avgpool")
    settle(qtbot, window)
    window.doc.select_cell(Selection(3, 0, 1, 1))
    b.select_cell(Selection(3, 0, 1, 1))
    window.compare.swap_action.trigger()
    settle(qtbot, window)
    assert window.compare.active
    assert window.doc.selection == b.selection == Selection(3, 0, 1, 1)
    assert window.doc.layers[2].kind == "avgpool" and b.layers[2].kind == "maxpool"
    assert np.array_equal(view.shown_values("a", 3), AVG)
    assert np.array_equal(view.shown_values("d", 3), np.subtract(MAX, AVG))
    assert window.doc.undo_stack.count() == 1


def test_adopt_is_one_undo_step(qtbot, window) -> None:
    b, _view = enter(qtbot, window)
    b.set_kind(2, "avgpool")
    b.set_weight(0, 0, 0, 0, 0, 2.0)
    settle(qtbot, window)
    before = window.doc.undo_stack.count()
    window.compare.adopt_action.trigger()
    settle(qtbot, window)
    assert not window.compare.active and window.tabs.currentWidget() is window.maps
    assert window.doc.undo_stack.count() == before + 1
    assert window.doc.layers[2].kind == "avgpool"
    assert window.doc.layers[0].weight[0, 0, 0, 0] == 2.0
    window.undo_action.trigger()
    settle(qtbot, window)
    assert window.doc.layers[2].kind == "maxpool"
    assert window.doc.layers[0].weight[0, 0, 0, 0] == 1.0
    assert np.array_equal(window.doc.results.maps[3][0], MAX)


def test_leaving_discards_b(qtbot, window) -> None:
    b, _view = enter(qtbot, window)
    b.set_kind(2, "avgpool")
    settle(qtbot, window)
    window.compare.toggle_action.trigger()  # leave (no question asked)
    assert not window.compare.active
    assert window.doc.layers[2].kind == "maxpool" and window.doc.undo_stack.count() == 0
    b, view = enter(qtbot, window)
    assert b.layers[2].kind == "maxpool" and b.undo_stack.count() == 0
    assert not view.shown_values("d", 3).any()


def test_rgb_input_and_a_new_document(qtbot, window) -> None:
    b, view = enter(qtbot, window)
    b.set_kind(2, "avgpool")
    window.doc.set_channels(3)  # the input's channel combo: B's conv follows too
    settle(qtbot, window)
    assert b.layers[0].weight.shape[1] == 3 and b.layers[2].kind == "avgpool"
    assert view.row_indices() == [0, 1, 2, 3] and view.tile("d", 3) is not None
    assert window.compare.active
    window.new_worked_example()  # File ▸ New: B belonged to the old document
    settle(qtbot, window)
    assert not window.compare.active and window.tabs.currentWidget() is window.maps
    assert window.layers_dock.widget() is window.layers


def test_zoom_reaches_the_compare_view(qtbot, window) -> None:
    _b, view = enter(qtbot, window)
    window.teaching.zoom.set_factor(2.0)
    assert view.zoom == 2.0
    r = view.tile("a", 3).vb.sceneBoundingRect()
    on_screen = view.view.mapFromScene(r).boundingRect().width()
    assert on_screen == pytest.approx(2 * r.width(), rel=0.05)
    click(qtbot, view, "b", 3, 0, 1, 1)  # clicks still land on the right cell
    assert window.compare.b.selection == Selection(3, 0, 1, 1)
    window.teaching.zoom.set_factor(1.0)


def test_the_editor_docks_stay_in_compare_mode(qtbot, window) -> None:
    """B's editors are in the docks, and the docks come back after a visit to Training."""
    _b, view = enter(qtbot, window)
    docks = (window.grid_dock, window.layers_dock, window.kernel_dock, window.explain_dock)
    assert all(d.isVisible() for d in docks)
    window.tabs.setCurrentIndex(1)  # Training
    assert not window.layers_dock.isVisible()
    window.tabs.setCurrentWidget(view)
    assert all(d.isVisible() for d in docks)
    window.compare.leave_action.trigger()
    assert all(d.isVisible() for d in docks)


@pytest.mark.parametrize("shape", [(1, 4, 4), (1, 1, 40), (8, 28, 28), (16, 7, 7), (64, 14, 14)])
@pytest.mark.parametrize("cw", [90.0, 140.0, 300.0])
def test_tiles_fit_their_column(shape, cw) -> None:
    from cnn_explorer.ui.explorer.compare_layout import grid_tiles

    rects, height = grid_tiles(shape, cw)
    assert len(rects) == shape[0]
    assert all(r.left() >= 0 and r.right() <= cw + 0.5 and r.width() >= 4 for r in rects)
    assert max(r.bottom() for r in rects) <= height + 0.5
    for i, r in enumerate(rects):
        assert not any(r.intersects(q) for q in rects[i + 1 :])


def test_compare_mode_fits_a_laptop_screen(qtbot, window) -> None:
    enter(qtbot, window)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 720


def test_compare_mode_is_refused_without_room(qtbot, window, monkeypatch) -> None:
    from cnn_explorer.explorer import compare

    monkeypatch.setattr(compare, "MAX_DOCUMENT_BYTES", 100)  # a worked example is ~170 B ×3
    window.compare.toggle_action.trigger()
    assert not window.compare.active and not window.compare.toggle_action.isChecked()
    assert window.tabs.currentWidget() is window.maps
    assert window.last_status.startswith("Not done: comparing needs")
