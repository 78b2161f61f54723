"""The Insight tab of the training results: what the trained network looks for.

Pick a method (saliency, SmoothGrad, Grad-CAM, Grad-CAM++, activation maximisation, top
patches per filter, dead units), a layer, a class or filter, press Run. The work runs on a
:class:`~cnn_explorer.training.worker.TrainingWorker` thread (the same pump as training:
progress records, a stop flag polled between steps) on a *copy* of the network, so the
window never waits and a training run may replace the network meanwhile. Closing the
window stops it (the tab's shutdown calls :meth:`InsightPanel.shutdown`).

Like "Try an image", the panel is given the network copy taken at an epoch's end and the
validation images, and also the training images: top patches and dead units can scan every
loaded image (joined on the worker thread, validation images first so their numbers stay);
the computing is :func:`cnn_explorer.insight.jobs.job`'s.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.explorer.document import ASYNC_COST
from cnn_explorer.insight.jobs import MAXIMIZE, METHODS, NEEDS_DATASET, InsightResult, job
from cnn_explorer.insight.maximize import default_range
from cnn_explorer.insight.targets import InsightError, Progress
from cnn_explorer.training.prediction import forward_cost, predict
from cnn_explorer.training.worker import TrainingWorker
from cnn_explorer.ui.common.insight_actions import InsightActions
from cnn_explorer.ui.common.insight_view import InsightView
from cnn_explorer.ui.training.controls import ERROR_STYLE
from cnn_explorer.ui.training.insight_controls import ALL_IMAGES, PREDICTED, InsightControls

HINTS = {
    "heatmap": "Done: the opacity slider blends the heatmap with the image.",
    "image": "Done: “Open in explorer” makes this image the explorer's input.",
    "patches": "Done: the green box marks what the filter's strongest cell sees.",
    "bars": "Done: a red bar is a channel that never fires on these images.",
}
"""What the status line says when a result of each kind is shown (its title is above it)."""


class InsightPanel(QWidget):
    """Settings on the left, the result on the right. ``finished(reason)`` after each run:
    ``"completed"``, ``"stopped"`` (cancelled) or ``"failed"``.
    ``open_in_explorer_requested(image)`` sends a synthesised image to the explorer."""

    finished = Signal(str)
    open_in_explorer_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.network: Any = None
        self._why_not = ""  # why there is no network to explain although one is trained
        self.class_names: list[str] = []
        self.images = np.zeros((0, 1, 1, 1), np.float32)
        self.labels = np.zeros(0, np.int64)
        self.train_images = np.zeros((0, 1, 1, 1), np.float32)
        self.result: InsightResult | None = None
        self.worker = TrainingWorker(self)
        self.controls = InsightControls()
        self.view = InsightView()
        self._build()
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.controls.image_changed.connect(lambda _: self._show_input())
        self.view.clicked.connect(self._pick_cell)
        self.controls.changed.connect(self._update_buttons)
        self._update_buttons()

    def _build(self) -> None:
        acts = InsightActions(
            self,
            self.view,
            "Train (or load) a network, then pick a method and press Run.",
            run=lambda: self.run(),
            cancel=self.cancel,
            export=self._export,
            file_stem=self.controls.method_key,
        )
        self.run_button, self.cancel_button = acts.run_button, acts.cancel_button
        self.progress, self.status, self.opacity = acts.progress, acts.status, acts.opacity
        self.png_button, self.npy_button = acts.png_button, acts.npy_button
        self.to_explorer = QPushButton("Open in explorer")
        self.to_explorer.setToolTip("Use the synthesised image as the explorer's input")
        self.to_explorer.clicked.connect(self._request_explorer)

        scroll = QScrollArea()
        scroll.setWidget(self.controls)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.controls.sizeHint().width() + 20)
        left = QVBoxLayout()
        left.addWidget(scroll, 1)
        left.addLayout(acts.run_bar())

        right = QVBoxLayout()
        right.addWidget(self.status)
        right.addWidget(self.view, 1)
        right.addLayout(acts.export_bar(self.to_explorer))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(left)
        layout.addLayout(right, 1)

    # -- inputs ---------------------------------------------------------------------------
    def set_network(self, network: Any, class_names: list[str], why_not: str = "") -> None:
        """The trained network (a copy the GUI thread owns) and its class names; None with
        ``why_not`` when a trained network cannot be explained here (shown and said)."""
        self.network = network
        self._why_not = why_not if network is None else ""
        if self._why_not:
            self._set_status(self._why_not)
        self.class_names = list(class_names)
        shapes = None
        if network is not None and len(self.images):
            try:
                shapes = network.output_shapes(self.images.shape[1:])
            except ShapeError:
                shapes = None
        if shapes is None:  # no images it can read: no layers to offer (their sizes unknown)
            self.controls.set_network([], [], self.class_names)
        else:
            self.controls.set_network(list(network.layers), shapes, self.class_names)
        self._update_buttons()
        if self.result is None and not self.worker.is_running():
            self._show_input()

    def set_images(
        self, images: np.ndarray, labels: np.ndarray, train_images: np.ndarray | None = None
    ) -> None:
        """The validation images ``(N, C, H, W)`` to explain and scan, and the rest of the
        loaded dataset ``train_images (M, C, H, W)`` (none: only the validation images are
        loaded) for scans over every loaded image."""
        self.images, self.labels = images, labels
        if train_images is None or not len(train_images):
            train_images = np.zeros((0, *images.shape[1:]), np.float32)
        self.train_images = train_images
        self.controls.set_image_count(len(images), len(images) + len(train_images))
        self.set_network(self.network, self.class_names)

    def current_image(self) -> np.ndarray | None:
        i = self.controls.image.value()
        return np.asarray(self.images[i], np.float32) if 0 <= i < len(self.images) else None

    # -- running ----------------------------------------------------------------------------
    def run(self) -> bool:
        """Start the chosen method on a copy of the network (made on the worker thread);
        False (and a message) when it cannot start."""
        if self.worker.is_running():
            self._set_status("A method is already running: cancel it first.", error=True)
            return False
        if self.network is None:
            self._set_status(self._why_not or "Train (or load) a network first.", error=True)
            return False
        image = self.current_image()
        parts = self._scanned()
        images = parts[0] if parts else None  # the check needs their shape only
        # "the predicted class" is found on the worker thread (a big network's forward
        # would hold the window); class 0 stands in for the check below
        by_prediction = self.controls.target.currentData() == PREDICTED and image is not None
        request = self.controls.request(0, default_range(images))
        source = self.network
        try:
            job(request, source, image, images)  # checks now (reads shapes only): not run
        except (InsightError, ShapeError) as exc:
            self._set_status(f"Cannot run {METHODS[request.method]}: {exc}", error=True)
            return False
        self.result = None
        self.progress.setValue(0)
        self._set_status(f"{METHODS[request.method]}: running…")
        names = list(self.class_names)

        def work(stop: Any) -> Any:
            """On the worker thread: copying a big network (~50 ms for a ResNet-18's
            weights, ~0.4 s for a VGG-11's) and joining many images would hold the window.
            ``source`` is never changed in place (a newer network replaces it), so its
            weights can be read here while the GUI thread runs forwards on it."""
            network = source.copy()  # the job changes the network it is given
            scan = np.concatenate(parts) if len(parts) > 1 else images
            chosen = request
            if by_prediction:
                chosen = replace(request, klass=predict(network, image).best)
            return job(chosen, network, image, scan, stop, names)

        started = self.worker.start(work)
        self._update_buttons()
        return started

    def _scanned(self) -> list[np.ndarray]:
        """The arrays a dataset scan reads: the validation images, and the training images
        too when "all loaded images" is chosen (empty parts left out)."""
        wanted = [self.images]
        if self.controls.method_key() in NEEDS_DATASET and self.controls.scan_key() == ALL_IMAGES:
            wanted.append(self.train_images)
        return [a for a in wanted if len(a)]

    def cancel(self) -> None:
        self.worker.stop()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop a running method and wait for its thread (window close, app quit)."""
        return self.worker.shutdown(timeout_ms)

    def _on_progress(self, record: Progress) -> None:
        self.progress.setValue(round(1000 * record.fraction))
        if record.result is not None:
            self.result = record.result
            self.view.show_result(record.result)
        elif record.preview is not None:
            self.view.show_preview(record.preview, record.text)
        elif record.text:
            self._set_status(record.text)

    def _on_finished(self, reason: str) -> None:
        if reason == "completed" and self.result is not None:
            self._set_status(HINTS[self.result.kind])
        else:
            self._set_status("Cancelled: nothing was changed.")
        self._update_buttons()
        self.finished.emit("completed" if reason == "completed" else "stopped")

    def _on_failed(self, message: str) -> None:
        self._set_status(f"The method failed: {message}", error=True)
        self._update_buttons()
        self.finished.emit("failed")

    # -- output -----------------------------------------------------------------------------
    def _show_input(self) -> None:
        """Before a run (or after picking another image): the image itself."""
        image = self.current_image()
        if image is None or self.worker.is_running():
            return
        self.result = None
        caption = f"validation image #{self.controls.image.value()}"
        if (  # a big network's forward would hold the window: "Try an image" says it
            self.network is not None
            and self.class_names
            and forward_cost(self.network, image.shape) <= ASYNC_COST
        ):
            caption = predict(self.network, image).text(self.class_names, caption)
        self.view.show_preview(image, caption.replace("<b>", "").replace("</b>", ""))
        self._update_buttons()

    def export_png(self, path: str) -> bool:
        """The view as drawn as a PNG; False (and a message) when it cannot be written."""
        return self._export("png", path)

    def export_npy(self, path: str) -> bool:
        """The result's numbers as ``.npy``; False (and a message) when it cannot."""
        return self._export("npy", path)

    def _export(self, fmt: str, path: str) -> bool:
        ok, text = self.view.export(fmt, path)
        self._set_status(text, error=not ok)
        return ok

    def _pick_cell(self, row: float, col: float) -> None:
        """A click on the image or heatmap chooses the cell under it (of the chosen layer's
        map, the filter in the Filter box) as what to explain."""
        cell = self.controls.choose_cell_at(row, col)
        if cell is None:
            self._set_status(
                "Clicking the image picks a cell for saliency, SmoothGrad or activation "
                "maximisation (Grad-CAM explains a class, top patches a whole filter)."
            )
            return
        layer = self.controls.layer.currentText().split(":")[0]
        self._set_status(
            f"Cell (row {cell[0]}, column {cell[1]}) of layer {layer}, filter "
            f"{self.controls.filter.value()} chosen: press Run."
        )

    def _request_explorer(self) -> None:
        if self.result is not None and self.result.kind == "image":
            assert self.result.image is not None
            self.open_in_explorer_requested.emit(self.result.image.copy())

    def _update_buttons(self) -> None:
        running = self.worker.is_running()
        self.run_button.setEnabled(not running and self.network is not None)
        self.cancel_button.setEnabled(running)
        have = self.result is not None and not running
        self.npy_button.setEnabled(have)
        self.png_button.setEnabled(not running)
        self.opacity.setEnabled(self.result is not None and self.result.kind == "heatmap")
        self.to_explorer.setVisible(self.controls.method_key() == MAXIMIZE)
        self.to_explorer.setEnabled(
            have and self.result is not None and self.result.kind == "image"
        )

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(ERROR_STYLE if error else "")


__all__ = ["InsightPanel"]
