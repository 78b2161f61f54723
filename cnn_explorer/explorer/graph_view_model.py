"""What the Model tab knows about an imported model: its graph and preprocessing, the
current input, every tensor for that input, the selected node and cell, and what can be
said about a cell (its arithmetic, its receptive field on the input, map statistics) and
about the output (top-k class probabilities).

Tensors are computed once per input (:meth:`GraphViewModel.forward_job`, run off the GUI
thread by the Qt shell) and published with a generation number, so a result for an input
that has since been replaced is dropped. Everything else is cheap and asked on demand:
statistics are cached per tensor, explanations and receptive fields touch one cell.
Qt-free (NumPy and the engine). The model is an importer's ``ImportedModel``, seen only
through the attributes this module reads (:class:`ModelLike`, :class:`PreprocessingLike`):
the explorer and the interchange packages stay independent of each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from cnn_explorer.engine.extra_layers import Softmax
from cnn_explorer.engine.geometry import Explanation, fmt_number, format_explanation
from cnn_explorer.engine.graph import Graph
from cnn_explorer.engine.graph_geometry import CellSet, graph_receptive_field
from cnn_explorer.engine.merge import Add, Concat, MergeLayer, Mul
from cnn_explorer.explorer.stats import MapStats, map_stats
from cnn_explorer.limits import MAX_DOCUMENT_BYTES

INPUT = Graph.INPUT
Shape = tuple[int, ...]


class PreprocessingLike(Protocol):
    """How a picture becomes the model's input (``interchange.model.Preprocessing``)."""

    @property
    def input_shape(self) -> tuple[int, int, int]: ...
    @property
    def colour(self) -> str: ...
    @property
    def scale(self) -> float: ...
    @property
    def mean(self) -> tuple[float, ...]: ...
    @property
    def std(self) -> tuple[float, ...]: ...
    @property
    def class_names(self) -> tuple[str, ...]: ...
    def apply(self, image: np.ndarray) -> np.ndarray:
        """uint8 ``(H, W)``/``(H, W, 3)`` at the model's size → ``(1, C, H, W)`` float32;
        ValueError (the importer's own) for a picture that does not fit."""
        ...


class ModelLike(Protocol):
    """An imported model (``interchange.model.ImportedModel``)."""

    @property
    def graph(self) -> Graph: ...
    @property
    def preprocessing(self) -> PreprocessingLike: ...
    @property
    def source(self) -> Path: ...


@dataclass(frozen=True)
class GraphCell:
    """One cell of one tensor: ``tensor`` is ``"input"`` or a node name, ``index`` the
    per-image index (``(channel, row, col)`` for maps, ``(i,)`` for vectors)."""

    tensor: str
    index: tuple[int, ...]


@dataclass(frozen=True)
class NodeInfo:
    """One row of the layer navigator."""

    name: str
    op: str
    """The layer's description, e.g. ``"Conv 3×3, 3→64, stride 2"``."""
    inputs: tuple[str, ...]
    shape: Shape
    is_merge: bool
    branch: int
    """0 on the main path (the output's first-input chain), 1 on a side branch."""
    consumers: int


@dataclass(frozen=True)
class ClassScore:
    """One row of the top-k list."""

    index: int
    name: str
    probability: float
    score: float


@dataclass(frozen=True)
class CellExplanation:
    """The arithmetic of one cell as text, and the value it computes."""

    text: str
    result: float


@dataclass(frozen=True)
class ForwardJob:
    """Everything one forward pass needs, captured on the GUI thread."""

    generation: int
    graph: Graph
    x: np.ndarray
    """``(1, C, H, W)`` as the model takes it."""

    def run(self, stop: Callable[[], bool] | None = None) -> dict[str, np.ndarray]:
        """Every tensor, per image (the batch axis of one removed). ``stop`` is polled
        between nodes: ForwardStopped once a newer input made this job stale."""
        return {k: v[0] for k, v in self.graph.forward(self.x, stop=stop).items()}


def checked_shapes(graph: Graph, input_shape: Sequence[int]) -> dict[str, Shape]:
    """Every tensor's shape at ``input_shape``; ShapeError when the graph cannot take it,
    ValueError when its maps would need more than :data:`MAX_DOCUMENT_BYTES` (the
    importer's rule, applied again when the user picks another input size)."""
    shapes = graph.output_shapes(input_shape)
    need = 4 * sum(math.prod(s) for s in shapes.values())
    if need > MAX_DOCUMENT_BYTES:
        raise ValueError(
            f"at input size {'×'.join(map(str, input_shape))} the maps take about "
            f"{need / 1e6:.0f} MB, more than the {MAX_DOCUMENT_BYTES / 1e6:.0f} MB this app "
            "allows; choose a smaller input size"
        )
    return shapes


