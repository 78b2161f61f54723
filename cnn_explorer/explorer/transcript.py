"""The selected cell's arithmetic to copy into notes or slides: plain text or LaTeX, each
product with the input and the weight it multiplies labelled (``x[0,1]·w[0,1]``), then
the same sum with the numbers. Qt-free.

Plain text uses the true minus sign (−) everywhere, as every explanation of the app does;
LaTeX writes ``-`` in math mode, which LaTeX typesets as that same minus.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from cnn_explorer.engine import geometry
from cnn_explorer.explorer import explain
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.specs import LayerSpec

STYLES = ("plain", "latex")
fmt = geometry.fmt_number


def _idx(parts: Sequence[int], latex: bool) -> str:
    text = ",".join(fmt(float(v)) for v in parts)
    return text.replace("−", "-") if latex else text


def _x(t: geometry.Term, channel: bool, latex: bool) -> str:
    pos = (t.channel, t.row, t.col) if channel else (t.row, t.col)
    name = "p" if t.is_padding else "x"  # a padding cell: outside the input map
    return f"{name}_{{{_idx(pos, latex)}}}" if latex else f"{name}[{_idx(pos, latex)}]"


def _w(t: geometry.Term, out_channel: int, channel: bool, latex: bool) -> str:
    i, j = t.kernel_pos
    pos = (out_channel, t.channel, i, j) if channel else (i, j)
    return f"w_{{{_idx(pos, latex)}}}" if latex else f"w[{_idx(pos, latex)}]"


def _num(v: float, latex: bool, bracket: bool = True) -> str:
    """A number; a negative factor in brackets (``1·(−1)``), a result without."""
    s = fmt(v)
    if latex:
        s = s.replace("−", "-").replace("∞", r"\infty").replace("NaN", r"\mathrm{NaN}")
    return f"({s})" if bracket and s.startswith(("−", "-")) else s


def _out(index: tuple[int, ...], channel: bool, latex: bool) -> str:
    idx = index if channel or len(index) != 3 else index[1:]
    return rf"\mathrm{{out}}_{{{_idx(idx, latex)}}}" if latex else f"out[{_idx(idx, latex)}]"


def _sum(parts: list[str]) -> str:
    return " + ".join(parts)


def labelled(e: geometry.Explanation, latex: bool = False) -> str:
    """One explanation with its inputs and weights labelled, then its numbers."""
    dot = r" \cdot " if latex else "·"
    if isinstance(e, geometry.WeightedSumExplanation):
        ch, out_c = e.show_channel, e.index[0]
        names = [f"{_x(t, ch, latex)}{dot}{_w(t, out_c, ch, latex)}" for t in e.terms]
        nums = [f"{_num(t.value, latex)}{dot}{_num(t.weight, latex)}" for t in e.terms]
        if e.bias is not None:
            names.append(f"b_{{{out_c}}}" if latex else f"b[{out_c}]")
            nums.append(_num(e.bias, latex))
        out = _out(e.index, ch, latex)
        return f"{out} = {_sum(names)} = {_sum(nums)} = {_num(e.result, latex, False)}"
    if isinstance(e, geometry.MaxPoolExplanation | geometry.AvgPoolExplanation):
        ch, is_max = e.show_channel, isinstance(e, geometry.MaxPoolExplanation)
        terms = [t for t in e.terms if not (t.is_padding and is_max)]  # padding never wins
        xs = [_x(t, ch, latex) for t in terms]
        vs = [_num(t.value, latex) for t in terms]
        out, res = _out(e.index, ch, latex), _num(e.result, latex, False)
        if isinstance(e, geometry.MaxPoolExplanation):
            mx = r"\max" if latex else "max"
            return f"{out} = {mx}({', '.join(xs)}) = {mx}({', '.join(vs)}) = {res}"
        n, v, d = " + ".join(xs), " + ".join(vs), e.divisor
        if latex:
            return rf"{out} = \frac{{{n}}}{{{d}}} = \frac{{{v}}}{{{d}}} = {res}"
        return f"{out} = ({n}) / {d} = ({v}) / {d} = {res}"
    text = geometry.format_explanation(e)
    if not latex:
        return text
    for a, b in (("−", "-"), ("·", r" \cdot "), ("∞", r"\infty")):
        text = text.replace(a, b)
    return re.sub(r"[A-Za-z]{2,}", _latex_word, text)


def _latex_word(match: re.Match[str]) -> str:
    """``max`` and ``tanh`` as LaTeX operators, any other name (ReLU) upright."""
    word = match.group(0)
    return rf"\{word}" if word in ("max", "min", "tanh", "exp") else rf"\mathrm{{{word}}}"


def _latex_text(text: str) -> str:
    """A layer label as LaTeX text ("layer 1 Conv2D 1→1, 2×2")."""
    for a, b in (("→", r"$\to$"), ("×", r"$\times$"), ("−", "-"), ("_", r"\_"), ("%", r"\%")):
        text = text.replace(a, b)
    return text


def transcript(
    specs: Sequence[LayerSpec], maps: Sequence[np.ndarray], sel: Selection, style: str = "plain"
) -> str:
    """The selected cell's arithmetic through the stack, in ``style`` (one of
    :data:`STYLES`): plain text, one line per layer (``←`` to the earlier one), or a LaTeX
    ``align*`` environment, one row per layer."""
    latex = style == "latex"
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}: use one of {', '.join(STYLES)}")
    if sel.map_index == 0:
        v = float(maps[0][sel.channel, sel.row, sel.col])
        pos = (sel.channel, sel.row, sel.col)
        if latex:
            return rf"\[ x_{{{_idx(pos, True)}}} = {_num(v, True)} \]"
        return f"x[{_idx(pos, False)}] = {fmt(v)}"

    def one(label: str, e: geometry.Explanation | None, text: str) -> str:
        if not latex:
            return f"{label}:  {labelled(e)}" if e is not None else f"{label}{text}"
        body = labelled(e, True) if e is not None else rf"\text{{{_latex_text(text)}}}"
        return rf"&\text{{{_latex_text(label)}:}} && {body}"

    join = " \\\\\n" if latex else "\n  ← "
    text, _ = explain.explain_trace(specs, maps, sel, one, join)
    if latex:
        return "\\begin{align*}\n" + text + "\n\\end{align*}"
    return text
