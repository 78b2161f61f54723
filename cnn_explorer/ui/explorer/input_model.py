"""The input grid's table model: one channel of the document's input as editable numbers,
coloured by value, plus the parser for pasted blocks.

Colours and texts are cached and patched per edited region, because a repaint asks for
several roles of every visible cell; large grids paint from one cached image instead
(see :class:`~cnn_explorer.ui.explorer.grid_table.GridTable`).
"""

from __future__ import annotations

import re

import numpy as np
from PySide6.QtCore import QModelIndex, QObject, Qt
from PySide6.QtGui import QColor, QImage

from cnn_explorer.explorer.document import Document
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.common.number_model import ModelIndex, NumberTableModel, float32_problem

IMAGE_GRID = colors.PICTURE_SIDE
"""Grids with a side above this open fitted to the panel (a picture) and, with one
channel, show in grey under the "Auto" display."""
MIN_NUMBER_PX = 18
"""Cells narrower than this show no numbers, so the table paints its cells from one cached
image (one drawImage per repaint) instead of asking the model for every visible cell's
colours; typing into a cell, selection, copy/paste and paint mode are unchanged."""
FULL_NUMBER_PX = 40
"""Cells at least this wide show 3 significant digits, narrower ones at most ~4 characters."""
DISPLAY_MODES = colors.DISPLAY_MODES
"""How the input grid colours its cells (see :class:`InputModel`)."""
_SPLIT = re.compile(r"[,\t; ]+")


