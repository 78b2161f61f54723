"""The fully connected (dense) op and the flatten that feeds it.

``linear(x, weight, bias)`` computes ``x @ weight.T + bias`` exactly like
``torch.nn.functional.linear``: ``x`` is ``(N, in)`` (or ``(in,)``, or any ``(..., in)``),
``weight`` is ``(out, in)`` (one row per output neuron, torch's layout, so weights can be
compared with torch directly) and ``bias`` is ``(out,)`` or ``None``.

``flatten(x, start_dim=1)`` turns ``(N, C, H, W)`` maps into ``(N, C·H·W)`` rows in C order
(channel, then row, then column), the order torch's ``nn.Flatten`` uses.

Both come as ``F`` / ``F_forward -> (out, ctx)`` / ``F_backward(grad_out, ctx)``.

Import note: the package re-exports the *function* ``linear``, which shadows this module's
attribute on ``cnn_explorer.engine`` once the package is loaded, so
``from cnn_explorer.engine import linear`` gives the function. To reach the module's other
names write ``from cnn_explorer.engine.linear import linear_forward, flatten, ...``.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np

from cnn_explorer.engine._args import as_float, result_dtype
from cnn_explorer.engine.errors import ShapeError

Ctx: TypeAlias = tuple[Any, ...]
"""Opaque state handed from a ``*_forward`` to its ``*_backward``."""

_ANY_RANK_FROM_1 = range(1, 65)


def _check_linear(
    x: object, weight: object, bias: object | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Convert and validate the three linear arguments; raise ShapeError naming the sizes."""
    xa = as_float(x, "linear input", _ANY_RANK_FROM_1)
    wa = as_float(weight, "linear weight", (2,))
    out_features, in_features = wa.shape
    if xa.shape[-1] != in_features:
        raise ShapeError(
            f"linear: the input has {xa.shape[-1]} features per sample (shape {xa.shape}) but "
            f"the weight {wa.shape} expects {in_features}: set the layer's input size to "
            f"{xa.shape[-1]}, or flatten/resize the input to {in_features} features"
        )
    ba = None
    if bias is not None:
        ba = as_float(bias, "linear bias", (1,))
        if ba.shape[0] != out_features:
            raise ShapeError(
                f"linear: the bias has {ba.shape[0]} values but the weight {wa.shape} has "
                f"{out_features} outputs: give one bias per output ({out_features})"
            )
    return xa, wa, ba


def _linear(xa: np.ndarray, wa: np.ndarray, ba: np.ndarray | None) -> np.ndarray:
    """``xa @ wa.T (+ ba)`` in the common float dtype; shape ``(..., out)``."""
    dtype = result_dtype(xa, wa, ba)
    out = np.matmul(xa.astype(dtype, copy=False), wa.astype(dtype, copy=False).T)
    if ba is not None:
        out += ba.astype(dtype, copy=False)
    return out


def linear(x: object, weight: object, bias: object | None = None) -> np.ndarray:
    """Dense layer: ``(N, in)`` · ``(out, in)``ᵀ + ``(out,)`` → ``(N, out)``.

    Any leading shape works (``(in,)`` → ``(out,)``), as in torch. Raises ShapeError when
    the feature counts of input, weight and bias disagree.
    """
    return _linear(*_check_linear(x, weight, bias))


def linear_forward(x: object, weight: object, bias: object | None = None) -> tuple[np.ndarray, Ctx]:
    """Forward pass; ctx keeps ``x`` and ``weight`` (both are needed for the gradients)."""
    xa, wa, ba = _check_linear(x, weight, bias)
    out = _linear(xa, wa, ba)
    bias_dtype = None if ba is None else ba.dtype
    return out, (xa, wa, bias_dtype, out.shape)


def linear_backward(grad_out: object, ctx: Ctx) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients ``(grad_input, grad_weight, grad_bias or None)`` for ``grad_out`` ``(..., out)``.

    With y = x Wᵀ + b: dL/dx = g W, dL/dW = gᵀ x (summed over all samples), dL/db = Σ g.
    Each gradient has the shape and dtype of its argument.
    """
    xa, wa, bias_dtype, out_shape = ctx
    grad = as_float(grad_out, "grad_out", _ANY_RANK_FROM_1)
    if grad.shape != out_shape:
        raise ShapeError(
            f"linear: grad_out has shape {grad.shape} but the output had shape {out_shape}: "
            "pass the gradient of the loss with respect to this op's output"
        )
    dtype = result_dtype(xa, wa, grad)
    g2 = grad.reshape(-1, out_shape[-1]).astype(dtype, copy=False)
    x2 = xa.reshape(-1, xa.shape[-1]).astype(dtype, copy=False)
    grad_input = (g2 @ wa.astype(dtype, copy=False)).reshape(xa.shape).astype(xa.dtype, copy=False)
    grad_weight = (g2.T @ x2).astype(wa.dtype, copy=False)
    grad_bias = None if bias_dtype is None else g2.sum(axis=0).astype(bias_dtype, copy=False)
    return grad_input, grad_weight, grad_bias


def _check_start_dim(shape: tuple[int, ...], start_dim: int) -> int:
    """Normalise a (possibly negative) ``start_dim`` for an array of ``shape``."""
    ndim = len(shape)
    dim = start_dim + ndim if start_dim < 0 else start_dim
    if not 0 <= dim < max(ndim, 1):
        raise ShapeError(
            f"flatten: start_dim {start_dim} is out of range for a {ndim}-D input "
            f"with shape {shape}: use a dimension between {-ndim} and {ndim - 1}"
        )
    return dim


def flatten(x: object, start_dim: int = 1) -> np.ndarray:
    """Merge all axes from ``start_dim`` on: ``(N, C, H, W)`` → ``(N, C·H·W)`` (a view if
    possible). C order, so feature ``c·H·W + h·W + w`` is channel c, row h, column w."""
    arr = as_float(x, "flatten input", _ANY_RANK_FROM_1)
    dim = _check_start_dim(arr.shape, start_dim)
    return arr.reshape(*arr.shape[:dim], -1)


def flatten_forward(x: object, start_dim: int = 1) -> tuple[np.ndarray, Ctx]:
    """Flatten forward; ctx keeps only the input shape."""
    arr = as_float(x, "flatten input", _ANY_RANK_FROM_1)
    return flatten(arr, start_dim), (arr.shape,)


def flatten_backward(grad_out: object, ctx: Ctx) -> np.ndarray:
    """Reshape the ``(N, features)`` gradient back to the input's ``(N, C, H, W)`` shape."""
    (shape,) = ctx
    grad = as_float(grad_out, "grad_out", _ANY_RANK_FROM_1)
    if grad.size != int(np.prod(shape)):
        raise ShapeError(
            f"flatten: grad_out has {grad.size} values (shape {grad.shape}) but the input "
            f"{shape} had {int(np.prod(shape))}: pass the gradient of the flattened output"
        )
    return grad.reshape(shape)


__all__ = [
    "flatten",
    "flatten_backward",
    "flatten_forward",
    "linear",
    "linear_backward",
    "linear_forward",
]
