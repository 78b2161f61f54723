"""What a method explains or maximises (a class score, one cell of a map, a channel's sum
or mean), running a network up to a layer and back from it, and the progress records the
long methods yield.

Why one place: saliency, Grad-CAM, activation maximisation and top patches all need "the
output of layer ``k`` for a batch" and "d(target)/d(input)"; the engine's
:meth:`Network.backward` always starts at the last layer, so a target inside the stack is
back-propagated through ``layers[:k + 1]`` here, with the layers' own public ``backward``.

A :data:`Model` is a :class:`Network` (a target's ``layer`` is a layer index) or an
imported :class:`Graph` (``layer`` is a node name; :meth:`Graph.backward_to` starts the
backward pass at that node).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_explorer.engine.graph import Graph
from cnn_explorer.engine.network import Network

Model = Network | Graph
"""What the insight methods explain: a layer stack or a graph of nodes."""

Cancel = Callable[[], bool] | None
"""A flag the long methods poll between chunks/steps; None never cancels."""


class InsightError(ValueError):
    """A request the network cannot answer (a layer index out of range, a unit that does
    not exist, Grad-CAM on a vector layer). The message is a sentence for the user."""


class CancelledError(RuntimeError):
    """:func:`run` was asked for the result of a method that was cancelled."""


@dataclass(frozen=True)
class Progress:
    """One record of a long method: ``done`` of ``total`` steps, a short ``text``, an
    optional ``preview`` (an image ``(C, H, W)`` or a map ``(H, W)``) and objective
    ``value``; the last record of a finished run carries its ``result``."""

    done: int
    total: int
    text: str = ""
    preview: np.ndarray | None = None
    value: float | None = None
    result: Any = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


ProgressGen = Generator[Progress, None, None]


def cancelled(cancel: Cancel) -> bool:
    return cancel is not None and bool(cancel())


def run(gen: ProgressGen) -> Any:
    """Pump a method's generator to its end and return its result (raises
    :class:`CancelledError` when it stopped without one)."""
    result: Any = None
    got = False
    for record in gen:
        if record.result is not None:
            result, got = record.result, True
    if not got:
        raise CancelledError("the method was cancelled before it finished")
    return result


@dataclass(frozen=True)
class Target:
    """A scalar of the network to explain or maximise.

    ``layer`` is the index of the layer whose output holds it (the node's name in a
    :class:`Graph`); ``unit`` a channel of a map ``(C, H, W)`` or an index of a vector
    ``(F,)`` (a class when ``layer`` is the last, or the graph's output).
    For a map, ``cell = (row, col)`` picks one cell, else the channel's ``reduce``
    (``"sum"`` or ``"mean"``) over every cell is the scalar.
    """

    layer: int | str
    unit: int
    cell: tuple[int, int] | None = None
    reduce: str = "sum"

    @classmethod
    def class_score(cls, network: Model, k: int) -> Target:
        """The logit (pre-softmax score) of class ``k``: the graph's output tensor, or the
        input of its final Softmax (a probability's gradient mixes in every other class)."""
        if isinstance(network, Graph):
            last = network.node(network.output)
            if last.layer.kind == "softmax" and last.inputs[0] != Graph.INPUT:
                return cls(last.inputs[0], int(k))
            return cls(network.output, int(k))
        return cls(len(network) - 1, int(k))

    def is_output(self, network: Model) -> bool:
        """Whether the target is a class score: in the network's last layer, the graph's
        output or the logits before the graph's final Softmax."""
        if isinstance(network, Graph):
            return self.layer in (network.output, Target.class_score(network, 0).layer)
        return self.layer == len(network) - 1

    def describe(self, network: Model) -> str:
        """``"class 3 score"``, ``"layer 2 channel 5 mean"``, ``"layer 2 [5, 3, 4]"``
        (``"node conv5 …"`` in a graph)."""
        if self.is_output(network) and self.cell is None:
            return f"class {self.unit} score"
        where = layer_name(network, self.layer)
        if self.cell is not None:
            return f"{where} cell [{self.unit}, {self.cell[0]}, {self.cell[1]}]"
        return f"{where} channel {self.unit} {self.reduce}"

    def check(self, network: Model, input_shape: Sequence[int]) -> tuple[int, ...]:
        """The per-image shape of the target's layer output; InsightError when the target
        does not exist (ShapeError when the network cannot take ``input_shape``)."""
        shape = tensor_shape(network, input_shape, self.layer)
        where = layer_name(network, self.layer)
        if len(shape) not in (1, 3):
            raise InsightError(
                f"{where} outputs a {'×'.join(map(str, shape))} tensor: choose a vector or "
                "(channels, height, width) maps"
            )
        if not 0 <= self.unit < shape[0]:
            what = "channel" if len(shape) == 3 else "output"
            raise InsightError(f"{what} {self.unit} does not exist: {where} has {shape[0]}")
        if self.cell is not None:
            r, c = self.cell
            if len(shape) != 3 or not (0 <= r < shape[1] and 0 <= c < shape[2]):
                raise InsightError(
                    f"cell ({r}, {c}) is outside the {'×'.join(map(str, shape))} output of {where}"
                )
        if self.reduce not in ("sum", "mean"):
            raise InsightError(f"reduce must be 'sum' or 'mean', not {self.reduce!r}")
        return shape

    def values(self, out: np.ndarray) -> np.ndarray:
        """The target's value per sample ``(N,)`` for a batch of layer outputs ``out``."""
        if out.ndim == 2:
            return out[:, self.unit].astype(np.float64)
        if self.cell is not None:
            return out[:, self.unit, self.cell[0], self.cell[1]].astype(np.float64)
        ch = out[:, self.unit].astype(np.float64)
        return ch.mean(axis=(1, 2)) if self.reduce == "mean" else ch.sum(axis=(1, 2))

    def seed(self, out: np.ndarray) -> np.ndarray:
        """d(sum of :meth:`values`)/d(out): the gradient to back-propagate, shape of ``out``."""
        g = np.zeros_like(out)
        if out.ndim == 2:
            g[:, self.unit] = 1
        elif self.cell is not None:
            g[:, self.unit, self.cell[0], self.cell[1]] = 1
        else:
            g[:, self.unit] = 1.0 / (out.shape[2] * out.shape[3]) if self.reduce == "mean" else 1
        return g


def layer_name(network: Model, layer: int | str) -> str:
    """``"layer 3"`` (1-based, as the UI counts) or ``"node 'conv5'"``."""
    if isinstance(network, Graph) or isinstance(layer, str):
        return f"node {str(layer)!r}"
    return f"layer {layer + 1}"


def tensor_shape(network: Model, input_shape: Sequence[int], layer: int | str) -> tuple[int, ...]:
    """The per-image output shape of ``layer`` (an index of a Network, a node of a Graph);
    InsightError when there is no such layer (ShapeError when the input does not fit)."""
    if isinstance(network, Graph):
        if not isinstance(layer, str) or all(n.name != layer for n in network.nodes):
            raise InsightError(f"the model has no node {str(layer)!r}")
        return tuple(network.output_shapes(input_shape)[layer])
    if not isinstance(layer, int) or not 0 <= layer < len(network):
        raise InsightError(
            f"{layer_name(network, layer)} does not exist: the network has {len(network)} layers"
        )
    return tuple(network.output_shapes(input_shape)[layer + 1])


def index_of(layer: int | str) -> int:
    """A Network target's layer index (a node name here is a programming error)."""
    if not isinstance(layer, int):
        raise InsightError(f"{layer!r} names a graph node, but this model is a layer stack")
    return layer


def depends_on(graph: Graph, later: str, earlier: str) -> bool:
    """Whether tensor ``later`` is computed from tensor ``earlier`` (or is it)."""
    found = {earlier}
    for n in graph.nodes:
        if any(i in found for i in n.inputs):
            found.add(n.name)
    return later in found


def dtype_of(network: Model) -> np.dtype[Any]:
    """The dtype the network computes in (its first parameter's; float32 without any)."""
    for _, value in network.parameters():
        return value.dtype
    return np.dtype(np.float32)


def as_batch(network: Model, x: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` or ``(N, C, H, W)`` → a contiguous ``(N, C, H, W)`` in the network's
    dtype."""
    a = np.asarray(x)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise InsightError(f"expected an image (C, H, W) or a batch (N, C, H, W), got {a.shape}")
    return np.ascontiguousarray(a, dtype=dtype_of(network))


def forward_to(network: Network, x: np.ndarray, layer: int | str) -> list[np.ndarray]:
    """Maps ``0 .. layer + 1`` for a batch ``x (N, C, H, W)`` (``maps[0]`` is ``x``): the
    layers after ``layer`` are not run."""
    maps = [x]
    for lay in network.layers[: index_of(layer) + 1]:
        maps.append(lay.forward(maps[-1]))
    return maps


def backward_from(network: Network, layer: int | str, grad: np.ndarray) -> np.ndarray:
    """d/d(input) of ``sum(grad · output of layer)`` after :func:`forward_to` ran to at
    least ``layer``: ``(N, C, H, W)``. Parameter gradients are accumulated as a side effect
    (they are zeroed first so they cannot grow across many calls)."""
    for lay in reversed(network.layers[: index_of(layer) + 1]):
        lay.zero_grad()
        grad = lay.backward(grad)
    return grad


def input_gradient_batch(
    network: Model, x: np.ndarray, target: Target
) -> tuple[np.ndarray, np.ndarray]:
    """``(d target / d x, target values)`` for a batch ``x (N, C, H, W)``: shapes
    ``(N, C, H, W)`` and ``(N,)``."""
    if isinstance(network, Graph):
        name = str(target.layer)
        out = network.forward(x)[name]
        network.zero_grad()  # parameter gradients must not grow across many calls
        return network.backward_to(target.seed(out), start=name), target.values(out)
    maps = forward_to(network, x, target.layer)
    out = maps[-1]
    return backward_from(network, target.layer, target.seed(out)), target.values(out)


__all__ = [
    "Cancel",
    "CancelledError",
    "InsightError",
    "Model",
    "Progress",
    "ProgressGen",
    "Target",
    "as_batch",
    "backward_from",
    "cancelled",
    "depends_on",
    "dtype_of",
    "forward_to",
    "index_of",
    "input_gradient_batch",
    "layer_name",
    "run",
    "tensor_shape",
]
