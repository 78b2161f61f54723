"""A 3-channel map drawn as one picture: the RGB composite (or its grey luminance) of a
photo input, or of any 3-channel map when the input display asks for it.

The tile is a :class:`MapTile` whose channel is :data:`COMPOSITE`: it is placed, hovered,
clicked and highlighted like the others, only its values are a picture (the three
channels under one black…white range, see ``colors.picture_rgba``) and its caption names
what it shows instead of statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor

from cnn_explorer.explorer.results import Results
from cnn_explorer.explorer.stats import MapStats
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.explorer.map_items import COMPOSITE, DISPLAY_MAX, MapTile

__all__ = ["COMPOSITE", "PICTURE_HINT", "CompositeTile", "composite_mode"]

PICTURE_HINT = "shown as {} (the input's Show) · channels beside it"
"""The header hint of a map drawn as a picture ("RGB" or "Grey")."""


def composite_mode(display: str, m: int, shape: tuple[int, int, int]) -> str | None:
    """How map ``m`` of ``shape`` ``(C, H, W)`` is drawn as one picture under the input
    display ``display`` ("RGB" or "Grey"), or None for separate colour-mapped channels.

    Only 3-channel maps are pictures; under "Auto" only the input is (a photo), feature
    maps keep their colour maps."""
    if shape[0] != 3:
        return None
    mode = colors.resolve_display(display, shape, is_input=m == 0)
    return mode if mode in ("RGB", "Grey") else None


@dataclass
class CompositeTile(MapTile):
    """The picture of a 3-channel map (channel :data:`COMPOSITE`)."""

    mode: str = "RGB"
    """"RGB" (red, green, blue = channels 0, 1, 2) or "Grey" (their luminance)."""
    picture: np.ndarray | None = None
    """``(H, W, 4)`` uint8 colours last shown."""

    def offer(self, res: Results, st: MapStats, title: str, only: frozenset[int] | None) -> None:
        """Take the map's current values (unless no channel changed and the range stays)."""
        levels = colors.image_levels(*st.range())
        if only is not None and not only and self.pending is None and levels == self.levels:
            return
        self.pending = (res.maps[self.map_index], levels, title)

    def flush(self, text_colors: dict[bool, list[QColor]], numbers_visible: bool) -> None:
        """Draw the pending values as a picture, with a caption naming it."""
        x, levels, title = self.pending  # type: ignore[misc]
        self.pending = None
        self.picture = colors.picture_rgba(x, self.mode, levels)
        hh, ww = x.shape[1:]
        step = max(1, min(hh, ww) // DISPLAY_MAX)
        self.image.data2d = x[0]
        self.image.setImage(self.picture[::step, ::step], autoLevels=False)
        if self.shape != (hh, ww):
            self.image.setRect(QRectF(0, 0, ww, hh))
            self.shape = (hh, ww)
        self.levels = levels
        lo, hi = colors.fmt(levels[0]), colors.fmt(levels[1])
        what = "RGB of channels 0, 1, 2" if self.mode == "RGB" else "grey of channels 0–2"
        self.caption.set_labels([f"{what} · {lo}…{hi}", what, self.mode])
        self.title_text = self.caption.text
        shades = (
            "red, green, blue = channels 0, 1, 2"
            if self.mode == "RGB"
            else "grey = luminance of channels 0, 1, 2"
        )
        self._set_tip(
            f"{title}, drawn as a picture\n{shades}\nblack…white = {lo}…{hi}\n"
            "The channels are drawn small beside it; hover to read the three values."
        )

    def export_rgb(self) -> np.ndarray:
        """``(H, W, 3)`` uint8: the picture as shown."""
        if self.picture is None:
            return np.zeros((*self.shape, 3), np.uint8)
        return np.ascontiguousarray(self.picture[..., :3])
