"""Grad-CAM and Grad-CAM++: where in the input a conv layer's features supported a class
(or any selected unit), at the resolution of that layer, upsampled onto the input.

Grad-CAM (Selvaraju et al. 2017): with ``A (K, h, w)`` the layer's output and
``G = d target / d A``, the weight of channel ``k`` is the spatial mean of ``G[k]`` and the
map is ``ReLU(Σ_k weight_k · A[k])``. Grad-CAM++ (Chattopadhyay et al. 2018) weighs each
cell by ``α = G² / (2G² + Σ_ij A · G³)`` and keeps only positive gradients; the formula
and its ``1e-7`` guard are those of pytorch-grad-cam, so the two agree.

The upsampling is bilinear with half-pixel centres (``torch.nn.functional.interpolate``
with ``align_corners=False``), separately in rows and columns, so non-square and
1-channel inputs come out exactly as torch's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnn_explorer.engine.graph import Graph, Shape
from cnn_explorer.insight.targets import (
    InsightError,
    Model,
    Target,
    as_batch,
    depends_on,
    forward_to,
    index_of,
    layer_name,
    tensor_shape,
)

PLUS_EPS = 1e-7


@dataclass(frozen=True)
class CamResult:
    """``cam (h, w)`` at the layer's resolution (float64, ≥ 0), ``heatmap (H, W)`` the
    same upsampled onto the input, the channel ``weights (K,)``, and the target's value."""

    cam: np.ndarray
    heatmap: np.ndarray
    weights: np.ndarray
    value: float


def _resize_axis(a: np.ndarray, out: int, axis: int) -> np.ndarray:
    """Linear interpolation of ``a`` along ``axis`` to ``out`` samples, half-pixel centres
    (as torch's ``align_corners=False``: source = (i + 0.5)·in/out − 0.5, clamped at 0)."""
    n = a.shape[axis]
    src = np.maximum((np.arange(out) + 0.5) * (n / out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.intp), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    lam = src - i0
    shape = [1] * a.ndim
    shape[axis] = out
    lam = lam.reshape(shape)
    return np.take(a, i0, axis=axis) * (1 - lam) + np.take(a, i1, axis=axis) * lam


def upsample_bilinear(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``a (h, w)`` → ``(H, W)`` float64, bilinear with half-pixel centres."""
    out = np.asarray(a, np.float64)
    return _resize_axis(_resize_axis(out, int(size[0]), 0), int(size[1]), 1)


def cam_layers(network: Model, input_shape: tuple[int, ...]) -> list[int] | list[str]:
    """The layers whose output is a map ``(C, H, W)`` (where Grad-CAM applies): indices of
    a Network, node names of a Graph."""
    if isinstance(network, Graph):
        gshapes = network.output_shapes(input_shape)
        return [n.name for n in network.nodes if len(gshapes[n.name]) == 3]
    shapes = network.output_shapes(input_shape)
    return [i for i in range(len(network)) if len(shapes[i + 1]) == 3]


FEATURE_KINDS = frozenset(
    {"conv", "batch_norm", "activation", "prelu", "clip", "add", "mul", "concat"}
)
"""Layer kinds whose output is a feature map worth explaining (not padding or pooling)."""


def feature_nodes(graph: Graph, input_shape: tuple[int, ...]) -> list[tuple[str, Shape]]:
    """``(node name, shape)`` of the nodes worth a Grad-CAM, in topological order: feature
    maps ``(C, H, W)`` with more than one cell computed by a convolution, its normalisation
    or activation, or a merge (see :data:`FEATURE_KINDS`)."""
    shapes = graph.output_shapes(input_shape)
    return [
        (n.name, shapes[n.name])
        for n in graph.nodes
        if len(shapes[n.name]) == 3
        and shapes[n.name][1] * shapes[n.name][2] > 1
        and n.layer.kind in FEATURE_KINDS
    ]


def default_cam_node(graph: Graph, input_shape: tuple[int, ...]) -> str | None:
    """Where Grad-CAM looks by default in a graph: the last of :func:`feature_nodes`, the
    deepest features that still have a spatial layout (for a ResNet the last block's
    output, as pytorch-grad-cam's examples choose). None when there is none."""
    nodes = feature_nodes(graph, input_shape)
    return nodes[-1][0] if nodes else None


def _weights(a: np.ndarray, g: np.ndarray, plus: bool) -> np.ndarray:
    """Channel weights ``(K,)`` from the map ``a (K, h, w)`` and its gradient ``g``."""
    if not plus:
        return g.mean(axis=(1, 2))
    g2 = g * g
    g3 = g2 * g
    sum_a = a.sum(axis=(1, 2))[:, None, None]
    alpha = g2 / (2 * g2 + sum_a * g3 + PLUS_EPS)
    alpha = np.where(g != 0, alpha, 0.0)
    return np.asarray((np.maximum(g, 0) * alpha).sum(axis=(1, 2)))


def _map_and_gradient(
    network: Model, x: np.ndarray, layer: int | str, target: Target
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(A, d target / d A, target value)`` at ``layer``'s output for a batch of one;
    InsightError when ``layer`` has no maps or the target does not come after it."""
    shape = tensor_shape(network, x.shape[1:], layer)
    where = layer_name(network, layer)
    if len(shape) != 3:
        raise InsightError(
            f"Grad-CAM needs a layer with (channels, height, width) maps; {where} is not one"
        )
    if isinstance(network, Graph):
        name, tname = str(layer), str(target.layer)
        if name == tname or not depends_on(network, tname, name):
            raise InsightError(
                f"the target ({target.describe(network)}) is not computed from {where}"
            )
        tensors = network.forward(x)
        out = tensors[tname]
        network.zero_grad()
        grad = network.backward_to(target.seed(out), wrt=name, start=tname)
        return tensors[name], grad, float(target.values(out)[0])
    k, t = index_of(layer), index_of(target.layer)
    if t <= k:
        raise InsightError(f"the target ({target.describe(network)}) must come after {where}")
    maps = forward_to(network, x, t)
    grad = target.seed(maps[-1])
    for lay in reversed(network.layers[k + 1 : t + 1]):
        lay.zero_grad()
        grad = lay.backward(grad)
    return maps[k + 1], grad, float(target.values(maps[-1])[0])


def grad_cam(
    network: Model,
    image: np.ndarray,
    layer: int | str,
    target: Target,
    plus: bool = False,
) -> CamResult:
    """Grad-CAM (``plus=False``) or Grad-CAM++ of ``target`` at the output of ``layer`` (an
    index of a Network, a node name of a Graph) for one ``image (C, H, W)``. The target
    must be computed from that layer (a class score, or a unit of a later layer). Raises
    InsightError otherwise."""
    x = as_batch(network, image)
    target.check(network, x.shape[1:])
    a_all, g_all, value = _map_and_gradient(network, x, layer, target)
    a = np.asarray(a_all[0], np.float64)
    g = np.asarray(g_all[0], np.float64)
    weights = _weights(a, g, plus)
    cam = np.maximum((weights[:, None, None] * a).sum(axis=0), 0.0)
    heatmap = upsample_bilinear(cam, (x.shape[2], x.shape[3]))
    return CamResult(cam, heatmap, weights, value)


__all__ = [
    "FEATURE_KINDS",
    "CamResult",
    "cam_layers",
    "default_cam_node",
    "feature_nodes",
    "grad_cam",
    "upsample_bilinear",
]
