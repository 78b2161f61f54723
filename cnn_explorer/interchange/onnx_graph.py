"""The state of one ONNX import while its nodes are converted: which ONNX tensors are
constants (weights), which are engine tensors (and their per-image shapes), the engine
nodes made so far, and the report.

ONNX tensors carry the batch axis, ``(N, C, H, W)``; engine shapes are per image,
``(C, H, W)`` (or ``(F,)`` for vectors), so every converter thinks in per-image shapes and
adds 1 to an ONNX axis number to get there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper

from cnn_explorer.engine import Pad2D
from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.engine.graph import Graph, Node
from cnn_explorer.engine.layers import Layer
from cnn_explorer.engine.merge import MergeLayer
from cnn_explorer.interchange.model import (
    OUTPUT_KEY,
    ImportReport,
    ModelFileError,
    ReportEntry,
    unique_name,
)

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Ref:
    """An ONNX tensor computed by the engine: the engine tensor's name (a node name or
    ``"input"``) and its per-image shape."""

    name: str
    shape: Shape


@dataclass
class OnnxNode:
    """One ONNX node with its attributes decoded, as the converters see it."""

    proto: onnx.NodeProto
    label: str
    """The node's name for messages (its ONNX name, or its first output's)."""
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def op(self) -> str:
        return self.proto.op_type

    @property
    def inputs(self) -> list[str]:
        return list(self.proto.input)

    @property
    def outputs(self) -> list[str]:
        return list(self.proto.output)

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)


def decode_node(proto: onnx.NodeProto) -> OnnxNode:
    attrs: dict[str, Any] = {}
    for a in proto.attribute:
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        attrs[a.name] = value
    label = proto.name or (proto.output[0] if proto.output else proto.op_type)
    return OnnxNode(proto, label, attrs)


class Builder:
    """Collects engine nodes for an ONNX graph, node by node (ONNX stores nodes in
    topological order). Converters call :meth:`emit`, :meth:`alias` or
    :meth:`set_const` for each output."""

    def __init__(self, opset: int, input_name: str, input_shape: Shape, graph_outputs: list[str]):
        self.opset = opset
        self.consts: dict[str, np.ndarray] = {}
        self.tensors: dict[str, Ref] = {input_name: Ref(Graph.INPUT, tuple(input_shape))}
        self.nodes: dict[str, Node] = {}
        self.report = ImportReport(source="")
        self.uses: Counter[str] = Counter(graph_outputs)
        """How many node inputs (and graph outputs) read each ONNX tensor."""
        self.consumer_ops: dict[str, list[str]] = {}
        """The op types that read each ONNX tensor."""
        self.graph_outputs = set(graph_outputs)
        self.pending_pads: dict[
            str, tuple[Ref, tuple[int, int, int, int], str, float, OnnxNode]
        ] = {}
        """Pad outputs waiting to be folded into the Conv that reads them: (source,
        (top, bottom, left, right), engine mode, value, the Pad node)."""
        self._names: set[str] = {Graph.INPUT, OUTPUT_KEY}

    # -- lookups ----------------------------------------------------------------------------
    def is_const(self, name: str) -> bool:
        return name in self.consts

    def const(self, node: OnnxNode, index: int, what: str) -> np.ndarray:
        """Input ``index`` of ``node``, which must be a constant (a weight)."""
        name = node.inputs[index] if index < len(node.inputs) else ""
        if name not in self.consts:
            raise ModelFileError(
                f"node {node.label!r} ({node.op}) computes its {what} at run time; this app "
                f"imports models whose {what} is a stored constant"
            )
        return self.consts[name]

    def optional_const(self, node: OnnxNode, index: int, what: str) -> np.ndarray | None:
        if index >= len(node.inputs) or not node.inputs[index]:
            return None
        return self.const(node, index, what)

    def ref(self, node: OnnxNode, index: int = 0) -> Ref:
        """Input ``index`` of ``node``, which must be computed by the engine."""
        name = node.inputs[index]
        if name in self.pending_pads:
            self.materialise_pad(name)
        if name not in self.tensors:
            if name in self.consts:
                raise ModelFileError(
                    f"node {node.label!r} ({node.op}) only reads constants at input "
                    f"{index + 1}; this app needs it to work on the image"
                )
            raise ModelFileError(f"node {node.label!r} reads {name!r}, which nothing computes")
        return self.tensors[name]

    def producer(self, ref: Ref) -> Node | None:
        return self.nodes.get(ref.name)

    def single_use(self, onnx_name: str) -> bool:
        """True when one node reads ``onnx_name`` and it is not a graph output."""
        return self.uses[onnx_name] == 1 and onnx_name not in self.graph_outputs

    def ref_single_use(self, ref: Ref) -> bool:
        """True when exactly one node reads the engine tensor ``ref`` (under any of its
        ONNX names) and it is not a graph output: the layer that makes it may then be
        changed in place (a bias folded in)."""
        names = [k for k, r in self.tensors.items() if r == ref]
        return sum(self.uses[k] for k in names) == 1 and not self.graph_outputs & set(names)

    def count_uses(self, nodes: list[onnx.NodeProto]) -> None:
        for node in nodes:
            for name in node.input:
                if name:
                    self.uses[name] += 1
                    self.consumer_ops.setdefault(name, []).append(node.op_type)

    # -- results ----------------------------------------------------------------------------
    def _unique(self, base: str) -> str:
        return unique_name(base.lstrip("/") or "node", self._names)

    def emit(
        self,
        node: OnnxNode,
        layer: Layer,
        inputs: list[Ref],
        *,
        output: int | None = 0,
        suffix: str = "",
    ) -> Ref:
        """Add an engine node for ``layer`` reading ``inputs``; when ``output`` is given
        the ONNX output of that index becomes this node's tensor."""
        name = self._unique(node.label + suffix)
        layer.name = name
        try:
            if isinstance(layer, MergeLayer):
                shape = layer.output_shape_many([r.shape for r in inputs])
            else:
                shape = layer.output_shape(inputs[0].shape)
        except ShapeError as exc:
            raise ModelFileError(f"node {node.label!r} ({node.op}) does not fit: {exc}") from None
        if len(shape) not in (1, 3):
            dims = ", ".join(str(int(d)) for d in shape)
            raise ModelFileError(
                f"node {node.label!r} ({node.op}) makes a tensor of shape (N, {dims}); this "
                "app's layers work on (N, C, H, W) maps and (N, features) vectors"
            )
        self.nodes[name] = Node(name, layer, tuple(r.name for r in inputs))
        ref = Ref(name, tuple(int(s) for s in shape))
        if output is not None:
            self.tensors[node.outputs[output]] = ref
        return ref

    def replace_layer(self, ref: Ref, layer: Layer) -> None:
        """Swap the layer of the node that makes ``ref`` (same name, inputs and shape)."""
        old = self.nodes[ref.name]
        layer.name = old.name
        self.nodes[ref.name] = Node(old.name, layer, old.inputs)

    def alias(self, node: OnnxNode, ref: Ref, output: int = 0) -> None:
        self.tensors[node.outputs[output]] = ref

    def set_const(self, node: OnnxNode, value: np.ndarray, output: int = 0) -> None:
        self.consts[node.outputs[output]] = value

    def entry(self, node: OnnxNode, status: str, detail: str = "") -> None:
        self.report.entries.append(ReportEntry(node.label, node.op, status, detail))

    def transformed(self, node: OnnxNode, detail: str, note: str | None = None) -> None:
        """Record a rewrite: the node's entry, and ``note`` (or ``detail``) in the list of
        transformations."""
        self.entry(node, "transformed", detail)
        self.report.transformations.append(note or f"{node.label} ({node.op}): {detail}")

    def materialise_pad(self, onnx_name: str) -> None:
        """A pending Pad is read by something other than the Conv it was kept for: make it
        a Pad2D node after all."""
        src, pads, mode, value, node = self.pending_pads.pop(onnx_name)
        self.emit(node, Pad2D(padding=pads, mode=mode, value=value), [src])
        self.entry(node, "mapped", f"Pad2D {pads} {mode}")

    def graph(self, output: str) -> Graph:
        if output in self.pending_pads:
            self.materialise_pad(output)
        if output not in self.tensors:
            raise ModelFileError(f"the model's output {output!r} is not computed from its input")
        ref = self.tensors[output]
        if ref.name == Graph.INPUT:
            raise ModelFileError("the model's output is its input: there is nothing to run")
        try:
            return Graph(list(self.nodes.values()), output=ref.name)
        except ValueError as exc:
            raise ModelFileError(f"the converted graph is not valid: {exc}") from None
