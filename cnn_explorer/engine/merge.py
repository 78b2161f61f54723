"""Layers with several inputs: the joins of a graph network (ResNet's Add, Inception's and
SqueezeNet's Concat, squeeze-and-excite's Mul).

A :class:`MergeLayer` is a :class:`~cnn_explorer.engine.layers.Layer` (same flags, config,
``to_dict``/``from_dict``, registry) whose compute methods take a *list* of tensors:
``forward_many(xs)`` → one output, ``backward_many(grad)`` → one gradient per input.
Only a :class:`~cnn_explorer.engine.graph.Graph` feeds it (a Network is a chain of
single-input layers), so its inputs are batched, ``(N, C, H, W)`` maps or ``(N, F)``
vectors; unbatched ``(C, H, W)``/``(F,)`` inputs also work (see :class:`Concat`).

Shapes in :meth:`MergeLayer.output_shape_many` are per image (no batch axis), like every
``output_shape`` in the engine. All inputs must have the same rank (a ``(C, 1, 1)``
channel gate and a ``(C, H, W)`` map, not a ``(C,)`` vector and a map: NumPy would align
the vector with the width).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.engine.layers import LAYER_TYPES, Layer

Shape = tuple[int, ...]

# NaN and inf are legal data (reported, never errors): compute through them silently.
_COMPUTE_THROUGH = np.errstate(over="ignore", invalid="ignore")


def _dims(shape: Sequence[int]) -> str:
    return "×".join(str(int(s)) for s in shape) or "scalar"


def _reduce_to(grad: np.ndarray, shape: Shape) -> np.ndarray:
    """Sum ``grad`` over the axes an input of ``shape`` was broadcast along, so the result
    has exactly ``shape`` (the gradient of NumPy broadcasting)."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    g = grad.sum(axis=tuple(range(extra))) if extra > 0 else grad
    axes = tuple(i for i, (n, m) in enumerate(zip(shape, g.shape, strict=True)) if n == 1 != m)
    return g.sum(axis=axes, keepdims=True) if axes else g


