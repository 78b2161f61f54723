"""The guided lesson as plain data: every step's setup and its check, right and wrong."""

from __future__ import annotations

import numpy as np
import pytest
from explorer_helpers import History

from cnn_explorer.explorer import lesson, presets
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.model import Explorer


def start(key: str) -> tuple[Explorer, History]:
    """A model set up for step ``key`` as the Lesson dock does it (one undoable edit)."""
    m = Explorer(np.zeros((1, 5, 5), np.float32), [])
    h = History(m)
    x, layers = lesson.STEPS[lesson.step_index(key)].setup()
    h.do("new_document", x, layers, "Lesson")
    m.recompute()
    return m, h


def check(m: Explorer, key: str) -> lesson.Feedback:
    m.recompute()
    return lesson.STEPS[lesson.step_index(key)].check(m)


def click(m: Explorer, map_index: int, row: int, col: int) -> None:
    m.select_cell(Selection(map_index, 0, row, col))


def test_every_step_is_complete_and_sets_up_the_worked_example():
    assert len(lesson.STEPS) >= 8
    assert len({s.key for s in lesson.STEPS}) == len(lesson.STEPS)
    for step in lesson.STEPS:
        assert step.title and step.look and step.question
        m, _ = start(step.key)
        assert m.results.maps[-1][0].tolist() == [[4, 2], [2, 4]]
        assert step.check(m).ok is None  # nothing tried yet: no verdict


def test_setup_is_one_undo_step():
    m, h = start("relu")
    assert h.undo()
    assert m.input.shape == (1, 5, 5) and m.layers == []


def test_a_top_left_output_is_four():
    m, _ = start("worked-example")
    click(m, 1, 1, 1)
    fb = check(m, "worked-example")
    assert fb.ok is False and "top-left" in fb.text
    click(m, 3, 0, 0)
    assert check(m, "worked-example").ok is False
    click(m, 1, 0, 0)
    fb = check(m, "worked-example")
    assert fb.ok is True and "1·1 + 1·1 + 1·1 + 1·1 = 4" in fb.text and "3×3" in fb.text


def test_b_relu_changes_nothing():
    m, h = start("relu")
    h.do("set_enabled", 0, False)  # the conv, not the ReLU
    assert check(m, "relu").ok is None
    h.undo()
    h.do("set_enabled", 1, False)
    fb = check(m, "relu")
    assert fb.ok is True and "[[4, 2], [2, 4]]" in fb.text


def test_c_max_pool_keeps_the_strongest():
    m, _ = start("max-pool")
    click(m, 1, 0, 0)
    assert check(m, "max-pool").ok is False
    click(m, 3, 0, 1)
    fb = check(m, "max-pool")
    assert fb.ok is False and "2" in fb.text
    click(m, 3, 1, 1)
    fb = check(m, "max-pool")
    assert fb.ok is True and "[[4, 2], [2, 4]]" in fb.text


def test_d_edge_kernel_negative_response_and_relu():
    m, h = start("edge-kernel")
    click(m, 1, 2, 1)
    fb = check(m, "edge-kernel")
    assert fb.ok is False and "switch the kernel" in fb.text
    h.do("set_kernel", 0, 0, 0, presets.EDGE_KERNEL, "Edge kernel")
    m.recompute()
    assert m.results.maps[1][0].tolist() == [[0, 2, 0], [0, 0, 0], [0, -2, 0]]
    click(m, 1, 0, 1)
    fb = check(m, "edge-kernel")
    assert fb.ok is False and "positive" in fb.text
    click(m, 1, 1, 1)
    assert check(m, "edge-kernel").ok is False
    click(m, 1, 2, 1)
    fb = check(m, "edge-kernel")
    assert fb.ok is True and "−2" in fb.text and "is 0" in fb.text
    click(m, 2, 2, 1)  # the same cell after ReLU counts too
    assert check(m, "edge-kernel").ok is True


def test_e_output_size_rule_is_live():
    m, h = start("output-size")
    step = lesson.STEPS[lesson.step_index("output-size")]
    assert step.live is not None
    text = step.live(m)
    assert "⌊(n + 2p − d(k−1) − 1) / s⌋ + 1" in text
    assert "n: input size" in text and "s: stride" in text
    assert "n = 4, p = 0, d = 1, k = 2, s = 1" in text
    assert "⌊(4 + 2·0 − 1·(2−1) − 1) / 1⌋ + 1 = 3" in text
    h.do("update_config", 0, stride=[2, 1])
    fb = check(m, "output-size")
    assert fb.ok is False and "2 × 2" in fb.text
    h.do("update_config", 0, stride=[2, 2], padding=1)
    m.recompute()
    assert "⌊(4 + 2·1 − 1·(2−1) − 1) / 2⌋ + 1 = 3" in step.live(m)
    h.do("update_config", 0, padding=0)
    fb = check(m, "output-size")
    assert fb.ok is True and "2×2" in fb.text
    assert "⌊(4 + 2·0 − 1·(2−1) − 1) / 2⌋ + 1 = 2" in step.live(m)


def test_e_rule_follows_the_selected_window_layer():
    m, _ = start("output-size")
    m.select_layer(2)
    assert "Layer 3 (Max pool 2×2):\nn = 3" in lesson.size_rule_text(m)
    m.select_layer(1)  # an activation slides nothing: the first conv is shown
    assert "Layer 1" in lesson.size_rule_text(m)


def test_f_weight_sharing_counted_like_for_like():
    m, h = start("weight-sharing")
    text = lesson.params_text(m)
    assert "4 weights + 0 biases = 4" in text
    assert "16·9 = 144 weights + 0 biases = 144" in text
    h.do("update_config", 0, bias=True)
    m.recompute()
    text = lesson.params_text(m)
    assert "4 weights + 1 biases = 5" in text and "144 weights + 9 biases = 153" in text
    click(m, 1, 0, 0)
    fb = check(m, "weight-sharing")
    assert fb.ok is False and "first block" in fb.text
    click(m, 1, 2, 2)
    fb = check(m, "weight-sharing")
    assert fb.ok is True and "weight sharing" in fb.text


def test_g_pooling_is_optional():
    m, h = start("pool-optional")
    h.do("set_enabled", 1, False)
    assert check(m, "pool-optional").ok is None
    h.undo()
    h.do("set_enabled", 2, False)
    fb = check(m, "pool-optional")
    assert fb.ok is True and "[[4, 2, 0], [2, 2, 2], [0, 2, 4]]" in fb.text


@pytest.mark.parametrize("order", [("stride", "pool"), ("pool", "stride")])
def test_h_strided_conv_instead_of_pooling(order):
    m, h = start("strided-conv")
    for what in order:
        if what == "stride":
            h.do("update_config", 0, stride=[2, 2])
        else:
            h.do("set_enabled", 2, False)
        fb = check(m, "strided-conv")
        if what == order[0]:
            assert fb.ok is False
    assert fb.ok is True and "[[4, 0], [0, 4]]" in fb.text and "[[4, 2], [2, 4]]" in fb.text


def test_matrix_text_uses_the_true_minus():
    assert lesson.matrix_text(np.array([[-2.0, 0.5]])) == "[[−2, 0.5]]"
    assert lesson.matrix_text(np.zeros((28, 28))) == "a 28×28 map"
    assert lesson.step_index("nope") == 0
