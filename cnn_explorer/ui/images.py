"""Loading an image file as the explorer's input: ask its size, decode it (big sources on
a worker thread), and hand it to the document as one undoable edit.

A bad file is reported through the reporter and the input stays as it was.
"""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from cnn_explorer import imageio
from cnn_explorer.explorer.document import Document
from cnn_explorer.ui.common.messages import IMAGE_FILTER, ImageOptions, Reporter

ASYNC_IMAGE_PIXELS = 2_000_000
"""Decode images with more source pixels than this off the GUI thread (and show no preview
in the size dialog: the preview decodes on the GUI thread)."""
PREVIEW_SIDE = 192
"""Longer side of the picture the size dialog previews."""


class _ImageJobSignals(QObject):
    done = Signal(object, object)  # (path, array | ImageLoadError)


class _ImageJob(QRunnable):
    def __init__(self, path: str, opts: ImageOptions) -> None:
        super().__init__()
        self.path, self.opts = path, opts
        self.signals = _ImageJobSignals()

    def run(self) -> None:
        try:
            result: object = imageio.load_image(
                self.path, (self.opts.rows, self.opts.cols), self.opts.channels
            )
        except Exception as exc:
            result = exc
        self.signals.done.emit(self.path, result)


class ImageLoader(QObject):
    """Turns image files into the document's input."""

    loaded = Signal(str)  # the path, after an image became the input (or "" on failure)
    status = Signal(str, bool)  # (text, is_error) for the status bar
    busy_changed = Signal(bool)  # True while a big image decodes on the worker thread

    def __init__(self, doc: Document, reporter: Reporter, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.reporter = reporter
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._jobs: set[_ImageJob] = set()

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def open_dialog(self) -> None:
        path = self.reporter.open_path("Open image", f"{IMAGE_FILTER};;All files (*)")
        if path:
            self.load(path)

    def load(self, path: str, options: ImageOptions | None = None) -> bool:
        """Load an image as the input. Returns False on an immediate error (reported).

        Without ``options`` the reporter asks for the grid size. Big sources decode on a
        worker thread; :attr:`loaded` fires when done.
        """
        if os.path.isdir(path):
            return self._failed(f"{os.path.basename(path)} is a folder, not an image file.")
        try:
            w, h = imageio.image_size(path)
        except imageio.ImageLoadError as exc:
            return self._failed(str(exc))
        if options is None:
            options = self.reporter.image_options(
                w, h, self.default_options(path, w, h), self._preview(path, w, h)
            )
            if options is None:
                return False
        if w * h > imageio.MAX_SOURCE_PIXELS:
            return self._failed(
                f"{os.path.basename(path)} is {w}×{h} pixels — too large to open "
                f"(limit {imageio.MAX_SOURCE_PIXELS // 1_000_000} megapixels)."
            )
        if w * h <= ASYNC_IMAGE_PIXELS:
            try:
                arr = imageio.load_image(path, (options.rows, options.cols), options.channels)
            except imageio.ImageLoadError as exc:
                return self._failed(str(exc))
            self._ready(path, arr)
            return True
        job = _ImageJob(path, options)
        job.signals.done.connect(lambda p, r, j=job: self._job_done(j, p, r))
        self._jobs.add(job)
        self.busy_changed.emit(True)
        self.status.emit(f"Decoding {os.path.basename(path)} ({w}×{h})…", False)
        self._pool.start(job)
        return True

    def default_options(self, path: str, w: int, h: int) -> ImageOptions:
        """The size an image is offered at: its aspect ratio kept, the longer side
        ``imageio.DEFAULT_SIDE`` (smaller pictures keep their size); RGB for a colour
        file, grey for a grey one (the input's channel count when the header does not say).
        """
        rows, cols = imageio.aspect_size(h, w)
        return ImageOptions(rows, cols, self.channels_for(path))

    def channels_for(self, path: str) -> int:
        """3 for a colour file, 1 for a grey one, else the input's channel count."""
        try:
            return imageio.source_channels(path) or self.doc.input.shape[0]
        except imageio.ImageLoadError:
            return int(self.doc.input.shape[0])

    def _preview(self, path: str, w: int, h: int) -> np.ndarray | None:
        """The picture small, ``(3, H, W)`` in [0, 1], for the size dialog (None if big)."""
        if w * h > ASYNC_IMAGE_PIXELS:
            return None
        try:
            return imageio.load_image(path, imageio.aspect_size(h, w, PREVIEW_SIDE), 3)
        except imageio.ImageLoadError:
            return None

    def wait(self, msecs: int) -> None:
        """Let a running decode finish (screenshots, closing)."""
        self._pool.waitForDone(msecs)

    def shutdown(self, msecs: int = 10_000) -> None:
        self._pool.clear()
        self._pool.waitForDone(msecs)

    def _job_done(self, job: _ImageJob, path: str, result: object) -> None:
        self._jobs.discard(job)
        self.busy_changed.emit(self.busy)
        if isinstance(result, Exception):
            self._failed(str(result))
        else:
            self._ready(path, result)  # type: ignore[arg-type]

    def _ready(self, path: str, arr: np.ndarray) -> None:
        self.doc.set_input(arr, f"Load image {os.path.basename(path)}")
        shape = f"{arr.shape[1]}×{arr.shape[2]}×{arr.shape[0]}"
        self.status.emit(f"Loaded {os.path.basename(path)} as {shape}", False)
        self.loaded.emit(path)

    def _failed(self, text: str) -> bool:
        self.reporter.error("Cannot load image", text + "\nThe current input is unchanged.")
        self.status.emit(text, True)
        self.loaded.emit("")
        return False
