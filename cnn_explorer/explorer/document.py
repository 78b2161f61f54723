"""The Qt shell around the explorer's model: undo stack, timers, thread pool, signals.

:class:`Document` owns an :class:`~cnn_explorer.explorer.model.Explorer` and adds only what
needs Qt. Data flows one way: a widget calls an intent here; the intent (from
:mod:`.edits`) builds undoable edits, which go on :attr:`Document.undo_stack` as commands;
a command applies its edit to the model and the document emits :attr:`changed` once with
the model's :class:`Change`. A zero-delay timer coalesces a burst of edits into one
:meth:`Explorer.recompute`; work above :data:`ASYNC_COST` runs on a one-thread pool (the
first forward of a new document or input shape above :data:`OPEN_INLINE_COST`), and stale
jobs are skipped or dropped by the model's generation counter. Once the edits pause, maps
a fast path wrote are recomputed plainly (:meth:`Explorer.refine`). QtCore/QtGui only.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QRunnable, QThreadPool, QTimer, Signal
from PySide6.QtGui import QUndoStack

from cnn_explorer.engine.errors import ForwardStopped
from cnn_explorer.explorer import edits
from cnn_explorer.explorer.blas import single_blas_thread
from cnn_explorer.explorer.commands import EditCommand
from cnn_explorer.explorer.compare import follow_input
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.model import Change, Explorer
from cnn_explorer.explorer.results import ForwardJob, Results
from cnn_explorer.explorer.specs import LayerSpec

ASYNC_COST = 100_000_000
"""Estimated multiply-adds of the layers still to compute above which a recompute leaves
the GUI thread. Single-threaded BLAS does ~10 M multiply-adds per ms here, so inline work
stays under ~10 ms; handing a job to the pool costs an extra event-loop round trip and
competes with the GUI thread for the cores, which made mid-sized edits slower, not faster."""

REFINE_AFTER_MS = 300
"""After a pause this long, maps a fast path wrote are recomputed with a plain forward."""

REFINE_INLINE_COST = ASYNC_COST // 50
"""Refining is never urgent: above ~0.2 ms of work it runs on the pool, so the GUI thread
never waits for it (inline, a 512² scene of 32 maps blocked it for 30–40 ms)."""

OPEN_INLINE_COST = ASYNC_COST // 50
"""The first forward after a new document or input shape runs inline only below this:
nothing of the last results can be reused, the same event-loop turn already resets the
input grid and rebuilds the map views, and the estimate is at its worst on big maps (a
512² input with 32 filters, ~76 M multiply-adds, took 30–150 ms inline on a shared
machine). Its maps appear when the pool is done; the views say they are computing."""

RESHAPING = ("document", "input_shape")
"""Change kinds after which the published maps have other shapes than the document's."""


class _JobSignals(QObject):
    done = Signal(object, object)  # (ForwardJob, result | None when skipped as stale)


class _JobRunnable(QRunnable):
    """Runs one :class:`ForwardJob` on the pool; a job already stale when its turn comes
    is skipped, and one that becomes stale (a newer edit) or whose document is closing
    stops before its next layer; both report result ``None``."""

    def __init__(self, job: ForwardJob, model: Explorer, closing: Callable[[], bool]) -> None:
        super().__init__()
        self.signals = _JobSignals()
        self.job, self.model, self.closing = job, model, closing
        self.setAutoDelete(True)

    def _stop(self) -> bool:
        return self.job.generation != self.model.generation or self.closing()

    def run(self) -> None:
        result = None if self._stop() else self.job.run(self._stop)
        self.signals.done.emit(self.job, None if isinstance(result, ForwardStopped) else result)