class MergeLayer(Layer):
    """Base class of the layers that combine several tensors into one.

    Subclasses implement ``_forward_many(xs, training) -> (out, ctx)``,
    ``_backward_many(grad, ctx) -> list of input gradients`` and
    ``_output_shape_many(shapes, index)``. A *disabled* merge layer passes its first input
    through (and gives the others a zero gradient), like a disabled layer in a chain.
    """

    kind = "merge"
    needs_batch_axis = True

    # -- single-input interface: not applicable ------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """A merge layer needs several inputs: use :meth:`forward_many` (a Graph does)."""
        raise TypeError(f"{self.describe()} combines several inputs: call forward_many(xs)")

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """A merge layer has several input gradients: use :meth:`backward_many`."""
        raise TypeError(f"{self.describe()} has several inputs: call backward_many(grad)")

    def _output_shape(self, shape: Shape, index: int | None) -> Shape:
        return self._output_shape_many([shape], index)

    # -- several inputs ------------------------------------------------------------------
    def output_shape_many(self, shapes: Sequence[Sequence[int]], index: int | None = None) -> Shape:
        """Per-image output shape for per-image input ``shapes``; ShapeError naming the
        numbers and a fix when they cannot be combined."""
        norm = [tuple(int(s) for s in shape) for shape in shapes]
        if not norm:
            raise ShapeError(f"{self.label(index)} needs at least one input")
        ranks = {len(s) for s in norm}
        if len(ranks) > 1:
            listed = ", ".join(_dims(s) for s in norm)
            raise ShapeError(
                f"{self.label(index)} needs inputs of the same rank, got {listed}: reshape "
                "one of them (e.g. a (C,) vector to (C, 1, 1))"
            )
        if not self.enabled:
            return norm[0]
        return self._output_shape_many(norm, index)

    def forward_many(self, xs: Sequence[np.ndarray], training: bool = False) -> np.ndarray:
        """Output for the input tensors ``xs`` (all batched, or all one image); saves what
        :meth:`backward_many` needs."""
        arrays = [np.asarray(x) for x in xs]
        if not arrays:
            raise ShapeError(f"{self.label()} needs at least one input")
        if len({a.ndim for a in arrays}) > 1:
            listed = ", ".join(_dims(a.shape) for a in arrays)
            raise ShapeError(f"{self.label()} needs inputs of the same rank, got {listed}")
        if not self.enabled:
            self._ctx = ("disabled", [(a.shape, a.dtype) for a in arrays])
            return arrays[0]
        out, ctx = self._forward_many(arrays, training)
        self._ctx = ("enabled", ctx)
        return out

    def backward_many(self, grad: np.ndarray) -> list[np.ndarray]:
        """One gradient per input of the last :meth:`forward_many`, each shaped like it."""
        if self._ctx is None:
            raise RuntimeError(f"{self.label()}: backward_many() called before forward_many()")
        state, ctx = self._ctx
        if state == "disabled":
            _first, *rest = ctx
            return [np.asarray(grad), *(np.zeros(s, d) for s, d in rest)]
        return self._backward_many(np.asarray(grad), ctx)

    def _forward_many(self, xs: list[np.ndarray], training: bool) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _backward_many(self, grad: np.ndarray, ctx: Any) -> list[np.ndarray]:
        raise NotImplementedError

    def _output_shape_many(self, shapes: list[Shape], index: int | None) -> Shape:
        raise NotImplementedError

    def _broadcast_shape(self, shapes: Sequence[Shape], index: int | None) -> Shape:
        try:
            return tuple(int(s) for s in np.broadcast_shapes(*shapes))
        except ValueError:
            listed = ", ".join(_dims(s) for s in shapes)
            raise ShapeError(
                f"{self.label(index)} cannot combine inputs of shapes {listed}: sizes must be "
                "equal or 1 in every dimension (e.g. 8×14×14 with 8×1×1)"
            ) from None


class Add(MergeLayer):
    """Elementwise sum of the inputs with NumPy broadcasting (a ResNet skip connection:
    ``block(x) + x``). Backward: every input receives the gradient, summed over the axes
    it was broadcast along."""

    kind = "add"

    def describe(self) -> str:
        return "Add"

    def _output_shape_many(self, shapes: list[Shape], index: int | None) -> Shape:
        return self._broadcast_shape(shapes, index)

    @_COMPUTE_THROUGH
    def _forward_many(self, xs: list[np.ndarray], training: bool) -> tuple[np.ndarray, Any]:
        try:
            out = xs[0] + xs[1] if len(xs) > 1 else xs[0].copy()
            for x in xs[2:]:
                out = out + x
        except ValueError:
            self._broadcast_shape([x.shape for x in xs], None)
            raise
        return out, [x.shape for x in xs]

    def _backward_many(self, grad: np.ndarray, ctx: Any) -> list[np.ndarray]:
        return [_reduce_to(grad, shape) for shape in ctx]


class Mul(MergeLayer):
    """Elementwise product with NumPy broadcasting (a squeeze-and-excite gate:
    ``x · σ(s)`` with ``s`` of shape ``(C, 1, 1)``). Backward: input ``i`` receives
    ``grad · Π_{j≠i} x_j``, summed over its broadcast axes."""

    kind = "mul"

    def describe(self) -> str:
        return "Multiply"

    def _output_shape_many(self, shapes: list[Shape], index: int | None) -> Shape:
        return self._broadcast_shape(shapes, index)

    @_COMPUTE_THROUGH
    def _forward_many(self, xs: list[np.ndarray], training: bool) -> tuple[np.ndarray, Any]:
        try:
            out = xs[0] * xs[1] if len(xs) > 1 else xs[0].copy()
            for x in xs[2:]:
                out = out * x
        except ValueError:
            self._broadcast_shape([x.shape for x in xs], None)
            raise
        return out, xs

    @_COMPUTE_THROUGH
    def _backward_many(self, grad: np.ndarray, ctx: Any) -> list[np.ndarray]:
        xs: list[np.ndarray] = ctx
        grads = []
        for i, x in enumerate(xs):
            g = grad
            for j, other in enumerate(xs):
                if j != i:
                    g = g * other
            grads.append(_reduce_to(np.asarray(g), x.shape))
        return grads


