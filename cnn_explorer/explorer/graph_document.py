"""The Qt shell around :class:`~cnn_explorer.explorer.graph_view_model.GraphViewModel`:
signals for the Model tab's views and the forward pass on a one-thread pool.

Data flows one way: a view calls an intent here (a new model, a new input, a selection);
the intent changes the view model and emits one signal; a new input starts one forward
job, whose result is published unless the input changed meanwhile (then it is dropped,
and the newer job's result follows). A newer input also asks the older jobs to stop: a
running forward gives up at its next node and a queued one before its first, so pictures
picked in quick succession never queue up whole forward passes, and closing the window
waits for one layer at most. QtCore only.
"""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from cnn_explorer.engine.errors import ForwardStopped
from cnn_explorer.explorer.graph_view_model import (
    ForwardJob,
    GraphCell,
    GraphViewModel,
    ModelLike,
    PreprocessingLike,
)


class _Signals(QObject):
    done = Signal(object, object)  # (ForwardJob, tensors dict | Exception)


class _ForwardRunnable(QRunnable):
    def __init__(self, job: ForwardJob) -> None:
        super().__init__()
        self.job = job
        self.signals = _Signals()
        self.stopped = threading.Event()
        """Set on the GUI thread when the job is stale (a newer input, the window closing)."""

    def run(self) -> None:
        try:
            result: object = self.job.run(self.stopped.is_set)
        except Exception as exc:  # shown to the user; the window stays up
            result = exc
        self.signals.done.emit(self.job, result)


class GraphDocument(QObject):
    """The Model tab's state: one imported model (or none) and its computed tensors."""

    model_changed = Signal()  # a new model (or new preprocessing): rebuild everything
    tensors_ready = Signal()  # the tensors of the current input are available
    input_changed = Signal()  # a new input picture (tensors follow)
    node_selected = Signal(str)
    cell_selected = Signal(object)  # GraphCell | None
    busy_changed = Signal(bool)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view: GraphViewModel | None = None
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # layers keep per-forward state: one at a time
        self._jobs: set[_ForwardRunnable] = set()

    @property
    def busy(self) -> bool:
        """True while a forward pass runs."""
        return bool(self._jobs)

    @property
    def ready(self) -> bool:
        """True when a model is open and its tensors are computed for the current input."""
        return self.view is not None and self.view.tensors is not None

    # ------------------------------------------------------------------ intents
    def set_model(self, model: ModelLike) -> None:
        """Show a newly imported model (on the sample picture)."""
        self.view = GraphViewModel(model)
        self.model_changed.emit()
        self.input_changed.emit()
        self._start()

    def set_preprocessing(self, pre: PreprocessingLike) -> None:
        """Change how pictures are fed to the model (ValueError: everything kept)."""
        if self.view is None:
            return
        self.view.set_preprocessing(pre)
        self.model_changed.emit()
        self.input_changed.emit()
        self._start()

    def set_image(self, pixels: np.ndarray, name: str) -> None:
        """A decoded picture at the model's size becomes the input."""
        if self.view is None:
            return
        self.view.set_image(pixels, name)
        self.input_changed.emit()
        self._start()

    def select_node(self, name: str) -> None:
        if self.view is None or name == self.view.selected_node:
            return
        self.view.select_node(name)
        self.view.select_cell(None)
        self.node_selected.emit(name)
        self.cell_selected.emit(None)

    def select_cell(self, cell: GraphCell | None) -> None:
        if self.view is None:
            return
        node_before = self.view.selected_node
        self.view.select_cell(cell)
        if self.view.selected_node != node_before:
            self.node_selected.emit(self.view.selected_node)
        self.cell_selected.emit(cell)

    # ------------------------------------------------------------------ computing
    def _start(self) -> None:
        assert self.view is not None
        self._stop_all()  # their inputs are replaced: their results would be dropped
        job = _ForwardRunnable(self.view.forward_job())
        job.setAutoDelete(False)
        job.signals.done.connect(lambda j, r, run=job: self._done(run, j, r))
        self._jobs.add(job)
        self.busy_changed.emit(True)
        self._pool.start(job)

    def _done(self, run: _ForwardRunnable, job: ForwardJob, result: object) -> None:
        self._jobs.discard(run)
        self.busy_changed.emit(self.busy)
        if self.view is None or job.graph is not self.view.graph:
            return  # a model since replaced
        if isinstance(result, Exception):
            if job.generation == self.view.generation and not isinstance(result, ForwardStopped):
                self.failed.emit(f"The model could not compute this input: {result}")
            return
        if self.view.publish(job, result):  # type: ignore[arg-type]
            self.tensors_ready.emit()

    def wait(self, msecs: int = 60_000) -> None:
        """Let the running forward pass finish and deliver its result (screenshots, tests)."""
        from PySide6.QtCore import QCoreApplication

        self._pool.waitForDone(msecs)
        QCoreApplication.processEvents()

    def _stop_all(self) -> None:
        for run in self._jobs:
            run.stopped.set()

    def shutdown(self, msecs: int = 10_000) -> None:
        """Stop the forward passes (the running one at its next node) and wait for them."""
        self._stop_all()
        self._pool.clear()
        self._pool.waitForDone(msecs)