class Document(QObject):
    """The explorer's model with undo, change notification and background recompute."""

    changed = Signal(object)  # Change
    results_ready = Signal(object)  # Results
    busy_changed = Signal(bool)
    compute_failed = Signal(str)
    refused = Signal(str)  # an edit past a limit, and why

    def __init__(self, parent: QObject | None = None, *, async_cost: int = ASYNC_COST) -> None:
        super().__init__(parent)
        self.model = Explorer()
        self.undo_stack = QUndoStack(self)
        self.async_cost = async_cost
        self._busy = False
        self._blas_limit = ExitStack()  # one BLAS thread while jobs run (see _update_busy)
        self._closing = False
        self._reshaped = False  # a RESHAPING change waits for its first recompute
        self._reshape_unpublished = False  # ... or for its results to be published
        self._stroke: edits.Stroke | None = None
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._timer = QTimer(self, singleShot=True, interval=0, timeout=self._recompute)
        self._refine_timer = QTimer(
            self, singleShot=True, interval=REFINE_AFTER_MS, timeout=self._refine
        )
        self.recompute_now()

    # ------------------------------------------------------------------ read access
    input = property(lambda self: self.model.input, doc="The input ``(C, H, W)``.")
    layers = property(lambda self: self.model.layers, doc="The layer specs (read only).")
    statuses = property(lambda self: self.model.statuses, doc="One status per layer.")
    results = property(lambda self: self.model.results, doc="The last published results.")
    selection = property(lambda self: self.model.selection, doc="The selected cell.")
    selected_layer = property(lambda self: self.model.selected_layer)
    selected_filter = property(lambda self: self.model.selected_filter)
    selected_in_channel = property(lambda self: self.model.selected_in_channel)
    selected_input_channel = property(lambda self: self.model.selected_input_channel)

    @property
    def busy(self) -> bool:
        """True while a recompute runs on the pool."""
        return self._busy

    @property
    def computing_maps(self) -> bool:
        """True while the pool computes the maps of a new document or input shape: the
        maps published before have other shapes, so the map views say they are computing
        instead of showing them."""
        return self._busy and self._reshape_unpublished

    @property
    def computed(self) -> bool:
        """True when the published results reflect every edit (fast paths included)."""
        return not (self.model.pending or self.model.jobs_in_flight or self._timer.isActive())

    @property
    def settled(self) -> bool:
        """True when the results reflect every edit and every map is exact."""
        return self.computed and self.model.exact

    # ------------------------------------------------------------------ applying edits
    def apply(self, edit: edits.Edit, undo: bool = False) -> None:
        """Apply (or undo) one edit to the model and announce it; called by commands."""
        change = edit.undo(self.model) if undo else edit.redo(self.model)
        if change is not None:
            self._announce(change)

    def _announce(self, change: Change) -> None:
        if change.kind not in ("selection", "cell") and not self._closing:
            if change.kind in RESHAPING:
                self._reshaped = self._reshape_unpublished = True
            self._timer.start()
        self.changed.emit(change)

    def _do(self, intent: Any, *args: Any, **kwargs: Any) -> None:
        """Build an intent's edits from the model and push them; an edit the explorer
        cannot hold is announced on :attr:`refused` instead (nothing changes)."""
        try:
            steps = intent(self.model, *args, **kwargs)
        except edits.EditRefusedError as exc:
            self.refused.emit(f"Not done: {exc}.")
            return
        self._push(steps)

    def _push(self, steps: list[edits.Edit]) -> None:
        if len(steps) == 1:
            self.undo_stack.push(EditCommand(self, steps[0]))
        elif steps:
            self.undo_stack.beginMacro(steps[0].text)
            for step in steps:
                self.undo_stack.push(EditCommand(self, step))
            self.undo_stack.endMacro()

    def apply_document(self, x: np.ndarray, layers: list[LayerSpec]) -> None:
        """Replace everything without an undo step (opening a project clears the history)."""
        self._announce(self.model.apply_document(x, layers))

    def follow_input(self, other: Document, region: Any = None) -> None:
        """Take ``other``'s input without an undo step: compare mode's B follows every
        input edit of A (``region``: the cells that changed, when known)."""
        change = follow_input(self.model, other.model, region)
        if change is not None:
            self._announce(change)

    # ------------------------------------------------------------------ intents (undoable)
    # Each builds its edits in the Qt-free model (see edits.py) and pushes them.
    def set_input(self, new: np.ndarray, text: str = "Change input", region: Any = None) -> None:
        self._do(edits.set_input, new, text, region)

    def set_cell(self, channel: int, row: int, col: int, value: float) -> None:
        self._do(edits.set_cell, channel, row, col, value)

    def set_block(self, channel: int, row: int, col: int, block: np.ndarray) -> bool:
        """Paste a 2-D ``block`` at ``(row, col)``, clipped to the grid. True if clipped."""
        self._do(edits.set_block, channel, row, col, block)
        _, h, w = self.model.input.shape
        return (min(block.shape[0], h - row), min(block.shape[1], w - col)) != block.shape

    def resize_input(self, rows: int, cols: int) -> None:
        self._do(edits.resize_input, rows, cols)

    def set_channels(self, n: int) -> None:
        self._do(edits.set_channels, n)

    def set_layer(
        self, index: int, spec: LayerSpec, text: str, merge_key: str | None = None
    ) -> None:
        self._do(edits.set_layer, index, spec, text, merge_key)

    def update_config(self, index: int, **changes: Any) -> None:
        self._do(edits.update_config, index, **changes)

    def set_kind(self, index: int, kind: str) -> None:
        self._do(edits.set_kind, index, kind)

    def set_enabled(self, index: int, enabled: bool) -> None:
        self._do(edits.set_enabled, index, enabled)

    def set_kernel(self, index: int, filt: int, in_ch: int, kernel: np.ndarray, text: str) -> None:
        self._do(edits.set_kernel, index, filt, in_ch, kernel, text)

    def set_weight(self, index: int, filt: int, in_ch: int, r: int, c: int, value: float) -> None:
        self._do(edits.set_weight, index, filt, in_ch, r, c, value)

    def set_bias(self, index: int, filt: int, value: float) -> None:
        self._do(edits.set_bias, index, filt, value)

    def set_weights(self, index: int, weight: np.ndarray, text: str) -> None:
        self._do(edits.set_weights, index, weight, text)

    def add_layer(self, spec: LayerSpec, at: int | None = None) -> None:
        self._do(edits.add_layer, spec, at)

    def remove_layer(self, index: int) -> None:
        self._do(edits.remove_layer, index)

    def duplicate_layer(self, index: int) -> None:
        self._do(edits.duplicate_layer, index)

    def move_layer(self, src: int, dst: int) -> None:
        self._do(edits.move_layer, src, dst)

    def new_document(self, x: np.ndarray, layers: list[LayerSpec], text: str) -> None:
        self._do(edits.new_document, x, layers, text)

    # Paint strokes: cells change live, and the whole stroke is one undo step on release.
    def begin_stroke(self) -> None:
        self._stroke = edits.Stroke(self.model.input)

    def paint(self, channel: int, cells: list[tuple[int, int]], value: float) -> None:
        if self._stroke is None:
            self.begin_stroke()
        assert self._stroke is not None
        change = self._stroke.paint(self.model, channel, cells, value)
        if change is not None:
            self._announce(change)

    def end_stroke(self) -> None:
        stroke, self._stroke = self._stroke, None
        step = None if stroke is None else stroke.finish(self.model)
        self._push([step] if step is not None else [])

    # ------------------------------------------------------------------ selection (not undoable)
    def select_layer(self, index: int, filt: int | None = None, in_ch: int | None = None) -> None:
        self._announce(self.model.select_layer(index, filt, in_ch))

    def select_input_channel(self, channel: int) -> None:
        self._announce(self.model.select_input_channel(channel))

    def select_cell(self, sel: Selection | None) -> None:
        self._announce(self.model.select_cell(sel))

    # ------------------------------------------------------------------ recompute
    def recompute_now(self) -> None:
        """Compute synchronously until every map is exact (start-up, screenshots, tests)."""
        self._timer.stop()
        self._reshaped = False
        self.wait_idle()  # a job still running would keep the maps from being refined
        self._run(self.model.recompute)
        self._run(self.model.refine)

    def _recompute(self) -> None:
        if self._closing:
            return
        cost = min(self.async_cost, OPEN_INLINE_COST) if self._reshaped else self.async_cost
        self._reshaped = False
        self._run(lambda: self.model.recompute(cost))

    def _refine(self) -> None:
        if self._closing or not self.model.needs_refine:
            return
        if self.model.pending or self.model.jobs_in_flight or self._timer.isActive():
            self._refine_timer.start()  # still editing: wait for the next pause
            return
        self._run(lambda: self.model.refine(min(self.async_cost, REFINE_INLINE_COST)))

    def _run(self, compute: Any) -> None:
        """Run ``compute`` (a model method) and publish its results or start its job."""
        selected = self.model.selection
        outcome = compute()
        if isinstance(outcome, ForwardJob):
            runnable = _JobRunnable(outcome, self.model, lambda: self._closing)
            runnable.signals.done.connect(self._on_job_done)
            self._update_busy()  # first: the job must start under the BLAS limit
            self._pool.start(runnable)
        elif outcome is not None:
            self._publish(outcome, selected)

    def _on_job_done(self, job: ForwardJob, result: Any) -> None:
        selected = self.model.selection
        results = self.model.finish(job, result)
        self._update_busy()
        if results is not None and not self._closing:
            self._publish(results, selected)

    def _publish(self, results: Results, selected: Selection | None) -> None:
        self._reshape_unpublished = False
        if results.error:
            self.compute_failed.emit(results.error)
        if selected is not None and self.model.selection is None:
            self.changed.emit(Change("cell", -1))  # the selected cell no longer exists
        self.results_ready.emit(results)
        if self.model.needs_refine and not self._closing:
            self._refine_timer.start()

    def _update_busy(self) -> None:
        busy = self.model.jobs_in_flight > 0
        if busy != self._busy:
            self._busy = busy
            # OpenBLAS 0.3.31 ignores a thread limit set on any thread but the main one
            # (measured: a pool job limited only on its own thread ran 2 BLAS threads and,
            # with OPENBLAS_CORETYPE=Haswell, differed from a plain forward), so the GUI
            # thread holds the limit while jobs run.
            if busy:
                self._blas_limit.enter_context(single_blas_thread())
            else:
                self._blas_limit.close()
            self.busy_changed.emit(busy)

    def wait_idle(self, msecs: int = 30_000) -> None:
        """Block until background work is done and its results are published."""
        self._pool.waitForDone(msecs)
        QCoreApplication.sendPostedEvents(self)

    def shutdown(self) -> None:
        """Stop recomputing and wait for a running job (clean close)."""
        self._closing = True
        self._timer.stop()
        self._refine_timer.stop()
        self._pool.clear()
        self._pool.waitForDone(10_000)
