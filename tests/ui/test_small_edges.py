"""Small edges a new user hits: resizing the grid with its two spin boxes is one undo step,
an invalid layer's message wraps inside the map area at 1280×800 instead of running off
its right edge, and a layer row's size formula wraps between whole expressions."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QFontMetricsF, QTextLayout, QTextOption
from PySide6.QtWidgets import QApplication, QGraphicsTextItem
from ui_helpers import settle

from cnn_explorer.explorer.specs import conv_spec


def test_rows_then_columns_is_one_undo_step(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    doc, grid = window.doc, window.grid
    before, x0 = doc.undo_stack.count(), doc.input.copy()
    grid.rows_spin.setValue(5)  # a spin box stepped…
    grid.rows_spin.setValue(6)
    grid.cols_spin.setValue(7)  # …then the other one
    settle(qtbot, window)
    assert doc.input.shape == (1, 6, 7)
    assert doc.undo_stack.count() == before + 1
    assert window.undo_action.text().endswith("Resize input to 6×7")
    np.testing.assert_array_equal(doc.input[:, :4, :4], x0)
    window.undo_action.trigger()
    settle(qtbot, window)
    np.testing.assert_array_equal(doc.input, x0)
    assert (grid.rows_spin.value(), grid.cols_spin.value()) == (4, 4)
    window.redo_action.trigger()
    settle(qtbot, window)
    assert doc.input.shape == (1, 6, 7) and grid.cols_spin.value() == 7


def test_a_resize_back_to_the_start_leaves_no_step_and_other_edits_split_resizes(  # type: ignore[no-untyped-def]
    qtbot, window
) -> None:
    doc, grid = window.doc, window.grid
    before = doc.undo_stack.count()
    grid.rows_spin.setValue(6)
    grid.rows_spin.setValue(4)
    settle(qtbot, window)
    assert doc.undo_stack.count() == before and doc.input.shape == (1, 4, 4)
    grid.rows_spin.setValue(5)
    doc.set_cell(0, 0, 0, 7.0)  # another edit in between: the next resize is its own step
    grid.cols_spin.setValue(6)
    settle(qtbot, window)
    assert doc.undo_stack.count() == before + 3 and doc.input.shape == (1, 5, 6)


def test_invalid_layer_message_wraps_inside_the_map_area(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.resize(1280, 800)
    window.doc.add_layer(conv_spec(1, 2, (9, 9), seed=2))  # larger than its 3×3 input
    settle(qtbot, window)
    for _ in range(3):
        QApplication.processEvents()
    message = next(s.error for s in window.doc.statuses if s.error and s.error != "no input")
    notes = [
        item
        for item in window.maps.scene.items()
        if isinstance(item, QGraphicsTextItem) and message in item.toPlainText()
    ]
    assert len(notes) == 1, "the invalid layer's message is shown once, whole"
    visible = window.maps.scroll.viewport().width()
    rect = notes[0].sceneBoundingRect()
    assert rect.right() <= visible, f"message runs to {rect.right()}, view is {visible} wide"
    assert rect.height() > QFontMetricsF(notes[0].font()).height() * 1.5, "it wraps"
    assert window.maps.scroll.horizontalScrollBar().maximum() == 0, "no sideways scrolling"


def _lines(text: str, font, width: float) -> list[str]:  # type: ignore[no-untyped-def]
    """How Qt word-wraps ``text`` at ``width`` pixels (as the list draws its rows)."""
    layout = QTextLayout(text, font)
    option = QTextOption()
    option.setWrapMode(QTextOption.WrapMode.WordWrap)
    layout.setTextOption(option)
    layout.beginLayout()
    out = []
    while (line := layout.createLine()).isValid():
        line.setLineWidth(width)
        out.append(text[line.textStart() : line.textStart() + line.textLength()])
    layout.endLayout()
    return out


def test_size_formula_wraps_between_whole_expressions(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.resize(1280, 800)
    doc, stack = window.doc, window.layers
    doc.resize_input(7, 12)
    doc.update_config(0, kernel=[3, 5], stride=[1, 2])
    settle(qtbot, window)
    formula = stack.row_text(0).split("\n")[1].strip()
    assert formula.replace("\u00a0", " ").startswith("H = (7 + 2·0 − 1·(3−1) − 1) / 1 + 1 = 5;")
    font = stack.list.font()
    full = QFontMetricsF(font).horizontalAdvance(formula)
    dock = stack.list.viewport().width()
    assert full > dock - 40, "at 1280×800 the row is too narrow for both: it must wrap"
    for width in (dock - 40, dock, 0.75 * full):
        lines = [line.strip() for line in _lines(formula, font, width)]
        assert len(lines) == 2, lines
        assert lines[0].startswith("H") and lines[0].endswith(";"), lines
        assert lines[1].replace("\u00a0", " ").startswith("W = ⌊(12 + "), lines
