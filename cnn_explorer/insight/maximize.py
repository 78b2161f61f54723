"""Activation maximisation: synthesise the input a filter (or a class) responds to most,
by gradient ascent on the input.

Plain ascent on a small network gives high-frequency noise that excites the unit but says
nothing to a person; the regularisers that make it readable (Yosinski et al. 2015,
Mahendran & Vedaldi 2015) are applied each step:

* **jitter**: the image is rolled by a random offset of up to ``jitter`` pixels before each
  forward pass (and the gradient rolled back), so no single pixel position can be exploited;
* **blur**: every ``blur_every`` steps a Gaussian of ``blur_sigma`` pixels smooths it;
* **L2**: pulls the image towards the middle of the value range;
* **total variation** (squared differences of neighbours, β = 2): penalises speckle.

A filter after a ReLU that is off everywhere on the start image has a zero gradient; the
ascent then follows the unit's value before the activation until it turns on.

The objective's gradient is divided by its root mean square, so the step size ``lr`` is a
fraction of the value range per step whatever the network's scale, and the regulariser
weights are relative to it. Every random draw comes from one generator seeded with
``seed``: the same settings give the same image, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from cnn_explorer.engine.network import Network
from cnn_explorer.insight.targets import (
    Cancel,
    InsightError,
    Progress,
    ProgressGen,
    Target,
    as_batch,
    backward_from,
    cancelled,
    dtype_of,
    forward_to,
    index_of,
)

MAX_STEPS = 5000


@dataclass(frozen=True)
class MaximizeSettings:
    """Gradient-ascent settings (see the module docstring for each regulariser)."""

    steps: int = 200
    lr: float = 0.05
    jitter: int = 1
    blur_every: int = 4
    blur_sigma: float = 0.5
    l2: float = 0.01
    tv: float = 0.05
    seed: int = 0
    preview_every: int = 10
    value_range: tuple[float, float] = (0.0, 1.0)

    def check(self) -> None:
        """InsightError naming the first setting out of range."""
        lo, hi = self.value_range
        problems = [
            (not 1 <= self.steps <= MAX_STEPS, f"steps must be 1 to {MAX_STEPS}"),
            (not 0 < self.lr <= 1, "the step size must be in (0, 1]"),
            (self.jitter < 0, "jitter must be ≥ 0"),
            (self.blur_every < 0 or self.blur_sigma < 0, "blur settings must be ≥ 0"),
            (self.l2 < 0 or self.tv < 0, "regulariser weights must be ≥ 0"),
            (self.preview_every < 1, "preview every must be ≥ 1"),
            (not (np.isfinite(lo) and np.isfinite(hi) and lo < hi), "value range must be lo < hi"),
        ]
        for bad, text in problems:
            if bad:
                raise InsightError(text)


@dataclass(frozen=True)
class MaximizeResult:
    """The synthesised ``image (C, H, W)``, the target's value on it (no jitter), the
    value on the starting image, and the value at each step (with that step's jitter)."""

    image: np.ndarray
    value: float
    start_value: float
    history: np.ndarray


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Blur each channel of ``x (..., H, W)`` with a Gaussian of ``sigma`` pixels
    (separable, radius ⌈2σ⌉, edge values repeated past the border)."""
    if sigma <= 0:
        return x
    r = max(1, int(np.ceil(2 * sigma)))
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    out = np.asarray(x, np.float64)
    for axis in (-2, -1):
        n = out.shape[axis]
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="edge")
        acc = np.zeros_like(out)
        for j, w in enumerate(k):
            acc += w * np.take(p, np.arange(j, j + n), axis=axis)
        out = acc
    return out.astype(x.dtype)


def tv_gradient(x: np.ndarray) -> np.ndarray:
    """d/dx of Σ (neighbour differences)² over rows and columns of ``x (..., H, W)``."""
    g = np.zeros_like(x)
    dy = np.diff(x, axis=-2)
    dx = np.diff(x, axis=-1)
    g[..., 1:, :] += 2 * dy
    g[..., :-1, :] -= 2 * dy
    g[..., :, 1:] += 2 * dx
    g[..., :, :-1] -= 2 * dx
    return g


def _ascent_gradient(network: Network, maps: list[np.ndarray], target: Target) -> np.ndarray:
    """d target / d input after ``maps = forward_to(..., target.layer)``; when that is all
    zero because the target sits after an activation that is off everywhere (a ReLU
    filter dead on the current image: ascent would never start), the gradient of the same
    unit *before* the activation, which still says which way turns it on."""
    k = index_of(target.layer)
    g = backward_from(network, k, target.seed(maps[-1])).astype(np.float64)
    layer = network.layers[k]
    if k > 0 and layer.kind == "activation" and layer.enabled and not g.any():
        before = replace(target, layer=k - 1)
        g = backward_from(network, before.layer, before.seed(maps[-2])).astype(np.float64)
    return g


def _value(network: Network, x: np.ndarray, target: Target) -> float:
    return float(target.values(forward_to(network, x, target.layer)[-1])[0])


# Long because the ascent is one loop whose steps (jitter, gradient, regularisers, blur,
# clip, preview) read best in order; splitting it would scatter the shared state.
def maximize(
    network: Network,
    input_shape: tuple[int, int, int],
    target: Target,
    settings: MaximizeSettings | None = None,
    cancel: Cancel = None,
) -> ProgressGen:
    """Gradient ascent from seeded noise around the middle of ``settings.value_range``
    towards a high ``target`` value for an input of ``input_shape (C, H, W)``.

    Yields :class:`Progress` every ``preview_every`` steps with the current image as
    ``preview`` and the objective as ``value``; the last record carries a
    :class:`MaximizeResult`. Stops quietly (no result) when ``cancel()`` becomes true.
    """
    s = settings or MaximizeSettings()
    s.check()
    shape = tuple(int(v) for v in input_shape)
    target.check(network, shape)
    lo, hi = (float(v) for v in s.value_range)
    span, mid = hi - lo, (lo + hi) / 2
    rng = np.random.default_rng(s.seed)
    x = np.clip(mid + 0.05 * span * rng.standard_normal((1, *shape)), lo, hi)
    x = as_batch(network, x).astype(np.float64)
    dtype = dtype_of(network)
    start = _value(network, x.astype(dtype), target)
    history = np.zeros(s.steps)
    for step in range(1, s.steps + 1):
        if cancelled(cancel):
            return
        dy, dx = (int(v) for v in rng.integers(-s.jitter, s.jitter + 1, size=2))
        shifted = np.roll(x, (dy, dx), axis=(2, 3)).astype(dtype)
        maps = forward_to(network, shifted, target.layer)
        history[step - 1] = float(target.values(maps[-1])[0])
        g = np.roll(_ascent_gradient(network, maps, target), (-dy, -dx), axis=(2, 3))
        rms = float(np.sqrt(np.mean(g * g)))
        if np.isfinite(rms) and rms > 0:
            g /= rms
        else:
            g = np.zeros_like(g)  # a dead unit or NaN: only the regularisers move it
        g -= s.l2 * (x - mid) / span
        g -= s.tv * tv_gradient(x) / span
        x = x + s.lr * span * g
        if s.blur_every and step % s.blur_every == 0:
            x = gaussian_blur(x, s.blur_sigma)
        x = np.clip(x, lo, hi)
        if step % s.preview_every == 0 and step < s.steps:
            yield Progress(
                step,
                s.steps,
                f"step {step}/{s.steps}: {history[step - 1]:.4g}",
                preview=x[0].astype(np.float32),
                value=history[step - 1],
            )
    image = x[0].astype(dtype)
    final = _value(network, image[None], target)
    result = MaximizeResult(image, final, start, history)
    yield Progress(s.steps, s.steps, f"done: {final:.4g}", image.copy(), final, result)


def default_range(images: np.ndarray | None) -> tuple[float, float]:
    """The value range to synthesise in: the dataset's finite min/max, else ``(0, 1)``."""
    if images is None or not np.size(images):
        return 0.0, 1.0
    finite = np.asarray(images)[np.isfinite(images)]
    if not finite.size or finite.min() >= finite.max():
        return 0.0, 1.0
    return float(finite.min()), float(finite.max())


__all__ = [
    "MAX_STEPS",
    "MaximizeResult",
    "MaximizeSettings",
    "default_range",
    "gaussian_blur",
    "maximize",
    "tv_gradient",
]
