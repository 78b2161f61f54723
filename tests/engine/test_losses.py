"""softmax, log_softmax, cross_entropy: hand-computed values, stability, gradients, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import check_op_gradients
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.engine.losses import (
    cross_entropy,
    cross_entropy_backward,
    cross_entropy_forward,
    log_softmax,
    log_softmax_backward,
    log_softmax_forward,
    softmax,
    softmax_backward,
    softmax_forward,
)

LN2 = math.log(2.0)


# --- hand-computed values ----------------------------------------------------------------


def test_softmax_and_log_softmax_of_0_ln2() -> None:
    # e^0 : e^ln2 = 1 : 2, so the probabilities are 1/3 and 2/3
    np.testing.assert_allclose(softmax([0.0, LN2]), [1 / 3, 2 / 3], rtol=1e-15)
    np.testing.assert_allclose(
        log_softmax([0.0, LN2]), [math.log(1 / 3), math.log(2 / 3)], rtol=1e-15
    )


def test_softmax_is_shift_invariant_and_stable() -> None:
    x = np.array([[1000.0, 1000.0 + LN2], [-1000.0, -1000.0 + LN2]])
    np.testing.assert_allclose(softmax(x), [[1 / 3, 2 / 3]] * 2, rtol=1e-12)
    np.testing.assert_allclose(log_softmax(x), [[math.log(1 / 3), math.log(2 / 3)]] * 2)


def test_log_softmax_of_very_unlikely_class_is_finite() -> None:
    out = log_softmax(np.array([0.0, -1000.0]))
    np.testing.assert_allclose(out, [0.0, -1000.0])


def test_softmax_dim_argument() -> None:
    x = np.array([[0.0, LN2], [LN2, 0.0]])
    np.testing.assert_allclose(softmax(x, dim=0), [[1 / 3, 2 / 3], [2 / 3, 1 / 3]])
    np.testing.assert_allclose(softmax(x, dim=1).sum(axis=1), [1.0, 1.0])
    with pytest.raises(ShapeError, match="dim 2 is out of range for a 2-D input"):
        softmax(x, dim=2)
    with pytest.raises(ShapeError, match="dim -3 is out of range"):
        log_softmax(x, dim=-3)


def test_nonfinite_logits_are_computed_through() -> None:
    out = softmax(np.array([[0.0, -np.inf], [np.nan, 1.0], [np.inf, 0.0]]))
    np.testing.assert_array_equal(out[0], [1.0, 0.0])
    assert np.isnan(out[1]).all()
    assert np.isnan(out[2, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept(dtype: type) -> None:
    x = np.zeros((2, 3), dtype=dtype)
    assert softmax(x).dtype == dtype
    assert log_softmax(x).dtype == dtype
    assert softmax(x.astype(np.int32)).dtype == np.float32
    _, ctx = cross_entropy_forward(x, [0, 1])
    assert cross_entropy_backward(1.0, ctx).dtype == dtype


def test_cross_entropy_hand_computed() -> None:
    logits = np.array([[0.0, LN2], [0.0, LN2]])
    # −log(2/3) for the first sample (class 1), −log(1/3) for the second (class 0)
    l1, l0 = -math.log(2 / 3), -math.log(1 / 3)
    assert cross_entropy(logits, [1, 0]) == pytest.approx((l1 + l0) / 2, rel=1e-14)
    assert cross_entropy(logits, [1, 0], reduction="sum") == pytest.approx(l1 + l0, rel=1e-14)
    assert isinstance(cross_entropy(logits, [1, 0]), float)


def test_cross_entropy_uniform_logits_give_log_k() -> None:
    assert cross_entropy(np.zeros((4, 10)), np.arange(4)) == pytest.approx(math.log(10))


def test_cross_entropy_backward_hand_computed() -> None:
    _, ctx = cross_entropy_forward(np.array([[0.0, LN2], [0.0, LN2]]), np.array([1, 0]))
    grad = cross_entropy_backward(1.0, ctx)
    # (softmax − one_hot) / N
    np.testing.assert_allclose(grad, [[1 / 6, -1 / 6], [-1 / 3, 1 / 3]], rtol=1e-14)
    np.testing.assert_allclose(cross_entropy_backward(2.0, ctx), 2 * grad)
    np.testing.assert_allclose(cross_entropy_backward(ctx=ctx), grad)


def test_cross_entropy_unbatched() -> None:
    loss, ctx = cross_entropy_forward(np.array([0.0, LN2]), 1)
    assert loss == pytest.approx(-math.log(2 / 3))
    assert cross_entropy_backward(1.0, ctx).shape == (2,)


def test_cross_entropy_large_logits_stable() -> None:
    assert cross_entropy(np.array([[1e4, 0.0]]), [1]) == pytest.approx(1e4)
    assert cross_entropy(np.array([[1e4, 0.0]], dtype=np.float32), [0]) == 0.0


# --- gradients ---------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmax_gradients(dim: int) -> None:
    x = np.random.default_rng(0).normal(size=(3, 4))
    check_op_gradients(softmax_forward, softmax_backward, [x], {"dim": dim})
    check_op_gradients(log_softmax_forward, log_softmax_backward, [x], {"dim": dim})


def test_softmax_gradients_4d() -> None:
    x = np.random.default_rng(1).normal(size=(2, 3, 2, 2))
    check_op_gradients(softmax_forward, softmax_backward, [x], {"dim": 1})
    check_op_gradients(log_softmax_forward, log_softmax_backward, [x], {"dim": 1})


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_gradients(reduction: str) -> None:
    rng = np.random.default_rng(2)
    logits, target = rng.normal(size=(5, 4)) * 3, rng.integers(0, 4, size=5)
    check_op_gradients(
        cross_entropy_forward, cross_entropy_backward, [logits, target], {"reduction": reduction}
    )


@settings(max_examples=20, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=5),
        elements=st.floats(-50, 50),
    )
)
def test_softmax_properties(x: np.ndarray) -> None:
    p = softmax(x)
    assert np.all(p >= 0) and np.all(p <= 1)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_softmax(x)), p, rtol=1e-10, atol=1e-300)
    target = np.argmax(x, axis=1)
    assert cross_entropy(x, target) >= 0.0


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "msg"),
    [
        ([0, 3], r"target\[1\] = 3 is not a class: with 3 classes the labels must be 0 \.\. 2"),
        ([-1, 0], r"target\[0\] = -1 is not a class"),
        ([0, 1, 2], r"target has shape \(3,\) but the logits have 2 samples"),
        ([[0], [1]], r"target has shape \(2, 1\)"),
        ([0.0, 1.0], "integer class indices, got dtype float64"),
        ([True, False], "integer class indices, got dtype bool"),
    ],
)
def test_cross_entropy_bad_target(target: object, msg: str) -> None:
    with pytest.raises(ShapeError, match=msg):
        cross_entropy(np.zeros((2, 3)), target)


def test_cross_entropy_target_out_of_range_suggests_more_outputs() -> None:
    with pytest.raises(ShapeError, match="give the last layer 10 outputs"):
        cross_entropy(np.zeros((1, 3)), [9])


@pytest.mark.parametrize(
    ("logits", "msg"),
    [
        (np.zeros((2, 3, 4)), "must be 1-D or 2-D"),
        (np.zeros((0, 3)), "at least one sample"),
        (np.zeros((2, 0)), "at least one sample and one class"),
        (np.zeros((2, 3), dtype=complex), "complex"),
    ],
)
def test_cross_entropy_bad_logits(logits: np.ndarray, msg: str) -> None:
    with pytest.raises(ShapeError, match=msg):
        cross_entropy(logits, np.zeros(len(logits), dtype=int))


def test_cross_entropy_bad_reduction_and_ctx() -> None:
    with pytest.raises(ShapeError, match="reduction must be 'mean' or 'sum'"):
        cross_entropy(np.zeros((1, 2)), [0], reduction="none")  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="needs the ctx"):
        cross_entropy_backward(1.0)


def test_softmax_backward_wrong_grad_shape() -> None:
    _, ctx = softmax_forward(np.zeros((2, 3)))
    with pytest.raises(ShapeError, match=r"grad_out has shape \(3,\)"):
        softmax_backward(np.zeros(3), ctx)
    with pytest.raises(ShapeError, match="softmax input must be"):
        softmax(np.float64(1.0))
