"""The sliding-window animation's steps against the engine: every window and tap is
``Layer.explain``'s, every partial sum is its products added in order, every padding value
is the padding mode's, and every cell ends on the layer's output value bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_explorer.engine import layers
from cnn_explorer.explorer import presets
from cnn_explorer.explorer.model import Explorer
from cnn_explorer.explorer.sliding import (
    BEYOND,
    INPUT,
    PADDING,
    NotSlidingError,
    SlidingWindow,
    frame_of,
)
from cnn_explorer.explorer.specs import build_layer, conv_spec, pool_spec, worked_example_layers

NP_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _conv(cin: int = 1, cout: int = 1, k: int = 3, seed: int = 0, **kw: object) -> layers.Conv2D:
    layer = layers.Conv2D(cin, cout, k, rng=seed, **kw)  # type: ignore[arg-type]
    if "bias" in layer.params:
        layer.params["bias"][...] = np.random.default_rng(seed + 1).normal(size=cout)
    return layer


def _check_layer(layer: layers.Layer, x: np.ndarray) -> None:
    """Every cell of every output channel, tap by tap, against explain and the output."""
    out = layer.forward(x)
    for ch in range(out.shape[0]):
        sw = SlidingWindow(layer, x, out, ch)
        win = layer.window()
        assert win is not None
        for r in range(out.shape[1]):
            for q in range(out.shape[2]):
                anim = sw.animation((r, q))
                e = layer.explain(x, r, q, ch)
                assert len(anim.taps) == len(e.terms)  # type: ignore[union-attr]
                rows, cols = win.row_positions(r), win.col_positions(q)
                for tap, term in zip(anim.taps, e.terms, strict=True):  # type: ignore[union-attr]
                    assert tap.pos == (term.row, term.col)
                    assert tap.kernel_pos == term.kernel_pos
                    assert tap.pos == (rows[term.kernel_pos[0]], cols[term.kernel_pos[1]])
                    assert (tap.value, tap.weight, tap.product) == (
                        term.value,
                        term.weight,
                        term.product,
                    )
                    assert tap.is_padding == term.is_padding
                    fr, fc = tap.pos[0] + sw.frame.top, tap.pos[1] + sw.frame.left
                    if sw.frame.kinds[fr, fc] == BEYOND:  # past the frame: read by no one
                        assert tap.is_padding and tap.value == 0
                    elif not (tap.is_padding and layer.kind == "max_pool"):
                        assert sw.frame.plane(tap.channel)[fr, fc] == pytest.approx(tap.value)
                if layer.kind != "max_pool":
                    products = [t.product for t in anim.taps]
                    assert [t.running for t in anim.taps] == list(np.cumsum(products))
                    assert anim.explained == e.result  # type: ignore[union-attr]
                assert anim.result == out[ch, r, q]  # bit for bit: the layer's own cell
                assert anim.running(anim.n_steps - 1) == out[ch, r, q]
                assert anim.phase(anim.n_steps - 1) == "result"
                if layer.kind == "conv":
                    before = anim.running(anim.n_steps - 2)
                    assert before == pytest.approx(float(out[ch, r, q]), rel=1e-5, abs=1e-5)
                    for c, sub in anim.subtotals:
                        mine = [t.product for t in anim.taps if t.channel == c]
                        assert sub == pytest.approx(sum(mine), abs=1e-12)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
def test_conv_every_mode_stride_dilation(mode: str, stride: int, dilation: int) -> None:
    x = np.random.default_rng(stride * 10 + dilation).normal(size=(1, 7, 6)).astype(np.float32)
    conv = _conv(1, 2, 3, stride=stride, dilation=dilation, padding=2, padding_mode=mode)
    _check_layer(conv, x)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_frame_holds_the_padding_modes_values(mode: str) -> None:
    x = np.arange(20, dtype=np.float32).reshape(1, 4, 5)
    conv = _conv(1, 1, 3, padding=2, padding_mode=mode)
    frame = frame_of(conv, x)
    expected = np.pad(x[0].astype(np.float64), 2, mode=NP_MODES[mode])  # type: ignore[call-overload]
    np.testing.assert_array_equal(frame.plane(0), expected)
    assert (frame.top, frame.left, frame.mode) == (2, 2, mode)
    assert (frame.kinds[2:6, 2:7] == INPUT).all()
    assert (frame.kinds == PADDING).sum() == 8 * 9 - 20


def test_true_convolution_shows_the_flipped_kernel() -> None:
    x = np.random.default_rng(3).normal(size=(1, 5, 5)).astype(np.float32)
    conv = _conv(1, 1, 3, flip_kernel=True, padding=1)
    _check_layer(conv, x)
    anim = SlidingWindow(conv, x, conv.forward(x)).animation((2, 2))
    w = conv.weight[0, 0]
    for tap in anim.taps:
        i, j = tap.kernel_pos
        assert tap.weight == float(w[2 - i, 2 - j])


def test_multi_channel_with_bias_subtotals_per_channel() -> None:
    x = np.random.default_rng(4).normal(size=(3, 6, 6)).astype(np.float32)
    conv = _conv(3, 2, 3, stride=2, padding=1, padding_mode="reflect", bias=True)
    _check_layer(conv, x)
    anim = SlidingWindow(conv, x, conv.forward(x), 1).animation((1, 2))
    assert [c for c, _ in anim.subtotals] == [0, 1, 2]
    assert [t.channel for t in anim.taps] == sorted(t.channel for t in anim.taps)
    assert anim.bias == float(conv.bias[1])  # type: ignore[index]
    assert anim.n_steps == 27 + 2
    assert anim.phase(27) == "bias"
    assert anim.running(27) == anim.taps[-1].running + anim.bias
    assert anim.running(27) == pytest.approx(anim.explained, abs=1e-12)


def test_grouped_conv_reads_only_its_groups_channels() -> None:
    x = np.random.default_rng(5).normal(size=(4, 5, 5)).astype(np.float32)
    conv = _conv(4, 4, 3, groups=2, padding=1)
    _check_layer(conv, x)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 1])
def test_max_pool_window_and_winner(stride: int, padding: int) -> None:
    x = np.random.default_rng(stride + padding).normal(size=(2, 5, 5)).astype(np.float32)
    pool = layers.MaxPool2D(3, stride, padding)
    _check_layer(pool, x)
    out = pool.forward(x)
    sw = SlidingWindow(pool, x, out, 1)
    assert all((sw.frame.plane(c)[sw.frame.kinds == PADDING] == -np.inf).all() for c in (0, 1))
    for r in range(out.shape[1]):
        for q in range(out.shape[2]):
            anim = sw.animation((r, q))
            e = pool.explain(x, r, q, 1)
            assert anim.winner is not None
            win = anim.taps[anim.winner]
            assert (win.pos, win.is_padding) == ((e.winner.row, e.winner.col), False)  # type: ignore[union-attr]
            real = [t.value for t in anim.taps[: anim.winner + 1] if not t.is_padding]
            assert anim.taps[anim.winner].running == max(real) == anim.result
            leaders = [t.leader for t in anim.taps if t.leader is not None]
            assert leaders == sorted(leaders)


@pytest.mark.parametrize("include", [True, False])
@pytest.mark.parametrize("ceil", [False, True])
def test_avg_pool_mean_and_divisor(include: bool, ceil: bool) -> None:
    x = np.random.default_rng(7).normal(size=(1, 6, 6)).astype(np.float32)
    pool = layers.AvgPool2D(3, 2, 1, ceil_mode=ceil, count_include_pad=include)
    _check_layer(pool, x)
    out = pool.forward(x)
    sw = SlidingWindow(pool, x, out)
    last = sw.animation((out.shape[1] - 1, out.shape[2] - 1))
    e = pool.explain(x, out.shape[1] - 1, out.shape[2] - 1)
    assert last.divisor == e.divisor  # type: ignore[union-attr]
    assert last.taps[-1].running / last.divisor == pytest.approx(float(last.result), rel=1e-6)
    if ceil:  # the last window hangs past the padded frame: cells nobody reads
        assert (sw.frame.kinds == BEYOND).any()
        assert np.isnan(sw.frame.plane(0)[sw.frame.kinds == BEYOND]).all()


def test_the_explorer_worked_example_ends_on_its_maps() -> None:
    """Through the explorer: the animation of every layer ends on the published maps,
    which equal a fresh plain forward pass bit for bit."""
    model = Explorer(presets.WORKED_EXAMPLE[None], worked_example_layers())
    model.recompute()
    model.refine()
    maps = model.results.maps
    fresh = model.plain_forward()
    for i in (0, 2):  # the conv and the max pool
        sw = SlidingWindow(build_layer(model.layers[i]), maps[i], maps[i + 1])
        for (r, q), step in sw.steps(per_cell=True):
            anim = sw.animation()
            assert step == anim.n_steps - 1
            assert anim.running(step) == fresh[i + 1][0, r, q]
    conv = SlidingWindow(build_layer(model.layers[0]), maps[0], maps[1])
    top_left = conv.animation((0, 0))
    assert [t.product for t in top_left.taps] == [1, 1, 1, 1]
    assert [t.running for t in top_left.taps] == [1, 2, 3, 4] and top_left.result == 4


def test_order_tap_by_tap_then_cell_by_cell_and_back() -> None:
    x = np.random.default_rng(8).normal(size=(2, 4, 4)).astype(np.float32)
    conv = _conv(2, 1, 2, bias=True)
    sw = SlidingWindow(conv, x, conv.forward(x))
    visited = list(sw.steps())
    n = sw.animation().n_steps
    assert n == 2 * 4 + 2
    expected = [((r, q), s) for r in range(3) for q in range(3) for s in range(n)]
    assert visited == expected
    assert sw.at_end and not sw.forward()
    back = [(sw.cell, sw.step)]
    while sw.back():
        back.append((sw.cell, sw.step))
    assert back == expected[::-1] and sw.at_start
    cells = list(sw.steps(per_cell=True))
    assert cells == [((r, q), n - 1) for r in range(3) for q in range(3)]
    assert sw.back(per_cell=True) and sw.cell == (2, 1) and sw.step == n - 1
    sw.jump(1, 2)
    assert (sw.cell, sw.step, sw.index) == ((1, 2), 0, 5)
    sw.jump(0, 1, -1)
    assert sw.step == n - 1
    with pytest.raises(IndexError):
        sw.jump(3, 0)


def test_what_cannot_be_animated_says_so() -> None:
    x = np.zeros((1, 4, 4), np.float32)
    with pytest.raises(NotSlidingError):
        SlidingWindow(layers.Activation("relu"), x, x)
    conv = build_layer(conv_spec(1, 1, (2, 2)))
    with pytest.raises(NotSlidingError):  # a stale output of another shape
        SlidingWindow(conv, x, np.zeros((1, 4, 4), np.float32))
    with pytest.raises(NotSlidingError):
        SlidingWindow(conv, x, conv.forward(x), channel=1)
    off = build_layer(pool_spec("maxpool", 2, 2))
    off.enabled = False
    with pytest.raises(NotSlidingError):
        SlidingWindow(off, x, x)
