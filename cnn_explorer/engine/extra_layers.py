"""Single-input layers that imported models need beyond the explorer's own set.

ONNX and torchvision models use explicit padding layers, global and adaptive average
pooling (the classifier head of ResNet/SqueezeNet/MobileNet), PReLU, ReLU6 (a clip),
softmax outputs and reshapes. Each is a :class:`~cnn_explorer.engine.layers.Layer` with
forward, backward, a per-image ``output_shape`` with clear ShapeErrors, ``describe``, a
JSON-safe ``config`` and a one-cell ``explain``; all are registered in ``LAYER_TYPES``.

Batch axis: maps are ``(N, C, H, W)`` or one image ``(C, H, W)``. Layers whose meaning
depends on *where* the batch axis is (:class:`Softmax`, :class:`Reshape`) set
``needs_batch_axis``: a Graph then always runs them batched. Alone (in a Network) they
take a 2-D or 4-D input as a batch and a 1-D or 3-D input as one sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from cnn_explorer.engine import conv as _conv
from cnn_explorer.engine import losses as _losses
from cnn_explorer.engine._args import check_padding_mode, normalise_padding
from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.engine.geometry import (
    AvgPoolExplanation,
    ElementwiseExplanation,
    Explanation,
    Term,
    Window,
    explain_elementwise_cell,
    fmt_number,
)
from cnn_explorer.engine.layers import LAYER_TYPES, Layer

Shape = tuple[int, ...]

# NaN and inf are legal data (reported, never errors): compute through them silently.
_COMPUTE_THROUGH = np.errstate(over="ignore", invalid="ignore")


def _dims(shape: Sequence[int]) -> str:
    return "×".join(str(int(s)) for s in shape)


def _channel_axis(x: np.ndarray) -> int:
    """Axis of the channels: 1 for a batch ``(N, C, …)`` (2-D or 4-D), else 0."""
    return 1 if x.ndim in (2, 4) else 0


def _as_map_batch(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """``(N, C, H, W)`` and whether one ``(C, H, W)`` image was given."""
    if x.ndim == 3:
        return x[np.newaxis], True
    if x.ndim != 4:
        raise ShapeError(f"expected a (C, H, W) map or an (N, C, H, W) batch, got {x.shape}")
    return x, False


# --------------------------------------------------------------------------------------
# Pad2D
# --------------------------------------------------------------------------------------


class Pad2D(Layer):
    """Pad the height and width of a map (``nn.ZeroPad2d``/``ReflectionPad2d``/…, ONNX
    ``Pad``): ``padding`` is ``(top, bottom, left, right)`` (or an int / ``(ph, pw)``);
    ``mode`` zeros (filled with ``value``), reflect, replicate or circular, exactly as
    :func:`~cnn_explorer.engine.conv.pad2d`. ``(C, H, W)`` → ``(C, H+t+b, W+l+r)``."""

    kind = "pad"

    def __init__(
        self,
        padding: int | Sequence[int] = 1,
        mode: str = "zeros",
        value: float = 0.0,
        *,
        name: str | None = None,
        enabled: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, enabled=enabled, trainable=trainable)
        self.padding4 = normalise_padding(padding)
        self.mode = check_padding_mode(mode)
        self.value = float(value)
        if self.value != 0.0 and self.mode != "zeros":
            raise ShapeError(f"a fill value only applies to mode 'zeros', not {self.mode!r}")

    def describe(self) -> str:
        t, b, left, r = self.padding4
        pad = str(t) if t == b == left == r else _dims(self.padding4)
        text = f"Pad {pad}"
        if self.mode != "zeros":
            text += f" {self.mode}"
        elif self.value != 0.0:
            text += f" with {fmt_number(self.value)}"
        return text

    def _window(self) -> Window:
        # A 1×1 window over the padded frame: output cell (r, q) reads input (r − t, q − l),
        # or the cell a padding position copies (reflect/replicate/circular).
        return Window((1, 1), (1, 1), (1, 1), self.padding4, False, False, self.mode)

    def _output_shape(self, shape: Shape, index: int | None) -> Shape:
        self._need_map(shape, index)
        c, h, w = shape
        try:
            _conv._check_pad_fits(h, w, self.padding4, self.mode)
        except ShapeError as exc:
            raise ShapeError(f"{self.label(index)}: {exc}") from None
        t, b, left, r = self.padding4
        return (c, h + t + b, w + left + r)

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        if x.ndim not in (3, 4):
            self._need_map(x.shape, None)
        out = _conv.pad2d(x, self.padding4, self.mode)
        if self.value != 0.0:
            t, _, left, _ = self.padding4
            h, w = x.shape[-2:]
            out[..., :t, :] = self.value
            out[..., t + h :, :] = self.value
            out[..., :, :left] = self.value
            out[..., :, left + w :] = self.value
        return out, True

    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        return _conv.pad2d_backward(grad, self.padding4, self.mode)

    def _explain(self, x: np.ndarray, row: int, col: int, channel: int) -> Explanation:
        t, _, left, _ = self.padding4
        _, h, w = x.shape
        r, q = row - t, col - left
        if 0 <= r < h and 0 <= q < w:
            v = float(x[channel, r, q])
            return ElementwiseExplanation(
                "pad", (channel, row, col), "pad", v, v, f"in[{channel},{r},{q}] (not padding)"
            )
        if self.mode == "zeros":
            return ElementwiseExplanation(
                "pad", (channel, row, col), "pad", self.value, self.value, "padding value"
            )
        _, b, _, right = self.padding4
        rr = int(_conv._source_index(h, t, b, self.mode)[row])
        qq = int(_conv._source_index(w, left, right, self.mode)[col])
        v = float(x[channel, rr, qq])
        return ElementwiseExplanation(
            "pad",
            (channel, row, col),
            "pad",
            v,
            v,
            f"{self.mode} padding copies in[{channel},{rr},{qq}]",
        )

    def config(self) -> dict[str, Any]:
        return {"padding": list(self.padding4), "mode": self.mode, "value": self.value}


# --------------------------------------------------------------------------------------
# Global and adaptive average pooling
# --------------------------------------------------------------------------------------


def adaptive_bounds(n: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's adaptive pooling windows along one axis: output ``i`` averages input
    ``start[i] ≤ k < end[i]`` with ``start = ⌊i·n/out⌋``, ``end = ⌈(i+1)·n/out⌉`` (windows
    overlap or differ in size when ``out`` does not divide ``n``)."""
    i = np.arange(out)
    return (i * n) // out, -((-(i + 1) * n) // out)


