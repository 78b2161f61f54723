"""Spreadsheet-like editor of the input grid: type, paint, fill, paste, presets, resize.

The panel: a toolbar over a :class:`GridTable` showing an :class:`InputModel`, which reads
the document's input and turns edits into document intents (undo commands). Cells are
coloured by value with the number shown. Paint mode turns a mouse drag into one stroke:
cells change live and the stroke is one undo step. Bad input (a non-number, a paste with
text) is reported through :attr:`GridEditor.message`, never raised.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtGui import QGuiApplication
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
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer import presets
from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.model import Change
from cnn_explorer.limits import MAX_INPUT_SIDE as MAX_SIDE
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.explorer.grid_table import GridTable
from cnn_explorer.ui.explorer.input_model import InputModel, parse_block


class GridEditor(QWidget):
    """Input editor panel: toolbar + table."""

    message = Signal(str)
    image_requested = Signal()

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.model = InputModel(doc, self)
        self.model.rejected.connect(self.message)
        self.table = GridTable()
        self.table.setModel(self.model)
        self.table.copy_requested.connect(self.copy_selection)
        self.table.paste_requested.connect(self.paste)
        self.table.clear_requested.connect(lambda: self.fill_selection(0.0))
        self.table.stroke_started.connect(doc.begin_stroke)
        self.table.painted.connect(
            lambda cells: doc.paint(self.model.channel, cells, self.brush.value())
        )
        self.table.stroke_ended.connect(doc.end_stroke)
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
        apply_preset.setToolTip("Replace the input with the chosen preset (undoable)")
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
        self.channels_combo.setToolTip(
            "Grayscale or RGB input; later conv weights follow the channel count"
        )
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
        self._lay_out(apply_preset, buttons)

    def _lay_out(self, apply_preset: QPushButton, buttons: list[QPushButton]) -> None:
        """Preset row, size and channel row, paint row, the table and a hint below it."""
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
