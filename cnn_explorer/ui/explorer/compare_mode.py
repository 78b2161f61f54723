"""Compare mode: the document (A) beside an edited copy (B), and their difference.

Entering duplicates A's configuration into a second :class:`Document` (B, with its own undo
stack) and shows :class:`CompareView` in a "Compare A | B" tab in place of the feature
maps. The Layers and Kernel docks then hold B's own layer stack and kernel editor (titled
"— B"), Edit ▸ Undo/Redo act on B's stack (through the window's undo group), and the
Explanation dock shows A's and B's arithmetic of the selected cell one above the other.
The input stays A's: every input edit of A is followed by B without an undo step.

B is view state: leaving compare mode discards it without asking. *Adopt B* makes B's
layers the document's in one undo step of A's stack, then leaves; *Swap* gives the
document B's layers (one undo step of A's stack) and B the document's old ones.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QUndoGroup
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMenu,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer import compare
from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.model import Change
from cnn_explorer.ui import help as helptext
from cnn_explorer.ui.explorer.compare_view import CompareView
from cnn_explorer.ui.explorer.explanation_panel import ExplanationPanel
from cnn_explorer.ui.explorer.kernel_editor import KernelEditor
from cnn_explorer.ui.explorer.layer_stack import LayerStack

TAB_TITLE = "Compare A | B"


def undo_group(win: Any) -> QUndoGroup:
    """The main window's undo group, made once and kept as ``win.undo_group``: Edit ▸
    Undo/Redo act on its active stack, the document's (B's while compare mode is on)."""
    group = getattr(win, "undo_group", None)
    if group is None:
        group = win.undo_group = QUndoGroup(win)
        group.addStack(win.doc.undo_stack)
        group.setActiveStack(win.doc.undo_stack)
    return group


def _titled(title: str, widget: QWidget) -> QWidget:
    """``widget`` under a bold one-line title (the two explanations in one dock)."""
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(0, 2, 0, 0)
    lay.setSpacing(0)
    label = QLabel(f"<b>{title}</b>")
    label.setContentsMargins(6, 0, 0, 0)
    lay.addWidget(label)
    lay.addWidget(widget, 1)
    return box


class CompareMode(QObject):
    """Owns B and swaps the window's maps and editor docks between A and compare mode."""

    active_changed = Signal(bool)
    message = Signal(str)

    def __init__(
        self,
        doc: Document,
        tabs: QTabWidget,
        maps: QWidget,
        docks: dict[str, QDockWidget],
        undo_group: QUndoGroup,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.a = doc
        self._tabs, self._maps, self._docks, self._undo = tabs, maps, docks, undo_group
        self.b: Document | None = None
        self.view: CompareView | None = None
        self._b_widgets: dict[str, QWidget] = {}
        self._a_widgets: dict[str, QWidget] = {}
        self._titles: dict[str, str] = {}
        self._explain_split: QSplitter | None = None
        self._replacing = False  # swap replaces the document: compare mode goes on
        self._zoom = 1.0
        self.toggle_action = QAction("&Compare A | B", self, checkable=True)
        self.toggle_action.setShortcut("Ctrl+Shift+C")
        self.toggle_action.setToolTip(
            "Compare: duplicate this configuration as B, change B, and see A, B and B − A "
            "for every layer (Ctrl+Shift+C)"
        )
        self.toggle_action.toggled.connect(self.set_active)
        self.swap_action = QAction("S&wap A ↔ B", self, enabled=False)
        self.swap_action.setToolTip("The document takes B's layers and B the document's (undoable)")
        self.swap_action.triggered.connect(self.swap)
        self.adopt_action = QAction("&Adopt B", self, enabled=False)
        self.adopt_action.setToolTip("Make B the document (one undo step) and leave compare mode")
        self.adopt_action.triggered.connect(self.adopt)
        self.leave_action = QAction("&Leave compare", self, enabled=False)
        self.leave_action.setToolTip("Back to the document's maps; B is discarded")
        self.leave_action.triggered.connect(lambda: self.set_active(False))
        doc.changed.connect(self._a_changed)

    @classmethod
    def for_window(cls, win: Any, menu: QMenu) -> CompareMode:
        """Compare mode for the main window ``win`` (its docks, tabs, undo group and zoom
        made): its actions in ``menu`` (View), a Compare button on the maps' toolbar,
        messages to the status bar."""
        docks = {"layers": win.layers_dock, "kernel": win.kernel_dock, "explain": win.explain_dock}
        mode = cls(win.doc, win.tabs, win.maps, docks, win.undo_group, win)
        mode.message.connect(win.show_status)
        menu.addSeparator()
        for action in (mode.toggle_action, mode.swap_action, mode.adopt_action):
            menu.addAction(action)
        win.maps.toolbar.add_button(mode.toggle_action)
        helptext.add_whats_this(win.maps, "Feature maps")  # the new button too
        win.teaching.zoom.changed.connect(mode.set_zoom)  # View ▸ Zoom: its maps too
        mode.set_zoom(win.teaching.zoom.factor)
        return mode

    @property
    def active(self) -> bool:
        return self.toggle_action.isChecked() and self.b is not None

    # ------------------------------------------------------------------ entering / leaving
    def _ensure_b(self) -> Document:
        """B, its editors and the compare view, made on first use (start-up stays fast)."""
        if self.b is not None:
            return self.b
        b = Document(self)
        self.b = b
        self.view = CompareView(self.a, b)
        self.view.set_zoom(self._zoom)
        for action in (self.leave_action, self.swap_action, self.adopt_action):
            self.view.add_button(action)
        self._b_widgets = {"layers": LayerStack(b), "kernel": KernelEditor(b)}
        for w in self._b_widgets.values():
            w.message.connect(self.message)  # type: ignore[attr-defined]
        helptext.add_whats_this(self.view, "Compare")  # Help ▸ What is this?
        helptext.add_whats_this(self._b_widgets["layers"], "Layers")
        helptext.add_whats_this(self._b_widgets["kernel"], "Kernel")
        self._undo.addStack(b.undo_stack)
        return b

    def set_active(self, on: bool) -> None:
        """Enter compare mode (B = a copy of the document) or leave it (B discarded)."""
        if on == (self.b is not None and self.view is not None and self.view.active):
            return
        if self.toggle_action.isChecked() != on:
            self.toggle_action.setChecked(on)  # toggled → back here
            return
        if on:
            try:
                compare.check_room(self.a.model)
            except ValueError as exc:
                self.toggle_action.setChecked(False)
                self.message.emit(f"Not done: {exc}.")
                return
            self._enter()
        else:
            self._leave()
        for action in (self.swap_action, self.adopt_action, self.leave_action):
            action.setEnabled(on)
        self.active_changed.emit(on)

    def _enter(self) -> None:
        b = self._ensure_b()
        assert self.view is not None
        self._copy_into_b(compare.copy_layers(self.a.layers))
        b.select_layer(self.a.selected_layer, self.a.selected_filter, self.a.selected_in_channel)
        b.select_cell(self.a.selection)
        self._undo.setActiveStack(b.undo_stack)
        self._swap_docks(True)
        self.view.set_active(True)
        tabs = self._tabs
        if tabs.indexOf(self.view) < 0:
            tabs.addTab(self.view, TAB_TITLE)
        tabs.setCurrentWidget(self.view)
        tabs.setTabVisible(tabs.indexOf(self._maps), False)
        self.message.emit("Compare mode: the Layers and Kernel panels now edit B.")

    def _leave(self) -> None:
        assert self.b is not None and self.view is not None
        self.view.set_active(False)
        tabs = self._tabs
        tabs.setTabVisible(tabs.indexOf(self._maps), True)
        tabs.setCurrentWidget(self._maps)
        tabs.removeTab(tabs.indexOf(self.view))
        self._swap_docks(False)
        self._undo.setActiveStack(self.a.undo_stack)
        self.b.undo_stack.clear()
        self.message.emit("Left compare mode (B discarded).")

    def _copy_into_b(self, layers: list) -> None:
        """B becomes the document's input with ``layers``, with no history of its own."""
        assert self.b is not None
        self.b.apply_document(self.a.input, layers)
        self.b.undo_stack.clear()
        self.b.recompute_now()

    def _swap_docks(self, on: bool) -> None:
        """Put B's editors (on) or A's (off) in the Layers and Kernel docks, and both
        explanations (on) or A's alone (off) in the Explanation dock."""
        assert self.b is not None
        for name in ("layers", "kernel"):
            dock = self._docks[name]
            if on:
                self._a_widgets[name] = dock.widget()
                self._titles[name] = dock.windowTitle()
                dock.setWidget(self._b_widgets[name])
                dock.setWindowTitle(f"{self._titles[name]} — B")
            elif name in self._a_widgets:
                dock.setWidget(self._a_widgets.pop(name))
                dock.setWindowTitle(self._titles[name])
            dock.widget().show()
        dock = self._docks["explain"]
        if on:
            self._a_widgets["explain"] = panel_a = dock.widget()
            split = QSplitter(Qt.Orientation.Vertical)
            split.addWidget(_titled("A", panel_a))
            explain_b = ExplanationPanel(self.b)
            helptext.add_whats_this(explain_b, "Explanation")
            split.addWidget(_titled("B", explain_b))
            dock.setWidget(split)
            panel_a.show()
            self._explain_split = split
        elif "explain" in self._a_widgets:
            dock.setWidget(self._a_widgets.pop("explain"))
            dock.widget().show()
            if self._explain_split is not None:
                self._explain_split.deleteLater()  # B's explanation goes with it
                self._explain_split = None

    # ------------------------------------------------------------------ A ↔ B
    def adopt(self) -> None:
        """B's layers become the document's (one undo step), then compare mode ends."""
        if not self.active:
            return
        assert self.b is not None
        sel = self.b.selection or self.a.selection
        self.set_active(False)
        self.a.new_document(self.a.input, compare.copy_layers(self.b.layers), "Adopt compare B")
        self.a.recompute_now()
        self.a.select_cell(sel)  # the cell being compared stays selected
        self.message.emit("B is now the document (Edit ▸ Undo brings A back).")

    def swap(self) -> None:
        """The document takes B's layers (one undo step) and B the document's old ones."""
        if not self.active:
            return
        assert self.b is not None
        old_a = compare.copy_layers(self.a.layers)
        sel_a, sel_b = self.a.selection, self.b.selection
        self._replacing = True
        try:
            self.a.new_document(self.a.input, compare.copy_layers(self.b.layers), "Swap A and B")
        finally:
            self._replacing = False
        self.a.recompute_now()
        self._copy_into_b(old_a)
        self.a.select_cell(sel_b or sel_a)  # the same cell, now on the other side
        self.b.select_cell(sel_a or sel_b)
        self.message.emit("Swapped A and B (the document changed: undo it after leaving).")

    # ------------------------------------------------------------------ the shared input
    def _a_changed(self, change: Change) -> None:
        """An input edit of A (or its undo) reaches B: the input is shared."""
        if self.b is None or not self.active:
            return
        if change.kind == "document" and not self._replacing:
            self.set_active(False)  # a file was opened: B belonged to the old one
            self.message.emit("Left compare mode: the document was replaced.")
            return
        if change.kind in ("input", "input_shape", "document"):
            self.b.follow_input(self.a, change.region if change.kind == "input" else None)

    def set_zoom(self, factor: float) -> None:
        """View ▸ Zoom reaches the compare view too."""
        self._zoom = factor
        if self.view is not None:
            self.view.set_zoom(factor)

    def shutdown(self) -> None:
        if self.b is not None:
            self.b.shutdown()
