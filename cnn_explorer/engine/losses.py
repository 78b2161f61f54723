"""Softmax, log-softmax and the cross-entropy loss, with their backward passes.

Semantics follow ``torch.nn.functional`` (``softmax(x, dim=-1)``, ``log_softmax(x, dim=-1)``,
``cross_entropy(logits (N, K), target (N,), reduction="mean")``) so torch is the oracle.

Stability: every exponential is taken of ``x − max(x)`` ≤ 0, so nothing overflows however
large the logits; ``log_softmax`` is computed as ``(x − m) − log Σ e^(x − m)`` rather than
``log(softmax(x))``, which would give ``log(0) = −inf`` for a very unlikely class.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import numpy as np

from cnn_explorer.engine._args import as_float
from cnn_explorer.engine.errors import ShapeError

Ctx: TypeAlias = tuple[Any, ...]
"""Opaque state handed from a ``*_forward`` to its ``*_backward``."""

Reduction: TypeAlias = Literal["mean", "sum"]

_RANK_1_UP = range(1, 65)


def _check_dim(shape: tuple[int, ...], dim: int, op: str) -> int:
    """Normalise a possibly negative ``dim`` for ``shape``; ShapeError if out of range."""
    ndim = len(shape)
    if not -ndim <= dim < ndim:
        raise ShapeError(
            f"{op}: dim {dim} is out of range for a {ndim}-D input with shape {shape}: "
            f"use a dimension between {-ndim} and {ndim - 1} (-1 = the last, the classes)"
        )
    return dim % ndim


def _check_grad(grad_out: object, shape: tuple[int, ...], op: str) -> np.ndarray:
    """The upstream gradient as a float array of the forward output's ``shape``."""
    grad = as_float(grad_out, "grad_out", range(65))
    if grad.shape != shape:
        raise ShapeError(
            f"{op}: grad_out has shape {grad.shape} but the output had shape {shape}: "
            "pass the gradient of the loss with respect to this op's output"
        )
    return grad


def _log_softmax(arr: np.ndarray, dim: int) -> np.ndarray:
    """``(x − m) − log Σ exp(x − m)`` along ``dim`` with ``m = max(x)``; same shape as ``arr``.

    A row holding +inf or only −inf gives NaN (as torch): inf − inf is undefined.
    """
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        shifted = arr - arr.max(axis=dim, keepdims=True)
        shifted -= np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
    return shifted


def log_softmax(x: object, dim: int = -1) -> np.ndarray:
    """log softmax along ``dim`` (default the last axis): ``x_i − log Σ_j e^(x_j)``.

    Shape as ``x``; e.g. ``log_softmax([0, ln 2]) = [ln(1/3), ln(2/3)]``.
    """
    arr = as_float(x, "log_softmax input", _RANK_1_UP)
    return _log_softmax(arr, _check_dim(arr.shape, dim, "log_softmax"))


def log_softmax_forward(x: object, dim: int = -1) -> tuple[np.ndarray, Ctx]:
    """log softmax forward; ctx keeps the output (its exp is the softmax the backward needs)."""
    arr = as_float(x, "log_softmax input", _RANK_1_UP)
    axis = _check_dim(arr.shape, dim, "log_softmax")
    out = _log_softmax(arr, axis)
    return out, (out, axis)


def log_softmax_backward(grad_out: object, ctx: Ctx) -> np.ndarray:
    """With y = log softmax(x): dL/dx = g − softmax(x) · Σ g (sum along ``dim``)."""
    out, axis = ctx
    grad = _check_grad(grad_out, out.shape, "log_softmax")
    with np.errstate(invalid="ignore", over="ignore"):
        return grad - np.exp(out) * grad.sum(axis=axis, keepdims=True)