def display_maps(a: np.ndarray) -> np.ndarray | None:
    """``a`` as maps ``(C, H, W)`` when it is a picture-like tensor (a 2-D tensor is one
    map); None for vectors, ``(C, 1, 1)`` included (they are drawn as bars)."""
    if a.ndim == 3 and a.shape[1] * a.shape[2] > 1:
        return a
    if a.ndim == 2:
        return a[None]
    return None


def tensor_index(shape: Shape, maps: bool, where: tuple[int, ...]) -> tuple[int, ...]:
    """The tensor index of a displayed cell: ``where`` is ``(channel, row, col)`` of the
    maps, or ``(i,)`` of the bar plot (see :func:`display_maps`)."""
    if maps:
        return where if len(shape) == 3 else where[1:]
    return tuple(int(v) for v in np.unravel_index(where[-1], shape))


def softmax(scores: np.ndarray) -> np.ndarray:
    """Probabilities of a vector of class scores (float64, stable)."""
    z = np.asarray(scores, np.float64) - np.max(scores)
    e = np.exp(z)
    return e / e.sum()


class GraphViewModel:
    """An imported model, its current input and every tensor computed for it."""

    def __init__(self, model: ModelLike, pixels: np.ndarray | None = None) -> None:
        self.model = model
        """The model as opened (its preprocessing may since have been replaced)."""
        self.graph: Graph = model.graph
        self.preprocessing: PreprocessingLike = model.preprocessing
        self.shapes: dict[str, Shape] = checked_shapes(self.graph, self.preprocessing.input_shape)
        self.generation = 0
        self.tensors: dict[str, np.ndarray] | None = None
        self.pixels: np.ndarray = np.zeros((1, 1, 3), np.uint8)
        self.input_name = "sample pattern"
        self.x: np.ndarray = np.zeros((1, *self.preprocessing.input_shape), np.float32)
        self.selected_node: str = self.graph.nodes[0].name
        self.selection: GraphCell | None = None
        self._stats: dict[str, MapStats] = {}
        self.set_image(sample_pixels(self.preprocessing) if pixels is None else pixels)

    # ------------------------------------------------------------------ input
    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.preprocessing.input_shape

    def set_image(self, pixels: np.ndarray, name: str = "sample pattern") -> None:
        """A picture ``(H, W)`` or ``(H, W, 3)`` uint8 at the model's size becomes the
        input (ValueError when its size does not fit)."""
        x = self.preprocessing.apply(pixels)
        self.pixels = np.asarray(pixels)
        self.input_name = name
        self._new_input(x)

    def set_array(self, x: np.ndarray, name: str = "array") -> None:
        """An input array ``(C, H, W)`` or ``(1, C, H, W)`` used as it is."""
        arr = np.asarray(x, np.float32)
        arr = arr[None] if arr.ndim == 3 else arr
        if arr.shape[1:] != self.input_shape or arr.shape[0] != 1:
            raise ValueError(f"the model takes {self.input_shape}, not {tuple(x.shape)}")
        self.pixels = _array_picture(arr[0])
        self.input_name = name
        self._new_input(arr)

    def set_preprocessing(self, pre: PreprocessingLike) -> None:
        """New preprocessing (input size, colour, scale, mean/std, class names): the
        shapes are checked first (ShapeError leaves everything as it was), the current
        picture is preprocessed again (or replaced by the sample at a new size)."""
        shapes = checked_shapes(self.graph, pre.input_shape)
        old = self.preprocessing
        self.preprocessing = pre
        self.shapes = shapes
        if pre.input_shape != old.input_shape or self.pixels.shape[:2] != pre.input_shape[1:]:
            self.selection = None
            self.set_image(sample_pixels(pre))
        elif (pre.colour, pre.scale, pre.mean, pre.std) != (
            old.colour,
            old.scale,
            old.mean,
            old.std,
        ):
            self.set_image(self.pixels, self.input_name)

    def _new_input(self, x: np.ndarray) -> None:
        self.x = x
        self.generation += 1
        self.tensors = None
        self._stats = {}

    # ------------------------------------------------------------------ computing
    def forward_job(self) -> ForwardJob:
        """The forward pass for the current input (run it anywhere, then :meth:`publish`)."""
        return ForwardJob(self.generation, self.graph, self.x)

    def publish(self, job: ForwardJob, tensors: dict[str, np.ndarray]) -> bool:
        """Take a finished job's tensors; False (dropped) when the input changed since."""
        if job.generation != self.generation:
            return False
        self.tensors = tensors
        self._stats = {}
        return True

    def compute(self) -> None:
        """Run the forward pass here and now (tests, scripts)."""
        job = self.forward_job()
        self.publish(job, job.run())

    def tensor(self, name: str) -> np.ndarray:
        """The per-image tensor ``name`` (``"input"`` or a node); KeyError before compute."""
        if self.tensors is None:
            raise KeyError("the tensors are not computed yet")
        return self.tensors[name]

    # ------------------------------------------------------------------ structure
    def nodes(self) -> list[NodeInfo]:
        """The navigator's rows: the input, then every node in topological order."""
        main = self._main_path()
        rows = [
            NodeInfo(
                INPUT, "Input", (), self.shapes[INPUT], False, 0, len(self.graph.consumers(INPUT))
            )
        ]
        for n in self.graph.nodes:
            rows.append(
                NodeInfo(
                    n.name,
                    n.layer.describe(),
                    n.inputs,
                    self.shapes[n.name],
                    isinstance(n.layer, MergeLayer),
                    0 if n.name in main else 1,
                    len(self.graph.consumers(n.name)),
                )
            )
        return rows

    def _main_path(self) -> set[str]:
        """The nodes from the output back through each node's first input."""
        path: set[str] = set()
        name = self.graph.output
        while name != INPUT and name not in path:
            path.add(name)
            name = self.graph.node(name).inputs[0]
        return path

    # ------------------------------------------------------------------ selection
    def select_node(self, name: str) -> None:
        if name != INPUT:
            self.graph.node(name)  # KeyError for an unknown node
        self.selected_node = name

    def select_cell(self, cell: GraphCell | None) -> None:
        """Select a cell (IndexError outside its tensor); its node becomes selected too."""
        if cell is not None:
            shape = self.shapes[cell.tensor]
            if len(cell.index) != len(shape) or not all(
                0 <= i < n for i, n in zip(cell.index, shape, strict=True)
            ):
                raise IndexError(f"cell {cell.index} is outside {cell.tensor} {shape}")
            self.selected_node = cell.tensor
        self.selection = cell

    # ------------------------------------------------------------------ questions
    def stats(self, name: str) -> MapStats:
        """Per-channel statistics of a tensor (a vector counts as one channel)."""
        hit = self._stats.get(name)
        if hit is None:
            a = self.tensor(name)
            hit = map_stats(a if a.ndim == 3 else a.reshape(1, 1, -1))
            self._stats[name] = hit
        return hit

    def receptive_field(self, cell: GraphCell) -> CellSet | None:
        """The input cells ``cell`` depends on (None for a cell of the input itself)."""
        if cell.tensor == INPUT:
            return None
        sets = graph_receptive_field(self.graph, self.input_shape, cell.tensor, cell.index)
        return sets.get(INPUT)

    def explain(self, cell: GraphCell) -> CellExplanation:
        """The arithmetic of ``cell`` from its node's inputs, with the real numbers."""
        value = float(self.tensor(cell.tensor)[cell.index])
        where = ",".join(map(str, cell.index))
        if cell.tensor == INPUT:
            return CellExplanation(f"input[{where}] = {fmt_number(value)} (preprocessed)", value)
        node = self.graph.node(cell.tensor)
        xs = [self.tensor(i) for i in node.inputs]
        if isinstance(node.layer, MergeLayer):
            return explain_merge(node.layer, node.inputs, xs, cell.index)
        idx, layer = cell.index, node.layer
        e: Explanation
        if len(idx) == 3:
            e = layer.explain(xs[0], idx[1], idx[2], idx[0])
        elif len(idx) == 2:
            e = layer.explain(xs[0], idx[0], idx[1], 0)
        else:  # vectors (and anything else) by their flat index
            e = layer.explain(xs[0], 0, int(np.ravel_multi_index(idx, self.shapes[cell.tensor])))
        return CellExplanation(format_explanation(e), float(e.result))

    def class_scores(self) -> np.ndarray | None:
        """The output as a vector of class scores, or None when it is not one."""
        y = self.tensor(self.graph.output)
        if y.ndim == 1 or (y.ndim == 3 and y.shape[1:] == (1, 1)):
            scores = np.asarray(y, np.float64).reshape(-1)
            return scores if scores.size >= 2 else None
        return None

    def top_k(self, k: int = 5) -> list[ClassScore] | None:
        """The ``k`` most probable classes (softmax of the scores unless the graph ends
        in a Softmax), named from the preprocessing's class names; None for a model whose
        output is not a vector of class scores."""
        scores = self.class_scores()
        if scores is None:
            return None
        last = self.graph.node(self.graph.output).layer
        ends_in_softmax = isinstance(last, Softmax) and last.enabled
        probs = scores if ends_in_softmax else softmax(scores)
        names = self.preprocessing.class_names
        order = np.argsort(-probs, kind="stable")[: max(0, k)]
        return [
            ClassScore(
                int(i),
                names[i] if i < len(names) else f"class {i}",
                float(probs[i]),
                float(scores[i]),
            )
            for i in order
        ]