def parse_block(text: str) -> np.ndarray:
    """Rows of numbers separated by tabs, commas, semicolons or spaces → 2-D float32.

    Raises ValueError naming the first bad token (not a number, or no finite float32).
    Short rows are padded with 0.
    """
    rows = []
    for line_no, line in enumerate(text.strip().splitlines(), 1):
        if not line.strip():
            continue
        vals = []
        for tok in _SPLIT.split(line.strip()):
            try:
                v = float(tok.replace("−", "-"))
            except ValueError:
                raise ValueError(f"line {line_no}: {tok!r} is not a number") from None
            problem = float32_problem(v)
            if problem is not None:
                raise ValueError(f"line {line_no}: {tok!r} {problem}")
            vals.append(v)
        rows.append(vals)
    if not rows:
        raise ValueError("the clipboard holds no numbers")
    width = max(len(r) for r in rows)
    out = np.zeros((len(rows), width), np.float32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


class InputModel(NumberTableModel):
    """Table model over the document's input: one channel's numbers, coloured as chosen.

    ``display`` is view state (never an undo step): "Auto", "Colour map" (the diverging or
    sequential map of the edited channel), "Grey" (the luminance of the input) or "RGB"
    (the colour composite of a 3-channel input). ``cell_px`` is the side of a cell on
    screen, set by the view: numbers are shown only where they fit.
    """

    def __init__(self, doc: Document, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.channel = 0
        self.display = "Auto"
        self.cell_px = 30
        self.col_step = self.row_step = 1
        self._levels: tuple[float, float] = (0.0, 1.0)
        self._signed = False
        self._picture_levels: tuple[float, float] = (0.0, 1.0)
        self._shown = "Colour map"
        self._image: QImage | None = None
        self._image_rgba: np.ndarray | None = None
        self._idx: np.ndarray | None = None  # LUT index per cell of the shown channel
        self._texts: dict[tuple[int, int], str] = {}
        self._recolour()

    def _plane(self) -> np.ndarray:
        return self.doc.input[min(self.channel, self.doc.input.shape[0] - 1)]

    def shown_as(self) -> str:
        """What the cells show: "Colour map", "Grey" or "RGB" (cached per refresh)."""
        return self._shown

    def _resolve_display(self) -> str:
        """What the cells show: "Colour map", "Grey" or "RGB" ("Auto" resolved: the colour
        composite for 3 channels, grey for a 1-channel grid too big for numbers — a
        picture — and the colour map otherwise; decided by shape alone, so an edit never
        flips the whole grid to other colours)."""
        return colors.resolve_display(self.display, self.doc.input.shape)

    def set_display(self, mode: str) -> None:
        """Show the cells as ``mode`` (one of :data:`DISPLAY_MODES`)."""
        if mode not in DISPLAY_MODES:
            raise ValueError(f"unknown display mode {mode!r}")
        self.display = mode
        self.refresh(False)

    def set_cell_px(self, px: int, col_step: int = 1, row_step: int = 1) -> None:
        """The cells' side on screen (numbers follow) and which header sections are
        labelled (every ``col_step``-th column, ``row_step``-th row)."""
        changed = (px, col_step, row_step) != (self.cell_px, self.col_step, self.row_step)
        self.cell_px, self.col_step, self.row_step = px, col_step, row_step
        if changed:  # the texts follow the size; the colours do not (kept: ~5 ms on 512²)
            self._texts = {}
            h, w = self._plane().shape
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, w - 1)
            self.headerDataChanged.emit(Qt.Orientation.Vertical, 0, h - 1)
            self.dataChanged.emit(self.index(0, 0), self.index(h - 1, w - 1))

    def _recolour(self) -> None:
        lo, hi = colors.finite_range(self.doc.input)
        self._levels, self._signed = colors.nice_levels(lo, hi)
        self._picture_levels = colors.image_levels(lo, hi)
        self._shown = self._resolve_display()

    def _key(self) -> tuple[object, ...]:
        """What every cell's colour depends on. Only the levels of the mode shown count: a
        picture's levels follow the exact range, and in the colour map they would make
        every edit that moves the minimum or maximum repaint the whole grid (~20 ms on
        28×28, measured)."""
        mode = self.shown_as()
        levels = (self._levels, self._signed) if mode == "Colour map" else self._picture_levels
        return (levels, mode, self.channel)

    def refresh(self, reset: bool, region: tuple[int, int, int, int] | None = None) -> None:
        """Re-read the document (reset for shape changes, dataChanged otherwise).

        With ``region`` and unchanged colour levels only those cells are repainted.
        """
        before = self._key()
        self._recolour()
        same = before == self._key()
        if region is not None and not reset and same:
            self._patch_image(region)
        else:
            self._image = None
            self._image_rgba = None
            self._idx = None
            self._texts = {}
        if reset:
            self.beginResetModel()
            self.endResetModel()
        elif region is not None and same:
            r0, r1, c0, c1 = region
            self.dataChanged.emit(self.index(r0, c0), self.index(r1, c1))
        else:
            h, w = self._plane().shape
            self.dataChanged.emit(self.index(0, 0), self.index(h - 1, w - 1))

    def numbers_shown(self) -> bool:
        """True when cells are big enough to show their numbers."""
        return self.cell_px >= MIN_NUMBER_PX

    def image_mode(self) -> bool:
        """True when the view paints the cells from :meth:`image` (cells without numbers)."""
        return not self.numbers_shown()

    def _rgba(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """``(r1-r0, c1-c0, 4)`` uint8 colours of a block of cells as currently shown."""
        mode = self.shown_as()
        if mode == "Colour map":
            return colors.rgba(self._plane()[r0:r1, c0:c1], self._levels, self._signed)
        block = self.doc.input[:, r0:r1, c0:c1]
        return colors.picture_rgba(block, mode, self._picture_levels)

    def pixels(self) -> np.ndarray:
        """``(H, W, 4)`` uint8 colours of every cell as shown (cached until the next
        refresh; what :meth:`image` wraps)."""
        if self._image_rgba is None or self._image_rgba.shape[:2] != self._plane().shape:
            h, w = self._plane().shape
            self._image_rgba = np.ascontiguousarray(self._rgba(0, h, 0, w))
            self._image = None
        return self._image_rgba

    def image(self) -> QImage:
        """The cells' colours, one pixel per cell (cached until the next refresh)."""
        rgba = self.pixels()
        if self._image is None:
            h, w = rgba.shape[:2]
            self._image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
        return self._image

    def _patch_image(self, region: tuple[int, int, int, int]) -> None:
        """Recolour only ``region`` of the cached colours (a cell edit)."""
        r0, r1, c0, c1 = region
        block = self._plane()[r0 : r1 + 1, c0 : c1 + 1]
        if self._idx is not None and self._idx.shape == self._plane().shape:
            self._idx[r0 : r1 + 1, c0 : c1 + 1] = colors.lut_indices(block, self._levels)
        else:
            self._idx = None
        if (r1 - r0 + 1) * (c1 - c0 + 1) > 64:
            self._texts = {}
        else:
            for r in range(r0, r1 + 1):
                for c in range(c0, c1 + 1):
                    self._texts.pop((r, c), None)
        if self._image_rgba is None or self._image_rgba.shape[:2] != self._plane().shape:
            self._image = None
            self._image_rgba = None
            return
        self._image_rgba[r0 : r1 + 1, c0 : c1 + 1] = self._rgba(r0, r1 + 1, c0, c1 + 1)

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self.doc.input.shape[1]

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self.doc.input.shape[2]

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """Cell value, text and colours; colours and texts come from caches refreshed on
        each change, because a repaint asks for several roles of every visible cell."""
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole):
            if self.shown_as() != "Colour map":
                px = self.pixels()[r, c]
                bg = QColor(int(px[0]), int(px[1]), int(px[2]))
                return bg if role == Qt.ItemDataRole.BackgroundRole else colors.text_color(bg)
            if self._idx is None:
                self._idx = colors.lut_indices(self._plane(), self._levels)
            bgs, fgs = colors.cell_colors(self._signed)
            i = int(self._idx[r, c])
            return bgs[i] if role == Qt.ItemDataRole.BackgroundRole else fgs[i]
        if role == Qt.ItemDataRole.DisplayRole:
            # Numbers only where cells are wide enough to read them (hover/tooltip else).
            if not self.numbers_shown():
                return ""
            text = self._texts.get((r, c))
            if text is None:
                v = float(self._plane()[r, c])
                text = colors.fmt(v) if self.cell_px >= FULL_NUMBER_PX else colors.fmt_short(v)
                self._texts[(r, c)] = text
            return text
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return Qt.AlignmentFlag.AlignCenter
        if role == Qt.ItemDataRole.EditRole:
            return f"{float(self._plane()[r, c]):g}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"input[{self.channel},{r},{c}] = {float(self._plane()[r, c]):.6g}"
        return None

    def commit(self, row: int, col: int, value: float) -> None:
        self.doc.set_cell(self.channel, row, col, value)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{'column' if orientation == Qt.Orientation.Horizontal else 'row'} {section}"
        if role == Qt.ItemDataRole.DisplayRole:
            # Narrow cells cannot hold every 2–3 digit number side by side (they ran
            # together as "101112…"): the view says how many sections one label spans.
            horizontal = orientation == Qt.Orientation.Horizontal
            step = self.col_step if horizontal else self.row_step
            return "" if section % step else str(section)
        return None
