"""Explaining one cell reads only its window, as arrays (``TermTable``), and says exactly
what the previous term-by-term code said: every term, the total, the text and the sliding
window's running sums equal, bit for bit, an oracle that walks the window one term at a
time (the code this replaced), over layer kinds, paddings and padding modes, strides,
dilations, flipped and grouped kernels, dense units and non-finite values."""

from __future__ import annotations

import math
from dataclasses import astuple
from itertools import product

import numpy as np
import pytest

from cnn_explorer.engine import layers
from cnn_explorer.engine.geometry import (
    Term,
    TermTable,
    WeightedSumExplanation,
    _source_index,
    fmt_number,
    format_explanation,
)
from cnn_explorer.explorer.sliding import Tap, animate_cell


# ----------------------------------------------------------------------------- oracle
def _oracle_value(x: np.ndarray, c: int, r: int, q: int, mode: str) -> tuple[float, bool]:
    _, h, w = x.shape
    if 0 <= r < h and 0 <= q < w:
        return float(x[c, r, q]), False
    if mode == "zeros":
        return 0.0, True
    rr = int(_source_index(np.array([r]), h, mode)[0]) if not 0 <= r < h else r
    qq = int(_source_index(np.array([q]), w, mode)[0]) if not 0 <= q < w else q
    return float(x[c, rr, qq]), True


def _oracle_conv(layer: layers.Conv2D, x: np.ndarray, row: int, col: int, ch: int) -> tuple:
    """The terms and total of conv cell ``[ch, row, col]``, one term at a time."""
    with np.errstate(all="ignore"):
        return _oracle_conv_terms(layer, x, row, col, ch)


def _oracle_conv_terms(layer: layers.Conv2D, x: np.ndarray, row: int, col: int, ch: int) -> tuple:
    w = layer.params["weight"]
    if layer.flip_kernel:
        w = w[:, :, ::-1, ::-1]
    cin = layer.in_channels // layer.groups
    k = ch // (layer.out_channels // layer.groups)
    part = x[k * cin : (k + 1) * cin]
    win = layer.window()
    assert win is not None
    terms = []
    for c in range(part.shape[0]):
        for i, r in enumerate(win.row_positions(row)):
            for j, q in enumerate(win.col_positions(col)):
                value, pad = _oracle_value(part, c, int(r), int(q), win.padding_mode)
                wgt = float(w[ch, c, i, j])
                terms.append(
                    Term(c + k * cin, int(r), int(q), value, wgt, value * wgt, pad, (i, j))
                )
    b = float(layer.params["bias"][ch]) if "bias" in layer.params else None
    total = float(np.sum([t.product for t in terms], dtype=np.float64)) + (b or 0.0)
    return tuple(terms), b, total


def _oracle_text(e: WeightedSumExplanation, max_terms: int = 36) -> str:
    """The previous rendering: every term formatted, then all but ``max_terms`` dropped."""

    def factor(v: float) -> str:
        s = fmt_number(v)
        return f"({s})" if s.startswith("−") else s

    parts = [f"{factor(t.value)}·{factor(t.weight)}" for t in e.terms]
    if len(parts) > max_terms:
        parts = [*parts[:max_terms], f"… ({len(parts) - max_terms} more terms)"]
    total = " + ".join(parts)
    if e.bias is not None:
        b = fmt_number(e.bias)
        total += f" − {b[1:]}" if b.startswith("−") else f" + {b}"
    idx = e.index if e.show_channel else e.index[1:]
    return f"out[{','.join(map(str, idx))}] = {total} = {fmt_number(e.result)}"


def _oracle_taps(terms: tuple[Term, ...]) -> list[Tap]:
    total, per_channel, taps = 0.0, {}, []
    for t in terms:
        total += t.product
        per_channel[t.channel] = per_channel.get(t.channel, 0.0) + t.product
        taps.append(
            Tap(t.channel, (t.row, t.col), t.kernel_pos, t.value, t.weight, t.product,
                t.is_padding, total, per_channel[t.channel])
        )  # fmt: skip
    return taps


def _bits(values: object) -> bytes:
    """Floats compared by their bits (NaN equals NaN, −0 differs from 0)."""
    return b"".join(
        np.float64(v).tobytes() if isinstance(v, float) else repr(v).encode()
        for v in (values if isinstance(values, tuple | list) else (values,))
    )


def _same_terms(a: object, b: tuple[Term, ...]) -> None:
    got = list(a)  # type: ignore[call-overload]
    assert len(got) == len(b)
    for t, u in zip(got, b, strict=True):
        assert _bits(astuple(t)) == _bits(astuple(u))


# ----------------------------------------------------------------------------- cases
CONVS = [
    dict(cin=3, cout=4, k=3, padding=1),
    dict(cin=2, cout=3, k=(3, 5), stride=(2, 1), padding=(1, 2)),
    dict(cin=2, cout=2, k=3, dilation=2, padding=2),
    dict(cin=2, cout=2, k=4, padding="same", bias=False),
    dict(cin=3, cout=2, k=3, padding=2, padding_mode="reflect"),
    dict(cin=1, cout=2, k=5, padding=3, padding_mode="replicate", stride=2),
    dict(cin=2, cout=2, k=3, padding=2, padding_mode="circular", dilation=(1, 2)),
    dict(cin=2, cout=3, k=3, padding=1, flip_kernel=True),
    dict(cin=4, cout=6, k=3, padding=1, groups=2),
    dict(cin=4, cout=4, k=2, stride=3, groups=4, bias=False),
]


