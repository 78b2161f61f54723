"""Spreadsheet-like editor of the input grid: type, paint, fill, paste, presets, resize.

A QTableView over :class:`InputModel`, which reads the document's input and turns edits
into document intents (undo commands). Cells are coloured by value with the number shown.
Paint mode turns a mouse drag into one stroke: cells change live and the stroke is one
undo step. Bad input (a non-number, a paste with text) is reported through
:attr:`GridEditor.message`, never raised.
"""

from __future__ import annotations

import re

import numpy as np
from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QRectF,
    QSignalBlocker,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QGuiApplication, QImage, QKeySequence, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer import presets
from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.model import Change
from cnn_explorer.limits import MAX_INPUT_SIDE as MAX_SIDE
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.common.number_model import ModelIndex, NumberTableModel

IMAGE_GRID = 32
"""Grids with a side above this show no numbers, so the table paints its cells from one
cached image (one drawImage per repaint) instead of asking the model for every visible
cell's colours; typing into a cell, selection, copy/paste and paint mode are unchanged."""
_SPLIT = re.compile(r"[,\t; ]+")


def parse_block(text: str) -> np.ndarray:
    """Rows of numbers separated by tabs, commas, semicolons or spaces → 2-D float32.

    Raises ValueError naming the first bad token. Short rows are padded with 0.
    """
    rows = []
    for line_no, line in enumerate(text.strip().splitlines(), 1):
        if not line.strip():
            continue
        vals = []
        for tok in _SPLIT.split(line.strip()):
            try:
                vals.append(float(tok.replace("−", "-")))
            except ValueError:
                raise ValueError(f"line {line_no}: {tok!r} is not a number") from None
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


class GridTable(QTableView):
    """The table: copy/paste shortcuts and paint strokes."""

    def __init__(self, editor: GridEditor) -> None:
        super().__init__()
        self.editor = editor
        self.painting = False
        self._stroke_active = False
        self._last_cell: tuple[int, int] | None = None
        self.viewport().installEventFilter(self)

    def keyPressEvent(self, event: object) -> None:
        if event.matches(QKeySequence.StandardKey.Copy):  # type: ignore[attr-defined]
            self.editor.copy_selection()
            return
        if event.matches(QKeySequence.StandardKey.Paste):  # type: ignore[attr-defined]
            self.editor.paste()
            return
        if (
            event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)
            and self.state() != QAbstractItemView.State.EditingState
        ):  # type: ignore[attr-defined]
            self.editor.fill_selection(0.0)
            return
        super().keyPressEvent(event)  # type: ignore[arg-type]

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if not self.painting:
            return False
        t = event.type()
        if t == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            self._stroke_active = True
            self.editor.doc.begin_stroke()
            self._paint_at(event.position().toPoint())  # type: ignore[attr-defined]
            return True
        if t == QEvent.Type.MouseMove and self._stroke_active:
            self._paint_at(event.position().toPoint())  # type: ignore[attr-defined]
            return True
        if t == QEvent.Type.MouseButtonRelease and self._stroke_active:
            self._stroke_active = False
            self._last_cell = None
            self.editor.doc.end_stroke()
            return True
        return t == QEvent.Type.MouseButtonDblClick

    def paintEvent(self, event: object) -> None:
        """Large grids: the visible cells in one drawImage, then selection and focus."""
        model = self.editor.model
        if not model.image_mode():
            super().paintEvent(event)  # type: ignore[arg-type]
            return
        hh, vh = self.horizontalHeader(), self.verticalHeader()
        vp = self.viewport()
        rows, cols = model.rowCount(), model.columnCount()
        c0, r0 = max(0, hh.logicalIndexAt(0)), max(0, vh.logicalIndexAt(0))
        c1 = hh.logicalIndexAt(vp.width() - 1)
        r1 = vh.logicalIndexAt(vp.height() - 1)
        c1 = cols - 1 if c1 < 0 else c1
        r1 = rows - 1 if r1 < 0 else r1
        cw, rh = hh.sectionSize(0), vh.sectionSize(0)
        x0, y0 = hh.sectionViewportPosition(c0), vh.sectionViewportPosition(r0)
        p = QPainter(vp)
        p.fillRect(vp.rect(), self.palette().base())
        p.drawImage(
            QRectF(x0, y0, (c1 - c0 + 1) * cw, (r1 - r0 + 1) * rh),
            model.image(),
            QRectF(c0, r0, c1 - c0 + 1, r1 - r0 + 1),
        )
        sel = self.selectionModel()
        if sel is not None:
            hl = QColor(self.palette().highlight().color())
            hl.setAlpha(90)
            for rng in sel.selection():
                rect = self.visualRect(rng.topLeft()).united(self.visualRect(rng.bottomRight()))
                p.fillRect(rect, hl)
            cur = self.currentIndex()
            if cur.isValid():
                p.setPen(QPen(QColor(20, 20, 20), 2))
                p.drawRect(self.visualRect(cur).adjusted(1, 1, -1, -1))
        p.end()

    def _paint_at(self, pos: object) -> None:
        idx = self.indexAt(pos)  # type: ignore[arg-type]
        if not idx.isValid():
            return
        cell = (idx.row(), idx.column())
        cells = _line(self._last_cell, cell) if self._last_cell else [cell]
        self._last_cell = cell
        self.editor.doc.paint(self.editor.model.channel, cells, self.editor.brush.value())


