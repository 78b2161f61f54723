"""Compare mode's Qt-free part: pairing A's and B's maps and their difference maps."""

from __future__ import annotations

import numpy as np
import pytest
from explorer_helpers import History

from cnn_explorer.explorer import compare
from cnn_explorer.explorer.model import Explorer
from cnn_explorer.explorer.specs import act_spec, build_network, conv_spec, pool_spec


def settle(m: Explorer) -> None:
    m.recompute()
    m.refine()
    assert m.exact


def fresh_forward(m: Explorer) -> list[np.ndarray]:
    """A forward pass of the model's state built from scratch (not the model's own)."""
    net = build_network([s.copy() for s in m.layers])
    return [np.asarray(x) for x in net.forward(m.input.copy())]


@pytest.fixture
def ab() -> tuple[Explorer, Explorer]:
    a = Explorer()
    a.recompute()
    b = compare.duplicate(a)
    b.recompute()
    return a, b


def test_duplicate_is_an_independent_copy(ab: tuple[Explorer, Explorer]) -> None:
    a, b = ab
    History(b).do("set_weight", 0, 0, 0, 0, 0, 5.0)
    settle(b)
    assert a.layers[0].weight[0, 0, 0, 0] == 1.0
    assert b.layers[0].weight[0, 0, 0, 0] == 5.0


def test_identical_copies_differ_by_zero(ab: tuple[Explorer, Explorer]) -> None:
    a, b = ab
    pairs = compare.pair_maps(a.results, b.results)
    assert [p.paired for p in pairs] == [True] * 4
    for d in compare.differences(a.results, b.results):
        assert d is not None and not d.any()


@pytest.mark.parametrize(
    "edit",
    [
        ("set_kind", 2, "avgpool"),  # pool kind
        ("set_weight", 0, 0, 0, 1, 1, -1.0),  # a kernel weight
        ("update_config", 0, {"padding_mode": "reflect", "padding": 1}),  # padding mode
        ("update_config", 0, {"stride": [2, 2]}),  # stride: shapes change
        ("set_enabled", 1, False),  # ReLU off
    ],
)
def test_differences_equal_two_fresh_forwards(ab: tuple[Explorer, Explorer], edit: tuple) -> None:
    a, b = ab
    name, *args = edit
    if name == "update_config":
        History(b).do(name, args[0], **args[1])
    else:
        History(b).do(name, *args)
    settle(b)
    fa, fb = fresh_forward(a), fresh_forward(b)
    diffs = compare.differences(a.results, b.results)
    for p, d in zip(compare.pair_maps(a.results, b.results), diffs, strict=True):
        m = p.index
        if m < len(fa) and m < len(fb) and fa[m].shape == fb[m].shape:
            assert p.paired and d is not None
            assert np.array_equal(d, fb[m] - fa[m]), m
            assert d.dtype == np.float32
        else:
            assert not p.paired and d is None
            assert p.note


def test_a_changed_pool_kind_shows_in_the_last_map_only(ab: tuple[Explorer, Explorer]) -> None:
    a, b = ab
    History(b).do("set_kind", 2, "avgpool")
    settle(b)
    d = compare.differences(a.results, b.results)
    assert not d[1].any() and not d[2].any()
    assert np.array_equal(d[3][0], np.array([[2.5, 1.5], [1.5, 2.5]]) - [[4, 2], [2, 4]])


def test_pairing_with_an_added_layer(ab: tuple[Explorer, Explorer]) -> None:
    a, b = ab
    History(b).do("add_layer", act_spec("sigmoid"), 3)  # at the end
    settle(b)
    pairs = compare.pair_maps(a.results, b.results)
    assert len(pairs) == 5
    assert all(p.paired for p in pairs[:4])
    last = pairs[4]
    assert last.a_shape is None and last.b_shape == (1, 2, 2)
    assert last.note.startswith("Layer 4: only in B") and "no such layer" in last.note


def test_pairing_with_a_removed_layer(ab: tuple[Explorer, Explorer]) -> None:
    a, b = ab
    History(b).do("remove_layer", 1)  # ReLU gone: B's pool is layer 2 now
    settle(b)
    pairs = compare.pair_maps(a.results, b.results)
    assert [p.paired for p in pairs] == [True, True, False, False]
    assert "different shapes" in pairs[2].note  # A: ReLU 1×3×3, B: pool 1×2×2
    assert pairs[3].note.startswith("Layer 3: only in A")
    d = compare.differences(a.results, b.results)
    assert d[2] is None and d[3] is None


