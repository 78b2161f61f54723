"""The ONNX operator table: one converter per operator, turning an ONNX node into engine
layers (or into a constant, an alias, or a change to the layer before it).

Layout conventions: ONNX ``pads`` are ``[top, left, bottom, right]`` for 2-D ops (all
begins, then all ends); the engine's are ``(top, bottom, left, right)``. ONNX axes count
the batch axis; engine shapes are per image.

Elementwise and tensor-shape operators live in :mod:`onnx_ops_tensor`; this module holds
the spatial ones (Conv, pools, BatchNorm, Pad) and the activations, and assembles
:data:`CONVERTERS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cnn_explorer.engine import (
    Activation,
    BatchNorm2D,
    Clip,
    Conv2D,
    Flatten,
    Pad2D,
    PReLU,
)
from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.engine.layers import Layer
from cnn_explorer.interchange.model import ModelFileError
from cnn_explorer.interchange.onnx_graph import Builder, OnnxNode, Ref

Converter = Callable[[Builder, OnnxNode], None]
Pads4 = tuple[int, int, int, int]

PAD_MODES = {"constant": "zeros", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}
"""ONNX Pad modes and the engine's padding modes that do the same."""


def make(node: OnnxNode, cls: type[Layer], *args: Any, **kwargs: Any) -> Layer:
    """Construct an engine layer; its ShapeError/ValueError becomes a ModelFileError
    naming the node."""
    try:
        return cls(*args, **kwargs)
    except (ShapeError, ValueError, TypeError) as exc:
        raise ModelFileError(f"node {node.label!r} ({node.op}) cannot be built: {exc}") from None


def load(node: OnnxNode, layer: Layer, arrays: dict[str, np.ndarray | None]) -> Layer:
    try:
        layer.load_arrays(
            {k: np.asarray(v, np.float32) for k, v in arrays.items() if v is not None}
        )
    except ValueError as exc:
        raise ModelFileError(f"node {node.label!r} ({node.op}): {exc}") from None
    return layer


def need_map(node: OnnxNode, x: Ref) -> tuple[int, int, int]:
    if len(x.shape) != 3:
        raise ModelFileError(
            f"node {node.label!r} ({node.op}) needs an (N, C, H, W) image tensor but its "
            f"input has shape (N, {', '.join(map(str, x.shape))}); this app runs 2-D models"
        )
    c, h, w = x.shape
    return c, h, w


def pair(node: OnnxNode, name: str, default: int) -> tuple[int, int]:
    v = node.attr(name)
    if v is None:
        return (default, default)
    v = [int(a) for a in v]
    if len(v) != 2:
        raise ModelFileError(
            f"node {node.label!r} ({node.op}) has {name} {v}: only 2-D is supported"
        )
    return (v[0], v[1])


