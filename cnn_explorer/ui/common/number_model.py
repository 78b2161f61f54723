"""What the input grid and the kernel table share: editable cells that hold one number.

Typing a non-number must never change anything: :class:`NumberTableModel` parses the text
and either hands the value to :meth:`NumberTableModel.commit` (which turns it into an undo
command) or emits :attr:`NumberTableModel.rejected` with a message for the status bar. The
same goes for a number a float32 cannot hold (1e39 would become inf, "nan" is no value).
"""

from __future__ import annotations

import math
import re

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal

ModelIndex = QModelIndex | QPersistentModelIndex


def parse_number(text: str) -> float:
    """A float from user text (accepts "1,5" as 1.5 and "−2" with a Unicode minus)."""
    t = text.strip().replace("−", "-")
    if re.fullmatch(r"[-+]?\d+,\d+", t):
        t = t.replace(",", ".")
    return float(t)


FLOAT32_MAX = float(np.finfo(np.float32).max)


def float32_problem(v: float) -> str | None:
    """Why ``v`` cannot be stored in a float32 cell ("is not a finite number", "is outside
    …"), or None when it can (tiny values may round to 0: that is still a value)."""
    if not math.isfinite(v):
        return "is not a finite number"
    with np.errstate(over="ignore"):
        if not np.isfinite(np.float32(v)):
            return f"is outside the float32 range (±{FLOAT32_MAX:.2g})"
    return None


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
        problem = float32_problem(v)
        if problem is not None:
            self.rejected.emit(f"“{value}” {problem}: the {self.noun} keeps its value.")
            return False
        self.commit(index.row(), index.column(), v)
        return True

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable
