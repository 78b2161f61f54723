"""The model's input shown as a photo (the picture before preprocessing), with the
receptive field of the selected cell: the cells outside it dimmed and its bounding box
outlined."""

from __future__ import annotations

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QGraphicsRectItem, QLabel, QVBoxLayout, QWidget

from cnn_explorer.engine.graph_geometry import CellSet


class InputPicture(QWidget):
    """The input picture and the receptive-field highlight."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.vb = self.view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image)
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setZValue(5)
        self.vb.addItem(self.overlay)
        self.outline = QGraphicsRectItem()
        self.outline.setPen(pg.mkPen(255, 120, 0, width=3, cosmetic=True))
        self.outline.setZValue(10)
        self.vb.addItem(self.outline)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.caption)
        self.shape = (1, 1)
        self.field: CellSet | None = None
        self.show_field(None)

    def show_picture(self, pixels: np.ndarray, name: str) -> None:
        """``(H, W)`` or ``(H, W, 3)`` uint8."""
        self.image.setImage(np.asarray(pixels), autoLevels=False, levels=(0, 255))
        self.shape = (int(pixels.shape[0]), int(pixels.shape[1]))
        self.image.setRect(QRectF(0, 0, self.shape[1], self.shape[0]))
        self.vb.autoRange(padding=0.02)
        self.name = name
        self.show_field(None)

    def show_field(self, field: CellSet | None, text: str = "") -> None:
        """Highlight the input cells of ``field`` (``(C, H, W)`` indices; None: nothing)."""
        self.field = field
        if field is None or len(field.shape) != 3:
            self.overlay.setVisible(False)
            self.outline.setVisible(False)
            self.caption.setText(text or "Click a cell of a map: its receptive field shows here.")
            return
        h, w = field.shape[1:]
        mask = np.zeros((h, w), bool)
        mask[np.ix_(field.index[1], field.index[2])] = True
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., :3] = 255
        rgba[..., 3] = np.where(mask, 0, 170)
        self.overlay.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.overlay.setRect(QRectF(0, 0, w, h))
        self.overlay.setVisible(True)
        rows, cols = field.bounds(1), field.bounds(2)
        if rows is not None and cols is not None:
            self.outline.setRect(
                QRectF(cols[0], rows[0], cols[1] - cols[0] + 1, rows[1] - rows[0] + 1)
            )
            self.outline.setVisible(True)
        self.caption.setText(text)
