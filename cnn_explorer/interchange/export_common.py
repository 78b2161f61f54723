"""What the ONNX and PyTorch exporters share: one view of a model as a list of nodes (a
chain :class:`~cnn_explorer.engine.network.Network` or a :class:`Graph` alike), the per-
tensor shapes, the error they raise, and the atomic file write.

Disabled layers pass their input through unchanged in the engine, so an exporter leaves
them out and wires their consumers to their input (:func:`export_nodes` does the rewiring
once for both exporters).

Qt-free; NumPy and the engine only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cnn_explorer.engine.graph import Graph
from cnn_explorer.engine.layers import Layer
from cnn_explorer.engine.network import Network
from cnn_explorer.engine.serialize import atomic_write

INPUT = Graph.INPUT
"""The model input's tensor name."""

Shape = tuple[int, ...]


class ExportError(ValueError):
    """A model cannot be written in the requested format: ``str(err)`` names the layer and
    says what would work instead."""


@dataclass(frozen=True)
class ExportNode:
    """One enabled layer: ``name`` also names its output tensor; ``inputs`` are tensor
    names (:data:`INPUT` or other nodes' names, disabled layers already skipped)."""

    name: str
    layer: Layer
    inputs: tuple[str, ...]


@dataclass
class ExportPlan:
    """A model ready to write: enabled nodes in topological order, the output tensor's
    name, and every tensor's per-image shape (``shapes[INPUT]`` is the input shape)."""

    nodes: list[ExportNode]
    output: str
    shapes: dict[str, Shape]
    is_chain: bool


def _graph_view(model: Any) -> tuple[list[tuple[str, Layer, tuple[str, ...]]], str, bool]:
    """``([(name, layer, inputs)], output, is_chain)`` of a Network or a Graph."""
    items: list[tuple[str, Layer, tuple[str, ...]]]
    if isinstance(model, Network):
        items = [
            (str(i), layer, (INPUT if i == 0 else str(i - 1),))
            for i, layer in enumerate(model.layers)
        ]
        return items, (str(len(items) - 1) if items else INPUT), True
    if isinstance(model, Graph):
        items = [(n.name, n.layer, tuple(n.inputs)) for n in model.nodes]
        return items, model.output, model.is_chain()
    raise ExportError(f"cannot export a {type(model).__name__}: expected a Network or a Graph")


def _all_shapes(model: Network | Graph, input_shape: Shape) -> dict[str, Shape]:
    """Per-image shape of every tensor (ShapeError from the engine when it does not fit)."""
    if isinstance(model, Network):
        shapes = model.output_shapes(input_shape)  # input first, then each layer's
        out = {INPUT: tuple(shapes[0])}
        out.update({str(i): tuple(s) for i, s in enumerate(shapes[1:])})
        return out
    return {k: tuple(v) for k, v in model.output_shapes(input_shape).items()}


def export_nodes(model: Any, input_shape: Sequence[int]) -> ExportPlan:
    """The model as enabled nodes with shapes; a disabled layer's consumers read its input.

    Raises :class:`ExportError` when the model does not compute on ``input_shape``.
    """
    shape = tuple(int(s) for s in input_shape)
    items, output, chain = _graph_view(model)
    try:
        shapes = _all_shapes(model, shape)
    except ValueError as exc:  # ShapeError is a ValueError
        raise ExportError(f"the model does not compute on input {shape}: {exc}") from None
    alias: dict[str, str] = {}
    nodes: list[ExportNode] = []
    for name, layer, inputs in items:
        ins = tuple(alias.get(i, i) for i in inputs)
        if not layer.enabled:
            if len(ins) != 1:
                raise ExportError(f"node {name!r} is disabled but has {len(ins)} inputs")
            alias[name] = ins[0]
            continue
        nodes.append(ExportNode(name, layer, ins))
    return ExportPlan(nodes, alias.get(output, output), shapes, chain)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` only once it is fully written (temp file in the same
    folder, fsync, ``os.replace``): a failed export never leaves half a file behind."""
    with atomic_write(path) as fh:
        fh.write(data)


__all__ = [
    "INPUT",
    "ExportError",
    "ExportNode",
    "ExportPlan",
    "export_nodes",
    "write_bytes_atomic",
]
