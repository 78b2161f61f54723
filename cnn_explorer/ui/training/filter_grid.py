"""Every learned filter of every conv layer, with a slider back through the epochs.

Why one mosaic image per layer (rather than one plot per filter): a 16×8 layer has 128
kernels; 128 view boxes would be slow and cramped, while one ``ImageItem`` per layer draws
them all crisply and scales with the panel. Columns are the layer's filters (output
channels), numbered along the bottom axis; rows its input channels, so a first layer on
gray images is one wide strip. Colours are diverging and symmetric per layer (blue
negative, white zero, red positive) so a sign flip is visible.

A first layer reading an RGB image is drawn the way CNN papers draw it: one colour patch
per filter, its three input channels as red, green and blue, each filter stretched from its
own minimum (dark) to its own maximum (bright), so what colour and edge it looks for shows
at a glance.

Hovering a filter reads its weights at the hovered tap (all three channels for a colour
patch); clicking one emits :attr:`FilterGrid.filter_clicked` (the tab's results show that
filter's maps for the current image). The widget keeps one snapshot of the weights per
epoch (copies; a few KB each) and the slider shows any of them: "what did the filters look
like after epoch 1?".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

GAP_RGBA = (236, 236, 236, 255)
COLORMAP = "CET-D1"
HOVER_HINT = "Hover a filter to read its weights; click it to see its maps for the current image."

Snapshot = tuple[str, list[tuple[str, np.ndarray]]]
"""(caption such as "epoch 3", [(layer title, conv weight (O, C, kh, kw))])."""


def mosaic(weight: np.ndarray, gap: int = 1) -> tuple[np.ndarray, float]:
    """Tile a conv weight ``(O, C, kh, kw)`` into ``(C·(kh+gap)−gap, O·(kw+gap+1)−gap−1)``:
    one column per filter, one row per input channel, NaN in the gaps (filters are two
    pixels apart, channels one). Also return the colour limit ``max|w|`` (≥ 1e-8)."""
    o, c, kh, kw = weight.shape
    step_r, step_c = kh + gap, kw + gap + 1
    out = np.full((c * step_r - gap, o * step_c - gap - 1), np.nan, np.float32)
    for i in range(o):
        for j in range(c):
            out[j * step_r : j * step_r + kh, i * step_c : i * step_c + kw] = weight[i, j]
    finite = weight[np.isfinite(weight)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    return out, max(limit, 1e-8)


def to_rgba(values: np.ndarray, limit: float, cmap: pg.ColorMap) -> np.ndarray:
    """``(H, W)`` floats -> ``(H, W, 4)`` uint8: colormap over ``[-limit, limit]``, gaps grey."""
    nan = ~np.isfinite(values)
    with np.errstate(invalid="ignore"):
        t = np.clip((np.nan_to_num(values) / limit + 1.0) / 2.0, 0.0, 1.0)
    lut = cmap.getLookupTable(0.0, 1.0, 256, alpha=True)
    rgba = lut[np.round(t * 255).astype(np.intp)]
    rgba[nan] = GAP_RGBA
    return np.ascontiguousarray(rgba, dtype=np.uint8)


def colour_patches(weight: np.ndarray, gap: int = 1) -> np.ndarray:
    """An RGB-input conv weight ``(O, 3, kh, kw)`` -> ``(kh, O·(kw+gap+1)−gap−1, 4)`` uint8:
    one colour patch per filter (channels 0, 1, 2 as red, green, blue), each filter mapped
    linearly from its own minimum to its own maximum onto 0…255 (a constant filter is mid
    grey; a filter with a non-finite weight is drawn as a gap). Columns as :func:`mosaic`."""
    o, _, kh, kw = weight.shape
    step_c = kw + gap + 1
    out = np.empty((kh, o * step_c - gap - 1, 4), np.uint8)
    out[:] = GAP_RGBA
    for i in range(o):
        w = weight[i].astype(np.float64)
        if not np.isfinite(w).all():
            continue
        lo, hi = w.min(), w.max()
        t = (w - lo) / (hi - lo) if hi > lo else np.full_like(w, 0.5)
        out[:, i * step_c : i * step_c + kw, :3] = np.round(t.transpose(1, 2, 0) * 255)
    return out


def is_colour(position: int, weight: np.ndarray) -> bool:
    """True for the first conv layer when it reads three channels (an RGB image)."""
    return position == 0 and weight.ndim == 4 and weight.shape[1] == 3


@dataclass(frozen=True)
class Tap:
    """One weight position under the mouse: ``filter``, input ``channel`` (None for a colour
    patch, whose tap covers all three), kernel ``row`` and ``col``."""

    filter: int
    channel: int | None
    row: int
    col: int


def locate(shape: tuple[int, ...], colour: bool, x: float, y: float, gap: int = 1) -> Tap | None:
    """The tap at image position ``(x, y)`` of a layer's mosaic (None in a gap or outside):
    the inverse of :func:`mosaic` / :func:`colour_patches` for a weight of ``shape``."""
    o, c, kh, kw = shape
    if x < 0 or y < 0:
        return None
    filt, col = divmod(int(x), kw + gap + 1)
    if filt >= o or col >= kw:
        return None
    if colour:
        return Tap(filt, None, int(y), col) if int(y) < kh else None
    channel, row = divmod(int(y), kh + gap)
    if channel >= c or row >= kh:
        return None
    return Tap(filt, channel, row, col)


TICK_STEPS = (1, 2, 5, 10, 20, 50, 100)


def index_ticks(count: int, size: int, gap: int, step: int = 1) -> list[list[tuple[float, str]]]:
    """Axis ticks naming every ``step``-th of ``count`` tiles of ``size`` cells ``gap`` apart
    by its 0-based index (one level: pyqtgraph always draws the first level)."""
    return [[(k * (size + gap) + size / 2, str(k)) for k in range(0, count, step)]]


def tick_step(count: int, tile_pixels: float, label_pixels: float) -> int:
    """The smallest of :data:`TICK_STEPS` whose labels (``label_pixels`` wide, the widest
    index) do not touch when tiles are ``tile_pixels`` apart on screen."""
    for step in TICK_STEPS:
        if step >= count or step * tile_pixels >= label_pixels:
            return step
    return TICK_STEPS[-1]


class FilterGrid(QWidget):
    """Mosaics of conv filters, one row per conv layer, and an epoch slider.

    Feed it with :meth:`add_snapshot` after every epoch; it follows the newest snapshot
    unless the user has moved the slider back. ``filter_clicked(layer, filter)`` names the
    clicked filter by its conv layer's position among the snapshot's layers (0 = first
    conv) and its index in that layer.
    """

    snapshot_shown = Signal(int)
    filter_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._snapshots: list[Snapshot] = []
        self._shown: list[tuple[str, np.ndarray]] = []
        self._cmap = pg.colormap.get(COLORMAP)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.view.setMinimumHeight(120)
        self._items: list[tuple[pg.LabelItem, pg.PlotItem, pg.ImageItem]] = []
        self.view.scene().sigMouseMoved.connect(self._hovered)
        self.view.scene().sigMouseClicked.connect(self._clicked)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.setToolTip("Show the filters as they were after this epoch")
        self.slider.valueChanged.connect(self.show_snapshot)
        self.caption = QLabel("Filters appear here once training starts.")
        self.caption.setWordWrap(True)
        self.hover = QLabel(HOVER_HINT)
        self.hover.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(QLabel("Epoch:"))
        row.addWidget(self.slider, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.hover)
        layout.addLayout(row)
        layout.addWidget(self.caption)

    # -- data ----------------------------------------------------------------------------
    @property
    def snapshot_count(self) -> int:
        return len(self._snapshots)

    def clear(self) -> None:
        self._snapshots.clear()
        self._shown = []
        self.view.clear()
        self._items.clear()
        self.slider.blockSignals(True)
        self.slider.setRange(0, 0)
        self.slider.blockSignals(False)
        self.slider.setEnabled(False)
        self.caption.setText("Filters appear here once training starts.")
        self.hover.setText(HOVER_HINT)

    def add_snapshot(self, caption: str, weights: list[tuple[str, np.ndarray]]) -> None:
        """Store copies of ``weights`` (conv layers, in order) and show them if the slider
        was at the newest snapshot."""
        follow = self.slider.value() == len(self._snapshots) - 1 or not self._snapshots
        self._snapshots.append((caption, [(t, np.array(w, np.float32)) for t, w in weights]))
        self.slider.blockSignals(True)
        self.slider.setRange(0, len(self._snapshots) - 1)
        self.slider.setEnabled(len(self._snapshots) > 1)
        if follow:
            self.slider.setValue(len(self._snapshots) - 1)
        self.slider.blockSignals(False)
        if follow:
            self.show_snapshot(len(self._snapshots) - 1)

    def snapshot(self, index: int) -> Snapshot:
        return self._snapshots[index]

    def drawn(self, layer: int) -> np.ndarray:
        """The ``(H, W, 4)`` RGBA image drawn for conv layer ``layer`` of the shown snapshot."""
        return np.asarray(self._items[layer][2].image)

    def tap_point(self, layer: int, filt: int, row: int = 0, col: int = 0) -> QPoint:
        """Where (in :attr:`view` coordinates) tap ``(row, col)`` of filter ``filt`` of conv
        layer ``layer`` is drawn (first input channel): for pointing at it."""
        _, weight = self._shown[layer]
        kw = weight.shape[3]
        x, y = filt * (kw + 2) + col + 0.5, row + 0.5
        scene = self._items[layer][2].mapToScene(QPointF(x, y))
        return self.view.mapFromScene(scene)

    # -- view ----------------------------------------------------------------------------
    def show_snapshot(self, index: int) -> None:
        if not 0 <= index < len(self._snapshots):
            return
        caption, layers = self._snapshots[index]
        if len(layers) != len(self._items):
            self._rebuild(len(layers))
        self._shown = list(layers)
        notes: list[str] = []
        for k, ((title, weight), (label, plot, image)) in enumerate(
            zip(layers, self._items, strict=True)
        ):
            o, c, kh, kw = weight.shape
            colour = is_colour(k, weight)
            if colour:
                image.setImage(colour_patches(weight), autoLevels=False)
                label.setText(f"{title}: {o} colour filters (RGB input), {kh}×{kw}")
            else:
                values, limit = mosaic(weight)
                image.setImage(to_rgba(values, limit, self._cmap), autoLevels=False)
                notes.append(f"{title} ±{limit:.3g}")
                label.setText(f"{title}: {o} filters × {c} input channel{'s' * (c > 1)}, {kh}×{kw}")
            plot.setRange(xRange=(0, image.width()), yRange=(0, image.height()), padding=0.01)
            self._fit_ticks(k)
        colour = bool(layers) and is_colour(0, layers[0][1])
        self.caption.setText(self._caption(caption, layers, notes, colour))
        self.snapshot_shown.emit(index)

    @staticmethod
    def _caption(
        caption: str, layers: list[tuple[str, np.ndarray]], notes: list[str], colour: bool
    ) -> str:
        if not layers:
            return "This network has no convolution layers to show."
        text = f"{caption}. Columns: filters (numbered below)"
        if colour:
            text += (
                f". {layers[0][0].capitalize()} reads an RGB image: one colour patch per "
                "filter, its weights stretched from their own minimum (dark) to maximum (bright)"
            )
        if notes:
            text += (
                f"{'. Other layers' if colour else ''}: rows are input channels, blue negative, "
                f"white 0, red positive (colour limits: {', '.join(notes)})"
            )
        return text + "."

    def _rebuild(self, n: int) -> None:
        self.view.clear()
        self._items.clear()
        for k in range(n):
            label = self.view.addLabel("", row=2 * k, col=0, color="#222", size="9pt")
            plot = self.view.addPlot(row=2 * k + 1, col=0)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(False, False)
            plot.hideButtons()
            plot.invertY(True)
            plot.setAspectLocked(True)
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setTextPen("#222")
                axis.setPen("#bbb")
                axis.setStyle(tickLength=-3)
            image = pg.ImageItem(axisOrder="row-major")
            plot.addItem(image)
            plot.getViewBox().sigRangeChanged.connect(lambda *_, k=k: self._fit_ticks(k))
            self._items.append((label, plot, image))

    def _fit_ticks(self, k: int) -> None:
        """Number layer ``k``'s filters (bottom) and input channels (left) as densely as
        their drawn size allows without labels touching (again on every resize)."""
        if k >= len(self._shown) or k >= len(self._items):
            return
        weight = self._shown[k][1]
        o, c, kh, kw = weight.shape
        plot = self._items[k][1]
        px, py = plot.getViewBox().viewPixelSize()  # data units per screen pixel
        metrics = QFontMetrics(self.font())
        wide = metrics.horizontalAdvance(str(max(o - 1, 0))) + 8
        step = tick_step(o, (kw + 2) / px if px > 0 else 0.0, wide)
        plot.getAxis("bottom").setTicks(index_ticks(o, kw, 2, step))
        if is_colour(k, weight):
            plot.getAxis("left").setTicks([[(kh / 2, "RGB")]])
        else:
            rows = tick_step(c, (kh + 1) / py if py > 0 else 0.0, metrics.height() + 2)
            plot.getAxis("left").setTicks(index_ticks(c, kh, 1, rows))

    # -- hover and click -----------------------------------------------------------------
    def _hit(self, scene_pos: QPointF) -> tuple[int, Tap] | None:
        """``(layer position, tap)`` under a scene position, or None."""
        for k, ((_, weight), (_, _, image)) in enumerate(
            zip(self._shown, self._items, strict=False)
        ):
            p = image.mapFromScene(scene_pos)
            if not (0 <= p.x() < image.width() and 0 <= p.y() < image.height()):
                continue
            tap = locate(weight.shape, is_colour(k, weight), p.x(), p.y())
            return (k, tap) if tap is not None else None
        return None

    def _hovered(self, scene_pos: QPointF) -> None:
        hit = self._hit(scene_pos)
        if hit is None:
            self.hover.setText(HOVER_HINT)
            return
        k, tap = hit
        title, weight = self._shown[k]
        where = f"{title} · filter {tap.filter} · tap (row {tap.row}, col {tap.col})"
        if tap.channel is None:
            rgb = weight[tap.filter, :, tap.row, tap.col]
            values = ", ".join(f"{n} {v:+.4g}" for n, v in zip("RGB", rgb, strict=True))
            self.hover.setText(f"{where}: {values}. Click to see its maps.")
        else:
            value = weight[tap.filter, tap.channel, tap.row, tap.col]
            self.hover.setText(
                f"{where} · input channel {tap.channel}: {value:+.4g}. Click to see its maps."
            )

    def _clicked(self, event: Any) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        hit = self._hit(event.scenePos())
        if hit is not None:
            event.accept()
            self.filter_clicked.emit(hit[0], hit[1].filter)
