"""Where the feature maps go: tile sizes and the plan of every layer's section.

Pixel = scene unit: the view shows the scene 1:1 in a scroll area, so every number here
is a screen size. This module is arithmetic only (rectangles in, rectangles out); the
scene items are placed from a plan by ``map_scene.py``.

A *section* is one map (the input or one layer's output): a header line, then its
channels' tiles flowing left to right over the whole width, wrapping into rows, with the
colour bar at its right. Sections that fit side by side share a line (an arrow between
them), so a small network reads left to right and a wide layer fills the width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from PySide6.QtCore import QRectF

from cnn_explorer.ui.explorer.map_caption import CAPTION_H, HEADER_H

MARGIN = 12
GAP = 12
"""Horizontal space between two tiles of a row."""
ROW_GAP = 10
"""Vertical space between two rows of tiles."""
LINE_GAP = 18
"""Vertical space between two lines of sections."""
CBAR_W = 62
BAR_H_MIN = 72.0
"""A colour bar is at least this tall (three readable ticks), even beside a 1-row strip."""
ARROW_GAP = 30
"""Horizontal space between two sections on one line (an arrow points from one to the next)."""
CAPTION_MIN = 52
"""A tile's column is at least this wide, so its caption can say "ch 12" at least."""

SIDE_MIN = 160
"""Drawn side (px) of the smallest maps at the default tile size: room for big numbers."""
SIDE_MAX = 256
"""Drawn side (px) of every map from 16×16 up at the default tile size."""

TILE_PX_MIN, TILE_PX_MAX = 48, 480
"""Range of the tile-size slider: the drawn side of maps from 16×16 up."""
TILE_PX_DEFAULT = SIDE_MAX

OVERVIEW_CHANNELS = 8
"""In the automatic mode, maps with more channels than this are shown as an overview."""
THUMB_RATIO = 0.3
"""Overview thumbnails are this fraction of the tile size…"""
THUMB_MIN = 40
"""…but never smaller than this (px)."""
THUMB_GAP = 8
PICTURE_THUMB_RATIO = 0.45
"""The channels beside a 3-channel map drawn as a picture are this fraction of its size."""


def map_side(h: int, w: int) -> int:
    """On-screen size (px) of the longer side of an ``h×w`` map at the default tile size.

    ``64·√n`` for the longer side ``n``, held between :data:`SIDE_MIN` (n ≤ 6) and
    :data:`SIDE_MAX` (n ≥ 16): continuous and never decreasing, so maps of neighbouring
    sizes are drawn at neighbouring sizes (a 16×16 and a 17×17 map both 256 px), while
    the cells shrink smoothly (40 px for 4×4, 18 px for 12×12, 16 px for 16×16)."""
    n = max(h, w, 1)
    return int(min(SIDE_MAX, max(SIDE_MIN, 64 * math.sqrt(n))))


def tile_size(h: int, w: int, px: float, inner: float) -> tuple[int, int]:
    """``(width, height)`` in px of an ``h×w`` map when maps from 16×16 up are ``px``
    wide: :func:`map_side` scaled by ``px / SIDE_MAX`` (so every size keeps its place on
    the same continuous curve), the longer side at most ``inner``."""
    side = min(float(inner), map_side(h, w) * px / SIDE_MAX)
    n = max(h, w, 1)
    return max(4, int(side * w / n)), max(4, int(side * h / n))


@dataclass(frozen=True)
class SectionSpec:
    """What one section shows: ``channels`` maps of ``h×w`` under a header ``header_w``
    px wide, collapsed or not, as an overview (small tiles plus one enlarged) or not."""

    channels: int
    h: int
    w: int
    header_w: int
    collapsed: bool = False
    overview: bool = False
    picture: bool = False
    """A 3-channel map drawn as one picture, its channels small beside it (laid out
    like an overview: the picture takes the enlarged tile's place)."""


@dataclass
class SectionPlan:
    """Where one section's items go (scene coordinates)."""

    x: float
    y: float
    width: float
    height: float
    tiles: list[QRectF] = field(default_factory=list)
    """Map rectangle of each channel (its caption sits above it); empty when collapsed."""
    focus: QRectF | None = None
    """The enlarged tile of an overview (or the picture of a 3-channel map)."""
    bar: QRectF | None = None
    """The colour bar at its highest place; it slides down to ``bar_low`` while scrolling."""
    bar_low: float = 0.0
    arrow: bool = False
    """True when another section stands to its left on the same line."""
    wide: bool = False
    """True when its tiles wrap (it then has its line to itself)."""

    def moved(self, dx: float, dy: float) -> None:
        self.x += dx
        self.y += dy
        self.tiles = [r.translated(dx, dy) for r in self.tiles]
        if self.focus is not None:
            self.focus = self.focus.translated(dx, dy)
        if self.bar is not None:
            self.bar = self.bar.translated(dx, dy)
            self.bar_low += dy


def fit_px(px: float, specs: list[SectionSpec], inner: float) -> float:
    """The tile size at which the rows of the widest wrapping section end flush with the
    right edge: ``px`` shrunk until one more tile fits a row (or grown a little, at most
    15 %, when the row is that close to full); ``px`` when no section wraps. One size for
    every section, so maps of neighbouring sizes stay drawn at neighbouring sizes."""
    ref = 0
    for s in specs:
        if s.collapsed or s.overview or s.picture:
            continue
        tw, _ = tile_size(s.h, s.w, px, inner)
        cell = max(tw, CAPTION_MIN) + GAP
        if s.channels * cell - GAP > inner and tw > ref:
            ref = tw
    if ref < CAPTION_MIN:
        return px
    q = (inner + GAP) / (ref + GAP)
    per_row = math.floor(q) if q - math.floor(q) < 0.15 else math.ceil(q)
    return px * ((inner + GAP) / max(1, per_row) - GAP) / ref


