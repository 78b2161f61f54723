"""ONNX converters for the dense, elementwise and tensor-shape operators: Gemm, MatMul,
Add/Sub/Mul/Div, Sum, Concat, Flatten, Reshape, Squeeze/Unsqueeze, Softmax, ReduceMean.

(Identity, Dropout, Constant, Shape and constant folding are in :mod:`onnx_ops_const`.)

A constant operand of Add/Mul is folded into the bias (and weights) of the Conv or Dense
before it when nothing else reads that layer's output, and otherwise becomes a
per-channel scale-and-shift layer; both are listed in the report.
"""

from __future__ import annotations

import math

import numpy as np

from cnn_explorer.engine import (
    AdaptiveAvgPool2D,
    Add,
    BatchNorm2D,
    Concat,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    Mul,
    Reshape,
    Softmax,
)
from cnn_explorer.engine.extra_layers import adaptive_bounds
from cnn_explorer.interchange.model import ModelFileError
from cnn_explorer.interchange.onnx_graph import Builder, OnnxNode, Ref
from cnn_explorer.interchange.onnx_ops import Converter, channel_vector, load, make

MAX_DIAGONAL_FEATURES = 4096
"""Largest vector a constant scale/shift is applied to as a diagonal Dense layer (its
weight is features² numbers)."""

# -- helpers -------------------------------------------------------------------------------------


def _scalar_or_vector_text(v: np.ndarray) -> str:
    return f"{float(v[0]):g}" if np.all(v == v[0]) else f"{len(v)} values"


def affine(
    b: Builder,
    n: OnnxNode,
    x: Ref,
    scale: np.ndarray | None,
    shift: np.ndarray | None,
    what: str,
) -> None:
    """``y = x * scale + shift`` with one value per channel (maps) or feature (vectors):
    folded into the Conv/Dense that makes ``x`` when only this node reads it, otherwise
    a BatchNorm2D with mean 0 and variance 1 (maps) or a diagonal Dense (vectors)."""
    c = x.shape[0]
    s = np.ones(c, np.float32) if scale is None else np.broadcast_to(scale, (c,)).astype(np.float32)
    t = (
        np.zeros(c, np.float32)
        if shift is None
        else np.broadcast_to(shift, (c,)).astype(np.float32)
    )
    prev = b.producer(x)
    if prev is not None and isinstance(prev.layer, Conv2D | Dense) and b.ref_single_use(x):
        layer = prev.layer
        weight = layer.params["weight"]
        bias = layer.params.get("bias")
        new_w = weight * s.reshape((-1,) + (1,) * (weight.ndim - 1))
        new_b = (np.zeros(c, np.float32) if bias is None else bias) * s + t
        cfg = {k: v for k, v in layer.to_dict().items() if k not in ("kind", "name")}
        cfg.update(bias=True, init="zeros")
        rebuilt = make(n, type(layer), **cfg)
        load(n, rebuilt, {"weight": new_w, "bias": new_b})
        b.replace_layer(x, rebuilt)
        b.alias(n, x)
        kind = "Conv" if isinstance(layer, Conv2D) else "Dense"
        b.transformed(n, f"{what} folded into the weights and bias of {kind} {x.name!r}")
        return
    if len(x.shape) == 3:
        scale_shift = make(n, BatchNorm2D, c, 0.0)
        load(
            n,
            scale_shift,
            {"gamma": s, "beta": t, "running_mean": np.zeros(c), "running_var": np.ones(c)},
        )
        b.emit(n, scale_shift, [x])
        b.transformed(n, f"{what} as a per-channel scale and shift (BatchNorm2D, mean 0, var 1)")
        return
    if len(x.shape) != 1 or c > MAX_DIAGONAL_FEATURES:
        raise ModelFileError(f"node {n.label!r} ({n.op}) on shape {x.shape} is not supported")
    diag = make(n, Dense, c, c, init="zeros")
    load(n, diag, {"weight": np.diag(s), "bias": t})
    b.emit(n, diag, [x])
    b.transformed(n, f"{what} as a diagonal Dense layer")


