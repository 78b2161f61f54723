"""The guided lesson: the primer's worked example, step by step, as plain data. Qt-free.

Each :class:`Step` has a *setup* (the input ``(1, H, W)`` and layer specs the step starts
from; the Lesson dock applies them with the document's ``new_document`` intent, so the
step is one undo step and the learner's work is never lost), one or two sentences of what
to look at, a question answered by touching the app, and a *check*: a pure function of the
:class:`~cnn_explorer.explorer.model.Explorer` (its layers, maps and selected cell) that
returns :class:`Feedback`. A step may also have *live* text that follows the learner's
edits (the output-size rule with their numbers, the parameter counts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cnn_explorer.engine import geometry
from cnn_explorer.explorer import explain, presets
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.model import Explorer
from cnn_explorer.explorer.specs import LayerSpec, worked_example_layers

fmt = geometry.fmt_number


@dataclass(frozen=True)
class Feedback:
    """What the lesson says about the learner's answer so far.

    ``ok``: True when the question is answered, False for a wrong or unfinished answer
    (``text`` says what to do next), None when nothing has been tried yet."""

    ok: bool | None
    text: str


WAITING = Feedback(None, "")

Setup = tuple[np.ndarray, list[LayerSpec]]


@dataclass(frozen=True)
class Step:
    """One step of the lesson (see the module docstring)."""

    key: str
    title: str
    look: str
    question: str
    setup: Callable[[], Setup]
    check: Callable[[Explorer], Feedback]
    live: Callable[[Explorer], str] | None = None


# --------------------------------------------------------------------------- helpers
def worked_example() -> Setup:
    """The primer's worked example: the 4×4 input, conv 2×2 of ones → ReLU → max pool."""
    return presets.WORKED_EXAMPLE[None].copy(), worked_example_layers()


def matrix_text(a: np.ndarray) -> str:
    """A small 2-D map as the primer writes it: ``[[4, 2], [2, 4]]`` (true minus signs);
    a map of more than 36 cells by its size only ("a 28×28 map")."""
    if a.size > 36:
        return f"a {a.shape[0]}×{a.shape[1]} map"
    return "[" + ", ".join("[" + ", ".join(fmt(float(v)) for v in row) + "]" for row in a) + "]"


def _first(m: Explorer, kind: str) -> int | None:
    """Index of the first layer of ``kind`` ("conv", "act", "pool"), else None."""
    for i, spec in enumerate(m.layers):
        if spec.kind == kind or (kind == "pool" and spec.kind.endswith("pool")):
            return i
    return None


def _active(m: Explorer, kind: str) -> bool:
    """True when an enabled layer of ``kind`` is in the stack."""
    return any(
        s.enabled and (s.kind == kind or (kind == "pool" and s.kind.endswith("pool")))
        for s in m.layers
    )


def _value(m: Explorer, sel: Selection) -> float | None:
    maps = m.results.maps
    if sel.map_index >= len(maps):
        return None
    x = maps[sel.map_index]
    if not (0 <= sel.channel < x.shape[0] and 0 <= sel.row < x.shape[1]):
        return None
    if not 0 <= sel.col < x.shape[2]:
        return None
    return float(x[sel.channel, sel.row, sel.col])


def _last_map(m: Explorer) -> np.ndarray:
    """Channel 0 of the stack's final map (the output the learner compares)."""
    return m.results.maps[-1][0]


def _conv_map(m: Explorer) -> int | None:
    """Map index of the first conv's output (1 + its layer index)."""
    i = _first(m, "conv")
    return None if i is None else i + 1


def _where(sel: Selection) -> str:
    return f"row {sel.row}, column {sel.col} of map {sel.map_index}"


# --------------------------------------------------------------------------- (a) worked example
def _check_top_left(m: Explorer) -> Feedback:
    sel, conv = m.selection, _conv_map(m)
    if sel is None or conv is None:
        return WAITING
    v = _value(m, sel)
    if sel.map_index == conv and (sel.row, sel.col) == (0, 0) and v != 4:
        return Feedback(False, "The input or kernel changed since the step began: set it up again.")
    if sel.map_index == conv and (sel.row, sel.col) == (0, 0):
        return Feedback(
            True,
            "Right: out[0,0] = 1·1 + 1·1 + 1·1 + 1·1 = 4. The 2×2 window sits on the "
            "top-left block of ones, so all four products are 1. The output is 3×3 because a "
            "window 2 wide fits in 4 − 2 + 1 = 3 places across and 3 down.",
        )
    if (sel.row, sel.col) == (0, 0) and sel.map_index > conv:
        return Feedback(
            False,
            "That cell comes later in the stack; its value starts in the convolution. "
            "Click the top-left cell of layer 1's map (the first map after the input).",
        )
    return Feedback(
        False,
        f"You clicked {_where(sel)}. Click the top-left cell (row 0, column 0) of layer 1's "
        "map, the convolution's output.",
    )


