"""Write an engine Network or Graph as an ONNX model (opset 17, IR version 8), built with
``onnx.helper`` from the NumPy weights — no torch, no tracing.

Why explicit ops instead of the obvious attribute: ONNX and PyTorch disagree at the edges,
and the file must compute exactly what the explorer showed. So:

- ``ceil_mode`` pooling becomes explicit extra bottom/right padding (ONNX runtimes differ on
  the last window that starts in the padding; torch drops it).
- Average pooling that counts zero padding in its divisor while the ceil-mode overhang does
  not (torch's rule) becomes an explicit zero ``Pad`` plus an average pool that excludes pads.
- Reflect/replicate padding is a ``Pad`` node before the ``Conv``; circular padding (ONNX
  ``wrap`` needs opset 19) is two ``Slice``+``Concat`` steps.
- A true convolution (``flip_kernel``) is exported as the cross-correlation with the flipped
  weights; GELU (tanh) is spelled out (ONNX ``Gelu`` needs opset 20).

Each node's output tensor is named after the engine node (``"3"`` for layer 3 of a chain,
the node's name in a graph); weights are ``"<node>.<param>"`` like the engine's state keys.
The batch dimension is dynamic (``"N"``). Preprocessing and class names go to
``metadata_props`` under the keys of :mod:`cnn_explorer.interchange.model`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import onnx
from onnx import TensorProto, helper

from cnn_explorer.interchange.export_common import (
    INPUT,
    ExportError,
    Shape,
    export_nodes,
    write_bytes_atomic,
)
from cnn_explorer.interchange.model import (
    METADATA_CLASS_NAMES,
    METADATA_PREPROCESSING,
    Preprocessing,
)
from cnn_explorer.interchange.onnx_export_ops import EXPORTERS, Builder

OPSET = 17
IR_VERSION = 8
PRODUCER = "cnn-explorer"
BATCH = "N"


# --------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------


def _value_info(name: str, shape: Shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH, *shape])


def _metadata(
    preprocessing: Preprocessing | None, class_names: Sequence[str] | None
) -> dict[str, str]:
    meta: dict[str, str] = {}
    names = list(class_names) if class_names else []
    if preprocessing is not None:
        if not names:
            names = list(preprocessing.class_names)
        meta[METADATA_PREPROCESSING] = preprocessing.to_json()
    if names:
        meta[METADATA_CLASS_NAMES] = json.dumps([str(n) for n in names])
    return meta


def to_onnx(
    model: Any,
    input_shape: Sequence[int],
    *,
    preprocessing: Preprocessing | None = None,
    class_names: Sequence[str] | None = None,
    check: bool = True,
) -> onnx.ModelProto:
    """The ONNX model of ``model`` (an engine Network or Graph) for per-image
    ``input_shape`` such as ``(C, H, W)``; the batch dimension stays free.

    Raises :class:`ExportError` naming the first layer that ONNX cannot express, or when
    the model does not compute on ``input_shape``. ``check`` runs
    ``onnx.checker.check_model(full_check=True)`` on the result.
    """
    plan = export_nodes(model, input_shape)
    b = Builder()
    b.names.update([INPUT, *(n.name for n in plan.nodes)])  # helpers never take these
    for node in plan.nodes:
        emit = EXPORTERS.get(node.layer.kind)
        if emit is None:
            raise ExportError(
                f"node {node.name!r} ({node.layer.describe()}) cannot be written as ONNX: "
                f"layer kind {node.layer.kind!r} is not supported by the exporter"
            )
        emit(b, node, list(node.inputs), plan)
    output = plan.output
    if output == INPUT:  # nothing enabled: the model is the identity
        output = b.op("Identity", [INPUT], "output")
        plan.shapes[output] = plan.shapes[INPUT]
    graph = helper.make_graph(
        b.nodes,
        "cnn_explorer_model",
        [_value_info(INPUT, plan.shapes[INPUT])],
        [_value_info(output, plan.shapes[output])],
        initializer=b.inits,
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name=PRODUCER,
        doc_string="Exported by CNN Explorer.",
    )
    helper.set_model_props(onnx_model, _metadata(preprocessing, class_names))
    if check:
        try:
            onnx.checker.check_model(onnx_model, full_check=True)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
            raise ExportError(f"the exported ONNX model does not pass the checker: {exc}") from exc
    return onnx_model


def save_onnx(
    path: str | os.PathLike[str],
    model: Any,
    input_shape: Sequence[int],
    *,
    preprocessing: Preprocessing | None = None,
    class_names: Sequence[str] | None = None,
) -> onnx.ModelProto:
    """:func:`to_onnx` written to ``path`` atomically; returns the model."""
    proto = to_onnx(model, input_shape, preprocessing=preprocessing, class_names=class_names)
    write_bytes_atomic(path, proto.SerializeToString())
    return proto


__all__ = ["EXPORTERS", "IR_VERSION", "OPSET", "ExportError", "save_onnx", "to_onnx"]
