"""The layer stack and its parameter form: add, remove, reorder, enable, edit, limits."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from ui_helpers import cell_texts, map_values, settle


def test_add_remove_reorder_layers(qtbot, window):
    stack = window.layers
    stack.list.setCurrentRow(2)
    stack.add("Conv2D (3×3, 4 filters)")
    settle(qtbot, window)
    assert len(window.doc.layers) == 4
    text = stack.row_text(3)
    assert "⚠" in text and "larger" in text  # 3×3 kernel on a 2×2 map
    stack.list.setCurrentRow(3)
    qtbot.mouseClick(stack.remove_btn, Qt.MouseButton.LeftButton)
    settle(qtbot, window)
    assert len(window.doc.layers) == 3
    # Move the pool before the ReLU with the ▲ button.
    stack.list.setCurrentRow(2)
    qtbot.mouseClick(stack.up_btn, Qt.MouseButton.LeftButton)
    settle(qtbot, window)
    assert [s.kind for s in window.doc.layers] == ["conv", "maxpool", "act"]
    assert "Max pool" in stack.row_text(1) and "1×2×2" in stack.row_text(1)
    shown = [stack.row_text(i).replace("\u00a0", " ") for i in (0, 1)]  # unbroken spaces
    assert "H = W = (3 + 2·0 − 1·(2−1) − 1) / 1 + 1 = 2" in shown[1]
    assert "H = W = (4 + 2·0 − 1·(2−1) − 1) / 1 + 1 = 3" in shown[0]
    # Like for like: this conv has no bias, so the dense layer it is compared to has none.
    assert "4 parameters (no bias); a dense layer would need 144" in stack.row_text(0)
    assert cell_texts(window, 3) == [["4", "2"], ["2", "4"]]
    # Duplicate, then disable the copy.
    stack.list.setCurrentRow(0)
    qtbot.mouseClick(stack.dup_btn, Qt.MouseButton.LeftButton)
    settle(qtbot, window)
    assert [s.kind for s in window.doc.layers] == ["conv", "conv", "maxpool", "act"]
    assert "1×2×2" in stack.row_text(1) and "1×1×1" in stack.row_text(2)
    item = stack.list.item(1)
    item.setCheckState(Qt.CheckState.Unchecked)
    settle(qtbot, window)
    assert not window.doc.layers[1].enabled
    assert "(disabled)" in stack.row_text(1)
    assert cell_texts(window, 4) == [["4", "2"], ["2", "4"]]


def test_drag_reorder_through_model(qtbot, window):
    lst = window.layers.list
    model = lst.model()
    # Simulate the internal move a drag performs: row 2 to the top.
    model.moveRows(model.index(0, 0).parent(), 2, 1, model.index(0, 0).parent(), 0)
    qtbot.waitUntil(lambda: window.doc.layers[0].kind == "maxpool")
    settle(qtbot, window)
    assert [s.kind for s in window.doc.layers] == ["maxpool", "conv", "act"]


def test_invalid_layer_message_and_no_input(qtbot, window):
    stack = window.layers
    stack.list.setCurrentRow(0)
    stack.form.c_kh.setValue(5)
    stack.form.c_kw.setValue(5)
    settle(qtbot, window)
    assert "⚠" in stack.row_text(0)
    assert "5×5" in stack.row_text(0)
    assert "no input" in stack.row_text(1) and "no input" in stack.row_text(2)
    assert len(window.doc.results.maps) == 1
    # Fix it with padding "same": everything computes again.
    stack.form.c_pad_kind.setCurrentText("same")
    settle(qtbot, window)
    assert all(s.error is None for s in window.doc.statuses)
    assert len(window.doc.results.maps) == 4


def test_zero_stride_like_values_never_crash(qtbot, window):
    # Engine-rejected configs go through the same path: message, no exception.
    window.doc.update_config(0, dilation=[4, 4])
    settle(qtbot, window)
    assert window.doc.statuses[0].error
    window.doc.update_config(2, size=[9, 9])
    settle(qtbot, window)


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
def test_pool_form(qtbot, window, kind):
    stack = window.layers
    stack.list.setCurrentRow(2)
    stack.form.p_kind.setCurrentIndex(0 if kind == "maxpool" else 1)
    stack.form.p_sh.setValue(2)
    stack.form.p_sw.setValue(2)
    settle(qtbot, window)
    assert window.doc.layers[2].kind == kind
    assert window.doc.statuses[2].output_shape == (1, 1, 1)


def test_activation_form(qtbot, window):
    stack = window.layers
    stack.list.setCurrentRow(1)
    stack.form.a_fn.setCurrentIndex(stack.form.a_fn.findData("sigmoid"))
    settle(qtbot, window)
    assert window.doc.layers[1].config["fn"] == "sigmoid"
    assert abs(map_values(window, 2)[0, 2] - 0.5) < 1e-6


def test_widgets_offer_exactly_the_limits(window):
    from cnn_explorer import limits

    form, kernel, grid = window.layers.form, window.kernel, window.grid
    expected = {
        (1, limits.MAX_FILTERS): [form.c_filters],
        (1, limits.MAX_KERNEL): [form.c_kh, form.c_kw, form.p_kh, form.p_kw],
        (1, limits.MAX_STRIDE): [form.c_sh, form.c_sw, form.p_sh, form.p_sw],
        (1, limits.MAX_DILATION): [form.c_dh, form.c_dw],
        (0, limits.MAX_PADDING): [form.c_pad],
        (0, limits.MAX_KERNEL // 2): [form.p_pad],
        (1, limits.MAX_INPUT_SIDE): [grid.rows_spin, grid.cols_spin],
    }
    expected[(1, limits.MAX_KERNEL)] += [kernel.kh_spin, kernel.kw_spin]
    for (lo, hi), spins in expected.items():
        for sp in spins:
            assert (sp.minimum(), sp.maximum()) == (lo, hi), sp.toolTip()


def test_the_stack_stops_at_max_layers(qtbot, window):
    from cnn_explorer.explorer.specs import act_spec
    from cnn_explorer.limits import MAX_LAYERS

    window.doc.apply_document(window.doc.input, [act_spec("relu") for _ in range(MAX_LAYERS)])
    settle(qtbot, window)
    stack = window.layers
    assert not stack.add_btn.isEnabled() and not stack.dup_btn.isEnabled()
    stack.add("Max pool 2×2")
    assert len(window.doc.layers) == MAX_LAYERS
    assert f"at most {MAX_LAYERS} layers" in window.last_status
    stack.list.setCurrentRow(0)
    qtbot.mouseClick(stack.remove_btn, Qt.MouseButton.LeftButton)
    settle(qtbot, window)
    assert stack.add_btn.isEnabled() and stack.dup_btn.isEnabled()
