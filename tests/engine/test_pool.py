"""max_pool2d / avg_pool2d: examples by hand (incl. torch's ceil_mode and divisor rules),
fast path vs the naive loops, gradients (central differences and routing rules), every
ShapeError, and (when installed) live torch parity."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_op_gradients
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import (
    avg_pool2d_naive,
    max_pool2d_backward_naive,
    max_pool2d_naive,
    pool_output_size,
)

from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.engine.pool import (
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
    pool_geometry,
)

FMAP = np.array([[4.0, 2, 0], [2, 2, 2], [0, 2, 4]])


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _distinct(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Values with no ties and gaps ≫ ε, so max pooling is differentiable everywhere."""
    size = int(np.prod(shape))
    return _rng(seed).permutation(size).reshape(shape).astype(np.float64) * 0.1


# --------------------------------------------------------------------------- by hand


def test_worked_example_max_pool() -> None:
    np.testing.assert_array_equal(max_pool2d(FMAP[None], 2, stride=1), [[[4, 2], [2, 4]]])


def test_default_stride_is_the_kernel() -> None:
    x = np.arange(16.0).reshape(1, 4, 4)
    np.testing.assert_array_equal(max_pool2d(x, 2), [[[5, 7], [13, 15]]])
    np.testing.assert_array_equal(avg_pool2d(x, 2), [[[2.5, 4.5], [10.5, 12.5]]])


def test_ceil_mode_partial_windows_by_hand() -> None:
    x = np.arange(25.0).reshape(1, 5, 5)
    # The last row/column of windows hangs past the input and covers 1 row/column.
    expected = [[3, 5, 6.5], [13, 15, 16.5], [20.5, 22.5, 24]]
    for include in (True, False):  # no padding: the clipped window is all input
        np.testing.assert_allclose(
            avg_pool2d(x, 2, ceil_mode=True, count_include_pad=include)[0], expected
        )
    np.testing.assert_array_equal(
        max_pool2d(x, 2, ceil_mode=True)[0], [[6, 8, 9], [16, 18, 19], [21, 23, 24]]
    )


def test_avg_divisor_with_padding_and_ceil_mode_by_hand() -> None:
    x = np.arange(25.0).reshape(1, 5, 5)
    out = avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)[0]
    # Top-left window covers rows/cols -1..1: real cells 0+1+5+6 = 12, divided by 9
    # (padding counts). Bottom-right covers rows/cols 3..5, inside the padded input
    # 5 + 1: still 9 cells, 18+19+23+24 = 84.
    assert out[0, 0] == pytest.approx(12 / 9)
    assert out[2, 2] == pytest.approx(84 / 9)
    out = avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)[0]
    assert out[0, 0] == pytest.approx(12 / 4)
    assert out[2, 2] == pytest.approx(84 / 4)


def test_ceil_mode_overhang_past_padding_shrinks_the_divisor() -> None:
    # n=6, k=3, s=2, p=1, ceil: windows start at -1, 1, 3, 5; the last covers 5..7 but the
    # padded input ends at 6, so even count_include_pad=True divides by 2 (cells 5, 6).
    x = np.ones((1, 1, 6))
    out = avg_pool2d(x, (1, 3), stride=(1, 2), padding=(0, 1), ceil_mode=True)
    np.testing.assert_allclose(out[0, 0], [2 / 3, 1, 1, 1 / 2])


def test_ceil_mode_drops_a_window_starting_in_the_padding() -> None:
    # n=3, k=2, s=2, p=1: ceil would give 3 windows, but the third would start at 3 = n,
    # in the right padding, so torch keeps 2.
    assert pool_output_size(3, 2, 2, 1, 1, 1, True) == 2
    assert max_pool2d(np.zeros((1, 3, 3)), 2, padding=1, ceil_mode=True).shape == (1, 2, 2)
    # ... but a window starting inside the input is kept: n=4 gives 3.
    assert max_pool2d(np.zeros((1, 4, 4)), 2, padding=1, ceil_mode=True).shape == (1, 3, 3)


