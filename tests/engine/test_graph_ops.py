"""The ops graph networks added: grouped/depthwise Conv2D, asymmetric pool padding,
AvgPool2D count_include_pad, Pad2D, GlobalAvgPool2D, AdaptiveAvgPool2D, PReLU, Clip,
Softmax, Reshape. Hand values, the naive NumPy oracle (tests/engine/reference.py),
central-difference gradients, ShapeErrors, configs, window/explain/receptive fields, and
live parity with torch (marker ``torch``)."""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from gradcheck import away_from_kinks, check_layer_gradients
from reference import avg_pool2d_naive, conv2d_naive, max_pool2d_naive, pad2d_naive

from cnn_explorer.engine import (
    LAYER_TYPES,
    AdaptiveAvgPool2D,
    AvgPool2D,
    Clip,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    Graph,
    Layer,
    MaxPool2D,
    Network,
    Node,
    Pad2D,
    PReLU,
    Reshape,
    ShapeError,
    Softmax,
    layer_from_dict,
)
from cnn_explorer.engine.extra_layers import EXTRA_TYPES, adaptive_bounds
from cnn_explorer.engine.grouped import grouped_conv2d

F64 = np.float64
RNG = np.random.default_rng(20240611)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


def seeded(layer: Layer, seed: int = 0) -> Layer:
    """Random float64 parameters (zero-init weights would hide bugs)."""
    rng = np.random.default_rng(seed)
    layer.astype(F64)
    for v in layer.params.values():
        v[...] = rng.standard_normal(v.shape)
    return layer


def grouped_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, groups: int, **kw: Any):
    """Grouped conv as ``groups`` independent naive convs, concatenated."""
    cg, og = x.shape[1] // groups, w.shape[0] // groups
    parts = [
        conv2d_naive(
            x[:, k * cg : (k + 1) * cg],
            w[k * og : (k + 1) * og],
            None if b is None else b[k * og : (k + 1) * og],
            **kw,
        )
        for k in range(groups)
    ]
    return np.concatenate(parts, axis=1)


# --------------------------------------------------------------------------------------
# grouped / depthwise convolution
# --------------------------------------------------------------------------------------

GROUPED = [
    # (in, out, kernel, groups, layer kwargs)
    (4, 4, 3, 4, {"padding": 1}),
    (3, 6, 3, 3, {"stride": 2, "padding": (0, 1, 1, 0)}),
    (4, 6, (3, 2), 2, {"dilation": 2, "padding": 2, "padding_mode": "reflect"}),
    (6, 3, 1, 3, {"bias": False}),
    (2, 2, 3, 2, {"padding": 1, "flip_kernel": True, "padding_mode": "circular"}),
    (4, 8, 2, 4, {"stride": (1, 2), "padding_mode": "replicate", "padding": (1, 0, 0, 1)}),
]


