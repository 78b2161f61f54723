"""The import's numerical self-check: the engine graph and ``onnx.reference`` (the ONNX
package's own NumPy evaluator) run on the same seeded random input.

The reference has two known deviations from the ONNX spec that would make a correct import
look wrong, so two of its operators are replaced for the check: BatchNormalization before
opset 14 with a ``momentum`` attribute is evaluated with the batch's statistics (ours
uses the stored ones, as inference does), and Softmax before opset 13 over several axes
is evaluated over one axis (ours follows the opset-11 definition: flatten from ``axis``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from cnn_explorer.engine.graph import Graph
from cnn_explorer.interchange.model import SelfCheck
from cnn_explorer.interchange.onnx_reader import OnnxFile

SELF_CHECK_SEED = 0
SELF_CHECK_REFERENCE = "onnx.reference"


class _InferenceBatchNorm(OpRun):
    """BatchNormalization with the stored statistics, whatever the opset."""

    op_domain = ""

    def _run(self, x: Any, scale: Any, bias: Any, mean: Any, var: Any, **attrs: Any) -> tuple:
        eps = attrs.get("epsilon") or 1e-5
        shape = (-1,) + (1,) * (x.ndim - 2)
        y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
        return ((y * scale.reshape(shape) + bias.reshape(shape)).astype(x.dtype),)


class _FlatteningSoftmax(OpRun):
    """Softmax as opsets 1–12 define it: over everything from ``axis`` on."""

    op_domain = ""

    def _run(self, x: Any, axis: Any = None) -> tuple:
        a = 1 if axis is None else int(axis)
        a = a + x.ndim if a < 0 else a
        flat = x.reshape(int(np.prod(x.shape[:a])), -1)
        e = np.exp(flat - flat.max(axis=1, keepdims=True))
        return ((e / e.sum(axis=1, keepdims=True)).reshape(x.shape).astype(x.dtype),)


_InferenceBatchNorm.__name__ = "BatchNormalization"
_FlatteningSoftmax.__name__ = "Softmax"


def reference(model: onnx.ModelProto, opset: int) -> ReferenceEvaluator:
    """``onnx.reference`` for ``model`` with the corrected operators for its opset."""
    ops: list[type[OpRun]] = [_InferenceBatchNorm]
    if opset < 13:
        ops.append(_FlatteningSoftmax)
    return ReferenceEvaluator(model, new_ops=ops)


def self_check(f: OnnxFile, graph: Graph, input_shape: tuple[int, int, int]) -> SelfCheck:
    """Run ``graph`` and the ONNX reference evaluator on one seeded random input."""
    rng = np.random.default_rng(SELF_CHECK_SEED)
    x = rng.standard_normal((1, *input_shape)).astype(np.float32)
    elem = onnx.helper.tensor_dtype_to_np_dtype(
        next(vi for vi in f.model.graph.input if vi.name == f.input_name).type.tensor_type.elem_type
    )
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            evaluator = reference(f.model, f.opset)
            ref = evaluator.run([f.output_names[0]], {f.input_name: x.astype(elem)})
            ours = graph(x)
    except Exception as exc:
        return SelfCheck(SELF_CHECK_REFERENCE, math.inf, 0.0, False, f"could not run: {exc}")
    want = np.asarray(next(iter(ref)), np.float64)
    got = np.asarray(ours, np.float64)
    if want.shape != got.shape:
        msg = f"the output has shape {got.shape}, the reference {want.shape}"
        return SelfCheck(SELF_CHECK_REFERENCE, math.inf, 0.0, False, msg)
    finite = np.isfinite(want)
    scale = float(np.max(np.abs(want[finite]))) if finite.any() else 1.0
    tol = 1e-4 * max(1.0, scale)
    if not np.array_equal(finite, np.isfinite(got)):
        msg = "NaN or inf appear in different places than in the reference"
        return SelfCheck(SELF_CHECK_REFERENCE, math.inf, tol, False, msg)
    diff = float(np.max(np.abs(want[finite] - got[finite]))) if finite.any() else 0.0
    if diff <= tol:
        return SelfCheck(
            SELF_CHECK_REFERENCE, diff, tol, True, f"matches the reference to {diff:.1g}"
        )
    msg = f"differs from the reference by up to {diff:.3g} (tolerance {tol:.1g})"
    return SelfCheck(SELF_CHECK_REFERENCE, diff, tol, False, msg)