def _conv(spec: dict, seed: int) -> layers.Conv2D:
    spec = dict(spec)
    cin, cout, k = spec.pop("cin"), spec.pop("cout"), spec.pop("k")
    layer = layers.Conv2D(cin, cout, k, rng=seed, **spec)
    if "bias" in layer.params:
        layer.params["bias"][...] = np.random.default_rng(seed).normal(size=cout)
    return layer


def _input(c: int, h: int, w: int, seed: int, nonfinite: bool) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(c, h, w)).astype(np.float32)
    x[0, 0, 0] = -0.0
    if nonfinite:
        x[0, 1, 1], x[-1, 2, 3], x[-1, 0, 2] = np.nan, np.inf, -np.inf
    return x


@pytest.mark.parametrize(("case", "nonfinite"), list(product(range(len(CONVS)), (False, True))))
def test_conv_cells_equal_the_term_by_term_oracle_bit_for_bit(case: int, nonfinite: bool) -> None:
    layer = _conv(CONVS[case], seed=case)
    x = _input(layer.in_channels, 7, 9, seed=case, nonfinite=nonfinite)
    out = layer.forward(x[None])[0]
    for ch in range(out.shape[0]):
        for r, q in product(range(out.shape[1]), range(out.shape[2])):
            e = layer.explain(x, r, q, ch)
            terms, bias, total = _oracle_conv(layer, x, r, q, ch)
            assert isinstance(e, WeightedSumExplanation)
            _same_terms(e.terms, terms)
            assert _bits((e.bias, e.result)) == _bits((bias, total))
            if not nonfinite:  # (NaN terms are unequal, as Term's NaN fields always were)
                assert e.terms == terms and terms == e.terms  # with the tuple, both ways
            assert format_explanation(e) == _oracle_text(e)
            anim = animate_cell(layer, x, out, r, q, ch)
            want = _oracle_taps(terms)
            assert [_bits(astuple(t)) for t in anim.taps] == [_bits(astuple(t)) for t in want]


def test_a_big_conv_cell_reads_only_its_window_and_is_shown_as_before() -> None:
    """A 64-channel 15×15 kernel on a large map: 14,400 terms, the same as the oracle."""
    layer = _conv(dict(cin=64, cout=2, k=15, padding=7), seed=3)
    x = _input(64, 40, 40, seed=3, nonfinite=False)
    e = layer.explain(x, 20, 6, 1)
    terms, _, total = _oracle_conv(layer, x, 20, 6, 1)
    assert len(e.terms) == 64 * 15 * 15
    _same_terms(e.terms, terms)
    assert _bits(e.result) == _bits(total)
    assert format_explanation(e) == _oracle_text(e)
    assert "(14364 more terms)" in format_explanation(e)


@pytest.mark.parametrize("nonfinite", [False, True])
def test_dense_units_equal_the_term_by_term_oracle(nonfinite: bool) -> None:
    layer = layers.Dense(50, 3, rng=1)
    v = _input(2, 5, 5, seed=4, nonfinite=nonfinite).reshape(-1)
    w, b = layer.params["weight"], layer.params["bias"]
    for j in range(3):
        terms = tuple(
            Term(0, 0, i, float(v[i]), float(w[j, i]), float(v[i]) * float(w[j, i]), False, (0, i))
            for i in range(v.size)
        )
        with np.errstate(all="ignore"):
            total = float(np.sum([t.product for t in terms], dtype=np.float64)) + float(b[j])
        e = layer.explain(v, 0, j)
        assert isinstance(e, WeightedSumExplanation)
        _same_terms(e.terms, terms)
        assert _bits(e.result) == _bits(total)
        assert format_explanation(e) == _oracle_text(e)


def test_a_term_table_behaves_as_the_tuple_of_its_terms() -> None:
    layer = _conv(dict(cin=2, cout=1, k=3, padding=1), seed=5)
    x = _input(2, 4, 4, seed=5, nonfinite=False)
    e = layer.explain(x, 0, 0, 0)
    assert isinstance(e.terms, TermTable)
    terms = tuple(e.terms)
    assert len(e.terms) == 18 and e.terms[0] == terms[0] and e.terms[-1] == terms[-1]
    assert e.terms[3:7] == terms[3:7] and e.terms[::-1] == terms[::-1]
    with pytest.raises(IndexError):
        e.terms[18]
    assert e.terms != terms[:-1] and hash(e.terms) == hash(terms)
    assert e == WeightedSumExplanation(e.kind, e.index, terms, e.bias, e.result, e.show_channel)
    assert math.isclose(sum(t.product for t in e.terms) + (e.bias or 0.0), e.result)
    assert "18 terms" in repr(e.terms)