@pytest.mark.parametrize(("cin", "cout", "k", "groups", "kw"), GROUPED)
def test_grouped_conv_matches_naive_oracle(
    cin: int, cout: int, k: Any, groups: int, kw: dict[str, Any]
) -> None:
    layer = seeded(Conv2D(cin, cout, k, groups=groups, **kw))
    assert layer.params["weight"].shape[1] == cin // groups
    x = randn(2, cin, 7, 6)
    out = layer.forward(x)
    ref = grouped_naive(
        x,
        layer.params["weight"],
        layer.params.get("bias"),
        groups,
        stride=layer.stride,
        pad=layer.padding4,
        dilation=layer.dilation,
        mode=layer.padding_mode,
        flip_kernel=layer.flip_kernel,
    )
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    assert layer.output_shape((cin, 7, 6)) == out.shape[1:]
    np.testing.assert_allclose(layer.forward(x[1]), ref[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("cin", "cout", "k", "groups", "kw"), GROUPED)
def test_grouped_conv_gradients(
    cin: int, cout: int, k: Any, groups: int, kw: dict[str, Any]
) -> None:
    layer = seeded(Conv2D(cin, cout, k, groups=groups, **kw), seed=1)
    check_layer_gradients(layer, randn(2, cin, 6, 5))
    check_layer_gradients(layer, randn(cin, 6, 5))  # one image


def test_grouped_conv_trains_only_parameter_gradients_the_same() -> None:
    layer = seeded(Conv2D(4, 4, 3, padding=1, groups=2), seed=2)
    x, g = randn(2, 4, 5, 5), randn(2, 4, 5, 5)
    layer.forward(x, training=True)
    layer.zero_grad()
    layer.backward(g)
    full = {k: v.copy() for k, v in layer.grads.items()}
    layer.zero_grad()
    layer.backward_params(g)
    for key, value in full.items():
        np.testing.assert_array_equal(layer.grads[key], value)


def test_grouped_conv_function_and_float32() -> None:
    x, w = randn(2, 4, 5, 5).astype(np.float32), randn(8, 1, 3, 3).astype(np.float32)
    out = grouped_conv2d(x, w, None, groups=4, padding=1)
    assert out.dtype == np.float32
    ref = grouped_naive(x, w, None, 4, pad=(1, 1, 1, 1))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_groups_one_keeps_the_ordinary_conv_config_and_label() -> None:
    plain = Conv2D(2, 4, 3, padding=1, rng=3)
    assert "groups" not in plain.to_dict()
    assert plain.describe() == "Conv 3×3, 2→4, stride 1, pad 1"
    assert Conv2D(4, 4, 3, groups=4).describe() == "Conv 3×3, 4→4, stride 1, depthwise"
    assert Conv2D(4, 6, 3, groups=2).label(1) == "layer 2 (conv 3×3, 4→6, groups 2)"
    cfg = Conv2D(4, 6, 3, groups=2).to_dict()
    assert cfg["groups"] == 2
    assert layer_from_dict(cfg).to_dict() == cfg


def test_grouped_conv_errors() -> None:
    with pytest.raises(ShapeError, match="groups 3 must divide in_channels 4"):
        Conv2D(4, 6, 3, groups=3)
    with pytest.raises(ShapeError, match="groups 2 must divide out_channels 3"):
        Conv2D(4, 3, 3, groups=2)
    with pytest.raises(ShapeError, match="groups must be a whole number"):
        Conv2D(4, 4, 3, groups=0)
    with pytest.raises(ShapeError, match="expects 4 input channels but its input has 2"):
        Conv2D(4, 4, 3, groups=2).output_shape((2, 5, 5))


def test_grouped_conv_explanation_sums_only_its_group() -> None:
    layer = seeded(Conv2D(6, 4, 3, padding=1, groups=2), seed=4)
    x = randn(6, 5, 5)
    out = layer.forward(x)
    for channel in range(4):
        e = layer.explain(x, 2, 3, channel)
        group = channel // 2
        assert {t.channel for t in e.terms} == {3 * group, 3 * group + 1, 3 * group + 2}
        assert e.result == pytest.approx(out[channel, 2, 3], rel=1e-12)
        for t in e.terms:
            if not t.is_padding:
                assert t.value == x[t.channel, t.row, t.col]


def test_grouped_conv_receptive_field_keeps_to_its_group() -> None:
    net = Network([Conv2D(6, 4, 3, padding=1, groups=2), Conv2D(4, 2, 1, groups=2)])
    regions = net.receptive_field((6, 5, 5), 1, 2, 2, channel=1)
    assert regions[1].channels is not None and list(regions[1].channels) == [2, 3]
    assert regions[0].channels is not None and list(regions[0].channels) == [3, 4, 5]
    assert regions[0].row_range == (1, 3)


# --------------------------------------------------------------------------------------
# pools: asymmetric padding, count_include_pad
# --------------------------------------------------------------------------------------

POOLS = [
    ((3, 3), (2, 2), (0, 1, 1, 1), False),
    ((2, 2), (2, 2), (1, 0, 0, 1), False),
    ((3, 2), (1, 2), (1, 1, 0, 1), True),
    ((3, 3), (2, 2), (1, 0, 1, 1), True),
]


@pytest.mark.parametrize(("k", "s", "pad", "ceil"), POOLS)
def test_asymmetric_pools_match_naive_oracle(k: Any, s: Any, pad: Any, ceil: bool) -> None:
    x = randn(2, 3, 7, 6)
    mx = MaxPool2D(k, s, pad, ceil_mode=ceil)
    assert mx.padding == pad and mx.padding4 == pad
    np.testing.assert_array_equal(mx.forward(x), max_pool2d_naive(x, k, s, pad, (1, 1), ceil)[0])
    for cip in (True, False):
        avg = AvgPool2D(k, s, pad, ceil_mode=ceil, count_include_pad=cip)
        ref = avg_pool2d_naive(x, k, s, pad, ceil, cip)
        np.testing.assert_allclose(avg.forward(x), ref, rtol=1e-12, atol=1e-12)
        assert avg.output_shape((3, 7, 6)) == ref.shape[1:]
        check_layer_gradients(avg, randn(1, 2, 7, 6))
    check_layer_gradients(mx, randn(1, 2, 7, 6))


def test_count_include_pad_hand_values_and_explanation() -> None:
    x = np.arange(1.0, 10.0).reshape(1, 3, 3)
    with_pad = AvgPool2D(2, 2, 1).forward(x)
    without = AvgPool2D(2, 2, 1, count_include_pad=False).forward(x)
    assert with_pad[0, 0, 0] == pytest.approx(1.0 / 4)  # only x[0,0] = 1 is real
    assert without[0, 0, 0] == pytest.approx(1.0)
    assert without[0, 1, 1] == pytest.approx((5 + 6 + 8 + 9) / 4)
    layer = AvgPool2D(2, 2, 1, count_include_pad=False)
    e = layer.explain(x, 0, 1, 0)
    assert e.divisor == 2 and e.result == pytest.approx(without[0, 0, 1])
    assert layer.describe() == "AvgPool 2×2, stride 2, pad 1, padding not counted"
    assert layer.to_dict()["count_include_pad"] is False
    assert "count_include_pad" not in AvgPool2D(2).to_dict()
    assert layer_from_dict(layer.to_dict()).to_dict() == layer.to_dict()


def test_symmetric_padding_four_values_stays_a_pair() -> None:
    pool = MaxPool2D(3, 2, (1, 1, 0, 0))
    assert pool.padding == (1, 0)
    assert pool.to_dict()["padding"] == [1, 0]
    asym = MaxPool2D(3, 2, (0, 1, 1, 1))
    assert asym.to_dict()["padding"] == [0, 1, 1, 1]
    assert asym.describe() == "MaxPool 3×3, stride 2, pad 0×1×1×1"
    with pytest.raises(ShapeError, match="padding 2 is more than half the kernel 3"):
        MaxPool2D(3, 2, (0, 2, 0, 0)).output_shape((1, 7, 7))


def test_asymmetric_pool_explanations_match_forward() -> None:
    x = randn(2, 7, 6)
    for layer in (MaxPool2D(3, 2, (0, 1, 1, 1)), AvgPool2D(3, 2, (1, 0, 1, 1), False, False)):
        out = layer.forward(x)
        for r in range(out.shape[1]):
            for c in range(out.shape[2]):
                assert layer.explain(x, r, c, 1).result == pytest.approx(out[1, r, c], rel=1e-12)


# --------------------------------------------------------------------------------------
# Pad2D
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_pad2d_matches_naive_oracle_and_gradients(mode: str) -> None:
    layer = Pad2D((2, 1, 0, 3), mode)
    x = randn(2, 3, 4, 5)
    out = layer.forward(x)
    np.testing.assert_array_equal(out, pad2d_naive(x, (2, 1, 0, 3), mode))
    assert layer.output_shape((3, 4, 5)) == (3, 7, 8)
    check_layer_gradients(layer, randn(1, 2, 4, 5))
    for r in range(out.shape[2]):
        for c in range(out.shape[3]):
            assert layer.explain(x[1], r, c, 2).result == out[1, 2, r, c]


def test_pad2d_value_hand_values() -> None:
    layer = Pad2D((1, 0, 0, 1), value=-2.0)
    out = layer.forward(np.ones((1, 2, 2)))
    np.testing.assert_array_equal(out[0], [[-2, -2, -2], [1, 1, -2], [1, 1, -2]])
    assert layer.describe() == "Pad 1×0×0×1 with −2"
    assert layer.explain(np.ones((1, 2, 2)), 0, 0, 0).result == -2.0
    grad = layer.backward(np.arange(9.0).reshape(1, 3, 3))
    np.testing.assert_array_equal(grad, [[[3, 4], [6, 7]]])


def test_pad2d_errors_and_receptive_field() -> None:
    with pytest.raises(ShapeError, match=r"layer 1 \(Pad 3 reflect\): reflect padding of 3"):
        Pad2D(3, "reflect").output_shape((1, 3, 5), 0)
    with pytest.raises(ShapeError, match="fill value only applies"):
        Pad2D(1, "reflect", value=1.0)
    with pytest.raises(ShapeError, match=r"needs a .channels, height, width. map"):
        Pad2D(1).output_shape((10,))
    net = Network([Pad2D((1, 0, 2, 0), "replicate"), Conv2D(1, 1, 2)])
    region = net.receptive_field((1, 4, 4), 1, 0, 0)[0]
    assert list(region.rows) == [0] and list(region.cols) == [0]
    assert dependencies(net, (1, 4, 4), 1, 0, 0) == region_cells(region)


def dependencies(
    net: Network, shape: tuple[int, int, int], index: int, row: int, col: int
) -> set[tuple[int, int]]:
    """Input cells whose change changes output ``[0, row, col]`` of layer ``index`` (brute
    force with random weights)."""
    for layer in net.layers:
        seeded(layer, 5)
    x = randn(*shape)
    sub = Network(net.layers[: index + 1])
    base = sub(x)[0, row, col]
    found = set()
    for r in range(shape[1]):
        for c in range(shape[2]):
            y = x.copy()
            y[:, r, c] += 1.0
            if sub(y)[0, row, col] != base:
                found.add((r, c))
    return found


def region_cells(region: Any) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r in region.rows for c in region.cols}


