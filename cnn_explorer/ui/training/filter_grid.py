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
filter's maps for the current image); a right click opens the histogram of that filter's
weights (all its input channels) in the shown snapshot. The widget keeps one snapshot of
the weights per epoch (copies; a few KB each) and the slider shows any of them: "what did
the filters look like after epoch 1?".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from cnn_explorer.ui.common.filter_mosaic import (
    GAP_RGBA,
    TICK_STEPS,
    Tap,
    colour_patches,
    index_ticks,
    locate,
    mosaic,
    tick_step,
    to_rgba,
)
from cnn_explorer.ui.common.histogram_window import HistogramPopup, open_histogram

COLORMAP = "CET-D1"
HOVER_HINT = "Hover a filter to read its weights; click it to see its maps for the current image."

Snapshot = tuple[str, list[tuple[str, np.ndarray]]]
"""(caption such as "epoch 3", [(layer title, conv weight (O, C, kh, kw))])."""


def is_colour(position: int, weight: np.ndarray) -> bool:
    """True for the first conv layer when it reads three channels (an RGB image)."""
    return position == 0 and weight.ndim == 4 and weight.shape[1] == 3


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
        self.view.setToolTip(
            "Click a filter for its maps; right-click it for its weights' histogram"
        )
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
        if event.button() not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return
        hit = self._hit(event.scenePos())
        if hit is None:
            return
        event.accept()
        if event.button() == Qt.MouseButton.RightButton:
            self.show_weight_histogram(hit[0], hit[1].filter, event.screenPos().toPoint())
        else:
            self.filter_clicked.emit(hit[0], hit[1].filter)

    def show_weight_histogram(
        self, layer: int, filt: int, at: QPoint | None = None
    ) -> HistogramPopup:
        """Open the histogram of filter ``filt``'s weights ``(C, kh, kw)`` of conv layer
        ``layer`` in the shown snapshot."""
        title, weight = self._shown[layer]
        caption = self._snapshots[self.slider.value()][0] if self._snapshots else ""
        name = f"filter {filt} of {title}" + (f" ({caption})" if caption else "")
        return open_histogram(weight[filt], name, self, at, unit="weights")


__all__ = [
    "GAP_RGBA",
    "TICK_STEPS",
    "FilterGrid",
    "Tap",
    "colour_patches",
    "index_ticks",
    "is_colour",
    "locate",
    "mosaic",
    "tick_step",
    "to_rgba",
]
