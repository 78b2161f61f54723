"""Every learned filter of every conv layer, with a slider back through the epochs.

Why one mosaic image per layer (rather than one plot per filter): a 16×8 layer has 128
kernels; 128 view boxes would be slow and cramped, while one ``ImageItem`` per layer draws
them all crisply and scales with the panel. Columns are the layer's filters (output
channels), rows its input channels, so a first layer on gray images is one wide strip.
Colours are diverging and symmetric per layer (blue negative, white zero, red positive)
so a sign flip is visible.

The widget keeps one snapshot of the weights per epoch (copies; a few KB each) and the
slider shows any of them: "what did the filters look like after epoch 1?".
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

GAP_RGBA = (236, 236, 236, 255)
COLORMAP = "CET-D1"

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


class FilterGrid(QWidget):
    """Mosaics of conv filters, one row per conv layer, and an epoch slider.

    Feed it with :meth:`add_snapshot` after every epoch; it follows the newest snapshot
    unless the user has moved the slider back.
    """

    snapshot_shown = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._snapshots: list[Snapshot] = []
        self._cmap = pg.colormap.get(COLORMAP)
        self._view = pg.GraphicsLayoutWidget()
        self._view.setBackground("w")
        self._view.setMinimumHeight(120)
        self._items: list[tuple[pg.LabelItem, pg.ImageItem]] = []
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.setToolTip("Show the filters as they were after this epoch")
        self.slider.valueChanged.connect(self.show_snapshot)
        self.caption = QLabel("Filters appear here once training starts.")
        self.caption.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(QLabel("Epoch:"))
        row.addWidget(self.slider, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._view, 1)
        layout.addLayout(row)
        layout.addWidget(self.caption)

    # -- data ----------------------------------------------------------------------------
    @property
    def snapshot_count(self) -> int:
        return len(self._snapshots)

    def clear(self) -> None:
        self._snapshots.clear()
        self._view.clear()
        self._items.clear()
        self.slider.blockSignals(True)
        self.slider.setRange(0, 0)
        self.slider.blockSignals(False)
        self.slider.setEnabled(False)
        self.caption.setText("Filters appear here once training starts.")

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

    # -- view ----------------------------------------------------------------------------
    def show_snapshot(self, index: int) -> None:
        if not 0 <= index < len(self._snapshots):
            return
        caption, layers = self._snapshots[index]
        if len(layers) != len(self._items):
            self._rebuild(len(layers))
        notes = []
        for (title, weight), (label, image) in zip(layers, self._items, strict=True):
            values, limit = mosaic(weight)
            image.setImage(to_rgba(values, limit, self._cmap), autoLevels=False)
            o, c, kh, kw = weight.shape
            label.setText(f"{title}: {o} filters × {c} input channel{'s' * (c > 1)}, {kh}×{kw}")
            notes.append(f"±{limit:.3g}")
        if not layers:
            self.caption.setText("This network has no convolution layers to show.")
        else:
            self.caption.setText(
                f"{caption}. Columns: filters; rows: input channels. Blue negative, white 0, "
                f"red positive (colour limits per layer: {', '.join(notes)})."
            )
        self.snapshot_shown.emit(index)

    def _rebuild(self, n: int) -> None:
        self._view.clear()
        self._items.clear()
        for k in range(n):
            label = self._view.addLabel("", row=2 * k, col=0, color="#222", size="9pt")
            box = self._view.addViewBox(
                row=2 * k + 1, col=0, lockAspect=True, invertY=True, enableMouse=False
            )
            box.setMenuEnabled(False)
            image = pg.ImageItem(axisOrder="row-major")
            box.addItem(image)
            self._items.append((label, image))
