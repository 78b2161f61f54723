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

from cnn_explorer.engine.network import Network
from cnn_explorer.insight.targets import (
    InsightError,
    Target,
    as_batch,
    forward_to,
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


def cam_layers(network: Network, input_shape: tuple[int, ...]) -> list[int]:
    """Indices of the layers whose output is a map ``(C, H, W)`` (where Grad-CAM applies)."""
    shapes = network.output_shapes(input_shape)
    return [i for i in range(len(network)) if len(shapes[i + 1]) == 3]


def grad_cam(
    network: Network,
    image: np.ndarray,
    layer: int,
    target: Target,
    plus: bool = False,
) -> CamResult:
    """Grad-CAM (``plus=False``) or Grad-CAM++ of ``target`` at layer ``layer``'s output for
    one ``image (C, H, W)``. The target must come after ``layer`` (a class score, or a unit
    of a later layer). Raises InsightError otherwise."""
    x = as_batch(network, image)
    target.check(network, x.shape[1:])
    shapes = network.output_shapes(x.shape[1:])
    if not 0 <= layer < len(network) or len(shapes[layer + 1]) != 3:
        raise InsightError(
            f"Grad-CAM needs a layer with (channels, height, width) maps; layer {layer + 1} "
            "is not one"
        )
    if target.layer <= layer:
        raise InsightError(
            f"the target ({target.describe(network)}) must come after layer {layer + 1}"
        )
    maps = forward_to(network, x, target.layer)
    out = maps[-1]
    grad = target.seed(out)
    for lay in reversed(network.layers[layer + 1 : target.layer + 1]):
        lay.zero_grad()
        grad = lay.backward(grad)
    a = np.asarray(maps[layer + 1][0], np.float64)
    g = np.asarray(grad[0], np.float64)
    if plus:
        g2 = g * g
        g3 = g2 * g
        sum_a = a.sum(axis=(1, 2))[:, None, None]
        alpha = g2 / (2 * g2 + sum_a * g3 + PLUS_EPS)
        alpha = np.where(g != 0, alpha, 0.0)
        weights = (np.maximum(g, 0) * alpha).sum(axis=(1, 2))
    else:
        weights = g.mean(axis=(1, 2))
    cam = np.maximum((weights[:, None, None] * a).sum(axis=0), 0.0)
    heatmap = upsample_bilinear(cam, (x.shape[2], x.shape[3]))
    return CamResult(cam, heatmap, weights, float(target.values(out)[0]))


__all__ = ["CamResult", "cam_layers", "grad_cam", "upsample_bilinear"]
