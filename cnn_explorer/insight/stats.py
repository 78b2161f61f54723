"""Statistics of a layer over a whole dataset: how often each channel is dead (its map all
zeros, as after a ReLU whose input is negative everywhere) and how many NaN/inf values it
produces. The per-map statistics the explorer shows for one input (histogram, dead flag,
NaN/inf count) are :mod:`cnn_explorer.explorer.stats`'; these are the dataset-wide ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnn_explorer.engine.network import Network
from cnn_explorer.insight.patches import chunk_size
from cnn_explorer.insight.targets import (
    Cancel,
    InsightError,
    Progress,
    ProgressGen,
    as_batch,
    cancelled,
    forward_to,
)


@dataclass(frozen=True)
class DeadUnits:
    """Per channel of one layer over ``images`` images: ``rates (C,)`` the fraction of
    images on which its map is all zeros, ``nonfinite (C,)`` NaN/inf counts summed over
    the dataset."""

    rates: np.ndarray
    nonfinite: np.ndarray
    images: int

    @property
    def dead(self) -> np.ndarray:
        """Channels dead on every image ``(C,)`` bool: units that never fire."""
        return self.rates >= 1.0

    def text(self) -> str:
        """``"2 of 16 channels are dead on every image (3, 7); mean dead rate 18%"``."""
        dead = np.flatnonzero(self.dead)
        c = len(self.rates)
        head = (
            f"{len(dead)} of {c} channels are dead on every image ({', '.join(map(str, dead))})"
            if len(dead)
            else f"no channel of {c} is dead on every image"
        )
        text = f"{head}; mean dead rate {float(self.rates.mean()):.0%}"
        bad = int(self.nonfinite.sum())
        return text + (f"; {bad} NaN/infinite values" if bad else "")


def dead_channels(maps: np.ndarray) -> np.ndarray:
    """``(N, C)`` bool for a batch ``(N, C, H, W)`` (or ``(C,)`` for one ``(C, H, W)``):
    True where the channel's map is all exactly zero."""
    a = np.asarray(maps)
    return ~np.any(a != 0, axis=(-2, -1))


def dead_unit_rates(
    network: Network,
    images: np.ndarray,
    layer: int,
    cancel: Cancel = None,
    chunk: int | None = None,
) -> ProgressGen:
    """:class:`DeadUnits` of layer ``layer``'s output over ``images (N, C, H, W)``, in
    chunks (progress per chunk, the result on the last record)."""
    n = len(images)
    if n == 0:
        raise InsightError("the dataset is empty")
    shape = tuple(int(s) for s in images.shape[1:])
    out_shape = network.output_shapes(shape)[layer + 1] if 0 <= layer < len(network) else ()
    if len(out_shape) != 3:
        raise InsightError(f"layer {layer + 1} does not output (channels, height, width) maps")
    step = chunk or chunk_size(network, shape, layer)
    dead = np.zeros(out_shape[0], np.int64)
    nonfinite = np.zeros(out_shape[0], np.int64)
    for start in range(0, n, step):
        if cancelled(cancel):
            return
        out = forward_to(network, as_batch(network, images[start : start + step]), layer)[-1]
        dead += dead_channels(out).sum(axis=0)
        nonfinite += (~np.isfinite(out)).sum(axis=(0, 2, 3))
        done = min(n, start + step)
        yield Progress(done, n, f"{done}/{n} images")
    yield Progress(n, n, "done", result=DeadUnits(dead / n, nonfinite, n))


__all__ = ["DeadUnits", "dead_channels", "dead_unit_rates"]
