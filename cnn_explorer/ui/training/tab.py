"""The Training tab: train a small CNN on the built-in shapes or the user's own image folder,
watch it learn, and open up the filters it learned.

Layout: settings on the left (dataset, network, optimizer, run buttons, save/load), results on
the right (progress line, live curves, and tabs for filters / confusion matrix / trying an
image). All computation runs off the GUI thread:

* :class:`~cnn_explorer.training.worker.DatasetLoader` decodes folders (progress, cancel);
* :class:`~cnn_explorer.training.worker.TrainingWorker` pumps the engine's ``train``
  generator. The generator is wrapped (:mod:`cnn_explorer.training.events`) so that at each
  epoch end the *worker thread* copies what the GUI will show (a copy of the network, its
  conv weights, the validation confusion matrix): the GUI never reads a network that another
  thread is updating (layers keep their last forward's context, so sharing one would corrupt
  backward).

Batch records can arrive hundreds of times a second; curves and the progress line are
redrawn by a timer (~7 Hz), not per record.

Wiring (main window): ``tab = TrainingTab(explorer_layers=None)``; connect
``tab.open_in_explorer(layers, image)``; call ``tab.set_explorer_layers(layers)`` when the
explorer's stack changes; the tab stops its threads itself when its window closes (and on
``aboutToQuit``), ``tab.shutdown()`` does it explicitly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer.project import TrainedState
from cnn_explorer.training.cli import (
    DEFAULT_BATCH,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_VAL_SPLIT,
    Split,
    augmenter,
    make_optimizer,
)
from cnn_explorer.training.cli import split as make_split
from cnn_explorer.training.events import (
    EpochExtras,
    TrainingEvent,
    conv_filters,
    conv_stack,
    match_channels,
    training_events,
)
from cnn_explorer.training.worker import DatasetLoader, TrainingWorker
from cnn_explorer.ui.training.confusion_matrix import ConfusionMatrixView
from cnn_explorer.ui.training.curves import TrainingCurves
from cnn_explorer.ui.training.filter_grid import FilterGrid
from cnn_explorer.ui.training.prediction_panel import PredictionPanel

BUILTIN = "builtin:shapes"
ARCH_DEFAULT, ARCH_EXPLORER, ARCH_LOADED = "default", "explorer", "loaded"
ERROR_STYLE = "color: #b00020;"
_STATE_KEYS = ("class_names", "input_shape")


class LrSpinBox(QDoubleSpinBox):
    """Learning rate shown as ``0.01`` or ``1e+06`` (``%g``), from 1e-7 to 1e30: a learner
    may type an absurd rate on purpose to watch the loss explode. Arrow keys multiply or
    divide by 2 (a rate lives on a log scale)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(10)
        self.setRange(1e-7, 1e30)

    def textFromValue(self, value: float) -> str:
        return f"{value:.4g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> Any:
        from PySide6.QtGui import QValidator

        try:
            ok = self.minimum() <= float(text) <= self.maximum()
        except ValueError:
            ok = False
        state = QValidator.State.Acceptable if ok else QValidator.State.Intermediate
        return state, text, pos

    def stepBy(self, steps: int) -> None:
        self.setValue(self.value() * 2.0**steps)


@dataclass
class _Run:
    """What the GUI knows about the current/last run."""

    epochs: int = 0
    last: Any = None
    started: float = field(default_factory=time.monotonic)


# --------------------------------------------------------------------------------------
# The widget
# --------------------------------------------------------------------------------------


