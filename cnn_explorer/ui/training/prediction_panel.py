"""Try the trained network on one image: predicted class, probabilities, feature maps.

The image comes from the validation set (a spin box) or a file. The panel never touches the
network being trained: it is given a *copy* taken at the end of an epoch (layers keep the
last forward's context, so two threads must not share one network). Classifying and ranking
are :func:`cnn_explorer.training.prediction.predict`'s; the panel draws the result.

A small network classifies on the spot. A forward pass estimated above the explorer's
:data:`~cnn_explorer.explorer.document.ASYNC_COST` (a fine-tuned ResNet at 224×224 takes
about half a second) runs on a one-thread pool, on the pool's own copy of the network,
while a busy bar shows; a newer image (or network) supersedes it: the running forward
stops at its next layer and its result is dropped, and closing the window stops it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.engine.errors import ForwardStopped
from cnn_explorer.explorer.document import ASYNC_COST
from cnn_explorer.training.prediction import Prediction, forward_cost, predict
from cnn_explorer.ui.common.colors import image_rgba
from cnn_explorer.ui.common.messages import IMAGE_FILTER
from cnn_explorer.ui.training.prediction_view import PredictionView

MAP_CMAP = "viridis"


def tile_maps(maps: np.ndarray, gap: int = 1) -> np.ndarray:
    """``(C, H, W)`` -> one ``(rows·(H+gap)−gap, cols·(W+gap)−gap)`` mosaic, NaN gaps, with
    ``cols = ⌈√C⌉`` so a layer's channels form a near-square grid."""
    c, h, w = maps.shape
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, np.float32)
    for k in range(c):
        r, q = divmod(k, cols)
        out[r * (h + gap) : r * (h + gap) + h, q * (w + gap) : q * (w + gap) + w] = maps[k]
    return out


