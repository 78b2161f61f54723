"""Layers: shapes and every ShapeError message, forward against torch, gradients by central
differences, accumulation, enable/freeze flags, init, config round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gradcheck import away_from_kinks, check_layer_gradients

from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.engine.layers import (
    LAYER_TYPES,
    Activation,
    AvgPool2D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
    layer_from_dict,
)


def all_layers() -> list[Layer]:
    return [
        Conv2D(2, 3, 3, stride=2, padding=1, dilation=1, rng=1),
        Conv2D(2, 2, (2, 3), padding="same", padding_mode="reflect", flip_kernel=True, rng=2),
        Activation("leaky_relu", negative_slope=0.2),
        MaxPool2D(2),
        AvgPool2D(3, 2, padding=1, ceil_mode=True),
        Flatten(),
        Dense(50, 4, rng=3),
        BatchNorm2D(2),
        Dropout(0.3, seed=4),
    ]


# ---------------------------------------------------------------------------- shapes
@pytest.mark.parametrize(
    ("layer", "shape", "expected"),
    [
        (Conv2D(1, 8, 3, padding=1), (1, 28, 28), (8, 28, 28)),
        (Conv2D(1, 1, 2), (1, 4, 4), (1, 3, 3)),
        (Conv2D(3, 4, 3, stride=2), (3, 7, 8), (4, 3, 3)),
        (Conv2D(1, 1, 3, dilation=2), (1, 7, 7), (1, 3, 3)),
        (Conv2D(1, 2, 4, padding="same"), (1, 5, 6), (2, 5, 6)),
        (Conv2D(1, 2, 3, padding=(0, 1, 2, 3)), (1, 5, 5), (2, 4, 8)),
        (MaxPool2D(2), (8, 28, 28), (8, 14, 14)),
        (MaxPool2D(2, 1), (1, 3, 3), (1, 2, 2)),
        (AvgPool2D(2, ceil_mode=True), (2, 5, 5), (2, 3, 3)),
        (Activation("tanh"), (2, 3, 4), (2, 3, 4)),
        (Flatten(), (16, 7, 7), (784,)),
        (Flatten(), (10,), (10,)),
        (Dense(784, 10), (784,), (10,)),
        (BatchNorm2D(3), (3, 4, 4), (3, 4, 4)),
        (Dropout(), (5,), (5,)),
    ],
)
def test_output_shape(layer: Layer, shape: tuple, expected: tuple) -> None:
    assert layer.output_shape(shape) == expected
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    assert layer.forward(x).shape == (2, *expected)
    assert layer.forward(x[0]).shape == expected


@pytest.mark.parametrize(
    ("layer", "shape", "message"),
    [
        (
            Conv2D(1, 1, 5, dilation=2),
            (1, 7, 7),
            "layer 2 (conv 5×5, 1→1, dilation 2 → effective 9×9) is larger than its padded "
            "input 7×7: add padding ≥ 1 or use a smaller kernel or dilation",
        ),
        (
            Conv2D(1, 1, 5),
            (1, 3, 4),
            "layer 2 (conv 5×5, 1→1) is larger than its padded input 3×4: add padding ≥ 1 or "
            "use a smaller kernel",
        ),
        (
            Conv2D(8, 16, 3),
            (1, 5, 5),
            "layer 2 (conv 3×3, 8→16) expects 8 input channels but its input has 1: set "
            "in_channels to 1",
        ),
        (
            Conv2D(1, 1, 3),
            (49,),
            "layer 2 (conv 3×3, 1→1) needs a (channels, height, width) map but its input is a "
            "vector of 49 values: move it before the Flatten/Dense layers",
        ),
        (
            Conv2D(1, 1, 3, padding=3, padding_mode="reflect"),
            (1, 3, 5),
            "layer 2 (conv 3×3, 1→1): reflect padding 3 must be smaller than the input height "
            "3: use padding ≤ 2 or padding_mode 'zeros'",
        ),
        (
            Conv2D(1, 1, 3, padding=4, padding_mode="circular"),
            (1, 5, 3),
            "layer 2 (conv 3×3, 1→1): circular padding 4 must be at most the input width 3: "
            "use padding ≤ 3 or padding_mode 'zeros'",
        ),
        (
            MaxPool2D(3, padding=2),
            (1, 5, 5),
            "layer 2 (maxpool 3×3, stride 3): padding 2 is more than half the kernel 3, so "
            "some windows would see only padding: use padding ≤ 1",
        ),
        (
            AvgPool2D(4),
            (2, 3, 3),
            "layer 2 (avgpool 4×4, stride 4) is larger than its padded input 3×3: add padding "
            "≥ 1 or use a smaller kernel",
        ),
        (
            MaxPool2D(2),
            (10,),
            "layer 2 (maxpool 2×2, stride 2) needs a (channels, height, width) map but its "
            "input is a vector of 10 values: move it before the Flatten/Dense layers",
        ),
        (
            Dense(392, 10),
            (8, 7, 7),
            "layer 2 (dense 392→10) needs a flat vector but its input is a 8×7×7 map: add a "
            "Flatten layer before it",
        ),
        (
            Dense(392, 10),
            (784,),
            "layer 2 (dense 392→10) expects 392 inputs but receives 784: set in_features to 784",
        ),
        (
            BatchNorm2D(4),
            (3, 2, 2),
            "layer 2 (BatchNorm 4) expects 4 channels but its input has 3: set num_features to 3",
        ),
    ],
)
def test_shape_errors_name_layer_numbers_and_fix(layer: Layer, shape: tuple, message: str) -> None:
    with pytest.raises(ShapeError) as info:
        layer.output_shape(shape, 1)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "make",
    [
        lambda: Conv2D(1, 1, 0),
        lambda: Conv2D(1, 1, 3, stride=0),
        lambda: Conv2D(1, 1, 3, dilation=-1),
        lambda: Conv2D(0, 1, 3),
        lambda: Conv2D(1, 1, 3, padding=-1),
        lambda: Conv2D(1, 1, 3, padding="bogus"),
        lambda: Conv2D(1, 1, 3, stride=2, padding="same"),
        lambda: Conv2D(1, 1, 3, padding_mode="mirror"),
        lambda: MaxPool2D(0),
        lambda: AvgPool2D(2, stride=0),
        lambda: Dense(0, 3),
        lambda: Activation("swish"),
        lambda: Dropout(1.0),
    ],
)
def test_bad_constructor_arguments_raise_shape_error(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ShapeError):
        make()


def test_forward_error_names_the_layer_position() -> None:
    from cnn_explorer.engine.network import Network

    net = Network([Activation("relu"), Conv2D(1, 1, 5)])
    with pytest.raises(ShapeError, match=r"^layer 2 \(conv 5×5, 1→1\) is larger"):
        net.forward(np.zeros((1, 3, 3), np.float32))


# ---------------------------------------------------------------------------- forward
def test_conv_forward_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    for mode in ("zeros", "reflect", "replicate", "circular"):
        conv = Conv2D(
            3, 4, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), padding_mode=mode, rng=rng
        )
        conv.params["bias"][...] = rng.standard_normal(4)
        ref = torch.nn.Conv2d(3, 4, (3, 2), (2, 1), 1, (1, 2), padding_mode=mode)
        with torch.no_grad():
            ref.weight.copy_(torch.from_numpy(conv.weight))
            ref.bias.copy_(torch.from_numpy(conv.bias))
            expected = ref(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(conv.forward(x), expected, rtol=1e-5, atol=1e-5)


def test_flip_kernel_is_true_convolution() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 5, 5))
    a = Conv2D(1, 1, 3, flip_kernel=True, bias=False, rng=rng).astype(np.float64)
    b = Conv2D(1, 1, 3, bias=False).astype(np.float64)
    b.params["weight"][...] = a.weight[:, :, ::-1, ::-1]
    np.testing.assert_allclose(a.forward(x), b.forward(x))


def test_pool_activation_dense_flatten_forward_match_torch() -> None:
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    t = torch.from_numpy(x)
    np.testing.assert_allclose(
        MaxPool2D(3, 2, 1, True).forward(x), F.max_pool2d(t, 3, 2, 1, ceil_mode=True).numpy()
    )
    np.testing.assert_allclose(
        AvgPool2D(2, 2, 1).forward(x), F.avg_pool2d(t, 2, 2, 1).numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(
        Activation("leaky_relu", negative_slope=0.1).forward(x), F.leaky_relu(t, 0.1).numpy()
    )
    flat = Flatten().forward(x)
    np.testing.assert_array_equal(flat, torch.flatten(t, 1).numpy())
    dense = Dense(147, 5, rng=rng)
    dense.params["bias"][...] = rng.standard_normal(5)
    expected = F.linear(
        torch.from_numpy(flat),
        torch.from_numpy(dense.params["weight"]),
        torch.from_numpy(dense.params["bias"]),
    ).numpy()
    np.testing.assert_allclose(dense.forward(flat), expected, rtol=1e-5, atol=1e-6)


def test_batchnorm_matches_torch_in_training_and_eval() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 5, 5)) * 2 + 1
    bn = BatchNorm2D(3).astype(np.float64)
    bn.params["gamma"][...] = rng.uniform(0.5, 1.5, 3)
    bn.params["beta"][...] = rng.standard_normal(3)
    ref = torch.nn.BatchNorm2d(3).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(bn.params["gamma"]))
        ref.bias.copy_(torch.from_numpy(bn.params["beta"]))
    tx = torch.from_numpy(x).requires_grad_(True)
    out = ref(tx)
    np.testing.assert_allclose(bn.forward(x, training=True), out.detach().numpy(), atol=1e-10)
    g = rng.standard_normal(x.shape)
    out.backward(torch.from_numpy(g))
    np.testing.assert_allclose(bn.backward(g), tx.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(bn.grads["gamma"], ref.weight.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(bn.buffers["running_mean"], ref.running_mean.numpy())
    np.testing.assert_allclose(bn.buffers["running_var"], ref.running_var.numpy())
    ref.eval()
    np.testing.assert_allclose(bn.forward(x), ref(tx).detach().numpy(), atol=1e-10)


def test_dropout_train_and_eval() -> None:
    x = np.ones((1000,), np.float32)
    d = Dropout(0.25, seed=1)
    np.testing.assert_array_equal(d.forward(x), x)
    y = d.forward(x, training=True)
    kept = y != 0
    assert 0.65 < kept.mean() < 0.85
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    np.testing.assert_array_equal(d.backward(np.ones_like(x)), y)
    d.reseed(1)
    np.testing.assert_array_equal(d.forward(x, training=True), y)


def test_disabled_layer_passes_input_through() -> None:
    x = np.random.default_rng(4).standard_normal((2, 1, 5, 5)).astype(np.float32)
    for layer in (Conv2D(1, 3, 3), MaxPool2D(2), Activation("relu"), Flatten()):
        layer.enabled = False
        assert layer.forward(x) is x
        assert layer.output_shape((1, 5, 5)) == (1, 5, 5)
        g = np.ones_like(x)
        assert layer.backward(g) is g
        assert layer.window() is None


def test_nan_and_inf_are_computed_through() -> None:
    x = np.array([[[np.nan, 1.0], [np.inf, -1.0]]], np.float32)
    with np.errstate(invalid="ignore"):
        out = Conv2D(1, 1, 1, bias=False, rng=0).forward(x)
    assert np.isnan(out[0, 0, 0]) and np.isinf(out[0, 1, 0])
    assert np.isnan(Activation("relu").forward(x)[0, 0, 0])


# ---------------------------------------------------------------------------- gradients
@pytest.mark.parametrize(
    "layer",
    [
        Conv2D(2, 3, 3, stride=2, padding=1, rng=1),
        Conv2D(2, 2, (2, 3), dilation=(2, 1), padding=(1, 0, 2, 1), padding_mode="reflect", rng=2),
        Conv2D(2, 2, 3, padding=1, padding_mode="circular", flip_kernel=True, bias=False, rng=5),
        MaxPool2D(2),
        MaxPool2D(3, 2, 1, ceil_mode=True),
        AvgPool2D(3, 2, 1, ceil_mode=True),
        Activation("relu"),
        Activation("sigmoid"),
        Flatten(),
        BatchNorm2D(2),
    ],
    ids=lambda layer: layer.describe(),
)
def test_layer_gradients_by_central_differences(layer: Layer) -> None:
    layer.astype(np.float64)
    if isinstance(layer, BatchNorm2D):
        layer.params["gamma"][...] = [0.7, 1.3]
        layer.buffers["running_var"][...] = [0.5, 2.0]
    x = away_from_kinks(np.random.default_rng(6).standard_normal((2, 2, 6, 5)))
    check_layer_gradients(layer, x)


def test_dense_gradients_by_central_differences() -> None:
    layer = Dense(7, 3, rng=0).astype(np.float64)
    check_layer_gradients(layer, np.random.default_rng(7).standard_normal((4, 7)))


def test_backward_accumulates_until_zero_grad() -> None:
    conv = Conv2D(1, 2, 3, rng=0)
    x = np.random.default_rng(8).standard_normal((2, 1, 5, 5)).astype(np.float32)
    g = np.ones((2, 2, 3, 3), np.float32)
    conv.forward(x)
    conv.backward(g)
    once = {k: v.copy() for k, v in conv.grads.items()}
    conv.forward(x)
    conv.backward(g)
    for k in once:
        np.testing.assert_allclose(conv.grads[k], 2 * once[k], rtol=1e-6)
    ids = {k: id(v) for k, v in conv.grads.items()}
    conv.zero_grad()
    assert all(not v.any() for v in conv.grads.values())
    assert ids == {k: id(v) for k, v in conv.grads.items()}


def test_backward_before_forward_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        Conv2D(1, 1, 3).backward(np.zeros((1, 1, 1)))


# ---------------------------------------------------------------------------- init, flags
def test_he_and_xavier_init_are_seeded_and_scaled() -> None:
    a = Conv2D(16, 32, 3, rng=np.random.default_rng(0))
    b = Conv2D(16, 32, 3, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a.weight, b.weight)
    assert a.weight.dtype == np.float32 and not a.bias.any()
    assert a.weight.std() == pytest.approx(np.sqrt(2 / 144), rel=0.05)
    d = Dense(300, 200, rng=1)
    limit = np.sqrt(6 / 500)
    assert np.abs(d.params["weight"]).max() <= limit
    assert d.params["weight"].std() == pytest.approx(limit / np.sqrt(3), rel=0.05)
    z = Conv2D(1, 1, 3, init="zeros")
    assert not z.weight.any()
    with pytest.raises(ValueError, match="unknown init"):
        Conv2D(1, 1, 3, init="bogus")


def test_frozen_flag() -> None:
    conv = Conv2D(1, 1, 3)
    assert conv.trainable and not conv.frozen
    conv.frozen = True
    assert not conv.trainable


def test_describe_labels() -> None:
    assert Conv2D(1, 1, 2).describe() == "Conv 2×2, 1→1, stride 1"
    assert (
        Conv2D(1, 8, 3, stride=2, padding=1, dilation=2, padding_mode="reflect").describe()
        == "Conv 3×3, 1→8, stride 2, pad 1 reflect, dilation 2"
    )
    assert MaxPool2D(2).describe() == "MaxPool 2×2, stride 2"
    assert AvgPool2D(3, 1, 1, True).describe() == "AvgPool 3×3, stride 1, pad 1, ceil"
    assert Activation("relu").describe() == "ReLU"
    assert (
        Activation("leaky_relu", negative_slope=0.1).describe() == "Leaky ReLU (negative_slope=0.1)"
    )
    assert Dense(784, 10).describe() == "Dense 784→10"
    assert Flatten().describe() == "Flatten"


# ---------------------------------------------------------------------------- config
@pytest.mark.parametrize("layer", all_layers(), ids=lambda layer: layer.kind)
def test_to_dict_from_dict_round_trip(layer: Layer) -> None:
    layer.name = f"my {layer.kind}"
    layer.enabled = False
    layer.trainable = False
    config = json.loads(json.dumps(layer.to_dict()))
    arrays = {k: v + 1 for k, v in layer.state_arrays().items()}
    clone = layer_from_dict(config, arrays)
    assert type(clone) is type(layer)
    assert clone.to_dict() == layer.to_dict()
    assert clone.describe() == layer.describe()
    for k, v in arrays.items():
        np.testing.assert_array_equal(clone.state_arrays()[k], v)
    assert Layer.from_dict(config).to_dict() == layer.to_dict()


def test_from_dict_errors() -> None:
    with pytest.raises(ValueError, match="unknown layer kind"):
        layer_from_dict({"kind": "transformer"})
    with pytest.raises(ValueError, match="not 'conv'"):
        Conv2D.from_dict({"kind": "dense", "in_features": 1, "out_features": 1})
    with pytest.raises(ValueError, match="has shape"):
        Dense.from_dict(Dense(3, 2).to_dict(), {"weight": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="no parameter"):
        Dense.from_dict(Dense(3, 2).to_dict(), {"gamma": np.zeros(2)})


def test_every_kind_is_registered() -> None:
    # Kinds from merge.py / extra_layers.py are covered by tests/engine/test_graph*.py.
    here = {cls for cls in LAYER_TYPES.values() if cls.__module__ == Layer.__module__}
    assert {type(layer) for layer in all_layers()} == here


def test_a_frozen_batchnorm_keeps_its_statistics_while_the_rest_trains() -> None:
    """Fine-tuning with a BatchNorm frozen: in training mode it normalises with its running
    statistics (as in inference) and leaves them bit for bit, yet passes gradients on."""
    rng = np.random.default_rng(0)
    bn = BatchNorm2D(2)
    bn.buffers["running_mean"][...] = [0.5, -1.0]
    bn.buffers["running_var"][...] = [2.0, 0.25]
    before = {k: v.copy() for k, v in bn.state_arrays().items()}
    x = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    inference = bn.forward(x, training=False)
    bn.trainable = False
    out = bn.forward(x, training=True)
    np.testing.assert_array_equal(out, inference)
    for key, value in bn.state_arrays().items():
        np.testing.assert_array_equal(value, before[key])
    grad = bn.backward(np.ones_like(out))
    inv = 1 / np.sqrt(np.array([2.0, 0.25], np.float32) + bn.eps)
    np.testing.assert_allclose(grad, np.broadcast_to(inv[None, :, None, None], x.shape), rtol=1e-6)
    bn.trainable = True
    bn.forward(x, training=True)
    assert not np.array_equal(bn.buffers["running_mean"], before["running_mean"])
