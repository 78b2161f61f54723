"""The "Image size" dialog: how many rows × columns (and channels) a picture becomes.

The aspect ratio is kept by default (the lock): changing one side moves the other, so a
640×427 photo offered at 43×64 stays a photo and never becomes a squashed 64×64. A
preview shows the grid the picture will become, cell for cell, before anything loads.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from cnn_explorer.imageio import follow_aspect
from cnn_explorer.limits import MAX_INPUT_SIDE
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.common.messages import ImageOptions

PREVIEW_BOX = (240, 180)
"""Largest preview on screen, ``(width, height)`` in pixels."""


def resample(picture: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``(C, rows, cols)`` nearest-neighbour resampling of a ``(C, H, W)`` picture: the
    preview's stand-in for the grid the decoder will make."""
    _, h, w = picture.shape
    r = np.minimum(((np.arange(rows) + 0.5) * h / rows).astype(np.intp), h - 1)
    c = np.minimum(((np.arange(cols) + 0.5) * w / cols).astype(np.intp), w - 1)
    return picture[:, r[:, None], c[None, :]]


class ImageSizeDialog(QDialog):
    """Rows, columns (aspect locked by default), channels, and a preview of the result.

    ``preview`` is the picture as ``(3, H, W)`` float32 in [0, 1] at any small size, or
    None for a source too big to decode just for a preview.
    """

    def __init__(
        self,
        src_w: int,
        src_h: int,
        default: ImageOptions,
        preview: np.ndarray | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Image size")
        self.src_w, self.src_h, self.picture = src_w, src_h, preview
        self.rows, self.cols = QSpinBox(), QSpinBox()
        for sp, v, name in (
            (self.rows, default.rows, "rows"),
            (self.cols, default.cols, "columns"),
        ):
            sp.setRange(1, MAX_INPUT_SIDE)
            sp.setValue(v)
            sp.setToolTip(f"Number of {name} of the input grid (1–{MAX_INPUT_SIDE})")
        self.rows.valueChanged.connect(lambda v: self._side_changed(rows=v))
        self.cols.valueChanged.connect(lambda v: self._side_changed(cols=v))
        self.lock = QCheckBox(f"Keep the aspect ratio ({src_w}:{src_h})")
        self.lock.setChecked(True)
        self.lock.setToolTip("Changing one side changes the other so the picture is not squashed")
        self.lock.toggled.connect(lambda on: on and self._side_changed(cols=self.cols.value()))
        self.channels = QComboBox()
        self.channels.addItems(["Grayscale (1 channel)", "RGB (3 channels)"])
        self.channels.setCurrentIndex(0 if default.channels == 1 else 1)
        self.channels.setToolTip("Grey (luminance) or the three colour channels")
        self.channels.currentIndexChanged.connect(self._update_preview)
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(*PREVIEW_BOX)
        self.summary = QLabel()
        self._lay_out()
        self._update_preview()

    def _lay_out(self) -> None:
        form = QFormLayout(self)
        form.addRow(QLabel(f"Source: {self.src_w}×{self.src_h} px"))
        size = QHBoxLayout()
        size.addWidget(self.rows)
        size.addWidget(QLabel("×"))
        size.addWidget(self.cols)
        form.addRow("Rows × columns", size)
        form.addRow(self.lock)
        form.addRow("Channels", self.channels)
        form.addRow(self.preview)
        form.addRow(self.summary)
        bb = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        form.addRow(bb)

    def _side_changed(self, rows: int | None = None, cols: int | None = None) -> None:
        if self.lock.isChecked():
            r, c = follow_aspect(self.src_h, self.src_w, rows=rows, cols=cols)
            with QSignalBlocker(self.rows), QSignalBlocker(self.cols):
                self.rows.setValue(r)
                self.cols.setValue(c)
        self._update_preview()

    def options(self) -> ImageOptions:
        """What the user chose."""
        return ImageOptions(
            self.rows.value(), self.cols.value(), 1 if self.channels.currentIndex() == 0 else 3
        )

    def _update_preview(self) -> None:
        o = self.options()
        self.summary.setText(
            f"{o.rows}×{o.cols} cells × {o.channels} channel{'s' if o.channels > 1 else ''}"
        )
        if self.picture is None:
            self.preview.setText("(no preview for a picture this large)")
            return
        grid = resample(self.picture, o.rows, o.cols)
        levels = (0.0, 1.0)
        rgba = (
            colors.composite_rgba(grid, levels)
            if o.channels == 3
            else colors.grey_rgba(grid, levels)
        )
        img = QImage(rgba.data, o.cols, o.rows, 4 * o.cols, QImage.Format.Format_RGBA8888).copy()
        pix = QPixmap.fromImage(img).scaled(
            *PREVIEW_BOX,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )
        self.preview.setPixmap(pix)
