"""conv2d / pad2d: the worked example by hand, fast path vs the naive loops, gradients by
central differences, every ShapeError, and (when installed) live torch parity.

Also covers the shared argument helpers of ``cnn_explorer.engine._args``.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from gradcheck import check_op_gradients
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import conv2d_naive, conv2d_weight_grad_naive, pad2d_naive

from cnn_explorer.engine import conv as conv_mod
from cnn_explorer.engine._args import (
    as_float_array,
    as_pair,
    normalise_padding,
    same_padding,
    scratch,
)
from cnn_explorer.engine.conv import (
    conv2d,
    conv2d_backward,
    conv2d_forward,
    conv_geometry,
    pad2d,
    pad2d_backward,
)
from cnn_explorer.engine.errors import ShapeError

MODES = ["zeros", "reflect", "replicate", "circular"]

WORKED_INPUT = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]])


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- by hand


def test_worked_example_ones_kernel() -> None:
    out = conv2d(WORKED_INPUT[None], np.ones((1, 1, 2, 2), int))
    np.testing.assert_array_equal(out, [[[4, 2, 0], [2, 2, 2], [0, 2, 4]]])
    assert out.dtype == np.float32  # ints become float32


def test_worked_example_edge_kernel() -> None:
    kernel = np.array([[[[1, -1], [1, -1]]]])
    out = conv2d(WORKED_INPUT[None], kernel)
    np.testing.assert_array_equal(out, [[[0, 2, 0], [0, 0, 0], [0, -2, 0]]])


def test_flip_kernel_gives_true_convolution() -> None:
    # Rotating [[1,-1],[1,-1]] by 180° gives [[-1,1],[-1,1]]: the result flips sign.
    kernel = np.array([[[[1, -1], [1, -1]]]])
    out = conv2d(WORKED_INPUT[None], kernel, flip_kernel=True)
    np.testing.assert_array_equal(out, [[[0, -2, 0], [0, 0, 0], [0, 2, 0]]])
    # An asymmetric kernel: true convolution = cross-correlation with the rotated kernel.
    k = np.arange(6.0).reshape(1, 1, 2, 3)
    x = _rng().standard_normal((1, 1, 4, 5))
    np.testing.assert_allclose(
        conv2d(x, k, flip_kernel=True), conv2d(x, k[:, :, ::-1, ::-1]), rtol=1e-12
    )


def test_bias_stride_and_padding_by_hand() -> None:
    x = np.arange(16.0).reshape(1, 4, 4)
    # 1×1 kernel of 2 with stride 2 and bias 1 picks every other cell.
    out = conv2d(x, np.full((1, 1, 1, 1), 2.0), np.array([1.0]), stride=2)
    np.testing.assert_array_equal(out, [[[1, 5], [17, 21]]])
    # zero padding 1 with a 3×3 ones kernel: the corner sees 0+1+4+5.
    out = conv2d(x, np.ones((1, 1, 3, 3)), padding=1)
    assert out.shape == (1, 4, 4)
    assert out[0, 0, 0] == 0 + 1 + 4 + 5


def test_worked_example_pipeline_with_relu_and_pool() -> None:
    from cnn_explorer.engine.pool import max_pool2d

    fmap = conv2d(WORKED_INPUT[None], np.ones((1, 1, 2, 2)))
    relu = np.maximum(fmap, 0)
    np.testing.assert_array_equal(relu, fmap)
    np.testing.assert_array_equal(max_pool2d(relu, 2, stride=1), [[[4, 2], [2, 4]]])


def test_pad2d_modes_by_hand() -> None:
    x = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(pad2d(x, (0, 0, 2, 2), "zeros"), [[0, 0, 1, 2, 3, 0, 0]])
    np.testing.assert_array_equal(pad2d(x, (0, 0, 2, 2), "reflect"), [[3, 2, 1, 2, 3, 2, 1]])
    np.testing.assert_array_equal(pad2d(x, (0, 0, 2, 2), "replicate"), [[1, 1, 1, 2, 3, 3, 3]])
    np.testing.assert_array_equal(pad2d(x, (0, 0, 2, 2), "circular"), [[2, 3, 1, 2, 3, 1, 2]])
    np.testing.assert_array_equal(pad2d(x, (0, 0, 3, 3), "circular")[0, :3], [1, 2, 3])


# --------------------------------------------------------------------------- fast vs naive


def _case(
    rng: np.random.Generator,
    n: int,
    c: int,
    o: int,
    hw: tuple[int, int],
    k: tuple[int, int],
    dtype: type = np.float64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, c, *hw)).astype(dtype)
    w = rng.standard_normal((o, c, *k)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    return x, w, b


GRID = [
    (padding, stride, dilation)
    for padding in [0, 1, (1, 2), (2, 0, 1, 1), "same"]
    for stride, dilation in [(1, 1), (2, 1), (1, 2), ((2, 1), (1, 2))]
    if not (padding == "same" and stride != 1)  # 'same' needs stride 1 (an error case)
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("padding", "stride", "dilation"), GRID)
def test_fast_matches_naive_grid(
    mode: str, padding: object, stride: object, dilation: object
) -> None:
    x, w, b = _case(_rng(), 2, 2, 3, (7, 6), (3, 2))
    g = conv_geometry(x.shape, w.shape, stride, padding, dilation)
    out = conv2d(x, w, b, stride, padding, dilation, mode)
    ref = conv2d_naive(x, w, b, g.stride, g.padding, g.dilation, mode)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batched", [True, False])
def test_dtypes_and_unbatched(dtype: type, batched: bool) -> None:
    x, w, b = _case(_rng(1), 1, 3, 2, (6, 5), (3, 3), dtype)
    xin = x if batched else x[0]
    out = conv2d(xin, w, b, padding=1, padding_mode="reflect")
    assert out.dtype == dtype
    assert out.shape == ((1, 2, 6, 5) if batched else (2, 6, 5))
    ref = conv2d_naive(x, w, b, pad=(1, 1, 1, 1), mode="reflect")
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.reshape(ref.shape), ref, rtol=tol, atol=tol)


def test_mixed_and_integer_dtypes_follow_numpy() -> None:
    x = np.ones((1, 3, 3), np.float32)
    assert conv2d(x, np.ones((1, 1, 2, 2), np.float64)).dtype == np.float64
    assert conv2d(x.astype(np.int64), np.ones((1, 1, 2, 2), np.int32)).dtype == np.float32
    assert conv2d(x.astype(bool), np.ones((1, 1, 2, 2), bool)).dtype == np.float32


def test_nan_and_inf_are_computed_through_without_warnings() -> None:
    """Non-finite data are legal (reported by the network, never errors or warnings; the
    test suite turns warnings into errors)."""
    x = np.zeros((1, 4, 4))
    x[0, 0, 0] = np.nan
    out = conv2d(x, np.ones((1, 1, 2, 2)))
    assert np.isnan(out[0, 0, 0]) and np.isfinite(out[0, 2, 2])
    x = np.array([[[np.inf, -np.inf, 1.0], [3e38, 3e38, 0.0]]], np.float32)
    for mode in MODES:
        out, ctx = conv2d_forward(
            x, np.ones((2, 1, 1, 2), np.float32), padding=1, padding_mode=mode
        )
        assert np.isnan(out).any() and np.isinf(out).any()
        gx, gw, _ = conv2d_backward(np.ones_like(out), ctx)
        assert np.isfinite(gx).all() and not np.isfinite(gw).all()


def test_empty_batch() -> None:
    out, ctx = conv2d_forward(np.zeros((0, 2, 5, 5)), np.ones((3, 2, 3, 3)), np.ones(3), padding=1)
    assert out.shape == (0, 3, 5, 5)
    gx, gw, gb = conv2d_backward(np.zeros(out.shape), ctx)
    assert gx.shape == (0, 2, 5, 5) and not gw.any() and not gb.any()


def test_non_contiguous_input() -> None:
    x, w, b = _case(_rng(2), 2, 3, 2, (6, 7), (3, 3))
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    np.testing.assert_allclose(conv2d(xt, w, b, padding=1), conv2d(x, w, b, padding=1))
    np.testing.assert_allclose(conv2d(x[:, :, ::2, ::-1], w), conv2d_naive(x[:, :, ::2, ::-1], w))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    o=st.integers(1, 3),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    dh=st.integers(1, 3),
    dw=st.integers(1, 3),
    pads=st.tuples(*[st.integers(0, 3)] * 4),
    mode=st.sampled_from(MODES),
    use_bias=st.booleans(),
    flip=st.booleans(),
    f32=st.booleans(),
    batched=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fast_matches_naive_hypothesis(
    n: int,
    c: int,
    o: int,
    h: int,
    w: int,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    pads: tuple[int, int, int, int],
    mode: str,
    use_bias: bool,
    flip: bool,
    f32: bool,
    batched: bool,
    seed: int,
) -> None:
    rng = _rng(seed)
    dtype = np.float32 if f32 else np.float64
    x, wt, b = _case(rng, n if batched else 1, c, o, (h, w), (kh, kw), dtype)
    bias = b if use_bias else None
    xin = x if batched else x[0]
    args = (wt, bias, (sh, sw), pads, (dh, dw), mode, flip)
    too_small = (
        h + pads[0] + pads[1] < dh * (kh - 1) + 1 or w + pads[2] + pads[3] < dw * (kw - 1) + 1
    )
    bad_pad = (mode == "reflect" and (max(pads[:2]) >= h or max(pads[2:]) >= w)) or (
        mode == "circular" and (max(pads[:2]) > h or max(pads[2:]) > w)
    )
    if too_small or bad_pad:
        with pytest.raises(ShapeError):
            conv2d(xin, *args)
        return
    out = conv2d(xin, *args)
    ref = conv2d_naive(x, wt, bias, (sh, sw), pads, (dh, dw), mode, flip)
    tol = 1e-4 if f32 else 1e-10
    assert out.dtype == dtype
    np.testing.assert_allclose(out.reshape(ref.shape), ref, rtol=tol, atol=tol)
    assert out.shape == (ref.shape if batched else ref.shape[1:])


@pytest.mark.parametrize("budget", [64, 4096, 1 << 30])
def test_chunking_does_not_change_results(budget: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row bands of one image, several images per product, everything at once: same numbers."""
    monkeypatch.setattr(conv_mod, "_CHUNK_BYTES", budget)
    x, w, b = _case(_rng(3), 3, 2, 4, (11, 9), (3, 3))
    kwargs = {"stride": (2, 1), "padding": (1, 2, 0, 1), "padding_mode": "reflect"}
    out, ctx = conv2d_forward(x, w, b, **kwargs)
    ref = conv2d_naive(x, w, b, (2, 1), (1, 2, 0, 1), mode="reflect")
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    grads = conv2d_backward(np.ones_like(out), ctx)
    monkeypatch.setattr(conv_mod, "_CHUNK_BYTES", 1 << 30)
    _, ctx_all = conv2d_forward(x, w, b, **kwargs)
    for mine, whole in zip(grads, conv2d_backward(np.ones_like(out), ctx_all), strict=True):
        np.testing.assert_allclose(mine, whole, rtol=1e-10, atol=1e-12)