def test_max_padding_never_wins() -> None:
    x = -np.ones((1, 2, 2))
    np.testing.assert_array_equal(max_pool2d(x, 2, stride=1, padding=1), -np.ones((1, 3, 3)))


def test_max_backward_ties_go_to_the_first_and_overlaps_sum() -> None:
    x = np.array([[[1.0, 3.0, 3.0], [0.0, 3.0, 2.0]]])
    out, ctx = max_pool2d_forward(x, 2, stride=1)
    np.testing.assert_array_equal(out, [[[3, 3]]])
    gx = max_pool2d_backward(np.array([[[1.0, 10.0]]]), ctx)
    # Window 1 (cols 0-1) picks the 3 at (0, 1); window 2 (cols 1-2) also picks (0, 1),
    # the first 3 in row-major order: their gradients add up there.
    np.testing.assert_array_equal(gx, [[[0, 11, 0], [0, 0, 0]]])


def test_max_nan_propagates_and_the_last_nan_wins() -> None:
    x = np.array([[[1.0, np.nan, 3.0, np.nan]]])
    out, ctx = max_pool2d_forward(x, (1, 4))
    assert np.isnan(out).all()
    np.testing.assert_array_equal(max_pool2d_backward(np.ones((1, 1, 1)), ctx), [[[0, 0, 0, 1]]])


def test_non_finite_values_need_no_errstate() -> None:
    x = np.array([[[np.inf, -np.inf, 3e38, 3e38], [np.nan, 1.0, 3e38, 3e38]]], np.float32)
    out, ctx = avg_pool2d_forward(x, 2)
    assert np.isnan(out[0, 0, 0]) and np.isinf(out[0, 0, 1])  # inf − inf; overflow
    avg_pool2d_backward(np.ones_like(out), ctx)
    out, ctx = max_pool2d_forward(x, 2, stride=1, padding=1)
    max_pool2d_backward(np.ones_like(out), ctx)


def test_all_minus_infinity_window_routes_to_a_real_cell() -> None:
    x = np.full((1, 1, 3), -np.inf)
    out, ctx = max_pool2d_forward(x, (1, 2), stride=1, padding=(0, 1))
    assert np.all(out == -np.inf)
    gx = max_pool2d_backward(np.ones((1, 1, 4)), ctx)
    np.testing.assert_array_equal(gx, [[[2, 1, 1]]])  # as torch: first in-bounds cell


# --------------------------------------------------------------------------- fast vs naive

GRID = [
    # kernel, stride, padding, dilation, ceil_mode
    (2, None, 0, 1, False),
    (2, 1, 1, 1, False),
    (3, 2, 1, 1, True),
    ((3, 2), (2, 3), (1, 0), 1, True),
    (3, 2, (0, 1, 1, 0), 2, False),
    ((2, 3), 1, (1, 1), (2, 1), True),
    (4, 3, 2, 1, True),
    # tiling windows (stride = kernel): the training forward gathers window positions
    (3, 3, 1, 1, True),
    ((2, 3), (2, 3), (1, 0), 1, True),
    ((1, 2), (1, 2), 0, 1, False),
]
AVG_GRID = [row for row in GRID if row[3] == 1]  # avg_pool2d has no dilation (as torch)
TORCH_GRID = [row for row in GRID if not (isinstance(row[2], tuple) and len(row[2]) == 4)]