def explain_merge(
    layer: MergeLayer, inputs: tuple[str, ...], xs: list[np.ndarray], index: tuple[int, ...]
) -> CellExplanation:
    """An Add cell is the sum of its inputs' cells, a Mul cell their product (broadcast
    inputs read index 0 on their size-1 axes), a Concat cell is one input's cell."""
    where = ",".join(map(str, index))
    if not layer.enabled:
        v = float(xs[0][_broadcast(index, xs[0].shape)])
        return CellExplanation(f"out[{where}] = {inputs[0]}[{where}] = {fmt_number(v)}", v)
    if isinstance(layer, Concat):
        axis = layer.axis - 1 if layer.axis > 0 else len(index) + layer.axis
        what = "channels" if len(index) == 3 and axis == 0 else f"indices of axis {axis}"
        offset = 0
        for name, x in zip(inputs, xs, strict=True):
            if index[axis] < offset + x.shape[axis]:
                src = list(index)
                src[axis] -= offset
                v = float(x[tuple(src)])
                part = ",".join(map(str, src))
                text = (
                    f"out[{where}] = {name}[{part}] = {fmt_number(v)}   "
                    f"(concatenated: {name} holds {what} {offset}–{offset + x.shape[axis] - 1})"
                )
                return CellExplanation(text, v)
            offset += x.shape[axis]
        raise IndexError(f"index {index} is outside the concatenation")
    values = [float(x[_broadcast(index, x.shape)]) for x in xs]
    terms = [
        f"{n}[{','.join(map(str, _broadcast(index, x.shape)))}]"
        for n, x in zip(inputs, xs, strict=True)
    ]
    if isinstance(layer, Add | Mul):
        op, total = (
            (" + ", math.fsum(values)) if isinstance(layer, Add) else (" · ", math.prod(values))
        )
        nums = op.join(fmt_number(v) for v in values)
        text = f"out[{where}] = {op.join(terms)} = {nums} = {fmt_number(total)}"
        return CellExplanation(text, float(total))
    return CellExplanation(f"out[{where}] combines {', '.join(terms)}", float("nan"))


