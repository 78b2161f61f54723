"""The Training tab: train a small CNN on the built-in shapes or the user's own image folder,
watch it learn, and open up the filters it learned.

Widgets only. What training *is* (dataset in use, networks, runs, the trained model and its
class names) lives in the Qt-free :class:`~cnn_explorer.training.session.TrainingSession`,
shared with the ``train`` command. Layout: :class:`~.controls.TrainingControls` on the left,
results on the right (progress line, live curves, and tabs for filters / confusion matrix /
trying an image). All computation runs off the GUI thread:

* :class:`~.datasets.DatasetLoading` loads datasets (progress, cancel) into the session;
* :class:`~cnn_explorer.training.worker.TrainingWorker` pumps a run's event generator. At
  each epoch end the *worker thread* copies what the GUI will show (a copy of the network,
  its conv weights, the validation confusion matrix): the GUI never reads a network that
  another thread is updating (layers keep their last forward's context).

Batch records can arrive hundreds of times a second; curves and the progress line are
redrawn by a timer (~7 Hz), not per record.

Wiring (main window): ``tab = TrainingTab()``; ``tab.follow_explorer(doc, layers)`` where
``layers()`` returns engine copies of the explorer's valid layers; connect
``tab.open_in_explorer(layers, image)``; a model imported from a file is handed over with
``tab.open_in_training(imported)`` (fine-tune it on an image folder). The tab rebuilds its
architecture preview only when the explorer's stack changes structure (not on a weight
edit) and only while it is visible (else when next shown). It stops its threads itself
when its window closes (and on ``aboutToQuit``); ``tab.shutdown()`` does it explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSize, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QWidget

from cnn_explorer.explorer.project import TrainedState
from cnn_explorer.interchange.model import ImportedModel, Preprocessing
from cnn_explorer.training.data import Split
from cnn_explorer.training.events import TrainingEvent
from cnn_explorer.training.networks import ARCH_EXPLORER, ARCH_LOADED, as_chain
from cnn_explorer.training.session import Prepare, TrainingSession
from cnn_explorer.training.worker import TrainingWorker
from cnn_explorer.ui.common.messages import Reporter
from cnn_explorer.ui.network_export import ExportSource
from cnn_explorer.ui.training.controls import TrainingControls, set_item_enabled
from cnn_explorer.ui.training.datasets import DatasetLoading
from cnn_explorer.ui.training.explorer_link import ExplorerDocument, ExplorerLink, ExplorerSource
from cnn_explorer.ui.training.results import TrainingResults


def preprocessor(record: Any) -> Prepare:
    """The session's preprocessing: the interchange's one implementation of it."""
    return Preprocessing.from_dict(record).apply_batch


class TrainingTab(QWidget):
    """Train, watch, inspect. ``open_in_explorer(network_layers, image)`` hands a copy of the
    trained layers and a ``(C, H, W)`` image to the explorer."""

    open_in_explorer = Signal(object, object)
    status_changed = Signal(str)

    def __init__(
        self, parent: QWidget | None = None, explorer_layers: Sequence[Any] | None = None
    ) -> None:
        super().__init__(parent)
        self.session = TrainingSession(preprocessor)
        self.reporter = Reporter(self)  # tests swap in a RecordingReporter
        self.worker = TrainingWorker(self)
        self.controls = TrainingControls()
        self.datasets = DatasetLoading(self.controls, self.session)
        self.loader = self.datasets.loader
        self.explorer = ExplorerLink(self, self._explorer_changed)
        self._start_after_load: dict[str, Any] | None = None
        self._watched: QObject | None = None
        self._build()
        self._connect()
        set_item_enabled(self.controls.arch, ARCH_LOADED, False)
        self.set_explorer_layers(explorer_layers)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self._update_buttons()

    # -- the session, read-only ------------------------------------------------------------
    @property
    def data(self) -> Any:
        """The dataset in use (LabeledImages) or None."""
        return self.session.data

    @property
    def trained(self) -> Any:
        """The trained network (the object "Try an image" uses) or None."""
        return self.session.trained.network if self.session.trained is not None else None

    @property
    def class_names(self) -> list[str]:
        """Names of the trained network's outputs (empty before one exists)."""
        return list(self.session.trained.class_names) if self.session.trained else []

    @property
    def split(self) -> Split | None:
        """The current or last run's train/validation split."""
        return self.session.run.split if self.session.run is not None else None

    # -- construction ----------------------------------------------------------------------
    def _build(self) -> None:
        self.results = TrainingResults()
        r = self.results  # the views tests and the main window reach through the tab
        self.progress, self.status, self.curves = r.progress, r.status, r.curves
        self.filters, self.confusion, self.prediction = r.filters, r.confusion, r.prediction
        self.insight = r.insight
        self.prediction.set_file_loader(self.session.read_image)
        layout = QHBoxLayout(self)
        layout.addWidget(self.controls)
        layout.addWidget(self.results, 1)
        self._timer = QTimer(self)
        self._timer.setInterval(150)
        self._timer.timeout.connect(self._flush)

    def _connect(self) -> None:
        c = self.controls
        c.load_button.clicked.connect(lambda: self.load_dataset())
        c.arch.currentIndexChanged.connect(lambda _: self.refresh_preview())
        c.lr.valueChanged.connect(self._lr_changed)
        c.start_button.clicked.connect(lambda: self.start())
        c.pause_button.clicked.connect(self._toggle_pause)
        c.step_button.clicked.connect(self.step)
        c.stop_button.clicked.connect(self.stop)
        c.save_button.clicked.connect(self._ask_save)
        c.load_weights_button.clicked.connect(self._ask_load)
        self.datasets.loaded.connect(self._loaded)
        self.datasets.ended.connect(self._forget_pending_start)
        self.datasets.message.connect(self._set_status)
        self.worker.progress.connect(self._on_event)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.refused.connect(lambda msg: self._set_status(msg, error=True))
        self.worker.state_changed.connect(lambda _: self._update_buttons())
        self.prediction.open_in_explorer_requested.connect(self._emit_open_in_explorer)
        self.insight.open_in_explorer_requested.connect(self._emit_open_in_explorer)

    # -- the explorer's stack --------------------------------------------------------------
    def set_explorer_layers(self, layers: Sequence[Any] | None) -> None:
        """Use a fixed stack of engine layers as "the explorer's conv stack" (copied when
        a network is built, never modified)."""
        fixed = list(layers) if layers else None
        self.explorer.use(lambda: fixed)

    def follow_explorer(self, doc: ExplorerDocument, layers: ExplorerSource) -> None:
        """Follow the explorer's document: ``layers()`` returns engine copies of its valid
        layers, asked for only when the stack's structure changed (see
        :class:`~.explorer_link.ExplorerLink`) and when a run starts."""
        self.explorer.follow(doc, layers)

    def _explorer_changed(self) -> None:
        """The explorer's structure changed (or a fixed stack was set): new preview."""
        self.session.set_explorer_layers(self.explorer.layers())
        have = self.session.explorer_layers is not None
        set_item_enabled(self.controls.arch, ARCH_EXPLORER, have)
        self.refresh_preview()

    def refresh_preview(self) -> None:
        """Rebuild the architecture preview and the freeze list from the settings."""
        try:
            preview = self.session.preview(self.controls.run_settings())
        except ValueError as exc:  # ShapeError included
            self.controls.show_preview(str(exc))
        else:
            self.controls.show_preview(preview)

    # -- public API ------------------------------------------------------------------------
    def set_folder(self, path: str) -> None:
        """Use an image folder as the dataset (as if chosen in the dialog)."""
        self.controls.set_folder(path)

    def load_dataset(self) -> bool:
        """Start loading the chosen dataset in a thread (False if busy or no folder)."""
        return self.datasets.load()

    def start(self, paused: bool = False) -> bool:
        """Build the chosen network and train it in the worker thread.

        Refused (False, message) while a run is alive. Loads the dataset first when needed.
        """
        if self.worker.is_running():
            self._set_status(
                "Training is already running: stop it before starting again.", error=True
            )
            return False
        if self.session.needs_load(self.controls.dataset_choice()):
            self._start_after_load = {"paused": paused}
            return self.load_dataset()
        settings = self.controls.run_settings()
        question = self.session.head_mismatch(settings)
        if question is not None:
            if not self.reporter.ask_yes_no("A new classifier layer?", question):
                self._set_status(
                    "Not started: the model's classes do not match this dataset's.", error=True
                )
                return False
            settings = replace(settings, new_head=True)
        if settings.arch == ARCH_EXPLORER:  # train the explorer's weights as they are now
            self.session.set_explorer_layers(self.explorer.layers())
        try:
            run = self.session.start_run(settings)
        except ValueError as exc:  # ShapeError included
            self._set_status(f"Cannot build this network for the data: {exc}", error=True)
            return False
        self.results.reset(run)
        started = self.worker.start(
            lambda stop: run.events(stop), optimizer=run.optimizer, paused=paused
        )
        if started:
            self._timer.start()
            self._set_status(run.start_message())
        return started

    def step(self) -> None:
        """One batch, then pause (starts a paused run when idle)."""
        if not self.worker.is_running() and not self.start(paused=True):
            return
        self.worker.pause()
        self.worker.step()

    def pause(self) -> None:
        self.worker.pause()

    def resume(self) -> None:
        self.worker.resume()

    def stop(self) -> None:
        """Stop at the next batch boundary; the network keeps its weights so far."""
        self._start_after_load = None
        if self.loader.is_running():
            self.loader.cancel()
        self.worker.stop()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop every thread and wait for them (window close, app quit)."""
        self._timer.stop()
        ok = self.worker.shutdown(timeout_ms)
        ok = self.insight.shutdown(timeout_ms) and ok
        ok = self.prediction.shutdown(timeout_ms) and ok
        return self.loader.shutdown(timeout_ms) and ok

    def save_weights(self, path: str) -> None:
        """Save the trained network (+ class names, input shape) as ``.npz`` (no pickle)."""
        self.session.save_weights(path)

    def load_weights(self, path: str) -> None:
        """Load a network saved by :meth:`save_weights` (or the train command's --save)."""
        self._show_adopted(self.session.load_weights(path))

    def open_in_training(self, imported: ImportedModel) -> bool:
        """Fine-tune a model imported from a file: it becomes the trained network and the
        "Loaded weights" architecture, the dataset controls switch to its input size (RGB:
        its preprocessing makes its colour), and every layer but the last is ticked to
        freeze; a folder with another class count is offered a new classifier layer on
        Start. False (and a message) while a run is alive or for a non-classifier."""
        if self.worker.is_running():
            self._set_status("Training is running: stop it before opening another model.", True)
            return False
        prep = imported.preprocessing
        try:
            message = self.session.adopt_imported(
                imported.graph, prep.to_dict(), imported.source.name
            )
        except ValueError as exc:  # ShapeError included
            self._set_status(f"Cannot fine-tune {imported.source.name}: {exc}", error=True)
            return False
        _, h, w = prep.input_shape
        if h == w:
            self.controls.image_size.setValue(h)
        self.controls.color.setCurrentIndex(self.controls.color.findData(3))
        self._show_adopted(message, clear_run=True)
        return True

    def export_source(self) -> ExportSource | None:
        """A copy of the trained network, its input shape and preprocessing record, for
        File ▸ Export network; None before one exists (ValueError: input size unknown)."""
        model = self.session.trained
        if model is None:
            return None
        record = model.preprocessing_record()
        assert model.input_shape is not None  # preprocessing_record checked it
        return ExportSource(model.network.copy(), model.input_shape, record)

    def trained_state(self) -> TrainedState | None:
        """The trained network (a copy) with *its own* class names and input shape, for a
        project file; None before anything was trained or loaded."""
        model = self.session.trained
        if model is None:
            return None
        return TrainedState(
            model.network.copy(),
            list(model.class_names),
            model.input_shape,
            dict(model.extra),
            model.history,
        )

    def restore_trained_state(self, state: TrainedState, origin: str = "the project") -> bool:
        """Show ``state`` (from a project file) as the trained network, as if its weights
        had been loaded: filters, "Try an image", and "Loaded weights" to train further; the
        dataset it was trained on is pre-selected; the history the project kept (curves,
        epoch snapshots, confusion matrix) is shown as it was. Refused (False, message)
        while a run is alive: the run would overwrite it."""
        if self.worker.is_running():
            self._set_status(
                f"Training is running: the trained network of {origin} was not loaded "
                "(stop training and open it again).",
                error=True,
            )
            return False
        extra: dict[str, Any] = {**state.extra, "class_names": list(state.class_names)}
        if state.input_shape is not None:
            extra["input_shape"] = list(state.input_shape)
        try:
            message = self.session.adopt(state.network.copy(), extra, origin, state.history)
        except ValueError as exc:
            self._set_status(f"Could not use the trained network of {origin}: {exc}", True)
            return False
        self._show_adopted(message, clear_run=True)
        model = self.session.trained
        assert model is not None
        if self.controls.select_dataset(model.source, model.input_shape):
            self._set_status(
                f"{message} The dataset it was trained on is selected: "
                "Load it to try its validation images."
            )
        return True

    def _show_adopted(self, message: str, clear_run: bool = False) -> None:
        """Show the session's newly adopted network: filters, "Try an image", architecture."""
        assert self.session.trained is not None
        self.results.show_model(self.session.trained, clear_run)
        set_item_enabled(self.controls.arch, ARCH_LOADED, True)
        self.controls.arch.setCurrentIndex(self.controls.arch.findData(ARCH_LOADED))
        self.refresh_preview()
        self._set_status(message)
        self._update_buttons()

    # -- dataset ---------------------------------------------------------------------------
    def _loaded(self) -> None:
        """The session uses a new dataset: preview for it, then start the run waiting for
        it, or offer its validation images to the trained network."""
        self.refresh_preview()
        pending, self._start_after_load = self._start_after_load, None
        if pending is not None:
            self.start(**pending)
            if pending.get("paused"):
                self.worker.step()
        elif self.session.trained is not None:
            self._offer_validation_images()

    def _forget_pending_start(self) -> None:
        self._start_after_load = None

    def _offer_validation_images(self) -> None:
        """Give "Try an image" the loaded dataset's validation images, split exactly as a
        training run would, when the trained network fits them; otherwise say why not."""
        c = self.controls
        try:
            split = self.session.validation_images(c.val_split.value(), c.seed.value())
        except ValueError as exc:
            self._set_status(str(exc))
            return
        self.prediction.set_images(split.x_val, split.y_val)
        self.insight.set_images(split.x_val, split.y_val, split.x_train)
        self._set_status(
            f"{len(split.y_val)} validation images of this dataset are ready in “Try an image”."
        )

    # -- training events (GUI thread) ------------------------------------------------------
    def _on_event(self, event: TrainingEvent) -> None:
        if self.session.observe(event):
            self._update_buttons()
        self.results.add_event(event, self.session.trained)
        if self.worker.state == TrainingWorker.PAUSED:
            self._flush()

    def _flush(self) -> None:
        """Timer tick: redraw the batch curve and the progress line."""
        run = self.session.run
        self.results.flush(run.last if run is not None else None, self.worker.is_running())

    def _on_finished(self, reason: str) -> None:
        self._timer.stop()
        self._flush()
        if self.session.run is not None:
            text, error = self.session.run.finish_message(reason)
            self._set_status(text, error=error)
        self._update_buttons()

    def _on_failed(self, message: str) -> None:
        self._timer.stop()
        self._set_status(f"Training failed: {message}", error=True)
        self._update_buttons()

    # -- buttons and small handlers --------------------------------------------------------
    def _toggle_pause(self) -> None:
        if self.worker.state == TrainingWorker.PAUSED:
            self.worker.resume()
        else:
            self.worker.pause()

    def _lr_changed(self, value: float) -> None:
        if self.worker.is_running():
            self.worker.set_lr(value)
            self._set_status(f"Learning rate set to {value:g} from the next batch.")

    def _update_buttons(self) -> None:
        state = self.worker.state
        self.controls.set_running(
            self.worker.is_running(),
            paused=state == TrainingWorker.PAUSED,
            stopping=state == TrainingWorker.STOPPING,
            idle=state == TrainingWorker.IDLE,
        )
        self.controls.save_button.setEnabled(self.session.trained is not None)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.results.set_status(text, error)
        self.status_changed.emit(text)

    def _emit_open_in_explorer(self, image: np.ndarray) -> None:
        if self.trained is None:
            return
        chain = as_chain(self.trained.copy())
        if chain is None:
            self._set_status(
                "This network has branches (a graph): the explorer shows chains of layers; "
                "open the model file in the Model tab to see its maps.",
                error=True,
            )
            return
        self.open_in_explorer.emit(list(chain.layers), image)

    def _ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save trained weights", "trained.npz", "Network (*.npz)"
        )
        if path:
            try:
                self.save_weights(path)
            except (OSError, ValueError) as exc:
                self._set_status(f"Could not save: {exc}", error=True)
            else:
                self._set_status(f"Saved {path}.")

    def _ask_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load trained weights", "", "Network (*.npz)")
        if path:
            try:
                self.load_weights(path)
            except (OSError, ValueError, KeyError) as exc:
                self._set_status(f"Could not load {os.path.basename(path)}: {exc}", error=True)

    # -- visibility and clean shutdown -----------------------------------------------------
    def showEvent(self, event: Any) -> None:
        """Bring a stale architecture preview up to date, and watch the top-level window so
        closing it stops training first."""
        self.explorer.shown()
        window = self.window()
        if window is not self._watched:
            if self._watched is not None:
                self._watched.removeEventFilter(self)
            window.installEventFilter(self)
            self._watched = window
        super().showEvent(event)
        self.updateGeometry()  # it asks for room again: see minimumSizeHint

    def hideEvent(self, event: Any) -> None:
        super().hideEvent(event)
        self.updateGeometry()

    def minimumSizeHint(self) -> QSize:
        """No minimum while hidden: the main window's tab widget takes its largest page's
        minimum, and on the Feature maps tab the explorer's docks sit beside it, so this
        tab's minimum would force the window wider than a 1280-px screen."""
        if self.isHidden():
            return QSize(0, 0)
        return super().minimumSizeHint()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self._watched and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False

    def closeEvent(self, event: Any) -> None:
        self.shutdown()
        super().closeEvent(event)


__all__ = ["TrainingTab"]