# --------------------------------------------------------------------------------------
# global and adaptive average pooling
# --------------------------------------------------------------------------------------


def test_adaptive_bounds_follow_torch() -> None:
    start, end = adaptive_bounds(5, 3)
    assert list(start) == [0, 1, 3] and list(end) == [2, 4, 5]
    start, end = adaptive_bounds(7, 7)
    assert list(end - start) == [1] * 7


def adaptive_naive(x: np.ndarray, oh: int, ow: int) -> np.ndarray:
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        r0, r1 = (i * h) // oh, -(-(i + 1) * h // oh)
        for j in range(ow):
            c0, c1 = (j * w) // ow, -(-(j + 1) * w // ow)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return out


@pytest.mark.parametrize("size", [(3, 2), (4, 5), (1, 1), (7, 6), (2, None)])
def test_adaptive_pool_matches_naive_and_gradients(size: tuple[int, int | None]) -> None:
    layer = AdaptiveAvgPool2D(size)
    x = randn(2, 3, 7, 6)
    oh, ow = size[0], size[1] or 6
    np.testing.assert_allclose(layer.forward(x), adaptive_naive(x, oh, ow), rtol=1e-12)
    assert layer.output_shape((3, 7, 6)) == (3, oh, ow)
    check_layer_gradients(layer, randn(1, 2, 7, 6))
    out = layer.forward(x[0])
    for r in range(oh):
        for c in range(ow):
            assert layer.explain(x[0], r, c, 2).result == pytest.approx(out[2, r, c], rel=1e-12)