def test_results_are_not_scratch_buffers() -> None:
    """Outputs must survive later calls of the same shape (they reuse scratch memory)."""
    x1, w, b = _case(_rng(4), 1, 2, 3, (8, 8), (3, 3))
    x2 = -x1
    first = conv2d(x1, w, b, padding=1)
    kept = first.copy()
    conv2d(x2, w, b, padding=1)
    np.testing.assert_array_equal(first, kept)
    out, ctx = conv2d_forward(x1, w, b, padding=1, padding_mode="circular")
    gx1, *_ = conv2d_backward(np.ones_like(out), ctx)
    kept_gx = gx1.copy()
    conv2d_backward(-np.ones_like(out), ctx)
    np.testing.assert_array_equal(gx1, kept_gx)


def test_threads_use_separate_scratch() -> None:
    """The GUI thread and a training thread may run convolutions at the same time."""
    rng = _rng(5)
    inputs = [rng.standard_normal((2, 3, 40, 40)) for _ in range(4)]
    w = rng.standard_normal((4, 3, 3, 3))
    expected = [conv2d_naive(x, w, pad=(1, 1, 1, 1)) for x in inputs[:1]]
    results: dict[int, list[np.ndarray]] = {}

    def work(i: int) -> None:
        results[i] = [conv2d(inputs[i], w, padding=1) for _ in range(20)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(results[0][-1], expected[0], rtol=1e-10)
    for i in range(4):
        for r in results[i]:
            np.testing.assert_array_equal(r, results[i][0])


# --------------------------------------------------------------------------- pad2d


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pad", [(0, 0, 0, 0), (1, 2, 3, 0), (2, 2, 2, 2), (0, 3, 1, 4)])
def test_pad2d_matches_naive_and_numpy(mode: str, pad: tuple[int, int, int, int]) -> None:
    x = _rng(6).standard_normal((2, 4, 5))
    out = pad2d(x, pad, mode)
    np.testing.assert_array_equal(out, pad2d_naive(x, pad, mode))
    np_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
    np.testing.assert_array_equal(
        out, np.pad(x, ((0, 0), (pad[0], pad[1]), (pad[2], pad[3])), np_mode[mode])
    )


@pytest.mark.parametrize("mode", MODES)
def test_pad2d_backward_is_the_adjoint(mode: str) -> None:
    """For a linear map P: <P x, g> = <x, Pᵀ g> for every x and g."""
    rng = _rng(7)
    pad = (2, 1, 3, 2)
    x = rng.standard_normal((2, 4, 5))
    g = rng.standard_normal(pad2d(x, pad, mode).shape)
    lhs = np.sum(pad2d(x, pad, mode) * g)
    rhs = np.sum(x * pad2d_backward(g, pad, mode))
    assert lhs == pytest.approx(rhs, rel=1e-12)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"padding": 1},
        {"padding": (2, 0, 1, 2), "stride": 2},
        {"padding": (1, 2), "stride": (1, 2), "dilation": (2, 1)},
        {"padding": "same", "dilation": 2},
    ],
)
def test_gradients_by_central_differences(mode: str, kwargs: dict[str, object]) -> None:
    x, w, b = _case(_rng(8), 2, 2, 3, (5, 6), (3, 2))
    check_op_gradients(conv2d_forward, conv2d_backward, [x, w, b], {**kwargs, "padding_mode": mode})