def _axis(n: OnnxNode, axis: int, rank: int) -> int:
    """A batched ONNX axis as a non-negative number, checked against ``rank``."""
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise ModelFileError(f"node {n.label!r} ({n.op}) has axis {axis} for a rank-{rank} tensor")
    return a


def adaptive_matrix(n: int, out: int) -> np.ndarray:
    """``(out, n)``: row ``i`` averages torch's adaptive window ``i`` of an axis of ``n``."""
    m = np.zeros((out, n), np.float64)
    for i, (s, e) in enumerate(zip(*adaptive_bounds(n, out), strict=True)):
        m[i, s:e] = 1.0 / (e - s)
    return m


# -- dense ---------------------------------------------------------------------------------------


def gemm(b: Builder, n: OnnxNode) -> None:
    x = b.ref(n)
    if int(n.attr("transA", 0)) or len(x.shape) != 1:
        raise ModelFileError(
            f"node {n.label!r} (Gemm) multiplies a transposed or non-vector input; this app "
            "supports Gemm as a fully connected layer on (N, features)"
        )
    w = b.const(n, 1, "weights")
    if w.ndim != 2:
        raise ModelFileError(f"node {n.label!r} (Gemm) has weights of shape {w.shape}")
    w = w if int(n.attr("transB", 0)) else w.T
    alpha, beta = float(n.attr("alpha", 1.0)), float(n.attr("beta", 1.0))
    out_f, in_f = w.shape
    if in_f != x.shape[0]:
        raise ModelFileError(
            f"node {n.label!r} (Gemm) expects {in_f} input features but gets {x.shape[0]}"
        )
    c = b.optional_const(n, 2, "bias")
    bias = None
    if c is not None:
        if c.size not in (1, out_f) or (c.ndim == 2 and c.shape[0] != 1):
            raise ModelFileError(f"node {n.label!r} (Gemm) has a bias of shape {c.shape}")
        bias = beta * np.broadcast_to(np.reshape(c, -1), (out_f,))
    layer = make(n, Dense, in_f, out_f, bias is not None, init="zeros")
    load(n, layer, {"weight": alpha * w, "bias": bias})
    b.emit(n, layer, [x])
    b.entry(n, "mapped", f"Dense {in_f}→{out_f}")


def _adaptive_axis(m: np.ndarray, n: int) -> int | None:
    """``out`` when the ``(out, n)`` matrix ``m`` averages torch's adaptive windows of an
    axis of length ``n`` (what the exporter writes for uneven adaptive pooling), else
    None."""
    if m.ndim != 2 or m.shape[1] != n or not 1 <= m.shape[0] <= n:
        return None
    want = adaptive_matrix(n, m.shape[0])
    return m.shape[0] if np.allclose(m, want, rtol=1e-6, atol=1e-7) else None


def _matmul_pool(b: Builder, n: OnnxNode) -> None:
    """``A · x`` (rows) or ``x · B`` (columns) on a map, with A or Bᵀ an adaptive averaging
    matrix: an AdaptiveAvgPool2D along that axis, merged with an adaptive pool along the
    other axis just before it (the exporter writes rows then columns)."""
    rows = b.is_const(n.inputs[0])
    x = b.ref(n, 1 if rows else 0)
    m = b.consts[n.inputs[0 if rows else 1]]
    _, h, w = x.shape if len(x.shape) == 3 else (0, 0, 0)
    out = None
    if len(x.shape) == 3 and m.ndim == 2:
        out = _adaptive_axis(m, h) if rows else _adaptive_axis(m.T, w)
    if out is None:
        raise ModelFileError(
            f"node {n.label!r} (MatMul) multiplies a map of shape (N, "
            f"{', '.join(map(str, x.shape))}) by a constant of shape {m.shape}; this app "
            "reads that only as adaptive average pooling (torch's windows)"
        )
    size = (out, w) if rows else (h, out)
    src = x
    prev = b.producer(x)
    if prev is not None and isinstance(prev.layer, AdaptiveAvgPool2D) and b.ref_single_use(x):
        ph, pw = x.shape[1], x.shape[2]
        before = next(r for r in b.tensors.values() if r.name == prev.inputs[0])
        if rows and ph == before.shape[1]:  # columns pooled before: (out, pw)
            src, size = before, (out, pw)
        elif not rows and pw == before.shape[2]:  # rows pooled before: (ph, out)
            src, size = before, (ph, out)
        if src is before:
            del b.nodes[prev.name]
    b.emit(n, make(n, AdaptiveAvgPool2D, size), [src])
    b.transformed(n, f"MatMul by an averaging matrix: AdaptiveAvgPool2D to {size}")


