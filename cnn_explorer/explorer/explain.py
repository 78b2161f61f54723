"""What the explorer says about its numbers: the arithmetic of a selected cell, its
receptive field, the output-size formula with the user's numbers and parameter counts.

All of it is asked of the engine (``Layer.window()``, ``Layer.explain()``,
``geometry.receptive_field``) through :func:`~cnn_explorer.explorer.specs.build_layer`;
this module only picks the layers and formats. Qt-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cnn_explorer.engine import geometry
from cnn_explorer.explorer.specs import LayerSpec, build_layer

ELEMENTWISE = ("act", "batchnorm", "dropout")
"""Kinds computing each cell from the same cell of their input (shape unchanged)."""


@dataclass(frozen=True)
class Selection:
    """A selected cell: map index (0 = input, i+1 = output of layer i), channel, row, col."""

    map_index: int
    channel: int
    row: int
    col: int


def window(spec: LayerSpec) -> geometry.Window | None:
    """The engine's sliding window of a spatial layer; None for elementwise or disabled
    layers and for a layer the engine refuses to build."""
    try:
        return build_layer(spec).window()
    except ValueError:
        return None


def size_formula(spec: LayerSpec, in_shape: tuple[int, ...] | None) -> str:
    """Output-size formula with the user's numbers.

    e.g. ``"H = W = (4 + 2·0 − 1·(2−1) − 1) / 1 + 1 = 3"``."""
    if in_shape is None:
        return ""
    win = window(spec)
    if win is None:
        if not spec.enabled:
            return "disabled: passes input"
        return "elementwise: shape unchanged" if spec.kind in ELEMENTWISE else ""
    t, b, left, r = win.padding
    h = geometry.explain_output_size(
        in_shape[1], win.kernel[0], win.stride[0], (t, b), win.dilation[0]
    )
    if (in_shape[1], win.kernel[0], win.stride[0], t, b, win.dilation[0]) == (
        in_shape[2],
        win.kernel[1],
        win.stride[1],
        left,
        r,
        win.dilation[1],
    ):
        return f"H = W = {h}"
    w = geometry.explain_output_size(
        in_shape[2], win.kernel[1], win.stride[1], (left, r), win.dilation[1]
    )
    return f"H = {h};  W = {w}"


def layer_param_count(spec: LayerSpec) -> int:
    """Trainable parameters of the layer (conv: weights + biases; batch norm: γ and β per
    channel; others: 0)."""
    if spec.kind == "batchnorm":
        return 2 * len(spec.config["gamma"])
    if spec.kind != "conv" or spec.weight is None:
        return 0
    o, c, kh, kw = spec.weight.shape
    return geometry.conv_param_count(c, o, kh, kw, bool(spec.config.get("bias", True)))


def dense_equivalent(in_shape: Sequence[int], out_shape: Sequence[int], bias: bool = True) -> int:
    """Parameters a dense layer mapping the same input to the same output would need, with
    one bias per output only when ``bias`` (like for like with the conv it is compared to)."""
    return geometry.dense_param_count_equivalent(in_shape, out_shape, bias)


@dataclass(frozen=True)
class ParamCounts:
    """Weight sharing in numbers, like for like: a conv's weights and biases beside those of
    a dense layer mapping the same input ``(C, H, W)`` to the same output, which has biases
    exactly when the conv has them."""

    conv_weights: int
    conv_biases: int
    dense_weights: int
    dense_biases: int

    @property
    def conv_total(self) -> int:
        return self.conv_weights + self.conv_biases

    @property
    def dense_total(self) -> int:
        return self.dense_weights + self.dense_biases


def param_counts(
    spec: LayerSpec, in_shape: Sequence[int], out_shape: Sequence[int]
) -> ParamCounts | None:
    """:class:`ParamCounts` of a conv layer (None for other kinds)."""
    if spec.kind != "conv" or spec.weight is None:
        return None
    bias = bool(spec.config.get("bias", True))
    total = layer_param_count(spec)
    biases = int(spec.weight.shape[0]) if bias else 0
    dense = dense_equivalent(in_shape, out_shape, bias)
    dense_biases = int(np.prod(out_shape)) if bias else 0
    return ParamCounts(total - biases, biases, dense - dense_biases, dense_biases)


def filter_of(specs: Sequence[LayerSpec], sel: Selection) -> tuple[int, int] | None:
    """``(layer, filter)`` of the conv that made the selected cell's channel: the layer of
    the map itself, or the nearest conv before it through channel-wise layers
    (activations, pools, batch norm, dropout, disabled layers keep the channel index).
    None for the input or when no conv made the channel."""
    for i in range(sel.map_index - 1, -1, -1):
        spec = specs[i] if i < len(specs) else None
        if spec is None:
            return None
        if spec.enabled and spec.kind == "conv":
            return i, sel.channel
    return None


def receptive_regions(
    specs: Sequence[LayerSpec], maps: Sequence[np.ndarray], sel: Selection
) -> list[geometry.Region]:
    """Regions of maps ``0..sel.map_index-1`` feeding the selected cell (input first)."""
    if sel.map_index == 0:
        return []
    windows = [window(s) for s in specs[: sel.map_index]]
    hw = (int(maps[0].shape[1]), int(maps[0].shape[2]))
    return geometry.receptive_field(
        windows, sel.map_index - 1, sel.row, sel.col, hw, channel=sel.channel
    )


Formatter = Callable[[str, geometry.Explanation | None, str], str]
"""Renders one step of a trace from ``(label, explanation, text)``: the layer's label
("layer 1 Conv2D 1→1, 2×2"), the engine's explanation (None for a disabled layer or one
that could not be explained) and the default text of that step."""


def _plain(label: str, _e: geometry.Explanation | None, text: str) -> str:
    return f"{label}:  {text}" if _e is not None else f"{label}{text}"


def explain_trace(
    specs: Sequence[LayerSpec],
    maps: Sequence[np.ndarray],
    sel: Selection,
    fmt: Formatter = _plain,
    join: str = "\n  ← ",
) -> tuple[str, list[Selection]]:
    """The arithmetic of the selected cell, one line per step back to a spatial layer, and
    the cells the value came from one to one (through activations to the same cell, through
    a max pool to its winner; earliest last).

    For an activation after a conv the text shows the conv sum first, then ``relu(x)``;
    for a pool it shows the window and the winner/mean.
    """
    if sel.map_index == 0:
        v = float(maps[0][sel.channel, sel.row, sel.col])
        return f"input[{sel.channel},{sel.row},{sel.col}] = {geometry.fmt_number(v)}", []
    lines: list[str] = []
    trace: list[Selection] = []
    i = sel.map_index - 1
    cell = sel
    for _ in range(8):  # trace back through activations and max-pool winners
        if i < 0:
            break
        text, nxt = _explain_one(specs[i], maps[i], cell, i + 1, fmt)
        lines.append(text)
        if nxt is None:
            break
        trace.append(nxt)
        cell = nxt
        i -= 1
    return join.join(lines), trace


def _explain_one(
    spec: LayerSpec, x: np.ndarray, sel: Selection, map_index: int, fmt: Formatter = _plain
) -> tuple[str, Selection | None]:
    """One line for layer ``map_index - 1`` and the input cell to explain next (or None).

    Activations continue to the same cell of their input; a max pool continues to its
    winner; conv and average pool stop (their line already lists every input)."""
    label = f"layer {map_index} {spec.title}"
    if not spec.enabled:
        return fmt(label, None, " (disabled): passes its input through"), sel
    try:
        e = build_layer(spec).explain(x, sel.row, sel.col, sel.channel)
        text = fmt(label, e, geometry.format_explanation(e))
    except Exception as exc:  # an explanation must never take the window down
        return fmt(label, None, f": (no explanation: {exc})"), None
    prev = Selection(map_index - 1, sel.channel, sel.row, sel.col)
    if spec.kind in ELEMENTWISE:
        return text, prev if map_index - 1 > 0 else None
    winner = getattr(e, "winner", None)
    if spec.kind == "maxpool" and winner is not None and map_index - 1 > 0:
        return text, Selection(map_index - 1, winner.channel, winner.row, winner.col)
    return text, None
