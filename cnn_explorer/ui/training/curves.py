"""Live loss and accuracy curves for a training run (two pyqtgraph plots side by side).

The x axis is in epochs everywhere: per-batch losses sit at fractional epochs (batch 5 of 10
in epoch 2 is x = 1.5), so the noisy batch curve and the per-epoch means line up.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QWidget

TRAIN_PEN = pg.mkPen("#1f77b4", width=2)
VAL_PEN = pg.mkPen("#d62728", width=2)
BATCH_PEN = pg.mkPen((31, 119, 180, 70), width=1)


def _plot(title: str, ylabel: str, legend_offset: tuple[int, int] = (-8, 8)) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    item = plot.getPlotItem()
    item.setTitle(title, color="#222", size="10pt")
    item.setLabel("bottom", "epoch")
    item.setLabel("left", ylabel)
    item.showGrid(x=True, y=True, alpha=0.2)
    item.addLegend(offset=legend_offset, labelTextColor="#222", brush=(255, 255, 255, 200))
    for axis in ("left", "bottom"):
        item.getAxis(axis).setTextPen("#222")
        item.getAxis(axis).setPen("#888")
    item.setMenuEnabled(False)
    plot.setMinimumSize(200, 150)
    return plot


class TrainingCurves(QWidget):
    """Loss (per batch + per epoch, train and validation) and accuracy (per epoch)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = _plot("Loss", "cross-entropy")
        self.acc_plot = _plot("Accuracy", "fraction correct", legend_offset=(-8, -40))
        self.acc_plot.setYRange(0.0, 1.0)
        lp, ap = self.loss_plot, self.acc_plot
        self.batch_curve = lp.plot([], [], pen=BATCH_PEN, name="train (each batch)")
        self.train_loss_curve = lp.plot(
            [],
            [],
            pen=TRAIN_PEN,
            symbol="o",
            symbolSize=5,
            symbolBrush="#1f77b4",
            name="train (epoch mean)",
        )
        self.val_loss_curve = lp.plot(
            [], [], pen=VAL_PEN, symbol="s", symbolSize=5, symbolBrush="#d62728", name="validation"
        )
        self.train_acc_curve = ap.plot(
            [], [], pen=TRAIN_PEN, symbol="o", symbolSize=5, symbolBrush="#1f77b4", name="train"
        )
        self.val_acc_curve = ap.plot(
            [], [], pen=VAL_PEN, symbol="s", symbolSize=5, symbolBrush="#d62728", name="validation"
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(lp)
        layout.addWidget(ap)
        self.clear()

    def clear(self) -> None:
        self.batch_x: list[float] = []
        self.batch_loss: list[float] = []
        self.epochs: list[float] = []
        self.train_loss: list[float] = []
        self.val_loss: list[float] = []
        self.train_acc: list[float] = []
        self.val_acc: list[float] = []
        self._redraw_batches()
        self._redraw_epochs()

    def add_batch(self, x: float, loss: float) -> None:
        """One batch's loss at fractional epoch ``x`` (non-finite losses are not drawn)."""
        if np.isfinite(loss):
            self.batch_x.append(float(x))
            self.batch_loss.append(float(loss))

    def flush(self) -> None:
        """Redraw the batch curve (call at most a few times a second)."""
        self._redraw_batches()

    def add_epoch(
        self,
        epoch: float,
        train_loss: float,
        train_acc: float,
        val_loss: float | None,
        val_acc: float | None,
    ) -> None:
        """Epoch means, at x = the epoch's number (1-based: "after epoch 1")."""
        self.epochs.append(float(epoch))
        self.train_loss.append(float(train_loss))
        self.train_acc.append(float(train_acc))
        self.val_loss.append(np.nan if val_loss is None else float(val_loss))
        self.val_acc.append(np.nan if val_acc is None else float(val_acc))
        self._redraw_batches()
        self._redraw_epochs()

    def _redraw_batches(self) -> None:
        self.batch_curve.setData(np.asarray(self.batch_x), np.asarray(self.batch_loss))

    def _redraw_epochs(self) -> None:
        x = np.asarray(self.epochs)
        for curve, ys in (
            (self.train_loss_curve, self.train_loss),
            (self.val_loss_curve, self.val_loss),
            (self.train_acc_curve, self.train_acc),
            (self.val_acc_curve, self.val_acc),
        ):
            y = np.asarray(ys, dtype=float)
            keep = np.isfinite(y)
            curve.setData(x[keep], y[keep])