def test_global_avg_pool_hand_values_window_and_gradient() -> None:
    layer = GlobalAvgPool2D()
    x = np.arange(8.0).reshape(2, 2, 2)
    np.testing.assert_array_equal(layer.forward(x), [[[1.5]], [[5.5]]])
    np.testing.assert_array_equal(
        layer.backward(np.array([[[4.0]], [[8.0]]]))[1], np.full((2, 2), 2.0)
    )
    check_layer_gradients(layer, randn(2, 3, 4, 5))
    e = layer.explain(x, 0, 0, 1)
    assert e.divisor == 4 and e.result == 5.5
    assert layer.describe() == "GlobalAvgPool" and layer.to_dict()["kind"] == "global_avg_pool"
    net = Network([Conv2D(1, 1, 3, padding=1), GlobalAvgPool2D()])
    region = net.receptive_field((1, 5, 4), 1, 0, 0)[0]
    assert region.size == 20
    with pytest.raises(ShapeError, match=r"needs a .channels, height, width. map"):
        layer.output_shape((6,))


def test_adaptive_window_only_when_it_is_a_sliding_window() -> None:
    layer = AdaptiveAvgPool2D((2, 3))
    assert layer.window() is None
    win = layer.window_for((1, 6, 9))
    assert win is not None and win.kernel == (3, 3) and win.stride == (3, 3)
    assert layer.window_for((1, 5, 9)) is None
    with pytest.raises(ShapeError, match="output_size must be"):
        AdaptiveAvgPool2D((0, 2))


