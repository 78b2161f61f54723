"""Geometry: output sizes, receptive fields (hand-computed and brute force), explanations,
parameter counts. The primer's worked example is checked number by number."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cnn_explorer.engine import geometry as g
from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.engine.layers import Activation, AvgPool2D, Conv2D, Layer, MaxPool2D
from cnn_explorer.engine.network import Network

WORKED = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], float)[None]


def worked_network(kernel: list[list[float]] | None = None) -> Network:
    conv = Conv2D(1, 1, 2, bias=False)
    conv.params["weight"][0, 0] = np.ones((2, 2)) if kernel is None else kernel
    return Network([conv, Activation("relu"), MaxPool2D(2, stride=1)])


# ------------------------------------------------------------------------ output size
@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((4, 2), {}, 3),
        ((28, 3), {"padding": 1}, 28),
        ((7, 3, 2), {}, 3),
        ((8, 3, 2), {}, 3),
        ((7, 3), {"dilation": 2}, 3),
        ((7, 5), {"dilation": 2}, -1),
        ((4, 3), {"padding": (0, 1)}, 3),
        ((5, 2, 2), {"ceil_mode": True}, 3),
        ((5, 2, 2), {"padding": 1, "ceil_mode": True}, 3),
        ((6, 3, 2), {"ceil_mode": True}, 3),
        ((2, 2), {}, 1),
        ((1, 2), {}, 0),
    ],
)
def test_conv_output_size(args: tuple[int, ...], kwargs: dict, expected: int) -> None:
    assert g.conv_output_size(*args, **kwargs) == expected


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 12),
    k=st.integers(1, 5),
    s=st.integers(1, 4),
    p=st.integers(0, 2),
    d=st.integers(1, 3),
    ceil=st.booleans(),
)
def test_conv_output_size_matches_torch(n: int, k: int, s: int, p: int, d: int, ceil: bool) -> None:
    torch = pytest.importorskip("torch")
    assume(2 * p <= k and d * (k - 1) + 1 <= n + 2 * p)
    x = torch.zeros(1, 1, n, n)
    out = torch.nn.functional.max_pool2d(x, k, s, p, d, ceil_mode=ceil)
    assert g.conv_output_size(n, k, s, p, d, ceil) == out.shape[-1]


def test_explain_output_size_text() -> None:
    assert g.explain_output_size(4, 2) == "(4 + 2·0 − 1·(2−1) − 1) / 1 + 1 = 3"
    assert g.explain_output_size(8, 3, 2) == "⌊(8 + 2·0 − 1·(3−1) − 1) / 2⌋ + 1 = 2 + 1 = 3"
    assert g.explain_output_size(4, 3, padding=(0, 1)) == "(4 + 0 + 1 − 1·(3−1) − 1) / 1 + 1 = 3"
    assert g.explain_output_size(7, 5, dilation=2).endswith(
        "= -1: the kernel (effective size 9) does not fit in the padded input (7)"
    )
    text = g.explain_output_size(5, 2, 2, padding=1, ceil_mode=True)
    assert text.startswith("⌈(5 + 2·1 − 1·(2−1) − 1) / 2⌉ + 1 = 3 + 1 = 4 − 1")
    assert text.endswith("= 3")


def test_window_geometry() -> None:
    w = g.Window((3, 2), stride=(2, 1), dilation=(2, 1), padding=(1, 0, 0, 1))
    assert w.effective_kernel == (5, 2)
    assert w.output_hw(7, 4) == (2, 4)
    assert list(w.row_positions(1)) == [1, 3, 5]
    assert list(w.col_positions(3)) == [3, 4]
    assert g.same_padding(4) == (1, 2)
    assert g.same_padding(3, dilation=2) == (2, 2)


def test_layer_windows() -> None:
    conv = Conv2D(1, 2, 3, stride=2, padding=1, dilation=2, padding_mode="reflect")
    assert conv.window() == g.Window((3, 3), (2, 2), (2, 2), (1, 1, 1, 1), False, True, "reflect")
    pool = MaxPool2D(2)
    assert pool.window() == g.Window((2, 2), (2, 2), (1, 1), (0, 0, 0, 0), False, False)
    assert Activation("relu").window() is None
    conv.enabled = False
    assert conv.window() is None


# ----------------------------------------------------------------------- receptive field
def test_receptive_field_worked_example() -> None:
    windows = [g.Window((2, 2), mixes_channels=True), None, g.Window((2, 2))]
    regions = g.receptive_field(windows, 2, 0, 1, (4, 4), channel=0)
    assert [r.map_index for r in regions] == [0, 1, 2]
    inp = regions[0]
    assert inp.row_range == (0, 2) and inp.col_range == (1, 3)
    expected = np.zeros((4, 4), bool)
    expected[0:3, 1:4] = True
    assert np.array_equal(inp.mask, expected)
    assert inp.padding_cells == [] and inp.channels is None
    assert regions[1].row_range == (0, 1) and regions[1].col_range == (1, 2)
    assert list(regions[2].channels) == [0]  # pool input: the same channel only
    net_regions = worked_network().receptive_field((1, 4, 4), 2, 0, 1, 0)
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(regions, net_regions, strict=True))


def test_receptive_field_dilation_is_sparse() -> None:
    regions = g.receptive_field([g.Window((3, 3), dilation=(2, 2))], 0, 0, 1, (7, 7))
    assert list(regions[0].rows) == [0, 2, 4]
    assert list(regions[0].cols) == [1, 3, 5]
    assert regions[0].size == 9


def test_receptive_field_padding_cells() -> None:
    win = g.Window((3, 3), padding=(1, 1, 1, 1))
    (region,) = g.receptive_field([win], 0, 0, 0, (4, 4))
    assert list(region.rows) == [0, 1] and list(region.cols) == [0, 1]
    assert sorted(region.padding_cells) == [(-1, -1), (-1, 0), (-1, 1), (0, -1), (1, -1)]
    (region,) = g.receptive_field([win], 0, 3, 3, (4, 4))
    assert sorted(region.padding_cells) == [(2, 4), (3, 4), (4, 2), (4, 3), (4, 4)]


def test_receptive_field_reflect_padding_reads_the_mirrored_cell() -> None:
    win = g.Window((3, 3), padding=(1, 1, 1, 1), padding_mode="reflect")
    (region,) = g.receptive_field([win], 0, 0, 3, (4, 4))
    assert list(region.rows) == [0, 1]  # row −1 mirrors row 1
    assert list(region.cols) == [2, 3]  # column 4 mirrors column 2
    assert len(region.padding_cells) == 5


def test_receptive_field_rejects_cells_outside() -> None:
    with pytest.raises(IndexError):
        g.receptive_field([g.Window((2, 2))], 0, 3, 0, (4, 4))


# Brute force: perturb one cell of map j by a large positive amount and see whether the
# chosen output cell changes. With positive weights, positive data and monotone layers
# (ReLU, max, mean) every real dependency shows up; nothing else can.
layer_specs = st.one_of(
    st.tuples(
        st.just("conv"),
        st.integers(1, 3),  # kernel
        st.integers(1, 2),  # stride
        st.integers(0, 2),  # padding
        st.integers(1, 2),  # dilation
        st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
        st.integers(1, 2),  # out channels
    ),
    st.tuples(
        st.sampled_from(["max", "avg"]),
        st.integers(1, 3),
        st.integers(1, 2),
        st.integers(0, 1),
        st.booleans(),
    ),
    st.tuples(st.just("relu")),
)


def _build(specs: list[tuple], channels: int, rng: np.random.Generator) -> list[Layer]:
    layers: list[Layer] = []
    c = channels
    for spec in specs:
        if spec[0] == "conv":
            _, k, s, p, d, mode, o = spec
            conv = Conv2D(c, o, k, s, p, d, mode, bias=True, rng=rng)
            conv.params["weight"][...] = rng.uniform(0.2, 1.0, conv.weight.shape)
            layers.append(conv)
            c = o
        elif spec[0] in ("max", "avg"):
            _, k, s, p, ceil = spec
            cls = MaxPool2D if spec[0] == "max" else AvgPool2D
            layers.append(cls(k, s, min(p, k // 2), ceil))
        else:
            layers.append(Activation("relu"))
    return layers


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(layer_specs, min_size=1, max_size=3),
    h=st.integers(4, 8),
    w=st.integers(4, 8),
    channels=st.integers(1, 2),
    seed=st.integers(0, 10_000),
    data=st.data(),
)
def test_receptive_field_matches_brute_force(
    specs: list[tuple], h: int, w: int, channels: int, seed: int, data: st.DataObject
) -> None:
    rng = np.random.default_rng(seed)
    net = Network(_build(specs, channels, rng)).astype(np.float64)
    shape = (channels, h, w)
    statuses = net.validate(shape)
    assume(all(s.ok for s in statuses))
    last = len(net) - 1
    oc, oh, ow = statuses[-1].output_shape
    ch = data.draw(st.integers(0, oc - 1))
    row, col = data.draw(st.integers(0, oh - 1)), data.draw(st.integers(0, ow - 1))
    x = rng.uniform(1.0, 2.0, shape)
    maps = net.forward(x)
    regions = net.receptive_field(shape, last, row, col, ch)
    for j, region in enumerate(regions):
        base = maps[-1][ch, row, col]
        dep = np.zeros(maps[j].shape, bool)
        for idx in np.ndindex(*maps[j].shape):
            bumped = maps[j].copy()
            bumped[idx] += 1000.0
            out = net.forward_from(j, [*maps[:j], bumped])[-1][ch, row, col]
            dep[idx] = out != base
        expected = np.zeros(maps[j].shape, bool)
        chans = range(maps[j].shape[0]) if region.channels is None else region.channels
        for c in chans:
            expected[c] = region.mask
        assert np.array_equal(dep, expected), (j, specs)


def test_receptive_field_through_flatten_and_dense() -> None:
    from cnn_explorer.engine.network import default_classifier

    net = default_classifier((1, 8, 8), 3)
    regions = net.receptive_field((1, 8, 8), 7, 0, 2)
    assert len(regions) == 8
    assert regions[0].mask.all() and regions[7].shape == (1, 64)
    # a Flatten output cell is one cell of its 16×2×2 input: flat 17 = channel 4, (0, 1)
    regions = net.receptive_field((1, 8, 8), 6, 0, 17)
    assert list(regions[6].channels) == [4]
    assert regions[6].row_range == (0, 0) and regions[6].col_range == (1, 1)
    assert regions[5].row_range == (0, 1) and regions[5].col_range == (2, 3)
    assert regions[3].row_range == (0, 2) and regions[3].col_range == (1, 3)
    assert regions[3].channels is None


# ------------------------------------------------------------------------- explanations
def test_explain_conv_worked_example() -> None:
    net = worked_network()
    maps = net.forward(WORKED)
    np.testing.assert_array_equal(maps[1][0], [[4, 2, 0], [2, 2, 2], [0, 2, 4]])
    e = net.explain_cell(maps, 0, 0, 1)
    assert isinstance(e, g.WeightedSumExplanation)
    assert [(t.row, t.col, t.value, t.weight, t.product) for t in e.terms] == [
        (0, 1, 1, 1, 1),
        (0, 2, 0, 1, 0),
        (1, 1, 1, 1, 1),
        (1, 2, 0, 1, 0),
    ]
    assert e.bias is None and e.result == 2
    assert g.format_explanation(e) == "out[0,1] = 1·1 + 0·1 + 1·1 + 0·1 = 2"


def test_explain_conv_signed_kernel() -> None:
    net = worked_network([[1, -1], [1, -1]])
    maps = net.forward(WORKED)
    np.testing.assert_array_equal(maps[1][0], [[0, 2, 0], [0, 0, 0], [0, -2, 0]])
    e = net.explain_cell(maps, 0, 2, 1)
    # one minus sign throughout, as in the activation formulas ("ReLU(−2) = max(0, −2)")
    assert g.format_explanation(e) == "out[2,1] = 0·1 + 1·(−1) + 0·1 + 1·(−1) = −2"


def test_explain_pools_and_activation() -> None:
    net = worked_network()
    maps = net.forward(WORKED)
    np.testing.assert_array_equal(maps[3][0], [[4, 2], [2, 4]])
    e = net.explain_cell(maps, 2, 0, 1)
    assert isinstance(e, g.MaxPoolExplanation)
    assert [t.value for t in e.terms] == [2, 0, 2, 2]
    assert (e.winner.row, e.winner.col, e.result) == (0, 1, 2)
    assert g.format_explanation(e) == "out[0,1] = max(2, 0, 2, 2) = 2 at (0, 1)"
    avg = AvgPool2D(2, stride=1)
    e = avg.explain(maps[2], 0, 0)
    assert isinstance(e, g.AvgPoolExplanation) and e.divisor == 4 and e.result == 2.5
    assert g.format_explanation(e) == "out[0,0] = (4 + 2 + 2 + 2) / 4 = 2.5"
    e = Activation("relu").explain(np.array([[[-2.0]]]), 0, 0)
    assert isinstance(e, g.ElementwiseExplanation)
    assert (e.x, e.result) == (-2.0, 0.0)
    assert g.format_explanation(e) == "ReLU(−2) = max(0, −2) = 0"


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(2, 3),
    s=st.integers(1, 2),
    p=st.integers(0, 1),
    ceil=st.booleans(),
    nan=st.booleans(),
    data=st.data(),
)
def test_max_pool_winner_is_where_the_gradient_goes(
    seed: int, k: int, s: int, p: int, ceil: bool, nan: bool, data: st.DataObject
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, (1, 5, 5)).astype(np.float64)  # many ties
    if nan:
        x[0, rng.integers(0, 5, 2), rng.integers(0, 5, 2)] = np.nan
    pool = MaxPool2D(k, s, p, ceil)
    out = pool.forward(x)
    r = data.draw(st.integers(0, out.shape[1] - 1))
    q = data.draw(st.integers(0, out.shape[2] - 1))
    grad = np.zeros_like(out)
    grad[0, r, q] = 1
    routed = np.argwhere(pool.backward(grad)[0])
    e = pool.explain(x, r, q)
    assert [list(cell) for cell in routed] == [[e.winner.row, e.winner.col]]
    np.testing.assert_equal(e.result, out[0, r, q])


def test_explain_padding_terms_and_bias() -> None:
    conv = Conv2D(1, 1, 3, padding=1)
    conv.params["weight"][...] = 1
    conv.params["bias"][...] = 0.5
    e = conv.explain(WORKED, 0, 0)
    assert sum(t.is_padding for t in e.terms) == 5
    assert e.result == pytest.approx(4.5)
    assert g.format_explanation(e).endswith(" + 0.5 = 4.5")


def test_explain_avg_pool_divisor_counts_padding_like_torch() -> None:
    e = AvgPool2D(2, 2, padding=1).explain(np.ones((1, 3, 3)), 0, 0)
    assert e.divisor == 4 and e.result == 0.25
    e = AvgPool2D(2, 2, ceil_mode=True).explain(np.ones((1, 3, 3)), 1, 1)
    assert e.divisor == 1 and e.result == 1.0


def test_format_explanation_cuts_long_sums() -> None:
    conv = Conv2D(4, 1, 3)
    text = g.format_explanation(conv.explain(np.ones((4, 3, 3)), 0, 0), max_terms=5)
    assert "… (31 more terms)" in text


conv_specs = st.tuples(
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(0, 2),
    st.integers(1, 2),
    st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
    st.booleans(),
    st.booleans(),
)


@settings(max_examples=40, deadline=None)
@given(spec=conv_specs, seed=st.integers(0, 1000), data=st.data())
def test_explanations_reproduce_the_forward_values(
    spec: tuple, seed: int, data: st.DataObject
) -> None:
    k, s, p, d, mode, flip, bias = spec
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 6, 6))
    layers: list[Layer] = [
        Conv2D(2, 3, k, s, p, d, mode, bias, flip, rng=rng),
        MaxPool2D(k, s, min(p, k // 2)),
        AvgPool2D(k, s, min(p, k // 2), ceil_mode=True),
        Activation("tanh"),
    ]
    for layer in layers:
        layer.astype(np.float64)
        try:
            out = layer.forward(x)
        except ShapeError:
            continue
        c = data.draw(st.integers(0, out.shape[0] - 1))
        r = data.draw(st.integers(0, out.shape[1] - 1))
        q = data.draw(st.integers(0, out.shape[2] - 1))
        e = layer.explain(x, r, q, c)
        assert e.result == pytest.approx(out[c, r, q], rel=1e-9, abs=1e-12)


# --------------------------------------------------------------------------- param counts
def test_param_counts() -> None:
    assert g.conv_param_count(1, 8, 3, 3) == 80
    assert g.conv_param_count(8, 16, 3, 3, bias=False) == 1152
    assert g.dense_param_count_equivalent((1, 28, 28), (8, 28, 28)) == 784 * 6272 + 6272
    assert g.dense_param_count_equivalent((1, 4, 4), (1, 3, 3), bias=False) == 144
    conv = Conv2D(1, 8, 3)
    assert conv.param_count() == g.conv_param_count(1, 8, 3, 3)


def test_fmt_number() -> None:
    assert g.fmt_number(2.0) == "2"
    assert g.fmt_number(-0.0) == "0"
    assert g.fmt_number(0.123456) == "0.1235"
    assert g.fmt_number(1e-7) == "1e-07"
    assert g.fmt_number(-2.5) == "−2.5"
    assert (g.fmt_number(float("nan")), g.fmt_number(-float("inf"))) == ("NaN", "−∞")


def test_a_negative_bias_is_subtracted_not_added() -> None:
    conv = Conv2D(1, 1, 1)
    conv.params["weight"][...] = 2.0
    conv.params["bias"][...] = -1.0
    x = np.full((1, 1, 1), 3.0, np.float32)
    assert g.format_explanation(conv.explain(x, 0, 0)) == "out[0,0] = 3·2 − 1 = 5"
