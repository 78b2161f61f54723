"""Conv filters as pictures, shared by the Training tab's filter grid and the Model tab's
filters view: a weight ``(O, C, kh, kw)`` tiled into one mosaic (one column per filter,
one row per input channel) in a diverging colour map, or, for a layer reading an RGB
image, one colour patch per filter stretched from its own minimum to its own maximum;
and the inverse, which weight a point of the mosaic shows (hover and click). Pure NumPy
(pyqtgraph only for the colour map's lookup table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg

GAP_RGBA = (236, 236, 236, 255)


def mosaic(weight: np.ndarray, gap: int = 1) -> tuple[np.ndarray, float]:
    """Tile a conv weight ``(O, C, kh, kw)`` into ``(C·(kh+gap)−gap, O·(kw+gap+1)−gap−1)``:
    one column per filter, one row per input channel, NaN in the gaps (filters are two
    pixels apart, channels one). Also return the colour limit ``max|w|`` (≥ 1e-8)."""
    o, c, kh, kw = weight.shape
    step_r, step_c = kh + gap, kw + gap + 1
    out = np.full((c * step_r - gap, o * step_c - gap - 1), np.nan, np.float32)
    for i in range(o):
        for j in range(c):
            out[j * step_r : j * step_r + kh, i * step_c : i * step_c + kw] = weight[i, j]
    finite = weight[np.isfinite(weight)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    return out, max(limit, 1e-8)


def to_rgba(values: np.ndarray, limit: float, cmap: pg.ColorMap) -> np.ndarray:
    """``(H, W)`` floats -> ``(H, W, 4)`` uint8: colormap over ``[-limit, limit]``, gaps grey."""
    nan = ~np.isfinite(values)
    with np.errstate(invalid="ignore"):
        t = np.clip((np.nan_to_num(values) / limit + 1.0) / 2.0, 0.0, 1.0)
    lut = cmap.getLookupTable(0.0, 1.0, 256, alpha=True)
    rgba = lut[np.round(t * 255).astype(np.intp)]
    rgba[nan] = GAP_RGBA
    return np.ascontiguousarray(rgba, dtype=np.uint8)


def colour_patches(weight: np.ndarray, gap: int = 1) -> np.ndarray:
    """An RGB-input conv weight ``(O, 3, kh, kw)`` -> ``(kh, O·(kw+gap+1)−gap−1, 4)`` uint8:
    one colour patch per filter (channels 0, 1, 2 as red, green, blue), each filter mapped
    linearly from its own minimum to its own maximum onto 0…255 (a constant filter is mid
    grey; a filter with a non-finite weight is drawn as a gap). Columns as :func:`mosaic`."""
    o, _, kh, kw = weight.shape
    step_c = kw + gap + 1
    out = np.empty((kh, o * step_c - gap - 1, 4), np.uint8)
    out[:] = GAP_RGBA
    for i in range(o):
        w = weight[i].astype(np.float64)
        if not np.isfinite(w).all():
            continue
        lo, hi = w.min(), w.max()
        t = (w - lo) / (hi - lo) if hi > lo else np.full_like(w, 0.5)
        out[:, i * step_c : i * step_c + kw, :3] = np.round(t.transpose(1, 2, 0) * 255)
    return out


@dataclass(frozen=True)
class Tap:
    """One weight position under the mouse: ``filter``, input ``channel`` (None for a colour
    patch, whose tap covers all three), kernel ``row`` and ``col``."""

    filter: int
    channel: int | None
    row: int
    col: int


def locate(shape: tuple[int, ...], colour: bool, x: float, y: float, gap: int = 1) -> Tap | None:
    """The tap at image position ``(x, y)`` of a layer's mosaic (None in a gap or outside):
    the inverse of :func:`mosaic` / :func:`colour_patches` for a weight of ``shape``."""
    o, c, kh, kw = shape
    if x < 0 or y < 0:
        return None
    filt, col = divmod(int(x), kw + gap + 1)
    if filt >= o or col >= kw:
        return None
    if colour:
        return Tap(filt, None, int(y), col) if int(y) < kh else None
    channel, row = divmod(int(y), kh + gap)
    if channel >= c or row >= kh:
        return None
    return Tap(filt, channel, row, col)


TICK_STEPS = (1, 2, 5, 10, 20, 50, 100)


def index_ticks(count: int, size: int, gap: int, step: int = 1) -> list[list[tuple[float, str]]]:
    """Axis ticks naming every ``step``-th of ``count`` tiles of ``size`` cells ``gap`` apart
    by its 0-based index (one level: pyqtgraph always draws the first level)."""
    return [[(k * (size + gap) + size / 2, str(k)) for k in range(0, count, step)]]


def tick_step(count: int, tile_pixels: float, label_pixels: float) -> int:
    """The smallest of :data:`TICK_STEPS` whose labels (``label_pixels`` wide, the widest
    index) do not touch when tiles are ``tile_pixels`` apart on screen."""
    for step in TICK_STEPS:
        if step >= count or step * tile_pixels >= label_pixels:
            return step
    return TICK_STEPS[-1]