@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "ceil"), GRID)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_matches_naive_grid(
    kernel: object, stride: object, padding: object, dilation: object, ceil: bool, dtype: type
) -> None:
    x = _rng(1).standard_normal((2, 3, 9, 8)).astype(dtype)
    g = pool_geometry(x.shape, kernel, stride, padding, dilation, ceil)
    out, ctx = max_pool2d_forward(x, kernel, stride, padding, dilation, ceil)
    ref, arg = max_pool2d_naive(x, g.kernel, g.stride, g.padding, g.dilation, ceil)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, ref.astype(dtype))
    np.testing.assert_array_equal(max_pool2d(x, kernel, stride, padding, dilation, ceil), out)
    grad = _rng(2).standard_normal(out.shape).astype(dtype)
    np.testing.assert_allclose(
        max_pool2d_backward(grad, ctx), max_pool2d_backward_naive(grad, arg, x.shape), rtol=1e-6
    )


@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "ceil"), AVG_GRID)
@pytest.mark.parametrize("include", [True, False])
def test_avg_matches_naive_grid(
    kernel: object, stride: object, padding: object, dilation: object, ceil: bool, include: bool
) -> None:
    x = _rng(3).standard_normal((2, 3, 9, 8))
    g = pool_geometry(x.shape, kernel, stride, padding, 1, ceil)
    out = avg_pool2d(x, kernel, stride, padding, ceil, include)
    ref = avg_pool2d_naive(x, g.kernel, g.stride, g.padding, ceil, include)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 2),
    h=st.integers(1, 8),
    w=st.integers(1, 8),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    sh=st.integers(1, 4),
    sw=st.integers(1, 4),
    dh=st.integers(1, 2),
    dw=st.integers(1, 2),
    pad_frac=st.tuples(*[st.floats(0, 1)] * 4),
    ceil=st.booleans(),
    include=st.booleans(),
    f32=st.booleans(),
    batched=st.booleans(),
    specials=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_pools_match_naive_hypothesis(
    n: int,
    c: int,
    h: int,
    w: int,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    pad_frac: tuple[float, float, float, float],
    ceil: bool,
    include: bool,
    f32: bool,
    batched: bool,
    specials: bool,
    seed: int,
) -> None:
    rng = _rng(seed)
    dtype = np.float32 if f32 else np.float64
    pads = tuple(int(f * (k // 2)) for f, k in zip(pad_frac, (kh, kh, kw, kw), strict=True))
    x = np.round(rng.standard_normal((n if batched else 1, c, h, w)), 1)  # ties happen
    if specials:
        x[rng.random(x.shape) < 0.15] = np.nan
        x[rng.random(x.shape) < 0.15] = -np.inf
    x = x.astype(dtype)
    xin = x if batched else x[0]
    try:
        ho = pool_output_size(h, kh, sh, pads[0], pads[1], dh, ceil)
        wo = pool_output_size(w, kw, sw, pads[2], pads[3], dw, ceil)
    except ZeroDivisionError:  # pragma: no cover
        return
    if ho < 1 or wo < 1:
        with pytest.raises(ShapeError, match="no output"):
            max_pool2d(xin, (kh, kw), (sh, sw), pads, (dh, dw), ceil)
        return
    out, ctx = max_pool2d_forward(xin, (kh, kw), (sh, sw), pads, (dh, dw), ceil)
    ref, arg = max_pool2d_naive(x, (kh, kw), (sh, sw), pads, (dh, dw), ceil)
    assert out.dtype == dtype and out.shape == (ref.shape if batched else ref.shape[1:])
    np.testing.assert_array_equal(out.reshape(ref.shape), ref.astype(dtype))
    grad = rng.standard_normal(ref.shape).astype(dtype)
    gx = max_pool2d_backward(grad if batched else grad[0], ctx)
    np.testing.assert_allclose(
        gx.reshape(x.shape), max_pool2d_backward_naive(grad, arg, x.shape), rtol=1e-6
    )
    if specials:
        return
    avg = avg_pool2d(xin, (kh, kw), (sh, sw), pads, ceil, include)
    if dh == dw == 1:
        ref_avg = avg_pool2d_naive(x, (kh, kw), (sh, sw), pads, ceil, include)
        np.testing.assert_allclose(avg.reshape(ref_avg.shape), ref_avg, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "ceil"), GRID)
def test_max_gradients_by_central_differences(
    kernel: object, stride: object, padding: object, dilation: object, ceil: bool
) -> None:
    x = _distinct((2, 2, 7, 6))
    check_op_gradients(
        max_pool2d_forward,
        max_pool2d_backward,
        [x],
        {
            "kernel_size": kernel,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "ceil_mode": ceil,
        },
    )


@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "ceil"), AVG_GRID)
@pytest.mark.parametrize("include", [True, False])
def test_avg_gradients_by_central_differences(
    kernel: object, stride: object, padding: object, dilation: object, ceil: bool, include: bool
) -> None:
    x = _rng(4).standard_normal((1, 2, 7, 6))
    check_op_gradients(
        avg_pool2d_forward,
        avg_pool2d_backward,
        [x],
        {
            "kernel_size": kernel,
            "stride": stride,
            "padding": padding,
            "ceil_mode": ceil,
            "count_include_pad": include,
        },
    )


