"""A reusable central-difference gradient checker (float64) for ops, layers and networks.

Why: every backward in the engine is hand-written; comparing it with
``(f(x + ε) − f(x − ε)) / 2ε`` on every input entry catches sign, transpose, stride and
accumulation bugs without any oracle. The scalar that is differentiated is
``L = Σ out · g`` for a fixed random upstream gradient ``g``, so the analytic gradient is
exactly what ``backward(g, ctx)`` must return.

Use with the op contract (``F_forward(*inputs, **kw) -> (out, ctx)``,
``F_backward(grad_out, ctx) -> grads``)::

    check_op_gradients(conv2d_forward, conv2d_backward, [x, w, b], kwargs={"stride": 2})

with a layer (``forward(x, training=False)``, ``backward(grad) -> grad_input``,
``params``/``grads`` dicts)::

    check_layer_gradients(layer, x)

or with anything else through :func:`numerical_gradient`. Inputs are converted to float64;
keep them small (every entry costs two forward passes) and away from kinks (ReLU at 0,
max-pool ties), where the derivative is not defined.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

EPS = 1e-6
RTOL = 1e-5
ATOL = 1e-7


def numerical_gradient(f: Callable[[], float], array: np.ndarray, eps: float = EPS) -> np.ndarray:
    """dF/d``array`` by central differences; ``array`` is perturbed in place and restored.

    ``f`` takes no arguments and reads ``array`` (e.g. a closure over a layer's weights),
    so the same helper serves op inputs, layer parameters and whole networks.
    Shape and dtype of the result: those of ``array`` (which should be float64).
    """
    if array.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs a float64 array, got {array.dtype}")
    grad = np.zeros_like(array)
    flat = array.reshape(-1)  # a view: edits reach ``array``
    if not np.shares_memory(flat, array):
        raise ValueError("numerical_gradient needs a contiguous array it can perturb in place")
    grad_flat = grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        plus = float(f())
        flat[i] = saved - eps
        minus = float(f())
        flat[i] = saved
        grad_flat[i] = (plus - minus) / (2.0 * eps)
    return grad


def assert_gradient_close(
    analytic: np.ndarray,
    numeric: np.ndarray,
    name: str,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> None:
    """Assert ``analytic ≈ numeric`` elementwise; the message names the worst entry."""
    analytic = np.asarray(analytic, dtype=np.float64)
    if analytic.shape != numeric.shape:
        raise AssertionError(
            f"gradient of {name}: backward gave shape {analytic.shape}, expected {numeric.shape}"
        )
    err = np.abs(analytic - numeric)
    bound = atol + rtol * np.abs(numeric)
    if np.all(err <= bound):
        return
    worst = np.unravel_index(int(np.argmax(err - bound)), err.shape)
    raise AssertionError(
        f"gradient of {name} wrong at {tuple(int(i) for i in worst)}: backward "
        f"{analytic[worst]:.10g} vs numeric {numeric[worst]:.10g} "
        f"(max abs error {err.max():.3g}, {int(np.sum(err > bound))} of {err.size} entries off)"
    )


def _as_tuple(grads: Any) -> tuple[Any, ...]:
    """A backward returns one array or a tuple of arrays/None; always give a tuple."""
    return tuple(grads) if isinstance(grads, tuple | list) else (grads,)


def _upstream(out: Any, rng: np.random.Generator) -> Any:
    """A random upstream gradient shaped like ``out`` (a float for a scalar loss)."""
    if isinstance(out, float | int | np.floating):
        return float(rng.uniform(0.5, 1.5))
    return rng.standard_normal(np.shape(out))


def check_op_gradients(
    forward: Callable[..., tuple[Any, Any]],
    backward: Callable[[Any, Any], Any],
    inputs: Sequence[Any],
    kwargs: Mapping[str, Any] | None = None,
    *,
    wrt: Sequence[int] | None = None,
    seed: int = 0,
    eps: float = EPS,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> tuple[Any, ...]:
    """Check ``backward`` of an op against central differences, for each float input.

    ``inputs`` are positional arguments of ``forward``; float arrays are copied to float64,
    anything else (``None`` bias, integer targets) passes through untouched. The ``i``-th
    gradient returned by ``backward`` belongs to ``inputs[i]``; ``wrt`` restricts the check
    to some indices (default: every float array that has a gradient). Returns the
    analytic gradients so a test can check more.
    """
    kw = dict(kwargs or {})
    args = [
        np.array(a, dtype=np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
        for a in inputs
    ]
    out, ctx = forward(*args, **kw)
    grad_out = _upstream(out, np.random.default_rng(seed))
    analytic = _as_tuple(backward(grad_out, ctx))

    def loss() -> float:
        return float(np.sum(np.asarray(forward(*args, **kw)[0]) * grad_out))

    indices = wrt if wrt is not None else range(min(len(analytic), len(args)))
    for i in indices:
        arr = args[i]
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float64:
            continue
        if analytic[i] is None:
            raise AssertionError(f"backward gave no gradient for input {i}")
        numeric = numerical_gradient(loss, arr, eps)
        assert_gradient_close(analytic[i], numeric, f"input {i}", rtol, atol)
    return analytic


def check_layer_gradients(
    layer: Any,
    x: np.ndarray,
    *,
    seed: int = 0,
    eps: float = EPS,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> np.ndarray:
    """Check a layer's ``backward`` (input gradient) and its ``grads`` (one per param).

    The layer follows the contract: ``forward(x, training=False)``, ``backward(grad) ->
    grad_input``, ``params``/``grads`` dicts of arrays with matching keys. Parameters must
    already be float64 (build the layer with float64 weights). Returns the input gradient.
    """
    x = np.array(x, dtype=np.float64)
    if hasattr(layer, "zero_grad"):
        layer.zero_grad()  # layers *add* into ``grads``; start from 0
    out = layer.forward(x, training=False)
    grad_out = np.random.default_rng(seed).standard_normal(np.shape(out))
    grad_input = layer.backward(grad_out)
    param_grads = {name: np.array(g, dtype=np.float64) for name, g in layer.grads.items()}

    def loss() -> float:
        return float(np.sum(layer.forward(x, training=False) * grad_out))

    assert_gradient_close(grad_input, numerical_gradient(loss, x, eps), "input", rtol, atol)
    for name, param in layer.params.items():
        numeric = numerical_gradient(loss, param, eps)
        assert_gradient_close(param_grads[name], numeric, f"param {name!r}", rtol, atol)
    return np.asarray(grad_input)


def away_from_kinks(
    x: np.ndarray, kinks: Sequence[float] = (0.0,), margin: float = 1e-3
) -> np.ndarray:
    """Push entries of ``x`` at least ``margin`` away from each kink (e.g. ReLU's 0), so a
    central difference with a small ε never straddles a point without a derivative."""
    x = np.array(x, dtype=np.float64)
    for k in kinks:
        close = np.abs(x - k) < margin
        x[close] = k + np.where(x[close] >= k, margin, -margin) * 2.0
    return x