# --------------------------------------------------------------------------------------
# PReLU, Clip, Softmax, Reshape
# --------------------------------------------------------------------------------------


def test_prelu_hand_values_gradients_and_errors() -> None:
    layer = PReLU(2, dtype=F64)
    layer.params["weight"][...] = [0.5, -1.0]
    x = np.array([[[[-2.0, 3.0]], [[-4.0, 1.0]]]])  # (1, 2, 1, 2)
    np.testing.assert_array_equal(layer.forward(x), [[[[-1.0, 3.0]], [[4.0, 1.0]]]])
    layer.zero_grad()
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), [[[[0.5, 1]], [[-1, 1]]]])
    np.testing.assert_array_equal(layer.grads["weight"], [-2.0, -4.0])
    check_layer_gradients(seeded(PReLU(3)), away_from_kinks(randn(2, 3, 3, 3)))
    check_layer_gradients(seeded(PReLU(1)), away_from_kinks(randn(4, 5)))
    check_layer_gradients(seeded(PReLU(3)), away_from_kinks(randn(3, 2, 2)))  # one image
    with pytest.raises(ShapeError, match="has 4 slopes, one per channel, but its input has 3"):
        PReLU(4).output_shape((3, 5, 5))
    assert PReLU(4).param_count() == 4
    assert PReLU().explain(np.array([[[-2.0]]]), 0, 0, 0).result == pytest.approx(-0.5)


def test_clip_hand_values_gradients_and_label() -> None:
    relu6 = Clip(0.0, 6.0)
    x = np.array([-1.0, 0.0, 3.0, 6.0, 7.0, np.nan])
    with np.errstate(invalid="ignore"):
        out = relu6.forward(x)
    np.testing.assert_array_equal(out, [0.0, 0.0, 3.0, 6.0, 6.0, np.nan])
    np.testing.assert_array_equal(relu6.backward(np.ones(6)), [0, 1, 1, 1, 0, 0])
    assert relu6.describe() == "ReLU6"
    assert Clip(None, 2.5).describe() == "Clip [−∞, 2.5]"
    check_layer_gradients(Clip(-0.5, 0.5), away_from_kinks(randn(2, 3, 3), (-0.5, 0.5)))
    e = relu6.explain(np.array([[[9.0]]]), 0, 0, 0)
    assert e.result == 6.0 and e.formula == "min(max(0, 9), 6)"
    with pytest.raises(ShapeError, match="above max"):
        Clip(2.0, 1.0)


def test_softmax_layer_axes_gradients_and_errors() -> None:
    layer = Softmax()
    x = np.array([[0.0, np.log(2.0)]])
    np.testing.assert_allclose(layer.forward(x), [[1 / 3, 2 / 3]])
    maps = randn(2, 3, 2, 2)
    np.testing.assert_allclose(layer.forward(maps).sum(axis=1), 1.0)
    np.testing.assert_allclose(Softmax(-1).forward(maps).sum(axis=-1), 1.0)
    np.testing.assert_allclose(layer.forward(maps[0]), layer.forward(maps)[0])  # one image
    check_layer_gradients(Softmax(), randn(2, 4))
    check_layer_gradients(Softmax(-1), randn(2, 3, 2, 3))
    assert layer.explain(maps[0], 1, 0, 2).result == pytest.approx(layer.forward(maps[0])[2, 1, 0])
    with pytest.raises(ShapeError, match="axis 3 does not exist"):
        Softmax(3).output_shape((5,))
    with pytest.raises(ShapeError, match="batch axis"):
        Softmax(0)