def test_gradients_unbatched_shapes() -> None:
    x = _distinct((2, 5, 5))
    out, ctx = max_pool2d_forward(x, 2)
    assert max_pool2d_backward(np.ones(out.shape), ctx).shape == x.shape
    out, ctx = avg_pool2d_forward(x, 2)
    assert avg_pool2d_backward(np.ones(out.shape), ctx).shape == x.shape


def test_floor_mode_leftovers_get_zero_gradient() -> None:
    x = _distinct((1, 5, 5))
    out, ctx = avg_pool2d_forward(x, 2)
    gx = avg_pool2d_backward(np.ones(out.shape), ctx)
    np.testing.assert_array_equal(gx[0, 4], 0)
    np.testing.assert_array_equal(gx[0, :4, :4], 0.25)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kernel_size": 0}, r"kernel size must be ≥ 1, got 0"),
        ({"kernel_size": 2, "stride": 0}, r"stride must be ≥ 1, got 0"),
        ({"kernel_size": 2, "dilation": (1, 0)}, r"dilation must be ≥ 1, got \(1, 0\)"),
        ({"kernel_size": 3, "padding": 2}, r"padding 2 on the top is more than half the window 3"),
        ({"kernel_size": 1, "padding": 1}, r"use padding ≤ 0"),
        ({"kernel_size": 2, "padding": -1}, r"padding must be ≥ 0"),
        (
            {"kernel_size": 6},
            r"window 6 is larger than the padded input 5 \(height: 5 \+ padding 0",
        ),
        ({"kernel_size": 3, "dilation": 3}, r"window 3 with dilation 3 \(effective 7\)"),
        ({"kernel_size": "2"}, r"kernel size must be an integer or an \(h, w\) pair"),
    ],
)
def test_errors(kwargs: dict[str, object], match: str) -> None:
    for fn in (max_pool2d, max_pool2d_forward):
        with pytest.raises(ShapeError, match=match):
            fn(np.zeros((1, 5, 5)), **kwargs)
    if "dilation" not in kwargs:
        with pytest.raises(ShapeError, match=match):
            avg_pool2d(np.zeros((1, 5, 5)), **kwargs)


def test_errors_input_and_grad() -> None:
    for bad, match in [
        (np.zeros((4, 4)), r"3-D or 4-D, got 2-D"),
        (np.zeros((1, 4, 4), complex), r"complex"),
        (np.array([[["x"]]]), r"string"),
    ]:
        with pytest.raises(ShapeError, match=match):
            max_pool2d(bad, 2)
        with pytest.raises(ShapeError, match=match):
            avg_pool2d(bad, 2)
    _, ctx = max_pool2d_forward(np.zeros((1, 4, 4)), 2)
    with pytest.raises(ShapeError, match=r"grad_out must have the output's shape \(1, 1, 2, 2\)"):
        max_pool2d_backward(np.zeros((1, 3, 3)), ctx)
    _, actx = avg_pool2d_forward(np.zeros((1, 4, 4)), 2)
    with pytest.raises(ShapeError, match="grad_out"):
        avg_pool2d_backward(np.zeros((2, 2)), actx)


