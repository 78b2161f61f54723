"""Network: every map, partial recompute, validation statuses, non-finite reports, whole-
network gradients (central differences and torch autograd), builders, config round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gradcheck import assert_gradient_close, numerical_gradient

from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.engine.layers import (
    Activation,
    AvgPool2D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
)
from cnn_explorer.engine.network import (
    NO_INPUT,
    Network,
    default_classifier,
    with_classifier_head,
)

WORKED = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], np.float32)[None]


def worked_network() -> Network:
    conv = Conv2D(1, 1, 2, bias=False)
    conv.params["weight"][...] = 1
    return Network([conv, Activation("relu"), MaxPool2D(2, stride=1)])


def test_worked_example_maps() -> None:
    maps = worked_network().forward(WORKED)
    assert len(maps) == 4 and maps[0] is not None
    np.testing.assert_array_equal(maps[0], WORKED)
    np.testing.assert_array_equal(maps[1][0], [[4, 2, 0], [2, 2, 2], [0, 2, 4]])
    np.testing.assert_array_equal(maps[2], maps[1])
    np.testing.assert_array_equal(maps[3][0], [[4, 2], [2, 4]])


def test_forward_from_recomputes_only_later_layers() -> None:
    net = default_classifier((1, 12, 12), 3, seed=1)
    x = np.random.default_rng(0).standard_normal((1, 12, 12)).astype(np.float32)
    maps = net.forward(x)
    net.layers[3].params["weight"] *= -1  # edit the second conv
    partial = net.forward_from(3, maps)
    assert all(partial[i] is maps[i] for i in range(4))
    full = net.forward(x)
    for a, b in zip(partial, full, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(partial[4], maps[4])
    with pytest.raises(IndexError):
        net.forward_from(5, maps[:3])


def test_call_returns_last_map_and_batches_work() -> None:
    net = default_classifier((1, 8, 8), 4)
    x = np.random.default_rng(1).standard_normal((5, 1, 8, 8)).astype(np.float32)
    out = net(x)
    assert out.shape == (5, 4)
    np.testing.assert_allclose(net.forward(x)[-1], out)
    np.testing.assert_allclose(net(x[2]), out[2], rtol=1e-5, atol=1e-6)
    assert net.predict(x).shape == (5,)
    proba = net.predict_proba(x, batch_size=2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)


def test_validate_statuses() -> None:
    net = Network(
        [Conv2D(1, 4, 3), Activation("relu"), MaxPool2D(2), Conv2D(4, 2, 5), Flatten(), Dense(8, 2)]
    )
    ok = net.validate((1, 10, 10))
    assert [s.output_shape for s in ok] == [(4, 8, 8), (4, 8, 8), (4, 4, 4), None, None, None]
    assert ok[0].ok and ok[0].message == "1×10×10 → 4×8×8"
    assert not ok[3].ok and ok[3].error is not None
    assert ok[3].error.startswith("layer 4 (conv 5×5, 4→2) is larger than its padded input 4×4")
    assert [s.error for s in ok[4:]] == [NO_INPUT, NO_INPUT]
    assert ok[5].input_shape is None
    good = net.validate((1, 14, 14))
    assert all(s.ok for s in good) and good[-1].output_shape == (2,)
    assert net.output_shape((1, 14, 14)) == (2,)
    with pytest.raises(ShapeError, match=r"^layer 4"):
        net.output_shapes((1, 10, 10))
    assert Network([]).validate((1, 2, 2)) == []


def test_validate_dense_on_map_and_wrong_channels() -> None:
    net = Network([Dense(16, 2), Conv2D(3, 1, 1)])
    statuses = net.validate((1, 4, 4))
    assert "add a Flatten layer before it" in statuses[0].message
    assert statuses[1].message == NO_INPUT
    statuses = Network([Conv2D(3, 1, 1)]).validate((1, 4, 4))
    assert statuses[0].error == (
        "layer 1 (conv 1×1, 3→1) expects 3 input channels but its input has 1: set in_channels to 1"
    )


def test_nonfinite_values_are_reported_not_raised() -> None:
    net = worked_network()
    x = WORKED.copy()
    x[0, 0, 0] = np.nan
    x[0, 3, 3] = np.inf
    with np.errstate(invalid="ignore"):
        maps = net.forward(x)
    reports = net.nonfinite_reports(maps)
    assert reports[0] == "the input contains 1 NaN and 1 infinite values"
    assert reports[1].startswith("layer 1 (Conv 2×2, 1→1, stride 1) output contains")
    assert len(reports) == 4
    assert net.nonfinite_reports(net.forward(WORKED)) == []


def _tiny_classifier(seed: int = 0) -> Network:
    net = default_classifier((1, 8, 8), 3, seed=seed)
    return net.astype(np.float64)


def test_whole_network_gradient_by_central_differences() -> None:
    net = _tiny_classifier()
    rng = np.random.default_rng(2)
    for layer in net.layers:  # non-zero biases exercise the bias gradients
        if "bias" in layer.params:
            layer.params["bias"][...] = rng.standard_normal(layer.params["bias"].shape) * 0.1
    x = rng.standard_normal((2, 1, 8, 8))
    y = np.array([0, 2])
    loss, _ = net.loss_and_grads(x, y)
    analytic = {k: g.copy() for k, g in net.gradients()}

    def f() -> float:
        from cnn_explorer.engine.losses import cross_entropy

        return cross_entropy(net(x), y)

    assert f() == pytest.approx(loss)
    for key, param in net.parameters():
        assert_gradient_close(analytic[key], numerical_gradient(f, param), key, 1e-5, 1e-8)
    # the input gradient too (a saliency map)
    net.zero_grad()
    from cnn_explorer.engine.losses import cross_entropy_backward, cross_entropy_forward

    _, ctx = cross_entropy_forward(net(x, training=True), y)
    gx = net.backward(cross_entropy_backward(1.0, ctx))
    assert_gradient_close(gx, numerical_gradient(f, x), "input", 1e-5, 1e-8)


def test_whole_network_gradients_match_torch_autograd() -> None:
    torch = pytest.importorskip("torch")
    net = Network(
        [
            Conv2D(2, 4, 3, padding=1, padding_mode="reflect", rng=0),
            Activation("tanh"),
            AvgPool2D(2),
            Conv2D(4, 5, 3, stride=2, dilation=1, padding=1, rng=1),
            Activation("leaky_relu", negative_slope=0.1),
            MaxPool2D(2, ceil_mode=True),
            Flatten(),
            Dense(5 * 2 * 2, 3, rng=2),
        ]
    ).astype(np.float64)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 2, 12, 12))
    y = np.array([0, 1, 2, 1])
    loss, _ = net.loss_and_grads(x, y)

    nn = torch.nn
    ref = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect"),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Conv2d(4, 5, 3, stride=2, padding=1),
        nn.LeakyReLU(0.1),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Flatten(),
        nn.Linear(20, 3),
    ).double()
    torch_params = dict(ref.named_parameters())
    mapping = {}
    for key, value in net.parameters():
        i, name = key.split(".")
        tkey = f"{i}.{'weight' if name == 'weight' else 'bias'}"
        with torch.no_grad():
            torch_params[tkey].copy_(torch.from_numpy(value))
        mapping[key] = tkey
    tloss = nn.functional.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    grads = dict(net.gradients())
    for key, tkey in mapping.items():
        np.testing.assert_allclose(
            grads[key], torch_params[tkey].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=key
        )


def test_parameters_order_and_trainable_filter() -> None:
    net = default_classifier((1, 8, 8), 3)
    keys = [k for k, _ in net.parameters()]
    assert keys == ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias"]
    assert [k for k, _ in net.gradients()] == keys
    net.layers[3].frozen = True
    net.layers[7].enabled = False
    assert [k for k, _, _ in net.trainable_parameters()] == ["0.weight", "0.bias"]
    assert net.param_count() == 80 + 1168 + (16 * 2 * 2 * 3 + 3)


def test_default_classifier_and_head() -> None:
    net = default_classifier((1, 28, 28), 10, seed=0)
    kinds = [layer.kind for layer in net]
    assert kinds == [
        "conv",
        "activation",
        "max_pool",
        "conv",
        "activation",
        "max_pool",
        "flatten",
        "dense",
    ]
    assert net.output_shape((1, 28, 28)) == (10,)
    again = default_classifier((1, 28, 28), 10, seed=0)
    for (_, a), (_, b) in zip(net.parameters(), again.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)
    other = default_classifier((1, 28, 28), 10, seed=1)
    assert not np.array_equal(net.layers[0].weight, other.layers[0].weight)

    convs = [Conv2D(3, 2, 5), Activation("relu"), AvgPool2D(2)]
    full = with_classifier_head(convs, (3, 16, 16), 4, seed=2)
    assert [lay.to_dict() for lay in full.layers[:3]] == [lay.to_dict() for lay in convs]
    assert full.layers[0] is not convs[0]  # a copy: training never races the explorer
    np.testing.assert_array_equal(full.layers[0].weight, convs[0].weight)
    assert with_classifier_head(convs, (3, 16, 16), 4, copy=False).layers[0] is convs[0]
    assert isinstance(full.layers[3], Flatten) and isinstance(full.layers[4], Dense)
    assert full.layers[4].in_features == 2 * 6 * 6
    assert full.output_shape((3, 16, 16)) == (4,)
    with pytest.raises(ShapeError):
        with_classifier_head([Conv2D(1, 1, 9)], (1, 4, 4), 2)


def test_to_dict_from_dict_and_copy() -> None:
    net = Network(
        [
            Conv2D(1, 2, 3, rng=0),
            BatchNorm2D(2),
            Activation("relu"),
            Dropout(0.2),
            MaxPool2D(2),
            Flatten(),
            Dense(8, 2, rng=1),
        ]
    )
    net.layers[1].buffers["running_mean"][...] = [0.5, -0.5]
    config = json.loads(json.dumps(net.to_dict()))
    clone = Network.from_dict(config, net.state_arrays())
    assert clone.to_dict() == net.to_dict()
    x = np.random.default_rng(4).standard_normal((1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(clone(x), net(x))
    copy = net.copy()
    copy.layers[0].params["weight"] += 1
    assert not np.array_equal(copy.layers[0].weight, net.layers[0].weight)
    wide = net.copy().astype(np.float64).copy()
    assert all(p.dtype == np.float64 for _, p in wide.parameters())
    assert all(g.dtype == np.float64 for _, g in wide.gradients())


def test_explain_cell_with_batched_maps() -> None:
    net = worked_network()
    maps = net.forward(np.stack([WORKED, 2 * WORKED]))
    e = net.explain_cell(maps, 0, 0, 0, sample=1)
    assert e.result == 8


def _full_backward_grads(net: Network, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Parameter gradients the plain way: forward, then backward through every layer."""
    from cnn_explorer.engine import losses

    net.zero_grad()
    logits = net(x, True)
    _, ctx = losses.cross_entropy_forward(logits, y)
    net.backward(losses.cross_entropy_backward(1.0, ctx))
    return [g.copy() for _, g in net.gradients()]