class Concat(MergeLayer):
    """Join the inputs along ``axis`` (batched numbering, like ``torch.cat``: 1 = channels
    of ``(N, C, H, W)``, the default; negative axes count from the end). The other sizes
    must agree. Backward splits the gradient back into the inputs' parts.

    For unbatched inputs (one image ``(C, H, W)``, or one vector ``(F,)``) a positive
    ``axis`` is shifted by one, so ``axis=1`` still means the channels.
    """

    kind = "concat"

    def __init__(
        self,
        axis: int = 1,
        *,
        name: str | None = None,
        enabled: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, enabled=enabled, trainable=trainable)
        if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
            raise ShapeError(f"concat axis must be an integer, got {axis!r}")
        if axis == 0:
            raise ShapeError(
                "concat axis 0 is the batch axis: use axis 1 (channels) or a later axis"
            )
        self.axis = int(axis)

    def describe(self) -> str:
        return "Concat" if self.axis == 1 else f"Concat axis {self.axis}"

    def _per_image_axis(self, rank: int, index: int | None) -> int:
        """The axis in per-image terms (``rank`` = per-image rank), checked."""
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis
        if not 0 <= axis < rank:
            raise ShapeError(
                f"{self.label(index)}: axis {self.axis} does not exist for inputs with "
                f"{rank} dimension{'s' if rank != 1 else ''} per image (plus the batch axis)"
            )
        return axis

    def _output_shape_many(self, shapes: list[Shape], index: int | None) -> Shape:
        axis = self._per_image_axis(len(shapes[0]), index)
        first = shapes[0]
        for s in shapes[1:]:
            if any(a != b for k, (a, b) in enumerate(zip(first, s, strict=True)) if k != axis):
                listed = ", ".join(_dims(x) for x in shapes)
                raise ShapeError(
                    f"{self.label(index)} joins along axis {self.axis}, so every other size "
                    f"must match, got {listed}"
                )
        return (*first[:axis], sum(s[axis] for s in shapes), *first[axis + 1 :])

    def _forward_many(self, xs: list[np.ndarray], training: bool) -> tuple[np.ndarray, Any]:
        ndim = xs[0].ndim
        batched = ndim not in (1, 3)
        rank = ndim - 1 if batched else ndim
        per_image_shapes = [x.shape[1:] if batched else x.shape for x in xs]
        self._output_shape_many([tuple(s) for s in per_image_shapes], None)
        axis = self._per_image_axis(rank, None) + (1 if batched else 0)
        if batched and len({x.shape[0] for x in xs}) > 1:
            raise ShapeError(f"{self.label()}: the inputs have different batch sizes")
        out = np.concatenate(xs, axis=axis)
        return out, (axis, [x.shape[axis] for x in xs])

    def _backward_many(self, grad: np.ndarray, ctx: Any) -> list[np.ndarray]:
        axis, sizes = ctx
        cuts = np.cumsum(sizes)[:-1]
        return list(np.split(grad, cuts, axis=axis))

    def config(self) -> dict[str, Any]:
        return {"axis": self.axis}


MERGE_TYPES: dict[str, type[Layer]] = {cls.kind: cls for cls in (Add, Mul, Concat)}
LAYER_TYPES.update(MERGE_TYPES)


__all__ = ["MERGE_TYPES", "Add", "Concat", "MergeLayer", "Mul"]
