"""The File menu's actions that carry a network from one tab to another or out of the app:
"Fine-tune the model in training" (the Model tab's imported model → the Training tab),
"Export network ▸ ONNX… / PyTorch…" (the Training tab's network → files) and "Export model
▸ ONNX… / PyTorch…" (the Model tab's imported model → files, so a Keras or safetensors
model can leave as ONNX or PyTorch; same exporter, preprocessing and class names carried).

Why apart from the main window: the window only composes; this object is handed the ways to
reach each tab (callables), so no tab reaches into another and the window stays short.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QWidget

from cnn_explorer.interchange.model import ImportedModel
from cnn_explorer.ui.common.messages import Reporter
from cnn_explorer.ui.network_export import ExportSource, NetworkExporter

NO_MODEL = "Open a model in the Model tab first (File ▸ Open model…)."


class NetworkActions(QObject):
    """``training()`` shows the Training tab and returns it; ``trained()`` returns it only
    when it exists (None before first use); ``imported()`` is the Model tab's model or None.
    ``status(text, is_error)`` goes to the status bar."""

    status = Signal(str, bool)

    def __init__(
        self,
        reporter: Reporter,
        training: Callable[[], QWidget],
        trained: Callable[[], QWidget | None],
        imported: Callable[[], ImportedModel | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._training, self._trained, self._imported = training, trained, imported
        self.exporter = NetworkExporter(reporter, self._export_source, self)
        self.exporter.status.connect(self.status)
        self.model_exporter = NetworkExporter(
            reporter, self._model_source, self, what="model", nothing=NO_MODEL
        )
        self.model_exporter.status.connect(self.status)
        self.reporter = reporter

    @property
    def reporter(self) -> Reporter:
        return self._reporter

    @reporter.setter
    def reporter(self, reporter: Reporter) -> None:
        self._reporter = reporter
        self.exporter.reporter = reporter
        self.model_exporter.reporter = reporter

    def add_to(self, menu: QMenu) -> None:
        """ "Fine-tune the model in training" and the "Export network" and "Export model"
        submenus."""
        tune = QAction("&Fine-tune the model in training", menu)
        tune.setStatusTip("Train the Model tab's imported model further on an image folder")
        tune.triggered.connect(lambda _c=False: self.fine_tune_imported())
        menu.addAction(tune)
        net = menu.addMenu("Export &network")
        net.setToolTipsVisible(True)
        for fmt, text in (("onnx", "&ONNX…"), ("torch", "&PyTorch…")):
            act = QAction(text, net)
            act.setToolTip("The Training tab's network, with its preprocessing and class names")
            act.triggered.connect(lambda _c=False, x=fmt: self.exporter.export_dialog(x))
            net.addAction(act)
        mod = menu.addMenu("Export &model")
        mod.setToolTipsVisible(True)
        for fmt, text in (("onnx", "&ONNX…"), ("torch", "&PyTorch…")):
            act = QAction(text, mod)
            act.setToolTip("The Model tab's model, with its preprocessing and class names")
            act.triggered.connect(lambda _c=False, x=fmt: self.model_exporter.export_dialog(x))
            mod.addAction(act)

    def fine_tune_imported(self) -> bool:
        """Hand the Model tab's model to the Training tab (False and a message if none)."""
        model = self._imported()
        if model is None:
            self.reporter.error(
                "No model to fine-tune", "Open a model file first (File ▸ Open model…)."
            )
            return False
        return self.open_in_training(model)

    def open_in_training(self, imported: ImportedModel) -> bool:
        """Switch to the Training tab and give it ``imported`` to fine-tune (see
        ``TrainingTab.open_in_training``). False when the tab refused it (it says why)."""
        tab: Any = self._training()
        return bool(tab.open_in_training(imported))

    def _export_source(self) -> ExportSource | None:
        """What File ▸ Export network writes: the Training tab's trained network."""
        tab: Any = self._trained()
        return None if tab is None else tab.export_source()

    def _model_source(self) -> ExportSource | None:
        """What File ▸ Export model writes: a copy of the Model tab's model (the export
        thread owns it), with the preprocessing in use."""
        model = self._imported()
        if model is None:
            return None
        pre = model.preprocessing
        return ExportSource(model.graph.copy(), pre.input_shape, pre.to_dict())

    def shutdown(self) -> None:
        self.exporter.shutdown()
        self.model_exporter.shutdown()


__all__ = ["NetworkActions"]
