"""Receptive fields through graph networks (engine/graph_geometry.py) against a brute-force
support check: the input cells whose perturbation changes the chosen output cell, on small
graphs with branches, merges, strides, padding modes, groups and reshapes."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_explorer.engine import (
    Add,
    AvgPool2D,
    Concat,
    Conv2D,
    Dense,
    Flatten,
    Graph,
    MaxPool2D,
    Mul,
    Node,
)
from cnn_explorer.engine.extra_layers import (
    AdaptiveAvgPool2D,
    Clip,
    GlobalAvgPool2D,
    Pad2D,
    Reshape,
    Softmax,
)
from cnn_explorer.engine.graph_geometry import (
    CellSet,
    everything,
    graph_receptive_field,
    single_cell,
)


def _conv(c_in: int, c_out: int, k: int, seed: int, **kw: object) -> Conv2D:
    conv = Conv2D(c_in, c_out, k, rng=seed, **kw).astype(np.float64)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    w = conv.params["weight"]
    # Weights away from zero: a zero weight would hide a dependency from the brute force.
    conv.params["weight"] = rng.uniform(0.5, 1.5, w.shape) * rng.choice([-1, 1], w.shape)
    return conv


def _support(graph: Graph, shape: tuple[int, ...], node: str, index: tuple[int, ...]) -> np.ndarray:
    """Mask of the input cells whose (large) perturbation changes ``node``'s cell."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, (1, *shape))
    base = graph.forward(x)[node][0][index]
    mask = np.zeros(shape, bool)
    for cell in np.ndindex(*shape):
        for delta in (50.0, -50.0):  # a big bump also wins every max-pool window it is in
            y = x.copy()
            y[(0, *cell)] += delta
            if abs(graph.forward(y)[node][0][index] - base) > 1e-9:
                mask[cell] = True
                break
    return mask


def _check(graph: Graph, shape: tuple[int, ...], node: str, index: tuple[int, ...]) -> CellSet:
    got = graph_receptive_field(graph, shape, node, index)["input"]
    brute = _support(graph, shape, node, index)
    assert not (brute & ~got.mask).any(), "a cell the output depends on is missing"
    for axis in range(len(shape)):  # joined sets are exact on every axis
        others = tuple(k for k in range(len(shape)) if k != axis)
        assert np.array_equal(np.flatnonzero(brute.any(axis=others)), got.index[axis])
    return got


def test_residual_block_joins_the_conv_and_the_identity_paths() -> None:
    g = Graph(
        [
            Node("a", _conv(2, 2, 3, 1, padding=1), ("input",)),
            Node("b", _conv(2, 2, 3, 2, padding=1), ("a",)),
            Node("sum", Add(), ("b", "input")),
        ]
    )
    got = _check(g, (2, 7, 7), "sum", (1, 3, 3))
    assert got.bounds(1) == (1, 5) and got.bounds(2) == (1, 5)
    _check(g, (2, 7, 7), "sum", (0, 0, 6))  # a corner: padding clips the field


def test_downsampling_block_with_strided_conv_and_1x1_shortcut() -> None:
    g = Graph(
        [
            Node("a", _conv(1, 2, 3, 3, stride=2, padding=1), ("input",)),
            Node("b", _conv(2, 2, 3, 4, padding=1), ("a",)),
            Node("short", _conv(1, 2, 1, 5, stride=2), ("input",)),
            Node("sum", Add(), ("b", "short")),
            Node("pool", MaxPool2D(2), ("sum",)),
        ]
    )
    _check(g, (1, 9, 9), "pool", (0, 1, 1))
    _check(g, (1, 9, 9), "sum", (1, 4, 0))


