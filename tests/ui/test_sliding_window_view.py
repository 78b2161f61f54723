"""The sliding-window panel through its controls: play, pause, step, back, click to jump,
arrow keys (the document's selection follows), edits rebuild it, closing stops it."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt
from ui_helpers import settle

from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.specs import act_spec, conv_spec, pool_spec


def _open(qtbot, window):  # type: ignore[no-untyped-def]
    window.show_sliding_window()
    view = window.sliding
    qtbot.waitUntil(lambda: view.position is not None)
    return view


def _selected(window) -> tuple[int, int, int, int] | None:  # type: ignore[no-untyped-def]
    sel = window.doc.selection
    return None if sel is None else (sel.map_index, sel.channel, sel.row, sel.col)


def test_step_forward_and_back_through_taps_and_cells(qtbot, window) -> None:
    view = _open(qtbot, window)
    assert view.position == (0, 0, (0, 0), 0)
    assert "out[0,0,0]" in view.sum_text
    for _ in range(4):  # four taps of the 2×2 kernel: 1, 2, 3, 4
        assert view.step_forward()
    assert view.position == (0, 0, (0, 0), 4)  # the result step of the first cell
    assert "out[0,0,0] = 4" in view.sum_text
    assert view.step_forward()  # on to the next cell, through the document
    assert view.position == (0, 0, (0, 1), 0)
    assert _selected(window) == (1, 0, 0, 1)
    assert "out[0,1]" in window.explanation.plain_text
    assert view.step_back()
    assert view.position == (0, 0, (0, 0), 4) and _selected(window) == (1, 0, 0, 0)
    view.set_per_cell(True)
    assert view.step_forward() and view.position == (0, 0, (0, 1), 4)
    while view.step_forward():
        pass
    assert view.position == (0, 0, (2, 2), 4)


def test_play_runs_the_timer_and_pause_stops_it(qtbot, window) -> None:
    view = _open(qtbot, window)
    view.set_speed(30)
    qtbot.mouseClick(view.play_btn, Qt.MouseButton.LeftButton)
    assert view.playing
    qtbot.waitUntil(lambda: view.position[2] != (0, 0), timeout=5000)
    qtbot.mouseClick(view.play_btn, Qt.MouseButton.LeftButton)
    assert not view.playing
    here = view.position
    qtbot.wait(100)
    assert view.position == here
    view.set_per_cell(True)
    view.play()  # plays to the last cell, then stops by itself
    qtbot.waitUntil(lambda: not view.playing, timeout=5000)
    assert view.position[2] == (2, 2)


def test_click_an_output_cell_jumps_there(qtbot, window) -> None:
    view = _open(qtbot, window)
    out = view.items.output
    assert out is not None
    centre = out.cell_rect(2, 1).center()
    pos = view.canvas.mapFromScene(centre)
    qtbot.mouseClick(view.canvas.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos))
    assert view.position == (0, 0, (2, 1), 0)
    assert _selected(window) == (1, 0, 2, 1)


def test_arrow_keys_move_the_cell_and_the_selection_follows(qtbot, window) -> None:
    view = _open(qtbot, window)
    view.canvas.setFocus()
    qtbot.keyClick(view.canvas, Qt.Key.Key_Right)
    qtbot.keyClick(view.canvas, Qt.Key.Key_Down)
    assert view.position[2] == (1, 1)
    assert _selected(window) == (1, 0, 1, 1)
    qtbot.keyClick(view.canvas, Qt.Key.Key_Up)
    qtbot.keyClick(view.canvas, Qt.Key.Key_Up)  # clamped at the top row
    assert _selected(window) == (1, 0, 0, 1)
    # a click in the feature maps moves the animation too (it follows the document)
    window.doc.select_cell(Selection(1, 0, 2, 0))
    assert view.position[2] == (2, 0)


def test_pool_layer_and_winner(qtbot, window) -> None:
    view = _open(qtbot, window)
    window.doc.select_cell(Selection(3, 0, 0, 1))  # the max pool's output
    assert view.position[0] == 2
    view.set_per_cell(True)
    view.jump_to(0, 1)
    assert "out[0,0,1] = 2" in view.sum_text
    assert "largest so far" in view.sum_text


def test_an_edit_rebuilds_from_the_new_results(qtbot, window) -> None:
    view = _open(qtbot, window)
    view.set_per_cell(True)
    view.jump_to(0, 0)
    assert "out[0,0,0] = 4" in view.sum_text
    window.doc.set_weight(0, 0, 0, 0, 0, 3.0)
    assert view.message == "Recomputing…"  # never the old numbers
    settle(qtbot, window)
    qtbot.waitUntil(lambda: view.position is not None)
    assert "out[0,0,0] = 6" in view.sum_text
    window.doc.update_config(0, stride=[2, 2], padding=1, padding_mode="reflect")
    settle(qtbot, window)
    qtbot.waitUntil(lambda: view.position is not None)
    assert view.sw is not None and view.sw.shape == (3, 3)
    assert view.sw.frame.mode == "reflect"


def test_multi_channel_flip_dilation_every_padding_mode(qtbot, window) -> None:
    x = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    layers = [
        conv_spec(3, 2, (3, 3), stride=(2, 2), padding=2, dilation=(2, 2), flip=True, seed=1),
        act_spec("relu"),
        pool_spec("avgpool", 3, 2, 1),
    ]
    window.doc.apply_document(x, layers)
    settle(qtbot, window)
    view = _open(qtbot, window)
    for mode in ("zeros", "reflect", "replicate", "circular"):
        window.doc.update_config(0, padding_mode=mode)
        settle(qtbot, window)
        qtbot.waitUntil(lambda: view.position is not None)
        view.set_per_cell(False)
        window.doc.select_cell(Selection(1, 1, 0, 0))
        window.doc.select_cell(Selection(1, 1, 1, 2))
        assert view.position == (0, 1, (1, 2), 0)
        for _ in range(12):  # into the second input channel
            view.step_forward()
        assert view.in_channel == 1
        text = view.sum_text
        assert "over 3 input channels" in text and "ch 0:" in text and "✓" in text
        view.set_per_cell(True)
        assert view.sw is not None
        assert view.sw.animation().running(view.sw.step) == window.doc.results.maps[1][1, 1, 2]
    window.doc.select_cell(Selection(3, 1, 1, 1))  # the average pool
    assert view.position is not None and view.position[0] == 2


def test_closing_mid_play_stops_the_timer(qtbot, window) -> None:
    view = _open(qtbot, window)
    view.play()
    assert view.playing
    window.sliding_dock.close()
    assert not view.playing
    window.sliding_dock.show()
    view.play()
    assert view.playing
    window.doc.undo_stack.setClean()
    window.close()
    assert not view.playing


def test_no_spatial_layer_says_so(qtbot, window) -> None:
    window.doc.apply_document(np.zeros((1, 4, 4), np.float32), [act_spec("relu")])
    settle(qtbot, window)
    window.show_sliding_window()
    qtbot.waitUntil(lambda: "No convolution or pooling layer" in view_message(window))
    assert not window.sliding.step_forward()


def view_message(window) -> str:  # type: ignore[no-untyped-def]
    return str(window.sliding.message)


def test_the_layer_follows_the_layer_stack_the_combo_and_an_activation_cell(qtbot, window) -> None:
    view = _open(qtbot, window)
    window.doc.select_layer(2)  # the max pool, chosen in the Layers dock
    assert view.position is not None and view.position[0] == 2
    assert view.layer_combo.currentData() == 2
    combo = view.layer_combo
    combo.setCurrentIndex(combo.findData(0))
    combo.activated.emit(combo.currentIndex())  # the conv, chosen in the panel
    assert view.position is not None and view.position[0] == 0
    assert _selected(window) == (1, 0, 0, 0) and window.doc.selected_layer == 0
    window.doc.select_cell(Selection(2, 0, 1, 2))  # a ReLU cell: its conv is animated
    assert view.position is not None and view.position[:3] == (0, 0, (1, 2))


def test_the_window_with_the_animation_still_fits_1280x720(qtbot, window) -> None:
    view = _open(qtbot, window)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 720, hint
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == (1280, 720))
    assert view.isVisible() and view.canvas.height() > 80
    assert view.step_btn.isVisible() and not view.step_btn.visibleRegion().isEmpty()


def test_animate_button_opens_it_and_the_training_tab_hides_it(qtbot, window) -> None:
    window.doc.select_cell(Selection(1, 0, 2, 1))
    qtbot.mouseClick(window.animate_button, Qt.MouseButton.LeftButton)
    view = window.sliding
    qtbot.waitUntil(lambda: view.position is not None)
    assert window.sliding_dock.isVisible() and view.position[:3] == (0, 0, (2, 1))
    view.play()
    window.tabs.setCurrentIndex(1)
    assert not window.sliding_dock.isVisible() and not view.playing
    window.tabs.setCurrentIndex(0)
    assert window.sliding_dock.isVisible()
