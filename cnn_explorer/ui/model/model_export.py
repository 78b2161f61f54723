"""File ▸ Export model: the Model tab's model written as ONNX or as PyTorch code plus
weights, so an imported model (Keras, safetensors, ONNX) can leave in another format.

The writing goes through :mod:`cnn_explorer.interchange.onnx_export` and
:mod:`~cnn_explorer.interchange.torch_export` (the same code as ``cnn-explorer export``),
with the preprocessing in use and the class names carried into the file's metadata. It
runs on the loader's background thread (a ResNet-18 is ~45 MB of weights), and each file
is replaced only once fully written (the exporters write atomically). A layer the format
cannot express gives one message naming it; nothing is written then.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from cnn_explorer.interchange.export_common import ExportError
from cnn_explorer.interchange.model import ImportedModel
from cnn_explorer.ui.model.loader import ModelLoader

FORMATS = {
    "onnx": ("ONNX…", "ONNX model (*.onnx)", ".onnx"),
    "pytorch": ("PyTorch…", "PyTorch source + weights (*.py)", ".py"),
}
"""Format key → (menu text, file-dialog filter, suffix)."""


def write_model(fmt: str, path: str, model: ImportedModel) -> list[Path]:
    """Write ``model`` as ``fmt`` (a key of :data:`FORMATS`) to ``path``; the files
    written (PyTorch: ``path`` and the ``.safetensors`` beside it)."""
    pre = model.preprocessing
    names = list(pre.class_names)
    if fmt == "onnx":
        from cnn_explorer.interchange.onnx_export import save_onnx

        save_onnx(path, model.graph, pre.input_shape, preprocessing=pre, class_names=names)
        return [Path(path)]
    from cnn_explorer.interchange.torch_export import save_torch

    return list(
        save_torch(path, model.graph, pre.input_shape, preprocessing=pre, class_names=names)
    )


class ModelExporter(QObject):
    """The Export model menu and the background export behind it."""

    status = Signal(str, bool)  # (text, is_error) for the status bar
    exported = Signal(list)  # the paths written

    def __init__(
        self,
        loader: ModelLoader,
        model: Callable[[], ImportedModel | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.loader = loader
        self.model = model
        self.menu = QMenu("Export &model")
        self.menu.setToolTipsVisible(True)
        self.actions: dict[str, QAction] = {}
        for fmt, (text, _, _) in FORMATS.items():
            action = self.menu.addAction(text)
            action.setToolTip(f"Write the Model tab's model as {text.rstrip('…')}")
            action.triggered.connect(lambda _c=False, f=fmt: self.export_dialog(f))
            self.actions[fmt] = action
        self.menu.aboutToShow.connect(self._enable)
        self._enable()

    def _enable(self) -> None:
        has = self.model() is not None
        for action in self.actions.values():
            action.setEnabled(has)

    def export_dialog(self, fmt: str) -> None:
        model = self.model()
        if model is None:
            self.loader.reporter.error("Nothing to export", "Open a model in the Model tab first.")
            return
        _, filters, suffix = FORMATS[fmt]
        stem = re.sub(r"\W", "_", model.source.stem) or "model"
        path = self.loader.reporter.save_path("Export model", filters, f"{stem}{suffix}")
        if path:
            self.export(fmt, path if path.lower().endswith(suffix) else path + suffix)

    def export(self, fmt: str, path: str) -> bool:
        """Write the open model in the background; False when there is none."""
        model = self.model()
        if model is None:
            return False
        self.status.emit(f"Exporting {os.path.basename(path)}…", False)
        self.loader.run_background(lambda: write_model(fmt, path, model), self._done)
        return True

    def _done(self, result: object) -> None:
        if isinstance(result, ExportError | OSError | ValueError):
            text = getattr(result, "strerror", None) or str(result)
            self.loader.reporter.error("Export failed", f"{text}\nNothing was written.")
            self.status.emit(f"Export failed: {text}", True)
            return
        if isinstance(result, Exception):
            self.loader.reporter.error("Export failed", f"{type(result).__name__}: {result}")
            self.status.emit("Export failed", True)
            return
        assert isinstance(result, list)
        self.status.emit("Exported " + ", ".join(p.name for p in result), False)
        self.exported.emit(result)
