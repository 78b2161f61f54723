"""Draws an Insight result: a heatmap over the input with an opacity slider's opacity and a
colour bar, a synthesised image, the top images of a filter with their patches boxed, or a
bar per channel; and writes what it shows as PNG (the view as drawn, colour bar included)
or ``.npy`` (the result's numbers), both atomically.

Widgets only: the numbers come from :class:`cnn_explorer.insight.jobs.InsightResult`.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QVBoxLayout, QWidget

from cnn_explorer.engine.serialize import atomic_write
from cnn_explorer.insight.jobs import InsightResult
from cnn_explorer.ui.common.colors import DIVERGING, image_rgba

HEAT = pg.colormap.get("inferno")
GRAY = pg.colormap.get("CET-L1")
DEAD_BRUSH, ALIVE_BRUSH = "#d62728", "#1f77b4"
TEXT = "#222"


def heat_levels(values: np.ndarray, signed: bool) -> tuple[float, float]:
    """Colour-bar range: symmetric around 0 for signed maps, ``[0, max]`` (or the finite
    range when negative values occur) otherwise; a unit span for a flat map."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return (-1.0, 1.0) if signed else (0.0, 1.0)
    lo, hi = float(finite.min()), float(finite.max())
    if signed:
        m = max(abs(lo), abs(hi)) or 1.0
        return -m, m
    lo = min(lo, 0.0)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _tick(v: float) -> str:
    """A colour-bar label short enough for the bar's axis: "0.25", "12.3", "2.4e-04"."""
    return f"{v:.3g}" if v == 0 or 0.01 <= abs(v) < 1e4 else f"{v:.1e}"


def write_npy(path: str, data: np.ndarray) -> None:
    """``data`` as ``.npy`` (no pickle), replacing ``path`` only when complete."""
    with atomic_write(path) as fh:
        np.save(fh, np.asarray(data), allow_pickle=False)