# --------------------------------------------------------------------------- (b) ReLU
def _check_relu_off(m: Explorer) -> Feedback:
    if _first(m, "conv") is None or _active(m, "act"):
        return WAITING
    return Feedback(
        True,
        f"Right: the output is still {matrix_text(_last_map(m))}. Every input and weight here "
        "is ≥ 0, so every sum is ≥ 0, and ReLU(x) = max(0, x) leaves it as it is. ReLU only "
        "matters when a response is negative (step 4). Tick the layer again to bring it back.",
    )


# --------------------------------------------------------------------------- (c) pooling
def _check_pool_keeps_max(m: Explorer) -> Feedback:
    sel, pool = m.selection, _first(m, "pool")
    if sel is None or pool is None:
        return WAITING
    v = _value(m, sel)
    if sel.map_index != pool + 1 or v is None:
        return Feedback(False, "Click a cell of the max pool's map (the last one).")
    if v < float(m.results.maps[pool + 1].max()):
        return Feedback(
            False,
            f"This cell is {fmt(v)}: the strongest response in its 2×2 window is only "
            f"{fmt(v)} here. Find a cell that kept the strongest response of all.",
        )
    return Feedback(
        True,
        f"Right: {fmt(v)} is the largest value in its 2×2 window of the ReLU map, and the "
        f"pool keeps it. With stride 1 the windows overlap, so the pool gives "
        f"{matrix_text(m.results.maps[pool + 1][0])}: each block's strongest response "
        "survives in a smaller map, and the lit cells show where it came from.",
    )


# --------------------------------------------------------------------------- (d) exercise
def _check_edge_kernel(m: Explorer) -> Feedback:
    conv = _first(m, "conv")
    if conv is None:
        return WAITING
    w, sel = m.layers[conv].weight, m.selection
    if w is None or w.shape[2:] != (2, 2) or not np.array_equal(w[0, 0], presets.EDGE_KERNEL):
        return (
            WAITING
            if sel is None
            else Feedback(
                False,
                "First switch the kernel to [[1, −1], [1, −1]]: in the Kernel panel choose the "
                "preset “Edge [[1,-1],[1,-1]]”, or type the four weights.",
            )
        )
    if sel is None:
        return Feedback(False, "Now click the conv output cell with the most negative value.")
    v = _value(m, sel)
    if v is None or sel.map_index not in (conv + 1, conv + 2):
        return Feedback(False, "Click a cell of layer 1's map (the convolution's output).")
    before = _value(m, Selection(conv + 1, sel.channel, sel.row, sel.col))
    if before is not None and before <= -1.5:
        after = _value(m, Selection(conv + 2, sel.channel, sel.row, sel.col))
        relu = "" if after is None else f" After ReLU (layer 2) the same cell is {fmt(after)}:"
        return Feedback(
            True,
            f"Right: {fmt(before)} where the window has zeros on its left and ones on its "
            "right, the opposite of the kernel's pattern. The +2 at the top is the other "
            f"edge, ones on the left.{relu} ReLU drops every negative response, so only one "
            "kind of edge is left.",
        )
    if before is not None and before >= 1.5:
        return Feedback(
            False,
            f"That is a large positive response ({fmt(before)}): ones on the left of the "
            "window, zeros on the right, like the kernel. Now find a large negative one.",
        )
    return Feedback(False, f"This cell is {fmt(before or 0.0)}: no edge here. Look for ±2.")


# --------------------------------------------------------------------------- (e) output size
def _axis_rule(n: int, k: int, s: int, pad: tuple[int, int], d: int) -> str:
    """One axis of the output-size rule with the numbers put in."""
    p = f"2·{pad[0]}" if pad[0] == pad[1] else f"{pad[0]} + {pad[1]}"
    out = geometry.conv_output_size(n, k, s, pad, d)
    return f"⌊({n} + {p} − {d}·({k}−1) − 1) / {s}⌋ + 1 = {out}"


