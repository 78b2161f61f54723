"""What a method explains or maximises (a class score, one cell of a map, a channel's sum
or mean), running a network up to a layer and back from it, and the progress records the
long methods yield.

Why one place: saliency, Grad-CAM, activation maximisation and top patches all need "the
output of layer ``k`` for a batch" and "d(target)/d(input)"; the engine's
:meth:`Network.backward` always starts at the last layer, so a target inside the stack is
back-propagated through ``layers[:k + 1]`` here, with the layers' own public ``backward``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_explorer.engine.network import Network

Cancel = Callable[[], bool] | None
"""A flag the long methods poll between chunks/steps; None never cancels."""


class InsightError(ValueError):
    """A request the network cannot answer (a layer index out of range, a unit that does
    not exist, Grad-CAM on a vector layer). The message is a sentence for the user."""


class CancelledError(RuntimeError):
    """:func:`run` was asked for the result of a method that was cancelled."""


@dataclass(frozen=True)
class Progress:
    """One record of a long method: ``done`` of ``total`` steps, a short ``text``, an
    optional ``preview`` (an image ``(C, H, W)`` or a map ``(H, W)``) and objective
    ``value``; the last record of a finished run carries its ``result``."""

    done: int
    total: int
    text: str = ""
    preview: np.ndarray | None = None
    value: float | None = None
    result: Any = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


ProgressGen = Generator[Progress, None, None]


def cancelled(cancel: Cancel) -> bool:
    return cancel is not None and bool(cancel())


def run(gen: ProgressGen) -> Any:
    """Pump a method's generator to its end and return its result (raises
    :class:`CancelledError` when it stopped without one)."""
    result: Any = None
    got = False
    for record in gen:
        if record.result is not None:
            result, got = record.result, True
    if not got:
        raise CancelledError("the method was cancelled before it finished")
    return result


@dataclass(frozen=True)
class Target:
    """A scalar of the network to explain or maximise.

    ``layer`` is the index of the layer whose output holds it; ``unit`` a channel of a map
    ``(C, H, W)`` or an index of a vector ``(F,)`` (a class when ``layer`` is the last).
    For a map, ``cell = (row, col)`` picks one cell, else the channel's ``reduce``
    (``"sum"`` or ``"mean"``) over every cell is the scalar.
    """

    layer: int
    unit: int
    cell: tuple[int, int] | None = None
    reduce: str = "sum"

    @classmethod
    def class_score(cls, network: Network, k: int) -> Target:
        """The logit (pre-softmax score) of class ``k``."""
        return cls(len(network) - 1, int(k))

    def describe(self, network: Network) -> str:
        """``"class 3 score"``, ``"layer 2 channel 5 mean"``, ``"layer 2 [5, 3, 4]"``."""
        if self.layer == len(network) - 1 and self.cell is None:
            return f"class {self.unit} score"
        if self.cell is not None:
            return f"layer {self.layer + 1} cell [{self.unit}, {self.cell[0]}, {self.cell[1]}]"
        return f"layer {self.layer + 1} channel {self.unit} {self.reduce}"

    def check(self, network: Network, input_shape: Sequence[int]) -> tuple[int, ...]:
        """The per-image shape of the target's layer output; InsightError when the target
        does not exist (ShapeError when the network cannot take ``input_shape``)."""
        shapes = network.output_shapes(input_shape)
        if not 0 <= self.layer < len(network):
            raise InsightError(
                f"layer {self.layer + 1} does not exist: the network has {len(network)} layers"
            )
        shape = shapes[self.layer + 1]
        if not 0 <= self.unit < shape[0]:
            what = "channel" if len(shape) == 3 else "output"
            raise InsightError(
                f"{what} {self.unit} does not exist: layer {self.layer + 1} has {shape[0]}"
            )
        if self.cell is not None:
            r, c = self.cell
            if len(shape) != 3 or not (0 <= r < shape[1] and 0 <= c < shape[2]):
                raise InsightError(
                    f"cell ({r}, {c}) is outside the {'×'.join(map(str, shape))} output of "
                    f"layer {self.layer + 1}"
                )
        if self.reduce not in ("sum", "mean"):
            raise InsightError(f"reduce must be 'sum' or 'mean', not {self.reduce!r}")
        return shape

    def values(self, out: np.ndarray) -> np.ndarray:
        """The target's value per sample ``(N,)`` for a batch of layer outputs ``out``."""
        if out.ndim == 2:
            return out[:, self.unit].astype(np.float64)
        if self.cell is not None:
            return out[:, self.unit, self.cell[0], self.cell[1]].astype(np.float64)
        ch = out[:, self.unit].astype(np.float64)
        return ch.mean(axis=(1, 2)) if self.reduce == "mean" else ch.sum(axis=(1, 2))

    def seed(self, out: np.ndarray) -> np.ndarray:
        """d(sum of :meth:`values`)/d(out): the gradient to back-propagate, shape of ``out``."""
        g = np.zeros_like(out)
        if out.ndim == 2:
            g[:, self.unit] = 1
        elif self.cell is not None:
            g[:, self.unit, self.cell[0], self.cell[1]] = 1
        else:
            g[:, self.unit] = 1.0 / (out.shape[2] * out.shape[3]) if self.reduce == "mean" else 1
        return g


def dtype_of(network: Network) -> np.dtype[Any]:
    """The dtype the network computes in (its first parameter's; float32 without any)."""
    for _, value in network.parameters():
        return value.dtype
    return np.dtype(np.float32)


def as_batch(network: Network, x: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` or ``(N, C, H, W)`` → a contiguous ``(N, C, H, W)`` in the network's
    dtype."""
    a = np.asarray(x)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise InsightError(f"expected an image (C, H, W) or a batch (N, C, H, W), got {a.shape}")
    return np.ascontiguousarray(a, dtype=dtype_of(network))


def forward_to(network: Network, x: np.ndarray, layer: int) -> list[np.ndarray]:
    """Maps ``0 .. layer + 1`` for a batch ``x (N, C, H, W)`` (``maps[0]`` is ``x``): the
    layers after ``layer`` are not run."""
    maps = [x]
    for lay in network.layers[: layer + 1]:
        maps.append(lay.forward(maps[-1]))
    return maps


def backward_from(network: Network, layer: int, grad: np.ndarray) -> np.ndarray:
    """d/d(input) of ``sum(grad · output of layer)`` after :func:`forward_to` ran to at
    least ``layer``: ``(N, C, H, W)``. Parameter gradients are accumulated as a side effect
    (they are zeroed first so they cannot grow across many calls)."""
    for lay in reversed(network.layers[: layer + 1]):
        lay.zero_grad()
        grad = lay.backward(grad)
    return grad


def input_gradient_batch(
    network: Network, x: np.ndarray, target: Target
) -> tuple[np.ndarray, np.ndarray]:
    """``(d target / d x, target values)`` for a batch ``x (N, C, H, W)``: shapes
    ``(N, C, H, W)`` and ``(N,)``."""
    maps = forward_to(network, x, target.layer)
    out = maps[-1]
    return backward_from(network, target.layer, target.seed(out)), target.values(out)


__all__ = [
    "Cancel",
    "CancelledError",
    "InsightError",
    "Progress",
    "ProgressGen",
    "Target",
    "as_batch",
    "backward_from",
    "cancelled",
    "dtype_of",
    "forward_to",
    "input_gradient_batch",
    "run",
]