def matmul(b: Builder, n: OnnxNode) -> None:
    if b.is_const(n.inputs[0]) or (
        b.is_const(n.inputs[1]) and not b.is_const(n.inputs[0]) and len(b.ref(n).shape) == 3
    ):
        _matmul_pool(b, n)
        return
    x = b.ref(n)
    w = b.const(n, 1, "weights")
    if len(x.shape) != 1 or w.ndim != 2 or w.shape[0] != x.shape[0]:
        raise ModelFileError(
            f"node {n.label!r} (MatMul) multiplies shapes (N, {x.shape}) and {w.shape}; this "
            "app supports MatMul as a fully connected layer: (N, features) × (features, out)"
        )
    layer = make(n, Dense, w.shape[0], w.shape[1], False, init="zeros")
    load(n, layer, {"weight": w.T})
    b.emit(n, layer, [x])
    b.entry(n, "mapped", f"Dense {w.shape[0]}→{w.shape[1]} (a following Add becomes its bias)")


# -- elementwise ---------------------------------------------------------------------------------


def _binary(b: Builder, n: OnnxNode) -> None:
    a_name, c_name = n.inputs[0], n.inputs[1]
    a_const, c_const = b.is_const(a_name), b.is_const(c_name)
    if not a_const and not c_const:
        if n.op not in ("Add", "Mul"):
            raise ModelFileError(
                f"node {n.label!r} ({n.op}) combines two computed tensors; this app supports "
                "that for Add and Mul"
            )
        xs = [b.ref(n, 0), b.ref(n, 1)]
        if len(xs[0].shape) != len(xs[1].shape):
            raise ModelFileError(
                f"node {n.label!r} ({n.op}) combines tensors of different ranks "
                f"{xs[0].shape} and {xs[1].shape}"
            )
        b.emit(n, Add() if n.op == "Add" else Mul(), xs)
        b.entry(n, "mapped", f"{n.op} of {len(xs)} tensors")
        return
    x = b.ref(n, 1 if a_const else 0)
    k = b.consts[a_name if a_const else c_name]
    vec = channel_vector(k, x.shape)
    if vec is None:
        raise ModelFileError(
            f"node {n.label!r} ({n.op}) uses a constant of shape {k.shape} on a tensor of "
            f"shape (N, {', '.join(map(str, x.shape))}); this app supports one constant, "
            "or one per channel"
        )
    what = f"{n.op} of a constant ({_scalar_or_vector_text(vec)})"
    if n.op == "Add":
        affine(b, n, x, None, vec, what)
    elif n.op == "Sub":
        affine(b, n, x, -np.ones_like(vec) if a_const else None, vec if a_const else -vec, what)
    elif n.op == "Mul":
        affine(b, n, x, vec, None, what)
    elif n.op == "Div" and not a_const:
        affine(b, n, x, 1.0 / vec, None, what)
    else:
        raise ModelFileError(
            f"node {n.label!r} divides a constant by a tensor, which is not supported"
        )