def spatial_pads(
    node: OnnxNode,
    hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> Pads4:
    """``(top, bottom, left, right)`` from ``pads`` or ``auto_pad``."""
    auto = str(node.attr("auto_pad", "NOTSET"))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out: list[int] = []
        for size, k, s, d in zip(hw, kernel, stride, dilation, strict=True):
            total = max(0, (math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            out += [small, big] if auto == "SAME_UPPER" else [big, small]
        return (out[0], out[1], out[2], out[3])
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto != "NOTSET":
        raise ModelFileError(f"node {node.label!r} ({node.op}) has an unknown auto_pad {auto!r}")
    p = [int(v) for v in node.attr("pads", [0, 0, 0, 0])]
    if len(p) != 4:
        raise ModelFileError(f"node {node.label!r} ({node.op}) has pads {p}: only 2-D is supported")
    return (p[0], p[2], p[1], p[3])


def channel_vector(arr: np.ndarray, shape: Sequence[int]) -> np.ndarray | None:
    """A constant that broadcasts against a per-image ``shape`` (with the batch axis in
    front) as one value per channel (maps) or per feature (vectors): that ``(C,)``
    vector, else None. Follows ONNX broadcasting (aligned from the right)."""
    rank = len(shape) + 1
    a = np.asarray(arr, np.float32)
    if a.ndim > rank:
        return None
    full = a.reshape((1,) * (rank - a.ndim) + a.shape)
    if full.shape[0] != 1 or any(d != 1 for d in full.shape[2:]):
        return None
    n = full.shape[1]
    c = shape[0]
    if n not in (1, c):
        return None
    return np.broadcast_to(full.reshape(n), (c,)).astype(np.float32)


# -- spatial ops ---------------------------------------------------------------------------------


def _fold_pending_pad(b: Builder, n: OnnxNode, pads: Pads4, x: Ref) -> tuple[Pads4, str, Ref]:
    """Fold the Pad in front of Conv ``n`` (if one waits) into the conv's padding: zero
    padding adds to the conv's own, another mode replaces a conv padding of 0. Returns
    the conv's padding, padding mode and input."""
    name = n.inputs[0]
    if name not in b.pending_pads:
        return pads, "zeros", x
    src, ppads, pmode, pvalue, pnode = b.pending_pads[name]
    if pmode == "zeros" and pvalue == 0.0:
        new, mode = (
            (pads[0] + ppads[0], pads[1] + ppads[1], pads[2] + ppads[2], pads[3] + ppads[3]),
            "zeros",
        )
    elif pads == (0, 0, 0, 0) and pmode != "zeros":
        new, mode = ppads, pmode
    else:
        b.materialise_pad(name)
        return pads, "zeros", b.ref(n)
    del b.pending_pads[name]
    b.transformed(
        pnode,
        f"folded into the padding of Conv {n.label!r}",
        f"Pad {pnode.label!r} folded into Conv {n.label!r} (padding {new}, {mode})",
    )
    return new, mode, src


def conv(b: Builder, n: OnnxNode) -> None:
    w = b.const(n, 1, "filters")
    if w.ndim != 4:
        raise ModelFileError(
            f"node {n.label!r} (Conv) is a {w.ndim - 2}-D convolution; this app runs 2-D ones"
        )
    bias = b.optional_const(n, 2, "bias")
    group = int(n.attr("group", 1))
    kernel = (int(w.shape[2]), int(w.shape[3]))
    stride, dilation = pair(n, "strides", 1), pair(n, "dilations", 1)
    pending = b.pending_pads.get(n.inputs[0])
    x = pending[0] if pending is not None else b.ref(n)
    c, h, wd = need_map(n, x)
    pp = pending[1] if pending is not None else (0, 0, 0, 0)
    hw = (h + pp[0] + pp[1], wd + pp[2] + pp[3])  # what auto_pad sees: the padded size
    pads = spatial_pads(n, hw, kernel, stride, dilation)
    pads, mode, x = _fold_pending_pad(b, n, pads, x)
    if w.shape[1] * group != c:
        raise ModelFileError(
            f"node {n.label!r} (Conv) has filters for {w.shape[1] * group} input channels "
            f"but its input has {c}"
        )
    layer = make(
        n,
        Conv2D,
        c,
        int(w.shape[0]),
        kernel,
        stride,
        pads,
        dilation,
        padding_mode=mode,
        bias=bias is not None,
        groups=group,
        init="zeros",
    )
    load(n, layer, {"weight": w, "bias": bias})
    b.emit(n, layer, [x])
    detail = f"Conv2D {kernel[0]}×{kernel[1]}, {c}→{w.shape[0]}"
    b.entry(n, "mapped", detail + (f", groups {group}" if group != 1 else ""))


def batch_norm(b: Builder, n: OnnxNode) -> None:
    if int(n.attr("training_mode", 0)) or any(b.uses[o] for o in n.outputs[1:] if o):
        raise ModelFileError(
            f"node {n.label!r} (BatchNormalization) is in training mode; export the model "
            "in inference mode (model.eval())"
        )
    x = b.ref(n)
    gamma, beta = b.const(n, 1, "scale"), b.const(n, 2, "bias")
    mean, var = b.const(n, 3, "mean"), b.const(n, 4, "variance")
    eps = float(n.attr("epsilon", 1e-5))
    if len(x.shape) != 3:
        from cnn_explorer.interchange.onnx_ops_tensor import affine

        scale = gamma / np.sqrt(var + eps)
        affine(b, n, x, scale, beta - mean * scale, "BatchNorm on features")
        return
    c = x.shape[0]
    layer = make(n, BatchNorm2D, c, eps)
    arrays = {"gamma": gamma, "beta": beta, "running_mean": mean, "running_var": var}
    load(n, layer, {k: np.reshape(v, -1) for k, v in arrays.items()})
    b.emit(n, layer, [x])
    b.entry(n, "mapped", f"BatchNorm2D {c}")


def pad(b: Builder, n: OnnxNode) -> None:
    x = b.ref(n)
    need_map(n, x)
    pads = [int(v) for v in np.reshape(b.const(n, 1, "pads"), -1)]
    value_arr = b.optional_const(n, 2, "padding value")
    value = float(np.reshape(value_arr, -1)[0]) if value_arr is not None and value_arr.size else 0.0
    axes_arr = b.optional_const(n, 3, "axes")
    if axes_arr is not None:
        full = [0] * 8
        k = len(axes_arr)
        for i, a in enumerate(int(v) % 4 for v in np.reshape(axes_arr, -1)):
            full[a], full[a + 4] = pads[i], pads[i + k]
        pads = full
    if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
        raise ModelFileError(
            f"node {n.label!r} (Pad) pads {pads}; this app pads height and width by 0 or more"
        )
    onnx_mode = str(n.attr("mode", "constant"))
    if onnx_mode not in PAD_MODES:
        raise ModelFileError(f"node {n.label!r} (Pad) uses mode {onnx_mode!r}")
    mode = PAD_MODES[onnx_mode]
    engine_pads = (pads[2], pads[6], pads[3], pads[7])
    consumers = b.consumer_ops.get(n.outputs[0], [])
    foldable = consumers == ["Conv"] and ((mode == "zeros" and value == 0.0) or mode != "zeros")
    if consumers == ["MaxPool"]:  # -inf padding never wins a max: the pool's own padding
        foldable = mode == "zeros" and value == float("-inf")
    if consumers == ["AveragePool"]:  # zeros that are counted: see avg_pool
        foldable = mode == "zeros" and value == 0.0
    if b.single_use(n.outputs[0]) and foldable:
        b.pending_pads[n.outputs[0]] = (x, engine_pads, mode, value, n)
        return
    b.emit(n, make(n, Pad2D, padding=engine_pads, mode=mode, value=value), [x])
    b.entry(n, "mapped", f"Pad2D {engine_pads} {mode}")


# -- activations ---------------------------------------------------------------------------------


def _activation(name: str, **settings: float) -> Converter:
    def convert(b: Builder, n: OnnxNode) -> None:
        x = b.ref(n)
        values = {k: float(n.attr(k, v)) for k, v in settings.items()}
        kwargs = {"negative_slope": values["alpha"]} if name == "leaky_relu" else {}
        if name == "elu":
            kwargs = {"alpha": values["alpha"]}
        b.emit(n, make(n, Activation, name, **kwargs), [x])
        b.entry(n, "mapped", f"Activation {name}")

    return convert


def softplus(b: Builder, n: OnnxNode) -> None:
    """``Softplus``; ``beta`` and ``threshold`` come from :mod:`onnx_patterns` (torch's
    ``Softplus(beta, threshold)`` spelled out in several nodes)."""
    x = b.ref(n)
    beta, threshold = float(n.attr("beta", 1.0)), float(n.attr("threshold", 20.0))
    b.emit(n, make(n, Activation, "softplus", beta=beta, threshold=threshold), [x])
    extra = f" (beta {beta:g}, threshold {threshold:g})" if (beta, threshold) != (1, 20) else ""
    b.entry(n, "mapped", "Activation softplus" + extra)


def gelu(b: Builder, n: OnnxNode) -> None:
    """``Gelu`` (opset 20, or the spelled-out form :mod:`onnx_patterns` recognises): the
    engine has the tanh approximation only."""
    x = b.ref(n)
    approximate = str(n.attr("approximate", "none"))
    if approximate != "tanh":
        raise ModelFileError(
            f"node {n.label!r} (Gelu) is the exact GELU; this app has GELU with the tanh "
            "approximation only (approximate='tanh')"
        )
    b.emit(n, Activation("gelu_tanh"), [x])
    b.entry(n, "mapped", "Activation gelu_tanh")


def prelu(b: Builder, n: OnnxNode) -> None:
    x = b.ref(n)
    slope = b.const(n, 1, "slope")
    vec = channel_vector(slope, x.shape)
    if vec is None:
        raise ModelFileError(
            f"node {n.label!r} (PRelu) has a slope of shape {slope.shape}; this app supports "
            "one slope, or one per channel"
        )
    one = bool(np.all(vec == vec[0])) and slope.size == 1
    layer = make(n, PReLU, 1 if one else len(vec))
    load(n, layer, {"weight": vec[:1] if one else vec})
    b.emit(n, layer, [x])
    b.entry(n, "mapped", "PReLU (one slope)" if one else f"PReLU ({len(vec)} slopes)")


def clip(b: Builder, n: OnnxNode) -> None:
    x = b.ref(n)
    lo_arr, hi_arr = b.optional_const(n, 1, "minimum"), b.optional_const(n, 2, "maximum")
    lo = float(np.reshape(lo_arr, -1)[0]) if lo_arr is not None and lo_arr.size else None
    hi = float(np.reshape(hi_arr, -1)[0]) if hi_arr is not None and hi_arr.size else None
    b.emit(n, make(n, Clip, lo, hi), [x])
    b.entry(n, "mapped", f"Clip({lo}, {hi})")


def _flatten_to_vector(b: Builder, n: OnnxNode, x: Ref) -> Ref:
    return b.emit(n, Flatten(), [x], output=None, suffix="/flatten")


def build_converters() -> dict[str, Converter]:
    from cnn_explorer.interchange import onnx_ops_const as c
    from cnn_explorer.interchange import onnx_ops_pool as p
    from cnn_explorer.interchange import onnx_ops_tensor as t

    return {
        "Conv": conv,
        "MaxPool": p.max_pool,
        "AveragePool": p.avg_pool,
        "GlobalAveragePool": p.global_avg_pool,
        "GlobalMaxPool": p.global_max_pool,
        "BatchNormalization": batch_norm,
        "Pad": pad,
        "Relu": _activation("relu"),
        "LeakyRelu": _activation("leaky_relu", alpha=0.01),
        "Elu": _activation("elu", alpha=1.0),
        "Sigmoid": _activation("sigmoid"),
        "Tanh": _activation("tanh"),
        "Softplus": softplus,
        "Gelu": gelu,
        "PRelu": prelu,
        "Clip": clip,
        **t.CONVERTERS,
        **c.CONVERTERS,
    }
