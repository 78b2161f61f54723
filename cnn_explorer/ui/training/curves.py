"""Live loss and accuracy curves for a training run (two pyqtgraph plots side by side).

The curves draw a :class:`~cnn_explorer.engine.history.TrainingHistory` (the session records
it; a project brings one back): the view keeps no numbers of its own.

The x axis is in epochs everywhere: per-batch losses sit at fractional epochs (batch 5 of 10
in epoch 2 is x = 1.5), so the noisy batch curve and the per-epoch means line up.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QWidget

from cnn_explorer.engine.history import TrainingHistory

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
        self.history = TrainingHistory()
        self.clear()

    # -- what is drawn (read by tests and the tab) ------------------------------------------
    @property
    def batch_x(self) -> list[float]:
        return list(self.history.batch_x)

    @property
    def batch_loss(self) -> list[float]:
        return list(self.history.batch_loss)

    @property
    def epochs(self) -> list[float]:
        return [float(row[0]) for row in self.history.epochs]

    @property
    def train_loss(self) -> list[float]:
        return [row[1] for row in self.history.epochs]

    @property
    def train_acc(self) -> list[float]:
        return [row[2] for row in self.history.epochs]

    @property
    def val_loss(self) -> list[float]:
        return [row[3] for row in self.history.epochs]

    @property
    def val_acc(self) -> list[float]:
        return [row[4] for row in self.history.epochs]

    # -- drawing ---------------------------------------------------------------------------
    def clear(self) -> None:
        """Draw nothing (an empty history)."""
        self.show_history(TrainingHistory())

    def show_history(self, history: TrainingHistory) -> None:
        """Draw ``history`` (the running one, read again at every :meth:`flush`, or one
        restored from a project)."""
        self.history = history
        self._redraw_batches()
        self._redraw_epochs()

    def flush(self) -> None:
        """Redraw the batch curve (call at most a few times a second)."""
        self._redraw_batches()

    def epoch_added(self) -> None:
        """The history gained an epoch row: redraw everything."""
        self._redraw_batches()
        self._redraw_epochs()

    def _redraw_batches(self) -> None:
        h = self.history
        self.batch_curve.setData(np.asarray(h.batch_x), np.asarray(h.batch_loss))

    def _redraw_epochs(self) -> None:
        table = self.history.epoch_columns()
        x = table[0]
        for curve, y in (
            (self.train_loss_curve, table[1]),
            (self.val_loss_curve, table[3]),
            (self.train_acc_curve, table[2]),
            (self.val_acc_curve, table[4]),
        ):
            keep = np.isfinite(y)
            curve.setData(x[keep], y[keep])
