"""File ▸ Export network: the trained network (Training tab) as ONNX or as PyTorch code plus
safetensors weights, with its preprocessing and class names.

Why a worker thread: an export translates every node and checks the result (ONNX's full
check, the safetensors header), which takes seconds for a ResNet-sized network. The job
gets its own copy of the network and runs in a plain Python thread that touches no Qt
object (see :mod:`cnn_explorer.training.worker` for why); a GUI-thread timer collects the
result. The files are written by :func:`~cnn_explorer.interchange.onnx_export.save_onnx` /
:func:`~cnn_explorer.interchange.torch_export.save_torch`, each file atomically (a failed
export never leaves half a file in place of an older one), and any failure is reported in
one sentence.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from cnn_explorer.engine.archive import FileFormatError
from cnn_explorer.interchange.export_common import ExportError
from cnn_explorer.interchange.model import ModelFileError, Preprocessing
from cnn_explorer.ui.common.messages import Reporter

FORMATS = {
    "onnx": ("ONNX", "ONNX model (*.onnx)", "model.onnx"),
    "torch": ("PyTorch", "PyTorch code + safetensors weights (*.py)", "model.py"),
}
"""Export format → (name, file filter, suggested file name)."""

POLL_MS = 40


@dataclass(frozen=True)
class ExportSource:
    """What an export writes: ``network`` (a copy the job owns: a Network or a Graph), the
    ``(C, H, W)`` it reads and its preprocessing record (class names included)."""

    network: Any
    input_shape: tuple[int, int, int]
    preprocessing: dict[str, Any]


def write_export(fmt: str, path: str, source: ExportSource) -> list[str]:
    """Write ``source`` as ``fmt`` (``"onnx"`` or ``"torch"``) to ``path``; the files
    written. Raises ExportError/ModelFileError/OSError with a sentence. Any thread."""
    prep = Preprocessing.from_dict(source.preprocessing)
    names = list(prep.class_names)
    if fmt == "onnx":
        from cnn_explorer.interchange.onnx_export import save_onnx

        save_onnx(path, source.network, source.input_shape, preprocessing=prep, class_names=names)
        return [path]
    from cnn_explorer.interchange.torch_export import save_torch

    written = save_torch(
        path, source.network, source.input_shape, preprocessing=prep, class_names=names
    )
    return [str(p) for p in written]


class NetworkExporter(QObject):
    """Asks where, exports in a thread, reports. ``source()`` returns what to export (None
    when there is no trained network yet). Signals, on the GUI thread: ``finished(paths)``
    and ``status(text, is_error)``."""

    finished = Signal(object)  # list[str] of the files written ([] on failure)
    status = Signal(str, bool)

    def __init__(
        self,
        reporter: Reporter,
        source: Callable[[], ExportSource | None],
        parent: QObject | None = None,
        *,
        what: str = "network",
        nothing: str | None = None,
    ) -> None:
        """``what`` names the thing exported in titles and messages ("network", "model");
        ``nothing`` is the message when ``source()`` has nothing to export."""
        super().__init__(parent)
        self.reporter = reporter
        self._source = source
        self.what = what
        self.nothing = NOTHING if nothing is None else nothing
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnn-export")
        self._job: tuple[Future[list[str]], str] | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)

    @property
    def busy(self) -> bool:
        return self._job is not None

    def export_dialog(self, fmt: str) -> bool:
        """Ask for a file name, then export (False when cancelled or refused)."""
        name, filters, suggested = FORMATS[fmt]
        if self._source() is None:
            return self._refuse(f"No {self.what} to export as {name}", self.nothing)
        path = self.reporter.save_path(f"Export {self.what} as {name}", filters, suggested)
        return path is not None and self.export_to(path, fmt)

    def export_to(self, path: str, fmt: str) -> bool:
        """Export the source's network to ``path`` as ``fmt`` in the background; False (and
        a message) when it cannot start."""
        name = FORMATS[fmt][0]
        if self.busy:
            return self._refuse("Export busy", "An export is still being written: wait for it.")
        try:
            source = self._source()
        except ValueError as exc:
            return self._refuse(f"Cannot export as {name}", str(exc))
        if source is None:
            return self._refuse(f"No {self.what} to export as {name}", self.nothing)
        suffix = ".onnx" if fmt == "onnx" else ".py"
        if not path.lower().endswith(suffix):
            path += suffix
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            return self._refuse(f"Cannot export as {name}", f"The folder of {path} does not exist.")
        future = self._pool.submit(write_export, fmt, path, source)
        self._job = (future, path)
        self._timer.start()
        self.status.emit(f"Exporting the {self.what} as {name} to {Path(path).name}…", False)
        return True

    def wait(self, msecs: int = 60_000) -> None:
        """Block until the running export is written and reported (tests, closing)."""
        if self._job is not None:
            self._job[0].exception(msecs / 1000)
            self._poll()

    def shutdown(self) -> None:
        self.wait()
        self._pool.shutdown(wait=True)

    def _poll(self) -> None:
        if self._job is None or not self._job[0].done():
            return
        future, path = self._job
        self._job = None
        self._timer.stop()
        exc = future.exception()
        if exc is None:
            written = future.result()
            self.status.emit("Exported " + ", ".join(Path(p).name for p in written), False)
            self.finished.emit(written)
            return
        if isinstance(exc, ExportError | ModelFileError | FileFormatError | OSError):
            text = str(exc)
        else:  # a translator bug must not take the window down
            text = f"{type(exc).__name__}: {exc}"
        self.reporter.error("Export failed", f"Could not export to {Path(path).name}: {text}")
        self.status.emit(f"Export failed: {text}", True)
        self.finished.emit([])

    def _refuse(self, title: str, text: str) -> bool:
        self.reporter.error(title, text)
        self.status.emit(text, True)
        return False


NOTHING = "Train a network (or load one, or open a model in training) in the Training tab first."


__all__ = ["FORMATS", "ExportSource", "NetworkExporter", "write_export"]