def test_reshape_layer_shapes_gradients_and_errors() -> None:
    layer = Reshape((2, -1))
    x = randn(3, 4, 2, 2)
    out = layer.forward(x)
    assert out.shape == (3, 2, 8)
    np.testing.assert_array_equal(out, x.reshape(3, 2, 8))
    assert layer.output_shape((4, 2, 2)) == (2, 8)
    np.testing.assert_array_equal(layer.backward(out), x)
    assert Reshape((-1,)).forward(x[0]).shape == (16,)  # one image
    check_layer_gradients(Reshape((4, 1, 4)), randn(2, 16))
    flat = Reshape((-1,))
    e = flat.explain(x[0], 0, 9, 0)
    assert e.result == x[0].reshape(-1)[9]
    with pytest.raises(ShapeError, match="cannot split 15 values"):
        Reshape((2, -1)).output_shape((3, 5))
    with pytest.raises(ShapeError, match="needs 12 values per sample but its input has 16"):
        Reshape((3, 4)).output_shape((4, 2, 2))
    with pytest.raises(ShapeError, match="only one −1"):
        Reshape((-1, -1))
    assert layer.describe() == "Reshape → 2×?"


def test_batch_sensitive_layers_run_batched_in_a_graph() -> None:
    graph = Graph(
        [
            Node("conv", Conv2D(2, 3, 3, padding=1, dtype=F64), ("input",)),
            Node("gap", GlobalAvgPool2D(), ("conv",)),
            Node("flat", Reshape((-1,)), ("gap",)),
            Node("fc", Dense(3, 4, dtype=F64), ("flat",)),
            Node("prob", Softmax(), ("fc",)),
        ]
    )
    x = randn(2, 2, 5, 5)
    batched = graph(x)
    np.testing.assert_allclose(graph(x[1]), batched[1], rtol=1e-12)
    assert graph.forward(x[1])["flat"].shape == (3,)
    np.testing.assert_allclose(batched.sum(axis=1), 1.0)


# --------------------------------------------------------------------------------------
# registry and configs
# --------------------------------------------------------------------------------------


def new_layers() -> list[Layer]:
    return [
        Pad2D((1, 2, 0, 1), "reflect"),
        GlobalAvgPool2D(),
        AdaptiveAvgPool2D((3, None)),
        PReLU(3, init=0.1),
        Clip(0.0, 6.0),
        Softmax(-1),
        Reshape((4, -1)),
    ]


def test_every_new_kind_is_registered() -> None:
    assert {type(layer) for layer in new_layers()} == set(EXTRA_TYPES.values())
    assert set(EXTRA_TYPES.items()) <= set(LAYER_TYPES.items())


@pytest.mark.parametrize("layer", new_layers(), ids=lambda layer: layer.kind)
def test_new_layer_configs_round_trip_through_json(layer: Layer) -> None:
    layer.name = f"my {layer.kind}"
    config = json.loads(json.dumps(layer.to_dict()))
    clone = layer_from_dict(config, layer.state_arrays())
    assert clone.to_dict() == layer.to_dict()
    assert clone.describe() == layer.describe()
    for k, v in layer.state_arrays().items():
        np.testing.assert_array_equal(clone.state_arrays()[k], v)


@pytest.mark.parametrize("layer", new_layers(), ids=lambda layer: layer.kind)
def test_new_layers_disabled_pass_through(layer: Layer) -> None:
    layer.enabled = False
    x = randn(2, 3, 4, 4)
    assert layer.forward(x) is x
    assert layer.output_shape((3, 4, 4)) == (3, 4, 4)