def size_rule_text(m: Explorer, index: int | None = None) -> str:
    """The output-size rule in symbols, each symbol labelled, and with the numbers of layer
    ``index`` (default: the selected layer if it slides a window, else the first conv)."""
    if index is None:
        sel = m.selected_layer
        ok = 0 <= sel < len(m.layers) and explain.window(m.layers[sel]) is not None
        index = sel if ok else _first(m, "conv")
    shape = None if index is None else m.in_shape(index)
    win = None if index is None else explain.window(m.layers[index])
    lines = [
        "out = ⌊(n + 2p − d(k−1) − 1) / s⌋ + 1",
        "n: input size · p: padding on each side",
        "d: dilation · k: kernel size · s: stride",
    ]
    if index is None or shape is None or win is None:
        return "\n".join([*lines, "(no layer that slides a window is selected)"])
    t, b, left, r = win.padding
    h = _axis_rule(shape[1], win.kernel[0], win.stride[0], (t, b), win.dilation[0])
    w = _axis_rule(shape[2], win.kernel[1], win.stride[1], (left, r), win.dilation[1])
    name = f"Layer {index + 1} ({m.layers[index].title})"
    p = f"{t}" if t == b else f"{t} before + {b} after"
    lines.append(
        f"{name}:\nn = {shape[1]}, p = {p}, d = {win.dilation[0]}, k = {win.kernel[0]}, "
        f"s = {win.stride[0]}"
    )
    lines.append(f"H = W = {h}" if h == w and shape[1] == shape[2] else f"H = {h}\nW = {w}")
    return "\n".join(lines)


def _check_stride_two(m: Explorer) -> Feedback:
    conv = _first(m, "conv")
    if conv is None:
        return WAITING
    stride = list(m.layers[conv].config["stride"])
    if stride == [1, 1]:
        return WAITING
    if stride != [2, 2]:
        return Feedback(False, f"The stride is {stride[0]}×{stride[1]}; set it to 2 × 2.")
    st = m.statuses[conv]
    size = "?" if st.output_shape is None else f"{st.output_shape[1]}×{st.output_shape[2]}"
    return Feedback(
        True,
        f"Right: with s = 2 the window jumps two cells, ⌊(4 + 0 − 1 − 1) / 2⌋ + 1 = 2, so the "
        f"output is {size}. Try padding too: each change updates the numbers above.",
    )


# --------------------------------------------------------------------------- (f) weight sharing
def params_text(m: Explorer) -> str:
    """Weight sharing counted like for like for the first conv (weights and biases)."""
    conv = _first(m, "conv")
    if conv is None:
        return ""
    shape, out = m.in_shape(conv), m.statuses[conv].output_shape
    p = None if shape is None or out is None else explain.param_counts(m.layers[conv], shape, out)
    if p is None or shape is None or out is None:
        return ""
    n_in, n_out = int(np.prod(shape)), int(np.prod(out))
    return (
        f"Conv: {p.conv_weights} weights + {p.conv_biases} biases = {p.conv_total}, the same "
        f"numbers at every position.\nDense layer from the same {n_in} inputs to the same "
        f"{n_out} outputs: {n_in}·{n_out} = {p.dense_weights} weights + {p.dense_biases} "
        f"biases = {p.dense_total}."
    )


def _check_second_block(m: Explorer) -> Feedback:
    sel, conv = m.selection, _conv_map(m)
    if sel is None or conv is None:
        return WAITING
    v = _value(m, sel)
    if sel.map_index == conv and v is not None and v >= 4 and (sel.row, sel.col) != (0, 0):
        return Feedback(
            True,
            f"Right: the same four weights, slid to the other block, give {fmt(v)} again. "
            "That is weight sharing: one small kernel finds its pattern wherever it is, so "
            "the layer needs the kernel's parameters only, not a weight per input–output pair.",
        )
    if sel.map_index == conv and (sel.row, sel.col) == (0, 0):
        return Feedback(False, "That is the first block. Find the same response to the other.")
    return Feedback(False, "Click a cell of layer 1's map that responds to the second block.")


# --------------------------------------------------------------------------- (g) pooling optional
def _check_pool_off(m: Explorer) -> Feedback:
    if _first(m, "conv") is None or _active(m, "pool"):
        return WAITING
    out = _last_map(m)
    return Feedback(
        True,
        f"Right: without pooling the output is the {out.shape[0]}×{out.shape[1]} ReLU map "
        f"{matrix_text(out)}. Nothing breaks: pooling only shrinks the map and keeps the "
        "strongest nearby responses. Many networks leave it out.",
    )


