"""The controls every insight page has around its :class:`InsightView`: Run and Cancel with
a progress bar and a status line, the heatmap's opacity, and PNG / .npy export. The
training tab's Insight page and the Model tab's share them (one look, one behaviour)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QWidget,
)

from cnn_explorer.ui.common.insight_view import InsightView


class InsightActions:
    """Run / Cancel / progress / status and opacity / PNG / .npy for one insight page.

    ``run`` and ``cancel`` are called by their buttons; ``export(fmt, path)`` after the
    user chose where to save (``fmt`` is "png" or "npy"); ``file_stem()`` names the
    suggested file. The page lays the widgets out as it likes (:meth:`export_bar` is the
    usual bottom row)."""

    def __init__(
        self,
        page: QWidget,
        view: InsightView,
        hint: str,
        run: Callable[[], object],
        cancel: Callable[[], object],
        export: Callable[[str, str], object],
        file_stem: Callable[[], str],
    ) -> None:
        self.page, self._export, self._file_stem = page, export, file_stem
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Compute the chosen method (in the background)")
        self.run_button.clicked.connect(lambda: run())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running method")
        self.cancel_button.clicked.connect(lambda: cancel())
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.status = QLabel(hint)
        self.status.setWordWrap(True)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(round(100 * view.opacity))
        self.opacity.setToolTip("Opacity of the heatmap over the picture")
        self.opacity.valueChanged.connect(lambda v: view.set_opacity(v / 100))
        self.png_button = QPushButton("PNG…")
        self.png_button.setToolTip("Save the view as drawn, colour bar included")
        self.png_button.clicked.connect(lambda: self.ask_export("png"))
        self.npy_button = QPushButton(".npy…")
        self.npy_button.setToolTip("Save the result's numbers")
        self.npy_button.clicked.connect(lambda: self.ask_export("npy"))

    def run_bar(self) -> QHBoxLayout:
        """Run, Cancel and the progress bar in one row."""
        row = QHBoxLayout()
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.progress, 1)
        return row

    def export_bar(self, *extra: QWidget) -> QHBoxLayout:
        """The opacity slider, PNG and .npy (then ``extra`` buttons) in one row."""
        row = QHBoxLayout()
        row.addWidget(QLabel("Opacity"))
        row.addWidget(self.opacity, 1)
        for w in (self.png_button, self.npy_button, *extra):
            row.addWidget(w)
        return row

    def ask_export(self, fmt: str) -> None:
        """Ask where to save the result as ``fmt`` ("png" or "npy"), then save it."""
        name = self._file_stem().replace("+", "p") + f".{fmt}"
        path, _ = QFileDialog.getSaveFileName(self.page, "Export", name, f"{fmt.upper()} (*.{fmt})")
        if path:
            self._export(fmt, path)
