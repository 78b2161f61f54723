"""Colour maps and number formatting shared by the grid, kernel and feature-map views.

Signed data uses a diverging map centred on 0 (blue < 0 < red, white at 0); non-negative
data a sequential map (dark = 0). Every view picks colours through here so the same value
looks the same everywhere.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

DIVERGING = pg.colormap.get("CET-D1A")
SEQUENTIAL = pg.colormap.get("viridis")
_LUT_DIV = DIVERGING.getLookupTable(nPts=256, alpha=False)
_LUT_SEQ = SEQUENTIAL.getLookupTable(nPts=256, alpha=False)


def lut(signed: bool) -> np.ndarray:
    """``(256, 3)`` uint8 lookup table for ImageItem.setLookupTable."""
    return _LUT_DIV if signed else _LUT_SEQ


_ARGB32: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def lut_argb32(table: np.ndarray) -> np.ndarray:
    """``(N,)`` uint32 ``0xFFRRGGBB`` pixels of an ``(N, 3)`` uint8 LUT, for building
    QImage.Format_RGB32 images with one ``take``; cached per table object."""
    hit = _ARGB32.get(id(table))
    if hit is None or hit[0] is not table:
        t = table.astype(np.uint32)
        px = (0xFF000000 | (t[:, 0] << 16) | (t[:, 1] << 8) | t[:, 2]).astype(np.uint32)
        hit = (table, px)
        _ARGB32[id(table)] = hit
    return hit[1]


def levels_for(lo: float, hi: float) -> tuple[tuple[float, float], bool]:
    """``((low, high), signed)`` display levels for data spanning ``[lo, hi]``.

    Signed data: symmetric ``(-m, m)`` so 0 is the middle colour. Non-negative data:
    ``(0, hi)`` so 0 is the darkest colour. Degenerate ranges get a unit span; NaN/inf
    bounds are ignored.
    """
    if not np.isfinite(lo):
        lo = 0.0
    if not np.isfinite(hi):
        hi = 0.0
    if lo < 0:
        m = max(abs(lo), abs(hi)) or 1.0
        return (-m, m), True
    return (0.0, hi if hi > 0 else 1.0), False


_NICE = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def nice_ceil(v: float) -> float:
    """Smallest "nice" number ≥ v (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k); 0 stays 0.

    Used for editor colour scales so they do not shift (and repaint every cell) on
    each small edit, while small integers (1, 2, 3, 4, 5…) stay exact.
    """
    if v <= 0 or not np.isfinite(v):
        return 0.0 if v == 0 or not np.isfinite(v) else -nice_ceil(-v)
    e = 10.0 ** np.floor(np.log10(v))
    m = v / e
    for n in _NICE:
        if m <= n * (1 + 1e-9):
            return float(n * e)
    return float(10 * e)


def nice_levels(lo: float, hi: float) -> tuple[tuple[float, float], bool]:
    """Like :func:`levels_for` but with the bound rounded up to a nice number."""
    (_, b), signed = levels_for(lo, hi)
    if signed:
        m = nice_ceil(b)
        return (-m, m), True
    return (0.0, nice_ceil(b)), False


def finite_range(a: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` of the finite values of ``a`` (``(0, 0)`` if none)."""
    if a.size == 0:
        return 0.0, 0.0
    lo, hi = float(np.min(a)), float(np.max(a))
    if np.isfinite(lo) and np.isfinite(hi):
        return lo, hi
    with np.errstate(all="ignore"):
        f = a[np.isfinite(a)]
    return (float(f.min()), float(f.max())) if f.size else (0.0, 0.0)


def qcolor(value: float, levels: tuple[float, float], signed: bool) -> QColor:
    """The colour a value gets under ``levels`` (used by table cells)."""
    if not np.isfinite(value):
        return QColor(255, 0, 255)
    lo, hi = levels
    t = 0.5 if hi == lo else (value - lo) / (hi - lo)
    i = round(min(1.0, max(0.0, t)) * 255)
    r, g, b = lut(signed)[i][:3]
    return QColor(int(r), int(g), int(b))


def lut_indices(a: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    """LUT entry (0..255) :func:`qcolor` uses for each value of ``a``; −1 for NaN/inf."""
    lo, hi = levels
    with np.errstate(all="ignore"):
        t = np.full(a.shape, 0.5) if hi == lo else (a.astype(np.float64) - lo) / (hi - lo)
        idx = np.rint(np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0) * 255).astype(np.int16)
    idx[~np.isfinite(a)] = -1
    return idx


def rgba(a: np.ndarray, levels: tuple[float, float], signed: bool) -> np.ndarray:
    """``(H, W, 4)`` uint8 colours of a 2-D array, exactly as :func:`qcolor` colours each
    value (NaN/inf magenta), computed in a few vectorised passes instead of per cell."""
    idx = lut_indices(a, levels)
    out = np.empty((*a.shape, 4), np.uint8)
    out[..., :3] = lut(signed)[np.maximum(idx, 0)][..., :3]
    out[..., 3] = 255
    out[idx < 0] = (255, 0, 255, 255)
    return out


_CELL_COLORS: dict[bool, tuple[list[QColor], list[QColor]]] = {}


def cell_colors(signed: bool) -> tuple[list[QColor], list[QColor]]:
    """``(backgrounds, texts)``: 257 ready-made QColors indexed by :func:`lut_indices`
    (index −1, the last entry, is the magenta of NaN/inf), so a table model returns a
    cell's colours without building a QColor per cell and paint."""
    if signed not in _CELL_COLORS:
        bgs = [QColor(int(r), int(g), int(b)) for r, g, b in lut(signed)[:, :3]]
        bgs.append(QColor(255, 0, 255))
        _CELL_COLORS[signed] = (bgs, [text_color(c) for c in bgs])
    return _CELL_COLORS[signed]


