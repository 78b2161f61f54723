"""The Training tab's right side: progress line, status, live curves, and the result tabs
(learned filters, confusion matrix, "Try an image", "Insight").

Widgets only: it draws what a run's events and the session's trained model say. Batch
records can arrive hundreds of times a second, so the tab calls :meth:`TrainingResults.flush`
from a timer (~7 Hz) to redraw the batch curve and the progress line, not per record.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.engine.history import TrainingHistory
from cnn_explorer.engine.training import Progress
from cnn_explorer.training.events import TrainingEvent, conv_filters
from cnn_explorer.training.model import TrainedModel
from cnn_explorer.training.networks import as_chain
from cnn_explorer.training.session import Run
from cnn_explorer.ui.training.confusion_matrix import ConfusionMatrixView
from cnn_explorer.ui.training.controls import ERROR_STYLE
from cnn_explorer.ui.training.curves import TrainingCurves
from cnn_explorer.ui.training.filter_grid import FilterGrid
from cnn_explorer.ui.training.insight_panel import InsightPanel
from cnn_explorer.ui.training.prediction_panel import PredictionPanel


class TrainingResults(QWidget):
    """Progress bar and line, status sentence, curves, filters, confusion, prediction,
    insight (each result tab gets the same network copy and validation images)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("%p%")
        self.progress_label = QLabel("Not trained yet.")
        self.status = QLabel("Choose a dataset and press Start.")
        self.status.setWordWrap(True)
        self.curves = TrainingCurves()
        self.filters = FilterGrid()
        self.confusion = ConfusionMatrixView()
        self.prediction = PredictionPanel()
        self.insight = InsightPanel()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.filters, "Learned filters")
        self.tabs.addTab(self.confusion, "Confusion matrix")
        self.tabs.addTab(self.prediction, "Try an image")
        self.tabs.addTab(self.insight, "Insight")
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.curves)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.progress_label, 2)
        col.addLayout(bar)
        col.addWidget(self.status)
        col.addWidget(split, 1)
        self.filters.filter_clicked.connect(self._show_filter_maps)

    def _show_filter_maps(self, conv: int, channel: int) -> None:
        """A learned filter was clicked: its maps for the current image, in "Try an image"."""
        self.prediction.select_filter(conv, channel)
        self.tabs.setCurrentWidget(self.prediction)

    def set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(ERROR_STYLE if error else "")

    def reset(self, run: Run) -> None:
        """A run starts: its (empty) curves and initial filters, an empty matrix, its
        validation images in "Try an image" (no network there until the first epoch ends)."""
        self.curves.show_history(run.history)
        self.confusion.clear()
        self.filters.clear()
        self._show_snapshots(run.history)
        for panel in (self.prediction, self.insight):
            panel.set_network(None, run.class_names)
        self.prediction.set_images(run.split.x_val, run.split.y_val)
        self.insight.set_images(run.split.x_val, run.split.y_val, run.split.x_train)
        self.progress.setValue(0)
        self.progress_label.setText("Training starts…")

    def add_event(self, event: TrainingEvent, model: TrainedModel | None) -> None:
        """The session recorded ``event`` into the run's history (which the curves draw):
        at epoch ends (or when a run ends early) the new filters and matrix, and ``model``
        into "Try an image"."""
        if event.record.epoch_end:
            self.curves.epoch_added()
        if event.extras is None or model is None or model.history is None:
            return
        self._show_snapshots(model.history)
        if model.history.confusion is not None:
            self.confusion.set_matrix(model.history.confusion, model.class_names)
        self.prediction.set_network(model.network, model.class_names)
        self._explain(model)

    def _explain(self, model: TrainedModel) -> None:
        """Give the Insight tab the model when it is a chain of layers (its methods walk
        one); a graph with branches is said to be out of its reach."""
        chain = as_chain(model.network)
        why = "" if chain is not None else GRAPH_INSIGHT
        self.insight.set_network(chain, model.class_names, why)

    def _show_snapshots(self, history: TrainingHistory) -> None:
        """Give the filter grid the snapshots of ``history`` it does not have yet."""
        for caption, layers in history.snapshots[self.filters.snapshot_count :]:
            self.filters.add_snapshot(caption, layers)

    def show_model(self, model: TrainedModel, clear_run: bool) -> None:
        """A network from a file: its filters and "Try an image"; ``clear_run`` also empties
        the curves, matrix and validation images of an earlier run (a project opened). A
        project that kept how the network was trained shows that history instead: curves,
        every epoch's filters, the confusion matrix and the trained state."""
        if clear_run:
            self.curves.clear()
            self.confusion.clear()
            for panel in (self.prediction, self.insight):
                panel.set_images(np.zeros((0, 1, 1, 1), np.float32), np.zeros(0, np.int64))
        self.filters.clear()
        self.prediction.set_network(model.network, model.class_names)
        self._explain(model)
        history = model.history
        if history is not None and history.snapshots:
            self._show_snapshots(history)
        else:  # weights alone (or a history too long to keep its filters): the final ones
            self.filters.add_snapshot(f"loaded from {model.origin}", conv_filters(model.network))
        if history is None:
            self.progress.setValue(0)
            self.progress_label.setText(f"Trained network loaded from {model.origin}.")
            return
        self.curves.show_history(history)
        if history.confusion is not None:
            self.confusion.set_matrix(history.confusion, model.class_names)
        self.progress.setValue(1000)
        self.progress_label.setText(trained_summary(history, model.origin))

    def flush(self, rec: Progress | None, running: bool) -> None:
        """Redraw the batch curve and the progress line for the last record."""
        self.curves.flush()
        if rec is None:
            return
        frac = rec.fraction
        self.progress.setValue(round(1000 * frac))
        left = rec.elapsed / frac * (1 - frac) if frac > 0 else float("nan")
        if running and np.isfinite(left):
            left_text = f"~{left:.0f} s left"
        else:
            left_text = "finished" if frac >= 1 else ""
        self.progress_label.setText(
            f"epoch {rec.epoch}/{rec.epochs} · batch {rec.batch}/{rec.batches_per_epoch} · "
            f"loss {rec.loss:.4f} · {left_text}"
        )


GRAPH_INSIGHT = (
    "Saliency, Grad-CAM and feature visualisation work on chains of layers; this network "
    "has branches (a graph), so they are not available for it."
)


def trained_summary(history: TrainingHistory, origin: str) -> str:
    """One line for a restored run: "Trained 12 epochs · loss 0.0312 · validation 97.5%
    (from p.cnnx)"."""
    row = history.last_epoch
    if row is None:
        return f"Trained less than one epoch (from {origin})."
    epoch, loss, _, _, val = row
    parts = [f"Trained {epoch} epoch{'s' * (epoch != 1)}"]
    if np.isfinite(loss):
        parts.append(f"loss {loss:.4f}")
    if np.isfinite(val):
        parts.append(f"validation accuracy {val:.1%}")
    return " · ".join(parts) + f" (from {origin})."