def _flow(
    n: int,
    size: tuple[int, int],
    inner: float,
    start: tuple[float, float] = (0.0, 0.0),
    column: tuple[int, int] = (CAPTION_MIN, GAP),
) -> list[QRectF]:
    """``n`` tiles of ``size`` in rows of ``inner`` px. Rows above y ``start[1]`` begin
    at x ``start[0]`` (beside an overview's enlarged tile), later ones at 0. A column is
    at least ``column[0]`` wide, ``column[1]`` apart."""
    tw, th = size
    cell = max(tw, column[0]) + column[1]
    rects = []
    x_float, y_float = start
    x0 = x_float if y_float > 0 else 0.0
    x, y = x0, 0.0
    for _ in range(n):
        if x > x0 and x + tw > inner:
            y += CAPTION_H + th + ROW_GAP
            x0 = x_float if y < y_float else 0.0
            x = x0
        rects.append(QRectF(x, y + CAPTION_H, tw, th))
        x += cell
    return rects


def _overview(s: SectionSpec, px: float, inner: float) -> tuple[QRectF, list[QRectF]]:
    """An enlarged tile at the left and small tiles for every channel beside and below it."""
    tw, th = tile_size(s.h, s.w, px, inner)
    focus = QRectF(0, CAPTION_H, tw, th)
    f = max(THUMB_MIN, px * (PICTURE_THUMB_RATIO if s.picture else THUMB_RATIO)) / px
    small = (max(4, int(tw * f)), max(4, int(th * f)))
    beside = tw + 2 * GAP
    room = inner - beside >= 2 * (small[0] + THUMB_GAP)
    start = (beside, CAPTION_H + th) if room else (0.0, 0.0)
    top = 0.0 if room else CAPTION_H + th + ROW_GAP
    flow = _flow(s.channels, small, inner, start, (24, THUMB_GAP))
    thumbs = [r.translated(0, top) for r in flow]
    return focus, thumbs


def plan_section(s: SectionSpec, px: float, inner: float, with_bar: bool) -> SectionPlan:
    """One section at the origin: its tiles in ``inner`` px (colour bar not included)."""
    header_w = min(float(s.header_w), inner + (CBAR_W if with_bar else 0))
    plan = SectionPlan(0, 0, header_w, HEADER_H)
    if s.collapsed:
        return plan
    if s.overview or s.picture:
        plan.focus, plan.tiles = _overview(s, px, inner)
        rects = [*plan.tiles, plan.focus]
    else:
        plan.tiles = _flow(s.channels, tile_size(s.h, s.w, px, inner), inner)
        rects = plan.tiles
    body = QRectF()
    for r in rects:
        body = body.united(r.adjusted(0, -CAPTION_H, 0, 0))
    plan.wide = any(r.y() > rects[0].y() for r in plan.tiles) or s.overview or s.picture
    plan.height = HEADER_H + body.height()
    plan.width = max(header_w, body.width())
    plan.tiles = [r.translated(0, HEADER_H) for r in plan.tiles]
    if plan.focus is not None:
        plan.focus = plan.focus.translated(0, HEADER_H)
    if with_bar:
        first = plan.focus or plan.tiles[0]
        bar_h = min(max(first.height() + 12, BAR_H_MIN), max(body.height(), BAR_H_MIN))
        plan.bar = QRectF(body.width() + 6, HEADER_H + CAPTION_H - 6, CBAR_W - 6, bar_h)
        plan.bar_low = max(plan.bar.y(), HEADER_H + body.height() - bar_h)
        plan.width = max(plan.width, body.width() + CBAR_W)
        plan.height = max(plan.height, plan.bar.bottom())
    return plan


def inner_width(avail: int, with_bar: bool) -> float:
    """Width (px) a wrapping section's tiles flow in: ``avail`` less the margins and the
    colour bar."""
    return max(40.0, avail - 2 * MARGIN - (CBAR_W if with_bar else 0))


def plan_sections(
    specs: list[SectionSpec], px: float, avail: int, with_bar: bool
) -> tuple[list[SectionPlan], float, float]:
    """Place every section: left to right while they fit on the line, a wrapping one on a
    line of its own. Returns the plans, the widest line's right edge and the y below the
    last line."""
    inner = inner_width(avail, with_bar)
    plans: list[SectionPlan] = []
    x0, y, line_h, max_x = float(MARGIN), float(MARGIN), 0.0, 0.0
    for s in specs:
        plan = plan_section(s, px, inner, with_bar)
        if x0 > MARGIN and (plan.wide or x0 + plan.width > avail - MARGIN or plans[-1].wide):
            x0, y, line_h = float(MARGIN), y + line_h + LINE_GAP, 0.0
        plan.moved(x0, y)
        plan.arrow = x0 > MARGIN
        plans.append(plan)
        max_x = max(max_x, x0 + plan.width)
        x0 += plan.width + ARROW_GAP
        line_h = max(line_h, plan.height)
    return plans, max_x, y + line_h + LINE_GAP


def pinned_bar_y(plan: SectionPlan, view_top: float) -> float:
    """Where the colour bar of ``plan`` goes when the viewport starts at ``view_top``: at
    the top of the viewport while the section is in view, within the section's tiles."""
    if plan.bar is None:
        return 0.0
    return min(max(plan.bar.y(), view_top + 6), plan.bar_low)