def test_new_layers_in_a_network_validate_with_positions() -> None:
    net = Network([Conv2D(1, 3, 3), PReLU(3), GlobalAvgPool2D(), Flatten(), Dense(3, 2)])
    assert [s.ok for s in net.validate((1, 6, 6))] == [True] * 5
    bad = Network([Conv2D(1, 2, 3), PReLU(3)])
    assert bad.validate((1, 6, 6))[1].error == (
        "layer 2 (PReLU (3 slopes)) has 3 slopes, one per channel, but its input has 2 "
        "channels: set num_parameters to 2 or 1"
    )


# --------------------------------------------------------------------------------------
# live torch parity
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oracle() -> ModuleType:
    """``tests/golden/make_golden.py`` as a module: its torch translation of each layer."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    path = Path(__file__).resolve().parents[1] / "golden" / "make_golden.py"
    spec = importlib.util.spec_from_file_location("make_golden", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_golden", module)
    spec.loader.exec_module(module)
    return module


def live_layers() -> list[tuple[Layer, tuple[int, ...]]]:
    return [
        (Conv2D(4, 8, 3, padding=1, groups=4), (2, 4, 9, 8)),
        (Conv2D(6, 6, (3, 5), stride=2, padding=(1, 0, 2, 1), groups=6), (2, 6, 9, 10)),
        (Conv2D(6, 4, 3, dilation=(2, 1), groups=2, padding_mode="reflect", padding=2),
         (1, 6, 8, 8)),
        (Conv2D(3, 5, 2, padding=(0, 1, 1, 0)), (2, 3, 6, 7)),
        (MaxPool2D(3, 2, (1, 0, 0, 1)), (2, 3, 8, 7)),
        (AvgPool2D(3, 2, (0, 1, 1, 0), count_include_pad=False), (2, 3, 8, 7)),
        (AvgPool2D(3, 2, 1, ceil_mode=True, count_include_pad=False), (2, 3, 8, 7)),
        (Pad2D((2, 0, 1, 3), "reflect"), (2, 3, 5, 6)),
        (Pad2D((1, 1, 2, 0), value=0.5), (2, 3, 5, 6)),
        (GlobalAvgPool2D(), (3, 4, 6, 5)),
        (AdaptiveAvgPool2D((4, 3)), (2, 3, 9, 7)),
        (PReLU(3), (2, 3, 4, 4)),
        (Clip(0.0, 6.0), (2, 3, 4, 4)),
        (Softmax(1), (2, 5, 3, 3)),
        (Reshape((3, -1)), (2, 3, 4, 2)),
    ]  # fmt: skip


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("layer", "shape"), live_layers(), ids=lambda v: v.describe() if isinstance(v, Layer) else ""
)
def test_live_parity_with_torch(
    oracle: ModuleType, layer: Layer, shape: tuple[int, ...], dtype: type
) -> None:
    import torch

    rng = np.random.default_rng(7)
    layer.astype(dtype)
    for v in layer.params.values():
        v[...] = rng.standard_normal(v.shape)
    scale = 4.0 if isinstance(layer, Clip) else 1.0
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    layer.zero_grad()
    out = layer.forward(x)
    assert out.dtype == dtype
    grad_out = rng.standard_normal(out.shape).astype(dtype)
    grad_x = layer.backward(grad_out)
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in layer.state_arrays().items()}
    tx = torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        t_out = oracle.torch_layer(tx, layer.to_dict(), tparams)
    t_out.backward(torch.tensor(grad_out))
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == np.float64 else {"rtol": 2e-5, "atol": 2e-5}
    np.testing.assert_allclose(out, t_out.detach().numpy(), **tol)
    np.testing.assert_allclose(grad_x, tx.grad.numpy(), **tol)
    # parameter gradients sum over the whole batch: a looser absolute bound in float32
    param_tol = (
        {"rtol": 1e-9, "atol": 1e-11} if dtype == np.float64 else {"rtol": 1e-4, "atol": 1e-4}
    )
    for key in layer.params:
        np.testing.assert_allclose(
            layer.grads[key], tparams[key].grad.numpy(), **param_tol, err_msg=key
        )
