"""ONNX nodes that vanish on import: Identity and Dropout (aliases), Constant and Shape
(known at import), and anything computed from constants alone (shape arithmetic that
exporters leave in the graph, folded once with the ONNX reference evaluator).
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx

from cnn_explorer.interchange.model import ModelFileError
from cnn_explorer.interchange.onnx_graph import Builder, OnnxNode
from cnn_explorer.interchange.onnx_ops import Converter

FOLDABLE = frozenset(
    {
        "Unsqueeze",
        "Squeeze",
        "Cast",
        "Concat",
        "Reshape",
        "Gather",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Sqrt",
        "Neg",
        "Identity",
        "Transpose",
        "Slice",
        "Flatten",
        "ConstantOfShape",
        "Expand",
        "Shape",
    }
)
"""Operators computed once at import when all their inputs are constants (shape
arithmetic that exporters leave in the graph)."""

FOLDED = "computed from constants at import"
"""Report detail of a node computed once at import (summed up in one transformation)."""

MAX_FOLDED_ELEMENTS = 1 << 24
"""Most numbers one constant computed at import may hold."""


# -- nodes that vanish ---------------------------------------------------------------------------


def identity(b: Builder, n: OnnxNode) -> None:
    if n.op == "Dropout" and len(n.outputs) > 1 and b.uses[n.outputs[1]]:
        raise ModelFileError(f"node {n.label!r} (Dropout) returns its mask, which is not supported")
    if b.is_const(n.inputs[0]):
        b.set_const(n, b.consts[n.inputs[0]])
        b.entry(n, "transformed", "passes a constant: held as weights")
        return
    b.alias(n, b.ref(n))
    detail = "no effect at inference: removed" if n.op == "Dropout" else "removed"
    b.transformed(n, detail)


def constant(b: Builder, n: OnnxNode) -> None:
    from cnn_explorer.interchange.onnx_reader import tensor_array

    if "value" in n.attrs:
        value = tensor_array(n.attrs["value"])
    else:
        key = next(
            (k for k in ("value_float", "value_floats", "value_int", "value_ints") if k in n.attrs),
            None,
        )
        if key is None:
            raise ModelFileError(
                f"node {n.label!r} (Constant) holds a kind of value this app does not read"
            )
        value = np.asarray(n.attrs[key], np.float32 if "float" in key else np.int64)
    b.set_const(n, value)
    b.entry(n, "transformed", f"constant {tuple(value.shape)}: held as weights")


def shape(b: Builder, n: OnnxNode) -> None:
    x = b.ref(n)
    full = np.array((1, *x.shape), np.int64)
    start, end = int(n.attr("start", 0)), n.attr("end")
    b.set_const(n, full[start : (int(end) if end is not None else None)])
    b.transformed(n, "shape known at import (batch counted as 1, the batch axis stays free)")


def fold_constant(b: Builder, n: OnnxNode) -> None:
    """All inputs are constants: compute the outputs once with the ONNX reference."""
    from onnx.reference import ReferenceEvaluator

    ins = [b.consts[i] for i in n.inputs if i]
    sizes = [a.size for a in ins]
    if n.op in ("ConstantOfShape", "Expand"):  # the output may dwarf the inputs
        dims = np.abs(ins[-1].astype(np.float64)) + 1
        sizes.append(int(min(np.prod(dims) * ins[0].size, 2.0 * MAX_FOLDED_ELEMENTS)))
    if sum(sizes) > MAX_FOLDED_ELEMENTS:
        raise ModelFileError(f"node {n.label!r} ({n.op}) computes too large a constant")
    names = [i for i in n.inputs if i]
    inputs = [
        onnx.helper.make_tensor_value_info(nm, onnx.TensorProto.UNDEFINED, None) for nm in names
    ]
    outputs = [
        onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in n.outputs
    ]
    graph = onnx.helper.make_graph([n.proto], "fold", inputs, outputs)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", b.opset)])
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            results = ReferenceEvaluator(model).run(None, dict(zip(names, ins, strict=True)))
    except Exception as exc:
        raise ModelFileError(f"node {n.label!r} ({n.op}) could not be computed: {exc}") from None
    for i, r in enumerate(results):
        arr = np.asarray(r)
        if arr.size > MAX_FOLDED_ELEMENTS:
            raise ModelFileError(f"node {n.label!r} ({n.op}) computes too large a constant")
        b.set_const(n, arr.astype(np.float32) if arr.dtype.kind == "f" else arr, i)
    b.entry(n, "transformed", FOLDED)


CONVERTERS: dict[str, Converter] = {
    "Identity": identity,
    "Dropout": identity,
    "Constant": constant,
    "Shape": shape,
}
