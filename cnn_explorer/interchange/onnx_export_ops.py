"""The ONNX form of each engine layer kind: one writer per kind appends nodes and
initializers to a :class:`Builder` (opset 17). :mod:`onnx_export` walks the model and
calls them; the module notes there say why some layers become several nodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from cnn_explorer.interchange.export_common import ExportError, ExportNode, ExportPlan
from cnn_explorer.interchange.model import unique_name


class Builder:
    """Collects nodes and initializers; ``fresh`` makes unique helper-tensor names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.names: set[str] = set()

    def fresh(self, base: str) -> str:
        return unique_name(base, self.names)

    def const(self, name: str, value: Any, dtype: Any = np.float32) -> str:
        """An initializer (weights, pads, shapes, scalars); returns its name."""
        name = self.fresh(name)
        arr = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], output: str, **attrs: Any) -> str:
        """Append one node whose single output is ``output`` (also its node name)."""
        self.names.add(output)
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=output, **attrs))
        return output


# --------------------------------------------------------------------------------------
# Padding helpers
# --------------------------------------------------------------------------------------


def _onnx_pads(pad4: Sequence[int]) -> list[int]:
    """Engine ``(top, bottom, left, right)`` → ONNX ``[top, left, bottom, right]``."""
    t, b, left, r = (int(v) for v in pad4)
    return [t, left, b, r]


def _pad(b: Builder, x: str, pad4: Sequence[int], mode: str, out: str, value: float = 0.0) -> str:
    """``x`` padded by ``(top, bottom, left, right)`` with the engine's ``mode``."""
    t, bo, left, r = (int(v) for v in pad4)
    if mode == "circular":
        return _circular_pad(b, x, (t, bo, left, r), out)
    onnx_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge"}.get(mode)
    if onnx_mode is None:
        raise ExportError(f"padding mode {mode!r} has no ONNX equivalent")
    pads = b.const(f"{out}.pads", [0, 0, t, left, 0, 0, bo, r], np.int64)
    inputs = [x, pads]
    if onnx_mode == "constant" and value != 0.0:
        inputs.append(b.const(f"{out}.value", value))
    return b.op("Pad", inputs, out, mode=onnx_mode)


def _circular_pad(b: Builder, x: str, pad4: tuple[int, int, int, int], out: str) -> str:
    """Circular padding (torch ``padding_mode="circular"``): the last rows wrap to the top
    and the first rows to the bottom, then the same for columns. ``Slice`` with negative
    starts counts from the end, so no input size is baked in."""
    t, bo, left, r = pad4
    cur = x
    for axis, before, after, tag in ((2, t, bo, "rows"), (3, left, r, "cols")):
        if before == 0 and after == 0:
            continue
        parts = []
        if before:
            parts.append(_slice(b, cur, -before, np.iinfo(np.int64).max, axis, f"{out}/{tag}_top"))
        parts.append(cur)
        if after:
            parts.append(_slice(b, cur, 0, after, axis, f"{out}/{tag}_bottom"))
        cur = b.op("Concat", parts, b.fresh(f"{out}/{tag}"), axis=axis)
    return b.op("Identity", [cur], out)


def _slice(b: Builder, x: str, start: int, end: int, axis: int, out: str) -> str:
    ins = [
        x,
        b.const(f"{out}.starts", [start], np.int64),
        b.const(f"{out}.ends", [end], np.int64),
        b.const(f"{out}.axes", [axis], np.int64),
    ]
    return b.op("Slice", ins, b.fresh(out))


def _ceil_extra(n: int, pad_before: int, pad_after: int, k: int, s: int, out_n: int) -> int:
    """Extra trailing padding that makes a floor-mode window count equal ``out_n`` (the
    engine's ceil-mode count, already corrected the torch way)."""
    return max(0, (out_n - 1) * s + k - (n + pad_before + pad_after))


# --------------------------------------------------------------------------------------
# One exporter per layer kind: (builder, node, input tensor names, plan) -> output name
# --------------------------------------------------------------------------------------

