"""The Training tab's left column: dataset, network, optimizer and run controls.

Widgets only. The column turns what the user set into the session's plain settings
(:meth:`TrainingControls.dataset_choice`, :meth:`TrainingControls.run_settings`) and shows
what the session says back (an architecture preview, the dataset summary); the tab wires its
buttons to the session and the worker threads.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
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
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.limits import MAX_EPOCHS, MAX_TRAINING_SIDE
from cnn_explorer.training.data import BUILTIN_PREFIX
from cnn_explorer.training.networks import ARCH_DEFAULT, ARCH_EXPLORER, ARCH_LOADED, Preview
from cnn_explorer.training.settings import (
    DEFAULT_BATCH,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_VAL_SPLIT,
    MAX_SEED,
    DatasetChoice,
    RunSettings,
)
from cnn_explorer.ui.common.messages import ERROR_STYLE

BUILTIN = BUILTIN_PREFIX + "shapes"
FOLDER = "folder"


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
        try:
            ok = self.minimum() <= float(text) <= self.maximum()
        except ValueError:
            ok = False
        state = QValidator.State.Acceptable if ok else QValidator.State.Intermediate
        return state, text, pos

    def stepBy(self, steps: int) -> None:
        self.setValue(self.value() * 2.0**steps)


def combo(*items: tuple[str, Any]) -> QComboBox:
    """A combo box of ``(shown text, item data)`` entries; code reads ``currentData()``."""
    box = QComboBox()
    for text, data in items:
        box.addItem(text, data)
    return box


def set_item_enabled(box: QComboBox, data: str, on: bool) -> None:
    """Enable or grey out the entry holding ``data``; leave it if it was current and off."""
    model = box.model()
    item = model.item(box.findData(data)) if hasattr(model, "item") else None
    if item is not None:
        item.setEnabled(on)
    if not on and box.currentData() == data:
        box.setCurrentIndex(0)


class TrainingControls(QWidget):
    """The boxes "1. Dataset" … "3. Optimizer" in a scroll area (``scroll``), and below it
    "4. Train" (Start / Pause / Step / Stop, save and load weights), pinned: the run buttons
    stay visible at every window size while the settings scroll. ``folder`` is the chosen
    image folder ("" until one is chosen)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder = ""
        column = QWidget()
        col = QVBoxLayout(column)
        col.addWidget(self._dataset_box())
        col.addWidget(self._network_box())
        col.addWidget(self._optimizer_box())
        col.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidget(column)
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll, 1)
        outer.addWidget(self._run_box())
        # Wide enough for the settings beside the vertical scroll bar: they scroll down,
        # never sideways (the horizontal bar is off, so they would be cut off instead).
        beside_bar = self.scroll.verticalScrollBar().sizeHint().width()
        need = column.minimumSizeHint().width() + beside_bar + 2 * self.scroll.frameWidth()
        self.setMinimumWidth(min(400, max(330, need)))
        self.setMaximumWidth(400)
        self.source.currentIndexChanged.connect(self._source_changed)
        self._source_changed()

    # -- construction ----------------------------------------------------------------------
    def _dataset_box(self) -> QGroupBox:
        box = QGroupBox("1. Dataset")
        form = QFormLayout(box)
        self.source = combo(("Built-in shapes (6 classes)", BUILTIN), ("Image folder…", FOLDER))
        self.source.setToolTip("An image folder holds one subfolder of images per class")
        self.choose_folder = QPushButton("Choose folder…")
        self.folder_label = QLabel("")
        self.folder_label.setWordWrap(True)
        self.image_size = QSpinBox()
        self.image_size.setRange(0, MAX_TRAINING_SIDE)
        self.image_size.setSpecialValueText("auto")
        self.image_size.setSuffix(" px")
        self.image_size.setToolTip(
            "Side of the square training images; auto = native size "
            "when all images share one (else 28)"
        )
        self.color = combo(("auto", None), ("grayscale", 1), ("RGB", 3))
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
        self.arch = combo(
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
        self.opt_kind = combo(("Adam", "adam"), ("SGD with momentum 0.9", "sgd"))
        self.lr = LrSpinBox()
        self.lr.setValue(DEFAULT_LR)
        self.lr.setToolTip("Learning rate; changes apply from the next batch, even mid-run")
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 4096)
        self.batch_size.setValue(DEFAULT_BATCH)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, MAX_EPOCHS)
        self.epochs.setValue(DEFAULT_EPOCHS)
        self.weight_decay = QDoubleSpinBox()
        self.weight_decay.setDecimals(5)
        self.weight_decay.setRange(0.0, 1.0)
        self.weight_decay.setSingleStep(0.0001)
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
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

    # -- reading ---------------------------------------------------------------------------
    def dataset_choice(self) -> DatasetChoice:
        """The dataset the controls name (``source`` "" while no folder is chosen)."""
        source = BUILTIN if self.source.currentData() == BUILTIN else self.folder
        return DatasetChoice(source, self.image_size.value() or None, self.color.currentData())

    def frozen(self) -> frozenset[int]:
        """Indices of the ticked (frozen) layers."""
        items = (self.freeze.item(row) for row in range(self.freeze.count()))
        return frozenset(
            int(item.data(Qt.ItemDataRole.UserRole))
            for item in items
            if item.checkState() == Qt.CheckState.Checked
        )

    def run_settings(self) -> RunSettings:
        return RunSettings(
            arch=self.arch.currentData(),
            optimizer=self.opt_kind.currentData(),
            lr=self.lr.value(),
            batch_size=self.batch_size.value(),
            epochs=self.epochs.value(),
            weight_decay=self.weight_decay.value(),
            seed=self.seed.value(),
            augment=self.augment.isChecked(),
            val_split=self.val_split.value(),
            frozen=self.frozen(),
        )

    # -- writing ---------------------------------------------------------------------------
    def set_folder(self, path: str) -> None:
        """Use an image folder as the dataset source."""
        self.folder = path
        self.folder_label.setText(os.path.basename(path.rstrip("/\\")) or path)
        self.folder_label.setToolTip(path)
        self.source.setCurrentIndex(self.source.findData(FOLDER))

    def select_dataset(self, source: str, input_shape: tuple[int, int, int] | None) -> bool:
        """Select ``source`` (the built-in set, or a folder that still exists) with the image
        size and colour of ``input_shape``; False when it is not available."""
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

    def show_data(self, text: str) -> None:
        self.data_label.setText(text)
        self.data_label.setToolTip(text)

    def show_preview(self, preview: Preview | str) -> None:
        """Show an architecture (keeping ticks on layers of the same description; a new
        model to fine-tune starts with its ``default_frozen`` ticked) or, as a string, why
        it cannot be built."""
        if isinstance(preview, str):
            self.arch_label.setText(preview)
            self.arch_label.setStyleSheet(ERROR_STYLE)
            self.freeze.clear()
            return
        self.arch_label.setStyleSheet("")
        self.arch_label.setText(preview.text())
        rows = [self.freeze.item(i) for i in range(self.freeze.count())]
        ticked = {item.text() for item in rows if item.checkState() == Qt.CheckState.Checked}
        same = [item.text() for item in rows] == [text for _, text in preview.trainable]
        if preview.default_frozen and not same:  # a model to fine-tune: its own defaults
            ticked = {text for i, text in preview.trainable if i in preview.default_frozen}
        self.freeze.clear()
        for index, text in preview.trainable:
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, index)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            checked = Qt.CheckState.Checked if text in ticked else Qt.CheckState.Unchecked
            item.setCheckState(checked)
            self.freeze.addItem(item)

    def set_loading(self, loading: bool) -> None:
        """Busy bar, Cancel and Load while a dataset loads."""
        self.load_progress.setRange(0, 0 if loading else 1)
        self.load_progress.setValue(0)
        self.cancel_load.setEnabled(loading)
        self.load_button.setEnabled(not loading)

    def set_running(self, running: bool, paused: bool, stopping: bool, idle: bool) -> None:
        """Buttons for the worker's state; settings are locked while a run is alive."""
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running and not stopping)
        self.pause_button.setText("Resume" if paused else "Pause")
        self.step_button.setEnabled(idle or paused)
        self.stop_button.setEnabled(running)
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
            self.choose_folder.setEnabled(self.source.currentData() == FOLDER)

    def _source_changed(self) -> None:
        folder = self.source.currentData() == FOLDER
        self.choose_folder.setEnabled(folder)
        self.folder_label.setEnabled(folder)
