"""Confusion matrix of the validation set, with per-class accuracy.

A table (not a plot) because the numbers are the point: row = the true class, column = the
predicted class, each cell the count, shaded by its share of the row; the diagonal is what
went right. The last column is the per-class accuracy (recall).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.engine.training import per_class_accuracy


def _shade(share: float, correct: bool) -> QColor:
    """White → green (diagonal) or white → orange (mistakes), by row share."""
    base = (46, 160, 67) if correct else (230, 120, 30)
    a = min(max(share, 0.0), 1.0) * 0.85
    return QColor(*(round(255 + (c - 255) * a) for c in base))


class ConfusionMatrixView(QWidget):
    """``set_matrix(matrix (K, K) ints, class_names)``; ``matrix`` is read back by tests."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix = np.zeros((0, 0), np.int64)
        self.title = QLabel("Confusion matrix (validation): rows true class, columns predicted")
        self.title.setWordWrap(True)
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.summary = QLabel("")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)

    def clear(self) -> None:
        self.matrix = np.zeros((0, 0), np.int64)
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        self.summary.setText("")

    def set_matrix(self, matrix: np.ndarray, class_names: list[str]) -> None:
        m = np.asarray(matrix, dtype=np.int64)
        k = len(class_names)
        if m.shape != (k, k):
            raise ValueError(f"matrix shape {m.shape} does not match {k} class names")
        self.matrix = m.copy()
        acc = per_class_accuracy(m)
        self.table.setRowCount(k)
        self.table.setColumnCount(k + 1)
        self.table.setHorizontalHeaderLabels([*class_names, "accuracy"])
        self.table.setVerticalHeaderLabels(class_names)
        rows = np.maximum(m.sum(axis=1), 1)
        for i in range(k):
            for j in range(k):
                cell = QTableWidgetItem(str(m[i, j]))
                cell.setBackground(QBrush(_shade(m[i, j] / rows[i], i == j)))
                cell.setToolTip(f"{m[i, j]} {class_names[i]} image(s) predicted {class_names[j]}")
                self.table.setItem(i, j, cell)
            text = "–" if np.isnan(acc[i]) else f"{acc[i]:.0%}"
            self.table.setItem(i, k, QTableWidgetItem(text))
        total = int(m.sum())
        overall = np.trace(m) / total if total else float("nan")
        worst = int(np.nanargmin(acc)) if np.isfinite(acc).any() else None
        text = f"{np.trace(m)} of {total} validation images right ({overall:.1%})."
        if worst is not None and acc[worst] < 1:
            text += f" Hardest class: {class_names[worst]} ({acc[worst]:.0%})."
        self.summary.setText(text)
