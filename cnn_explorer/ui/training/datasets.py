"""Loading the dataset the Training tab's controls name, off the GUI thread.

Why apart from the tab: loading has its own small state machine (choose a folder, load with
progress and cancel, then either use the result or keep the dataset in use) and its own
promise to keep: the dataset label always names the dataset runs will train on, and after a
failed or cancelled load it says what happened *and* that the previous dataset is still in
use. The loaded arrays go into the session; the tab hears :attr:`DatasetLoading.loaded`.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from cnn_explorer.training.session import TrainingSession
from cnn_explorer.training.settings import DatasetChoice
from cnn_explorer.training.worker import DatasetLoader
from cnn_explorer.ui.training.controls import FOLDER, TrainingControls


class DatasetLoading(QObject):
    """``loaded()`` once the session uses a new dataset; ``ended()`` when a load ends any
    other way (failed or cancelled); ``message(text, is_error)`` for the status line."""

    loaded = Signal()
    ended = Signal()
    message = Signal(str, bool)

    def __init__(self, controls: TrainingControls, session: TrainingSession) -> None:
        super().__init__(controls)
        self.controls, self.session = controls, session
        self.loader = DatasetLoader(self)
        self._loading: DatasetChoice | None = None
        controls.source.currentIndexChanged.connect(self._source_changed)
        controls.choose_folder.clicked.connect(self.ask_folder)
        controls.cancel_load.clicked.connect(self.loader.cancel)
        self.loader.progress.connect(self._progress)
        self.loader.loaded.connect(self._loaded)
        self.loader.failed.connect(self._failed)
        self.loader.cancelled.connect(self._cancelled)

    def load(self) -> bool:
        """Start loading the chosen dataset in a thread (False if busy or no folder)."""
        choice = self.controls.dataset_choice()
        if not choice.source:
            self.message.emit("Choose an image folder first (one subfolder per class).", True)
            return False
        if self.loader.is_running():
            return False
        self.controls.set_loading(True)
        self.controls.show_data("Loading…")
        self._loading = choice
        return self.loader.load(choice.source, choice.image_size, choice.channels)

    def ask_folder(self) -> None:
        parent = self.controls
        path = QFileDialog.getExistingDirectory(parent, "Image folder (one subfolder per class)")
        if path:
            self.controls.set_folder(path)

    def _source_changed(self) -> None:
        c = self.controls
        if c.source.currentData() == FOLDER and not c.folder and c.isVisible():
            self.ask_folder()

    def _progress(self, done: int, total: int) -> None:
        self.controls.load_progress.setRange(0, total)
        self.controls.load_progress.setValue(done)

    def _loaded(self, data: Any, summary: str) -> None:
        self.controls.set_loading(False)
        assert self._loading is not None
        self.session.use_dataset(data, self._loading, summary)
        self.controls.show_data(summary)
        self.loaded.emit()

    def _failed(self, message: str) -> None:
        self.controls.set_loading(False)
        self._show_dataset_in_use(f"Could not load that dataset: {message}")
        self.message.emit(message, True)
        self.ended.emit()

    def _cancelled(self) -> None:
        self.controls.set_loading(False)
        self._show_dataset_in_use("Loading cancelled.")
        self.ended.emit()

    def _show_dataset_in_use(self, what_happened: str) -> None:
        """After a load that did not finish: say so, and name the dataset still in use."""
        if self.session.data is None:
            self.controls.show_data(f"{what_happened}\nNo dataset loaded.")
        else:
            self.controls.show_data(f"{what_happened}\nStill in use:\n{self.session.summary}")