def test_ints_become_float32() -> None:
    assert max_pool2d(np.ones((1, 2, 2), int), 2).dtype == np.float32
    assert avg_pool2d(np.ones((1, 2, 2), bool), 2).dtype == np.float32


# --------------------------------------------------------------------------- torch parity


@pytest.mark.torch
@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "ceil"), TORCH_GRID)
def test_live_torch_parity(
    kernel: object, stride: object, padding: object, dilation: object, ceil: bool
) -> None:
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    rng = _rng(5)
    x = np.round(rng.standard_normal((2, 3, 9, 8)), 1)
    xt = torch.from_numpy(x).requires_grad_()
    yt = f.max_pool2d(xt, kernel, stride, padding, dilation, ceil)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.from_numpy(g))
    out, ctx = max_pool2d_forward(x, kernel, stride, padding, dilation, ceil)
    np.testing.assert_array_equal(out, yt.detach().numpy())
    np.testing.assert_allclose(max_pool2d_backward(g, ctx), xt.grad.numpy(), rtol=1e-12)
    if dilation != 1:
        return
    for include in (True, False):
        xt = torch.from_numpy(x).requires_grad_()
        yt = f.avg_pool2d(xt, kernel, stride, padding, ceil, include)
        yt.backward(torch.from_numpy(g))
        out, actx = avg_pool2d_forward(x, kernel, stride, padding, ceil, include)
        np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            avg_pool2d_backward(g, actx), xt.grad.numpy(), rtol=1e-12, atol=1e-12
        )


# --------------------------------------------------------------- unpadded winners, many ties

UNPADDED_GRID = [
    # kernel, stride, dilation, ceil_mode
    (2, 2, 1, False),
    (2, 1, 1, False),
    (3, 2, 1, True),
    ((3, 2), (1, 2), (2, 1), False),
    ((1, 3), (2, 1), 1, True),
    ((3, 1), 3, (1, 2), True),
    ((3, 2), (3, 2), 1, True),
]


@pytest.mark.parametrize(("kernel", "stride", "dilation", "ceil"), UNPADDED_GRID)
@pytest.mark.parametrize("values", ["ties", "nan_inf", "all_equal"])
def test_unpadded_max_pool_argmax_matches_naive(
    kernel: object, stride: object, dilation: object, ceil: bool, values: str
) -> None:
    """The winner is torch's cell: first maximum in row-major window order, the last NaN
    when there is one, even in ceil_mode overhangs and all −∞ windows."""
    rng = _rng(7)
    x = np.round(rng.standard_normal((2, 3, 9, 10)), 0)  # many ties
    if values == "nan_inf":
        x[rng.random(x.shape) < 0.2] = np.nan
        x[rng.random(x.shape) < 0.2] = -np.inf
    elif values == "all_equal":
        x[:] = -np.inf
    for dtype in (np.float32, np.float64):
        xd = x.astype(dtype)
        g = pool_geometry(xd.shape, kernel, stride, 0, dilation, ceil)
        out, ctx = max_pool2d_forward(xd, kernel, stride, 0, dilation, ceil)
        ref, arg = max_pool2d_naive(xd, g.kernel, g.stride, g.padding, g.dilation, ceil)
        np.testing.assert_array_equal(out, ref.astype(dtype))
        grad = _rng(3).standard_normal(out.shape).astype(dtype)
        np.testing.assert_allclose(
            max_pool2d_backward(grad, ctx),
            max_pool2d_backward_naive(grad, arg, xd.shape),
            rtol=1e-6,
            atol=1e-6,  # overlapping windows sum in float32
        )
