"""linear and flatten: hand-computed values, gradients by central differences, ShapeErrors."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_op_gradients

from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.engine.linear import (
    flatten,
    flatten_backward,
    flatten_forward,
    linear,
    linear_backward,
    linear_forward,
)


def test_linear_hand_computed() -> None:
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # (out=3, in=2)
    b = np.array([0.5, 0.0, -1.0])
    np.testing.assert_array_equal(linear(x, w, b), [[1.5, 2.0, 2.0], [3.5, -1.0, 1.0]])
    np.testing.assert_array_equal(linear(x, w), [[1.0, 2.0, 3.0], [3.0, -1.0, 2.0]])


def test_linear_backward_hand_computed() -> None:
    x = np.array([[1.0, 2.0]])
    w = np.array([[3.0, 4.0]])
    _, ctx = linear_forward(x, w, np.array([0.0]))
    gx, gw, gb = linear_backward(np.array([[2.0]]), ctx)
    np.testing.assert_array_equal(gx, [[6.0, 8.0]])  # g · W
    np.testing.assert_array_equal(gw, [[2.0, 4.0]])  # gᵀ · x
    np.testing.assert_array_equal(gb, [2.0])


def test_linear_unbatched_and_leading_dims() -> None:
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(4, 3)), rng.normal(size=4)
    x = rng.normal(size=(2, 5, 3))
    out = linear(x, w, b)
    assert out.shape == (2, 5, 4)
    np.testing.assert_allclose(linear(x[0, 0], w, b), out[0, 0])
    _, ctx = linear_forward(x, w, b)
    gx, gw, gb = linear_backward(np.ones((2, 5, 4)), ctx)
    assert gx.shape == x.shape
    assert gw.shape == w.shape
    assert gb.shape == b.shape


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("x_shape", [(3, 5), (5,), (2, 2, 5)])
def test_linear_gradients(with_bias: bool, x_shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=x_shape), rng.normal(size=(4, 5))
    b = rng.normal(size=4) if with_bias else None
    grads = check_op_gradients(linear_forward, linear_backward, [x, w, b])
    assert (grads[2] is None) == (not with_bias)


@pytest.mark.parametrize(
    ("xd", "wd", "bd", "out"),
    [
        (np.float32, np.float32, np.float32, np.float32),
        (np.float64, np.float64, np.float64, np.float64),
        (np.float32, np.float64, np.float32, np.float64),
        (np.int64, np.float32, np.float32, np.float32),
    ],
)
def test_linear_dtypes(xd: type, wd: type, bd: type, out: type) -> None:
    x = np.ones((2, 3), dtype=xd)
    w = np.ones((4, 3), dtype=wd)
    b = np.ones(4, dtype=bd)
    y, ctx = linear_forward(x, w, b)
    assert y.dtype == out
    gx, gw, gb = linear_backward(np.ones((2, 4), dtype=out), ctx)
    assert gx.dtype == (np.float64 if xd == np.float64 else np.float32)  # the dtype x computed in
    assert gw.dtype == wd
    assert gb.dtype == bd


def test_linear_feature_mismatch_names_numbers() -> None:
    with pytest.raises(ShapeError, match=r"12 features.*expects 16.*input size to 12"):
        linear(np.zeros((2, 12)), np.zeros((10, 16)))


def test_linear_bias_mismatch() -> None:
    with pytest.raises(ShapeError, match=r"bias has 3 values.*10 outputs"):
        linear(np.zeros((2, 16)), np.zeros((10, 16)), np.zeros(3))


@pytest.mark.parametrize(
    ("x", "w", "b", "msg"),
    [
        (np.zeros(()), np.zeros((2, 1)), None, "linear input must be"),
        (np.zeros((2, 3)), np.zeros(3), None, "linear weight must be 2-D"),
        (np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 1)), "linear bias must be 1-D"),
        (np.array([["a", "b"]]), np.zeros((2, 2)), None, "real numbers"),
        (np.zeros((1, 2), complex), np.zeros((2, 2)), None, "complex"),
    ],
)
def test_linear_bad_arguments(x: object, w: object, b: object, msg: str) -> None:
    with pytest.raises(ShapeError, match=msg):
        linear(x, w, b)


def test_linear_backward_wrong_grad_shape() -> None:
    _, ctx = linear_forward(np.zeros((2, 3)), np.zeros((4, 3)))
    with pytest.raises(ShapeError, match=r"grad_out has shape \(4, 2\)"):
        linear_backward(np.zeros((4, 2)), ctx)


def test_flatten_order_is_channel_row_column() -> None:
    x = np.arange(2 * 2 * 3 * 2, dtype=np.float64).reshape(2, 2, 3, 2)
    out = flatten(x)
    assert out.shape == (2, 12)
    # feature c·H·W + h·W + w is channel c, row h, column w (torch's nn.Flatten order)
    assert out[1, 1 * 6 + 2 * 2 + 1] == x[1, 1, 2, 1]


def test_flatten_backward_restores_shape() -> None:
    x = np.random.default_rng(0).normal(size=(2, 3, 2, 2))
    out, ctx = flatten_forward(x)
    g = np.arange(out.size, dtype=np.float64).reshape(out.shape)
    np.testing.assert_array_equal(flatten_backward(g, ctx), g.reshape(x.shape))
    check_op_gradients(flatten_forward, flatten_backward, [x])


def test_flatten_start_dim() -> None:
    x = np.zeros((2, 3, 4, 5))
    assert flatten(x, start_dim=2).shape == (2, 3, 20)
    assert flatten(x, start_dim=0).shape == (120,)
    assert flatten(x, start_dim=-1).shape == (2, 3, 4, 5)
    with pytest.raises(ShapeError, match="start_dim 4 is out of range"):
        flatten(x, start_dim=4)


def test_flatten_backward_wrong_size() -> None:
    _, ctx = flatten_forward(np.zeros((2, 3, 2, 2)))
    with pytest.raises(ShapeError, match="grad_out has 5 values"):
        flatten_backward(np.zeros(5), ctx)


def test_gradcheck_catches_a_wrong_backward() -> None:
    """The checker itself: a backward that forgets the transpose must be reported."""

    def wrong_backward(grad_out: np.ndarray, ctx: tuple) -> tuple:
        gx, gw, gb = linear_backward(grad_out, ctx)
        return gx, gw.T.reshape(gw.shape)[::-1], gb

    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 4)), rng.normal(size=4)
    with pytest.raises(AssertionError, match="gradient of input 1 wrong"):
        check_op_gradients(linear_forward, wrong_backward, [x, w, b])