@pytest.mark.parametrize("flip", [False, True])
def test_gradients_without_bias_unbatched_and_flipped(flip: bool) -> None:
    x, w, _ = _case(_rng(9), 1, 2, 2, (5, 4), (2, 3))
    grads = check_op_gradients(
        conv2d_forward, conv2d_backward, [x[0], w, None], {"flip_kernel": flip, "padding": 1}
    )
    assert grads[0].shape == x[0].shape
    assert grads[2] is None


def test_gradient_float32_close_to_float64() -> None:
    x, w, b = _case(_rng(10), 2, 3, 4, (9, 9), (3, 3))
    out64, ctx64 = conv2d_forward(x, w, b, padding=1)
    _, ctx32 = conv2d_forward(
        x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), padding=1
    )
    g = _rng(11).standard_normal(out64.shape)
    for a, c in zip(
        conv2d_backward(g, ctx64), conv2d_backward(g.astype(np.float32), ctx32), strict=True
    ):
        assert c.dtype == np.float32
        np.testing.assert_allclose(c, a, rtol=1e-4, atol=1e-4)


def test_need_input_grad_false_skips_it() -> None:
    x, w, b = _case(_rng(12), 2, 2, 3, (6, 6), (3, 3))
    out, ctx = conv2d_forward(x, w, b, padding=1)
    g = np.ones_like(out)
    gx, gw, gb = conv2d_backward(g, ctx, need_input_grad=False)
    assert gx is None
    _, gw_full, gb_full = conv2d_backward(g, ctx)
    np.testing.assert_allclose(gw, gw_full)
    np.testing.assert_allclose(gb, gb_full)


