"""Shared argument normalisation and validation for every op and layer.

Why one module: the user types kernel sizes, strides and paddings into a GUI, so every op
must accept the same spellings (``3``, ``(3, 5)``, ``"same"``) and reject the same bad
values with the same kind of message (:class:`ShapeError` naming the numbers and a fix).
Ops (conv, pool, activations, linear, losses) and layers all call these helpers instead of
re-implementing the checks.

Conventions:
- A *pair* is ``(height, width)``.
- A *padding4* is ``(top, bottom, left, right)``, the order of ``(H before, H after,
  W before, W after)``. (Note: ``torch.nn.functional.pad`` takes ``(left, right, top,
  bottom)``; we use the reading order of an image instead.)
- Arrays are ``(N, C, H, W)``; ``(C, H, W)`` is one image.
"""

from __future__ import annotations

import numbers
import threading
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np

from cnn_explorer.engine.errors import ShapeError

IntOrPair: TypeAlias = int | tuple[int, int] | Sequence[int]
PaddingSpec: TypeAlias = int | str | Sequence[int]
Pair: TypeAlias = tuple[int, int]
Padding4: TypeAlias = tuple[int, int, int, int]

PADDING_MODES: tuple[str, ...] = ("zeros", "reflect", "replicate", "circular")


def _as_int(value: object, name: str) -> int:
    """Return ``value`` as a Python int; reject bools, non-integral floats and strings.

    Bools are rejected because ``True`` as a kernel size is almost always a bug, and
    ``3.0`` is accepted (a spin box may deliver floats) but ``2.5`` is not.
    """
    if isinstance(value, bool | np.bool_):
        raise ShapeError(f"{name} must be an integer, got the boolean {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(float(value))
    raise ShapeError(f"{name} must be an integer, got {value!r}")


def as_pair(value: IntOrPair, name: str, *, minimum: int | None = 1) -> Pair:
    """Normalise an int or a ``(h, w)`` pair to a ``(h, w)`` tuple of ints.

    ``minimum`` is the smallest legal value (1 for kernel, stride, dilation; 0 for a
    padding; ``None`` disables the check). Raises :class:`ShapeError` for anything else,
    with a message like "stride must be ≥ 1, got (0, 2): use a stride of at least 1".
    """
    if isinstance(value, str):
        raise ShapeError(f"{name} must be an integer or an (h, w) pair, got {value!r}")
    if isinstance(value, Sequence | np.ndarray):
        items = list(value)
        if len(items) != 2:
            raise ShapeError(
                f"{name} must be an integer or an (h, w) pair, got {len(items)} values {value!r}"
            )
        pair = (_as_int(items[0], name), _as_int(items[1], name))
    else:
        n = _as_int(value, name)
        pair = (n, n)
    if minimum is not None and min(pair) < minimum:
        shown = pair[0] if pair[0] == pair[1] else pair
        raise ShapeError(
            f"{name} must be ≥ {minimum}, got {shown}: use a {name} of at least {minimum}"
        )
    return pair


def same_padding(kernel: IntOrPair, dilation: IntOrPair = 1) -> Padding4:
    """Padding ``(top, bottom, left, right)`` that keeps H and W unchanged at stride 1.

    Torch semantics: the total padding per axis is ``d * (k - 1)``; when it is odd the
    extra row/column goes to the bottom/right.
    """
    kh, kw = as_pair(kernel, "kernel size")
    dh, dw = as_pair(dilation, "dilation")
    th, tw = dh * (kh - 1), dw * (kw - 1)
    return (th // 2, th - th // 2, tw // 2, tw - tw // 2)


def normalise_padding(
    padding: PaddingSpec,
    kernel: IntOrPair = 1,
    dilation: IntOrPair = 1,
    stride: IntOrPair = 1,
) -> Padding4:
    """Normalise any padding spelling to ``(top, bottom, left, right)`` non-negative ints.

    Accepted: ``int`` (all sides), ``(ph, pw)`` (top=bottom=ph, left=right=pw),
    ``(top, bottom, left, right)``, ``"valid"`` (no padding) and ``"same"`` (output size
    equals input size, see :func:`same_padding`; like torch it requires stride 1 because
    "same" is ambiguous for strided windows). ``kernel``/``dilation``/``stride`` are only
    used by ``"same"``.
    """
    if isinstance(padding, str):
        key = padding.lower()
        if key == "valid":
            return (0, 0, 0, 0)
        if key == "same":
            sh, sw = as_pair(stride, "stride")
            if (sh, sw) != (1, 1):
                raise ShapeError(
                    f"padding='same' needs stride 1, got stride {(sh, sw)}: use stride 1 "
                    "or give the padding as numbers"
                )
            return same_padding(kernel, dilation)
        raise ShapeError(
            f"padding must be an integer, a pair, 4 values, 'valid' or 'same', got {padding!r}"
        )
    if isinstance(padding, Sequence | np.ndarray) and len(padding) == 4:
        t, b, left, r = (_as_int(p, "padding") for p in padding)
        if min(t, b, left, r) < 0:
            raise ShapeError(
                f"padding must be ≥ 0 on every side, got (top, bottom, left, right) = "
                f"{(t, b, left, r)}: use 0 or more"
            )
        return (t, b, left, r)
    ph, pw = as_pair(padding, "padding", minimum=0)
    return (ph, ph, pw, pw)


def check_padding_mode(mode: str) -> str:
    """Validate a ``padding_mode`` (as ``nn.Conv2d``): zeros, reflect, replicate, circular."""
    if mode not in PADDING_MODES:
        raise ShapeError(f"padding_mode must be one of {', '.join(PADDING_MODES)}; got {mode!r}")
    return mode


def float_dtype(array: np.ndarray, name: str) -> np.dtype:
    """The float dtype an input computes in: float64 stays, other floats/ints/bools → float32.

    Complex, object, string and other non-numeric dtypes raise :class:`ShapeError`:
    a CNN on complex numbers or text is a user error we must explain, not compute.
    """
    kind = array.dtype.kind
    if kind == "f":
        return np.dtype(np.float64) if array.dtype == np.float64 else np.dtype(np.float32)
    if kind in "biu":
        return np.dtype(np.float32)
    what = {"c": "complex", "O": "object", "U": "string", "S": "bytes"}.get(kind, str(array.dtype))
    raise ShapeError(f"{name} must hold real numbers, got {what} values (dtype {array.dtype})")


def as_float(x: object, name: str, ndims: Sequence[int]) -> np.ndarray:
    """Convert ``x`` to a float32/float64 array whose ndim is one of ``ndims``.

    No copy when ``x`` already is a float32/float64 ndarray. Raises :class:`ShapeError`
    for a wrong ndim or a non-real dtype.
    """
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ShapeError(f"{name} is not a rectangular array of numbers: {exc}") from None
    dtype = float_dtype(arr, name)
    if arr.ndim not in ndims:
        wanted = " or ".join(f"{n}-D" for n in ndims)
        raise ShapeError(f"{name} must be {wanted}, got {arr.ndim}-D with shape {arr.shape}")
    return arr if arr.dtype == dtype else arr.astype(dtype)


def as_float_array(x: object, name: str = "input") -> tuple[np.ndarray, bool]:
    """Normalise an image batch: ``(C, H, W)`` or ``(N, C, H, W)`` → ``((N, C, H, W), unbatched)``.

    ``unbatched`` is True when a single ``(C, H, W)`` image was given; pass it to
    :func:`restore_batch` so the result has the same rank as the input (torch behaviour).
    ints/bools become float32, float32/float64 are kept (no copy), complex/object/str and
    other ranks raise :class:`ShapeError`.
    """
    arr = as_float(x, name, (3, 4))
    if arr.ndim == 3:
        return arr[np.newaxis], True
    return arr, False


def restore_batch(out: np.ndarray, unbatched: bool) -> np.ndarray:
    """Drop the batch axis again for an input that was given as one ``(C, H, W)`` image."""
    return out[0] if unbatched else out


def result_dtype(*arrays: np.ndarray | None) -> np.dtype:
    """``np.result_type`` of the float arrays given (``None`` entries are skipped).

    Mixing float32 input with float64 weights computes in float64, as NumPy would.
    """
    return np.result_type(*(a.dtype for a in arrays if a is not None))


# --- scratch buffers -----------------------------------------------------------------------
_SCRATCH = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """A reusable, *uninitialised* scratch array of ``shape`` for temporaries inside an op.

    Why: a fresh multi-megabyte temporary costs a page fault per 4 KiB page the first time
    it is touched, which is often slower than the arithmetic (measured: reusing buffers
    halves a training step). One growing byte buffer per ``(name, dtype)`` is kept per
    thread (the GUI thread and a training thread never share one), so memory stays bounded
    by the largest request seen for each name.

    Rules for callers: never return a scratch array (or a view of it) to the user, never
    keep one in a backward context, and use distinct names for buffers alive at the same
    time.
    """
    dtype = np.dtype(dtype)
    store: dict[tuple[str, str], np.ndarray] | None = getattr(_SCRATCH, "store", None)
    if store is None:
        store = _SCRATCH.store = {}
    count = 1
    for n in shape:
        count *= n
    key = (name, dtype.str)
    buf = store.get(key)
    if buf is None or buf.size < count:
        buf = store[key] = np.empty(max(count, 1), dtype)
    return buf[:count].reshape(shape)


def clear_scratch() -> None:
    """Free this thread's scratch buffers (e.g. after working on a very large image)."""
    _SCRATCH.store = {}


__all__ = [
    "PADDING_MODES",
    "IntOrPair",
    "Padding4",
    "PaddingSpec",
    "Pair",
    "as_float",
    "as_float_array",
    "as_pair",
    "check_padding_mode",
    "clear_scratch",
    "float_dtype",
    "normalise_padding",
    "restore_batch",
    "result_dtype",
    "same_padding",
    "scratch",
]
