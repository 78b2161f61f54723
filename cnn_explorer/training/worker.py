"""Run training and dataset loading off the GUI thread (QtCore only, no widgets).

The engine's training loop is a plain generator that checks a stop flag every batch and
knows nothing of threads (``cnn_explorer.engine.training``). :class:`TrainingWorker` pumps
such a generator in a background thread and re-emits each yielded record as a Qt signal
*on the GUI thread*, so the window stays responsive and every widget update happens where
Qt wants it.

Why a plain ``threading.Thread`` + a queue drained by a ``QTimer`` (rather than a QThread
emitting signals): the background thread never touches a Qt object. Emitting PySide
signals from a second Python thread while the GUI thread connects/disconnects slots on the
same object crashed (segfault) in testing, and a QThread destroyed while running aborts
the process; a daemon Python thread that only fills a ``queue.Queue`` can do neither.
The timer (20 ms) also batches bursts of tiny records into one event-loop wake-up.

Control is cooperative and thread-safe:

* ``stop()`` sets the flag the generator polls (it returns at the next batch boundary, after
  any epoch summary due before it: see :data:`STOP_GRACE`) and wakes a paused pump;
  ``shutdown()`` = stop + join + deliver the last signals, for the window's close event.
* ``pause()``/``resume()`` park the pump between two records; ``step()`` lets exactly one
  more batch through while paused (start a paused run with ``start(..., paused=True)``).
* ``set_lr(x)`` is stored under a lock and applied *by the worker thread* between two
  batches, so the optimizer is never mutated mid-update.
* ``start()`` while a run is alive is refused with a message (signal ``refused``).

:class:`DatasetLoader` does the same for
:func:`~cnn_explorer.training.data.load_dataset` (image folders with progress and cancel,
and the built-in set).
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

StopFlag = Callable[[], bool]
GeneratorFactory = Callable[[StopFlag], Generator[Any, None, None]]
POLL_MS = 20
STOP_GRACE = 3
"""Records a generator may still yield after the stop flag is set before it is cut off.