@pytest.mark.parametrize("shape", [(2, 2, 6, 7), (1, 1, 5, 70)])  # wide and narrow columns
def test_weight_gradient_with_inf_input_matches_naive(shape: tuple[int, ...]) -> None:
    """Wide columns also read cells outside every window; with an inf there, 0·inf = NaN
    must not leak into grad_weight (the engine zeroes those columns)."""
    rng = _rng(16)
    x = rng.standard_normal(shape)
    x[..., 0, -1] = np.inf  # top-right cell: outside all windows of a 3-wide kernel...
    x[..., -1, 0] = -np.inf  # ... with stride 2 on a 7-wide row only some windows see it
    w = rng.standard_normal((3, shape[1], 3, 3))
    out, ctx = conv2d_forward(x, w, None, stride=(1, 2))
    g = rng.standard_normal(out.shape)
    with np.errstate(invalid="ignore"):
        _, gw, _ = conv2d_backward(g, ctx)
        ref = conv2d_weight_grad_naive(x, g, (3, 3), (1, 2))
    np.testing.assert_array_equal(np.isnan(gw), np.isnan(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(gw[finite], ref[finite], rtol=1e-10)
    np.testing.assert_array_equal(gw[~finite], ref[~finite])


def test_weight_gradient_over_many_columns() -> None:
    """Enough columns that the weight-gradient product is summed in blocks (see _gram)."""
    rng = _rng(17)
    x = rng.standard_normal((48, 1, 28, 28))
    w = rng.standard_normal((2, 1, 3, 3))
    out, ctx = conv2d_forward(x, w, np.zeros(2), padding=1)
    g = rng.standard_normal(out.shape)
    _, gw, gb = conv2d_backward(g, ctx, need_input_grad=False)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.stack(
        [
            np.einsum("noyx,nyx->o", g, xp[:, 0, i : i + 28, j : j + 28])
            for i in range(3)
            for j in range(3)
        ],
        axis=1,
    ).reshape(2, 1, 3, 3)
    np.testing.assert_allclose(gw, ref, rtol=1e-10)
    np.testing.assert_allclose(gb, g.sum(axis=(0, 2, 3)), rtol=1e-10)


# --------------------------------------------------------------------------- errors


def _raises(match: str, fn: object, *args: object, **kwargs: object) -> None:
    with pytest.raises(ShapeError, match=match):
        fn(*args, **kwargs)  # type: ignore[operator]


def test_error_channel_mismatch() -> None:
    _raises(
        r"input has 3 channels but the kernel expects 1.*give the kernel 3",
        conv2d,
        np.zeros((3, 5, 5)),
        np.zeros((1, 1, 3, 3)),
    )


def test_error_kernel_larger_than_padded_input() -> None:
    _raises(
        r"kernel 5 is larger than the padded input 4 \(height: 4 \+ padding 0 \+ 0\)"
        r".*padding ≥ 1",
        conv2d,
        np.zeros((1, 4, 6)),
        np.zeros((1, 1, 5, 5)),
    )
    _raises(
        r"kernel 5 with dilation 2 \(effective 9\) is larger than the padded input 7"
        r".*padding ≥ 1",
        conv2d,
        np.zeros((1, 7, 7)),
        np.zeros((1, 1, 5, 5)),
        dilation=2,
        padding=0,
    )
    _raises(r"width", conv2d, np.zeros((1, 9, 2)), np.zeros((1, 1, 3, 3)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stride": 0}, r"stride must be ≥ 1, got 0"),
        ({"stride": (1, -2)}, r"stride must be ≥ 1, got \(1, -2\)"),
        ({"dilation": 0}, r"dilation must be ≥ 1"),
        ({"padding": -1}, r"padding must be ≥ 0"),
        ({"padding": (0, 0, -1, 0)}, r"padding must be ≥ 0 on every side"),
        ({"padding": "full"}, r"'valid' or 'same'"),
        ({"padding": (1, 2, 3)}, r"pair, got 3 values"),
        ({"stride": 2, "padding": "same"}, r"padding='same' needs stride 1"),
        ({"stride": 1.5}, r"stride must be an integer"),
        ({"stride": True}, r"boolean"),
        ({"padding_mode": "mirror"}, r"padding_mode must be one of zeros, reflect"),
        ({"padding": 5, "padding_mode": "reflect"}, r"reflect padding of 5 on the top.*≤ 4"),
        ({"padding": 6, "padding_mode": "circular"}, r"wraps around more than once"),
    ],
)
def test_error_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    _raises(match, conv2d, np.zeros((1, 5, 5)), np.zeros((1, 1, 3, 3)), **kwargs)


def test_error_shapes_and_dtypes() -> None:
    w = np.zeros((1, 1, 2, 2))
    _raises(r"input must be 3-D or 4-D, got 2-D", conv2d, np.zeros((4, 4)), w)
    _raises(r"input must be 3-D or 4-D, got 5-D", conv2d, np.zeros((1, 1, 1, 4, 4)), w)
    _raises(r"kernel weight must be 4-D, got 2-D", conv2d, np.zeros((1, 4, 4)), np.zeros((2, 2)))
    _raises(
        r"kernel size must be ≥ 1, got 0×2", conv2d, np.zeros((1, 4, 4)), np.zeros((1, 1, 0, 2))
    )
    _raises(r"complex", conv2d, np.zeros((1, 4, 4), complex), w)
    _raises(r"object", conv2d, np.array([[[1, None]]], dtype=object), w)
    _raises(r"string", conv2d, np.array([[["a", "b"]]]), w)
    _raises(r"rectangular", conv2d, [[[1, 2], [3]]], w)
    _raises(
        r"bias must have one value per output channel \(1\), got shape \(2,\)",
        conv2d,
        np.zeros((1, 4, 4)),
        w,
        np.zeros(2),
    )
    _raises(r"complex", conv2d, np.zeros((1, 4, 4)), w.astype(complex))


def test_error_grad_out_shape() -> None:
    out, ctx = conv2d_forward(np.zeros((1, 4, 4)), np.zeros((2, 1, 2, 2)))
    _raises(
        r"grad_out must have the output's shape \(1, 2, 3, 3\)",
        conv2d_backward,
        np.zeros((2, 3, 4)),
        ctx,
    )
    gx, _, _ = conv2d_backward(np.zeros(out.shape), ctx)  # unbatched grad is fine
    assert gx.shape == (1, 4, 4)


def test_error_pad2d() -> None:
    _raises(r"at least 2 dimensions", pad2d, np.zeros(3), 1)
    _raises(
        r"reflect padding of 2 on the left.*more than 2 columns, got 2",
        pad2d,
        np.zeros((4, 2)),
        (0, 0, 2, 0),
        "reflect",
    )
    _raises(r"replicate padding needs at least one", pad2d, np.zeros((0, 3)), 1, "replicate")


# --------------------------------------------------------------------------- _args helpers


def test_as_pair_and_padding_spellings() -> None:
    assert as_pair(3, "k") == (3, 3)
    assert as_pair((2, 5), "k") == (2, 5)
    assert as_pair(np.array([1, 2]), "k") == (1, 2)
    assert as_pair(4.0, "k") == (4, 4)
    assert as_pair(0, "padding", minimum=0) == (0, 0)
    assert normalise_padding(2) == (2, 2, 2, 2)
    assert normalise_padding((1, 2)) == (1, 1, 2, 2)
    assert normalise_padding([1, 2, 3, 4]) == (1, 2, 3, 4)
    assert normalise_padding("valid", 5) == (0, 0, 0, 0)
    assert normalise_padding("same", 3) == (1, 1, 1, 1)
    assert normalise_padding("SAME", (4, 2), (1, 3)) == (1, 2, 1, 2)  # extra on bottom/right
    assert same_padding(5, 2) == (4, 4, 4, 4)


def test_same_padding_keeps_the_size() -> None:
    x = _rng(13).standard_normal((1, 2, 7, 8))
    for k, d in [(2, 1), (3, 1), (4, 2), ((2, 5), (3, 1))]:
        w = np.ones((1, 2, *as_pair(k, "k")))
        assert conv2d(x, w, padding="same", dilation=d).shape == (1, 1, 7, 8)


def test_as_float_array_contract() -> None:
    a32 = np.ones((1, 2, 2), np.float32)
    arr, unbatched = as_float_array(a32)
    assert unbatched and arr.shape == (1, 1, 2, 2) and np.shares_memory(arr, a32)
    arr, unbatched = as_float_array(np.ones((2, 1, 2, 2)))
    assert not unbatched and arr.dtype == np.float64
    assert as_float_array(np.ones((1, 2, 2), np.int16))[0].dtype == np.float32
    assert as_float_array(np.ones((1, 2, 2), np.float16))[0].dtype == np.float32
    with pytest.raises(ShapeError, match="image must be 3-D or 4-D"):
        as_float_array(np.ones(3), "image")


def test_scratch_is_reused_and_grows() -> None:
    a = scratch("test_buf", (4, 4), np.float32)
    b = scratch("test_buf", (2, 3), np.float32)
    assert np.shares_memory(a, b)
    c = scratch("test_buf", (100, 100), np.float32)
    assert c.shape == (100, 100)
    assert not np.shares_memory(scratch("test_buf", (2,), np.float64), c)


# --------------------------------------------------------------------------- torch parity


@pytest.mark.torch
@pytest.mark.parametrize("mode", MODES)
def test_live_torch_parity(mode: str) -> None:
    torch = pytest.importorskip("torch")
    rng = _rng(14)
    x, w, b = _case(rng, 2, 3, 4, (9, 8), (3, 2))
    conv = torch.nn.Conv2d(3, 4, (3, 2), (2, 1), (2, 1), (1, 2), padding_mode=mode).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
        conv.bias.copy_(torch.from_numpy(b))
    xt = torch.from_numpy(x).requires_grad_()
    yt = conv(xt)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.from_numpy(g))
    out, ctx = conv2d_forward(x, w, b, (2, 1), (2, 1), (1, 2), mode)
    gx, gw, gb = conv2d_backward(g, ctx)
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gw, conv.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb, conv.bias.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.torch
def test_live_torch_parity_same_padding_even_kernel() -> None:
    torch = pytest.importorskip("torch")
    x, w, _ = _case(_rng(15), 1, 2, 2, (6, 7), (4, 2))
    with warnings.catch_warnings():  # torch notes that it pads a copy; so do we
        warnings.simplefilter("ignore", UserWarning)
        ref = torch.nn.functional.conv2d(
            torch.from_numpy(x), torch.from_numpy(w), padding="same", dilation=(1, 3)
        )
    np.testing.assert_allclose(
        conv2d(x, w, padding="same", dilation=(1, 3)), ref.numpy(), rtol=1e-10
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("budget", [256, 1 << 30])
@pytest.mark.parametrize(
    ("hw", "stride", "wide"),
    [((9, 10), 1, True), ((7, 130), 1, False), ((9, 10), (2, 1), True), ((9, 10), (1, 2), False)],
)
def test_input_gradient_is_the_adjoint(
    mode: str,
    budget: int,
    hw: tuple[int, int],
    stride: object,
    wide: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """⟨conv(x), G⟩ = ⟨x, grad_x⟩ for a bias-free conv (it is linear in x): checks the
    channel-major col2im canvas for wide (narrow maps) and plain columns, row-band and
    whole-batch chunks, and every padding fold."""
    monkeypatch.setattr(conv_mod, "_CHUNK_BYTES", budget)
    rng = _rng(21)
    x = rng.standard_normal((3, 4, *hw))
    w = rng.standard_normal((5, 4, 3, 3))
    out, ctx = conv2d_forward(x, w, None, stride=stride, padding=(1, 2, 2, 1), padding_mode=mode)
    assert ctx.geometry.wide == wide
    grad = rng.standard_normal(out.shape)
    gx, _, _ = conv2d_backward(grad, ctx)
    np.testing.assert_allclose(np.vdot(out, grad), np.vdot(x, gx), rtol=1e-10)


@pytest.mark.parametrize("budget", [256, 1 << 30])
@pytest.mark.parametrize("hw", [(9, 10), (5, 130)])
@pytest.mark.parametrize("special", [False, True])
def test_kept_columns_give_the_same_results(
    budget: int, hw: tuple[int, int], special: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """keep_columns (training) reuses the forward's columns in the backward when there is
    a single chunk, and must change nothing, even with inf input (wide columns are
    cleaned in place) and when the backward runs twice."""
    monkeypatch.setattr(conv_mod, "_CHUNK_BYTES", budget)
    x, w, b = _case(_rng(22), 2, 3, 4, hw, (3, 3))
    if special:
        x[0, 1, 2, 3] = np.inf
    kwargs = {"padding": 1, "padding_mode": "replicate"}
    out, ctx = conv2d_forward(x, w, b, **kwargs)
    out_k, ctx_k = conv2d_forward(x, w, b, **kwargs, keep_columns=True)
    assert (ctx_k.columns is not None) == (budget > 256)
    assert ctx.columns is None
    np.testing.assert_array_equal(out_k, out)
    grad = _rng(23).standard_normal(out.shape)
    expected = conv2d_backward(grad, ctx)
    for _ in range(2):
        for mine, ref in zip(conv2d_backward(grad, ctx_k), expected, strict=True):
            np.testing.assert_array_equal(mine, ref)
