"""Activations: hand-computed values, gradients by central differences, dtype and error rules,
the registry used by the Activation layer and the one-cell explanations for the UI."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import away_from_kinks, check_op_gradients
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cnn_explorer.engine import activations as act
from cnn_explorer.engine.errors import ShapeError

KINDS = list(act.ACTIVATIONS)


# --- hand-computed values ----------------------------------------------------------------


def test_relu_values() -> None:
    x = np.array([[-2.0, -0.5, 0.0], [0.5, 2.0, 3.0]], dtype=np.float32)
    np.testing.assert_array_equal(act.relu(x), [[0, 0, 0], [0.5, 2, 3]])


def test_relu_of_worked_example_is_unchanged() -> None:
    conv_out = np.array([[4.0, 2, 0], [2, 2, 2], [0, 2, 4]])
    np.testing.assert_array_equal(act.relu(conv_out), conv_out)


def test_leaky_relu_values() -> None:
    np.testing.assert_allclose(act.leaky_relu([-2.0, 0.0, 3.0]), [-0.02, 0.0, 3.0])
    np.testing.assert_allclose(act.leaky_relu([-2.0, 3.0], negative_slope=0.5), [-1.0, 3.0])


@pytest.mark.parametrize("slope", [-0.5, 0.0, 1.0, 3.0])
def test_leaky_relu_any_slope_matches_definition(slope: float) -> None:
    x = np.array([-3.0, -1.0, 0.0, 2.0, 5.0])
    np.testing.assert_allclose(act.leaky_relu(x, slope), np.where(x > 0, x, slope * x))


def test_sigmoid_values() -> None:
    np.testing.assert_allclose(act.sigmoid([0.0, math.log(3.0)]), [0.5, 0.75])
    np.testing.assert_allclose(act.sigmoid([-math.log(3.0)]), [0.25])


def test_sigmoid_extremes_do_not_overflow() -> None:
    # pytest turns warnings into errors, so an overflow in exp would fail here
    for dtype in (np.float32, np.float64):
        out = act.sigmoid(np.array([-1e4, -50.0, 100.0, 1e4], dtype=dtype))
        assert out.dtype == dtype
        np.testing.assert_allclose(out, [0.0, math.exp(-50.0), 1.0, 1.0], rtol=1e-6, atol=0)


def test_tanh_identity_values() -> None:
    np.testing.assert_allclose(act.tanh([0.0, math.atanh(0.5)]), [0.0, 0.5])
    x = np.array([-1.5, 2.0])
    out = act.identity(x)
    np.testing.assert_array_equal(out, x)
    assert not np.shares_memory(out, x)


def test_elu_gelu_softplus_values() -> None:
    np.testing.assert_allclose(act.elu([-math.log(2.0), 0.0, 2.0]), [-0.5, 0.0, 2.0])
    np.testing.assert_allclose(act.elu([-math.log(2.0)], alpha=2.0), [-1.0])
    np.testing.assert_allclose(act.gelu_tanh([0.0]), [0.0])
    # 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) at x = 1
    expected = 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * 1.044715))
    np.testing.assert_allclose(act.gelu_tanh([1.0]), [expected])
    np.testing.assert_allclose(act.softplus([0.0]), [math.log(2.0)])
    np.testing.assert_allclose(act.softplus([-50.0, 50.0]), [math.exp(-50.0), 50.0], rtol=1e-12)
    np.testing.assert_allclose(act.softplus([1.0], beta=2.0), [math.log1p(math.exp(2.0)) / 2])


def test_nan_and_inf_are_computed_through() -> None:
    x = np.array([np.nan, np.inf, -np.inf])
    np.testing.assert_array_equal(act.relu(x), [np.nan, np.inf, 0.0])
    np.testing.assert_array_equal(act.sigmoid(x), [np.nan, 1.0, 0.0])
    np.testing.assert_array_equal(act.tanh(x), [np.nan, 1.0, -1.0])
    np.testing.assert_array_equal(act.softplus(x), [np.nan, np.inf, 0.0])
    np.testing.assert_array_equal(act.elu(x), [np.nan, np.inf, -1.0])


@pytest.mark.parametrize(
    ("kind", "grad_at_nan"), [("relu", 2.0), ("elu", 2.0), ("leaky_relu", 0.02)]
)
def test_gradient_at_nan_follows_torch(kind: str, grad_at_nan: float) -> None:
    # torch tests "x <= 0" (relu, elu) or "x > 0" (leaky_relu); NaN fails both tests
    fwd, bwd = act.ACTIVATIONS[kind]
    _, ctx = fwd(np.array([np.nan, 1.0]))
    np.testing.assert_allclose(bwd(np.full(2, 2.0), ctx), [grad_at_nan, 2.0])


# --- dtype and shape rules ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("in_dtype", "out_dtype"),
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int64, np.float32),
        (np.bool_, np.float32),
        (np.float16, np.float32),
    ],
)
def test_dtype_rule(kind: str, in_dtype: type, out_dtype: type) -> None:
    x = np.array([[0, 1], [1, 0]], dtype=in_dtype)
    out, ctx = act.ACTIVATIONS[kind].forward(x)
    assert out.dtype == out_dtype
    assert out.shape == x.shape
    grad = act.ACTIVATIONS[kind].backward(np.ones(x.shape, dtype=out_dtype), ctx)
    assert grad.dtype == out_dtype
    assert grad.shape == x.shape
    np.testing.assert_array_equal(act.ACTIVATION_FUNCTIONS[kind](x), out)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 1, 3, 2)])
def test_any_shape_round_trip(kind: str, shape: tuple[int, ...]) -> None:
    x = np.linspace(-2.0, 2.0, int(np.prod(shape))).reshape(shape) + 0.1
    fwd, bwd = act.ACTIVATIONS[kind]
    out, ctx = fwd(x)
    assert isinstance(out, np.ndarray)
    assert out.shape == shape
    grad = bwd(np.ones(shape), ctx)
    assert isinstance(grad, np.ndarray)
    assert grad.shape == shape


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", [np.array([1 + 2j]), np.array(["a"]), np.array([object()])])
def test_non_real_input_raises(kind: str, bad: np.ndarray) -> None:
    with pytest.raises(ShapeError, match="real numbers"):
        act.ACTIVATION_FUNCTIONS[kind](bad)


def test_ragged_input_raises() -> None:
    with pytest.raises(ShapeError, match="rectangular"):
        act.relu([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize("kind", KINDS)
def test_backward_rejects_wrong_grad_shape(kind: str) -> None:
    fwd, bwd = act.ACTIVATIONS[kind]
    _, ctx = fwd(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"grad_out has shape \(3, 2\).*\(2, 3\)"):
        bwd(np.ones((3, 2)), ctx)


def test_forward_does_not_modify_input() -> None:
    x = np.array([-1.0, 2.0, -3.0])
    keep = x.copy()
    for kind in KINDS:
        act.ACTIVATIONS[kind].forward(x)
    np.testing.assert_array_equal(x, keep)


# --- gradients ---------------------------------------------------------------------------

SETTINGS: dict[str, list[dict[str, float]]] = {
    "leaky_relu": [{}, {"negative_slope": 0.2}, {"negative_slope": 2.5}],
    "elu": [{}, {"alpha": 0.5}],
    "softplus": [{}, {"beta": 2.0}, {"beta": 0.5, "threshold": 1.0}],
}


@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [(k, kw) for k in KINDS for kw in SETTINGS.get(k, [{}])],
)
def test_gradient_matches_central_differences(kind: str, kwargs: dict[str, float]) -> None:
    rng = np.random.default_rng(1)
    x = away_from_kinks(rng.normal(scale=2.0, size=(2, 3, 4)), kinks=(0.0, 2.0, 4.0))
    fwd, bwd = act.ACTIVATIONS[kind]
    check_op_gradients(fwd, bwd, [x], kwargs)


def test_relu_gradient_at_zero_is_zero() -> None:
    _, ctx = act.relu_forward([0.0, 1.0, -1.0])
    np.testing.assert_array_equal(act.relu_backward([5.0, 5.0, 5.0], ctx), [0.0, 5.0, 0.0])


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_is_finite_for_extreme_inputs(kind: str) -> None:
    x = np.array([-1e30, -800.0, -50.0, 50.0, 800.0, 1e30])
    _, ctx = act.ACTIVATIONS[kind].forward(x)
    grad = act.ACTIVATIONS[kind].backward(np.ones_like(x), ctx)
    assert np.all(np.isfinite(grad)), (kind, grad)
    assert np.all(grad >= -1e-12)  # every activation here is non-decreasing


@settings(max_examples=25, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
        elements=st.floats(-30, 30, allow_nan=False, allow_infinity=False),
    )
)
def test_sigmoid_equals_naive_formula_in_safe_range(x: np.ndarray) -> None:
    np.testing.assert_allclose(act.sigmoid(x), 1.0 / (1.0 + np.exp(-x)), rtol=1e-12, atol=1e-300)


# --- registry and explanations -----------------------------------------------------------


def test_registry_pairs_unpack_and_cover_the_contract() -> None:
    assert {"relu", "leaky_relu", "sigmoid", "tanh", "identity"} <= set(act.ACTIVATIONS)
    assert set(act.ACTIVATIONS) == set(act.ACTIVATION_FUNCTIONS) == set(act.ACTIVATION_LABELS)
    fwd, bwd = act.ACTIVATIONS["relu"]
    assert fwd is act.relu_forward
    assert bwd is act.relu_backward
    assert act.ACTIVATIONS["leaky_relu"].forward is act.leaky_relu_forward


def test_apply_activation_scalar() -> None:
    assert act.apply_activation_scalar("relu", -2) == 0.0
    assert act.apply_activation_scalar("leaky_relu", -2, negative_slope=0.1) == pytest.approx(-0.2)
    assert act.apply_activation_scalar("sigmoid", 0) == 0.5
    assert isinstance(act.apply_activation_scalar("tanh", 1), float)


@pytest.mark.parametrize(
    ("kind", "x", "kwargs", "text"),
    [
        ("relu", -2, {}, "ReLU(−2) = max(0, −2) = 0"),
        ("relu", 3.5, {}, "ReLU(3.5) = max(0, 3.5) = 3.5"),
        ("leaky_relu", -2, {}, "Leaky ReLU(−2) = 0.01 × (−2) = −0.02"),
        ("leaky_relu", -2, {"negative_slope": 0.2}, "Leaky ReLU(−2) = 0.2 × (−2) = −0.4"),
        ("leaky_relu", 4, {}, "Leaky ReLU(4) = 4"),
        ("sigmoid", 0, {}, "Sigmoid(0) = 1 / (1 + e^(−0)) = 0.5"),
        ("sigmoid", -2, {}, "Sigmoid(−2) = 1 / (1 + e^2) = 0.1192"),
        ("tanh", 1, {}, "Tanh(1) = tanh(1) = 0.7616"),
        ("identity", -1.25, {}, "Identity(−1.25) = −1.25"),
        ("elu", -1, {}, "ELU(−1) = (e^(−1) − 1) = −0.6321"),
        ("softplus", 0, {}, "Softplus(0) = ln(1 + e^0) = 0.6931"),
    ],
)
def test_describe_activation(kind: str, x: float, kwargs: dict[str, float], text: str) -> None:
    assert act.describe_activation(kind, x, **kwargs) == text


@pytest.mark.parametrize("kind", KINDS)
def test_describe_every_kind_ends_with_the_value(kind: str) -> None:
    for x in (-1.5, 0.0, 2.0, float("nan")):
        text = act.describe_activation(kind, x)
        value = act.apply_activation_scalar(kind, x)
        assert text.startswith(act.ACTIVATION_LABELS[kind].split(" (")[0] + "(")
        assert text.endswith("NaN" if math.isnan(value) else f"{value:.4g}".replace("-", "−"))


def test_unknown_kind_lists_choices() -> None:
    with pytest.raises(ShapeError, match=r"unknown activation 'swish'.*relu"):
        act.describe_activation("swish", 1.0)