The engine checks the flag before each *batch*; summary records between two batches (an
epoch end) come without a check. So after a stop the worker keeps pulling until the
generator says goodbye (a record with a stop reason) or ends: cutting it after the epoch
summary would lose the "stopped" record, and the run would look finished instead of stopped.
A generator that yields a batch record after the flag was set ignores it and is cut there;
one that yields summaries forever is cut after this many."""


def record_kind(record: Any) -> str:
    """``record.kind`` or ``record["kind"]`` (``"batch"``, ``"epoch"``, ...), else ``""``."""
    if isinstance(record, dict):
        return str(record.get("kind", ""))
    return str(getattr(record, "kind", ""))


def _stop_reason(record: Any) -> str:
    if isinstance(record, dict):
        return str(record.get("stop_reason") or "")
    return str(getattr(record, "stop_reason", "") or "")


class _Mailbox(QObject):
    """A background thread posts ``(kind, payload)``; a GUI-thread timer hands them to
    ``deliver``. Only the GUI thread touches Qt.

    The queue is bounded: a thread producing records faster than the GUI can show them
    waits (back-pressure) instead of filling memory, and each timer tick delivers for at
    most ``BUDGET_S`` so the window keeps handling input.
    """

    MAXSIZE = 512
    BUDGET_S = 0.010

    def __init__(self, deliver: Callable[[str, Any], None], parent: QObject | None) -> None:
        super().__init__(parent)
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(self.MAXSIZE)
        self._deliver = deliver
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.drain)

    def post(self, kind: str, payload: Any) -> None:
        """Worker thread: enqueue, waiting while the queue is full."""
        self.queue.put((kind, payload))

    def drain(self, budget_s: float | None = None) -> None:
        """GUI thread: deliver queued messages for at most ``budget_s`` seconds."""
        end = time.monotonic() + (self.BUDGET_S if budget_s is None else budget_s)
        while time.monotonic() < end:
            try:
                kind, payload = self.queue.get_nowait()
            except queue.Empty:
                return
            self._deliver(kind, payload)

    def join(self, thread: threading.Thread | None, timeout_s: float) -> bool:
        """GUI thread: wait for ``thread`` while delivering what it posts (so a full queue
        cannot deadlock it), then deliver the rest. True if the thread ended in time."""
        end = time.monotonic() + timeout_s
        while thread is not None and thread.is_alive() and time.monotonic() < end:
            self.drain(0.005)
            thread.join(0.005)
        if thread is not None and thread.is_alive():
            return False
        self.drain(float("inf"))
        self.timer.stop()
        return True


class TrainingWorker(QObject):
    """Pumps a training generator in a thread. All signals are emitted on the GUI thread.

    ``finished(reason)``: ``"completed"`` (generator exhausted), ``"stopped"`` (stop flag),
    or the last record's ``stop_reason`` (e.g. ``"nonfinite"`` for a NaN loss).
    ``failed(message)``: the generator raised; the message is one line, the traceback goes
    to stderr.
    """

    progress = Signal(object)
    epoch_finished = Signal(object)
    finished = Signal(str)
    failed = Signal(str)
    refused = Signal(str)
    state_changed = Signal(str)

    IDLE, RUNNING, PAUSED, STOPPING = "idle", "running", "paused", "stopping"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._paused = False
        self._steps = 0
        self._pending: dict[str, Any] = {}
        self._optimizer: Any = None
        self._thread: threading.Thread | None = None
        self._mail = _Mailbox(self._deliver, self)
        self._state = self.IDLE
        self._busy = False
        self.records = 0

    # -- queries -------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    def is_running(self) -> bool:
        """True from ``start`` until ``finished``/``failed`` was emitted (paused included)."""
        return self._busy

    # -- control (GUI thread) ------------------------------------------------------------
    def start(self, factory: GeneratorFactory, optimizer: Any = None, paused: bool = False) -> bool:
        """Run ``factory(stop_flag)`` in a new thread; refuse (False + ``refused``) if busy.

        ``optimizer`` (anything with an ``lr`` attribute) receives ``set_lr`` changes.
        """
        if self._busy:
            self.refused.emit("Training is already running: stop it before starting again.")
            return False
        self._stop.clear()
        with self._cond:
            self._paused = paused
            self._steps = 0
            self._pending.clear()
        self._optimizer = optimizer
        self.records = 0
        self._busy = True
        self._thread = threading.Thread(
            target=self._pump, args=(factory,), name="cnn-explorer-training", daemon=True
        )
        self._set_state(self.PAUSED if paused else self.RUNNING)
        self._thread.start()
        self._mail.timer.start()
        return True

    def pause(self) -> None:
        with self._cond:
            if self._busy and not self._stop.is_set():
                self._paused = True
        if self._busy and not self._stop.is_set():
            self._set_state(self.PAUSED)

    def resume(self) -> None:
        with self._cond:
            if self._busy and not self._stop.is_set():
                self._paused = False
                self._cond.notify_all()
        if self._busy and not self._stop.is_set():
            self._set_state(self.RUNNING)

    def step(self) -> None:
        """While paused: let one more batch through."""
        with self._cond:
            if self._paused:
                self._steps += 1
                self._cond.notify_all()

    def stop(self) -> None:
        """Ask the generator to stop at the next batch boundary (returns immediately)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._busy:
            self._set_state(self.STOPPING)

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop, wait for the thread, deliver its last signals. True if it ended in time."""
        self.stop()
        return self._mail.join(self._thread, timeout_ms / 1000)

    def set_lr(self, lr: float) -> None:
        """Change the learning rate from the next batch on (applied by the worker thread)."""
        with self._cond:
            self._pending["lr"] = float(lr)

    # -- GUI thread: deliver what the thread posted -----------------------------------
    def _deliver(self, kind: str, payload: Any) -> None:
        if kind == "record":
            self.progress.emit(payload)
            if record_kind(payload) == "epoch":
                self.epoch_finished.emit(payload)
            return
        self._busy = False
        self._mail.timer.stop()
        self._set_state(self.IDLE)
        if kind == "finished":
            self.finished.emit(payload)
        else:
            self.failed.emit(payload)

    # -- worker thread (no Qt here) --------------------------------------------------------
    def _pump(self, factory: GeneratorFactory) -> None:
        post = self._mail.post
        reason = "completed"
        try:
            gen = factory(self._stop.is_set)
            after_stop = 0  # records pulled after the stop flag was set
            while True:
                self._wait_turn()
                stopping = self._stop.is_set()
                if stopping and after_stop >= STOP_GRACE:
                    reason = "stopped"  # the generator ignores the flag: cut it off
                    break
                self._apply_pending()
                try:
                    record = next(gen)
                except StopIteration:
                    break
                self.records += 1
                self._spend_step(record)
                post("record", record)
                reason = _stop_reason(record) or reason
                if stopping:
                    after_stop += 1
                    if _stop_reason(record) or record_kind(record) in ("batch", ""):
                        break  # said goodbye, or trained a batch despite the flag
            gen.close()
            if self._stop.is_set() and reason == "completed":
                reason = "stopped"
        except Exception as exc:  # report any engine error instead of killing the thread
            traceback.print_exc()
            post("failed", f"{type(exc).__name__}: {exc}".splitlines()[0])
            return
        post("finished", reason)

    def _wait_turn(self) -> None:
        """Block while paused, until a step is granted or stop is requested."""
        with self._cond:
            while self._paused and self._steps == 0 and not self._stop.is_set():
                self._cond.wait()

    def _spend_step(self, record: Any) -> None:
        """A granted step is used up by the next *batch* record (epoch summaries are free)."""
        with self._cond:
            if self._paused and self._steps > 0 and record_kind(record) in ("batch", ""):
                self._steps -= 1

    def _apply_pending(self) -> None:
        with self._cond:
            pending, self._pending = self._pending, {}
        if "lr" in pending and self._optimizer is not None:
            self._optimizer.lr = pending["lr"]

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)


class DatasetLoader(QObject):
    """Load a dataset in a thread with :func:`~cnn_explorer.training.data.load_dataset`:
    ``progress(done, total)``, ``loaded(data, summary text)``, ``failed(message)``,
    ``cancelled()`` — all emitted on the GUI thread."""

    progress = Signal(int, int)
    loaded = Signal(object, object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._mail = _Mailbox(self._deliver, self)
        self._busy = False

    def is_running(self) -> bool:
        return self._busy

    def load(
        self,
        spec: str,
        image_size: int | None = None,
        channels: int | None = 1,
        memory_limit: int | None = None,
    ) -> bool:
        """Start loading ``spec`` (a folder path or ``builtin:shapes``); False if busy."""
        if self._busy:
            self.failed.emit("A dataset is already loading: cancel it first.")
            return False
        self._cancel.clear()
        self._busy = True
        self._thread = threading.Thread(
            target=self._run,
            args=(spec, image_size, channels, memory_limit),
            name="cnn-explorer-dataset",
            daemon=True,
        )
        self._thread.start()
        self._mail.timer.start()
        return True

    def cancel(self) -> None:
        self._cancel.set()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        self.cancel()
        return self._mail.join(self._thread, timeout_ms / 1000)

    def _deliver(self, kind: str, payload: Any) -> None:
        if kind == "progress":
            self.progress.emit(*payload)
            return
        self._busy = False
        self._mail.timer.stop()
        if kind == "loaded":
            self.loaded.emit(*payload)
        elif kind == "failed":
            self.failed.emit(payload)
        else:
            self.cancelled.emit()

    def _run(
        self, spec: str, image_size: int | None, channels: int | None, memory_limit: int | None
    ) -> None:
        from cnn_explorer.training.data import DataError, LoadCancelled, load_dataset

        post = self._mail.post
        try:
            data, summary = load_dataset(
                spec,
                image_size,
                channels,
                memory_limit=memory_limit,
                progress=lambda done, total: post("progress", (done, total)),
                cancel=self._cancel.is_set,
            )
        except LoadCancelled:
            post("cancelled", None)
        except DataError as exc:
            post("failed", str(exc))
        except Exception as exc:  # never lose the thread silently
            traceback.print_exc()
            post("failed", f"{type(exc).__name__}: {exc}".splitlines()[0])
        else:
            if self._cancel.is_set():
                post("cancelled", None)
            else:
                post("loaded", (data, summary))
