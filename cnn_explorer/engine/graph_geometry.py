"""Receptive fields through a graph network: which cells of every earlier tensor one
output cell depends on, walking back from its node to the input through each node's
window (:meth:`Layer.window_for`), adaptive pooling's windows, reshapes and merges.

A dependency set is kept per tensor as one sorted index array per axis (a product set,
like :class:`~cnn_explorer.engine.geometry.Region`): exact through a chain of windows,
and where branches meet (a tensor read by several paths, a merge's inputs) the sets are
joined axis by axis, a superset whose projections on every axis are exact. That is what a
picture of the receptive field needs: its rows and columns on the input image.

Example: in ``y = conv3x3(x) + x`` output cell ``(c, 5, 5)`` reads input rows 4–6 and
columns 4–6 of every channel (the conv) and of channel ``c`` (the identity path): the
joined set is rows 4–6, columns 4–6, all channels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnn_explorer.engine.extra_layers import AdaptiveAvgPool2D, Reshape, Softmax, adaptive_bounds
from cnn_explorer.engine.geometry import Window, propagate_back
from cnn_explorer.engine.graph import Graph
from cnn_explorer.engine.layers import Dense, Flatten, Layer
from cnn_explorer.engine.merge import Add, Concat, MergeLayer, Mul

Shape = tuple[int, ...]

MAX_ENUMERATED = 1_000_000
"""A reshape maps cells one by one up to this many; a bigger set counts as "all"."""


@dataclass(frozen=True)
class CellSet:
    """The cells of one tensor (per-image ``shape``) an output cell depends on: the
    product of ``index[k]`` (sorted, unique) over the axes ``k``."""

    shape: Shape
    index: tuple[np.ndarray, ...]

    @property
    def size(self) -> int:
        """Number of cells in the set."""
        return math.prod(int(a.size) for a in self.index)

    @property
    def mask(self) -> np.ndarray:
        """Boolean mask of ``shape``, True on the cells of the set."""
        m = np.zeros(self.shape, dtype=bool)
        m[np.ix_(*self.index)] = True
        return m

    def bounds(self, axis: int) -> tuple[int, int] | None:
        """``(first, last)`` index along ``axis`` (inclusive), None when empty."""
        a = self.index[axis]
        return (int(a[0]), int(a[-1])) if a.size else None

    def is_everything(self) -> bool:
        """True when the set is the whole tensor."""
        return all(a.size == n for a, n in zip(self.index, self.shape, strict=True))

    def union(self, other: CellSet) -> CellSet:
        """The product set of the axis-wise unions (a superset of the two)."""
        idx = tuple(np.union1d(a, b) for a, b in zip(self.index, other.index, strict=True))
        return CellSet(self.shape, idx)


def everything(shape: Sequence[int]) -> CellSet:
    """Every cell of a tensor of ``shape``."""
    s = tuple(int(v) for v in shape)
    return CellSet(s, tuple(np.arange(n, dtype=np.int64) for n in s))


def single_cell(shape: Sequence[int], index: Sequence[int]) -> CellSet:
    """The one cell ``index`` of a tensor of ``shape`` (IndexError outside it)."""
    s = tuple(int(v) for v in shape)
    idx = tuple(int(i) for i in index)
    if len(idx) != len(s) or not all(0 <= i < n for i, n in zip(idx, s, strict=True)):
        raise IndexError(f"cell {idx} is outside a tensor of shape {s}")
    return CellSet(s, tuple(np.array([i], dtype=np.int64) for i in idx))


def graph_receptive_field(
    graph: Graph, input_shape: Sequence[int], node: str, index: Sequence[int]
) -> dict[str, CellSet]:
    """The cells of every tensor that cell ``index`` of tensor ``node`` depends on.

    ``input_shape`` is the per-image input shape ``(C, H, W)``; ``index`` indexes the
    node's per-image output (``(c, row, col)`` for maps, ``(i,)`` for vectors). Keys are
    tensor names (``"input"`` included when the cell depends on the input); tensors the
    cell does not depend on are absent. ``node`` may be ``"input"`` itself.
    """
    shapes = graph.output_shapes(input_shape)
    if node not in shapes:
        raise KeyError(f"the graph has no tensor named {node!r}")
    sets: dict[str, CellSet] = {node: single_cell(shapes[node], index)}
    for n in reversed(graph.nodes):
        out = sets.get(n.name)
        if out is None:
            continue
        in_shapes = [shapes[i] for i in n.inputs]
        if isinstance(n.layer, MergeLayer):
            parts = _back_merge(n.layer, in_shapes, out)
        else:
            parts = [_back_layer(n.layer, in_shapes[0], out)]
        for name, part in zip(n.inputs, parts, strict=True):
            if part is None:
                continue
            sets[name] = sets[name].union(part) if name in sets else part
    return sets


def _back_layer(layer: Layer, in_shape: Shape, out: CellSet) -> CellSet:
    """Dependencies of ``out`` (cells of ``layer``'s output) in its input."""
    if not layer.enabled:
        return _same_or_all(in_shape, out)
    if len(in_shape) == 3 and len(out.shape) == 3:
        win = layer.window_for(in_shape)
        if win is not None:
            return _back_window(win, in_shape, out)
        if isinstance(layer, AdaptiveAvgPool2D):
            return _back_adaptive(in_shape, out)
    if isinstance(layer, Dense):
        return everything(in_shape)
    if isinstance(layer, Softmax):
        axis = layer.axis - 1 if layer.axis > 0 else len(in_shape) + layer.axis
        idx = list(out.index)
        idx[axis] = np.arange(in_shape[axis], dtype=np.int64)
        return CellSet(in_shape, tuple(idx))
    if isinstance(layer, Flatten | Reshape):
        return _back_reshape(in_shape, out)
    return _same_or_all(in_shape, out)


def _same_or_all(in_shape: Shape, out: CellSet) -> CellSet:
    """Elementwise layers (activations, batch norm, dropout, clip…) read the same cell;
    a layer this module does not know that changes the shape counts as reading all."""
    if tuple(in_shape) == out.shape:
        return CellSet(out.shape, out.index)
    return everything(in_shape)


def _back_window(win: Window, in_shape: Shape, out: CellSet) -> CellSet:
    c_in, h, w = in_shape
    _, oh, ow = out.shape
    chans: np.ndarray | None = out.index[0]
    region = propagate_back([win], [(h, w), (oh, ow)], out.index[1], out.index[2], chans)[0]
    if win.mixes_channels:
        chans = region.channels  # grouped conv: its groups' inputs; plain conv: None (all)
    if chans is None:
        chans = np.arange(c_in, dtype=np.int64)
    return CellSet(in_shape, (chans, region.rows, region.cols))


def _back_adaptive(in_shape: Shape, out: CellSet) -> CellSet:
    """Adaptive average pooling whose windows vary in size (torch's rule)."""
    _, h, w = in_shape
    _, oh, ow = out.shape
    axes = []
    for n, m, sel in ((h, oh, out.index[1]), (w, ow, out.index[2])):
        start, end = adaptive_bounds(n, m)
        cells = [np.arange(start[i], end[i]) for i in sel]
        axes.append(np.unique(np.concatenate(cells)).astype(np.int64) if cells else sel[:0])
    return CellSet(in_shape, (out.index[0], axes[0], axes[1]))


def _back_reshape(in_shape: Shape, out: CellSet) -> CellSet:
    """Flatten/Reshape keep C order: a cell is the input cell with the same flat index."""
    if out.size > MAX_ENUMERATED:
        return everything(in_shape)
    grid = np.meshgrid(*out.index, indexing="ij")
    flat = np.ravel_multi_index(tuple(g.ravel() for g in grid), out.shape)
    src = np.unravel_index(flat, in_shape)
    return CellSet(tuple(in_shape), tuple(np.unique(a).astype(np.int64) for a in src))


def _back_merge(layer: MergeLayer, in_shapes: list[Shape], out: CellSet) -> list[CellSet | None]:
    """One dependency set per input of a merge (None: that input is not read)."""
    if not layer.enabled:
        return [_same_or_all(in_shapes[0], out), *(None for _ in in_shapes[1:])]
    if isinstance(layer, Add | Mul):
        return [_back_broadcast(s, out) for s in in_shapes]
    if isinstance(layer, Concat):
        return _back_concat(layer, in_shapes, out)
    return [everything(s) for s in in_shapes]


def _back_broadcast(in_shape: Shape, out: CellSet) -> CellSet:
    """An input of a broadcasting merge: a size-1 axis is read at index 0 for every
    output index (numpy aligns shapes on the right)."""
    lead = len(out.shape) - len(in_shape)
    idx = []
    for k, n in enumerate(in_shape):
        sel = out.index[k + lead]
        idx.append(np.zeros(1 if sel.size else 0, np.int64) if n == 1 else sel)
    return CellSet(tuple(in_shape), tuple(idx))


def _back_concat(layer: Concat, in_shapes: list[Shape], out: CellSet) -> list[CellSet | None]:
    axis = layer.axis - 1 if layer.axis > 0 else len(out.shape) + layer.axis
    parts: list[CellSet | None] = []
    offset = 0
    for s in in_shapes:
        sel = out.index[axis]
        mine = sel[(sel >= offset) & (sel < offset + s[axis])] - offset
        offset += s[axis]
        if not mine.size:
            parts.append(None)
            continue
        idx = list(out.index)
        idx[axis] = mine.astype(np.int64)
        parts.append(CellSet(tuple(s), tuple(idx)))
    return parts


__all__ = [
    "MAX_ENUMERATED",
    "CellSet",
    "everything",
    "graph_receptive_field",
    "single_cell",
]
