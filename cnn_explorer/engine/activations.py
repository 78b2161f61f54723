"""Elementwise activation functions with their backward passes, and a registry for layers/UI.

Every function ``F`` here works on an array of *any* shape (``(N, C, H, W)`` maps,
``(N, features)`` dense outputs, a single number) and comes in three forms, as in the
contract shared by all ops:

- ``F(x) -> out``: inference only, saves nothing;
- ``F_forward(x) -> (out, ctx)``: ``ctx`` keeps what the backward needs (input or output);
- ``F_backward(grad_out, ctx) -> grad_input``: ``grad_out`` has the shape of ``out``.

Semantics follow ``torch.nn.functional`` so torch serves as the test oracle. dtype rule:
float64 stays float64, every other real dtype computes in float32.

Speed notes (measured on (32, 16, 28, 28) float32): ``np.maximum(x, zeros_like(x))`` is
~2× faster than ``np.maximum(x, 0)`` (same-shape operands hit NumPy's SIMD loop without a
scalar broadcast), and ``grad * mask`` is ~10× faster than ``np.where(mask, grad, 0)``.

:data:`ACTIVATIONS` maps a kind name to its ``(forward, backward)`` pair (used by the
``Activation`` layer); :func:`describe_activation` writes one cell's arithmetic for the UI.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, TypeAlias

import numpy as np

from cnn_explorer.engine._args import as_float
from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.engine.geometry import fmt_number

Ctx: TypeAlias = tuple[Any, ...]
"""Opaque state handed from a ``*_forward`` to its ``*_backward`` (arrays and settings)."""

_ANY_RANK = range(65)  # activations accept scalars and arrays of any rank


def _as_input(x: object) -> np.ndarray:
    """Any-shape real array as float32/float64 (no copy when already float32/float64)."""
    return as_float(x, "input", _ANY_RANK)


def _as_grad(grad_out: object, like: np.ndarray) -> np.ndarray:
    """Check that the upstream gradient has the forward output's shape; return it as float."""
    grad = as_float(grad_out, "grad_out", _ANY_RANK)
    if grad.shape != like.shape:
        raise ShapeError(
            f"grad_out has shape {grad.shape} but the forward output had shape {like.shape}: "
            "pass the gradient of the loss with respect to this op's output"
        )
    return grad