def mosaic_rgba(values: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Sequential colours (``lut``: a colour map's ``(256, 4)`` uint8 lookup table) over
    the finite range of ``values``; NaN gaps light grey."""
    finite = np.isfinite(values)
    lo = float(values[finite].min()) if finite.any() else 0.0
    hi = float(values[finite].max()) if finite.any() else 1.0
    with np.errstate(invalid="ignore"):
        t = np.clip((np.nan_to_num(values, nan=lo) - lo) / max(hi - lo, 1e-12), 0, 1)
    rgba = lut[np.round(t * 255).astype(np.intp)]
    rgba[~finite] = (236, 236, 236, 255)
    return np.ascontiguousarray(rgba, dtype=np.uint8)


def feature_layers(layers: list[Any]) -> list[int]:
    """Indices whose output is worth showing: each conv's output after its activation
    (the conv itself when no activation follows)."""
    picks = []
    for i, layer in enumerate(layers):
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if (layer.kind == "conv" and (nxt is None or nxt.kind != "activation")) or (
            layer.kind == "activation" and i > 0 and layers[i - 1].kind == "conv"
        ):
            picks.append(i)
    return picks


def filter_map(layers: list[Any], conv: int) -> int | None:
    """The index (among ``layers``) of the shown map that filter outputs of the ``conv``-th
    conv layer (0 = first) land in: the conv's activation, or the conv itself when none
    follows (see :func:`feature_layers`); None when there is no such conv layer."""
    convs = [i for i, layer in enumerate(layers) if layer.kind == "conv"]
    if not 0 <= conv < len(convs):
        return None
    i = convs[conv]
    return i + 1 if i + 1 in feature_layers(layers) else i


@dataclass(frozen=True)
class Tile:
    """One picture of the panel: its caption, colours ``(h, w, 4)`` uint8, the ``(C, H, W)``
    maps a mosaic tiles (for the outline) and the channel outlined in it."""

    label: str
    rgba: np.ndarray
    shape: tuple[int, ...]
    outline: int | None = None
    colour: str = "#222"


@dataclass(frozen=True)
class Drawing:
    """Everything the panel draws for one prediction, as arrays: the input, one mosaic per
    :func:`feature_layers` map (and the selected filter's map enlarged after its mosaic).
    NumPy only, so a big network's drawing is made on the pool too."""

    prediction: Prediction
    image: np.ndarray
    tiles: tuple[Tile, ...]
    selected_map: np.ndarray | None

    def layout(self) -> tuple[object, ...]:
        """What decides the plot items (equal layouts only swap the pictures in)."""
        tiles = tuple((t.label, t.rgba.shape, t.shape, t.outline) for t in self.tiles)
        return tiles, self.image.shape, len(self.prediction.probabilities)


def make_drawing(
    layers: list[Any],
    image: np.ndarray,
    prediction: Prediction,
    selection: tuple[int, int] | None,
    lut: np.ndarray,
) -> Drawing:
    """The :class:`Drawing` of ``prediction`` of ``image (C, H, W)`` by a network with
    ``layers``; ``selection`` is ``(conv, channel)`` of the filter to outline and enlarge."""
    maps = prediction.maps
    picked = None
    if selection is not None:
        index = filter_map(layers, selection[0])
        if index is not None and 0 <= selection[1] < maps[index + 1].shape[1]:
            picked = (index, selection[1])
    tiles: list[Tile] = []
    selected_map = None
    for i in feature_layers(layers):
        out = maps[i + 1][0]
        channel = picked[1] if picked is not None and picked[0] == i else None
        label = f"layer {i + 1}: {out.shape[0]}×{out.shape[1]}×{out.shape[2]}"
        tiles.append(Tile(label, mosaic_rgba(tile_maps(out), lut), out.shape, channel))
        if channel is not None:
            selected_map = np.array(out[channel])
            label = f"filter {channel} (layer {i + 1})"
            rgba = mosaic_rgba(selected_map, lut)
            tiles.append(Tile(label, rgba, selected_map.shape, None, "#ff7f0e"))
    return Drawing(prediction, image_rgba(image), tuple(tiles), selected_map)


class _PoolCopy:
    """The pool's own copy of the panel's network, made on the pool's (only) thread the
    first time a job needs it: the GUI thread may run the panel's network meanwhile."""

    def __init__(self) -> None:
        self.source: Any = None
        self.copy: Any = None

    def of(self, network: Any) -> Any:
        if self.source is not network:
            self.source, self.copy = network, network.copy()
        return self.copy


DrawFn = Callable[[Any, Callable[[], bool] | None], Drawing]
"""``draw(network, stop)``: predict with ``network`` and make the :class:`Drawing`."""


class _Signals(QObject):
    done = Signal(object, object)  # (generation, Drawing | Exception)


class _PredictJob(QRunnable):
    def __init__(self, generation: int, network: Any, pool: _PoolCopy, draw: DrawFn) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.generation, self.network, self.pool, self.draw = generation, network, pool, draw
        self.signals = _Signals()
        self.stopped = threading.Event()
        """Set on the GUI thread when a newer image or network made this job stale."""

    def run(self) -> None:
        try:
            result: object = self.draw(self.pool.of(self.network), self.stopped.is_set)
        except Exception as exc:  # said in the panel; the window stays up
            result = exc
        self.signals.done.emit(self.generation, result)


class PredictionPanel(QWidget):
    """Pick an image, see the prediction and every conv layer's feature maps.

    :meth:`select_filter` marks one filter's channel: its tile is outlined in its layer's
    mosaic and drawn enlarged beside them (``selected_map``), for every image shown next.

    ``open_in_explorer_requested`` is emitted with the current ``(C, H, W)`` image; the
    training tab turns it into ``open_in_explorer(network_layers, image)``.
    """

    open_in_explorer_requested = Signal(object)
    busy_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.async_cost = ASYNC_COST
        """Estimated multiply-adds above which an image is classified on the pool."""
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._pool_copy = _PoolCopy()
        self._jobs: set[_PredictJob] = set()
        self._generation = 0  # goes up with every image and network: older results drop
        self.network: Any = None
        self.class_names: list[str] = []
        self.images = np.zeros((0, 1, 1, 1), np.float32)
        self.labels = np.zeros(0, np.int64)
        self.image: np.ndarray | None = None
        self.caption = ""
        self.probabilities = np.zeros(0)
        self.selection: tuple[int, int] | None = None
        self.selected_map: np.ndarray | None = None
        self._file_loader: Any = None
        self._lut = pg.colormap.get(MAP_CMAP).getLookupTable(0.0, 1.0, 256, alpha=True)

        self.index = QSpinBox()
        self.index.setPrefix("validation image #")
        self.index.valueChanged.connect(self._show_index)
        self.from_file = QPushButton("From file…")
        self.from_file.clicked.connect(self._choose_file)
        self.to_explorer = QPushButton("Open in explorer")
        self.to_explorer.setToolTip("Load the trained network and this image into the explorer")
        self.to_explorer.clicked.connect(self._request_explorer)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setVisible(False)
        self.busy.setToolTip("Classifying the image…")
        self.result = QLabel("Train (or load) a network to try it on an image.")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.view = PredictionView()
        self.view.finished.connect(self._busy_changed)
        top = QHBoxLayout()
        for w in (self.index, self.from_file, self.to_explorer):
            top.addWidget(w)
        top.addStretch(1)
        top.addWidget(self.busy)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.result)
        # A deep network's columns (a ResNet has twenty-odd) do not fit the panel's width:
        # the view asks for the width its captions need and scrolls sideways, instead of
        # clipping the last maps and the probability bars.
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.view)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout.addWidget(self.scroll, 1)
        self._set_enabled(False)

    # -- inputs ---------------------------------------------------------------------------
    def set_file_loader(self, loader: Any) -> None:
        """``loader(path) -> (C, H, W)`` array at the network's input size (or raises)."""
        self._file_loader = loader

    def set_network(self, network: Any, class_names: list[str]) -> None:
        self._supersede()
        self.network = network
        self.class_names = list(class_names)
        self._set_enabled(network is not None)
        if self.image is not None:
            self.show_image(self.image, self.caption)
        elif len(self.images):
            self._show_index(self.index.value())

    def set_images(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels
        self.index.blockSignals(True)
        self.index.setRange(0, max(len(images) - 1, 0))
        self.index.setValue(0)
        self.index.blockSignals(False)
        self.image = None
        if len(images):
            self._show_index(0)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.index, self.from_file, self.to_explorer):
            w.setEnabled(on)

    def _show_index(self, i: int) -> None:
        if 0 <= i < len(self.images):
            truth = self.class_names[self.labels[i]] if self.class_names else "?"
            self.show_image(self.images[i], f"validation image #{i} (true class: {truth})")

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Image to classify", "", IMAGE_FILTER)
        if path:
            self.load_file(path)

    def load_file(self, path: str) -> None:
        try:
            image = self._file_loader(path)
        except (ValueError, OSError) as exc:
            self.result.setText(f"Could not use that file: {exc}")
            return
        self.show_image(image, path.replace("\\", "/").rsplit("/", 1)[-1])

    def _request_explorer(self) -> None:
        if self.image is not None:
            self.open_in_explorer_requested.emit(self.image.copy())

    def select_filter(self, conv: int, channel: int) -> None:
        """Show the maps of filter ``channel`` of the ``conv``-th conv layer (0 = first) for
        the current image (and the next ones); says what to do when there is no image."""
        self.selection = (conv, channel)
        if self.network is not None and self.image is not None:
            self.show_image(self.image, self.caption)
        else:
            self.selected_map = None
            todo = (
                "train (or load) a network and pick an image"
                if self.network is None
                else "pick an image (Load the dataset for its validation images, or From file…)"
            )
            self.result.setText(
                f"Filter {channel} of conv layer {conv + 1} is selected: {todo} to see its maps."
            )

    # -- output ---------------------------------------------------------------------------
    def show_image(self, image: np.ndarray, caption: str = "") -> None:
        """Classify ``image (C, H, W)`` with the current network copy and draw everything:
        at once for a small network, else when the pool has classified it (:attr:`is_busy`
        meanwhile; ShapeError at once when the image does not fit the network)."""
        self._supersede()
        self.image = np.asarray(image, np.float32)
        self.caption = caption
        if self.network is None:
            return
        image, selection, lut = self.image, self.selection, self._lut

        def draw(network: Any, stop: Callable[[], bool] | None = None) -> Drawing:
            result = predict(network, image, stop)
            return make_drawing(list(network.layers), image, result, selection, lut)

        if forward_cost(self.network, self.image.shape) <= self.async_cost:
            self._show(draw(self.network))
            return
        job = _PredictJob(self._generation, self.network, self._pool_copy, draw)
        job.signals.done.connect(
            lambda generation, result, j=job: self._done(j, generation, result)
        )
        self._jobs.add(job)
        self._busy_changed()
        self.result.setText(f"{caption + ': ' if caption else ''}classifying…")
        self._pool.start(job)

    @property
    def is_busy(self) -> bool:
        """True while an image is being classified on the pool, or the plot items of a
        new layout are being made (a few per event-loop turn)."""
        return bool(self._jobs) or self.view.is_building

    def _busy_changed(self) -> None:
        """Show the busy bar (and say so) when :attr:`is_busy` changed."""
        if self.busy.isHidden() == self.is_busy:
            self.busy.setVisible(self.is_busy)
            self.busy_changed.emit(self.is_busy)

    def _supersede(self) -> None:
        """A newer image or network: results on their way are stale (dropped when they
        arrive) and their forward passes are asked to stop at the next layer."""
        self._generation += 1
        for job in self._jobs:
            job.stopped.set()

    def _done(self, job: _PredictJob, generation: int, result: object) -> None:
        self._jobs.discard(job)
        self._busy_changed()
        if generation != self._generation or isinstance(result, ForwardStopped):
            return  # a newer image or network is on its way (or shown)
        if isinstance(result, Exception):
            self.result.setText(f"Could not classify this image: {result}")
            return
        assert isinstance(result, Drawing)
        self._show(result)

    def wait(self, msecs: int = 60_000) -> None:
        """Let a running classification finish and show its result, every plot item made
        (tests, scripts)."""
        from PySide6.QtCore import QCoreApplication

        self._pool.waitForDone(msecs)
        QCoreApplication.processEvents()
        self.view.finish()

    def shutdown(self, msecs: int = 10_000) -> bool:
        """Stop the classification (at its next layer) and wait for it (window close)."""
        self._supersede()
        self._pool.clear()  # queued jobs never start
        done = self._pool.waitForDone(msecs)
        self._jobs.clear()
        self.view.stop()
        self.busy.setVisible(False)
        return done

    def _show(self, drawing: Drawing) -> None:
        """Show ``drawing``, made for :attr:`image` by :attr:`network`."""
        result = drawing.prediction
        self.probabilities = result.probabilities
        self.selected_map = drawing.selected_map
        text = result.text(self.class_names, self.caption)
        self.view.show_drawing(drawing, self.class_names)
        self._busy_changed()
        if self.selected_map is not None and self.selection is not None:
            conv, channel = self.selection
            where = f"filter {channel} of conv layer {conv + 1}"
            text = f"{text.rstrip('.')}. Outlined in orange: {where}."
        self.result.setText(text)