def test_shape_change_and_invalid_layer(ab: tuple[Explorer, Explorer]) -> None:
    a, b = ab
    History(b).do("update_config", 0, kernel=[3, 3])  # 4×4 → 2×2, the 2×2 pool → 1×1
    settle(b)
    pairs = compare.pair_maps(a.results, b.results)
    assert pairs[1].a_shape == (1, 3, 3) and pairs[1].b_shape == (1, 2, 2)
    assert "A gives 1×3×3, B gives 1×2×2" in pairs[1].note
    History(b).do("update_config", 0, kernel=[5, 5])  # bigger than the input: invalid
    settle(b)
    pairs = compare.pair_maps(a.results, b.results)
    assert pairs[1].b_shape is None and pairs[1].b_why
    assert "only in A" in pairs[1].note


def test_input_edits_reach_both(ab: tuple[Explorer, Explorer]) -> None:
    a, b = ab
    History(b).do("set_kind", 2, "avgpool")
    History(a).do("set_cell", 0, 2, 3, 7.0)
    change = compare.follow_input(b, a, (2, 2, 3, 3))
    assert change is not None and change.kind == "input"
    assert compare.follow_input(b, a) is None  # already the same
    settle(a)
    settle(b)
    assert b.input[0, 2, 3] == 7.0
    fa, fb = fresh_forward(a), fresh_forward(b)
    assert np.array_equal(b.results.maps[3], fb[3])
    d = compare.differences(a.results, b.results)
    assert np.array_equal(d[3], fb[3] - fa[3])
    # a resize is an input-shape change for both
    History(a).do("resize_input", 8, 8)
    change = compare.follow_input(b, a, (0, 0, 0, 0))
    assert change is not None and change.kind == "input_shape"
    settle(a)
    settle(b)
    assert b.results.maps[3].shape == a.results.maps[3].shape == (1, 6, 6)


def test_rgb_input_reaches_b_with_its_convs_fitted(ab: tuple[Explorer, Explorer]) -> None:
    a, b = ab
    History(b).do("set_weight", 0, 0, 0, 0, 0, -1.0)
    History(a).do("set_channels", 3)  # A's conv gets 3 input channels in the same edit
    change = compare.follow_input(b, a)
    assert change is not None and change.kind == "document"
    settle(a)
    settle(b)
    assert b.layers[0].weight.shape == a.layers[0].weight.shape == (1, 3, 2, 2)
    assert b.layers[0].weight[0, 0, 0, 0] == -1.0  # B's own weights kept
    assert all(p.paired for p in compare.pair_maps(a.results, b.results))
    fa, fb = fresh_forward(a), fresh_forward(b)
    for m, d in enumerate(compare.differences(a.results, b.results)):
        assert np.array_equal(d, fb[m] - fa[m])


def test_a_three_layer_stack_with_channels() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 10, 10)).astype(np.float32)
    layers = [
        conv_spec(3, 4, (3, 3), padding=1, seed=1),
        act_spec("relu"),
        pool_spec("maxpool", 2, 2),
        conv_spec(4, 3, (3, 3), seed=2),
    ]
    a = Explorer(x, layers)
    a.recompute()
    b = compare.duplicate(a)
    History(b).do("set_weights", 3, rng.standard_normal((3, 4, 3, 3)).astype(np.float32), "w")
    History(b).do("set_kind", 2, "avgpool")
    settle(a)
    settle(b)
    fa, fb = fresh_forward(a), fresh_forward(b)
    d = compare.differences(a.results, b.results)
    assert len(d) == 5
    for m in range(5):
        assert np.array_equal(d[m], fb[m] - fa[m])
    assert not d[1].any() and d[4].any()


def test_room_for_three_sets_of_maps() -> None:
    compare.check_room(Explorer())  # the worked example: a few bytes
    big = Explorer(np.zeros((1, 512, 512), np.float32), [conv_spec(1, 64, (3, 3), padding=1)])
    with pytest.raises(ValueError, match="MB"):  # 64 MB of maps… three times, then some
        compare.check_room(Explorer(big.input, [*big.layers, *[act_spec("relu")] * 5]))


def test_scales() -> None:
    a = np.array([[0.0, 2.0]], np.float32)
    b = np.array([[-1.0, 1.0]], np.float32)
    assert compare.shared_range(a, b) == (-1.0, 2.0)
    assert compare.shared_range(None, b) == (-1.0, 1.0)
    assert compare.diff_bound(b - a) == 1.0
    assert compare.diff_bound(a - b[:, ::-1]) == 3.0
    assert compare.diff_bound(np.zeros((2, 2), np.float32)) == 0.0
