"""Edit every weight of a conv layer: filter and input-channel navigation, bias, kernel
size (existing values kept), presets, seeded random weights and normalisation; the
"Histogram" button (or a right click on the table) shows the distribution of this filter's
weights or of the whole layer's."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import (
    QModelIndex,
    QSignalBlocker,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer import presets
from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.explain import filter_of
from cnn_explorer.explorer.model import Change
from cnn_explorer.limits import MAX_KERNEL
from cnn_explorer.ui.common import colors, quiet
from cnn_explorer.ui.common.histogram_window import HistogramPopup, open_histogram
from cnn_explorer.ui.common.number_model import ModelIndex, NumberTableModel

NO_PRESET = presets.NO_PRESET
matching_preset = presets.matching_kernel_preset


class KernelModel(NumberTableModel):
    """Table over ``weight[filter, in_channel]`` of the edited conv layer."""

    noun = "weight"

    def __init__(self, editor: KernelEditor) -> None:
        super().__init__(editor)
        self.editor = editor

    def kernel(self) -> np.ndarray:
        return self.editor.current_kernel()

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self.kernel().shape[0]

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self.kernel().shape[1]

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        k = self.kernel()
        v = float(k[index.row(), index.column()])
        if role == Qt.ItemDataRole.DisplayRole:
            return colors.fmt(v)
        if role == Qt.ItemDataRole.EditRole:
            return f"{v:g}"
        if role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole):
            m = float(np.max(np.abs(k))) if k.size else 1.0
            bg = colors.qcolor(v, (-(m or 1.0), m or 1.0), True)
            return bg if role == Qt.ItemDataRole.BackgroundRole else colors.text_color(bg)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return Qt.AlignmentFlag.AlignCenter
        return None

    def commit(self, row: int, col: int, value: float) -> None:
        self.editor.set_weight(row, col, value)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        return str(section) if role == Qt.ItemDataRole.DisplayRole else None

    def refresh(self, reset: bool) -> None:
        if reset:
            self.beginResetModel()
            self.endResetModel()
        else:
            h, w = self.kernel().shape
            self.dataChanged.emit(self.index(0, 0), self.index(h - 1, w - 1))


class KernelEditor(QWidget):
    """Panel editing the weights of the conv layer chosen in its layer combo."""

    message = Signal(str)

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.layer_index: int | None = None
        self._shape: tuple[int, ...] = ()
        self._build()
        doc.changed.connect(self._on_changed)
        self.sync()

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Conv layer whose weights are edited")
        self.layer_combo.currentIndexChanged.connect(self._layer_picked)
        self.filter_spin = QSpinBox()
        self.filter_spin.setToolTip("Filter (output channel)")
        self.channel_spin = QSpinBox()
        self.channel_spin.setToolTip("Input channel of the filter")
        self.filter_spin.valueChanged.connect(lambda v: self._nav(v, None))
        self.channel_spin.valueChanged.connect(lambda v: self._nav(None, v))
        self.bias_spin = QDoubleSpinBox()
        self.bias_spin.setRange(-1e6, 1e6)
        self.bias_spin.setDecimals(3)
        self.bias_spin.setSingleStep(0.1)
        self.bias_spin.setKeyboardTracking(False)
        self.bias_spin.setToolTip("Bias of this filter (turn bias on in the layer's parameters)")
        self.bias_spin.valueChanged.connect(self._bias_changed)
        self.kh_spin = QSpinBox()
        self.kw_spin = QSpinBox()
        for sp in (self.kh_spin, self.kw_spin):
            sp.setRange(1, MAX_KERNEL)
            sp.setKeyboardTracking(False)
            sp.setToolTip("Kernel size; existing weights are kept, new ones are 0")
            sp.valueChanged.connect(self._size_changed)

        self.model = KernelModel(self)
        self.model.rejected.connect(self.message)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        for hdr in (self.table.horizontalHeader(), self.table.verticalHeader()):
            hdr.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
            hdr.setDefaultSectionSize(46)
        self.table.verticalHeader().setDefaultSectionSize(30)

        self.preset_combo = QComboBox()
        self.preset_combo.addItem(NO_PRESET)
        self.preset_combo.addItems(list(presets.KERNEL_PRESETS))
        self.preset_combo.setToolTip(
            "Shows the preset the kernel matches (or “— choose —”); pick one and Apply"
        )
        preset_btn = self.preset_btn = QPushButton("Apply")
        preset_btn.setToolTip("Write the preset into this filter/channel (resizes the kernel)")
        preset_btn.clicked.connect(lambda: self.apply_preset(self.preset_combo.currentText()))
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 1_000_000)
        self.seed_spin.setToolTip("Seed: the same seed gives the same weights")
        rand_btn = QPushButton("Random")
        rand_btn.setToolTip("He-initialised random weights for the whole layer (seeded)")
        rand_btn.clicked.connect(self.randomise)
        norm_btn = QPushButton("Normalise")
        norm_btn.setToolTip("Scale this kernel so it sums to 1 (or |w| sums to 2 if it sums to 0)")
        norm_btn.clicked.connect(self.normalise)
        self.hist_menu = QMenu(self)
        self.filter_hist_action = self.hist_menu.addAction(
            "This filter's weights (all input channels)",
            lambda: self.show_weight_histogram(whole_layer=False),
        )
        self.layer_hist_action = self.hist_menu.addAction(
            "The whole layer's weights", lambda: self.show_weight_histogram(whole_layer=True)
        )
        self.hist_btn = QPushButton("Histogram")
        self.hist_btn.setToolTip("Histogram of this filter's weights, or of the whole layer's")
        self.hist_btn.setMenu(self.hist_menu)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(
            lambda pos: self.hist_menu.popup(self.table.viewport().mapToGlobal(pos))
        )

        self.stack_label = QLabel()
        self.stack_label.setWordWrap(True)
        self.stack_label.setStyleSheet("color: #555;")
        self._lay_out(preset_btn, rand_btn, norm_btn)

    def _lay_out(
        self, preset_btn: QPushButton, rand_btn: QPushButton, norm_btn: QPushButton
    ) -> None:
        """The form (layer, filter/channel, size, bias, preset, seed), the table, a caption."""
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Layer", self.layer_combo)
        nav = QHBoxLayout()
        nav.addWidget(QLabel("filter"))
        nav.addWidget(self.filter_spin)
        nav.addWidget(QLabel("input ch"))
        nav.addWidget(self.channel_spin)
        nav.addStretch(1)
        form.addRow("Show", nav)
        size = QHBoxLayout()
        size.addWidget(self.kh_spin)
        size.addWidget(QLabel("×"))
        size.addWidget(self.kw_spin)
        size.addStretch(1)
        form.addRow("Kernel size", size)
        form.addRow("Bias", self.bias_spin)
        pr = QHBoxLayout()
        pr.addWidget(self.preset_combo, 1)
        pr.addWidget(preset_btn)
        form.addRow("Preset", pr)
        rr = QHBoxLayout()
        rr.addWidget(QLabel("seed"))
        rr.addWidget(self.seed_spin)
        rr.addWidget(rand_btn)
        rr.addWidget(norm_btn)
        rr.addWidget(self.hist_btn)
        form.addRow(rr)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(form)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.stack_label)
        self.controls = [
            self.filter_spin,
            self.channel_spin,
            self.bias_spin,
            self.kh_spin,
            self.kw_spin,
            self.table,
            self.preset_combo,
            preset_btn,
            rand_btn,
            norm_btn,
            self.seed_spin,
            self.hist_btn,
        ]

    # ------------------------------------------------------------------ state
    def conv_layers(self) -> list[int]:
        return [i for i, s in enumerate(self.doc.layers) if s.kind == "conv"]

    def current_kernel(self) -> np.ndarray:
        if self.layer_index is None:
            return np.zeros((0, 0), np.float32)
        w = self.doc.layers[self.layer_index].weight
        assert w is not None
        f = min(self.doc.selected_filter, w.shape[0] - 1)
        c = min(self.doc.selected_in_channel, w.shape[1] - 1)
        return w[f, c]

    def _on_changed(self, change: Change) -> None:
        if change.kind in ("layers", "layer", "document", "selection", "input_shape"):
            self.sync()
        elif change.kind == "cell" and self.doc.selection is not None:
            # A clicked cell shows the filter that made its channel.
            made_by = filter_of(self.doc.layers, self.doc.selection)
            if made_by is not None and made_by != (self.layer_index, self.filter_spin.value()):
                self.doc.select_layer(made_by[0], filt=made_by[1])

    def sync(self) -> None:
        """Re-read the document (signals blocked so nothing echoes back)."""
        convs = self.conv_layers()
        sel = self.doc.selected_layer
        if sel in convs:
            self.layer_index = sel
        elif self.layer_index not in convs:
            self.layer_index = convs[0] if convs else None
        blockers = [
            QSignalBlocker(w)
            for w in (
                self.layer_combo,
                self.filter_spin,
                self.channel_spin,
                self.bias_spin,
                self.kh_spin,
                self.kw_spin,
            )
        ]
        self._sync_layer_names(convs)
        enabled = self.layer_index is not None
        for w in self.controls:
            w.setEnabled(enabled)
        if not enabled:
            self.stack_label.setText("No Conv2D layer: add one in the layer stack to edit kernels.")
            self.model.refresh(True)
            del blockers
            return
        self.layer_combo.setCurrentIndex(convs.index(self.layer_index))
        spec = self.doc.layers[self.layer_index]
        assert spec.weight is not None and spec.bias is not None
        o, c, kh, kw = spec.weight.shape
        quiet.set_range(self.filter_spin, 0, o - 1)
        quiet.set_range(self.channel_spin, 0, c - 1)
        f = min(self.doc.selected_filter, o - 1)
        ch = min(self.doc.selected_in_channel, c - 1)
        quiet.set_value(self.filter_spin, f)
        quiet.set_value(self.channel_spin, ch)
        quiet.set_value(self.kh_spin, kh)
        quiet.set_value(self.kw_spin, kw)
        self.bias_spin.setEnabled(bool(spec.config.get("bias", True)))
        quiet.set_value(self.bias_spin, float(spec.bias[f]) if spec.bias.size > f else 0.0)
        del blockers
        self.stack_label.setText(
            f"weight[{f}, {ch}] of {o}×{c}×{kh}×{kw}"
            + ("  ·  bias off" if not spec.config.get("bias", True) else "")
            + ("  ·  true convolution: applied rotated 180°" if spec.config.get("flip") else "")
        )
        with QSignalBlocker(self.preset_combo):
            self.preset_combo.setCurrentText(matching_preset(spec.weight[f, ch]))
        shape = (self.layer_index, f, ch, kh, kw)
        self.model.refresh(shape != self._shape)
        self._shape = shape
        self._fit_columns()

    def _sync_layer_names(self, convs: list[int]) -> None:
        """The layer combo lists the conv layers (rebuilt only when that list changed:
        rebuilding it on every weight edit would cost ~0.3 ms)."""
        names = [(f"{i + 1}. {self.doc.layers[i].title}", i) for i in convs]
        shown = [
            (self.layer_combo.itemText(k), self.layer_combo.itemData(k))
            for k in range(self.layer_combo.count())
        ]
        if names != shown:
            self.layer_combo.clear()
            for text, i in names:
                self.layer_combo.addItem(text, i)

    def _fit_columns(self) -> None:
        """Columns as wide as the widest formatted weight (3 significant digits), so no
        cell is elided ("0.09…"); never narrower than a comfortable 46 px."""
        k = self.current_kernel()
        if not k.size:
            return
        fm = self.table.fontMetrics()
        widest = max(fm.horizontalAdvance(colors.fmt(float(v))) for v in np.unique(k))
        side = max(46, widest + 14)
        hdr = self.table.horizontalHeader()
        if hdr.defaultSectionSize() != side:
            hdr.setDefaultSectionSize(side)

    # ------------------------------------------------------------------ edits
    def _layer_picked(self, i: int) -> None:
        idx = self.layer_combo.itemData(i)
        if idx is not None and idx != self.doc.selected_layer:
            self.doc.select_layer(int(idx))

    def _nav(self, filt: int | None, ch: int | None) -> None:
        if self.layer_index is not None:
            self.doc.select_layer(self.layer_index, filt, ch)

    def set_weight(self, r: int, c: int, v: float) -> None:
        if self.layer_index is None:
            return
        self.doc.set_weight(
            self.layer_index, self.filter_spin.value(), self.channel_spin.value(), r, c, v
        )

    def _bias_changed(self, v: float) -> None:
        if self.layer_index is not None:
            self.doc.set_bias(self.layer_index, self.filter_spin.value(), float(v))

    def _size_changed(self) -> None:
        if self.layer_index is not None:
            self.doc.update_config(
                self.layer_index, kernel=[self.kh_spin.value(), self.kw_spin.value()]
            )

    def apply_preset(self, name: str) -> None:
        if self.layer_index is None:
            self.message.emit("Select a Conv2D layer first.")
            return
        if name not in presets.KERNEL_PRESETS:
            self.message.emit("Choose a preset in the list first.")
            return
        k = presets.kernel_preset(name)
        self.doc.set_kernel(
            self.layer_index,
            self.filter_spin.value(),
            self.channel_spin.value(),
            k,
            f"Kernel preset: {name}",
        )

    def randomise(self) -> None:
        if self.layer_index is None:
            return
        w = self.doc.layers[self.layer_index].weight
        assert w is not None
        seed = self.seed_spin.value()
        self.doc.set_weights(
            self.layer_index, presets.random_kernel(w.shape, seed), f"Random weights (seed {seed})"
        )

    def show_weight_histogram(self, whole_layer: bool = False) -> HistogramPopup | None:
        """Open the histogram of the shown filter's weights ``(C, kh, kw)`` or, with
        ``whole_layer``, of the layer's ``(O, C, kh, kw)``: is a filter dead, saturated,
        lopsided? None (and a message) when there is no conv layer."""
        if self.layer_index is None:
            self.message.emit("Select a Conv2D layer first.")
            return None
        spec = self.doc.layers[self.layer_index]
        assert spec.weight is not None
        name = f"layer {self.layer_index + 1} ({spec.title})"
        if whole_layer:
            values, title = spec.weight, f"all weights of {name}"
        else:
            f = min(self.filter_spin.value(), spec.weight.shape[0] - 1)
            values, title = spec.weight[f], f"filter {f} of {name}"
        return open_histogram(np.array(values), title, self, unit="weights")

    def normalise(self) -> None:
        if self.layer_index is None:
            return
        k = presets.normalise_kernel(self.current_kernel())
        self.doc.set_kernel(
            self.layer_index,
            self.filter_spin.value(),
            self.channel_spin.value(),
            k,
            "Normalise kernel",
        )