def _line(a: tuple[int, int], b: tuple[int, int]) -> list[tuple[int, int]]:
    """Cells on the segment a→b (so a fast drag leaves no gaps)."""
    n = max(abs(b[0] - a[0]), abs(b[1] - a[1]), 1)
    return sorted(
        {
            (round(a[0] + (b[0] - a[0]) * i / n), round(a[1] + (b[1] - a[1]) * i / n))
            for i in range(n + 1)
        }
    )


class GridEditor(QWidget):
    """Input editor panel: toolbar + table."""

    message = Signal(str)
    image_requested = Signal()

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.model = InputModel(doc, self)
        self.model.rejected.connect(self.message)
        self.table = GridTable(self)
        self.table.setModel(self.model)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ContiguousSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.AnyKeyPressed
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        for hdr in (self.table.horizontalHeader(), self.table.verticalHeader()):
            hdr.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
            hdr.setMinimumSectionSize(6)
        self._build_controls()
        doc.changed.connect(self._on_changed)
        self._sync_all()

    # ------------------------------------------------------------------ widgets
    def _build_controls(self) -> None:
        self.preset_combo = QComboBox()
        self.preset_combo.addItem(presets.NO_PRESET)
        self.preset_combo.addItems(list(presets.INPUT_PRESETS))
        self.preset_combo.setToolTip(
            "Shows the preset the input matches (or “— choose —”); pick one and Load preset "
            "to replace the input (undoable)"
        )
        apply_preset = QPushButton("Load preset")
        apply_preset.clicked.connect(lambda: self.apply_preset(self.preset_combo.currentText()))
        self.rows_spin = QSpinBox()
        self.cols_spin = QSpinBox()
        for sp, name in ((self.rows_spin, "rows"), (self.cols_spin, "columns")):
            sp.setRange(1, MAX_SIDE)
            sp.setKeyboardTracking(False)
            sp.setToolTip(f"Number of {name}; existing values are kept")
            sp.valueChanged.connect(self._resize)
        self.channels_combo = QComboBox()
        self.channels_combo.addItems(["Grayscale (1 channel)", "RGB (3 channels)"])
        self.channels_combo.currentIndexChanged.connect(
            lambda i: self.doc.set_channels(1 if i == 0 else 3)
        )
        self.channel_combo = QComboBox()
        self.channel_combo.setToolTip("Channel shown and edited in the table")
        self.channel_combo.currentIndexChanged.connect(self._pick_channel)

        self.paint_btn = QToolButton()
        self.paint_btn.setText("Paint")
        self.paint_btn.setCheckable(True)
        self.paint_btn.setToolTip("Drag over cells to paint them with the brush value")
        self.paint_btn.toggled.connect(self.set_paint_mode)
        self.brush = QDoubleSpinBox()
        self.brush.setRange(-1e6, 1e6)
        self.brush.setDecimals(3)
        self.brush.setValue(1.0)
        self.brush.setToolTip("Brush value for paint and fill")
        buttons = []
        for text, tip, fn in (
            (
                "Fill",
                "Fill the selection (or everything) with the brush value",
                lambda: self.fill_selection(self.brush.value()),
            ),
            ("Clear", "Set the whole channel to 0", self.clear),
            ("Invert", "x → max + min − x on this channel", self.invert),
            ("Image…", "Load an image file (PNG, JPEG, BMP, GIF)", self.image_requested.emit),
        ):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(fn)
            buttons.append(b)

        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.preset_combo, 0, 0, 1, 3)
        grid.addWidget(apply_preset, 0, 3)
        size_box = QHBoxLayout()
        size_box.addWidget(QLabel("Size"))
        size_box.addWidget(self.rows_spin)
        size_box.addWidget(QLabel("×"))
        size_box.addWidget(self.cols_spin)
        grid.addLayout(size_box, 1, 0, 1, 2)
        grid.addWidget(self.channels_combo, 1, 2)
        grid.addWidget(self.channel_combo, 1, 3)
        paint_row = QHBoxLayout()
        paint_row.addWidget(self.paint_btn)
        paint_row.addWidget(QLabel("Brush"))
        self.brush.setMaximumWidth(90)
        paint_row.addWidget(self.brush)
        for b in buttons:
            b.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
            b.setMinimumWidth(20)
            paint_row.addWidget(b)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(grid)
        lay.addLayout(paint_row)
        lay.addWidget(self.table, 1)
        hint = QLabel(
            "Type to edit · Ctrl+C/Ctrl+V copy/paste blocks (CSV, TSV, spaces) · Del clears"
        )
        hint.setStyleSheet("color: #666; font-size: 8pt;")
        hint.setWordWrap(True)
        lay.addWidget(hint)

    # ------------------------------------------------------------------ model → view
    def _on_changed(self, change: Change) -> None:
        if change.kind == "input":
            self.model.refresh(False, change.region)
            self._sync_preset()
        elif change.kind in ("input_shape", "document"):
            self._sync_all(reset=True)
        elif change.kind == "selection":
            self._sync_channel_combo()

    def _sync_all(self, reset: bool = True) -> None:
        c, h, w = self.doc.input.shape
        for wdg in (self.rows_spin, self.cols_spin, self.channels_combo):
            wdg.blockSignals(True)
        self.rows_spin.setValue(h)
        self.cols_spin.setValue(w)
        self.channels_combo.setCurrentIndex(0 if c == 1 else 1)
        for wdg in (self.rows_spin, self.cols_spin, self.channels_combo):
            wdg.blockSignals(False)
        self._sync_channel_combo()
        self._sync_preset()
        self.model.channel = self.doc.selected_input_channel
        self.model.refresh(reset)
        if reset:
            side = (
                40 if max(h, w) <= 12 else 30 if max(h, w) <= 32 else 22 if max(h, w) <= 64 else 14
            )
            self.table.horizontalHeader().setDefaultSectionSize(side)
            self.table.verticalHeader().setDefaultSectionSize(min(side, 28) if side > 28 else side)
            font = self.table.font()
            font.setPointSize(9 if side >= 40 else 7 if side >= 20 else 5)
            self.table.setFont(font)

    def _sync_preset(self) -> None:
        """Show the preset the input equals, or "— choose —" (same rule as the kernel's)."""
        name = presets.matching_input_preset(self.doc.input)
        if self.preset_combo.currentText() != name:
            with QSignalBlocker(self.preset_combo):
                self.preset_combo.setCurrentText(name)

    def _sync_channel_combo(self) -> None:
        c = self.doc.input.shape[0]
        names = ["Gray"] if c == 1 else ["Red", "Green", "Blue"]
        self.channel_combo.blockSignals(True)
        if [self.channel_combo.itemText(i) for i in range(self.channel_combo.count())] != names:
            self.channel_combo.clear()
            self.channel_combo.addItems(names)
        self.channel_combo.setCurrentIndex(self.doc.selected_input_channel)
        self.channel_combo.setEnabled(c > 1)
        self.channel_combo.blockSignals(False)
        if self.model.channel != self.doc.selected_input_channel:
            self.model.channel = self.doc.selected_input_channel
            self.model.refresh(False)

    # ------------------------------------------------------------------ actions
    def _pick_channel(self, i: int) -> None:
        if i >= 0:
            self.doc.select_input_channel(i)

    def _resize(self) -> None:
        self.doc.resize_input(self.rows_spin.value(), self.cols_spin.value())

    def set_paint_mode(self, on: bool) -> None:
        self.table.painting = on
        self.paint_btn.setChecked(on)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.NoEditTriggers
            if on
            else QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.AnyKeyPressed
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )

    def apply_preset(self, name: str) -> None:
        if name not in presets.INPUT_PRESETS:
            self.message.emit("Choose a preset in the list first.")
            return
        _, h, w = self.doc.input.shape
        plane = presets.input_preset_plane(name, h, w)
        x = np.repeat(plane[None], self.doc.input.shape[0], axis=0)
        self.doc.set_input(x, f"Preset: {name}")

    def _selected_rect(self) -> tuple[int, int, int, int] | None:
        sel = self.table.selectionModel().selectedIndexes()
        if not sel:
            return None
        rows = [i.row() for i in sel]
        cols = [i.column() for i in sel]
        return min(rows), max(rows) + 1, min(cols), max(cols) + 1

    def fill_selection(self, value: float) -> None:
        rect = self._selected_rect()
        new = self.doc.input.copy()
        ch = self.model.channel
        if rect is None:
            new[ch] = value
        else:
            r0, r1, c0, c1 = rect
            new[ch, r0:r1, c0:c1] = value
        self.doc.set_input(new, f"Fill with {value:g}")

    def clear(self) -> None:
        new = self.doc.input.copy()
        new[self.model.channel] = 0
        self.doc.set_input(new, "Clear channel")

    def invert(self) -> None:
        new = self.doc.input.copy()
        ch = self.model.channel
        lo, hi = colors.finite_range(new[ch])
        with np.errstate(all="ignore"):
            new[ch] = hi + lo - new[ch]
        self.doc.set_input(new, "Invert channel")

    def copy_selection(self) -> str:
        rect = self._selected_rect()
        plane = self.doc.input[self.model.channel]
        if rect is not None:
            r0, r1, c0, c1 = rect
            plane = plane[r0:r1, c0:c1]
        text = "\n".join("\t".join(f"{float(v):g}" for v in row) for row in plane)
        QGuiApplication.clipboard().setText(text)
        self.message.emit(f"Copied {plane.shape[0]}×{plane.shape[1]} cells")
        return text

    def paste(self, text: str | None = None) -> None:
        if text is None:
            text = QGuiApplication.clipboard().text()
        try:
            block = parse_block(text)
        except ValueError as exc:
            self.message.emit(f"Paste rejected: {exc}")
            return
        idx = self.table.currentIndex()
        r, c = (idx.row(), idx.column()) if idx.isValid() else (0, 0)
        clipped = self.doc.set_block(self.model.channel, r, c, block)
        note = " (clipped at the grid edge)" if clipped else ""
        self.message.emit(f"Pasted {block.shape[0]}×{block.shape[1]} block at ({r}, {c}){note}")