def _softmax(arr: np.ndarray, dim: int) -> np.ndarray:
    """``e^(x − m) / Σ e^(x − m)`` along ``dim``; every entry in [0, 1], each slice sums to 1."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        e = np.exp(arr - arr.max(axis=dim, keepdims=True))
        e /= e.sum(axis=dim, keepdims=True)
    return e


def softmax(x: object, dim: int = -1) -> np.ndarray:
    """softmax along ``dim`` (default the last axis): ``e^(x_i) / Σ_j e^(x_j)``.

    Shape as ``x``; turns scores (logits) into probabilities. ``softmax([0, ln 2]) =
    [1/3, 2/3]``.
    """
    arr = as_float(x, "softmax input", _RANK_1_UP)
    return _softmax(arr, _check_dim(arr.shape, dim, "softmax"))


def softmax_forward(x: object, dim: int = -1) -> tuple[np.ndarray, Ctx]:
    """softmax forward; ctx keeps the output y (the Jacobian is diag(y) − y yᵀ)."""
    arr = as_float(x, "softmax input", _RANK_1_UP)
    axis = _check_dim(arr.shape, dim, "softmax")
    out = _softmax(arr, axis)
    return out, (out, axis)


def softmax_backward(grad_out: object, ctx: Ctx) -> np.ndarray:
    """With y = softmax(x): dL/dx = y · (g − Σ g·y) (sum along ``dim``)."""
    out, axis = ctx
    grad = _check_grad(grad_out, out.shape, "softmax")
    with np.errstate(invalid="ignore", over="ignore"):
        return out * (grad - (grad * out).sum(axis=axis, keepdims=True))


# --------------------------------------------------------------------------------------
# Cross-entropy
# --------------------------------------------------------------------------------------


def _check_target(target: object, n: int, k: int, unbatched: bool = False) -> np.ndarray:
    """Class indices as an int64 ``(N,)`` array, each in ``0 .. K−1``; else ShapeError.

    For one unbatched sample (``unbatched``) the target is a single class index (0-d).
    """
    try:
        t = np.asarray(target)
    except (ValueError, TypeError) as exc:
        raise ShapeError(f"cross_entropy: target is not an array of class indices: {exc}") from None
    if t.dtype.kind not in "iu":
        raise ShapeError(
            f"cross_entropy: target must hold integer class indices, got dtype {t.dtype}: "
            "give labels like [0, 2, 1] (use labels.astype(int))"
        )
    if unbatched and t.ndim == 0:
        t = t.reshape(1)
    if t.shape != (n,):
        raise ShapeError(
            f"cross_entropy: target has shape {t.shape} but the logits have {n} samples: "
            f"give one class index per sample, shape ({n},)"
        )
    bad = (t < 0) | (t >= k)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        value = int(t[first])
        fix = (
            "fix the label"
            if value < 0
            else f"fix the label or give the last layer {value + 1} outputs"
        )
        raise ShapeError(
            f"cross_entropy: target[{first}] = {value} is not a class: with {k} classes "
            f"the labels must be 0 .. {k - 1}; {fix}"
        )
    return t.astype(np.int64, copy=False)


def _check_logits(logits: object) -> tuple[np.ndarray, bool]:
    """Logits as ``(N, K)`` float (``(K,)`` → ``(1, K)``, unbatched); ShapeError if empty."""
    arr = as_float(logits, "cross_entropy logits", (1, 2))
    unbatched = arr.ndim == 1
    arr2 = arr[np.newaxis] if unbatched else arr
    if arr2.shape[0] == 0 or arr2.shape[1] == 0:
        raise ShapeError(
            f"cross_entropy: logits have shape {arr.shape}: need at least one sample and one class"
        )
    return arr2, unbatched


def _check_reduction(reduction: str) -> str:
    """Only the reductions that give one number: ``"mean"`` (torch's default) and ``"sum"``."""
    if reduction not in ("mean", "sum"):
        raise ShapeError(f"cross_entropy: reduction must be 'mean' or 'sum', got {reduction!r}")
    return reduction


def cross_entropy_forward(
    logits: object, target: object, reduction: Reduction = "mean"
) -> tuple[float, Ctx]:
    """Loss = −log softmax(logits)[target], averaged (``"mean"``) or summed over the batch.

    ``logits`` ``(N, K)`` (or ``(K,)`` with a scalar target, one sample); ``target`` ``(N,)``
    integer classes in ``0 .. K−1``. Returns a Python float and a ctx holding the softmax
    probabilities, because d loss / d logits = softmax − one_hot(target).
    """
    arr, unbatched = _check_logits(logits)
    n, k = arr.shape
    t = _check_target(target, n, k, unbatched)
    _check_reduction(reduction)
    lsm = _log_softmax(arr, 1)
    losses = -lsm[np.arange(n), t]
    loss = float(losses.mean() if reduction == "mean" else losses.sum())
    ctx = (np.exp(lsm), t, reduction, unbatched, arr.dtype)
    return loss, ctx


def cross_entropy(logits: object, target: object, reduction: Reduction = "mean") -> float:
    """Cross-entropy of ``logits`` ``(N, K)`` against class indices ``target`` ``(N,)``.

    Same as ``torch.nn.functional.cross_entropy`` without weights or label smoothing:
    mean (or sum) over the batch of −log softmax(logits)[target]. Returns a Python float.
    """
    return cross_entropy_forward(logits, target, reduction)[0]


def cross_entropy_backward(grad_out: float = 1.0, ctx: Ctx = ()) -> np.ndarray:
    """grad_logits = grad_out · (softmax(logits) − one_hot(target)) [/ N for "mean"].

    Shape and dtype of the logits (``(N, K)``, or ``(K,)`` for one unbatched sample).
    """
    if not ctx:
        raise ShapeError("cross_entropy_backward needs the ctx returned by cross_entropy_forward")
    probs, t, reduction, unbatched, dtype = ctx
    n = probs.shape[0]
    grad = probs.copy()
    grad[np.arange(n), t] -= 1.0
    scale = float(grad_out) / n if reduction == "mean" else float(grad_out)
    grad *= dtype.type(scale)
    return grad[0] if unbatched else grad


__all__ = [
    "cross_entropy",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "log_softmax",
    "log_softmax_backward",
    "log_softmax_forward",
    "softmax",
    "softmax_backward",
    "softmax_forward",
]
