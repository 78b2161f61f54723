"""The one place where the document's editable layer specs meet the NumPy engine.

The document stores layers as plain data (:class:`~cnn_explorer.explorer.document.LayerSpec`: a
JSON-safe config plus weight arrays) so undo snapshots and files stay simple; this module
turns them into engine layers/networks and asks the engine for shapes, error messages,
receptive fields and cell explanations. Keeping it in one module means an engine API
change touches one file. Qt-free.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import ThreadpoolController

from cnn_explorer.engine import geometry, layers, network
from cnn_explorer.engine.activations import ACTIVATION_LABELS
from cnn_explorer.engine.errors import ShapeError

if TYPE_CHECKING:
    from cnn_explorer.explorer.document import LayerSpec

ACTIVATIONS: dict[str, str] = {
    kind: ACTIVATION_LABELS[kind] for kind in ("relu", "leaky_relu", "sigmoid", "tanh", "identity")
}
"""Activation kind → display name (the kinds the layer stack offers)."""


@dataclass(frozen=True)
class LayerStatus:
    """Validation result of one layer: its output shape ``(C, H, W)`` or an error message.

    ``error == "no input"`` marks layers after the first invalid one.
    """

    shape: tuple[int, int, int] | None
    error: str | None = None


NO_INPUT = "no input"


@dataclass(frozen=True)
class Selection:
    """A selected cell: map index (0 = input, i+1 = output of layer i), channel, row, col."""

    map_index: int
    channel: int
    row: int
    col: int


# --------------------------------------------------------------------------- geometry
def conv_padding4(spec: LayerSpec) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` padding of a conv/pool spec ("same" resolved)."""
    c = spec.config
    pad = c.get("padding", 0)
    if spec.kind != "conv":
        p = int(pad)
        return (p, p, p, p)
    if pad == "valid":
        return (0, 0, 0, 0)
    if pad == "same":
        t, b = geometry.same_padding(c["kernel"][0], c["dilation"][0])
        left, r = geometry.same_padding(c["kernel"][1], c["dilation"][1])
        return (t, b, left, r)
    p = int(pad)
    return (p, p, p, p)


def window_of(spec: LayerSpec) -> geometry.Window | None:
    """The sliding window of a spatial layer, ``None`` for elementwise or disabled layers."""
    if not spec.enabled or spec.kind == "act":
        return None
    c = spec.config
    if spec.kind == "conv":
        return geometry.Window(
            kernel=tuple(c["kernel"]),
            stride=tuple(c["stride"]),
            dilation=tuple(c["dilation"]),
            padding=conv_padding4(spec),
            mixes_channels=True,
            padding_mode=c.get("padding_mode", "zeros"),
        )
    return geometry.Window(
        kernel=tuple(c["size"]), stride=tuple(c["stride"]), padding=conv_padding4(spec)
    )


def size_formula(spec: LayerSpec, in_shape: tuple[int, ...] | None) -> str:
    """Output-size formula with the user's numbers, e.g. "H: (4 + 2·0 − 1·(2−1) − 1)/1 + 1 = 3"."""
    if in_shape is None:
        return ""
    win = window_of(spec)
    if win is None:
        return "elementwise: shape unchanged" if spec.kind == "act" else "disabled: passes input"
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
    """Trainable parameters of the layer (conv: weights + biases; others: 0)."""
    if spec.kind != "conv" or spec.weight is None:
        return 0
    o, c, kh, kw = spec.weight.shape
    return geometry.conv_param_count(c, o, kh, kw, bool(spec.config.get("bias", True)))


def dense_equivalent(in_shape: Sequence[int], out_shape: Sequence[int]) -> int:
    """Parameters a dense layer mapping the same input to the same output would need."""
    return geometry.dense_param_count_equivalent(in_shape, out_shape)


# --------------------------------------------------------------------------- BLAS threads
# The explorer's convolutions are small matrix products (≤ a few dozen rows). OpenBLAS
# splits them over all cores and its threads spin-wait for each other; when any other
# thread needs a core at the same time (the GUI thread painting while a worker computes,
# another process) a 2 ms product then takes 8–70 ms. One BLAS thread is steadier (a
# 2-thread product is ~40% faster only on an idle machine), so the document computes
# inside :func:`single_blas_thread`. Measured also: after the GUI thread had used two
# BLAS threads, OpenBLAS 0.3.31 sometimes ignored a later limit of one (get_num_threads
# kept answering 2), so the document never leaves the limit off. The limit is scoped
# (restored afterwards) so the training worker keeps its own setting. threadpoolctl finds
# the BLAS numpy really loaded (OpenBLAS, MKL, BLIS, Accelerate) on every platform.
_blas_lock = threading.Lock()
_blas_depth = 0
_blas_limit: Any = None


