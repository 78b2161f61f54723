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

from cnn_explorer.engine.training import Progress
from cnn_explorer.training.events import TrainingEvent, conv_filters
from cnn_explorer.training.model import TrainedModel
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

    def set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(ERROR_STYLE if error else "")

    def reset(self, run: Run) -> None:
        """A run starts: empty curves and matrix, its initial filters, its validation
        images in "Try an image" (no network there until the first epoch ends)."""
        self.curves.clear()
        self.confusion.clear()
        self.filters.clear()
        caption = "before training (random initial weights)"
        self.filters.add_snapshot(caption, conv_filters(run.network))
        for panel in (self.prediction, self.insight):
            panel.set_network(None, run.class_names)
            panel.set_images(run.split.x_val, run.split.y_val)
        self.progress.setValue(0)

    def add_event(self, event: TrainingEvent, model: TrainedModel | None) -> None:
        """One record into the curves; at epoch ends (or when a run ends early) the
        worker's copies into filters and matrix, and ``model`` into "Try an image"."""
        rec = event.record
        if rec.kind == "batch":
            self.curves.add_batch(rec.epoch - 1 + rec.batch / rec.batches_per_epoch, rec.loss)
        if rec.epoch_end:
            self.curves.add_epoch(
                rec.epoch, rec.train_loss, rec.train_accuracy, rec.val_loss, rec.val_accuracy
            )
        extras = event.extras
        if extras is None or model is None:
            return
        if rec.epoch_end:
            caption = f"after epoch {rec.epoch}"
        else:
            caption = f"epoch {rec.epoch}, batch {rec.batch} (run ended)"
        self.filters.add_snapshot(caption, extras.filters)
        if extras.confusion is not None:
            self.confusion.set_matrix(extras.confusion, model.class_names)
        self.prediction.set_network(model.network, model.class_names)
        self.insight.set_network(model.network, model.class_names)

    def show_model(self, model: TrainedModel, clear_run: bool) -> None:
        """A network from a file: its filters and "Try an image"; ``clear_run`` also empties
        the curves, matrix and validation images of an earlier run (a project opened)."""
        if clear_run:
            self.curves.clear()
            self.confusion.clear()
            for panel in (self.prediction, self.insight):
                panel.set_images(np.zeros((0, 1, 1, 1), np.float32), np.zeros(0, np.int64))
        self.filters.clear()
        self.filters.add_snapshot(f"loaded from {model.origin}", conv_filters(model.network))
        self.prediction.set_network(model.network, model.class_names)
        self.insight.set_network(model.network, model.class_names)

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