def _sum(b: Builder, n: OnnxNode) -> None:
    xs = [b.ref(n, i) for i in range(len(n.inputs))]
    if len(xs) == 1:
        b.alias(n, xs[0])
        b.transformed(n, "a sum of one tensor: removed")
        return
    if len({len(x.shape) for x in xs}) != 1:
        raise ModelFileError(f"node {n.label!r} (Sum) adds tensors of different ranks")
    b.emit(n, Add(), xs)
    b.entry(n, "mapped", f"Add of {len(xs)} tensors")


def concat(b: Builder, n: OnnxNode) -> None:
    xs = [b.ref(n, i) for i in range(len(n.inputs))]
    rank = len(xs[0].shape) + 1
    axis = _axis(n, int(n.attr("axis", 1)), rank)
    if axis == 0:
        raise ModelFileError(f"node {n.label!r} (Concat) joins along the batch axis")
    b.emit(n, make(n, Concat, axis), xs)
    b.entry(n, "mapped", f"Concat axis {axis} of {len(xs)} tensors")


# -- shapes --------------------------------------------------------------------------------------


def flatten(b: Builder, n: OnnxNode) -> None:
    x = b.ref(n)
    axis = _axis(n, int(n.attr("axis", 1)), len(x.shape) + 1)
    if axis != 1:
        raise ModelFileError(
            f"node {n.label!r} (Flatten) flattens from axis {axis}; this app flattens from "
            "axis 1 (everything but the batch)"
        )
    if len(x.shape) == 1:
        b.alias(n, x)
        b.transformed(n, "already flat: removed")
        return
    b.emit(n, Flatten(), [x])
    b.entry(n, "mapped", "Flatten")


def reshape(b: Builder, n: OnnxNode) -> None:
    x = b.ref(n)
    target = [int(v) for v in np.reshape(b.const(n, 1, "target shape"), -1)]
    full = (1, *x.shape)
    allow_zero = bool(n.attr("allowzero", 0))
    out = [
        full[i] if (v == 0 and not allow_zero and i < len(full)) else v
        for i, v in enumerate(target)
    ]
    if out.count(-1) > 1 or any(v < -1 for v in out):
        raise ModelFileError(f"node {n.label!r} (Reshape) has an invalid target shape {target}")
    known = math.prod(v for v in out if v != -1)
    total = math.prod(full)
    if -1 in out:
        if known == 0 or total % known:
            raise ModelFileError(f"node {n.label!r} (Reshape) cannot reshape {full} to {target}")
        out[out.index(-1)] = total // known
    if math.prod(out) != total or not out or out[0] != 1:
        raise ModelFileError(
            f"node {n.label!r} (Reshape) reshapes (N, {', '.join(map(str, x.shape))}) to "
            f"{target}; this app keeps the batch axis first"
        )
    _set_shape(b, n, x, tuple(out[1:]))


def _set_shape(b: Builder, n: OnnxNode, x: Ref, per_image: tuple[int, ...]) -> None:
    """Emit the cheapest layer giving ``x`` the per-image shape ``per_image`` (same size):
    nothing, a Flatten, or a Reshape."""
    if per_image == x.shape:
        b.alias(n, x)
        b.transformed(n, "no change of shape: removed")
    elif len(per_image) == 1 and len(x.shape) > 1:
        b.emit(n, Flatten(), [x])
        b.entry(n, "mapped", f"Flatten (a {n.op} to one axis)")
    else:
        b.emit(n, make(n, Reshape, per_image), [x])
        b.entry(n, "mapped", f"Reshape to {per_image}")


def _raw_axes(b: Builder, n: OnnxNode) -> list[int] | None:
    """The ``axes`` of Squeeze/Unsqueeze: an attribute before opset 13, an input since."""
    raw = b.optional_const(n, 1, "axes") if b.opset >= 13 else n.attr("axes")
    return None if raw is None else [int(a) for a in np.reshape(np.asarray(raw), -1)]


