"""The Lesson dock, the Help menu, View ▸ Zoom and copying the explanation, through the
real window: menus, buttons, clicks on maps, keys."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QWhatsThis,
)
from ui_helpers import click_map_cell, settle

from cnn_explorer.explorer import lesson
from cnn_explorer.ui.common.messages import RecordingReporter


def menu_action(window, menu: str, text: str) -> QAction:
    for top in window.menuBar().actions():
        if top.text().replace("&", "") == menu:
            for a in top.menu().actions():
                if a.text().replace("&", "") == text:
                    return a
                if a.menu() is not None:
                    for b in a.menu().actions():
                        if b.text().replace("&", "") == text:
                            return b
    raise AssertionError(f"no {menu} ▸ {text}")


def open_lesson(qtbot, window):
    menu_action(window, "Help", "Lesson").trigger()
    panel = window.teaching.lesson
    assert window.teaching.dock.isVisible()
    return panel


def go(qtbot, window, key: str):
    window.teaching.open_lesson(lesson.step_index(key))
    settle(qtbot, window)
    panel = window.teaching.lesson
    assert panel.step.key == key
    return panel


def test_help_lesson_sets_up_steps_and_answers_clicks(qtbot, window):
    panel = open_lesson(qtbot, window)
    qtbot.mouseClick(panel.again_btn, Qt.MouseButton.LeftButton)  # set up step 1
    settle(qtbot, window)
    assert panel.step.key == "worked-example" and panel.feedback.ok is None
    click_map_cell(qtbot, window, 1, 0, 1, 1)
    settle(qtbot, window)
    assert panel.feedback.ok is False and "top-left" in panel.answer.text()
    click_map_cell(qtbot, window, 1, 0, 0, 0)
    settle(qtbot, window)
    assert panel.feedback.ok is True and panel.answer.text().startswith("✓ Right")
    # Next: ReLU. Untick layer 2 in the Layers panel.
    qtbot.mouseClick(panel.next_btn, Qt.MouseButton.LeftButton)
    settle(qtbot, window)
    assert panel.step.key == "relu" and panel.feedback.ok is None
    window.layers.list.item(1).setCheckState(Qt.CheckState.Unchecked)
    settle(qtbot, window)
    assert panel.feedback.ok is True and "[[4, 2], [2, 4]]" in panel.answer.text()
    qtbot.mouseClick(panel.back_btn, Qt.MouseButton.LeftButton)
    settle(qtbot, window)
    assert panel.step.key == "worked-example" and window.doc.layers[1].enabled


def test_edge_kernel_step_through_the_kernel_panel(qtbot, window):
    panel = go(qtbot, window, "edge-kernel")
    kernel = window.kernel
    kernel.preset_combo.setCurrentText("Edge [[1,-1],[1,-1]]")
    qtbot.mouseClick(kernel.preset_btn, Qt.MouseButton.LeftButton)
    settle(qtbot, window)
    click_map_cell(qtbot, window, 1, 0, 0, 1)
    settle(qtbot, window)
    assert panel.feedback.ok is False and "positive" in panel.answer.text()
    click_map_cell(qtbot, window, 1, 0, 2, 1)
    settle(qtbot, window)
    assert panel.feedback.ok is True and "−2" in panel.answer.text()


def test_output_size_step_is_live_as_the_stride_changes(qtbot, window):
    panel = go(qtbot, window, "output-size")
    assert panel.live.isVisible()
    assert "⌊(4 + 2·0 − 1·(2−1) − 1) / 1⌋ + 1 = 3" in panel.live.text()
    window.layers.list.setCurrentRow(0)
    window.layers.form.c_sh.setValue(2)
    window.layers.form.c_sw.setValue(2)
    settle(qtbot, window)
    assert "⌊(4 + 2·0 − 1·(2−1) − 1) / 2⌋ + 1 = 2" in panel.live.text()
    assert panel.feedback.ok is True


@pytest.mark.parametrize(
    ("key", "edits", "verdict"),
    [
        ("max-pool", [("select", (3, 0, 1, 1))], "[[4, 2], [2, 4]]"),
        ("weight-sharing", [("select", (1, 0, 2, 2))], "weight sharing"),
        ("pool-optional", [("enabled", (2, False))], "[[4, 2, 0], [2, 2, 2], [0, 2, 4]]"),
        ("strided-conv", [("enabled", (2, False)), ("stride", 2)], "[[4, 0], [0, 4]]"),
    ],
)
def test_steps_check_what_the_learner_does(qtbot, window, key, edits, verdict):
    panel = go(qtbot, window, key)
    for what, arg in edits:
        if what == "select":
            click_map_cell(qtbot, window, *arg)
        elif what == "enabled":
            window.layers.list.item(arg[0]).setCheckState(Qt.CheckState.Unchecked)
        else:
            window.doc.update_config(0, stride=[arg, arg])
        settle(qtbot, window)
    assert panel.feedback.ok is True and verdict in panel.answer.text()


def test_lesson_asks_before_replacing_the_learners_work(qtbot, window):
    window.doc.set_cell(0, 0, 0, 7.0)
    settle(qtbot, window)
    rec = window.reporter
    assert isinstance(rec, RecordingReporter)
    rec.save_answer = "cancel"
    panel = open_lesson(qtbot, window)
    assert not panel.go(2)
    assert window.doc.input[0, 0, 0] == 7 and len(rec.questions) == 1
    assert "lesson step" in rec.questions[0] and "Undo" in rec.questions[0]
    rec.save_answer = "discard"
    assert panel.go(2)
    settle(qtbot, window)
    assert window.doc.input[0, 0, 0] == 1
    window.doc.update_config(0, stride=[2, 2])  # the learner tries something
    settle(qtbot, window)
    assert panel.go(3)  # the lesson's own document: no question
    assert len(rec.questions) == 2 and window.doc.layers[0].config["stride"] == [1, 1]
    count = window.doc.undo_stack.count()
    assert panel.go(4)  # already set up exactly: no undo step at all
    assert window.doc.undo_stack.count() == count
    for _ in range(3):
        window.doc.undo_stack.undo()
    settle(qtbot, window)
    assert window.doc.input[0, 0, 0] == 7  # the learner's work came back


def test_progress_is_remembered(qtbot, window):
    panel = go(qtbot, window, "max-pool")
    click_map_cell(qtbot, window, 3, 0, 0, 0)
    settle(qtbot, window)
    assert panel.feedback.ok is True
    from cnn_explorer.ui.main_window import MainWindow

    again = MainWindow(restore_state=True)
    qtbot.addWidget(again)
    other = again.teaching.lesson
    assert other.step.key == "max-pool" and "max-pool" in other.done
    assert other.step_combo.currentText().endswith("✓")
    assert other.pages.currentIndex() == 1  # a returning learner sees their step
    again.doc.undo_stack.setClean()
    again.close()


def test_offered_at_first_launch_without_a_dialog(qtbot):
    from cnn_explorer.ui.main_window import MainWindow

    first = MainWindow(restore_state=True)
    first.reporter = RecordingReporter(first)
    qtbot.addWidget(first)
    first.show()
    qtbot.waitExposed(first)
    assert first.teaching.dock.isVisible() and first.teaching.lesson.pages.currentIndex() == 0
    assert QApplication.activeModalWidget() is None
    assert QSettings().value("lesson/offered") is not None
    qtbot.mouseClick(first.teaching.lesson.later_btn, Qt.MouseButton.LeftButton)
    assert not first.teaching.dock.isVisible()
    first.teaching.dock.show()
    qtbot.mouseClick(first.teaching.lesson.start_btn, Qt.MouseButton.LeftButton)
    assert first.teaching.lesson.pages.currentIndex() == 1
    assert first.teaching.lesson.step.key == "worked-example"
    # The app opened on the worked example: starting adds no undo step, no unsaved work.
    assert first.doc.undo_stack.count() == 0 and first.doc.undo_stack.isClean()
    first.teaching.dock.hide()
    first.close()
    second = MainWindow(restore_state=True)
    qtbot.addWidget(second)
    second.show()
    assert not second.teaching.dock.isVisible()
    second.close()


def test_keyboard_shortcuts_list_matches_the_actions(qtbot, window):
    menu_action(window, "Help", "Keyboard shortcuts").trigger()
    dialog = window.teaching.shortcuts_dialog
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    shown = dialog.rows()
    keyed = [a for a in window.findChildren(QAction) if a.shortcuts() and a.text()]
    assert len(keyed) >= 10
    for a in keyed:
        keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts())
        assert any(keys == k and w.endswith(a.text().replace("&", "")) for w, k in shown), keys
    assert ("View ▸ Zoom ▸ Zoom in", "Ctrl+=, Ctrl++") in shown
    assert ("Input grid: fit", "Ctrl+0") in shown
    assert any(w == "Edit ▸ Undo" for w, _ in shown)


def test_every_explorer_control_has_whats_this(qtbot, window):
    window.teaching.open_lesson()
    silent = []
    for i in range(len(window.doc.layers)):  # every page of the layer form
        window.layers.list.setCurrentRow(i)
        panels = (window.grid, window.kernel, window.layers, window.maps, window.explanation)
        for panel in (*panels, window.teaching.lesson):
            assert panel.whatsThis()
            for kind in (QAbstractButton, QComboBox, QAbstractSpinBox):
                for w in panel.findChildren(kind):
                    corner = w.objectName() == "qt_tableview_cornerbutton"
                    if w.isVisible() and not corner and not w.whatsThis():
                        silent.append(f"{type(w).__name__} {getattr(w, 'text', str)()!r}")
    assert not silent, silent
    menu_action(window, "Help", "What is this?").trigger()
    assert QWhatsThis.inWhatsThisMode()
    QWhatsThis.leaveWhatsThisMode()


def test_zoom_scales_fonts_cells_and_maps_and_persists(qtbot, window):
    base = window.font().pointSizeF()
    label_before = window.teaching.lesson.title.font().pointSizeF()
    cell, grid_pt = window.grid.cell_px, window.grid.table.font().pointSizeF()
    window.grid.fitting = False
    menu_action(window, "View", "Zoom in").trigger()
    menu_action(window, "View", "Zoom in").trigger()
    assert window.teaching.zoom.factor == 1.25
    assert window.font().pointSizeF() == pytest.approx(base * 1.25)
    assert window.teaching.lesson.title.font().pointSizeF() > label_before
    assert window.maps.zoom == 1.25 and window.grid.cell_px > cell
    assert window.grid.table.font().pointSizeF() > grid_pt  # numbers in the cells too
    h0 = window.maps.view.height()  # the maps flow in the full width, drawn larger
    assert float(QSettings().value("view/zoom")) == 1.25
    menu_action(window, "View", "Reset zoom").trigger()
    assert window.font().pointSizeF() == pytest.approx(base)
    assert window.maps.view.height() < h0
    menu_action(window, "View", "Zoom out").trigger()
    from cnn_explorer.ui.main_window import MainWindow

    again = MainWindow(restore_state=True)
    qtbot.addWidget(again)
    assert again.teaching.zoom.factor == 0.9
    assert again.font().pointSizeF() == pytest.approx(base * 0.9)
    again.close()


def test_grid_keys_zoom_the_grid_and_window_keys_zoom_the_window(qtbot, window):
    table = window.grid.table
    table.setFocus()
    qtbot.waitUntil(table.hasFocus)
    cell = window.grid.cell_px
    qtbot.keyClick(table, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert window.grid.cell_px > cell and window.teaching.zoom.factor == 1.0
    window.maps.view.setFocus()
    qtbot.waitUntil(window.maps.view.hasFocus)
    qtbot.keyClick(window.maps.view, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert window.teaching.zoom.factor == 1.1
    qtbot.keyClick(window.maps.view, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert window.teaching.zoom.factor == 1.0


def test_copy_explanation_as_plain_text_and_latex(qtbot, window):
    window.doc.set_kernel(0, 0, 0, np.array([[1, -1], [1, -1]], np.float32), "Edge")
    settle(qtbot, window)
    click_map_cell(qtbot, window, 1, 0, 2, 1)
    settle(qtbot, window)
    panel = window.explanation
    qtbot.mouseClick(panel.copy_buttons["plain"], Qt.MouseButton.LeftButton)
    plain = QGuiApplication.clipboard().text()
    assert plain.startswith("layer 1 Conv2D")
    assert "out[2,1] = x[2,1]·w[0,0] + x[2,2]·w[0,1] + x[3,1]·w[1,0] + x[3,2]·w[1,1]" in plain
    assert "= 0·1 + 1·(−1) + 0·1 + 1·(−1) = −2" in plain
    assert "-" not in plain  # one minus sign: the true minus
    qtbot.mouseClick(panel.copy_buttons["latex"], Qt.MouseButton.LeftButton)
    tex = QGuiApplication.clipboard().text()
    assert tex.startswith("\\begin{align*}") and tex.endswith("\\end{align*}")
    assert r"x_{2,1} \cdot w_{0,0} + x_{2,2} \cdot w_{0,1}" in tex
    assert r"1 \cdot (-1)" in tex and "−" not in tex
    window.doc.select_cell(None)
    assert not panel.copy_buttons["plain"].isEnabled()


def test_window_still_fits_a_small_screen_with_the_lesson_open(qtbot, window):
    for i in range(len(lesson.STEPS)):
        window.teaching.open_lesson(i)
        settle(qtbot, window)
        hint = window.minimumSizeHint()
        assert hint.width() <= 1280 and hint.height() <= 720, (i, hint)
    window.resize(1280, 800)
    QApplication.processEvents()
    assert window.size().width() == 1280 and window.teaching.dock.isVisible()


def test_the_lesson_steps_aside_for_the_training_tab(qtbot, window):
    window.teaching.open_lesson()
    window.tabs.setCurrentIndex(1)
    assert not window.teaching.dock.isVisible()
    window.tabs.setCurrentIndex(0)
    assert window.teaching.dock.isVisible()


def test_layer_rows_count_weight_sharing_like_for_like(qtbot, window):
    assert "4 parameters (no bias); a dense layer would need 144" in window.layers.row_text(0)
    window.doc.update_config(0, bias=True, filters=2)
    settle(qtbot, window)
    text = window.layers.row_text(0).replace("\u00a0", " ")
    # 2 filters of 2×2 on 4×4 → 2×3×3: dense 16·18 weights + 18 biases.
    assert (
        "10 parameters (8 weights + 2 biases); a dense layer would need 306 (288 + 18 biases)"
        in text
    )