def _stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^(−x)) without overflow: only ever exponentiate numbers ≤ 0.

    σ(x) = e^min(x, 0) / (1 + e^(−|x|)) is 1/(1 + e^(−x)) for x ≥ 0 and e^x/(1 + e^x) for
    x < 0, both exact and accurate in the tails, with no branch (``np.where`` and boolean
    indexing are ~5× slower than these four ufuncs). NaN propagates (as in torch).
    """
    out = np.zeros_like(x)
    np.minimum(x, out, out=out)
    np.exp(out, out=out)  # numerator e^min(x, 0)
    denominator = np.empty_like(x)  # explicit buffers keep 0-d inputs arrays, too
    np.abs(x, out=denominator)
    np.negative(denominator, out=denominator)
    np.exp(denominator, out=denominator)
    denominator += 1.0
    out /= denominator  # in place: big temporaries cost page faults, ~10× the arithmetic
    return out


def _put(out: np.ndarray, mask: np.ndarray, values: np.ndarray | float) -> np.ndarray:
    """``out[mask] = values[mask]`` in place, skipped when ``mask`` is all False (cheap for
    the usual sparse masks such as softplus's linear region)."""
    if mask.any():
        out[mask] = values[mask] if isinstance(values, np.ndarray) else values
    return out


# --------------------------------------------------------------------------------------
# ReLU
# --------------------------------------------------------------------------------------


def relu(x: object) -> np.ndarray:
    """ReLU(x) = max(0, x), same shape as ``x``. NaN stays NaN (as in torch)."""
    arr = _as_input(x)
    out = np.zeros_like(arr)
    np.maximum(arr, out, out=out)  # same-shape operands: the fast SIMD path
    return out


def relu_forward(x: object) -> tuple[np.ndarray, Ctx]:
    """ReLU forward; the ctx keeps the mask "not out ≤ 0" (1 byte per element), which is
    ``out > 0`` except that NaN passes its gradient through, as in torch."""
    out = relu(x)
    return out, (np.asarray(~(out <= 0)),)


def relu_backward(grad_out: object, ctx: Ctx) -> np.ndarray:
    """dReLU/dx is 1 where x > 0 and 0 elsewhere (0 at x = 0, like torch)."""
    (mask,) = ctx
    grad = _as_grad(grad_out, mask)
    return np.asarray(grad * mask)


# --------------------------------------------------------------------------------------
# Leaky ReLU
# --------------------------------------------------------------------------------------


def leaky_relu(x: object, negative_slope: float = 0.01) -> np.ndarray:
    """LeakyReLU(x) = x for x > 0, negative_slope·x otherwise; same shape as ``x``.

    Computed as max(x, s·x) when s ≤ 1 and min(x, s·x) when s > 1: both pick the right
    branch on each side of 0 and avoid the slow ``np.where``.
    """
    arr = _as_input(x)
    slope = float(negative_slope)
    scaled = np.empty_like(arr)
    with np.errstate(over="ignore", invalid="ignore"):
        np.multiply(arr, arr.dtype.type(slope), out=scaled)
    pick = np.maximum if slope <= 1.0 else np.minimum
    return pick(arr, scaled, out=scaled)


def leaky_relu_forward(x: object, negative_slope: float = 0.01) -> tuple[np.ndarray, Ctx]:
    """Leaky ReLU forward; ctx keeps the mask ``x > 0`` and the slope."""
    arr = _as_input(x)
    return leaky_relu(arr, negative_slope), (np.asarray(arr > 0), float(negative_slope))


def leaky_relu_backward(grad_out: object, ctx: Ctx) -> np.ndarray:
    """Gradient is grad_out where x > 0 and negative_slope·grad_out elsewhere."""
    mask, slope = ctx
    grad = _as_grad(grad_out, mask)
    scale = mask.astype(grad.dtype)  # 1 where x > 0, else 0 ...
    scale *= grad.dtype.type(1.0 - slope)
    scale += grad.dtype.type(slope)  # ... now 1 where x > 0, else slope
    return np.asarray(grad * scale)


# --------------------------------------------------------------------------------------
# Sigmoid, tanh, identity
# --------------------------------------------------------------------------------------


def sigmoid(x: object) -> np.ndarray:
    """σ(x) = 1 / (1 + e^(−x)) in (0, 1); numerically stable, never warns on overflow."""
    return _stable_sigmoid(_as_input(x))


def sigmoid_forward(x: object) -> tuple[np.ndarray, Ctx]:
    """Sigmoid forward; ctx keeps the output y because σ'(x) = y·(1 − y)."""
    out = sigmoid(x)
    return out, (out,)


def sigmoid_backward(grad_out: object, ctx: Ctx) -> np.ndarray:
    """grad_input = grad_out · y · (1 − y) with y = σ(x)."""
    (out,) = ctx
    grad = _as_grad(grad_out, out)
    return np.asarray(grad * (out * (1.0 - out)))


def tanh(x: object) -> np.ndarray:
    """tanh(x) in (−1, 1); NumPy's tanh never overflows."""
    return np.asarray(np.tanh(_as_input(x)))


def tanh_forward(x: object) -> tuple[np.ndarray, Ctx]:
    """tanh forward; ctx keeps the output y because tanh'(x) = 1 − y²."""
    out = tanh(x)
    return out, (out,)


def tanh_backward(grad_out: object, ctx: Ctx) -> np.ndarray:
    """grad_input = grad_out · (1 − y²) with y = tanh(x)."""
    (out,) = ctx
    grad = _as_grad(grad_out, out)
    return np.asarray(grad * (1.0 - out * out))


def identity(x: object) -> np.ndarray:
    """identity(x) = x (a copy, so callers may edit the result safely)."""
    return _as_input(x).copy()


def identity_forward(x: object) -> tuple[np.ndarray, Ctx]:
    """Identity forward; ctx keeps only the shape."""
    out = identity(x)
    return out, (out.shape,)


def identity_backward(grad_out: object, ctx: Ctx) -> np.ndarray:
    """The gradient passes through unchanged (as a copy)."""
    (shape,) = ctx
    grad = _as_grad(grad_out, np.empty(shape, dtype=np.bool_))
    return grad.copy()


# --------------------------------------------------------------------------------------
# ELU, GELU (tanh approximation), softplus
# --------------------------------------------------------------------------------------


def elu(x: object, alpha: float = 1.0) -> np.ndarray:
    """ELU(x) = x for x > 0, α·(e^x − 1) otherwise.

    Branch-free as max(x, 0) + α·expm1(min(x, 0)): one side is always 0. ``expm1`` of a
    number ≤ 0 never overflows and stays accurate near 0.
    """
    arr = _as_input(x)
    zeros = np.zeros_like(arr)
    negative = np.expm1(np.minimum(arr, zeros)) * arr.dtype.type(alpha)
    return np.asarray(np.maximum(arr, zeros) + negative)


def elu_forward(x: object, alpha: float = 1.0) -> tuple[np.ndarray, Ctx]:
    """ELU forward; ctx keeps the input (the slope on the negative side is α·e^x)."""
    arr = _as_input(x)
    return elu(arr, alpha), (arr, float(alpha))


def elu_backward(grad_out: object, ctx: Ctx) -> np.ndarray:
    """grad_input = grad_out for x > 0, grad_out · α·e^x otherwise (torch's formula)."""
    arr, alpha = ctx
    grad = _as_grad(grad_out, arr)
    positive = np.asarray(~(arr <= 0))  # NaN counts as positive: its gradient passes (torch)
    slope = np.exp(np.fmin(arr, np.zeros_like(arr))) * arr.dtype.type(alpha)
    slope *= ~positive  # 0 on the positive side ...
    slope += positive  # ... then 1 there
    return np.asarray(grad * slope)


_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715


def _gelu_inner(arr: np.ndarray) -> np.ndarray:
    """√(2/π)·(x + 0.044715·x³); ``x*x*x`` is 300× faster than ``x**3`` in NumPy."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(_GELU_C * (arr + _GELU_A * (arr * arr * arr)), dtype=arr.dtype)


def gelu_tanh(x: object) -> np.ndarray:
    """GELU with the tanh approximation (torch ``F.gelu(x, approximate="tanh")``):
    0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).

    Not the exact erf form (torch's default): NumPy has no vectorised erf, and the two
    differ by < 1e-3 everywhere, which no picture in the app can show.
    """
    arr = _as_input(x)
    with np.errstate(invalid="ignore"):
        return np.asarray(0.5 * arr * (1.0 + np.tanh(_gelu_inner(arr))))


def gelu_tanh_forward(x: object) -> tuple[np.ndarray, Ctx]:
    """GELU (tanh approximation) forward; ctx keeps the input."""
    arr = _as_input(x)
    return gelu_tanh(arr), (arr,)


def gelu_tanh_backward(grad_out: object, ctx: Ctx) -> np.ndarray:
    """d/dx [0.5·x·(1 + t)] = 0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²),
    with t = tanh(√(2/π)·(x + 0.044715·x³))."""
    (arr,) = ctx
    grad = _as_grad(grad_out, arr)
    t = np.tanh(_gelu_inner(arr), out=np.empty_like(arr))
    with np.errstate(over="ignore", invalid="ignore"):
        # in place: each fresh full-size temporary costs page faults worth ~10× its arithmetic
        inner_slope = np.multiply(arr, arr, out=np.empty_like(arr))
        inner_slope *= 3.0 * _GELU_A * _GELU_C
        inner_slope += _GELU_C  # √(2/π)·(1 + 3·0.044715·x²)
        slope = np.multiply(t, t, out=np.empty_like(arr))
        np.subtract(1.0, slope, out=slope)
        slope *= arr
        slope *= inner_slope
        t += 1.0
        slope += t
        slope *= 0.5  # 0.5·(1 + t) + 0.5·x·(1 − t²)·inner_slope
    # for huge |x|, (1 − t²) = 0 times x² = inf gives NaN; the true slope there is 1 or 0
    _put(slope, np.isnan(slope) & ~np.isnan(arr), (arr > 0).astype(slope.dtype))
    return np.asarray(grad * slope)


def softplus(x: object, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    """Softplus(x) = (1/β)·log(1 + e^(β·x)), a smooth ReLU; exactly x where β·x > threshold,
    as torch. log(1 + e^z) = max(z, 0) + log1p(e^(−|z|)) never overflows (and is 10× faster
    than ``np.logaddexp``)."""
    arr = _as_input(x)
    with np.errstate(over="ignore", invalid="ignore"):
        bx = np.asarray(arr * arr.dtype.type(beta))
        smooth = np.maximum(bx, np.zeros_like(bx)) + np.log1p(np.exp(-np.abs(bx)))
        out = np.asarray(smooth / arr.dtype.type(beta), dtype=arr.dtype)
    return _put(out, bx > threshold, arr)


def softplus_forward(
    x: object, beta: float = 1.0, threshold: float = 20.0
) -> tuple[np.ndarray, Ctx]:
    """Softplus forward; ctx keeps the input and the settings."""
    arr = _as_input(x)
    return softplus(arr, beta, threshold), (arr, float(beta), float(threshold))


def softplus_backward(grad_out: object, ctx: Ctx) -> np.ndarray:
    """grad_input = grad_out · σ(β·x), or grad_out where β·x > threshold (the linear part)."""
    arr, beta, threshold = ctx
    grad = _as_grad(grad_out, arr)
    with np.errstate(over="ignore", invalid="ignore"):
        bx = np.asarray(arr * arr.dtype.type(beta))
    slope = _put(_stable_sigmoid(bx), bx > threshold, 1.0)
    return np.asarray(grad * slope)


# --------------------------------------------------------------------------------------
# Registry and one-cell explanations
# --------------------------------------------------------------------------------------


class ActivationFns(NamedTuple):
    """A ``(forward, backward)`` pair: ``forward(x) -> (out, ctx)``, ``backward(g, ctx)``.

    A NamedTuple so callers may unpack it (``fwd, bwd = ACTIVATIONS[kind]``) or use names.
    Settings such as ``negative_slope`` go to ``forward`` as keyword arguments.
    """

    forward: Callable[..., tuple[np.ndarray, Ctx]]
    backward: Callable[[object, Ctx], np.ndarray]


ACTIVATIONS: dict[str, ActivationFns] = {
    "relu": ActivationFns(relu_forward, relu_backward),
    "leaky_relu": ActivationFns(leaky_relu_forward, leaky_relu_backward),
    "sigmoid": ActivationFns(sigmoid_forward, sigmoid_backward),
    "tanh": ActivationFns(tanh_forward, tanh_backward),
    "identity": ActivationFns(identity_forward, identity_backward),
    "elu": ActivationFns(elu_forward, elu_backward),
    "gelu_tanh": ActivationFns(gelu_tanh_forward, gelu_tanh_backward),
    "softplus": ActivationFns(softplus_forward, softplus_backward),
}
"""Every activation kind by name → its ``(forward, backward)`` pair."""

ACTIVATION_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "identity": identity,
    "elu": elu,
    "gelu_tanh": gelu_tanh,
    "softplus": softplus,
}
"""Every activation kind by name → its inference-only function ``F(x, **settings)``."""

ACTIVATION_LABELS: dict[str, str] = {
    "relu": "ReLU",
    "leaky_relu": "Leaky ReLU",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "identity": "Identity",
    "elu": "ELU",
    "gelu_tanh": "GELU (tanh approx.)",
    "softplus": "Softplus",
}
"""Human names for menus and explanations, in menu order."""


def _check_kind(kind: str) -> str:
    """Return ``kind`` if it names an activation, else raise ShapeError listing the choices."""
    if kind not in ACTIVATIONS:
        raise ShapeError(f"unknown activation {kind!r}: choose one of {', '.join(ACTIVATIONS)}")
    return kind


def apply_activation_scalar(kind: str, value: float, **settings: float) -> float:
    """f(value) for one number, as a Python float (float64 arithmetic), e.g. for a tooltip."""
    fn = ACTIVATION_FUNCTIONS[_check_kind(kind)]
    return float(fn(np.float64(value), **settings))


def _formula(kind: str, v: str, x: float, settings: dict[str, float]) -> str:
    """The middle part of an explanation: the formula with the user's number ``v`` in it.

    A negative number inside a product or a power is bracketed: ``0.01 × (−2)``, ``e^(−2)``.
    """
    p = f"({v})" if x < 0 else v
    slope = settings.get("negative_slope", 0.01)
    alpha = settings.get("alpha", 1.0)
    beta = settings.get("beta", 1.0)
    alpha_times = "" if alpha == 1.0 else f"{fmt_number(alpha)} × "
    formulas = {
        "relu": f"max(0, {v})",
        "leaky_relu": v if x > 0 else f"{fmt_number(slope)} × {p}",
        "sigmoid": f"1 / (1 + e^(−{v}))" if x >= 0 else f"1 / (1 + e^{fmt_number(-x)})",
        "tanh": f"tanh({v})",
        "identity": v,
        "elu": v if x > 0 else f"{alpha_times}(e^{p} − 1)",
        "gelu_tanh": f"0.5 × {p} × (1 + tanh(√(2/π) × ({v} + 0.044715 × {p}³)))",
        "softplus": (
            f"ln(1 + e^{p})"
            if beta == 1.0
            else f"ln(1 + e^({fmt_number(beta)} × {p})) / {fmt_number(beta)}"
        ),
    }
    return formulas[kind]


def describe_activation(kind: str, x: float, **settings: float) -> str:
    """One cell's arithmetic as text, e.g. ``"ReLU(−2) = max(0, −2) = 0"``.

    ``settings`` are the activation's keyword arguments (``negative_slope=0.1``, ...).
    Numbers are shown with at most 4 significant digits and a real minus sign.
    """
    _check_kind(kind)
    x = float(x)
    v = fmt_number(x)
    result = fmt_number(apply_activation_scalar(kind, x, **settings))
    middle = _formula(kind, v, x, settings)
    label = ACTIVATION_LABELS[kind].split(" (")[0]
    if middle == v:  # identity, or the positive side of leaky ReLU / ELU
        return f"{label}({v}) = {result}"
    return f"{label}({v}) = {middle} = {result}"


__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_FUNCTIONS",
    "ACTIVATION_LABELS",
    "ActivationFns",
    "apply_activation_scalar",
    "describe_activation",
    "elu",
    "elu_backward",
    "elu_forward",
    "gelu_tanh",
    "gelu_tanh_backward",
    "gelu_tanh_forward",
    "identity",
    "identity_backward",
    "identity_forward",
    "leaky_relu",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "relu",
    "relu_backward",
    "relu_forward",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_forward",
    "softplus",
    "softplus_backward",
    "softplus_forward",
    "tanh",
    "tanh_backward",
    "tanh_forward",
]
