"""The Model tab's Insight page: Grad-CAM, Grad-CAM++, saliency and SmoothGrad of the
user's own model on the user's own picture, no code.

Pick a method, a class (the top class, or any class by name: the box completes what you
type) and, for Grad-CAM, the node whose maps it weighs (default: the deepest feature map,
:func:`~cnn_explorer.insight.gradcam.default_cam_node`); press Run. The work is
:func:`cnn_explorer.insight.jobs.job` on a copy of the graph, pumped on a worker thread
(progress, cancel between SmoothGrad batches); the heatmap is drawn over the picture as the
user sees it (not the normalised input), with an opacity slider and a colour bar, and can
be saved as PNG (as drawn) or ``.npy`` (the numbers).

The page reads the :class:`GraphDocument` (model, picture, preprocessed input) and never
another widget; a new model or picture clears the result.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QFormLayout,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.explorer.graph_document import GraphDocument
from cnn_explorer.insight.gradcam import default_cam_node, feature_nodes
from cnn_explorer.insight.jobs import (
    GRADCAM,
    GRADCAM_PP,
    METHODS,
    SALIENCY,
    SMOOTHGRAD,
    InsightResult,
    Request,
    job,
)
from cnn_explorer.insight.saliency import MAX_SAMPLES
from cnn_explorer.insight.targets import InsightError, Progress, ProgressGen
from cnn_explorer.training.worker import TrainingWorker
from cnn_explorer.ui.common.insight_actions import InsightActions
from cnn_explorer.ui.common.insight_view import InsightView
from cnn_explorer.ui.common.messages import ERROR_STYLE

MODEL_METHODS = (GRADCAM, GRADCAM_PP, SALIENCY, SMOOTHGRAD)
"""The methods offered here, in menu order (the ones that explain one picture)."""
CAM_METHODS = (GRADCAM, GRADCAM_PP)
TOP = -1
"""Class combo data: the class the model ranks first for the picture."""
MODES = (
    ("abs", "|gradient| (max over channels)"),
    ("signed", "signed gradient"),
    ("grad_x_input", "gradient × input"),
)


def picture_chw(pixels: np.ndarray) -> np.ndarray:
    """The shown picture ``(H, W)`` or ``(H, W, 3)`` uint8 as ``(C, H, W)`` in [0, 1]
    (what the heatmap is drawn over)."""
    p = np.asarray(pixels, np.float32) / 255.0
    return p[None] if p.ndim == 2 else p.transpose(2, 0, 1)


class ModelInsightPanel(QWidget):
    """Settings above, the heatmap over the picture below. ``finished(reason)`` after each
    run: ``"completed"``, ``"stopped"`` or ``"failed"``."""

    finished = Signal(str)

    def __init__(self, doc: GraphDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.result: InsightResult | None = None
        self.worker = TrainingWorker(self)
        self.view = InsightView()
        self._run_for: tuple[object, int] | None = None  # (view model, input generation)
        self._build()
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        doc.model_changed.connect(self._model_changed)
        doc.input_changed.connect(self._input_changed)
        doc.tensors_ready.connect(self._update_top)
        if doc.view is not None:
            self._model_changed()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.method = QComboBox()
        for key in MODEL_METHODS:
            self.method.addItem(METHODS[key], key)
        self.method.setToolTip(
            "Grad-CAM: which regions of the picture the chosen layer's features used for "
            "the class. Saliency: which pixels the class score is most sensitive to."
        )
        self.klass = QComboBox()
        self.klass.setEditable(True)
        self.klass.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.klass.setToolTip("The class to explain: type part of its name to find it")
        self.layer = QComboBox()
        self.layer.setToolTip("The node whose feature maps Grad-CAM weighs (deepest by default)")
        self.mode = QComboBox()
        for key, text in MODES:
            self.mode.addItem(text, key)
        self.samples = QSpinBox()
        self.samples.setRange(1, MAX_SAMPLES)
        self.samples.setValue(25)
        self.samples.setToolTip("SmoothGrad: noisy copies of the picture to average")
        form = QFormLayout()
        form.addRow("Method", self.method)
        form.addRow("Class", self.klass)
        form.addRow("Layer", self.layer)
        form.addRow("Map", self.mode)
        form.addRow("Samples", self.samples)
        self.form = form

        acts = InsightActions(
            self,
            self.view,
            "Open a model, load a picture, then press Run.",
            run=lambda: self.run(),
            cancel=self.cancel,
            export=self._export,
            file_stem=self.method_key,
        )
        self.run_button, self.cancel_button = acts.run_button, acts.cancel_button
        self.progress, self.status, self.opacity = acts.progress, acts.status, acts.opacity
        self.png_button, self.npy_button = acts.png_button, acts.npy_button
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(form)
        lay.addLayout(acts.run_bar())
        lay.addWidget(self.status)
        lay.addWidget(self.view, 1)
        lay.addLayout(acts.export_bar())
        self.method.currentIndexChanged.connect(lambda _: self._update_buttons())
        self._update_buttons()

    # ------------------------------------------------------------------ document
    def _model_changed(self) -> None:
        """A new model (or preprocessing): offer its classes and feature-map nodes."""
        self.worker.stop()
        self.result = None
        vm = self.doc.view
        if vm is None:
            return
        names = list(vm.preprocessing.class_names)
        out = vm.shapes[vm.graph.output]
        count = int(np.prod(out)) if len(out) == 1 or tuple(out[1:]) == (1, 1) else 0
        self.klass.clear()
        self.klass.addItem("Top class", TOP)
        for i in range(count):
            self.klass.addItem(names[i] if i < len(names) else f"class {i}", i)
        completer = QCompleter([self.klass.itemText(i) for i in range(self.klass.count())])
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.klass.setCompleter(completer)
        self.layer.clear()
        try:
            nodes = feature_nodes(vm.graph, vm.input_shape)
            default = default_cam_node(vm.graph, vm.input_shape)
        except ShapeError:
            nodes, default = [], None
        for name, shape in nodes:
            self.layer.addItem(f"{name}  ({'×'.join(map(str, shape))})", name)
        if default is not None:
            self.layer.setCurrentIndex(max(0, self.layer.findData(default)))
        self._input_changed()

    def _input_changed(self) -> None:
        """A new picture: show it (a result for the old one would mislead)."""
        vm = self.doc.view
        if vm is None or self.worker.is_running():
            self._update_buttons()
            return
        self.result = None
        self.view.show_preview(picture_chw(vm.pixels), vm.input_name)
        self._update_top()

    def _update_top(self) -> None:
        """Name the top class in the class box's first entry once the scores are known."""
        vm = self.doc.view
        text = "Top class"
        if vm is not None and vm.tensors is not None:
            top = vm.top_k(1)
            if top:
                text = f"Top class ({top[0].name}, {top[0].probability:.0%})"
        if self.klass.count():
            self.klass.setItemText(0, text)
        self._update_buttons()

    # ------------------------------------------------------------------ choices
    def method_key(self) -> str:
        return str(self.method.currentData())

    def choose(self, method: str | None = None, klass: str | None = None) -> None:
        """Pick a method key and/or a class by its shown name (tests, scripts); ValueError
        when there is no such entry."""
        if method is not None:
            i = self.method.findData(method)
            if i < 0:
                raise ValueError(f"no method {method!r} here")
            self.method.setCurrentIndex(i)
        if klass is not None:
            i = self.klass.findText(klass)
            if i < 0:
                raise ValueError(f"the model has no class named {klass!r}")
            self.klass.setCurrentIndex(i)

    def chosen_class(self) -> int | None:
        """The chosen class index, TOP for the top class; None when the typed text names
        no class."""
        i = self.klass.findText(self.klass.currentText())
        if i < 0:
            return None
        return int(self.klass.itemData(i))

    def request(self, klass: int) -> Request:
        layer = self.layer.currentData()
        return Request(
            self.method_key(),
            str(layer) if layer is not None else "",
            klass=klass,
            mode=str(self.mode.currentData()),
            samples=self.samples.value(),
        )

    # ------------------------------------------------------------------ running
    def run(self) -> bool:
        """Start the chosen method on a copy of the graph; False (and a message) when it
        cannot start."""
        vm = self.doc.view
        if self.worker.is_running():
            return self._error("A method is already running: cancel it first.")
        if vm is None:
            return self._error("Open a model first.")
        klass = self.chosen_class()
        if klass is None:
            return self._error(f"No class is called “{self.klass.currentText()}”.")
        if self.method_key() in CAM_METHODS and self.layer.currentData() is None:
            return self._error("This model has no feature maps for Grad-CAM: try saliency.")
        graph, x = vm.graph, np.asarray(vm.x[0])
        names = list(vm.preprocessing.class_names)
        request = self.request(max(klass, 0))
        try:
            job(request, graph, x, None)  # checks now; the thread makes its own
        except (InsightError, ShapeError) as exc:
            return self._error(f"Cannot run {METHODS[request.method]}: {exc}")
        self.result = None
        self.progress.setValue(0)
        self._run_for = (vm, vm.generation)
        self._set_status(f"{METHODS[request.method]}: running…")

        def factory(stop: Any) -> ProgressGen:
            own = graph.copy()  # the document's forward pass may use the graph meanwhile
            k = klass
            if k == TOP:
                k = int(np.argmax(np.asarray(own(x[None])).reshape(-1)))
            return job(replace(request, klass=k), own, x, None, stop, names)

        started = self.worker.start(factory)
        self._update_buttons()
        return started

    def cancel(self) -> None:
        self.worker.stop()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop a running method and wait for its thread (tab shutdown)."""
        return self.worker.shutdown(timeout_ms)

    def _on_progress(self, record: Progress) -> None:
        self.progress.setValue(round(1000 * record.fraction))
        vm = self.doc.view
        if record.result is not None and vm is not None and self._run_for == (vm, vm.generation):
            # drawn over the picture as the user sees it, not the normalised input
            self.result = replace(record.result, image=picture_chw(vm.pixels))
            self.view.show_result(self.result)
        elif record.text:
            self._set_status(record.text)

    def _on_finished(self, reason: str) -> None:
        if reason == "completed" and self.result is not None:
            self._set_status(
                "Done: the opacity slider blends the heatmap with the picture; bright = "
                "where the evidence is."
            )
        elif reason == "completed":
            self._set_status("The picture changed meanwhile: press Run again.")
        else:
            self._set_status("Cancelled.")
        self._update_buttons()
        self.finished.emit("completed" if reason == "completed" else "stopped")

    def _on_failed(self, message: str) -> None:
        self._error(f"The method failed: {message}")
        self._update_buttons()
        self.finished.emit("failed")

    # ------------------------------------------------------------------ export
    def export_png(self, path: str) -> bool:
        """The view as drawn as a PNG; False (and a message) when it cannot be written."""
        return self._export("png", path)

    def export_npy(self, path: str) -> bool:
        """The heatmap's numbers ``(H, W)`` as ``.npy``; False (and a message) otherwise."""
        return self._export("npy", path)

    def _export(self, fmt: str, path: str) -> bool:
        ok, text = self.view.export(fmt, path)
        self._set_status(text, error=not ok)
        return ok

    # ------------------------------------------------------------------ state
    def _update_buttons(self) -> None:
        running = self.worker.is_running()
        m = self.method_key()
        self.run_button.setEnabled(not running and self.doc.view is not None)
        self.cancel_button.setEnabled(running)
        self.npy_button.setEnabled(self.result is not None and not running)
        self.png_button.setEnabled(not running)
        self.opacity.setEnabled(self.result is not None)
        for widget, shown in (
            (self.layer, m in CAM_METHODS),
            (self.mode, m in (SALIENCY, SMOOTHGRAD)),
            (self.samples, m == SMOOTHGRAD),
        ):
            self.form.setRowVisible(widget, shown)

    def _error(self, text: str) -> bool:
        self._set_status(text, error=True)
        return False

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(ERROR_STYLE if error else "")


__all__ = ["ModelInsightPanel", "picture_chw"]