Emit = Callable[[Builder, ExportNode, list[str], ExportPlan], str]


def _weights(node: ExportNode) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.float32) for k, v in node.layer.params.items()}


def _conv(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    layer: Any = node.layer
    w = _weights(node)["weight"]
    if layer.flip_kernel:  # true convolution = cross-correlation with the flipped kernel
        w = np.ascontiguousarray(w[:, :, ::-1, ::-1])
    x = ins[0]
    pads = list(layer.padding4)
    if layer.padding_mode != "zeros" and any(pads):
        x = _pad(b, x, pads, layer.padding_mode, b.fresh(f"{node.name}/pad"))
        pads = [0, 0, 0, 0]
    inputs = [x, b.const(f"{node.name}.weight", w)]
    if layer.params.get("bias") is not None:
        inputs.append(b.const(f"{node.name}.bias", _weights(node)["bias"]))
    return b.op(
        "Conv",
        inputs,
        node.name,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        dilations=list(layer.dilation),
        pads=_onnx_pads(pads),
        group=int(getattr(layer, "groups", 1)),
    )


def _pool_geometry(node: ExportNode, plan: ExportPlan) -> tuple[list[int], tuple[int, int]]:
    """``(padding4, (extra_bottom, extra_right))`` for a pool's ceil-mode overhang."""
    layer: Any = node.layer
    _, h, w = plan.shapes[node.inputs[0]]
    _, oh, ow = plan.shapes[node.name]
    t, bo, left, r = (int(v) for v in layer.padding4)
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    extra = (
        _ceil_extra(h, t, bo, kh, sh, oh),
        _ceil_extra(w, left, r, kw, sw, ow),
    )
    return [t, bo, left, r], extra


def _max_pool(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    """Uneven padding goes into an explicit ``Pad`` with −∞ (the same result: padding
    never wins a max): onnx.reference 1.23 reads uneven MaxPool ``pads`` in the wrong
    order, and importers self-check against it."""
    layer: Any = node.layer
    (t, bo, left, r), (eh, ew) = _pool_geometry(node, plan)
    pad4 = (t, bo + eh, left, r + ew)
    x = ins[0]
    if pad4[0] != pad4[1] or pad4[2] != pad4[3]:
        x = _pad(b, x, pad4, "zeros", b.fresh(f"{node.name}/pad"), float("-inf"))
        pad4 = (0, 0, 0, 0)
    return b.op(
        "MaxPool",
        [x],
        node.name,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        pads=_onnx_pads(pad4),
    )


def _avg_pool(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    """Torch's divisor counts zero padding (``count_include_pad``) but never the ceil-mode
    overhang beyond it; ONNX has one switch for all pads, hence the explicit ``Pad``."""
    layer: Any = node.layer
    include_pad = bool(getattr(layer, "count_include_pad", True))
    pad4, (eh, ew) = _pool_geometry(node, plan)
    t, bo, left, r = pad4
    x = ins[0]
    if eh == 0 and ew == 0:
        pads, cip = (t, bo, left, r), int(include_pad)
    elif include_pad:
        if any(pad4):
            x = _pad(b, x, pad4, "zeros", b.fresh(f"{node.name}/pad"))
        pads, cip = (0, eh, 0, ew), 0
    else:
        pads, cip = (t, bo + eh, left, r + ew), 0
    return b.op(
        "AveragePool",
        [x],
        node.name,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        pads=_onnx_pads(pads),
        count_include_pad=cip,
    )


def _gelu_tanh(b: Builder, x: str, out: str) -> str:
    """0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""
    sq = b.op("Mul", [x, x], b.fresh(f"{out}/x2"))
    cube = b.op("Mul", [sq, x], b.fresh(f"{out}/x3"))
    scaled = b.op("Mul", [cube, b.const(f"{out}.c", 0.044715)], b.fresh(f"{out}/cx3"))
    inner = b.op("Add", [x, scaled], b.fresh(f"{out}/inner"))
    arg = b.op("Mul", [inner, b.const(f"{out}.k", math.sqrt(2.0 / math.pi))], b.fresh(f"{out}/arg"))
    t = b.op("Tanh", [arg], b.fresh(f"{out}/tanh"))
    one_t = b.op("Add", [t, b.const(f"{out}.one", 1.0)], b.fresh(f"{out}/1+tanh"))
    half_x = b.op("Mul", [x, b.const(f"{out}.half", 0.5)], b.fresh(f"{out}/half_x"))
    return b.op("Mul", [half_x, one_t], out)


def _softplus(b: Builder, x: str, out: str, beta: float, threshold: float) -> str:
    """(1/β)·log(1 + e^(β·x)), and x itself where β·x > threshold (torch). At the usual
    threshold 20 the two differ by < 1e-8, so plain ``Softplus`` nodes do; a lower
    threshold is spelled out with ``Where``."""
    bx = x if beta == 1.0 else b.op("Mul", [x, b.const(f"{out}.beta", beta)], b.fresh(f"{out}/bx"))
    exact = threshold < 20.0
    sp_out = b.fresh(f"{out}/softplus") if beta != 1.0 or exact else out
    sp = b.op("Softplus", [bx], sp_out)
    if beta != 1.0:
        sp = b.op(
            "Div", [sp, b.const(f"{out}.beta", beta)], out if not exact else b.fresh(f"{out}/sp")
        )
    if not exact:
        return sp
    above = b.op("Greater", [bx, b.const(f"{out}.threshold", threshold)], b.fresh(f"{out}/above"))
    return b.op("Where", [above, x, sp], out)


def _activation(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    layer: Any = node.layer
    kind, s, x, out = layer.activation, layer.settings, ins[0], node.name
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "identity": "Identity"}
    if kind in simple:
        return b.op(simple[kind], [x], out)
    if kind == "leaky_relu":
        return b.op("LeakyRelu", [x], out, alpha=float(s.get("negative_slope", 0.01)))
    if kind == "elu":
        return b.op("Elu", [x], out, alpha=float(s.get("alpha", 1.0)))
    if kind == "gelu_tanh":
        return _gelu_tanh(b, x, out)
    if kind == "softplus":
        return _softplus(b, x, out, float(s.get("beta", 1.0)), float(s.get("threshold", 20.0)))
    raise ExportError(f"activation {kind!r} of node {node.name!r} has no ONNX export")


def _batch_norm(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    layer: Any = node.layer
    n = node.name
    f32 = {k: np.asarray(v, np.float32) for k, v in {**layer.params, **layer.buffers}.items()}
    inputs = [
        ins[0],
        b.const(f"{n}.gamma", f32["gamma"]),
        b.const(f"{n}.beta", f32["beta"]),
        b.const(f"{n}.running_mean", f32["running_mean"]),
        b.const(f"{n}.running_var", f32["running_var"]),
    ]
    # ONNX momentum weighs the old running value (torch's weighs the new batch)
    return b.op(
        "BatchNormalization",
        inputs,
        n,
        epsilon=float(layer.eps),
        momentum=1.0 - float(layer.momentum),
    )


def _flatten(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    return b.op("Flatten", ins, node.name, axis=1)


def _dense(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    w = _weights(node)
    inputs = [ins[0], b.const(f"{node.name}.weight", w["weight"])]
    if "bias" in w:
        inputs.append(b.const(f"{node.name}.bias", w["bias"]))
    return b.op("Gemm", inputs, node.name, transB=1)


def _dropout(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    """Dropout is the identity at inference; an Identity keeps the node's name visible."""
    return b.op("Identity", ins, node.name)


EXPORTERS: dict[str, Emit] = {
    "conv": _conv,
    "max_pool": _max_pool,
    "avg_pool": _avg_pool,
    "activation": _activation,
    "batch_norm": _batch_norm,
    "flatten": _flatten,
    "dense": _dense,
    "dropout": _dropout,
}
"""Layer kind → its ONNX writer."""


# --------------------------------------------------------------------------------------
# Graph ops (engine.merge and the single-input ops graphs bring)
# --------------------------------------------------------------------------------------


def _config(node: ExportNode) -> dict[str, Any]:
    return node.layer.to_dict()


def _merge(op_type: str) -> Emit:
    def emit(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
        out = ins[0]
        for k, other in enumerate(ins[1:], start=1):  # ONNX Add/Mul take exactly two
            last = k == len(ins) - 1
            out = b.op(op_type, [out, other], node.name if last else b.fresh(f"{node.name}/{k}"))
        return out if len(ins) > 1 else b.op("Identity", ins, node.name)

    return emit


def _concat(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    return b.op("Concat", ins, node.name, axis=int(_config(node)["axis"]))


EXPORTERS.update({"add": _merge("Add"), "mul": _merge("Mul"), "concat": _concat})


def _pad_layer(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    cfg = _config(node)
    return _pad(b, ins[0], cfg["padding"], cfg["mode"], node.name, float(cfg["value"]))


def _global_avg(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    return b.op("GlobalAveragePool", ins, node.name)


def _adaptive_avg(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    """torch's adaptive windows overlap when the size does not divide: then the pool is
    two matrix products with averaging matrices, ``A_h · x · A_wᵀ`` (exact)."""
    _, h, w = plan.shapes[node.inputs[0]]
    _, oh, ow = plan.shapes[node.name]
    if (oh, ow) == (1, 1):
        return _global_avg(b, node, ins, plan)
    if h % oh == 0 and w % ow == 0:
        k = [h // oh, w // ow]
        return b.op("AveragePool", ins, node.name, kernel_shape=k, strides=k)
    from cnn_explorer.engine.extra_layers import adaptive_bounds

    def matrix(n: int, out: int) -> np.ndarray:
        m = np.zeros((out, n), np.float32)
        for i, (s, e) in enumerate(zip(*adaptive_bounds(n, out), strict=True)):
            m[i, s:e] = 1.0 / (e - s)
        return m

    rows = b.op(
        "MatMul",
        [b.const(f"{node.name}.rows", matrix(h, oh)), ins[0]],
        b.fresh(f"{node.name}/rows"),
    )
    return b.op("MatMul", [rows, b.const(f"{node.name}.cols", matrix(w, ow).T)], node.name)


def _prelu(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    """ONNX broadcasts the slope against ``(N, C, H, W)`` from the right: ``(C, 1, 1)``."""
    slope = np.asarray(node.layer.params["weight"], np.float32)
    rank = len(plan.shapes[node.inputs[0]])
    if slope.size > 1:
        slope = slope.reshape((-1,) + (1,) * (rank - 1))
    return b.op("PRelu", [ins[0], b.const(f"{node.name}.weight", slope)], node.name)


def _clip(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    cfg = _config(node)
    lo = "" if cfg["min"] is None else b.const(f"{node.name}.min", float(cfg["min"]))
    hi = "" if cfg["max"] is None else b.const(f"{node.name}.max", float(cfg["max"]))
    return b.op("Clip", [ins[0], lo, hi] if hi else [ins[0], lo], node.name)


def _softmax(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    return b.op("Softmax", ins, node.name, axis=int(_config(node)["axis"]))


def _reshape(b: Builder, node: ExportNode, ins: list[str], plan: ExportPlan) -> str:
    """``0`` keeps the (dynamic) batch size; the rest is the per-image target."""
    target = [0, *(int(v) for v in _config(node)["shape"])]
    return b.op("Reshape", [ins[0], b.const(f"{node.name}.shape", target, np.int64)], node.name)


EXPORTERS.update(
    {
        "pad": _pad_layer,
        "global_avg_pool": _global_avg,
        "adaptive_avg_pool": _adaptive_avg,
        "prelu": _prelu,
        "clip": _clip,
        "softmax": _softmax,
        "reshape": _reshape,
    }
)