def _broadcast(index: tuple[int, ...], shape: Shape) -> tuple[int, ...]:
    lead = len(index) - len(shape)
    return tuple(0 if n == 1 else index[k + lead] for k, n in enumerate(shape))


def sample_pixels(pre: PreprocessingLike) -> np.ndarray:
    """A smooth colourful test picture at the model's size (so maps show structure
    before the user loads a photo): ``(H, W, 3)`` uint8, or ``(H, W)`` for grey."""
    _, h, w = pre.input_shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    yy /= max(h - 1, 1)
    xx /= max(w - 1, 1)
    r = 0.5 + 0.5 * np.sin(6.0 * xx + 1.0)
    g = 0.5 + 0.5 * np.cos(5.0 * yy + 4.0 * xx)
    b = np.clip(1.2 - 2.0 * np.hypot(xx - 0.5, yy - 0.5), 0, 1)
    rgb = (np.stack([r, g, b], axis=2) * 255).round().astype(np.uint8)
    if pre.colour == "grey":
        return (rgb.astype(np.float64) @ [0.299, 0.587, 0.114]).round().astype(np.uint8)
    return rgb


def _array_picture(x: np.ndarray) -> np.ndarray:
    """An input array ``(C, H, W)`` shown as a picture: each channel stretched to 0–255,
    the first three as RGB (one channel: grey)."""
    a = np.asarray(x[:3], np.float64)
    lo, hi = np.nanmin(a), np.nanmax(a)
    a = (a - lo) / ((hi - lo) or 1.0)
    img = np.nan_to_num(a * 255).round().clip(0, 255).astype(np.uint8)
    return img[0] if img.shape[0] < 3 else img.transpose(1, 2, 0)