@functools.cache
def blas_controller() -> ThreadpoolController:
    """The process's thread-pool controller (made once: it inspects loaded libraries)."""
    return ThreadpoolController()


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the block with one BLAS thread.

    Re-entrant and thread-safe: the previous thread counts come back when the outermost
    block in any thread ends."""
    global _blas_depth, _blas_limit
    with _blas_lock:
        if _blas_depth == 0:
            _blas_limit = blas_controller().limit(limits=1, user_api="blas")
        _blas_depth += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_depth -= 1
            if _blas_depth == 0:
                _blas_limit.restore_original_limits()
                _blas_limit = None


# --------------------------------------------------------------------------- engine layers
def build_layer(spec: LayerSpec) -> Any:
    """An engine layer object for ``spec`` (weights copied, so the spec stays immutable)."""
    c = spec.config
    if spec.kind == "conv":
        assert spec.weight is not None
        o, cin, kh, kw = spec.weight.shape
        pad = c["padding"]
        layer = layers.Conv2D(
            cin,
            o,
            (kh, kw),
            stride=tuple(c["stride"]),
            padding=pad if isinstance(pad, str) else int(pad),
            dilation=tuple(c["dilation"]),
            padding_mode=c.get("padding_mode", "zeros"),
            bias=bool(c.get("bias", True)),
            flip_kernel=bool(c.get("flip", False)),
            rng=0,
        )
        layer.params["weight"][...] = spec.weight
        if "bias" in layer.params and spec.bias is not None:
            layer.params["bias"][...] = spec.bias
    elif spec.kind == "act":
        settings = (
            {"negative_slope": float(c.get("slope", 0.01))} if c["fn"] == "leaky_relu" else {}
        )
        layer = layers.Activation(c["fn"], **settings)
    elif spec.kind == "maxpool":
        layer = layers.MaxPool2D(
            tuple(c["size"]), stride=tuple(c["stride"]), padding=int(c["padding"])
        )
    else:
        layer = layers.AvgPool2D(
            tuple(c["size"]), stride=tuple(c["stride"]), padding=int(c["padding"])
        )
    layer.enabled = spec.enabled
    return layer


def build_network(specs: Sequence[LayerSpec]) -> Any:
    """An engine ``Network`` of the given specs (``forward`` / ``forward_from``)."""
    return network.Network([build_layer(s) for s in specs])


def validate(specs: Sequence[LayerSpec], in_shape: tuple[int, ...]) -> list[LayerStatus]:
    """One status per layer: output shape or the engine's message; "no input" after one.

    Never raises: a layer whose parameters the engine rejects at construction (e.g. a
    stride of 0) is reported like any other invalid layer.
    """
    out: list[LayerStatus] = []
    shape: tuple[int, ...] | None = tuple(in_shape)
    for i, spec in enumerate(specs):
        if shape is None:
            out.append(LayerStatus(None, NO_INPUT))
            continue
        try:
            new = tuple(int(v) for v in build_layer(spec).output_shape(shape, i))
        except (ShapeError, ValueError) as exc:
            msg = str(exc) or type(exc).__name__
            out.append(
                LayerStatus(None, msg if msg.startswith("layer") else f"layer {i + 1}: {msg}")
            )
            shape = None
            continue
        except Exception as exc:  # an engine bug must not take the window down
            out.append(LayerStatus(None, f"layer {i + 1}: internal error: {exc!r}"))
            shape = None
            continue
        out.append(LayerStatus(new))  # type: ignore[arg-type]
        shape = new
    return out


# --------------------------------------------------------------------------- explanations
def receptive_regions(
    specs: Sequence[LayerSpec], maps: Sequence[np.ndarray], sel: Selection
) -> list[geometry.Region]:
    """Regions of maps ``0..sel.map_index-1`` feeding the selected cell (input first)."""
    if sel.map_index == 0:
        return []
    windows = [window_of(s) for s in specs[: sel.map_index]]
    hw = (int(maps[0].shape[1]), int(maps[0].shape[2]))
    return geometry.receptive_field(
        windows, sel.map_index - 1, sel.row, sel.col, hw, channel=sel.channel
    )


def explain_cell_text(
    specs: Sequence[LayerSpec], maps: Sequence[np.ndarray], sel: Selection
) -> str:
    """The arithmetic of the selected cell (see :func:`explain_trace`)."""
    return explain_trace(specs, maps, sel)[0]


def explain_trace(
    specs: Sequence[LayerSpec], maps: Sequence[np.ndarray], sel: Selection
) -> tuple[str, list[Selection]]:
    """The arithmetic of the selected cell, one line per step back to a spatial layer.

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
        spec = specs[i]
        text, nxt = _explain_one(spec, maps[i], cell, i + 1)
        lines.append(text)
        if nxt is None:
            break
        trace.append(nxt)
        cell = nxt
        i -= 1
    if len(lines) > 1:
        lines = [lines[0], *(f"  ← {ln}" for ln in lines[1:])]
    return "\n".join(lines), trace


