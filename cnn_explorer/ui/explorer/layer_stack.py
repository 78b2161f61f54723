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
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.explain import ParamCounts, param_counts, size_formula
from cnn_explorer.explorer.model import Change
from cnn_explorer.explorer.specs import ACTIVATIONS, act_spec, conv_spec, pool_spec
from cnn_explorer.limits import MAX_LAYERS
from cnn_explorer.ui.explorer.layer_form import LayerForm


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


FORMULA_SEPARATOR = ";  "
"""Between the height and the width expression of a size formula (see ``size_formula``)."""


def unbroken(formula: str) -> str:
    """``formula`` with non-breaking spaces inside each expression ("H = (7 + 2·0 …) = 6")
    and ordinary ones between them, so a narrow dock wraps the row between whole
    expressions, never in the middle of one."""
    parts = formula.split(FORMULA_SEPARATOR)
    return FORMULA_SEPARATOR.join(part.replace(" ", "\u00a0") for part in parts)


def _count(n: int) -> str:
    """A parameter count short enough for one line of the stack: "153", "48,320",
    "4.26 million", "103 billion" (exact digits of huge numbers say nothing more)."""
    for scale, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if n >= scale:
            return f"{n / scale:.3g} {word}"
    return f"{n:,}"


def param_text(p: ParamCounts) -> str:
    """Weight sharing, like for like: "4 parameters (no bias); a dense layer would need 144"
    or "5 parameters (4 weights + 1 bias); a dense layer would need 153 (144 + 9 biases)"."""
    if not p.conv_biases:
        dense = _count(p.dense_total)
        return f"{_count(p.conv_total)} parameters (no bias); a dense layer would need {dense}"
    s = "" if p.conv_biases == 1 else "es"
    return (
        f"{_count(p.conv_total)} parameters ({_count(p.conv_weights)} weights +"
        f" {p.conv_biases} bias{s}); a dense layer would need {_count(p.dense_total)}"
        f" ({_count(p.dense_weights)} + {_count(p.dense_biases)} biases)"
    )


ADD_TIP = "Insert a layer after the selected one"
DUPLICATE_TIP = "Insert a copy of the selected layer after it"


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
        self.remove_btn.setToolTip("Remove the selected layer (undoable)")
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

        self.form = LayerForm()
        self.form.config_edited.connect(lambda changes: self._cfg(**changes))
        self.form.kind_edited.connect(self._pool_kind)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(buttons)
        lay.addWidget(self.list, 3)
        lay.addWidget(self.form, 0)

    # ------------------------------------------------------------------ actions
    def _with_row(self, fn: object) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.doc.layers):
            fn(row)  # type: ignore[operator]

    def add(self, choice: str) -> None:
        """Add a layer after the selected one (by menu name)."""
        if len(self.doc.layers) >= MAX_LAYERS:
            self.message.emit(f"The stack holds at most {MAX_LAYERS} layers.")
            return
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

    def _pool_kind(self, kind: str) -> None:
        i = self.doc.selected_layer
        if 0 <= i < len(self.doc.layers) and self.doc.layers[i].kind != kind:
            self.doc.set_kind(i, kind)

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
                lines.append(f"   {unbroken(formula)}")
        counts = None
        if in_shape is not None and st.output_shape is not None:
            counts = param_counts(spec, in_shape, st.output_shape)
        if counts is not None:
            lines.append(f"   {param_text(counts)}")
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
        room = n < MAX_LAYERS
        self.add_btn.setEnabled(room)
        self.remove_btn.setEnabled(n > 0)
        self.dup_btn.setEnabled(n > 0 and room)
        full = f"The stack holds at most {MAX_LAYERS} layers"
        for b, tip in ((self.add_btn, ADD_TIP), (self.dup_btn, DUPLICATE_TIP)):
            tip = tip if room else full
            if b.toolTip() != tip:
                b.setToolTip(tip)
        self.up_btn.setEnabled(n > 0 and i > 0)
        self.down_btn.setEnabled(n > 0 and i < n - 1)

    def _sync_form(self) -> None:
        doc = self.doc
        i = doc.selected_layer
        self.form.show_layer(i, doc.layers[i] if doc.layers else None)


def _row_color(enabled: bool, error: str | None) -> QColor | None:
    """Red for an invalid layer, grey for "no input" or disabled, default otherwise."""
    if error:
        return QColor(180, 20, 20) if error != "no input" else QColor(130, 130, 130)
    return None if enabled else QColor(130, 130, 130)
