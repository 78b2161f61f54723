"""The layer navigator: the graph's nodes in topological order with their op and output
shape. Branches and merges show: nodes off the main path (the output's first-input
chain) are indented under a ``├`` line, a merge is marked ``⊕``, a node read by several
others ``┬``, and each row names every input that is not the row just above (skip
connections and the branches a merge joins)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QWidget

from cnn_explorer.explorer.graph_view_model import NodeInfo

NAME_ROLE = Qt.ItemDataRole.UserRole


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def row_texts(rows: list[NodeInfo]) -> list[str]:
    """Two lines per row: the node's name (with the branch marks described above), then
    its op, output shape and the inputs that are not the row just above."""
    out = []
    previous = ""
    for row in rows:
        mark = "⊕ " if row.is_merge else ("┬ " if row.consumers > 1 else "")
        indent = "    ├ " if row.branch else ""
        pad = "    │ " if row.branch else ""
        sources = [i for i in row.inputs if i != previous]
        src = ("  ← " + ", ".join(sources)) if sources else ""
        out.append(f"{indent}{mark}{row.name}\n{pad}{row.op} · {shape_text(row.shape)}{src}")
        previous = row.name
    return out


class NodeNavigator(QTreeWidget):
    """One row per tensor; clicking a row selects its node."""

    node_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Layers   ⊕ merge  ┬ fan-out  ├ branch"])
        self.setRootIsDecorated(False)
        self.setAlternatingRowColors(True)
        self.setUniformRowHeights(True)
        self.setWordWrap(False)
        self.itemClicked.connect(self._clicked)
        self.currentItemChanged.connect(lambda item, _old: self._clicked(item))
        self._items: dict[str, QTreeWidgetItem] = {}

    def set_rows(self, rows: list[NodeInfo]) -> None:
        self.clear()
        self._items = {}
        bold = QFont()
        bold.setBold(True)
        for row, text in zip(rows, row_texts(rows), strict=True):
            item = QTreeWidgetItem([text])
            item.setData(0, NAME_ROLE, row.name)
            item.setToolTip(0, f"{row.name}\n{row.op}\ninputs: {', '.join(row.inputs) or '—'}")
            if row.is_merge:
                item.setFont(0, bold)
                item.setForeground(0, QBrush(QColor(120, 40, 140)))
            elif row.branch:
                item.setForeground(0, QBrush(QColor(30, 90, 160)))
            self.addTopLevelItem(item)
            self._items[row.name] = item

    def names(self) -> list[str]:
        """The node names shown, top to bottom."""
        return list(self._items)

    def select(self, name: str) -> None:
        """Make ``name``'s row current without announcing it again."""
        item = self._items.get(name)
        if item is not None and item is not self.currentItem():
            self.blockSignals(True)
            self.setCurrentItem(item)
            self.blockSignals(False)
            self.scrollToItem(item)

    def _clicked(self, item: QTreeWidgetItem | None) -> None:
        if item is not None:
            self.node_clicked.emit(str(item.data(0, NAME_ROLE)))
