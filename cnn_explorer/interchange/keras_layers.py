"""The Keras layer table: one converter per layer class, turning a Keras layer call into
engine layers with the weights in the engine's layout.

Weight layouts: Conv2D kernel ``(kh, kw, in/groups, out)`` → ``(out, in/groups, kh, kw)``;
DepthwiseConv2D ``(kh, kw, C, m)`` → ``(C·m, 1, kh, kw)`` (groups C); Dense ``(in, out)``
→ ``(out, in)``; BatchNormalization ``gamma, beta, moving_mean, moving_variance`` (gamma
or beta absent when ``scale``/``center`` is off). Merges and shapes live in
:mod:`keras_layers_tensor`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cnn_explorer.engine import (
    Activation,
    AvgPool2D,
    BatchNorm2D,
    Clip,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    MaxPool2D,
    Pad2D,
    PReLU,
    Reshape,
)
from cnn_explorer.interchange.keras_build import (
    KBuilder,
    KRef,
    activation_name,
    apply_activation,
    check_channels_last,
    expect_weights,
    hwc_perm,
    layer_error,
    load,
    make,
    need_map,
    padding,
    pair,
)
from cnn_explorer.interchange.keras_config import KerasLayer

Converter = Callable[[KBuilder, KerasLayer, list[KRef], list[np.ndarray]], KRef]


def _bias(
    layer: KerasLayer, weights: list[np.ndarray], kernel_shapes: list[tuple[int, ...]], out: int
) -> tuple[list[np.ndarray], np.ndarray | None]:
    use_bias = bool(layer.config.get("use_bias", True))
    shapes = kernel_shapes + ([(out,)] if use_bias else [])
    ws = expect_weights(layer, weights, shapes)
    return ws, (ws[-1] if use_bias else None)


def _finish(b: KBuilder, layer: KerasLayer, ref: KRef, detail: str, status: str = "mapped") -> KRef:
    act = activation_name(layer, layer.config.get("activation"))
    if act != "linear":
        detail += f" + {act}"
    b.entry(layer, status, detail)
    return apply_activation(b, layer, ref, act)


def conv2d(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    check_channels_last(layer)
    c, h, w = need_map(layer, xs[0])
    k, s, d = (
        pair(layer, "kernel_size", 1),
        pair(layer, "strides", 1),
        pair(layer, "dilation_rate", 1),
    )
    groups = int(layer.config.get("groups", 1) or 1)
    filters = int(layer.config.get("filters", 0))
    if groups < 1 or c % groups:
        raise layer_error(layer, f"has {groups} groups for {c} input channels")
    ws, bias = _bias(layer, weights, [(k[0], k[1], c // groups, filters)], filters)
    pads = padding(b, layer, (h, w), k, s, d)
    conv = make(layer, Conv2D, c, filters, k, s, pads, d, bias=bias is not None, groups=groups)
    load(layer, conv, {"weight": ws[0].transpose(3, 2, 0, 1), "bias": bias})
    ref = b.emit(layer, conv, xs[:1])
    extra = (f", stride {s[0] if s[0] == s[1] else s}" if s != (1, 1) else "") + (
        f", dilation {d[0] if d[0] == d[1] else d}" if d != (1, 1) else ""
    )
    extra += f", groups {groups}" if groups > 1 else ""
    return _finish(b, layer, ref, f"Conv2D {c}→{filters} {k[0]}×{k[1]}{extra}")


def _depthwise(
    b: KBuilder,
    layer: KerasLayer,
    x: KRef,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    suffix: str = "",
) -> KRef:
    c, h, w = x.shape
    kh, kw, _, m = kernel.shape
    k, s, d = (kh, kw), pair(layer, "strides", 1), pair(layer, "dilation_rate", 1)
    pads = padding(b, layer, (h, w), k, s, d)
    conv = make(layer, Conv2D, c, c * m, k, s, pads, d, bias=bias is not None, groups=c)
    weight = kernel.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None]
    load(layer, conv, {"weight": weight, "bias": bias})
    return b.emit(layer, conv, [x], suffix)


def depthwise_conv2d(
    b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]
) -> KRef:
    check_channels_last(layer)
    c, _, _ = need_map(layer, xs[0])
    k, m = pair(layer, "kernel_size", 1), int(layer.config.get("depth_multiplier", 1))
    ws, bias = _bias(layer, weights, [(k[0], k[1], c, m)], c * m)
    ref = _depthwise(b, layer, xs[0], ws[0], bias)
    return _finish(b, layer, ref, f"depthwise Conv2D {c}→{c * m} {k[0]}×{k[1]} (groups {c})")


def separable_conv2d(
    b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]
) -> KRef:
    check_channels_last(layer)
    c, _, _ = need_map(layer, xs[0])
    k, m = pair(layer, "kernel_size", 1), int(layer.config.get("depth_multiplier", 1))
    filters = int(layer.config.get("filters", 0))
    ws, bias = _bias(layer, weights, [(k[0], k[1], c, m), (1, 1, c * m, filters)], filters)
    dw = _depthwise(b, layer, xs[0], ws[0], None, "/depthwise")
    pw = make(layer, Conv2D, c * m, filters, 1, bias=bias is not None)
    load(layer, pw, {"weight": ws[1].transpose(3, 2, 0, 1), "bias": bias})
    ref = b.emit(layer, pw, [dw], "/pointwise")
    b.report.transformations.append(
        f"{layer.name}: SeparableConv2D as a depthwise {k[0]}×{k[1]} and a pointwise 1×1 "
        "convolution"
    )
    return _finish(
        b, layer, ref, f"depthwise {k[0]}×{k[1]} + pointwise {c * m}→{filters}", "transformed"
    )


def dense(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    x = xs[0]
    units = int(layer.config.get("units", 0))
    n_in = x.shape[0]
    ws, bias = _bias(layer, weights, [(n_in, units)], units)
    kernel = ws[0]
    if len(x.shape) == 3:  # Dense on an (H, W, C) map acts on each pixel: a 1×1 convolution
        conv = make(layer, Conv2D, n_in, units, 1, bias=bias is not None)
        load(layer, conv, {"weight": kernel.T[:, :, None, None], "bias": bias})
        ref = b.emit(layer, conv, [x])
        b.report.transformations.append(f"{layer.name}: Dense on an image as a 1×1 convolution")
        return _finish(b, layer, ref, f"1×1 Conv2D {n_in}→{units}", "transformed")
    if len(x.shape) != 1:
        raise layer_error(
            layer, f"reads a tensor of shape {x.shape}; this app maps vectors and images"
        )
    status = "mapped"
    if x.perm is not None:
        kernel = kernel[x.perm]
        status = "transformed"
        b.report.transformations.append(
            f"{layer.name}: Dense rows permuted from Keras' (H, W, C) flattening order to (C, H, W)"
        )
    fc = make(layer, Dense, n_in, units, bias=bias is not None)
    load(layer, fc, {"weight": kernel.T, "bias": bias})
    ref = b.emit(layer, fc, [x])
    detail = f"Dense {n_in}→{units}" + (
        ", rows permuted from (H, W, C)" if x.perm is not None else ""
    )
    return _finish(b, layer, ref, detail, status)


def flatten(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    check_channels_last(layer)
    x = xs[0]
    if len(x.shape) == 1:
        b.entry(layer, "transformed", "already a vector: nothing to do")
        return x
    c, h, w = need_map(layer, x)
    ref = b.emit(layer, Flatten(), [x])
    perm = hwc_perm(c, h, w)
    note = ", in (C, H, W) order (Keras: (H, W, C))" if perm is not None else ""
    b.entry(layer, "mapped", f"Flatten {c}×{h}×{w}{note}")
    return KRef(ref.name, ref.shape, perm, (c, h, w))


def pooling(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    check_channels_last(layer)
    _, h, w = need_map(layer, xs[0])
    k = pair(layer, "pool_size", 2)
    s = k if layer.config.get("strides") is None else pair(layer, "strides", 1)
    pads = padding(b, layer, (h, w), k, s)
    if layer.cls.startswith("Max"):
        pool = make(layer, MaxPool2D, k, s, pads)
    else:  # TF's 'same' averages the real cells only
        pool = make(layer, AvgPool2D, k, s, pads, count_include_pad=False)
    ref = b.emit(layer, pool, xs[:1])
    b.entry(layer, "mapped", pool.describe())
    return ref


def global_pooling(
    b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]
) -> KRef:
    check_channels_last(layer)
    c, h, w = need_map(layer, xs[0])
    if "Max" in layer.cls:
        ref = b.emit(layer, make(layer, MaxPool2D, (h, w), (h, w)), xs[:1])
    else:
        ref = b.emit(layer, GlobalAvgPool2D(), xs[:1])
    if layer.config.get("keepdims"):
        b.entry(layer, "mapped", f"global pool {c}×{h}×{w} → {c}×1×1")
        return ref
    b.entry(layer, "mapped", f"global pool {c}×{h}×{w} → {c} (then Flatten)")
    return b.emit(layer, Flatten(), [ref], "/flatten")


def _axis_ok(layer: KerasLayer, x: KRef) -> None:
    axis = layer.config.get("axis", -1)
    if isinstance(axis, list) and len(axis) == 1:
        axis = axis[0]
    if axis not in (-1, len(x.shape)):
        raise layer_error(layer, f"normalises axis {axis!r}; this app maps the channel axis (-1)")


def batch_norm(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    x = xs[0]
    _axis_ok(layer, x)
    n = x.shape[0]
    cfg = layer.config
    scale, center = bool(cfg.get("scale", True)), bool(cfg.get("center", True))
    ws = list(expect_weights(layer, weights, [(n,)] * (2 + scale + center)))
    gamma = ws.pop(0) if scale else np.ones(n, np.float32)
    beta = ws.pop(0) if center else np.zeros(n, np.float32)
    mean, var = ws
    eps = float(cfg.get("epsilon", 1e-3))
    return _normalise(b, layer, x, (gamma, beta, mean, var), eps, f"BatchNorm {n}, eps {eps:g}")


def normalization(
    b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]
) -> KRef:
    """Keras' ``Normalization``: ``(x − mean) / max(√variance, 1e-7)`` per channel, as a
    BatchNorm with gamma 1, beta 0 and eps 0 (the same wherever variance ≥ 1e-14)."""
    x = xs[0]
    _axis_ok(layer, x)
    if layer.config.get("invert"):
        raise layer_error(layer, "inverts the normalisation; this app maps invert=False")
    n = x.shape[0]
    cfg = layer.config
    if cfg.get("mean") is not None and cfg.get("variance") is not None:
        raw = [np.asarray(cfg["mean"], np.float32), np.asarray(cfg["variance"], np.float32)]
    elif len(weights) == 3:  # mean, variance, count
        raw = weights[:2]
    else:
        raise layer_error(layer, "holds no mean and variance (was it adapted?)")
    try:
        mean, var = (np.broadcast_to(np.reshape(a, -1), (n,)) for a in raw)
    except ValueError:
        raise layer_error(layer, f"has a mean or variance that does not fit {n} channels") from None
    ones, zeros = np.ones(n, np.float32), np.zeros(n, np.float32)
    return _normalise(b, layer, x, (ones, zeros, mean, var), 0.0, f"Normalization {n}")


def _normalise(
    b: KBuilder,
    layer: KerasLayer,
    x: KRef,
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    eps: float,
    detail: str,
) -> KRef:
    """An inference BatchNorm over the channels of a map or the values of a vector."""
    n = x.shape[0]
    gamma, beta, mean, var = arrays
    if x.perm is not None:
        gamma, beta, mean, var = (a[x.perm] for a in (gamma, beta, mean, var))
    bn = make(layer, BatchNorm2D, n, eps)
    load(layer, bn, {"gamma": gamma, "beta": beta, "running_mean": mean, "running_var": var})
    if len(x.shape) == 3:
        b.entry(layer, "mapped", f"{detail}, inference statistics")
        return b.emit(layer, bn, [x])
    if len(x.shape) != 1:
        raise layer_error(layer, f"reads a tensor of shape {x.shape}")
    m = b.emit(layer, Reshape((n, 1, 1)), [x], "/as_map")
    y = b.emit(layer, bn, [m])
    out = b.emit(layer, Reshape((n,)), [y], "/as_vector")
    b.transformed(layer, f"{detail} on a vector", f"{layer.cls} on a vector run as a 1×1 map")
    return KRef(out.name, out.shape, x.perm, x.flat_of)


def dropout(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    x = xs[0]
    if layer.cls == "Dropout":
        rate = float(layer.config.get("rate", 0.5))
        ref = b.emit(layer, make(layer, Dropout, rate), [x])
        b.entry(layer, "mapped", f"Dropout {rate:g} (identity when exploring)")
        return KRef(ref.name, ref.shape, x.perm, x.flat_of)
    if layer.cls == "SpatialDropout2D":
        rate = float(layer.config.get("rate", 0.5))
        ref = b.emit(layer, make(layer, Dropout, rate), [x])
        b.transformed(
            layer,
            f"Dropout {rate:g}",
            "SpatialDropout2D as Dropout of single values (identical at inference)",
        )
        return KRef(ref.name, ref.shape, x.perm, x.flat_of)
    b.entry(layer, "transformed", "identity at inference: left out")
    return x


def _activation_layer(b: KBuilder, layer: KerasLayer, x: KRef, name: str, detail: str) -> KRef:
    b.entry(layer, "mapped", detail)
    return apply_activation(b, layer, x, name, suffix="")


def activation(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    name = activation_name(layer, layer.config.get("activation"))
    if name == "linear":
        b.entry(layer, "transformed", "linear: identity, left out")
        return xs[0]
    return _activation_layer(b, layer, xs[0], name, name)


def _keep(
    b: KBuilder, layer: KerasLayer, x: KRef, engine: object, detail: str, suffix: str = ""
) -> KRef:
    ref = b.emit(layer, engine, [x], suffix)  # type: ignore[arg-type]
    b.entry(layer, "mapped", detail)
    return KRef(ref.name, ref.shape, x.perm, x.flat_of)


def relu_layer(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    cfg, x = layer.config, xs[0]
    top = cfg.get("max_value")
    slope = float(cfg.get("negative_slope", 0.0) or 0.0)
    if float(cfg.get("threshold", 0.0) or 0.0) != 0.0:
        raise layer_error(layer, "has a non-zero threshold; this app maps ReLU thresholds of 0")
    if slope == 0.0:
        engine = Activation("relu") if top is None else Clip(0.0, float(top))
        return _keep(
            b, layer, x, engine, "ReLU" if top is None else f"ReLU max {top} as Clip(0, {top})"
        )
    leaky = _keep(
        b, layer, x, Activation("leaky_relu", negative_slope=slope), f"leaky ReLU {slope:g}"
    )
    if top is None:
        return leaky
    ref = b.emit(layer, Clip(None, float(top)), [leaky], "/max")
    return KRef(ref.name, ref.shape, x.perm, x.flat_of)


def leaky_relu(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    cfg = layer.config
    slope = float(cfg.get("negative_slope", cfg.get("alpha", 0.3)))
    return _keep(
        b, layer, xs[0], Activation("leaky_relu", negative_slope=slope), f"leaky ReLU {slope:g}"
    )


def elu(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    alpha = float(layer.config.get("alpha", 1.0))
    return _keep(b, layer, xs[0], Activation("elu", alpha=alpha), f"ELU {alpha:g}")


def prelu(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    x = xs[0]
    if len(weights) != 1:
        raise layer_error(layer, f"has {len(weights)} weights; PReLU has one (alpha)")
    alpha = weights[0]
    if len(x.shape) == 3:
        c, h, w = x.shape
        a = np.broadcast_to(alpha, (h, w, c)) if alpha.ndim == 3 else None
        if a is None or not np.all(a == a[:1, :1, :]):
            raise layer_error(
                layer, "has a different slope per pixel; this app maps one per channel"
            )
        per_channel = a[0, 0]
    else:
        per_channel = np.broadcast_to(alpha.reshape(-1), x.shape)
        if x.perm is not None:
            per_channel = per_channel[x.perm]
    n = 1 if np.all(per_channel == per_channel[0]) else per_channel.size
    engine = make(layer, PReLU, n)
    load(layer, engine, {"weight": per_channel[:n]})
    return _keep(b, layer, x, engine, f"PReLU ({n} slope{'s' if n > 1 else ''})")


def zero_padding(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    check_channels_last(layer)
    need_map(layer, xs[0])
    p = layer.config.get("padding", 1)
    try:
        if isinstance(p, int):
            raw = [p, p, p, p]
        elif all(isinstance(v, int) for v in p):
            raw = [p[0], p[0], p[1], p[1]]
        else:
            raw = [p[0][0], p[0][1], p[1][0], p[1][1]]
        pads = tuple(int(v) for v in raw)
    except (TypeError, IndexError, ValueError):
        raise layer_error(layer, f"has padding {p!r}, which this app cannot read") from None
    ref = b.emit(layer, make(layer, Pad2D, pads), xs[:1])
    b.entry(layer, "mapped", f"Pad2D {pads} (top, bottom, left, right)")
    return ref


def affine(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    """Rescaling inside the model (the first one becomes preprocessing instead): a
    BatchNorm with mean 0 and variance 1 − eps computes exactly ``x·scale + offset``."""
    c, _, _ = need_map(layer, xs[0])
    scale = np.broadcast_to(
        np.asarray(layer.config.get("scale", 1.0), np.float32).reshape(-1), (c,)
    )
    offset = np.broadcast_to(
        np.asarray(layer.config.get("offset", 0.0), np.float32).reshape(-1), (c,)
    )
    eps = 1e-3
    bn = make(layer, BatchNorm2D, c, eps)
    load(
        layer,
        bn,
        {
            "gamma": scale,
            "beta": offset,
            "running_mean": np.zeros(c),
            "running_var": np.full(c, 1 - eps),
        },
    )
    b.transformed(
        layer,
        "x·scale + offset as a BatchNorm",
        "Rescaling inside the model as a BatchNorm with mean 0 and variance 1 − eps",
    )
    return b.emit(layer, bn, xs[:1])