class InsightView(QWidget):
    """The drawing area of the Insight panel. ``opacity`` (0–1) applies to heatmaps.
    ``clicked(row, col)``: the user clicked a shown image or heatmap at that position, as
    fractions ``[0, 1)`` of its height and width (so the panel can pick the cell of any
    layer's map under the click)."""

    clicked = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: InsightResult | None = None
        self.opacity = 0.6
        self.overlay: pg.ImageItem | None = None
        self.colorbar: pg.ColorBarItem | None = None
        self.picture: tuple[pg.PlotItem, int, int] | None = None  # plot, height, width
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.graphics.setMinimumHeight(140)
        self.graphics.scene().sigMouseClicked.connect(self._scene_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)

    # -- drawing --------------------------------------------------------------------------
    def clear(self) -> None:
        self.graphics.clear()
        self.overlay = None
        self.colorbar = None
        self.picture = None

    def view_point(self, row: float, col: float) -> QPointF:
        """Where image position ``(row, col)`` (in pixels) is drawn, in the coordinates of
        ``graphics.viewport()`` (tests click there); ValueError when no image is shown."""
        if self.picture is None:
            raise ValueError("no image is shown")
        scene = self.picture[0].vb.mapViewToScene(QPointF(col, row))
        return QPointF(self.graphics.mapFromScene(scene))

    def _scene_clicked(self, event: object) -> None:
        if self.picture is None:
            return
        plot, h, w = self.picture
        p = plot.vb.mapSceneToView(event.scenePos())  # type: ignore[attr-defined]
        row, col = float(p.y()), float(p.x())
        if 0 <= row < h and 0 <= col < w:
            self.clicked.emit(row / h, col / w)

    def show_result(self, result: InsightResult) -> None:
        """Draw ``result`` (replacing whatever was shown)."""
        self.result = result
        self.clear()
        draw = {
            "heatmap": self._draw_heatmap,
            "image": self._draw_image,
            "patches": self._draw_patches,
            "bars": self._draw_bars,
        }[result.kind]
        draw(result)

    def show_preview(self, image: np.ndarray, text: str) -> None:
        """An activation-maximisation image while it is being synthesised."""
        self.result = None
        self.clear()
        self._draw_image(InsightResult("image", text, image, image))

    def set_opacity(self, value: float) -> None:
        self.opacity = float(value)
        if self.overlay is not None:
            self.overlay.setOpacity(self.opacity)

    def _title(self, text: str, row: int = 0, colspan: int = 1) -> None:
        self.graphics.addLabel(text, row=row, col=0, colspan=colspan, color=TEXT, size="9pt")

    def _image_plot(self, row: int, col: int) -> pg.PlotItem:
        plot = self.graphics.addPlot(row=row, col=col)
        plot.setAspectLocked(True)
        plot.invertY(True)
        plot.hideAxis("left")
        plot.hideAxis("bottom")
        plot.setMouseEnabled(False, False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        return plot

    def _add_bar(self, plot: pg.PlotItem, image: pg.ImageItem, levels: tuple, cmap) -> None:
        bar = pg.ColorBarItem(values=levels, colorMap=cmap, interactive=False, width=14)
        bar.setImageItem(image, insert_in=plot)
        bar.axis.setTextPen(TEXT)
        # Both ends and the middle, always labelled, in an axis wide enough for them: the
        # bar's own narrow axis dropped every label but "0" (a heatmap's maximum is often
        # a small number such as 2.4e-04).
        bar.axis.setTicks([[(float(v), _tick(float(v))) for v in np.linspace(*levels, 3)]])
        bar.axis.setWidth(60)
        self.colorbar = bar

    def _draw_heatmap(self, result: InsightResult) -> None:
        assert result.heatmap is not None
        self._title(result.title)
        plot = self._image_plot(1, 0)
        if result.image is not None:
            plot.addItem(pg.ImageItem(image_rgba(result.image), axisOrder="row-major"))
        heat = np.asarray(result.heatmap, np.float32)
        self.picture = (plot, heat.shape[0], heat.shape[1])
        levels = heat_levels(heat, result.signed)
        self.overlay = pg.ImageItem(heat, axisOrder="row-major", levels=levels)
        self.overlay.setOpacity(self.opacity)
        plot.addItem(self.overlay)
        self._add_bar(plot, self.overlay, levels, DIVERGING if result.signed else HEAT)

    def _draw_image(self, result: InsightResult) -> None:
        assert result.image is not None
        self._title(result.title)
        plot = self._image_plot(1, 0)
        img = np.asarray(result.image, np.float32)
        self.picture = (plot, img.shape[1], img.shape[2])
        if img.shape[0] == 3:  # colours as they are, stretched to the image's own range
            lo, hi = heat_levels(img, False)
            plot.addItem(pg.ImageItem(image_rgba((img - lo) / (hi - lo)), axisOrder="row-major"))
            return
        values = img.mean(axis=0)
        finite = values[np.isfinite(values)]
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
        levels = (lo, hi if hi > lo else lo + 1.0)
        item = pg.ImageItem(values, axisOrder="row-major", levels=levels)
        plot.addItem(item)
        self._add_bar(plot, item, levels, GRAY)

    def _draw_patches(self, result: InsightResult) -> None:
        patches = result.patches
        cols = max(1, math.ceil(math.sqrt(len(patches))))
        self._title(result.title, colspan=cols)
        pen = QPen(QColor("#00e676"))
        pen.setCosmetic(True)  # 2 screen pixels whatever the zoom
        pen.setWidthF(2)
        for n, p in enumerate(patches):
            r, c = divmod(n, cols)
            plot = self._image_plot(1 + r, c)
            plot.setTitle(f"#{p.index}: {p.value:.3g}", color=TEXT, size="8pt")
            plot.addItem(pg.ImageItem(image_rgba(result.data[n]), axisOrder="row-major"))
            top, bottom, left, right = p.box
            box = QGraphicsRectItem(QRectF(left, top, right - left, bottom - top))
            box.setPen(pen)
            plot.addItem(box)

    def _draw_bars(self, result: InsightResult) -> None:
        assert result.values is not None
        self._title(result.title)
        plot = self.graphics.addPlot(row=1, col=0)
        rates = np.asarray(result.values, np.float64)
        brushes = [DEAD_BRUSH if v >= 1 else ALIVE_BRUSH for v in rates]
        plot.addItem(
            pg.BarGraphItem(x=np.arange(len(rates)), height=rates, width=0.8, brushes=brushes)
        )
        plot.setYRange(0, 1, padding=0.02)
        plot.setLabel("left", "dead on this share of images", color=TEXT)
        plot.setLabel("bottom", "channel (red: never fires)", color=TEXT)
        plot.setMouseEnabled(False, False)
        plot.setMenuEnabled(False)
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTextPen(TEXT)

    # -- export -----------------------------------------------------------------------------
    def export_png(self, path: str) -> None:
        """The view as drawn (title, image, colour bar) as a PNG; OSError when it cannot."""
        pixmap = self.graphics.grab()
        data = QByteArray()
        buf = QBuffer(data)
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        if not pixmap.save(buf, "PNG"):
            raise OSError(f"could not render {path}")
        buf.close()
        with atomic_write(path) as fh:
            fh.write(bytes(data.data()))

    def export_npy(self, path: str) -> None:
        """The result's numbers (see :class:`InsightResult` ``data``) as ``.npy``."""
        if self.result is None:
            raise ValueError("nothing to export yet: run a method first")
        write_npy(path, self.result.data)

    def export(self, fmt: str, path: str) -> tuple[bool, str]:
        """Write ``path`` as ``"png"`` (:meth:`export_png`) or ``"npy"``
        (:meth:`export_npy`): whether it worked, and the sentence the panel shows."""
        name = os.path.basename(path)
        try:
            (self.export_png if fmt == "png" else self.export_npy)(path)
        except (OSError, ValueError) as exc:
            return False, f"Could not export {name}: {exc}"
        return True, f"Exported {name}."


__all__ = ["InsightView", "heat_levels", "write_npy"]