@pytest.mark.parametrize(
    "case", ["conv_first", "activation_first", "first_conv_disabled", "dense_only"]
)
def test_loss_and_grads_stops_at_the_first_layer_with_parameters(case: str) -> None:
    """Training skips the input gradient (layers before the first trainable one, and the
    first Conv2D's ``Wᵀ @ G`` product) without changing any parameter gradient."""
    rng = np.random.default_rng(3)
    head = [Flatten(), Dense(4 * 4 * 4, 3, rng=rng)]
    if case == "dense_only":
        layers: list = [Flatten(), Dense(1 * 8 * 8, 3, rng=rng)]
    else:
        layers = [
            Conv2D(1, 2, 3, padding=1, rng=rng),
            Activation("relu"),
            Conv2D(2, 4, 3, padding=1, rng=rng),
            MaxPool2D(2),
            *head,
        ]
        if case == "activation_first":
            layers = [Activation("tanh"), *layers]
        if case == "first_conv_disabled":
            layers = [Conv2D(1, 1, 3, padding=1, rng=rng), *layers]
            layers[0].enabled = False
    net = Network(layers)
    x = rng.standard_normal((5, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 5)
    expected = _full_backward_grads(net, x, y)
    net.loss_and_grads(x, y)
    got = [g for _, g in net.gradients()]
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_conv_backward_params_matches_backward() -> None:
    rng = np.random.default_rng(4)
    conv = Conv2D(2, 3, 3, padding=1, padding_mode="reflect", rng=rng)
    x = rng.standard_normal((2, 2, 6, 7)).astype(np.float32)
    grad = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    conv.forward(x, training=True)
    conv.backward(grad)
    expected = {k: v.copy() for k, v in conv.grads.items()}
    conv.zero_grad()
    conv.backward_params(grad)
    for k, v in expected.items():
        np.testing.assert_allclose(conv.grads[k], v, rtol=1e-6, atol=1e-6)
    with pytest.raises(RuntimeError, match="before forward"):
        Conv2D(1, 1, 3).backward_params(grad)


@pytest.mark.parametrize("with_nan", [False, True])
def test_training_swaps_relu_and_max_pool_without_changing_anything(with_nan: bool) -> None:
    """loss_and_grads runs max pool before ReLU (cheaper, same numbers): the loss, logits
    and every gradient must equal those of the layers in their written order, bit for bit."""
    rng = np.random.default_rng(5)
    net = Network(
        [
            Conv2D(1, 3, 3, padding=1, rng=rng),
            Activation("relu"),
            MaxPool2D(2),
            Flatten(),
            Dense(3 * 4 * 4, 4, rng=rng),
        ]
    )
    assert net._training_order() == [0, 2, 1, 3, 4]
    x = rng.standard_normal((6, 1, 8, 8)).astype(np.float32)
    if with_nan:
        x[0, 0, 2, 3] = np.nan
    y = rng.integers(0, 4, 6)
    with np.errstate(all="ignore"):
        loss, logits = net.loss_and_grads(x, y)
        got = [g.copy() for _, g in net.gradients()]
        expected = _full_backward_grads(net, x, y)
        plain = net(x, True)
    np.testing.assert_array_equal(logits, plain)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.isnan(loss) == with_nan
