"""The Help menu's helpers: What's-this texts for the explorer's panels and the keyboard
shortcuts list, built from the window's actual QActions and QShortcuts (never a table
typed by hand, so it cannot drift from the keys that work)."""

from __future__ import annotations

import html
from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QDialog,
    QGraphicsView,
    QHeaderView,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

PANEL_HELP: dict[str, str] = {
    "Input": "The input grid: the numbers the network sees, one per cell. Type a number, "
    "paint with the brush, paste a block, load an image; click a feature-map cell and its "
    "receptive field is outlined here.",
    "Kernel": "The kernel editor: the weights of the selected convolution's filter for one "
    "input channel. Each output cell is the sum of the weights times the input cells under "
    "them (plus the bias).",
    "Layers": "The layer stack, applied top to bottom: convolutions, activations and pooling. "
    "Each row shows the output shape, the output-size rule with your numbers and the "
    "parameter count beside a dense layer's.",
    "Feature maps": "Every map of the network, input first. Click a cell to see its "
    "arithmetic in the Explanation panel and its receptive field in every earlier map.",
    "Explanation": "The arithmetic of the clicked cell with the real numbers, traced back "
    "through activations and pools; copy it as plain text or LaTeX.",
    "Compare": "Compare mode: the document (A), an edited copy (B) and their difference "
    "B − A for every layer. The Layers and Kernel panels edit B; click a cell in any column "
    "to select it in all three.",
    "Lesson": "The guided lesson: each step sets the app up, says what to look at and asks "
    "a question you answer by touching the app.",
}
"""What's-this text of each panel (also the fallback of its controls without a tooltip)."""

CONTROL_TYPES = (
    QAbstractButton,
    QComboBox,
    QAbstractSpinBox,
    QAbstractItemView,
    QGraphicsView,
    QTextBrowser,
)
"""The kinds of widget the user works with: each gets a What's-this text."""


def _plain_label(w: QWidget) -> str:
    """A button's caption ("Fill", "Apply"); other controls' text is their value."""
    return w.text().replace("&", "").strip() if isinstance(w, QAbstractButton) else ""


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def add_whats_this(panel: QWidget, name: str) -> None:
    """Give ``panel`` its :data:`PANEL_HELP` text and every control in it one of its own:
    the control's label and tooltip, in the panel's words. Controls that already have a
    What's-this text keep it; call again after controls were added."""
    intro = PANEL_HELP[name]
    if not panel.whatsThis():
        panel.setWhatsThis(f"<b>{name}</b><br>{_esc(intro)}")
    for w in panel.findChildren(QWidget):
        if not isinstance(w, CONTROL_TYPES) or isinstance(w, QHeaderView) or w.whatsThis():
            continue
        tip, label = w.toolTip(), _plain_label(w)
        head = f"<b>{name}{' ▸ ' + _esc(label) if label else ''}</b><br>"
        body = _esc(tip).replace("\n", "<br>") if tip else _esc(intro)
        w.setWhatsThis(head + body)


def _menu_path(action: QAction, depth: int = 0) -> str:
    """ "View ▸ Zoom ▸ Zoom in" for a menu item (through the first menus that hold it),
    else its text."""
    text = action.text().replace("&", "")
    for menu in action.associatedObjects():
        if isinstance(menu, QMenu) and menu.title() and depth < 4:
            return f"{_menu_path(menu.menuAction(), depth + 1)} ▸ {text}"
    return text


def shortcut_rows(window: QWidget) -> list[tuple[str, str]]:
    """``(what, keys)`` for every action and shortcut of ``window`` that has keys, as the
    user would read them: actions by menu path, panel shortcuts by what they do."""
    rows: list[tuple[str, str]] = []
    for action in window.findChildren(QAction):
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
        keys = [k for k in keys if k]
        if keys and action.text():
            rows.append((_menu_path(action), ", ".join(keys)))
    for sc in window.findChildren(QShortcut):
        key = sc.key().toString(QKeySequence.SequenceFormat.NativeText)
        what = sc.whatsThis() or sc.objectName()
        if key and what:
            rows.append((what, key))
    return sorted(set(rows))


class ShortcutsDialog(QDialog):
    """A non-modal list of the window's keyboard shortcuts (Help ▸ Keyboard shortcuts)."""

    def __init__(self, rows: Iterable[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.setModal(False)
        rows = list(rows)
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Command", "Keys"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for r, (what, keys) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(what))
            self.table.setItem(r, 1, QTableWidgetItem(keys))
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.resizeColumnsToContents()
        lay = QVBoxLayout(self)
        lay.addWidget(self.table)
        self.resize(520, 480)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)

    def rows(self) -> list[tuple[str, str]]:
        """What the table shows, row by row (tests compare it with the actions)."""
        return [
            (self.table.item(r, 0).text(), self.table.item(r, 1).text())
            for r in range(self.table.rowCount())
        ]