def squeeze(b: Builder, n: OnnxNode) -> None:
    x = b.ref(n)
    full = (1, *x.shape)
    raw = _raw_axes(b, n)
    if raw is None:
        axes = [i for i in range(1, len(full)) if full[i] == 1]
    else:
        axes = sorted(_axis(n, a, len(full)) for a in raw)
    if 0 in axes or any(full[a] != 1 for a in axes):
        raise ModelFileError(
            f"node {n.label!r} (Squeeze) removes axes {axes} of (N, "
            f"{', '.join(map(str, x.shape))}); only size-1 axes after the batch can go"
        )
    _set_shape(b, n, x, tuple(d for i, d in enumerate(full) if i not in axes)[1:])


def unsqueeze(b: Builder, n: OnnxNode) -> None:
    x = b.ref(n)
    raw = _raw_axes(b, n) or []
    out_rank = len(x.shape) + 1 + len(raw)
    axes = sorted(_axis(n, a, out_rank) for a in raw)
    if not axes or 0 in axes:
        raise ModelFileError(
            f"node {n.label!r} (Unsqueeze) adds axes {axes}; the batch stays first"
        )
    out = [1, *x.shape]
    for a in axes:
        out.insert(a, 1)
    _set_shape(b, n, x, tuple(out[1:]))


def softmax(b: Builder, n: OnnxNode) -> None:
    x = b.ref(n)
    rank = len(x.shape) + 1
    axis = _axis(n, int(n.attr("axis", 1 if b.opset < 13 else -1)), rank)
    if axis == 0:
        raise ModelFileError(f"node {n.label!r} (Softmax) runs over the batch axis")
    trailing = math.prod(x.shape[axis:])  # sizes after the axis (per-image index axis-1)
    if b.opset >= 13 or trailing == 1 or axis == rank - 1:
        b.emit(n, make(n, Softmax, axis), [x])
        b.entry(n, "mapped", f"Softmax axis {axis}")
        return
    if axis != 1:
        raise ModelFileError(
            f"node {n.label!r} (Softmax, opset {b.opset}) normalises axes {axis}… together; "
            "this app supports that from axis 1"
        )
    flat = b.emit(n, Flatten(), [x], output=None, suffix="/flatten")
    soft = b.emit(n, make(n, Softmax, 1), [flat], output=None, suffix="/softmax")
    b.emit(n, make(n, Reshape, x.shape), [soft])
    b.transformed(n, "opset<13 Softmax over all of C, H, W: Flatten, Softmax, Reshape")


def reduce_mean(b: Builder, n: OnnxNode) -> None:
    x = b.ref(n)
    rank = len(x.shape) + 1
    axes_in = b.optional_const(n, 1, "axes") if b.opset >= 18 else None
    axes_raw = axes_in if axes_in is not None else n.attr("axes")
    axes = sorted(
        _axis(n, int(a), rank) for a in np.reshape(axes_raw if axes_raw is not None else [], -1)
    )
    keep = bool(n.attr("keepdims", 1))
    if rank != 4 or axes != [2, 3]:
        raise ModelFileError(
            f"node {n.label!r} (ReduceMean) averages over axes {axes}; this app supports the "
            "mean over height and width (axes 2, 3) of an (N, C, H, W) map"
        )
    if keep:
        b.emit(n, GlobalAvgPool2D(), [x])
        b.entry(n, "mapped", "GlobalAvgPool2D")
        return
    pooled = b.emit(n, GlobalAvgPool2D(), [x], output=None, suffix="/pool")
    b.emit(n, Flatten(), [pooled])
    b.transformed(n, "mean over H, W without keepdims: GlobalAvgPool2D then Flatten")


CONVERTERS: dict[str, Converter] = {
    "Gemm": gemm,
    "MatMul": matmul,
    "Add": _binary,
    "Sub": _binary,
    "Mul": _binary,
    "Div": _binary,
    "Concat": concat,
    "Flatten": flatten,
    "Reshape": reshape,
    "Softmax": softmax,
    "Squeeze": squeeze,
    "Unsqueeze": unsqueeze,
    "Sum": _sum,
    "ReduceMean": reduce_mean,
}
