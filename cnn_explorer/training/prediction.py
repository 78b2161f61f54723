""" "Try an image": classify one image with a trained network and say what it thinks.

Qt-free so the ranking (and its wording) is tested without a widget; the prediction panel
only draws the :class:`Prediction` it gets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cnn_explorer.engine.graph import Graph
from cnn_explorer.engine.serialize import Model


@dataclass(frozen=True)
class Prediction:
    """One image's result: ``maps`` every layer's output for the ``(1, C, H, W)`` batch
    (``maps[0]`` the input, ``maps[i + 1]`` the output of ``network.layers[i]``: a graph's
    nodes in topological order; the last is the ``(1, K)`` logits), ``probabilities`` ``(K,)``
    float64, and ``ranking``: class indices from most to least likely, ties in class order,
    so the winner is ``ranking[0]`` and never appears again among the runners-up."""

    maps: list[np.ndarray]
    probabilities: np.ndarray
    ranking: np.ndarray

    @property
    def best(self) -> int:
        return int(self.ranking[0])

    def text(self, class_names: Sequence[str], caption: str = "", runners_up: int = 2) -> str:
        """``caption: predicted <b>circle</b> (91.0%); then square 6.0%, plus 2.0%``."""
        p = self.probabilities
        others = ", ".join(f"{class_names[k]} {p[k]:.1%}" for k in self.ranking[1 : 1 + runners_up])
        return (
            f"{caption + ': ' if caption else ''}predicted <b>{class_names[self.best]}</b> "
            f"({p[self.best]:.1%})" + (f"; then {others}" if others else "")
        )


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities ``(K,)`` float64 from logits ``(K,)``; NaN logits stay NaN."""
    z = np.asarray(logits, np.float64)
    with np.errstate(all="ignore"):
        e = np.exp(z - np.max(z))
        return e / e.sum()


def rank(probabilities: np.ndarray) -> np.ndarray:
    """Class indices by decreasing probability; equal ones keep class order (a stable sort
    of the negated values), NaN last."""
    p = np.nan_to_num(np.asarray(probabilities, np.float64), nan=-np.inf)
    return np.argsort(-p, kind="stable")


def predict(
    network: Model, image: np.ndarray, stop: Callable[[], bool] | None = None
) -> Prediction:
    """Classify ``image`` ``(C, H, W)`` with a Network or a Graph: every map of one forward
    pass, probabilities and ranking. Diverged weights give NaN probabilities, never a
    warning or a crash. ``stop`` is polled between layers (``ForwardStopped``: a newer
    image superseded this one)."""
    x = np.asarray(image, np.float32)[None]
    with np.errstate(all="ignore"):
        if isinstance(network, Graph):
            tensors = network.forward(x, stop=stop)
            maps = list(tensors.values())
            logits = tensors[network.output]
        else:
            maps = network.forward(x, stop=stop)
            logits = maps[-1]
    probabilities = softmax(logits[0])
    return Prediction(maps, probabilities, rank(probabilities))


def forward_cost(network: Model, image_shape: Sequence[int]) -> int:
    """Rough multiply-adds of one forward pass of ``image_shape (C, H, W)``: each layer's
    output size times its weights' fan-in (1 for weightless layers). Decides whether a
    prediction is quick enough for the GUI thread; ShapeError when the image does not fit."""
    shapes = network.output_shapes(image_shape)
    outs = list(shapes.values())[1:] if isinstance(shapes, dict) else shapes[1:]
    cost = 0
    for layer, shape in zip(network.layers, outs, strict=True):
        w = layer.params.get("weight")
        fan_in = int(np.prod(w.shape[1:])) if w is not None and w.ndim >= 2 else 1
        cost += int(np.prod(shape)) * fan_in
    return cost


__all__ = ["Prediction", "forward_cost", "predict", "rank", "softmax"]
