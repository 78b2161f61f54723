"""Opening model files and pictures for the Model tab, off the GUI thread.

A model file is imported on a one-thread pool (:func:`~cnn_explorer.interchange.load.
load_model`, the one loader every model file goes through); then the import report asks
the user to confirm the preprocessing, and only then does the model replace the current
one. A file that cannot be imported gives one message (the importer's sentence) and
changes nothing. Pictures are decoded at the model's input size with the app's image
decoder (:mod:`cnn_explorer.imageio`) and handed over as uint8 pixels.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from cnn_explorer import imageio
from cnn_explorer.interchange.load import MODEL_SUFFIXES, load_model
from cnn_explorer.interchange.model import (
    ImportedModel,
    InputShapeNeededError,
    ModelFileError,
    Preprocessing,
)
from cnn_explorer.ui.common.messages import IMAGE_FILTER, Reporter

MODEL_FILTER = "Models (" + " ".join(f"*{s}" for s in MODEL_SUFFIXES) + ")"
"""The file-dialog filter for every model file the app imports."""

UNCHANGED = "The current model is unchanged."
DEFAULT_INPUT = (3, 224, 224)
"""The size offered when a model file does not fix its input size."""


def is_model_file(path: str) -> bool:
    """True for a path with a model file's suffix (any case)."""
    return path.lower().endswith(MODEL_SUFFIXES)


class _Signals(QObject):
    done = Signal(object)  # the result, or the exception raised


class _Job(QRunnable):
    def __init__(self, work: Callable[[], object]) -> None:
        super().__init__()
        self.work = work
        self.signals = _Signals()
        self.setAutoDelete(False)

    def run(self) -> None:
        try:
            result = self.work()
        except Exception as exc:  # every failure becomes a message, never a crash
            result = exc
        self.signals.done.emit(result)


def image_pixels(path: str, pre: Preprocessing) -> np.ndarray:
    """The picture at ``path`` as uint8 pixels at the model's size: ``(H, W)`` for a grey
    model, ``(H, W, 3)`` RGB otherwise (Preprocessing.apply reorders BGR)."""
    _, h, w = pre.input_shape
    channels = 1 if pre.colour == "grey" else 3
    decoded, _ = imageio.decode_image(path, (h, w), channels)
    pixels = np.clip(np.rint(decoded.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
    return pixels[:, :, 0] if channels == 1 else pixels


class ModelLoader(QObject):
    """Imports model files and decodes pictures for the Model tab."""

    opened = Signal(object)  # ImportedModel, with the preprocessing the user confirmed
    image_ready = Signal(object, str)  # (pixels, file name)
    status = Signal(str, bool)  # (text, is_error) for the status bar
    busy_changed = Signal(bool)

    def __init__(self, reporter: Reporter, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.reporter = reporter
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._jobs: set[_Job] = set()
        self.may_replace: Callable[[str], bool] = lambda _name: True
        """Asked (with the file name) before an imported model replaces the current one:
        the window asks about unsaved edits of the current model (False: keep it)."""

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def open_dialog(self) -> None:
        path = self.reporter.open_path("Open model", f"{MODEL_FILTER};;All files (*)")
        if path:
            self.load(path)

    def load(self, path: str, input_shape: tuple[int, int, int] | None = None) -> bool:
        """Import ``path`` in the background (at ``input_shape`` when given); False when
        it is refused at once. A model whose input size is not fixed asks for one."""
        if os.path.isdir(path):
            return self._failed(f"{os.path.basename(path)} is a folder, not a model file.")
        name = os.path.basename(path)
        self.status.emit(f"Importing {name}…", False)
        self._start(
            lambda: load_model(Path(path), input_shape=input_shape),
            lambda r: self._imported(path, r),
        )
        return True

    def load_image(self, path: str, pre: Preprocessing) -> bool:
        """Decode a picture at the model's input size in the background."""
        name = os.path.basename(path)
        if os.path.isdir(path):
            return self._failed(f"{name} is a folder, not an image file.", "Cannot load image")
        self._start(lambda: image_pixels(path, pre), lambda r: self._decoded(name, r))
        return True

    def image_dialog(self, pre: Preprocessing) -> None:
        path = self.reporter.open_path("Open image for the model", f"{IMAGE_FILTER};;All (*)")
        if path:
            self.load_image(path, pre)

    # ------------------------------------------------------------------ jobs
    def _start(self, work: Callable[[], object], then: Callable[[object], None]) -> None:
        job = _Job(work)
        job.signals.done.connect(lambda result, j=job: self._finish(j, result, then))
        self._jobs.add(job)
        self.busy_changed.emit(True)
        self._pool.start(job)

    def _finish(self, job: _Job, result: object, then: Callable[[object], None]) -> None:
        self._jobs.discard(job)
        self.busy_changed.emit(self.busy)
        then(result)

    def _imported(self, path: str, result: object) -> None:
        name = os.path.basename(path)
        if isinstance(result, InputShapeNeededError):
            size = self.reporter.input_size(f"{name}: {result}", DEFAULT_INPUT)
            if size is not None:
                self.load(path, size)
                return
        if isinstance(result, ModelFileError):
            self._failed(str(result))
            return
        if isinstance(result, MemoryError):
            self._failed(f"{name} needs more memory than this computer has free.")
            return
        if isinstance(result, Exception):
            self._failed(f"{name} could not be imported ({type(result).__name__}: {result}).")
            return
        assert isinstance(result, ImportedModel)
        if not self.may_replace(name):
            self.status.emit(f"{name} was not opened", False)
            return
        pre = self.reporter.import_report(result)
        if pre is None:
            self.status.emit(f"{name} was not opened", False)
            return
        self.opened.emit(replace(result, preprocessing=pre))
        self.status.emit(f"Opened {name}: {len(result.graph.nodes)} layers", False)

    def _decoded(self, name: str, result: object) -> None:
        if isinstance(result, Exception):
            self._failed(str(result), "Cannot load image", "The current input is unchanged.")
            return
        self.image_ready.emit(result, name)

    def _failed(
        self, text: str, title: str = "Cannot open model", unchanged: str = UNCHANGED
    ) -> bool:
        self.reporter.error(title, f"{text}\n{unchanged}")
        self.status.emit(text, True)
        return False

    def wait(self, msecs: int = 60_000) -> None:
        """Let a running import or decode finish and deliver its result (tests, scripts)."""
        from PySide6.QtCore import QCoreApplication

        self._pool.waitForDone(msecs)
        QCoreApplication.processEvents()

    def shutdown(self, msecs: int = 10_000) -> None:
        self._pool.clear()
        self._pool.waitForDone(msecs)
