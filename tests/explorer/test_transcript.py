"""Copying a cell's arithmetic: labelled products, padding, pools, one minus sign."""

from __future__ import annotations

import pytest
from explorer_helpers import History

from cnn_explorer.explorer import presets
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.model import Explorer
from cnn_explorer.explorer.transcript import transcript


def model(**conv: object) -> Explorer:
    m = Explorer()
    h = History(m)
    h.do("set_kernel", 0, 0, 0, presets.EDGE_KERNEL, "Edge")
    if conv:
        h.do("update_config", 0, **conv)
    m.recompute()
    return m


def test_plain_labels_every_product_and_marks_padding():
    m = model(padding=1, bias=True)
    text = transcript(m.layers, m.results.maps, Selection(1, 0, 0, 0))
    assert "out[0,0] = p[−1,−1]·w[0,0] + p[−1,0]·w[0,1] + p[0,−1]·w[1,0] + x[0,0]·w[1,1]" in text
    assert "+ b[0] = 0·1 + 0·(−1) + 0·1 + 1·(−1) + 0 = −1" in text
    assert "-" not in text


def test_trace_through_relu_and_max_pool_in_both_styles():
    m = model()
    sel = Selection(3, 0, 1, 0)
    plain = transcript(m.layers, m.results.maps, sel)
    lines = plain.split("\n")
    assert lines[0].startswith("layer 3 Max pool 2×2:  out[1,0] = max(x[1,0], x[1,1], x[2,0]")
    assert lines[1].startswith("  ← layer 2 ReLU:  ReLU(")
    assert lines[2].startswith("  ← layer 1 Conv2D 1→1, 2×2:  out[")
    tex = transcript(m.layers, m.results.maps, sel, "latex")
    assert tex.count(r" \\") == 2 and r"\max(x_{1,0}, x_{1,1}" in tex
    assert r"\mathrm{ReLU}(" in tex and r"1$\to$1, 2$\times$2" in tex and "−" not in tex


def test_average_pool_input_cell_and_unknown_style():
    m = Explorer()
    History(m).do("set_kind", 2, "avgpool")
    m.recompute()
    maps = m.results.maps
    text = transcript(m.layers, maps, Selection(3, 0, 0, 1))
    assert "out[0,1] = (x[0,1] + x[0,2] + x[1,1] + x[1,2]) / 4 = (2 + 0 + 2 + 2) / 4 = 1.5" in text
    tex = transcript(m.layers, maps, Selection(3, 0, 0, 1), "latex")
    assert r"\frac{x_{0,1} + x_{0,2} + x_{1,1} + x_{1,2}}{4} = \frac{2 + 0 + 2 + 2}{4} = 1.5" in tex
    assert transcript(m.layers, maps, Selection(0, 0, 1, 2)) == "x[0,1,2] = 0"
    with pytest.raises(ValueError, match="unknown style"):
        transcript(m.layers, maps, Selection(0, 0, 0, 0), "html")