def _averaging_matrix(n: int, out: int, dtype: Any) -> np.ndarray:
    """``(out, n)`` matrix whose row ``i`` averages input window ``i``."""
    start, end = adaptive_bounds(n, out)
    m = np.zeros((out, n), dtype)
    for i, (s, e) in enumerate(zip(start, end, strict=True)):
        m[i, s:e] = 1.0 / (e - s)
    return m


class AdaptiveAvgPool2D(Layer):
    """Average pooling to a fixed output size ``(oh, ow)`` whatever the input size
    (``nn.AdaptiveAvgPool2d``, torch's window rule, see :func:`adaptive_bounds`). ``None``
    in ``output_size`` keeps that input size. ``(C, H, W)`` → ``(C, oh, ow)``.

    Computed separably as ``A_h · x · A_wᵀ`` with averaging matrices (rows, then columns),
    which is exact because every window is a rectangle."""

    kind = "adaptive_avg_pool"

    def __init__(
        self,
        output_size: int | Sequence[int | None] = 1,
        *,
        name: str | None = None,
        enabled: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, enabled=enabled, trainable=trainable)
        items = [output_size, output_size] if isinstance(output_size, int) else list(output_size)
        if len(items) != 2 or not all(
            v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1) for v in items
        ):
            raise ShapeError(
                f"output_size must be a whole number ≥ 1 or an (h, w) pair of them (None "
                f"keeps the input size), got {output_size!r}"
            )
        self.output_size: tuple[int | None, int | None] = (items[0], items[1])

    def describe(self) -> str:
        oh, ow = (("in" if v is None else str(v)) for v in self.output_size)
        return f"AdaptiveAvgPool → {oh}×{ow}"

    def _target(self, h: int, w: int) -> tuple[int, int]:
        oh, ow = self.output_size
        return (h if oh is None else oh, w if ow is None else ow)

    def _output_shape(self, shape: Shape, index: int | None) -> Shape:
        self._need_map(shape, index)
        c, h, w = shape
        if h < 1 or w < 1:
            raise ShapeError(f"{self.label(index)} needs a non-empty map, got {_dims(shape)}")
        return (c, *self._target(h, w))

    def window_for(self, input_shape: Sequence[int]) -> Window | None:
        """A fixed window when the output size divides the input (kernel = stride =
        input/output); None when torch's windows vary in size (not a sliding window)."""
        if not self.enabled or len(input_shape) != 3:
            return None
        h, w = int(input_shape[1]), int(input_shape[2])
        oh, ow = self._target(h, w)
        if h % oh or w % ow:
            return None
        return Window((h // oh, w // ow), (h // oh, w // ow))

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        x4, unbatched = _as_map_batch(np.asarray(x))
        if x4.dtype.kind != "f":
            x4 = x4.astype(np.float32)
        h, w = x4.shape[2:]
        oh, ow = self._target(h, w)
        ah, aw = _averaging_matrix(h, oh, x4.dtype), _averaging_matrix(w, ow, x4.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.matmul(np.matmul(ah, x4), aw.T)
        return (out[0] if unbatched else out), (ah, aw, unbatched)

    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        ah, aw, unbatched = ctx
        g = grad[np.newaxis] if unbatched else grad
        with np.errstate(over="ignore", invalid="ignore"):
            gx = np.matmul(np.matmul(ah.T, g), aw)
        return gx[0] if unbatched else gx

    def _explain(self, x: np.ndarray, row: int, col: int, channel: int) -> Explanation:
        _, h, w = x.shape
        oh, ow = self._target(h, w)
        rs, re_ = (int(v[row]) for v in adaptive_bounds(h, oh))
        cs, ce = (int(v[col]) for v in adaptive_bounds(w, ow))
        terms = tuple(
            Term(channel, r, q, float(x[channel, r, q]), 1.0, float(x[channel, r, q]), False,
                 (r - rs, q - cs))
            for r in range(rs, re_)
            for q in range(cs, ce)
        )  # fmt: skip
        total = float(np.sum([t.value for t in terms], dtype=np.float64))
        return AvgPoolExplanation(
            (channel, row, col), terms, len(terms), total / len(terms), x.shape[0] > 1
        )

    def config(self) -> dict[str, Any]:
        return {"output_size": list(self.output_size)}


class GlobalAvgPool2D(AdaptiveAvgPool2D):
    """Mean of each channel over the whole map (ONNX ``GlobalAveragePool``, torch
    ``AdaptiveAvgPool2d(1)``): ``(C, H, W)`` → ``(C, 1, 1)``."""

    kind = "global_avg_pool"

    def __init__(
        self, *, name: str | None = None, enabled: bool = True, trainable: bool = True
    ) -> None:
        super().__init__(1, name=name, enabled=enabled, trainable=trainable)

    def describe(self) -> str:
        return "GlobalAvgPool"

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        x4, unbatched = _as_map_batch(np.asarray(x))
        with np.errstate(over="ignore", invalid="ignore"):
            out = x4.mean(axis=(2, 3), keepdims=True)
        return (out[0] if unbatched else out), (x4.shape, unbatched)

    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        shape, unbatched = ctx
        g = grad[np.newaxis] if unbatched else grad
        gx = np.broadcast_to(g / (shape[2] * shape[3]), shape).copy()
        return gx[0] if unbatched else gx

    def config(self) -> dict[str, Any]:
        return {}


# --------------------------------------------------------------------------------------
# PReLU, Clip
# --------------------------------------------------------------------------------------


class PReLU(Layer):
    """Leaky ReLU with a learned slope (``nn.PReLU``): ``x`` if ``x > 0`` else ``a·x``.
    One slope for all channels (``num_parameters=1``) or one per channel (``C``); param
    ``"weight"`` ``(num_parameters,)``. Any input with channels on axis 1 (batch) / 0."""

    kind = "prelu"

    def __init__(
        self,
        num_parameters: int = 1,
        init: float = 0.25,
        *,
        dtype: Any = np.float32,
        name: str | None = None,
        enabled: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, enabled=enabled, trainable=trainable)
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, int):
            raise ShapeError(f"num_parameters must be a whole number, got {num_parameters!r}")
        if num_parameters < 1:
            raise ShapeError(f"num_parameters must be ≥ 1, got {num_parameters}")
        self.num_parameters = num_parameters
        self.init = float(init)
        self.params["weight"] = np.full(num_parameters, self.init, dtype=dtype)
        self.grads = {"weight": np.zeros_like(self.params["weight"])}

    def describe(self) -> str:
        n = self.num_parameters
        return "PReLU" if n == 1 else f"PReLU ({n} slopes)"

    def _output_shape(self, shape: Shape, index: int | None) -> Shape:
        n = self.num_parameters
        if n > 1 and (not shape or shape[0] != n):
            got = shape[0] if shape else 0
            raise ShapeError(
                f"{self.label(index)} has {n} slopes, one per channel, but its input has "
                f"{got} channels: set num_parameters to {got} or 1"
            )
        return shape

    def _slopes(self, x: np.ndarray) -> np.ndarray:
        a = self.params["weight"]
        if self.num_parameters == 1:
            return a.reshape((1,) * x.ndim)
        axis = _channel_axis(x)
        if x.shape[axis] != self.num_parameters:
            raise ShapeError(
                f"{self.label()} has {self.num_parameters} slopes but the input has "
                f"{x.shape[axis]} channels"
            )
        shape = [1] * x.ndim
        shape[axis] = self.num_parameters
        return a.reshape(shape)

    @_COMPUTE_THROUGH
    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        a = self._slopes(x)
        pos = x > 0
        out = np.where(pos, x, a * x)
        return out.astype(np.result_type(x.dtype, a.dtype), copy=False), (x, pos, a)

    @_COMPUTE_THROUGH
    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        x, pos, a = ctx
        gx = np.where(pos, grad, a * grad)
        ga = np.where(pos, 0.0, grad * x)
        if self.num_parameters == 1:
            self._accumulate("weight", np.atleast_1d(ga.sum()))
        else:
            axis = _channel_axis(x)
            self._accumulate("weight", ga.sum(axis=tuple(i for i in range(x.ndim) if i != axis)))
        return gx

    def _explain(self, x: np.ndarray, row: int, col: int, channel: int) -> Explanation:
        idx = (channel, row, col) if x.ndim == 3 else (col,)
        c = idx[0] if self.num_parameters > 1 else 0
        a = float(self.params["weight"][c])
        v = float(x[idx])
        formula = fmt_number(v) if v > 0 else f"{fmt_number(a)} × {fmt_number(v)}"
        return explain_elementwise_cell(
            "prelu", lambda t: np.where(t > 0, t, a * t), x, idx, self.kind, formula
        )

    def config(self) -> dict[str, Any]:
        return {"num_parameters": self.num_parameters, "init": self.init}


class Clip(Layer):
    """Clamp every value to ``[min, max]`` (ONNX ``Clip``, ``torch.clamp``; either bound
    may be None). ``Clip(0, 6)`` is ReLU6 (MobileNetV2). The gradient passes where
    ``min ≤ x ≤ max`` (bounds included, as torch) and is 0 elsewhere."""

    kind = "clip"

    def __init__(
        self,
        min: float | None = None,
        max: float | None = None,
        *,
        name: str | None = None,
        enabled: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, enabled=enabled, trainable=trainable)
        self.min = None if min is None else float(min)
        self.max = None if max is None else float(max)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ShapeError(f"clip min {self.min} is above max {self.max}: swap them")

    def describe(self) -> str:
        if (self.min, self.max) == (0.0, 6.0):
            return "ReLU6"
        lo = "−∞" if self.min is None else fmt_number(self.min)
        hi = "∞" if self.max is None else fmt_number(self.max)
        return f"Clip [{lo}, {hi}]"

    def _apply(self, x: np.ndarray) -> np.ndarray:
        out = x
        if self.min is not None:
            out = np.maximum(out, np.asarray(self.min, dtype=x.dtype))
        if self.max is not None:
            out = np.minimum(out, np.asarray(self.max, dtype=x.dtype))
        return out if out is not x else x.copy()

    @_COMPUTE_THROUGH
    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        keep = np.ones(x.shape, dtype=bool)
        if self.min is not None:
            keep &= x >= self.min
        if self.max is not None:
            keep &= x <= self.max
        return self._apply(x), keep

    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        return grad * ctx

    def _explain(self, x: np.ndarray, row: int, col: int, channel: int) -> Explanation:
        idx = (channel, row, col) if x.ndim == 3 else (col,)
        v = fmt_number(float(x[idx]))
        parts = v
        if self.min is not None:
            parts = f"max({fmt_number(self.min)}, {parts})"
        if self.max is not None:
            parts = f"min({parts}, {fmt_number(self.max)})"
        return explain_elementwise_cell("clip", self._apply, x, idx, self.kind, parts)

    def config(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max}


# --------------------------------------------------------------------------------------
# Softmax, Reshape
# --------------------------------------------------------------------------------------


def _batch_axis_shift(x: np.ndarray) -> int:
    """1 when ``x`` is taken as a batch (2-D or 4-D), else 0 (see module notes)."""
    return 1 if x.ndim in (2, 4) else 0


class Softmax(Layer):
    """Softmax along ``axis`` (batched numbering: 1 = classes of ``(N, K)`` or channels of
    ``(N, C, H, W)``; negative counts from the end), e.g. a model's probability output."""

    kind = "softmax"
    needs_batch_axis: ClassVar[bool] = True

    def __init__(
        self,
        axis: int = 1,
        *,
        name: str | None = None,
        enabled: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, enabled=enabled, trainable=trainable)
        if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0:
            raise ShapeError(
                f"softmax axis must be a non-zero integer (0 is the batch axis), got {axis!r}"
            )
        self.axis = axis

    def describe(self) -> str:
        return "Softmax" if self.axis in (1, -1) else f"Softmax axis {self.axis}"

    def _per_image_axis(self, rank: int, index: int | None) -> int:
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis
        if not 0 <= axis < rank:
            raise ShapeError(
                f"{self.label(index)}: axis {self.axis} does not exist for an input of "
                f"{rank} dimension{'s' if rank != 1 else ''} per sample"
            )
        return axis

    def _output_shape(self, shape: Shape, index: int | None) -> Shape:
        self._per_image_axis(len(shape), index)
        return shape

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        shift = _batch_axis_shift(x)
        axis = self._per_image_axis(x.ndim - shift, None) + shift
        return _losses.softmax_forward(x, axis)

    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        return _losses.softmax_backward(grad, ctx)

    def _explain(self, x: np.ndarray, row: int, col: int, channel: int) -> Explanation:
        idx = (channel, row, col) if x.ndim == 3 else (col,)
        axis = self._per_image_axis(x.ndim, None)
        out = _losses.softmax(np.asarray(x, dtype=np.float64), axis)
        v = float(x[idx])
        return ElementwiseExplanation(
            "softmax", idx, "softmax", v, float(out[idx]), f"e^{fmt_number(v)} / Σ e^x"
        )

    def config(self) -> dict[str, Any]:
        return {"axis": self.axis}


class Reshape(Layer):
    """Give each sample a new shape with the same number of values, in C order (ONNX
    ``Reshape``/``Flatten``, ``torch.reshape``): ``shape`` is per sample (no batch axis),
    with at most one ``-1`` meaning "whatever is left"."""

    kind = "reshape"
    needs_batch_axis: ClassVar[bool] = True

    def __init__(
        self,
        shape: Sequence[int] = (-1,),
        *,
        name: str | None = None,
        enabled: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, enabled=enabled, trainable=trainable)
        items = list(shape)
        if not items or not all(
            isinstance(v, int) and not isinstance(v, bool) and (v >= 1 or v == -1) for v in items
        ):
            raise ShapeError(
                f"reshape target must be whole numbers ≥ 1 with at most one −1, got {shape!r}"
            )
        if items.count(-1) > 1:
            raise ShapeError(f"reshape target may contain only one −1, got {tuple(items)}")
        self.shape: tuple[int, ...] = tuple(items)

    def describe(self) -> str:
        return "Reshape → " + "×".join("?" if v == -1 else str(v) for v in self.shape)

    def _resolve(self, size: int, index: int | None) -> Shape:
        known = math.prod(v for v in self.shape if v != -1)
        if -1 in self.shape:
            if known == 0 or size % known:
                raise ShapeError(
                    f"{self.label(index)} cannot split {size} values into {self.describe()[10:]}"
                    f": {size} is not a multiple of {known}"
                )
            return tuple(size // known if v == -1 else v for v in self.shape)
        if known != size:
            raise ShapeError(
                f"{self.label(index)} needs {known} values per sample but its input has "
                f"{size}: use a target with {size} values (or a −1)"
            )
        return self.shape

    def _output_shape(self, shape: Shape, index: int | None) -> Shape:
        return self._resolve(math.prod(shape), index)

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        if _batch_axis_shift(x):
            target = self._resolve(math.prod(x.shape[1:]), None)
            return x.reshape(x.shape[0], *target), x.shape
        return x.reshape(self._resolve(x.size, None)), x.shape

    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        return grad.reshape(ctx)

    def _explain(self, x: np.ndarray, row: int, col: int, channel: int) -> Explanation:
        out = self._resolve(x.size, None)
        if len(out) == 3:
            flat = int(np.ravel_multi_index((channel, row, col), out))
        elif len(out) == 2:
            flat = int(np.ravel_multi_index((row, col), out))
        else:
            flat = col
        src = tuple(int(i) for i in np.unravel_index(flat, x.shape))
        return explain_elementwise_cell(
            "reshape", lambda v: v, x, src, self.kind, f"in[{','.join(map(str, src))}]"
        )

    def config(self) -> dict[str, Any]:
        return {"shape": list(self.shape)}


EXTRA_TYPES: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (Pad2D, GlobalAvgPool2D, AdaptiveAvgPool2D, PReLU, Clip, Softmax, Reshape)
}
LAYER_TYPES.update(EXTRA_TYPES)


__all__ = [
    "EXTRA_TYPES",
    "AdaptiveAvgPool2D",
    "Clip",
    "GlobalAvgPool2D",
    "PReLU",
    "Pad2D",
    "Reshape",
    "Softmax",
    "adaptive_bounds",
]