def test_fire_module_concat_picks_the_branch_of_the_channel() -> None:
    g = Graph(
        [
            Node("squeeze", _conv(2, 2, 1, 6), ("input",)),
            Node("e1", _conv(2, 2, 1, 7), ("squeeze",)),
            Node("e3", _conv(2, 3, 3, 8, padding=1), ("squeeze",)),
            Node("cat", Concat(), ("e1", "e3")),
            Node("avg", AvgPool2D(3, stride=2, padding=1), ("cat",)),
        ]
    )
    one = _check(g, (2, 6, 6), "cat", (1, 2, 2))  # from the 1×1 branch: one pixel
    assert one.bounds(1) == (2, 2)
    three = _check(g, (2, 6, 6), "cat", (3, 2, 2))  # from the 3×3 branch
    assert three.bounds(1) == (1, 3)
    _check(g, (2, 6, 6), "avg", (4, 1, 2))
    sets = graph_receptive_field(g, (2, 6, 6), "cat", (1, 2, 2))
    assert "e3" not in sets and "e1" in sets


def test_squeeze_excite_mul_reads_the_whole_map_through_global_pooling() -> None:
    g = Graph(
        [
            Node("c", _conv(2, 2, 3, 9, padding=1), ("input",)),
            Node("gap", GlobalAvgPool2D(), ("c",)),
            Node("fc", _conv(2, 2, 1, 10), ("gap",)),
            Node("gate", Clip(-1e6, 1e6), ("fc",)),  # elementwise, never clips here
            Node("scaled", Mul(), ("c", "gate")),
        ]
    )
    got = _check(g, (2, 5, 5), "scaled", (0, 2, 2))
    assert got.is_everything()


def test_grouped_dilated_and_reflect_padding_paths() -> None:
    g = Graph(
        [
            Node("grp", _conv(4, 4, 3, 11, padding=1, groups=2), ("input",)),
            Node("dil", _conv(4, 4, 3, 12, dilation=2, groups=4), ("grp",)),
            Node("pad", Pad2D(padding=(2, 1, 0, 2), mode="reflect"), ("input",)),
            Node("pc", _conv(4, 4, 3, 13, stride=2, groups=4), ("pad",)),
        ]
    )
    got = _check(g, (4, 9, 9), "dil", (1, 2, 1))
    assert list(got.index[0]) == [0, 1]  # group 1 of 2 reads input channels 0 and 1
    _check(g, (4, 9, 9), "pc", (2, 0, 4))  # reflected cells count


def test_reshape_flatten_dense_softmax_and_uneven_adaptive_pooling() -> None:
    g = Graph(
        [
            Node("ad", AdaptiveAvgPool2D(output_size=(3, 2)), ("input",)),
            Node("flat", Flatten(), ("ad",)),
            Node("back", Reshape((2, 3, 2)), ("flat",)),
            Node("fc", Dense(12, 3, rng=0), ("flat",)),
            Node("sm", Softmax(), ("fc",)),
        ]
    )
    g.node("fc").layer.astype(np.float64)
    _check(g, (2, 7, 5), "ad", (1, 1, 0))
    _check(g, (2, 7, 5), "flat", (7,))
    _check(g, (2, 7, 5), "back", (1, 2, 1))
    assert graph_receptive_field(g, (2, 7, 5), "sm", (0,))["input"].is_everything()


def test_cell_sets_and_bad_cells() -> None:
    a = single_cell((2, 3, 3), (1, 0, 2))
    assert a.size == 1 and a.mask.sum() == 1 and not a.is_everything()
    assert a.union(single_cell((2, 3, 3), (0, 2, 2))).size == 2 * 2 * 1
    assert everything((2, 3)).is_everything()
    with pytest.raises(IndexError):
        single_cell((2, 3, 3), (2, 0, 0))
    g = Graph([Node("a", _conv(1, 1, 3, 0), ("input",))])
    with pytest.raises(KeyError):
        graph_receptive_field(g, (1, 5, 5), "nope", (0, 0, 0))
    assert graph_receptive_field(g, (1, 5, 5), "input", (0, 1, 1))["input"].size == 1
