"""The record of one training run: what the Training tab draws and a project file keeps.

Why a record of its own: the curves, the filter snapshots behind the epoch slider and the
validation confusion matrix describe *how* a network was trained. The GUI used to keep them
only inside its widgets, so a project reopened later showed a trained network with "Not
trained yet." beside it. :class:`TrainingHistory` is filled from the engine's
:class:`~cnn_explorer.engine.training.Progress` records (plus the epoch-end copies a GUI
asks for), travels with the trained network, is drawn by the Training tab's views, and is
written to and read back from a project (``cnn_explorer.explorer.project``, validated by
``cnn_explorer.explorer.validate``).

What it holds, and the invariants every reader may rely on (the project validator checks
exactly these):

* ``batch_x``, ``batch_loss``: one point per batch, at the fractional epoch it ended
  (batch 5 of 10 in epoch 2 is x = 1.5); non-decreasing x ≥ 0, finite losses ≥ 0 (a
  non-finite batch loss is not recorded: training stops on it anyway);
* ``epochs``: one row ``(epoch, train_loss, train_accuracy, val_loss, val_accuracy)`` per
  finished epoch, epoch numbers whole and increasing from 1, losses ≥ 0, accuracies in
  [0, 1], NaN where there is no value (no validation images, or a non-finite mean);
* ``snapshots``: ``(caption, [(layer title, conv weight (O, C, kh, kw) float32)])``, the
  first before training, then one per epoch (and one when a run ends early);
* ``confusion``: the last ``(K, K)`` validation confusion matrix (rows true class), or None.

Arrays are never modified once recorded, so :meth:`TrainingHistory.copy` shares them.
NumPy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cnn_explorer.engine.training import Progress

FilterLayers = list[tuple[str, np.ndarray]]
"""``[(layer title such as "layer 1 conv", conv weight (O, C, kh, kw))]``, in layer order."""

Snapshot = tuple[str, FilterLayers]
"""``(caption such as "after epoch 3", filter layers)``."""

EpochRow = tuple[int, float, float, float, float]
"""``(epoch, train_loss, train_accuracy, val_loss, val_accuracy)``; NaN for no value."""

INITIAL_CAPTION = "before training (random initial weights)"


def _value(v: float | None, top: float = math.inf) -> float:
    """A recorded summary: the number when it is finite and in ``[0, top]``, else NaN."""
    if v is None or not math.isfinite(v) or not 0.0 <= v <= top:
        return math.nan
    return float(v)


@dataclass
class TrainingHistory:
    """Curves, filter snapshots and confusion matrix of one run; see the module docstring."""

    batch_x: list[float] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    epochs: list[EpochRow] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    confusion: np.ndarray | None = None

    # -- recording ---------------------------------------------------------------------
    def add(
        self,
        rec: Progress,
        filters: FilterLayers | None = None,
        confusion: np.ndarray | None = None,
    ) -> None:
        """Record one progress record; ``filters`` and ``confusion`` are the copies made
        at an epoch end (or when a run ends early), None between them."""
        if rec.kind == "batch" and math.isfinite(rec.loss) and rec.loss >= 0:
            self.batch_x.append(rec.epoch - 1 + rec.batch / max(rec.batches_per_epoch, 1))
            self.batch_loss.append(float(rec.loss))
        if rec.epoch_end:
            self.epochs.append(
                (
                    int(rec.epoch),
                    _value(rec.train_loss),
                    _value(rec.train_accuracy, 1.0),
                    _value(rec.val_loss),
                    _value(rec.val_accuracy, 1.0),
                )
            )
        if filters is not None:
            if rec.epoch_end:
                caption = f"after epoch {rec.epoch}"
            else:
                caption = f"epoch {rec.epoch}, batch {rec.batch} (run ended)"
            self.add_snapshot(caption, filters)
        if confusion is not None:
            self.confusion = np.array(confusion, np.int64)

    def add_snapshot(self, caption: str, filters: FilterLayers) -> None:
        """Keep float32 copies of ``filters`` under ``caption``."""
        self.snapshots.append((caption, [(t, np.array(w, np.float32)) for t, w in filters]))

    # -- reading -----------------------------------------------------------------------
    @property
    def last_epoch(self) -> EpochRow | None:
        return self.epochs[-1] if self.epochs else None

    def epoch_columns(self) -> np.ndarray:
        """The epoch rows as a ``(5, E)`` float64 array (one row per field)."""
        return np.array(self.epochs, np.float64).reshape(-1, 5).T.copy()

    def copy(self) -> TrainingHistory:
        """New lists holding the same (never modified) arrays: cheap at every epoch end."""
        return TrainingHistory(
            list(self.batch_x),
            list(self.batch_loss),
            list(self.epochs),
            list(self.snapshots),
            self.confusion,
        )

    def thinned(
        self, max_batches: int, max_epochs: int, max_snapshot_values: int
    ) -> TrainingHistory:
        """A copy that fits a file's limits: at most ``max_batches`` batch points and
        ``max_epochs`` epoch rows (evenly spaced, the last one kept), and snapshots whose
        weights hold at most ``max_snapshot_values`` numbers in all (evenly spaced, the
        first and the last kept; a snapshot with a non-finite weight is left out)."""
        keep = _even(len(self.batch_x), max_batches)
        rows = _even(len(self.epochs), max_epochs)
        finite = [s for s in self.snapshots if all(np.isfinite(w).all() for _, w in s[1])]
        size = max((sum(w.size for _, w in s[1]) for s in finite), default=1)
        chosen = _even(len(finite), max(1, max_snapshot_values // max(size, 1)))
        if size > max_snapshot_values:
            chosen = []
        return TrainingHistory(
            [self.batch_x[i] for i in keep],
            [self.batch_loss[i] for i in keep],
            [self.epochs[i] for i in rows],
            [finite[i] for i in chosen],
            self.confusion,
        )


def _even(n: int, most: int) -> list[int]:
    """Indices of at most ``most`` of ``n`` items, evenly spaced, first and last kept."""
    if n <= most:
        return list(range(n))
    if most <= 1:
        return [n - 1] if most == 1 else []
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


__all__ = ["INITIAL_CAPTION", "EpochRow", "FilterLayers", "Snapshot", "TrainingHistory"]
