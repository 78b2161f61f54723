"""Where compare mode's items go: three columns A | B | B − A, one row per map.

Arithmetic only (rectangles out), like ``map_layout.py``, whose tile sizes it reuses so a
map is drawn the same size as in the feature-map view when the column has room. Each
column is followed by room for a colour bar: A and B share the bar right of B (one scale
per layer on both sides), the difference has its own diverging bar at the far right.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF

from cnn_explorer.ui.explorer.map_caption import CAPTION_H
from cnn_explorer.ui.explorer.map_layout import (
    CBAR_W,
    GAP,
    MARGIN,
    TILE_PX_DEFAULT,
    tile_size,
)

SIDES = ("a", "b", "d")
"""The three columns: A (the document), B (its edited copy), B − A."""
COL_GAP = 16
"""Space between a column (or its colour bar) and the next column."""
PER_ROW = 4
"""A multi-channel map shrinks its tiles until at least this many fit in a row."""
TILE_MIN = 28
ROW_GAP = 8
"""Vertical space between two rows of tiles of one map."""
COL_MIN = 90


def column_width(avail: float) -> float:
    """Width (px) of each of the three columns in a view ``avail`` px wide."""
    inner = avail - 2 * MARGIN - 2 * CBAR_W - 2 * COL_GAP
    return max(float(COL_MIN), math.floor(inner / 3))


def column_x(avail: float) -> dict[str, float]:
    """Left edge of each column (``SIDES``)."""
    cw = column_width(avail)
    xa = float(MARGIN)
    xb = xa + cw + COL_GAP
    xd = xb + cw + CBAR_W + COL_GAP
    return {"a": xa, "b": xb, "d": xd}


def grid_tiles(shape: tuple[int, int, int], cw: float) -> tuple[list[QRectF], float]:
    """Map rectangles (caption above each) for the ``C`` channels of an ``(C, H, W)`` map in
    a column ``cw`` px wide, relative to the column's top-left, and the block's height.
    One channel is drawn as in the feature-map view (at most the column's width); several
    share each row, :data:`PER_ROW` of them (twice that beyond 16 channels) or as many as
    fit at :data:`TILE_MIN` px, each as large as the row allows."""
    c, h, w = shape
    tw, th = tile_size(h, w, TILE_PX_DEFAULT, cw)
    if c > 1:
        cap = PER_ROW if c <= 16 else 2 * PER_ROW
        per_row = min(c, cap, max(1, int((cw + GAP) // (TILE_MIN + GAP))))
        f = min(1.0, ((cw + GAP) / per_row - GAP) / max(tw, th))
        tw, th = max(4, int(tw * f)), max(4, int(th * f))
    else:
        per_row = 1
    rects = []
    for i in range(c):
        r, q = divmod(i, per_row)
        rects.append(QRectF(q * (tw + GAP), r * (CAPTION_H + th + ROW_GAP) + CAPTION_H, tw, th))
    rows = math.ceil(c / per_row)
    return rects, rows * (CAPTION_H + th) + (rows - 1) * ROW_GAP