def text_color(bg: QColor) -> QColor:
    """Black or white, whichever reads better on ``bg``."""
    lum = 0.299 * bg.redF() + 0.587 * bg.greenF() + 0.114 * bg.blueF()
    return QColor(0, 0, 0) if lum > 0.55 else QColor(255, 255, 255)


def lut_text_colors(signed: bool) -> list[QColor]:
    """For each of the 256 LUT entries, the readable text colour."""
    return [text_color(QColor(int(r), int(g), int(b))) for r, g, b in lut(signed)[:, :3]]


def snap(v: float, scale: float) -> float:
    """0 for float noise (|v| below 1e-6 of the data's scale), else v — so a mean of
    -6.8e-10 on a map spanning ±3 reads as 0."""
    return 0.0 if abs(v) <= 1e-6 * scale else v


def fmt(v: float, digits: int = 3) -> str:
    """Compact cell label: integers without decimals, others with ``digits`` significant."""
    if not np.isfinite(v):
        return "nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.{digits}g}"


def fmt_short(v: float) -> str:
    """At most ~4 characters for narrow cells: integers as is, else 2 decimals ("0.05")."""
    if not np.isfinite(v) or (v == int(v) and abs(v) < 1e4):
        return fmt(v)
    if abs(v) >= 100:
        return f"{v:.0f}"
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


DISPLAY_MODES = ("Auto", "Colour map", "Grey", "RGB")
"""How an input (the grid, and 3-channel maps in the feature-map view) is coloured."""
PICTURE_SIDE = 32
"""A 1-channel input with a side above this is a picture: "Auto" shows it in grey."""


def resolve_display(mode: str, shape: tuple[int, ...], is_input: bool = True) -> str:
    """What a ``(C, H, W)`` map shows under the display ``mode``: "Colour map", "Grey" or
    "RGB". "Auto" is the colour composite for a 3-channel input (a photo), grey for a
    1-channel input too big for numbers, else the colour map — decided by shape alone, so
    an edit never flips every colour. Feature maps (``is_input`` False) keep their colour
    maps under "Auto"; "RGB" falls back to grey when there are not 3 channels."""
    if mode not in DISPLAY_MODES:
        raise ValueError(f"unknown display mode {mode!r}")
    if mode == "RGB" and shape[0] != 3:
        mode = "Grey"
    if mode != "Auto":
        return mode
    if not is_input:
        return "Colour map"
    if shape[0] == 3:
        return "RGB"
    return "Grey" if max(shape[1:]) > PICTURE_SIDE else "Colour map"


def picture_rgba(x: np.ndarray, mode: str, levels: tuple[float, float]) -> np.ndarray:
    """``(H, W, 4)`` uint8 picture of ``(C, H, W)`` values under a resolved picture
    ``mode`` ("RGB" or "Grey")."""
    return composite_rgba(x, levels) if mode == "RGB" else grey_rgba(x, levels)


LUMA = (0.299, 0.587, 0.114)
"""ITU-R BT.601 weights of red, green and blue in the luminance of a colour."""


def image_levels(lo: float, hi: float) -> tuple[float, float]:
    """``(black, white)`` of an input with finite values in ``[lo, hi]`` shown as a
    picture: ``(0, 1)`` for values in that range (a loaded image is in [0, 1], so its
    pixels come back unchanged), otherwise ``(lo, hi)`` (a unit span if it is flat)."""
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    if hi <= lo:
        return lo - 0.5, lo + 0.5
    return lo, hi


def _bytes(a: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    """Values → 0..255 under ``levels`` (clipped; NaN → 0)."""
    lo, hi = levels
    with np.errstate(all="ignore"):  # in place: the same float64 steps, half the time
        t = a.astype(np.float64)
        t -= lo
        t /= hi - lo
    np.nan_to_num(t, copy=False, nan=0.0)
    np.clip(t, 0.0, 1.0, out=t)
    t *= 255.0
    return np.rint(t, out=t).astype(np.uint8)


def grey_rgba(x: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    """``(H, W, 4)`` uint8 grey picture of a ``(C, H, W)`` input: its one channel, or the
    luminance (:data:`LUMA`) of three; a cell with a NaN/inf is magenta as everywhere."""
    lum = x[0] if x.shape[0] != 3 else sum(w * x[i].astype(np.float64) for i, w in enumerate(LUMA))
    g = _bytes(np.asarray(lum), levels)
    out = np.empty((*g.shape, 4), np.uint8)
    out[..., 0] = out[..., 1] = out[..., 2] = g
    out[..., 3] = 255
    out[~np.isfinite(x).all(axis=0)] = (255, 0, 255, 255)
    return out


def composite_rgba(x: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    """``(H, W, 4)`` uint8 colour picture of a 3-channel ``(3, H, W)`` input (red, green,
    blue under one set of levels, so an image in [0, 1] shows its own pixels); other
    channel counts fall back to :func:`grey_rgba`."""
    if x.shape[0] != 3:
        return grey_rgba(x, levels)
    out = np.empty((*x.shape[1:], 4), np.uint8)
    for i in range(3):
        out[..., i] = _bytes(x[i], levels)
    out[..., 3] = 255
    out[~np.isfinite(x).all(axis=0)] = (255, 0, 255, 255)
    return out


def image_rgba(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] -> ``(H, W, 4)`` uint8 for display (gray or RGB)."""
    img = np.clip(np.nan_to_num(image), 0, 1)
    rgb = np.repeat(img[:1], 3, axis=0) if img.shape[0] != 3 else img
    out = np.empty((*img.shape[1:], 4), np.uint8)
    out[..., :3] = np.round(rgb.transpose(1, 2, 0) * 255)
    out[..., 3] = 255
    return out