class TrainingTab(QWidget):
    """Train, watch, inspect. ``open_in_explorer(network_layers, image)`` hands a copy of the
    trained layers and a ``(C, H, W)`` image to the explorer."""

    open_in_explorer = Signal(object, object)
    status_changed = Signal(str)

    def __init__(
        self, parent: QWidget | None = None, explorer_layers: Sequence[Any] | None = None
    ) -> None:
        super().__init__(parent)
        self.worker = TrainingWorker(self)
        self.loader = DatasetLoader(self)
        self.data: Any = None
        self.summary: Any = None
        self.split: Split | None = None
        self.network: Any = None
        self.trained: Any = None
        self.class_names: list[str] = []
        self.optimizer: Any = None
        self.folder = ""
        self._data_key: tuple[Any, ...] | None = None
        self._explorer_layers: list[Any] | None = None
        self._loaded_network: Any = None
        self._loaded_extra: dict[str, Any] = {}
        self._start_after_load: dict[str, Any] | None = None
        self._run = _Run()
        self._watched: QObject | None = None
        self._build()
        self._connect()
        self.set_explorer_layers(explorer_layers)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self._update_buttons()

    # ----------------------------------------------------------------------------------
    # construction
    # ----------------------------------------------------------------------------------
    def _build(self) -> None:
        controls = QWidget()
        col = QVBoxLayout(controls)
        col.addWidget(self._dataset_box())
        col.addWidget(self._network_box())
        col.addWidget(self._optimizer_box())
        col.addWidget(self._run_box())
        col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(controls)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(330)
        scroll.setMaximumWidth(400)

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
        self.prediction.set_file_loader(self._load_single_image)
        self.results = QTabWidget()
        self.results.addTab(self.filters, "Learned filters")
        self.results.addTab(self.confusion, "Confusion matrix")
        self.results.addTab(self.prediction, "Try an image")
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.curves)
        split.addWidget(self.results)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.progress_label, 2)
        rcol.addLayout(bar)
        rcol.addWidget(self.status)
        rcol.addWidget(split, 1)
        layout = QHBoxLayout(self)
        layout.addWidget(scroll)
        layout.addWidget(right, 1)
        self._timer = QTimer(self)
        self._timer.setInterval(150)
        self._timer.timeout.connect(self._flush)

    def _dataset_box(self) -> QGroupBox:
        box = QGroupBox("1. Dataset")
        form = QFormLayout(box)
        self.source = _combo(("Built-in shapes (6 classes)", BUILTIN), ("Image folder…", "folder"))
        self.source.setToolTip("An image folder holds one subfolder of images per class")
        self.choose_folder = QPushButton("Choose folder…")
        self.folder_label = QLabel("")
        self.folder_label.setWordWrap(True)
        self.image_size = QSpinBox()
        self.image_size.setRange(0, 256)
        self.image_size.setSpecialValueText("auto")
        self.image_size.setSuffix(" px")
        self.image_size.setToolTip(
            "Side of the square training images; auto = native size "
            "when all images share one (else 28)"
        )
        self.color = _combo(("auto", None), ("grayscale", 1), ("RGB", 3))
        self.val_split = QDoubleSpinBox()
        self.val_split.setRange(0.05, 0.5)
        self.val_split.setSingleStep(0.05)
        self.val_split.setValue(DEFAULT_VAL_SPLIT)
        self.val_split.setToolTip("Fraction of each class held out to measure accuracy")
        self.augment = QCheckBox("random shifts (augmentation)")
        self.load_button = QPushButton("Load")
        self.cancel_load = QPushButton("Cancel")
        self.cancel_load.setEnabled(False)
        self.load_progress = QProgressBar()
        self.load_progress.setMaximumHeight(12)
        self.load_progress.setTextVisible(False)
        self.data_label = QLabel("No dataset loaded.")
        self.data_label.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.load_button)
        row.addWidget(self.cancel_load)
        form.addRow("Source:", self.source)
        form.addRow(self.choose_folder, self.folder_label)
        form.addRow("Image size:", self.image_size)
        form.addRow("Colour:", self.color)
        form.addRow("Validation:", self.val_split)
        form.addRow(self.augment)
        form.addRow(row)
        form.addRow(self.load_progress)
        form.addRow(self.data_label)
        return box

    def _network_box(self) -> QGroupBox:
        box = QGroupBox("2. Network")
        form = QFormLayout(box)
        self.arch = _combo(
            ("Default small CNN", ARCH_DEFAULT),
            ("Explorer's conv stack + classifier", ARCH_EXPLORER),
            ("Loaded weights", ARCH_LOADED),
        )
        self.freeze = QListWidget()
        self.freeze.setToolTip("Tick a layer to freeze it: training leaves its weights alone")
        self.freeze.setMaximumHeight(84)
        self.arch_label = QLabel("")
        self.arch_label.setWordWrap(True)
        form.addRow("Architecture:", self.arch)
        form.addRow(QLabel("Freeze (ticked = not trained):"))
        form.addRow(self.freeze)
        form.addRow(self.arch_label)
        return box

    def _optimizer_box(self) -> QGroupBox:
        box = QGroupBox("3. Optimizer")
        form = QFormLayout(box)
        self.opt_kind = _combo(("Adam", "adam"), ("SGD with momentum 0.9", "sgd"))
        self.lr = LrSpinBox()
        self.lr.setValue(DEFAULT_LR)
        self.lr.setToolTip("Learning rate; changes apply from the next batch, even mid-run")
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 4096)
        self.batch_size.setValue(DEFAULT_BATCH)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(DEFAULT_EPOCHS)
        self.weight_decay = QDoubleSpinBox()
        self.weight_decay.setDecimals(5)
        self.weight_decay.setRange(0.0, 1.0)
        self.weight_decay.setSingleStep(0.0001)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        form.addRow("Method:", self.opt_kind)
        form.addRow("Learning rate:", self.lr)
        form.addRow("Batch size:", self.batch_size)
        form.addRow("Epochs:", self.epochs)
        form.addRow("Weight decay:", self.weight_decay)
        form.addRow("Seed:", self.seed)
        return box

    def _run_box(self) -> QGroupBox:
        box = QGroupBox("4. Train")
        grid = QVBoxLayout(box)
        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("Train on one more batch, then pause")
        self.stop_button = QPushButton("Stop")
        self.save_button = QPushButton("Save weights…")
        self.load_weights_button = QPushButton("Load weights…")
        row1 = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.step_button, self.stop_button):
            row1.addWidget(b)
        row2 = QHBoxLayout()
        row2.addWidget(self.save_button)
        row2.addWidget(self.load_weights_button)
        grid.addLayout(row1)
        grid.addLayout(row2)
        return box

    def _connect(self) -> None:
        self.source.currentIndexChanged.connect(self._source_changed)
        self.choose_folder.clicked.connect(self._ask_folder)
        self.load_button.clicked.connect(lambda: self.load_dataset())
        self.cancel_load.clicked.connect(self.loader.cancel)
        self.loader.progress.connect(self._load_progress)
        self.loader.loaded.connect(self._loaded)
        self.loader.failed.connect(self._load_failed)
        self.loader.cancelled.connect(self._load_cancelled)
        self.arch.currentIndexChanged.connect(lambda _: self._preview_architecture())
        self.lr.valueChanged.connect(self._lr_changed)
        self.start_button.clicked.connect(lambda: self.start())
        self.pause_button.clicked.connect(self._toggle_pause)
        self.step_button.clicked.connect(self.step)
        self.stop_button.clicked.connect(self.stop)
        self.save_button.clicked.connect(self._ask_save)
        self.load_weights_button.clicked.connect(self._ask_load)
        self.worker.progress.connect(self._on_event)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.refused.connect(lambda msg: self._set_status(msg, error=True))
        self.worker.state_changed.connect(lambda _: self._update_buttons())
        self.prediction.open_in_explorer_requested.connect(self._emit_open_in_explorer)
        self._source_changed()

    # ----------------------------------------------------------------------------------
    # public API
    # ----------------------------------------------------------------------------------
    def set_explorer_layers(self, layers: Sequence[Any] | None) -> None:
        """The explorer's current layer stack (engine layers); its conv part can be trained
        with a classifier head. Copied when training starts, never modified."""
        self._explorer_layers = list(layers) if layers else None
        self._set_item_enabled(self.arch, ARCH_EXPLORER, self._explorer_layers is not None)
        self._preview_architecture()

    def set_folder(self, path: str) -> None:
        """Use an image folder as the dataset (as if chosen in the dialog)."""
        self.folder = path
        self.folder_label.setText(os.path.basename(path.rstrip("/\\")) or path)
        self.folder_label.setToolTip(path)
        self.source.setCurrentIndex(self.source.findData("folder"))

    def dataset_key(self) -> tuple[Any, ...]:
        spec = BUILTIN if self.source.currentData() == BUILTIN else self.folder
        return (spec, self.image_size.value() or None, self.color.currentData())

    def load_dataset(self) -> bool:
        """Start loading the chosen dataset in a thread (False if busy or no folder)."""
        spec, size, channels = self.dataset_key()
        if not spec:
            self._set_status("Choose an image folder first (one subfolder per class).", error=True)
            return False
        if self.loader.is_running():
            return False
        self.load_progress.setRange(0, 0)
        self.cancel_load.setEnabled(True)
        self.load_button.setEnabled(False)
        self.data_label.setText("Loading…")
        self._pending_key = self.dataset_key()
        return self.loader.load(spec, size, channels)

    def start(self, paused: bool = False) -> bool:
        """Build the chosen network and train it in the worker thread.

        Refused (False, message) while a run is alive. Loads the dataset first when needed.
        """
        if self.worker.is_running():
            self._set_status(
                "Training is already running: stop it before starting again.", error=True
            )
            return False
        if self.data is None or self._data_key != self.dataset_key():
            self._start_after_load = {"paused": paused}
            return self.load_dataset()
        try:
            network = self._build_network()
        except ValueError as exc:  # ShapeError included
            self._set_status(f"Cannot build this network for the data: {exc}", error=True)
            return False
        self._apply_freeze(network)
        images = match_channels(self.data.images, self._network_channels(network))
        self.split = make_split(
            _with_images(self.data, images), self.val_split.value(), self.seed.value()
        )
        self.network = network
        self.optimizer = make_optimizer(
            self.opt_kind.currentData(), self.lr.value(), self.weight_decay.value()
        )
        self._reset_views(network)
        kwargs = {
            "epochs": self.epochs.value(),
            "batch_size": self.batch_size.value(),
            "optimizer": self.optimizer,
            "seed": self.seed.value(),
            "augment": augmenter(images.shape[-1]) if self.augment.isChecked() else None,
        }
        num_classes, run_split = self.data.num_classes, self.split
        self._run = _Run(epochs=self.epochs.value())
        started = self.worker.start(
            lambda stop: training_events(network, run_split, num_classes, stop, **kwargs),
            optimizer=self.optimizer,
            paused=paused,
        )
        if started:
            self._timer.start()
            self._set_status(
                f"Training {self.network.param_count():,} parameters on "
                f"{len(run_split.y_train)} images…"
            )
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
        return self.loader.shutdown(timeout_ms) and ok

    def save_weights(self, path: str) -> None:
        """Save the trained network (+ class names, input shape) as ``.npz`` (no pickle)."""
        from cnn_explorer.engine.serialize import save_network

        if self.trained is None:
            raise ValueError("nothing to save yet: train or load a network first")
        extra = {"class_names": self.class_names, "input_shape": list(self.trained_input_shape())}
        save_network(path, self.trained, extra)

    def load_weights(self, path: str) -> None:
        """Load a network saved by :meth:`save_weights` (or the train command's --save)."""
        from cnn_explorer.engine.serialize import load_network

        net, extra = load_network(path)
        self._adopt_network(net, extra, os.path.basename(path))

    def trained_state(self) -> TrainedState | None:
        """The trained network (a copy), its class names and input shape, for a project
        file; None before anything was trained or loaded."""
        if self.trained is None:
            return None
        shape = self.trained_input_shape()
        extra = {k: v for k, v in self._loaded_extra.items() if k not in _STATE_KEYS}
        if self.split is not None and self.data is not None:
            extra = {"source": str(getattr(self.data, "source", ""))}
        return TrainedState(
            self.trained.copy(),
            list(self.class_names),
            (shape[0], shape[1], shape[2]) if len(shape) == 3 else None,
            extra,
        )

    def restore_trained_state(self, state: TrainedState, origin: str = "the project") -> bool:
        """Show ``state`` (from a project file) as the trained network, as if its weights
        had been loaded: filters, "Try an image", and "Loaded weights" to train further.
        Refused (False, message) while a run is alive: the run would overwrite it."""
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
        self.split = None
        self.curves.clear()
        self.confusion.clear()
        self.prediction.set_images(np.zeros((0, 1, 1, 1), np.float32), np.zeros(0, np.int64))
        self._adopt_network(state.network.copy(), extra, origin)
        if self._select_dataset(str(state.extra.get("source", "")), state.input_shape):
            self._set_status(
                f"{self.status.text()} The dataset it was trained on is selected: "
                "Load it to try its validation images."
            )
        return True

    def _select_dataset(self, source: str, input_shape: tuple[int, int, int] | None) -> bool:
        """Pre-select the dataset a restored network was trained on (the built-in set, or
        a folder that still exists) with its image size and colour, so that one click on
        Load gives "Try an image" the validation images. False when it is not available."""
        if source == BUILTIN:
            self.source.setCurrentIndex(self.source.findData(BUILTIN))
        elif source and os.path.isdir(source):
            self.set_folder(source)
        else:
            return False
        if input_shape is not None and input_shape[1] == input_shape[2]:
            self.image_size.setValue(input_shape[1])
            self.color.setCurrentIndex(self.color.findData(1 if input_shape[0] == 1 else 3))
        return True

    def _adopt_network(self, net: Any, extra: dict[str, Any], origin: str) -> None:
        """Make ``net`` the trained network and the "Loaded weights" architecture."""
        names = [str(n) for n in extra.get("class_names", [])]
        out = net.layers[-1].params.get("weight") if net.layers else None
        k = out.shape[0] if out is not None else len(names)
        self._loaded_network, self._loaded_extra = net, extra
        self.trained = net.copy()
        self.class_names = names if len(names) == k else [f"class {i}" for i in range(k)]
        self.filters.clear()
        self.filters.add_snapshot(f"loaded from {origin}", conv_filters(net))
        self.prediction.set_network(self.trained, self.class_names)
        self.arch.setCurrentIndex(self.arch.findData(ARCH_LOADED))
        self._set_item_enabled(self.arch, ARCH_LOADED, True)
        self._set_status(
            f"Loaded {origin}: {len(net.layers)} layers, {len(self.class_names)} classes."
        )
        self._update_buttons()

    def trained_input_shape(self) -> tuple[int, ...]:
        if self.split is not None:
            return tuple(self.split.x_train.shape[1:])
        shape = self._loaded_extra.get("input_shape")
        return tuple(int(s) for s in shape) if shape else ()

    # ----------------------------------------------------------------------------------
    # dataset
    # ----------------------------------------------------------------------------------
    def _source_changed(self) -> None:
        folder = self.source.currentData() == "folder"
        self.choose_folder.setEnabled(folder)
        self.folder_label.setEnabled(folder)
        if folder and not self.folder and self.isVisible():
            self._ask_folder()

    def _ask_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Image folder (one subfolder per class)")
        if path:
            self.set_folder(path)

    def _load_progress(self, done: int, total: int) -> None:
        self.load_progress.setRange(0, total)
        self.load_progress.setValue(done)

    def _load_finished_ui(self) -> None:
        self.load_progress.setRange(0, 1)
        self.load_progress.setValue(0)
        self.cancel_load.setEnabled(False)
        self.load_button.setEnabled(True)

    def _loaded(self, data: Any, summary: Any) -> None:
        self._load_finished_ui()
        self.data, self.summary, self._data_key = data, summary, self._pending_key
        text = (
            summary.text()
            if summary is not None
            else (
                f"{len(data)} images, {data.num_classes} classes, "
                f"{'×'.join(map(str, data.input_shape[1:]))}: " + ", ".join(data.class_names)
            )
        )
        self.data_label.setText(text)
        self.data_label.setToolTip(text)
        restored = self.trained is not None and self.split is None  # from a file, not run
        if not restored:  # a restored network keeps its own class names
            self.class_names = list(data.class_names)
        self._preview_architecture()
        pending, self._start_after_load = self._start_after_load, None
        if pending is not None:
            self.start(**pending)
            if pending.get("paused"):
                self.worker.step()
        elif restored:
            self._show_validation_images()

    def _show_validation_images(self) -> None:
        """Give "Try an image" the loaded dataset's validation images, split exactly as a
        training run would, when the restored network fits them (same classes and image
        shape); otherwise say why not."""
        data, shape = self.data, self.trained_input_shape()
        if list(data.class_names) != self.class_names or tuple(data.input_shape) != shape:
            self._set_status(
                f"This dataset ({len(data.class_names)} classes, "
                f"{'×'.join(map(str, data.input_shape))}) does not fit the loaded network "
                f"({len(self.class_names)} classes, {'×'.join(map(str, shape)) or '?'}): "
                "train on it to try its images."
            )
            return
        split = make_split(data, self.val_split.value(), self.seed.value())
        self.prediction.set_images(split.x_val, split.y_val)
        self._set_status(
            f"{len(split.y_val)} validation images of this dataset are ready in “Try an image”."
        )

    def _load_failed(self, message: str) -> None:
        self._load_finished_ui()
        self._start_after_load = None
        self.data_label.setText("No dataset loaded.")
        self._set_status(message, error=True)

    def _load_cancelled(self) -> None:
        self._load_finished_ui()
        self._start_after_load = None
        self.data_label.setText("Loading cancelled.")

    def _load_single_image(self, path: str) -> np.ndarray:
        from pathlib import Path

        from cnn_explorer.training.image_folder import decode

        shape = self.trained_input_shape()
        if len(shape) != 3:
            raise ValueError("train or load a network first")
        image, _ = decode(Path(path), (shape[1], shape[2]), 3 if shape[0] == 3 else 1)
        return image

    # ----------------------------------------------------------------------------------
    # network
    # ----------------------------------------------------------------------------------
    def _input_shape(self) -> tuple[int, int, int]:
        if self.data is not None:
            return self.data.input_shape
        return (1, 28, 28)

    def _build_network(self) -> Any:
        from cnn_explorer.engine.network import default_classifier, with_classifier_head

        shape = self._input_shape()
        k = self.data.num_classes if self.data is not None else 6
        seed = self.seed.value()
        arch = self.arch.currentData()
        if arch == ARCH_EXPLORER and self._explorer_layers:
            stack = conv_stack(self._explorer_layers)
            c = self._first_conv_channels(stack) or shape[0]
            return with_classifier_head(stack, (c, *shape[1:]), k, seed)
        if arch == ARCH_LOADED and self._loaded_network is not None:
            net = self._loaded_network.copy()
            net.output_shape((self._network_channels(net), *shape[1:]))
            out = net.output_shape((self._network_channels(net), *shape[1:]))
            if out != (k,):
                raise ValueError(
                    f"the loaded network outputs {out} values but the dataset has {k} classes"
                )
            return net
        return default_classifier(shape, k, seed)

    @staticmethod
    def _first_conv_channels(layers: Sequence[Any]) -> int | None:
        for layer in layers:
            if layer.kind == "conv":
                return int(layer.params["weight"].shape[1])
        return None

    def _network_channels(self, network: Any) -> int:
        return self._first_conv_channels(network.layers) or self._input_shape()[0]

    def _preview_architecture(self) -> None:
        try:
            net = self._build_network()
        except ValueError as exc:
            self.arch_label.setText(str(exc))
            self.arch_label.setStyleSheet(ERROR_STYLE)
            self.freeze.clear()
            return
        self.arch_label.setStyleSheet("")
        shapes = net.output_shapes((self._network_channels(net), *self._input_shape()[1:]))
        self.arch_label.setText(
            " → ".join("×".join(map(str, s)) for s in shapes)
            + f"\n{net.param_count():,} parameters"
        )
        frozen = {
            self.freeze.item(i).text()
            for i in range(self.freeze.count())
            if self.freeze.item(i).checkState() == Qt.CheckState.Checked
        }
        self.freeze.clear()
        for i, layer in enumerate(net.layers):
            if layer.params:
                text = f"{i + 1}. {layer.describe()}"
                item = QListWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, i)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    Qt.CheckState.Checked if text in frozen else Qt.CheckState.Unchecked
                )
                self.freeze.addItem(item)

    def _apply_freeze(self, network: Any) -> None:
        for row in range(self.freeze.count()):
            item = self.freeze.item(row)
            i = item.data(Qt.ItemDataRole.UserRole)
            if i < len(network.layers):
                network.layers[i].trainable = item.checkState() != Qt.CheckState.Checked

    # ----------------------------------------------------------------------------------
    # training events (GUI thread)
    # ----------------------------------------------------------------------------------
    def _reset_views(self, network: Any) -> None:
        self.curves.clear()
        self.confusion.clear()
        self.filters.clear()
        self.filters.add_snapshot("before training (random initial weights)", conv_filters(network))
        self.class_names = list(self.data.class_names)
        self.prediction.set_network(None, self.class_names)
        self.prediction.set_images(self.split.x_val, self.split.y_val)
        self.progress.setValue(0)

    def _on_event(self, event: TrainingEvent) -> None:
        rec = event.record
        self._run.last = rec
        if rec.kind == "batch":
            self.curves.add_batch(rec.epoch - 1 + rec.batch / rec.batches_per_epoch, rec.loss)
        if rec.epoch_end:
            self.curves.add_epoch(
                rec.epoch, rec.train_loss, rec.train_accuracy, rec.val_loss, rec.val_accuracy
            )
        if event.extras is not None:
            self._apply_extras(rec, event.extras)
        if self.worker.state == TrainingWorker.PAUSED:
            self._flush()

    def _apply_extras(self, rec: Any, extras: EpochExtras) -> None:
        self.trained = extras.network
        if rec.epoch_end:
            caption = f"after epoch {rec.epoch}"
        else:
            caption = f"epoch {rec.epoch}, batch {rec.batch} (run ended)"
        self.filters.add_snapshot(caption, extras.filters)
        if extras.confusion is not None:
            self.confusion.set_matrix(extras.confusion, self.class_names)
        self.prediction.set_network(self.trained, self.class_names)

    def _flush(self) -> None:
        """Timer tick: redraw the batch curve and the progress line."""
        self.curves.flush()
        rec = self._run.last
        if rec is None:
            return
        frac = rec.fraction
        self.progress.setValue(round(1000 * frac))
        left = rec.elapsed / frac * (1 - frac) if frac > 0 else float("nan")
        running = self.worker.is_running()
        left_text = (
            f"~{left:.0f} s left"
            if running and np.isfinite(left)
            else ("finished" if frac >= 1 else "")
        )
        self.progress_label.setText(
            f"epoch {rec.epoch}/{rec.epochs} · batch {rec.batch}/{rec.batches_per_epoch} · "
            f"loss {rec.loss:.4f} · {left_text}"
        )

    def _on_finished(self, reason: str) -> None:
        self._timer.stop()
        self._flush()
        rec = self._run.last
        if reason == "nonfinite" and rec is not None:
            self._set_status(
                f"Training stopped: {rec.error}. Try a learning rate 10× smaller.", error=True
            )
        elif reason == "stopped":
            where = f" at epoch {rec.epoch}, batch {rec.batch}" if rec is not None else ""
            self._set_status(f"Stopped{where}. The network keeps the weights trained so far.")
        else:
            acc = rec.val_accuracy if rec is not None else None
            self._set_status(
                f"Finished {self._run.epochs} epochs"
                + (f": validation accuracy {acc:.1%}." if acc is not None else ".")
            )
        self._update_buttons()

    def _on_failed(self, message: str) -> None:
        self._timer.stop()
        self._set_status(f"Training failed: {message}", error=True)
        self._update_buttons()

    # ----------------------------------------------------------------------------------
    # buttons and small handlers
    # ----------------------------------------------------------------------------------
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
        running = self.worker.is_running()
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running and state != TrainingWorker.STOPPING)
        self.pause_button.setText("Resume" if state == TrainingWorker.PAUSED else "Pause")
        self.step_button.setEnabled(state in (TrainingWorker.IDLE, TrainingWorker.PAUSED))
        self.stop_button.setEnabled(running)
        self.save_button.setEnabled(self.trained is not None)
        for w in (
            self.source,
            self.choose_folder,
            self.image_size,
            self.color,
            self.val_split,
            self.augment,
            self.load_button,
            self.arch,
            self.freeze,
            self.opt_kind,
            self.batch_size,
            self.epochs,
            self.weight_decay,
            self.seed,
            self.load_weights_button,
        ):
            w.setEnabled(not running)
        if not running:
            self.choose_folder.setEnabled(self.source.currentData() == "folder")

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(ERROR_STYLE if error else "")
        self.status_changed.emit(text)

    @staticmethod
    def _set_item_enabled(combo: QComboBox, data: str, on: bool) -> None:
        model = combo.model()
        item = model.item(combo.findData(data)) if hasattr(model, "item") else None
        if item is not None:
            item.setEnabled(on)
        if not on and combo.currentData() == data:
            combo.setCurrentIndex(0)

    def _emit_open_in_explorer(self, image: np.ndarray) -> None:
        if self.trained is not None:
            self.open_in_explorer.emit(list(self.trained.copy().layers), image)

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

    # ----------------------------------------------------------------------------------
    # clean shutdown
    # ----------------------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:
        """Watch the top-level window so closing it stops training first."""
        window = self.window()
        if window is not self._watched:
            if self._watched is not None:
                self._watched.removeEventFilter(self)
            window.installEventFilter(self)
            self._watched = window
        super().showEvent(event)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self._watched and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False

    def closeEvent(self, event: Any) -> None:
        self.shutdown()
        super().closeEvent(event)


def _combo(*items: tuple[str, Any]) -> QComboBox:
    """A combo box of ``(shown text, item data)`` entries; code reads ``currentData()``."""
    combo = QComboBox()
    for text, data in items:
        combo.addItem(text, data)
    return combo


def _with_images(data: Any, images: np.ndarray) -> Any:
    if images is data.images:
        return data
    from cnn_explorer.training.data import LabeledImages

    return LabeledImages(images, data.labels, data.class_names, data.source)