# --------------------------------------------------------------------------- (h) strided conv
def _check_strided(m: Explorer) -> Feedback:
    conv = _first(m, "conv")
    if conv is None:
        return WAITING
    strided = list(m.layers[conv].config["stride"]) == [2, 2]
    pooled = _active(m, "pool")
    if not strided and pooled:
        return WAITING
    if not strided:
        return Feedback(False, "The pool is off. Now set the conv's stride to 2 × 2.")
    if pooled:
        return Feedback(False, "The conv strides by 2. Now untick the pool (layer 3).")
    out = _last_map(m)
    return Feedback(
        True,
        f"Right: the strided conv gives {matrix_text(out)} directly, the same 2×2 size as "
        "the pooled [[4, 2], [2, 4]], computing 4 windows instead of 9. It skips the "
        "overlapping windows instead of keeping their maximum, so the 2s between the blocks "
        "are gone. Edit ▸ Undo and Redo switch between the two configurations.",
    )


STEPS: tuple[Step, ...] = (
    Step(
        "worked-example",
        "The worked example",
        "The input is 4×4 with two blocks of ones. Layer 1 slides a 2×2 kernel of ones over "
        "it with stride 1 and no padding, giving a 3×3 map.",
        "Why is the top-left output 4? Click the top-left cell of layer 1's map.",
        worked_example,
        _check_top_left,
    ),
    Step(
        "relu",
        "ReLU changes nothing here",
        "Layer 2 is a ReLU: it replaces every negative value by 0 and keeps the rest. "
        "Compare its map with layer 1's.",
        "Untick layer 2 (ReLU) in the Layers panel. Does the output change?",
        worked_example,
        _check_relu_off,
    ),
    Step(
        "max-pool",
        "Max pooling keeps the strongest responses",
        "Layer 3 is a 2×2 max pool with stride 1: each output is the largest of four "
        "neighbouring ReLU values, giving [[4, 2], [2, 4]].",
        "Click a cell of the pool's map that kept the strongest response of all.",
        worked_example,
        _check_pool_keeps_max,
    ),
    Step(
        "edge-kernel",
        "Your own version: an edge kernel",
        "The kernel [[1, −1], [1, −1]] adds the left column of its window and subtracts the "
        "right one: it responds to vertical edges, with a sign.",
        "Switch the kernel to [[1, −1], [1, −1]], then click the conv output with the most "
        "negative response. What does ReLU make of it?",
        worked_example,
        _check_edge_kernel,
    ),
    Step(
        "output-size",
        "The output-size rule",
        "Every sliding window follows one rule. Below it is written in symbols and with your "
        "numbers; it updates as you change stride, padding, kernel or dilation.",
        "Set layer 1's stride to 2 (Layers panel ▸ Stride). How big is the output now?",
        worked_example,
        _check_stride_two,
        size_rule_text,
    ),
    Step(
        "weight-sharing",
        "Weight sharing",
        "Layer 1 uses the same 4 weights at every position. Below: its parameters beside "
        "those of a dense layer on the same input and output sizes, like for like.",
        "The top-left 4 is the first block. Click the cell where the same kernel finds the "
        "second block.",
        worked_example,
        _check_second_block,
        params_text,
    ),
    Step(
        "pool-optional",
        "Pooling is optional",
        "A network does not need pooling; it is one way to shrink maps and tolerate small shifts.",
        "Switch the max pool off: untick layer 3 in the Layers panel.",
        worked_example,
        _check_pool_off,
    ),
    Step(
        "strided-conv",
        "A strided convolution instead of pooling",
        "Now the pool gives [[4, 2], [2, 4]]. A convolution with stride 2 shrinks the map "
        "too, in one layer and with less work.",
        "Untick the pool (layer 3) and set the conv's stride to 2. Compare the output with "
        "the pooled one.",
        worked_example,
        _check_strided,
    ),
)
"""The lesson, in order: steps (a)–(h) of the primer."""


def step_index(key: str, steps: Sequence[Step] = STEPS) -> int:
    """Index of the step named ``key`` (0 for an unknown key: start again)."""
    for i, s in enumerate(steps):
        if s.key == key:
            return i
    return 0
