"""Spreadsheet-like editor of the input grid: type, paint, fill, paste, presets, resize.

The panel: a toolbar over a :class:`GridTable` showing an :class:`InputModel`, which reads
the document's input and turns edits into document intents (undo commands). Cells are
coloured by value (a colour map, grey, or the RGB composite of a colour input) with the
number shown where it fits. Paint mode turns a mouse drag into one stroke: cells change
live and the stroke is one undo step. Bad input (a non-number, a paste with text) is
reported through :attr:`GridEditor.message`, never raised.

The display, the zoom (Ctrl+wheel; Ctrl+= / Ctrl+−, Fit with Ctrl+0 in the table) and the
selected feature-map cell's receptive field (outlined, scrolled into view) are view state:
no undo step, nothing in the document changes.
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
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.model import Change
from cnn_explorer.limits import MAX_INPUT_SIDE as MAX_SIDE
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.explorer.grid_table import (
    MAX_CELL,
    MIN_CELL,
    GridTable,
    default_cell_px,
    fit_cell_px,
    label_step,
)
from cnn_explorer.ui.explorer.input_model import (
    DISPLAY_MODES,
    IMAGE_GRID,
    InputModel,
    parse_block,
)
from cnn_explorer.ui.explorer.row_maps import RowMapsView


class GridEditor(QWidget):
    """Input editor panel: toolbar + table."""

    message = Signal(str)
    image_requested = Signal()
    display_changed = Signal(str)
    """The chosen display mode (the feature-map view colours 3-channel maps by it too)."""

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
            hdr.setMinimumSectionSize(MIN_CELL)
        self.cell_px = 0
        self.font_scale = 1.0  # View ▸ Zoom: the numbers grow with the window's font
        self.fitting = False
        """True while the grid keeps fitting the panel (Fit, or a picture just loaded)."""
        self._refitting = False
        self.table.zoom_requested.connect(self.zoom)
        self.table.resized.connect(self._refit)
        self._build_controls()
        doc.changed.connect(self._on_changed)
        doc.results_ready.connect(lambda _r: self._follow_selection(scroll=False))
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
        self.display_combo = QComboBox()
        self.display_combo.addItems(list(DISPLAY_MODES))
        self.display_combo.setToolTip(
            "How cells are coloured: Auto (RGB for a colour input, grey for a big grey one, "
            "else the colour map), the colour map of the edited channel, grey (luminance) "
            "or the RGB composite — a view setting, not an edit"
        )
        self.display_combo.currentTextChanged.connect(self.set_display)
        self._zoom_buttons = []
        for text, tip, fn in (
            ("−", "Zoom out (Ctrl+− or Ctrl+wheel)", lambda: self.zoom(-1)),
            ("+", "Zoom in (Ctrl+= or Ctrl+wheel)", lambda: self.zoom(1)),
            ("Fit", "Fit the whole grid in the panel (Ctrl+0)", self.fit),
        ):
            zb = QToolButton()
            zb.setText(text)
            zb.setToolTip(tip)
            zb.clicked.connect(fn)
            self._zoom_buttons.append(zb)
        self.table.fit_requested.connect(self.fit)  # Ctrl+0 in the table (GRID_KEYS)
        self.zoom_label = QLabel()
        self.zoom_label.setToolTip("Side of one cell on screen")
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
        view_row = QHBoxLayout()
        view_row.addWidget(QLabel("Show"))
        view_row.addWidget(self.display_combo, 1)
        for zb in self._zoom_buttons:
            view_row.addWidget(zb)
        view_row.addWidget(self.zoom_label)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(grid)
        lay.addLayout(paint_row)
        lay.addLayout(view_row)
        lay.addWidget(self.table, 1)
        # A 1-row input: a line plot with the first conv's response beneath the numbers.
        self.row_plots = RowMapsView(self.doc, first_conv_only=True)
        self.row_plots.setVisible(self.row_plots.applies)
        self.row_plots.applies_changed.connect(self._one_row)
        lay.addWidget(self.row_plots, 3)
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
            self._follow_selection(scroll=False)
        elif change.kind == "selection":
            self._sync_channel_combo()
        elif change.kind == "cell":
            self._follow_selection(scroll=True)

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
            if max(h, w) > IMAGE_GRID:
                self.fit()  # a picture: all of it at once
            else:
                self.fitting = False
                self.set_cell_px(default_cell_px(h, w))

    def _one_row(self, on: bool) -> None:
        """A 1-row input: the table shrinks to its row and the line plots take the rest."""
        self.row_plots.setVisible(on)
        self._fit_table_height()

    def _fit_table_height(self) -> None:
        if not self.row_plots.applies:
            self.table.setMaximumHeight(16_777_215)
            return
        bar = self.table.horizontalScrollBar().sizeHint().height()
        head = self.table.horizontalHeader().sizeHint().height()
        height = head + self.cell_px + bar + 2 * self.table.frameWidth() + 2
        self.table.setMaximumHeight(height)

    # ------------------------------------------------------------------ zoom and follow
    def set_display(self, mode: str) -> None:
        """Colour the cells as ``mode`` (one of ``DISPLAY_MODES``; view state, no undo)."""
        changed = mode != self.model.display
        self.model.set_display(mode)
        if changed:
            self.display_changed.emit(mode)
        if self.display_combo.currentText() != mode:
            with QSignalBlocker(self.display_combo):
                self.display_combo.setCurrentText(mode)
        self.table.viewport().update()

    @property
    def display(self) -> str:
        """The chosen display mode ("Auto", "Colour map", "Grey" or "RGB")."""
        return self.model.display

    def set_cell_px(self, px: int) -> None:
        """Show every cell ``px`` pixels square (clamped); numbers appear where they fit."""
        px = max(MIN_CELL, min(MAX_CELL, int(px)))
        if px == self.cell_px:
            return
        self.cell_px = px
        font = self.table.font()
        font.setPointSizeF((9 if px >= 40 else 7 if px >= 20 else 5) * self.font_scale)
        self.table.setFont(font)
        for hdr in (self.table.horizontalHeader(), self.table.verticalHeader()):
            hdr.setDefaultSectionSize(px)
        fm = self.table.horizontalHeader().fontMetrics()
        widest = fm.horizontalAdvance(str(max(self.model.columnCount() - 1, 0))) + 6
        self.model.set_cell_px(px, label_step(widest, px), label_step(fm.height(), px))
        self.zoom_label.setText(f"{px} px")
        self._fit_table_height()

    def zoom(self, direction: int) -> None:
        """One step in (``direction`` > 0) or out, keeping the cell at the centre in view."""
        vp = self.table.viewport()
        row = self.table.rowAt(vp.height() // 2)
        col = self.table.columnAt(vp.width() // 2)
        px = self.cell_px
        new = max(px + 1, round(px * 1.25)) if direction > 0 else min(px - 1, round(px / 1.25))
        self.fitting = False
        self.set_cell_px(new)
        if row >= 0 and col >= 0:
            self.table.scrollTo(
                self.model.index(row, col), QAbstractItemView.ScrollHint.PositionAtCenter
            )

    def fit(self) -> None:
        """Zoom so the whole grid shows in the panel, and keep fitting as the panel resizes
        (until the next zoom step)."""
        self.fitting = True
        self._refit()

    def _refit(self) -> None:
        if not self.fitting or self._refitting:
            return  # (a resize the font change makes mid-fit: the loop measures it again)
        self._refitting = True
        try:
            self._fit_loop(self.model.rowCount(), self.model.columnCount())
        finally:
            self._refitting = False

    def _fit_loop(self, rows: int, cols: int) -> None:
        for _ in range(3):  # the row header's width follows the font, which follows the size
            frame = 2 * self.table.frameWidth()
            avail_w = self.table.width() - self.table.verticalHeader().sizeHint().width() - frame
            avail_h = self.table.height() - self.table.horizontalHeader().sizeHint().height()
            px = fit_cell_px(avail_w, avail_h - frame, rows, cols)
            if px == self.cell_px:
                break
            self.set_cell_px(px)

    def visible_cells(self) -> tuple[int, int]:
        """``(rows, cols)`` of cells at least partly in view."""
        vp = self.table.viewport()
        r0, c0 = self.table.rowAt(0), self.table.columnAt(0)
        r1, c1 = self.table.rowAt(vp.height() - 1), self.table.columnAt(vp.width() - 1)
        rows, cols = self.model.rowCount(), self.model.columnCount()
        r1 = rows - 1 if r1 < 0 else r1
        c1 = cols - 1 if c1 < 0 else c1
        return max(0, r1 - max(r0, 0) + 1), max(0, c1 - max(c0, 0) + 1)

    def _input_region(self, sel: Selection | None) -> tuple[int, int, int, int] | None:
        """Input cells ``(r0, r1, c0, c1)`` feeding the selected cell, or None."""
        if sel is None:
            return None
        if sel.map_index == 0:
            region = (sel.row, sel.row, sel.col, sel.col)
        else:
            try:
                regions = self.doc.model.receptive_field(sel)
            except Exception:  # results of another shape mid-recompute: no outline yet
                return None
            first = next((r for r in regions if r.map_index == 0), None)
            if first is None or first.row_range is None or first.col_range is None:
                return None
            region = (*first.row_range, *first.col_range)
        _, h, w = self.doc.input.shape
        return region if region[1] < h and region[3] < w else None

    def _follow_selection(self, scroll: bool) -> None:
        """Outline the selected cell's receptive field and (``scroll``) bring it into view."""
        region = self._input_region(self.doc.selection)
        self.table.set_region(region)
        if not scroll or region is None:
            return
        rect = self.table.region_rect()
        if rect is not None and self.table.viewport().rect().contains(rect):
            return
        r0, r1, c0, c1 = region
        self.table.scrollTo(
            self.model.index((r0 + r1) // 2, (c0 + c1) // 2),
            QAbstractItemView.ScrollHint.PositionAtCenter,
        )

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