def _explain_one(
    spec: LayerSpec, x: np.ndarray, sel: Selection, map_index: int
) -> tuple[str, Selection | None]:
    """One line for layer ``map_index - 1`` and the input cell to explain next (or None).

    Activations continue to the same cell of their input; a max pool continues to its
    winner; conv and average pool stop (their line already lists every input)."""
    label = f"layer {map_index} {spec.title}"
    if not spec.enabled:
        return f"{label} (disabled): passes its input through", sel
    try:
        e = build_layer(spec).explain(x, sel.row, sel.col, sel.channel)
        text = f"{label}:  {geometry.format_explanation(e)}"
    except Exception as exc:
        return f"{label}: (no explanation: {exc})", None
    prev = Selection(map_index - 1, sel.channel, sel.row, sel.col)
    if spec.kind == "act":
        return text, prev if map_index - 1 > 0 else None
    winner = getattr(e, "winner", None)
    if spec.kind == "maxpool" and winner is not None and map_index - 1 > 0:
        return text, Selection(map_index - 1, winner.channel, winner.row, winner.col)
    return text, None


# --------------------------------------------------------------------------- incremental
# A single-cell edit changes only a small window of every later map. These helpers find
# that window layer by layer and recompute just it, so an edit on a 512×512 input costs a
# few hundred multiply-adds instead of a full forward pass. Exactness: the crop is padded
# exactly as the layer pads (zeros for conv, −inf for max pool, zeros counted for avg pool)
# and the layer runs with padding 0 on it, which reproduces the full computation's cells.
Region = tuple[int, int, int, int]
"""``(row0, row1, col0, col1)`` inclusive."""


def supports_incremental(spec: LayerSpec) -> bool:
    """True when a region of this layer's output can be recomputed from a crop."""
    if not spec.enabled or spec.kind in ("act", "maxpool", "avgpool"):
        return True
    return spec.kind == "conv" and spec.config.get("padding_mode", "zeros") == "zeros"


def _axis_out(lo: int, hi: int, k: int, s: int, d: int, p: int, n_out: int) -> tuple[int, int]:
    o0 = max(0, -((-(lo + p - d * (k - 1))) // s))
    o1 = min(n_out - 1, (hi + p) // s)
    return o0, o1


def output_region(spec: LayerSpec, region: Region, out_hw: tuple[int, int]) -> Region | None:
    """The output cells whose windows read any input cell of ``region`` (None if none)."""
    win = window_of(spec)
    if win is None:
        return region
    t, _, left, _ = win.padding
    r0, r1 = _axis_out(
        region[0], region[1], win.kernel[0], win.stride[0], win.dilation[0], t, out_hw[0]
    )
    c0, c1 = _axis_out(
        region[2], region[3], win.kernel[1], win.stride[1], win.dilation[1], left, out_hw[1]
    )
    if r0 > r1 or c0 > c1:
        return None
    return r0, r1, c0, c1


def compute_region(spec: LayerSpec, x: np.ndarray, out: Region) -> np.ndarray:
    """Layer output cells ``out`` (all channels) from its full input ``x (C, H, W)``."""
    r0, r1, c0, c1 = out
    win = window_of(spec)
    if win is None:
        if not spec.enabled:
            return x[:, r0 : r1 + 1, c0 : c1 + 1].copy()
        return build_layer(spec).forward(np.ascontiguousarray(x[:, r0 : r1 + 1, c0 : c1 + 1]))
    t, _, left, _ = win.padding
    (kh, kw), (sh, sw), (dh, dw) = win.kernel, win.stride, win.dilation
    lo_r, hi_r = r0 * sh - t, r1 * sh - t + dh * (kh - 1)
    lo_c, hi_c = c0 * sw - left, c1 * sw - left + dw * (kw - 1)
    _, h, w = x.shape
    crop = x[:, max(0, lo_r) : min(h, hi_r + 1), max(0, lo_c) : min(w, hi_c + 1)]
    pads = ((0, 0), (max(0, -lo_r), max(0, hi_r + 1 - h)), (max(0, -lo_c), max(0, hi_c + 1 - w)))
    if any(p for pair in pads for p in pair):
        fill = -np.inf if spec.kind == "maxpool" else 0.0
        crop = np.pad(crop, pads, constant_values=fill)
    flat = spec.copy()
    flat.config["padding"] = 0
    return build_layer(flat).forward(np.ascontiguousarray(crop))
