"""The layer stack: add, remove, duplicate, reorder, enable/disable, edit parameters.

Each row shows the layer, its output shape, the size formula with the user's numbers and
its parameter count beside what a dense layer on the same input would need. An invalid
layer shows the engine's message; layers after it say "no input". Every gesture becomes a
document intent (undoable); the list is rebuilt from the document with signals blocked.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.explain import dense_equivalent, size_formula
from cnn_explorer.explorer.model import Change
from cnn_explorer.explorer.specs import ACTIVATIONS, act_spec, conv_spec, pool_spec
from cnn_explorer.ui.common import quiet


def _act_factory(fn: str) -> object:
    return lambda doc: act_spec(fn)


ADD_CHOICES: dict[str, object] = {
    "Conv2D (3×3, 4 filters)": lambda doc: conv_spec(1, 4, (3, 3), seed=len(doc.layers)),
    **{f"Activation: {label}": _act_factory(fn) for fn, label in ACTIVATIONS.items()},
    "Max pool 2×2": lambda doc: pool_spec("maxpool", 2, 2),
    "Avg pool 2×2": lambda doc: pool_spec("avgpool", 2, 2),
}


def _shape_txt(shape: tuple[int, ...] | None) -> str:
    return "×".join(str(v) for v in shape) if shape else "?"


def _spin(lo: int, hi: int, tip: str) -> QSpinBox:
    sp = QSpinBox()
    sp.setRange(lo, hi)
    sp.setKeyboardTracking(False)
    sp.setToolTip(tip)
    return sp


def _count(n: int) -> str:
    """A parameter count short enough for one line of the stack: "153", "48,320",
    "4.26 million", "103 billion" (exact digits of huge numbers say nothing more)."""
    for scale, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if n >= scale:
            return f"{n / scale:.3g} {word}"
    return f"{n:,}"


class LayerStack(QWidget):
    """List of layers with buttons and a parameter form for the selected one."""

    message = Signal(str)

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self._build()
        doc.changed.connect(self._on_changed)
        doc.results_ready.connect(lambda _r: None)
        self.sync()

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        self.list = QListWidget()
        self.list.setObjectName("layerList")
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.list.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.list.setWordWrap(True)
        self.list.setAlternatingRowColors(True)
        self.list.setSpacing(2)
        self.list.currentRowChanged.connect(self._row_selected)
        self.list.itemChanged.connect(self._item_changed)
        self.list.model().rowsMoved.connect(self._rows_moved)

        self.add_btn = QToolButton()
        self.add_btn.setText("Add layer ▾")
        self.add_btn.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.add_btn)
        for name in ADD_CHOICES:
            menu.addAction(name, lambda n=name: self.add(n))
        self.add_btn.setMenu(menu)
        self.remove_btn = QPushButton("Remove")
        self.dup_btn = QPushButton("Duplicate")
        self.up_btn = QToolButton()
        self.up_btn.setText("▲")
        self.down_btn = QToolButton()
        self.down_btn.setText("▼")
        self.up_btn.setToolTip("Move the selected layer up")
        self.down_btn.setToolTip("Move the selected layer down")
        self.remove_btn.clicked.connect(lambda: self._with_row(self.doc.remove_layer))
        self.dup_btn.clicked.connect(lambda: self._with_row(self.doc.duplicate_layer))
        self.up_btn.clicked.connect(lambda: self._with_row(lambda i: self.doc.move_layer(i, i - 1)))
        self.down_btn.clicked.connect(
            lambda: self._with_row(lambda i: self.doc.move_layer(i, i + 1))
        )
        buttons = QHBoxLayout()
        for b in (self.add_btn, self.remove_btn, self.dup_btn, self.up_btn, self.down_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)

        self.forms = QStackedWidget()
        self.empty_form = QLabel("Add a layer to start.")
        self.conv_form = self._build_conv_form()
        self.act_form = self._build_act_form()
        self.pool_form = self._build_pool_form()
        for f in (self.empty_form, self.conv_form, self.act_form, self.pool_form):
            self.forms.addWidget(f)
        self.form_box = QGroupBox("Parameters")
        fl = QVBoxLayout(self.form_box)
        fl.setContentsMargins(6, 6, 6, 6)
        fl.addWidget(self.forms)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(buttons)
        lay.addWidget(self.list, 3)
        lay.addWidget(self.form_box, 0)

    def _build_conv_form(self) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        form.setContentsMargins(0, 0, 0, 0)
        self.c_filters = _spin(1, 64, "Number of filters (output channels)")
        self.c_kh = _spin(1, 15, "Kernel height")
        self.c_kw = _spin(1, 15, "Kernel width")
        self.c_sh = _spin(1, 8, "Stride (rows)")
        self.c_sw = _spin(1, 8, "Stride (columns)")
        self.c_dh = _spin(1, 8, "Dilation (rows)")
        self.c_dw = _spin(1, 8, "Dilation (columns)")
        self.c_pad_kind = QComboBox()
        self.c_pad_kind.addItems(["explicit", "valid", "same"])
        self.c_pad_kind.setToolTip("same: output size = input size (stride 1)")
        self.c_pad = _spin(0, 16, "Zero/reflect/... padding on every side")
        self.c_pad_mode = QComboBox()
        self.c_pad_mode.addItems(["zeros", "reflect", "replicate", "circular"])
        self.c_bias = QCheckBox("bias")
        self.c_flip = QCheckBox("true convolution (flip kernel)")
        self.c_flip.setToolTip("Off: cross-correlation like PyTorch. On: kernel rotated 180°.")
        form.addRow("Filters", self.c_filters)
        form.addRow("Kernel", _pair(self.c_kh, self.c_kw))
        form.addRow("Stride", _pair(self.c_sh, self.c_sw))
        pad_row = QHBoxLayout()
        pad_row.addWidget(self.c_pad_kind)
        pad_row.addWidget(self.c_pad)
        pad_row.addWidget(self.c_pad_mode)
        form.addRow("Padding", pad_row)
        form.addRow("Dilation", _pair(self.c_dh, self.c_dw))
        checks = QHBoxLayout()
        checks.addWidget(self.c_bias)
        checks.addWidget(self.c_flip)
        form.addRow(checks)
        self.c_filters.valueChanged.connect(lambda v: self._cfg(filters=v))
        self.c_kh.valueChanged.connect(
            lambda _v: self._cfg(kernel=[self.c_kh.value(), self.c_kw.value()])
        )
        self.c_kw.valueChanged.connect(
            lambda _v: self._cfg(kernel=[self.c_kh.value(), self.c_kw.value()])
        )
        self.c_sh.valueChanged.connect(
            lambda _v: self._cfg(stride=[self.c_sh.value(), self.c_sw.value()])
        )
        self.c_sw.valueChanged.connect(
            lambda _v: self._cfg(stride=[self.c_sh.value(), self.c_sw.value()])
        )
        self.c_dh.valueChanged.connect(
            lambda _v: self._cfg(dilation=[self.c_dh.value(), self.c_dw.value()])
        )
        self.c_dw.valueChanged.connect(
            lambda _v: self._cfg(dilation=[self.c_dh.value(), self.c_dw.value()])
        )
        self.c_pad_kind.currentTextChanged.connect(lambda _t: self._pad_changed())
        self.c_pad.valueChanged.connect(lambda _v: self._pad_changed())
        self.c_pad_mode.currentTextChanged.connect(lambda t: self._cfg(padding_mode=t))
        self.c_bias.toggled.connect(lambda on: self._cfg(bias=on))
        self.c_flip.toggled.connect(lambda on: self._cfg(flip=on))
        return w

    def _build_act_form(self) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        form.setContentsMargins(0, 0, 0, 0)
        self.a_fn = QComboBox()
        for fn, label in ACTIVATIONS.items():
            self.a_fn.addItem(label, fn)
        self.a_slope = QDoubleSpinBox()
        self.a_slope.setRange(0.0, 1.0)
        self.a_slope.setDecimals(3)
        self.a_slope.setSingleStep(0.01)
        self.a_slope.setKeyboardTracking(False)
        self.a_slope.setToolTip("Leaky ReLU slope for negative inputs")
        form.addRow("Function", self.a_fn)
        form.addRow("Negative slope", self.a_slope)
        self.a_fn.currentIndexChanged.connect(lambda _i: self._cfg(fn=self.a_fn.currentData()))
        self.a_slope.valueChanged.connect(lambda v: self._cfg(slope=round(float(v), 6)))
        return w

    def _build_pool_form(self) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        form.setContentsMargins(0, 0, 0, 0)
        self.p_kind = QComboBox()
        self.p_kind.addItem("Max", "maxpool")
        self.p_kind.addItem("Average", "avgpool")
        self.p_kh = _spin(1, 15, "Window height")
        self.p_kw = _spin(1, 15, "Window width")
        self.p_sh = _spin(1, 15, "Stride (rows)")
        self.p_sw = _spin(1, 15, "Stride (columns)")
        self.p_pad = _spin(0, 7, "Padding (at most half the window)")
        form.addRow("Kind", self.p_kind)
        form.addRow("Pool size", _pair(self.p_kh, self.p_kw))
        form.addRow("Stride", _pair(self.p_sh, self.p_sw))
        form.addRow("Padding", self.p_pad)
        self.p_kind.currentIndexChanged.connect(lambda _i: self._pool_kind())
        self.p_kh.valueChanged.connect(
            lambda _v: self._cfg(size=[self.p_kh.value(), self.p_kw.value()])
        )
        self.p_kw.valueChanged.connect(
            lambda _v: self._cfg(size=[self.p_kh.value(), self.p_kw.value()])
        )
        self.p_sh.valueChanged.connect(
            lambda _v: self._cfg(stride=[self.p_sh.value(), self.p_sw.value()])
        )
        self.p_sw.valueChanged.connect(
            lambda _v: self._cfg(stride=[self.p_sh.value(), self.p_sw.value()])
        )
        self.p_pad.valueChanged.connect(lambda v: self._cfg(padding=v))
        return w

    # ------------------------------------------------------------------ actions
    def _with_row(self, fn: object) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.doc.layers):
            fn(row)  # type: ignore[operator]

    def add(self, choice: str) -> None:
        """Add a layer after the selected one (by menu name)."""
        spec = ADD_CHOICES[choice](self.doc)  # type: ignore[operator]
        self.doc.add_layer(spec)

    def _cfg(self, **changes: object) -> None:
        i = self.doc.selected_layer
        if 0 <= i < len(self.doc.layers):
            try:
                self.doc.update_config(i, **changes)
            except Exception as exc:  # nothing in this panel may crash the app
                self.message.emit(f"Could not change layer {i + 1}: {exc}")
                self.sync()

    def _pad_changed(self) -> None:
        kind = self.c_pad_kind.currentText()
        self.c_pad.setEnabled(kind == "explicit")
        self._cfg(padding=self.c_pad.value() if kind == "explicit" else kind)

    def _pool_kind(self) -> None:
        i = self.doc.selected_layer
        if 0 <= i < len(self.doc.layers) and self.doc.layers[i].kind != self.p_kind.currentData():
            self.doc.set_kind(i, self.p_kind.currentData())

    def _row_selected(self, row: int) -> None:
        if 0 <= row < len(self.doc.layers) and row != self.doc.selected_layer:
            self.doc.select_layer(row)

    def _item_changed(self, item: QListWidgetItem) -> None:
        row = self.list.row(item)
        if 0 <= row < len(self.doc.layers):
            on = item.checkState() == Qt.CheckState.Checked
            if on != self.doc.layers[row].enabled:
                self.doc.set_enabled(row, on)

    def _rows_moved(self, _parent: object, start: int, _end: int, _dest: object, row: int) -> None:
        dst = row if row < start else row - 1
        QTimer.singleShot(0, lambda: self._apply_move(start, dst))

    def _apply_move(self, src: int, dst: int) -> None:
        if src != dst:
            self.doc.move_layer(src, dst)
        self.sync()

    # ------------------------------------------------------------------ model → view
    def _on_changed(self, change: Change) -> None:
        if change.kind == "selection" and self.list.count() == len(self.doc.layers):
            self._sync_selection()
        elif change.kind in ("layers", "layer", "input_shape", "document", "selection"):
            self.sync()

    def _sync_selection(self) -> None:
        """Only the selected row, buttons and form change (no list rebuild)."""
        with QSignalBlocker(self.list):
            self.list.setCurrentRow(self.doc.selected_layer)
        self._sync_buttons()
        self._sync_form()

    def row_text(self, i: int) -> str:
        """The text of row ``i`` (what the user reads; tests check it)."""
        doc = self.doc
        spec = doc.layers[i]
        st = doc.statuses[i]
        head = f"{i + 1}. {spec.title}" + ("" if spec.enabled else "  (disabled)")
        if st.error:
            return f"{head}\n   ⚠ {st.error}"
        in_shape = doc.model.in_shape(i)
        lines = [f"{head}   →  {_shape_txt(st.output_shape)}"]
        if spec.enabled:
            formula = size_formula(spec, in_shape)
            if formula:
                lines.append(f"   {formula}")
        if spec.kind == "conv" and in_shape is not None and st.output_shape is not None:
            dense = dense_equivalent(in_shape, st.output_shape)
            lines.append(
                f"   {_count(doc.model.param_count(i))} parameters"
                f" (a dense layer would need {_count(dense)})"
            )
        return "\n".join(lines)

    def sync(self) -> None:
        """Bring the rows and the form up to date with the document (signals blocked).

        Rows are updated in place and only where they differ: a weight edit changes no row,
        so the list is not relaid out or repainted on every keystroke. Only the list's own
        signals are blocked (no itemChanged echo); the model still tells the view."""
        doc = self.doc
        with QSignalBlocker(self.list):
            while self.list.count() > len(doc.layers):
                self.list.takeItem(self.list.count() - 1)
            for i in range(len(doc.layers)):
                if i == self.list.count():
                    self.list.addItem(self._new_item())
                self._update_item(self.list.item(i), i)
            if doc.layers and self.list.currentRow() != doc.selected_layer:
                self.list.setCurrentRow(doc.selected_layer)
        self._sync_buttons()
        self._sync_form()

    @staticmethod
    def _new_item() -> QListWidgetItem:
        item = QListWidgetItem()
        item.setFlags(
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemIsUserCheckable
            | Qt.ItemFlag.ItemIsDragEnabled
        )
        item.setToolTip("Tick to enable; drag to reorder")
        return item

    def _update_item(self, item: QListWidgetItem, i: int) -> None:
        """Text, tick and colour of row ``i``; each set only when it changed."""
        spec, st = self.doc.layers[i], self.doc.statuses[i]
        text = self.row_text(i)
        if item.text() != text:
            item.setText(text)
        check = Qt.CheckState.Checked if spec.enabled else Qt.CheckState.Unchecked
        if item.checkState() != check:
            item.setCheckState(check)
        color = _row_color(bool(spec.enabled), st.error)
        current = item.data(Qt.ItemDataRole.ForegroundRole)
        if (current.color() if isinstance(current, QBrush) else None) != color:
            brush = QBrush(color) if color is not None else None
            item.setData(Qt.ItemDataRole.ForegroundRole, brush)

    def _sync_buttons(self) -> None:
        n = len(self.doc.layers)
        i = self.doc.selected_layer
        self.remove_btn.setEnabled(n > 0)
        self.dup_btn.setEnabled(n > 0)
        self.up_btn.setEnabled(n > 0 and i > 0)
        self.down_btn.setEnabled(n > 0 and i < n - 1)

    def _sync_form(self) -> None:
        doc = self.doc
        if not doc.layers:
            self.forms.setCurrentWidget(self.empty_form)
            self.form_box.setTitle("Parameters")
            return
        spec = doc.layers[doc.selected_layer]
        self.form_box.setTitle(f"Parameters — layer {doc.selected_layer + 1}: {spec.title}")
        c = spec.config
        widgets = (
            self.conv_form.findChildren(QWidget)
            + self.act_form.findChildren(QWidget)
            + self.pool_form.findChildren(QWidget)
        )
        blockers = [QSignalBlocker(w) for w in widgets]
        if spec.kind == "conv":
            self.forms.setCurrentWidget(self.conv_form)
            quiet.set_value(self.c_filters, c["filters"])
            quiet.set_value(self.c_kh, c["kernel"][0])
            quiet.set_value(self.c_kw, c["kernel"][1])
            quiet.set_value(self.c_sh, c["stride"][0])
            quiet.set_value(self.c_sw, c["stride"][1])
            quiet.set_value(self.c_dh, c["dilation"][0])
            quiet.set_value(self.c_dw, c["dilation"][1])
            pad = c["padding"]
            self.c_pad_kind.setCurrentText(pad if isinstance(pad, str) else "explicit")
            self.c_pad.setEnabled(not isinstance(pad, str))
            quiet.set_value(self.c_pad, 0 if isinstance(pad, str) else int(pad))
            self.c_pad_mode.setCurrentText(c.get("padding_mode", "zeros"))
            self.c_bias.setChecked(bool(c.get("bias", True)))
            self.c_flip.setChecked(bool(c.get("flip", False)))
        elif spec.kind == "act":
            self.forms.setCurrentWidget(self.act_form)
            self.a_fn.setCurrentIndex(max(0, self.a_fn.findData(c["fn"])))
            quiet.set_value(self.a_slope, float(c.get("slope", 0.01)))
            self.a_slope.setEnabled(c["fn"] == "leaky_relu")
        else:
            self.forms.setCurrentWidget(self.pool_form)
            self.p_kind.setCurrentIndex(0 if spec.kind == "maxpool" else 1)
            quiet.set_value(self.p_kh, c["size"][0])
            quiet.set_value(self.p_kw, c["size"][1])
            quiet.set_value(self.p_sh, c["stride"][0])
            quiet.set_value(self.p_sw, c["stride"][1])
            quiet.set_value(self.p_pad, int(c["padding"]))
        del blockers


def _pair(a: QWidget, b: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(a)
    row.addWidget(QLabel("×"))
    row.addWidget(b)
    return row


def _row_color(enabled: bool, error: str | None) -> QColor | None:
    """Red for an invalid layer, grey for "no input" or disabled, default otherwise."""
    if error:
        return QColor(180, 20, 20) if error != "no input" else QColor(130, 130, 130)
    return None if enabled else QColor(130, 130, 130)
