"""Which input pixels a scalar of the network is most sensitive to: the gradient of a
class score, a channel's sum or one cell with respect to the input, gradient × input, and
SmoothGrad (the gradient averaged over noisy copies of the input, which removes the
speckle a single gradient of a ReLU network shows).

References: Simonyan et al. 2014 (saliency = max over channels of |gradient|);
Shrikumar et al. 2016 (gradient × input); Smilkov et al. 2017 (SmoothGrad).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnn_explorer.insight.targets import (
    Cancel,
    InsightError,
    Model,
    Progress,
    ProgressGen,
    Target,
    as_batch,
    cancelled,
    input_gradient_batch,
)

MODES = ("abs", "signed", "grad_x_input")
"""How a gradient ``(C, H, W)`` becomes one heatmap ``(H, W)``: the largest absolute value
over channels, the signed sum over channels, or the channel sum of gradient × input."""

MAX_SAMPLES = 200
"""Most noisy copies SmoothGrad averages (the UI's spin box offers exactly this)."""


@dataclass(frozen=True)
class Saliency:
    """A saliency result: ``gradient (C, H, W)`` (averaged over the noisy copies for
    SmoothGrad), the ``image`` it was computed at, the target's ``value`` there, and
    ``samples`` (1 for a plain gradient)."""

    gradient: np.ndarray
    image: np.ndarray
    value: float
    samples: int = 1

    def heatmap(self, mode: str = "abs") -> np.ndarray:
        """``(H, W)`` float64 in one of :data:`MODES`."""
        return saliency_map(self.gradient, self.image, mode)


def saliency_map(gradient: np.ndarray, image: np.ndarray, mode: str = "abs") -> np.ndarray:
    """One ``(H, W)`` float64 heatmap from a gradient ``(C, H, W)`` (see :data:`MODES`)."""
    g = np.asarray(gradient, np.float64)
    if mode == "abs":
        return np.abs(g).max(axis=0)
    if mode == "signed":
        return g.sum(axis=0)
    if mode == "grad_x_input":
        return (g * np.asarray(image, np.float64)).sum(axis=0)
    raise InsightError(f"unknown saliency mode {mode!r}: use one of {', '.join(MODES)}")


def input_gradient(network: Model, image: np.ndarray, target: Target) -> Saliency:
    """d(target)/d(image) for one ``image (C, H, W)`` (exactly the engine's backward)."""
    x = as_batch(network, image)
    target.check(network, x.shape[1:])
    grad, values = input_gradient_batch(network, x, target)
    return Saliency(grad[0], x[0], float(values[0]))


def smooth_grad(
    network: Model,
    image: np.ndarray,
    target: Target,
    samples: int = 25,
    sigma: float = 0.15,
    seed: int = 0,
    batch: int = 16,
    cancel: Cancel = None,
) -> ProgressGen:
    """SmoothGrad: the mean gradient over ``samples`` copies of ``image (C, H, W)`` with
    Gaussian noise of standard deviation ``sigma × (max − min of the image)`` (1 when the
    image is flat), drawn from ``seed`` so the same settings give the same map. Computes
    ``batch`` copies per forward/backward; yields :class:`Progress` after each batch, the
    last one with the :class:`Saliency` result. Stops quietly when ``cancel()`` is true."""
    if not 1 <= samples <= MAX_SAMPLES:
        raise InsightError(f"SmoothGrad takes 1 to {MAX_SAMPLES} samples, not {samples}")
    if not 0 <= sigma <= 1:
        raise InsightError(f"the noise level must be between 0 and 1, not {sigma}")
    x = as_batch(network, image)
    target.check(network, x.shape[1:])
    span = float(np.nanmax(x) - np.nanmin(x)) if np.isfinite(x).any() else 0.0
    scale = sigma * (span if span > 0 else 1.0)
    rng = np.random.default_rng(seed)
    total = np.zeros(x.shape[1:], np.float64)
    value_sum, done = 0.0, 0
    while done < samples:
        if cancelled(cancel):
            return
        n = min(batch, samples - done)
        noise = rng.standard_normal((n, *x.shape[1:])) * scale
        noisy = (x + noise).astype(x.dtype)
        grad, values = input_gradient_batch(network, noisy, target)
        total += grad.sum(axis=0, dtype=np.float64)
        value_sum += float(values.sum())
        done += n
        yield Progress(done, samples, f"SmoothGrad: {done}/{samples} noisy copies")
    result = Saliency(total / samples, x[0], value_sum / samples, samples)
    yield Progress(samples, samples, "SmoothGrad done", result=result)


__all__ = ["MAX_SAMPLES", "MODES", "Saliency", "input_gradient", "saliency_map", "smooth_grad"]
