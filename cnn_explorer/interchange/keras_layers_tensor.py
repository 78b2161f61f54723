"""Keras merges and tensor-shape layers (Add, Multiply, Concatenate, Reshape, Softmax), and
the table :data:`CONVERTERS` of every layer class the importer maps."""

from __future__ import annotations

import math

import numpy as np

from cnn_explorer.engine import Add, Concat, Mul, Reshape, Softmax
from cnn_explorer.interchange import keras_layers as kl
from cnn_explorer.interchange.keras_build import (
    KBuilder,
    KRef,
    layer_error,
    make,
    softmax_axis,
)
from cnn_explorer.interchange.keras_config import KerasLayer


def _same_order(layer: KerasLayer, xs: list[KRef]) -> np.ndarray | None:
    perms = [x.perm for x in xs]
    first = perms[0]
    for p in perms[1:]:
        same = p is None if first is None else p is not None and np.array_equal(p, first)
        if not same:
            raise layer_error(
                layer, "merges vectors flattened in different orders; this app cannot map it"
            )
    return first


def merge(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    if len(xs) < 2:
        raise layer_error(layer, f"merges {len(xs)} input; it needs two or more")
    ranks = {len(x.shape) for x in xs}
    if len(ranks) != 1:
        raise layer_error(
            layer,
            f"merges tensors of shapes {[x.shape for x in xs]}; this app merges tensors of "
            "the same rank",
        )
    perm = _same_order(layer, xs)
    engine = Add() if layer.cls == "Add" else Mul()
    ref = b.emit(layer, engine, xs)
    b.entry(layer, "mapped", f"{engine.describe()} of {len(xs)}")
    return KRef(ref.name, ref.shape, perm, xs[0].flat_of)


def concatenate(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    rank = len(xs[0].shape)
    if any(len(x.shape) != rank for x in xs) or rank not in (1, 3):
        raise layer_error(layer, f"joins tensors of shapes {[x.shape for x in xs]}")
    axis = int(layer.config.get("axis", -1))
    axis = axis + rank + 1 if axis < 0 else axis
    if rank == 3:
        engine_axis = {1: 2, 2: 3, 3: 1}.get(axis)
        what = {1: "channels", 2: "rows", 3: "columns"}.get(engine_axis or 0, "")
    else:
        engine_axis, what = (1, "features") if axis == 1 else (None, "")
    if engine_axis is None:
        raise layer_error(layer, f"joins along axis {layer.config.get('axis')!r}")
    perm = None
    if rank == 1 and any(x.perm is not None for x in xs):
        parts, offset = [], 0
        for x in xs:
            n = x.shape[0]
            parts.append((x.perm if x.perm is not None else np.arange(n)) + offset)
            offset += n
        perm = np.concatenate(parts)
    ref = b.emit(layer, make(layer, Concat, axis=engine_axis), xs)
    b.entry(layer, "mapped", f"Concat of {len(xs)} on {what}")
    return KRef(ref.name, ref.shape, perm)


def _target(layer: KerasLayer, size: int) -> tuple[int, ...]:
    raw = layer.config.get("target_shape")
    if not isinstance(raw, list | tuple) or not raw:
        raise layer_error(layer, f"has target shape {raw!r}")
    dims = [int(v) if v is not None else -1 for v in raw]
    if dims.count(-1) > 1 or any(d == 0 or d < -1 for d in dims):
        raise layer_error(layer, f"has target shape {tuple(raw)}")
    known = math.prod(d for d in dims if d != -1)
    if -1 in dims:
        if known == 0 or size % known:
            raise layer_error(layer, f"cannot reshape {size} values to {tuple(raw)}")
        dims[dims.index(-1)] = size // known
    if math.prod(dims) != size:
        raise layer_error(layer, f"cannot reshape {size} values to {tuple(raw)}")
    return tuple(dims)


def reshape(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    """Reshapes that keep values where the engine can follow them: an image to a vector
    (a Flatten), a vector to a vector, a vector back to the image it was flattened from,
    and a vector to an image with one channel or one pixel."""
    x = xs[0]
    size = math.prod(x.shape)
    target = _target(layer, size)
    if len(target) == 1:
        if len(x.shape) == 3:
            return kl.flatten(b, layer, xs, weights)
        b.entry(layer, "transformed", "vector to vector: nothing to do")
        return x
    if len(target) != 3:
        raise layer_error(
            layer, f"reshapes to {target}; this app maps vectors and (H, W, C) images"
        )
    h, w, c = target
    if x.shape == (c, h, w):
        b.entry(layer, "transformed", "same shape: nothing to do")
        return x
    if len(x.shape) == 1 and (
        x.flat_of == (c, h, w) or (x.perm is None and (c == 1 or h * w == 1))
    ):
        ref = b.emit(layer, make(layer, Reshape, (c, h, w)), [x])
        b.entry(layer, "mapped", f"Reshape to {c}×{h}×{w}")
        return ref
    raise layer_error(
        layer,
        f"reshapes {x.shape} values into a Keras (H, W, C) = {target} image, whose channel "
        "order the engine's (C, H, W) layout cannot follow",
    )


def softmax(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    x = xs[0]
    axis = softmax_axis(layer, x, layer.config.get("axis", -1))
    ref = b.emit(layer, Softmax(axis), [x])
    b.entry(layer, "mapped", f"Softmax over {'channels' if axis == 1 else f'axis {axis}'}")
    return KRef(ref.name, ref.shape, x.perm, x.flat_of)


def _unexpected(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    raise layer_error(layer, "appears inside the model; this app imports one input layer")


CONVERTERS: dict[str, kl.Converter] = {
    "InputLayer": _unexpected,
    "Conv2D": kl.conv2d,
    "Convolution2D": kl.conv2d,
    "DepthwiseConv2D": kl.depthwise_conv2d,
    "SeparableConv2D": kl.separable_conv2d,
    "SeparableConvolution2D": kl.separable_conv2d,
    "Dense": kl.dense,
    "Flatten": kl.flatten,
    "MaxPooling2D": kl.pooling,
    "MaxPool2D": kl.pooling,
    "AveragePooling2D": kl.pooling,
    "AvgPool2D": kl.pooling,
    "GlobalAveragePooling2D": kl.global_pooling,
    "GlobalAvgPool2D": kl.global_pooling,
    "GlobalMaxPooling2D": kl.global_pooling,
    "GlobalMaxPool2D": kl.global_pooling,
    "BatchNormalization": kl.batch_norm,
    "Normalization": kl.normalization,
    "Dropout": kl.dropout,
    "SpatialDropout2D": kl.dropout,
    "GaussianNoise": kl.dropout,
    "GaussianDropout": kl.dropout,
    "AlphaDropout": kl.dropout,
    "ActivityRegularization": kl.dropout,
    "Activation": kl.activation,
    "ReLU": kl.relu_layer,
    "LeakyReLU": kl.leaky_relu,
    "ELU": kl.elu,
    "PReLU": kl.prelu,
    "Softmax": softmax,
    "Add": merge,
    "Multiply": merge,
    "Concatenate": concatenate,
    "Reshape": reshape,
    "ZeroPadding2D": kl.zero_padding,
    "Rescaling": kl.affine,
}
"""Every Keras layer class the importer maps (Keras 2 aliases included)."""

SUPPORTED_LAYERS: tuple[str, ...] = tuple(sorted(CONVERTERS))
