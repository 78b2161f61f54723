"""What the input grid and the kernel table share: editable cells that hold one number.

Typing a non-number must never change anything: :class:`NumberTableModel` parses the text
and either hands the value to :meth:`NumberTableModel.commit` (which turns it into an undo
command) or emits :attr:`NumberTableModel.rejected` with a message for the status bar.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal

ModelIndex = QModelIndex | QPersistentModelIndex


def parse_number(text: str) -> float:
    """A float from user text (accepts "1,5" as 1.5 and "−2" with a Unicode minus)."""
    t = text.strip().replace("−", "-")
    if re.fullmatch(r"[-+]?\d+,\d+", t):
        t = t.replace(",", ".")
    return float(t)


class NumberTableModel(QAbstractTableModel):
    """A table model whose cells are edited as numbers (subclasses provide the data)."""

    rejected = Signal(str)
    noun = "cell"
    """What a cell is called in the rejection message ("the cell keeps its value")."""

    def commit(self, row: int, col: int, value: float) -> None:
        """Store an edited value (through the document's undo stack)."""
        raise NotImplementedError

    def setData(
        self, index: ModelIndex, value: object, role: int = Qt.ItemDataRole.EditRole
    ) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        try:
            v = parse_number(str(value))
        except ValueError:
            self.rejected.emit(f"“{value}” is not a number: the {self.noun} keeps its value.")
            return False
        self.commit(index.row(), index.column(), v)
        return True

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable
