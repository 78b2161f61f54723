"""The layer navigator: the graph's nodes in topological order with their op and output
shape. Branches and merges show: nodes off the main path (the output's first-input
chain) are indented under a ``├`` line, a merge is marked ``⊕``, a node read by several
others ``⑂``, and the "from" column names every input that is not the row just above
(skip connections and the branches a merge joins)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QWidget

from cnn_explorer.explorer.graph_view_model import NodeInfo

NAME_ROLE = Qt.ItemDataRole.UserRole


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def row_texts(rows: list[NodeInfo]) -> list[tuple[str, str, str, str]]:
    """``(node, op, shape, from)`` per row, with the branch marks described above."""
    out = []
    previous = ""
    for row in rows:
        mark = "⊕ " if row.is_merge else ("⑂ " if row.consumers > 1 else "")
        indent = "   ├ " if row.branch else ""
        sources = [i for i in row.inputs if i != previous]
        src = ("← " + ", ".join(sources)) if sources else ""
        out.append((f"{indent}{mark}{row.name}", row.op, shape_text(row.shape), src))
        previous = row.name
    return out


class NodeNavigator(QTreeWidget):
    """One row per tensor; clicking a row selects its node."""

    node_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Node", "Op", "Output", "From"])
        self.setRootIsDecorated(False)
        self.setAlternatingRowColors(True)
        self.setUniformRowHeights(True)
        self.itemClicked.connect(self._clicked)
        self.currentItemChanged.connect(lambda item, _old: self._clicked(item))
        self._items: dict[str, QTreeWidgetItem] = {}

    def set_rows(self, rows: list[NodeInfo]) -> None:
        self.clear()
        self._items = {}
        bold = QFont()
        bold.setBold(True)
        for row, texts in zip(rows, row_texts(rows), strict=True):
            item = QTreeWidgetItem(list(texts))
            item.setData(0, NAME_ROLE, row.name)
            item.setToolTip(0, f"{row.name}\n{row.op}\ninputs: {', '.join(row.inputs) or '—'}")
            item.setToolTip(3, ", ".join(row.inputs))
            if row.is_merge:
                item.setFont(0, bold)
                item.setForeground(0, QBrush(QColor(120, 40, 140)))
            elif row.branch:
                item.setForeground(0, QBrush(QColor(30, 90, 160)))
            self.addTopLevelItem(item)
            self._items[row.name] = item
        for col in range(4):
            self.resizeColumnToContents(col)
        self.setColumnWidth(0, min(self.columnWidth(0), 260))
        self.setColumnWidth(1, min(self.columnWidth(1), 220))

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
