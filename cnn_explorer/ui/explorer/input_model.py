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
from PySide6.QtGui import QImage

from cnn_explorer.explorer.document import Document
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.common.number_model import ModelIndex, NumberTableModel, float32_problem

IMAGE_GRID = 32
"""Grids with a side above this show no numbers, so the table paints its cells from one
cached image (one drawImage per repaint) instead of asking the model for every visible
cell's colours; typing into a cell, selection, copy/paste and paint mode are unchanged."""
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
    """Table model over one channel of the document's input."""

    def __init__(self, doc: Document, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.channel = 0
        self._levels: tuple[float, float] = (0.0, 1.0)
        self._signed = False
        self._image: QImage | None = None
        self._image_rgba: np.ndarray | None = None
        self._idx: np.ndarray | None = None  # LUT index per cell of the shown channel
        self._texts: dict[tuple[int, int], str] = {}
        self._recolour()

    def _plane(self) -> np.ndarray:
        return self.doc.input[min(self.channel, self.doc.input.shape[0] - 1)]

    def _recolour(self) -> None:
        self._levels, self._signed = colors.nice_levels(*colors.finite_range(self.doc.input))

    def refresh(self, reset: bool, region: tuple[int, int, int, int] | None = None) -> None:
        """Re-read the document (reset for shape changes, dataChanged otherwise).

        With ``region`` and unchanged colour levels only those cells are repainted.
        """
        before = (self._levels, self._signed)
        self._recolour()
        if region is not None and not reset and before == (self._levels, self._signed):
            self._patch_image(region)
        else:
            self._image = None
            self._idx = None
            self._texts = {}
        if reset:
            self.beginResetModel()
            self.endResetModel()
        elif region is not None and before == (self._levels, self._signed):
            r0, r1, c0, c1 = region
            self.dataChanged.emit(self.index(r0, c0), self.index(r1, c1))
        else:
            h, w = self._plane().shape
            self.dataChanged.emit(self.index(0, 0), self.index(h - 1, w - 1))

    def image_mode(self) -> bool:
        """True when the view paints the cells from :meth:`image` (large grids)."""
        return max(self.doc.input.shape[1:]) > IMAGE_GRID

    def image(self) -> QImage:
        """The channel's cell colours, one pixel per cell (cached until the next refresh)."""
        if self._image is None:
            self._image_rgba = colors.rgba(self._plane(), self._levels, self._signed)
            h, w = self._image_rgba.shape[:2]
            self._image = QImage(self._image_rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
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
            return
        self._image_rgba[r0 : r1 + 1, c0 : c1 + 1] = colors.rgba(block, self._levels, self._signed)

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
            if self._idx is None:
                self._idx = colors.lut_indices(self._plane(), self._levels)
            bgs, fgs = colors.cell_colors(self._signed)
            i = int(self._idx[r, c])
            return bgs[i] if role == Qt.ItemDataRole.BackgroundRole else fgs[i]
        if role == Qt.ItemDataRole.DisplayRole:
            # Numbers only where cells are wide enough to read them (hover/tooltip else).
            side = max(self.doc.input.shape[1:])
            if side > IMAGE_GRID:
                return ""
            text = self._texts.get((r, c))
            if text is None:
                v = float(self._plane()[r, c])
                text = colors.fmt(v) if side <= 12 else colors.fmt_short(v)
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
            # Narrow columns of wide grids cannot hold every 2–3 digit number side by side
            # (they ran together as "101112…"): label every fifth one.
            if orientation == Qt.Orientation.Horizontal and self.columnCount() > 64 and section % 5:
                return ""
            return str(section)
        return None
