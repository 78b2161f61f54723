"""The training loop as a plain generator, and NumPy-only data helpers.

:func:`train` yields a :class:`Progress` record after every batch and knows nothing of
threads: the UI's worker pumps it and sets a stop flag to cancel (checked before each
batch). Everything random (shuffling, augmentation, dropout masks) comes from generators
seeded by ``seed``, so the same seed on the same data and network gives the same loss
curve bit for bit. A NaN/inf loss stops training with a readable reason and restores the
last weights that gave a finite loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from cnn_explorer.engine import losses as _losses
from cnn_explorer.engine.graph import Graph
from cnn_explorer.engine.network import Network
from cnn_explorer.engine.optim import SGD, Optimizer

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class _EventLike(Protocol):
    def is_set(self) -> bool: ...


StopFlag = Callable[[], bool] | _EventLike | None

Model = Network | Graph
"""What trains: a chain of layers or a graph network (same training interface)."""


@dataclass(frozen=True)
class Progress:
    """One training record. ``kind`` says which:

    - ``"batch"``: after every batch; ``loss`` is that batch's mean cross-entropy.
    - ``"epoch"``: after the last batch of an epoch (right after its ``"batch"`` record),
      with the epoch summaries: ``train_loss``/``train_accuracy`` averaged over the epoch's
      batches as trained, ``val_loss``/``val_accuracy`` of the network in inference mode on
      the validation set (None without one). The last epoch record has ``done`` True.
    - ``"stopped"``: the stop flag ended training before a batch (``done`` True).
    - ``"nonfinite"``: the loss became NaN/inf; ``error`` says where and what to do, and
      the last weights that gave a finite loss have been restored (``done`` True).

    ``epoch`` (1-based, of ``epochs``) and ``batch`` (1-based, of ``batches_per_epoch``)
    locate the record; ``lr`` is the learning rate used; ``elapsed`` seconds since start.
    """

    kind: str
    epoch: int
    epochs: int
    batch: int
    batches_per_epoch: int
    loss: float
    lr: float
    elapsed: float
    train_loss: float | None = None
    train_accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    done: bool = False
    error: str | None = None

    @property
    def epoch_end(self) -> bool:
        """True for the per-epoch summary record."""
        return self.kind == "epoch"

    @property
    def stopped(self) -> bool:
        """True when the stop flag ended training."""
        return self.kind == "stopped"

    @property
    def stop_reason(self) -> str:
        """``"stopped"``, ``"nonfinite"`` or ``""`` (for the UI's training worker)."""
        return self.kind if self.kind in ("stopped", "nonfinite") else ""

    @property
    def fraction(self) -> float:
        """Overall progress in ``[0, 1]`` (for a progress bar)."""
        total = self.epochs * self.batches_per_epoch
        return ((self.epoch - 1) * self.batches_per_epoch + self.batch) / max(total, 1)

    def same_as(self, other: Progress) -> bool:
        """Equal in everything but ``elapsed`` (the reproducibility check)."""
        return replace(self, elapsed=0.0) == replace(other, elapsed=0.0)


# --------------------------------------------------------------------------------------
# Data helpers
# --------------------------------------------------------------------------------------


def stratified_split(
    y: np.ndarray, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation indices with the same class proportions in both parts.

    Each class puts ``round(val_fraction · count)`` samples into validation (at least one if
    the class has two or more samples and ``val_fraction > 0``, so every class is
    validated). Returns sorted ``(train_idx, val_idx)``.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        k = round(val_fraction * idx.size)
        if val_fraction > 0 and idx.size >= 2:
            k = min(max(k, 1), idx.size - 1)
        val.append(idx[:k])
        train.append(idx[k:])
    return _sorted_cat(train), _sorted_cat(val)


def _sorted_cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def batch_indices(
    n: int, batch_size: int, rng: np.random.Generator | None = None
) -> list[np.ndarray]:
    """Split ``range(n)`` into batches of ``batch_size`` (the last may be smaller),
    shuffled by ``rng`` when given."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def random_shift(
    x: np.ndarray, max_shift: int, rng: np.random.Generator, hflip: bool = False
) -> np.ndarray:
    """Shift each image of ``x (N, C, H, W)`` by a random whole number of pixels in
    ``[-max_shift, max_shift]`` per axis (zeros fill in), optionally flipping left-right
    with probability ½. Cheap translation invariance for small datasets."""
    n, c, h, w = x.shape
    s = int(max_shift)
    out = x
    if s > 0:
        padded = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)))
        dy = np.asarray(rng.integers(0, 2 * s + 1, size=n))
        dx = np.asarray(rng.integers(0, 2 * s + 1, size=n))
        rows = dy[:, None] + np.arange(h)[None, :]
        cols = dx[:, None] + np.arange(w)[None, :]
        out = padded[
            np.arange(n)[:, None, None, None],
            np.arange(c)[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        ]
    if hflip:
        flip: np.ndarray = np.asarray(rng.random(n) < 0.5)
        out = np.where(flip[:, None, None, None], out[..., ::-1], out)
    return np.ascontiguousarray(out, dtype=x.dtype)


@dataclass(frozen=True)
class ShiftAugment:
    """Augmentation callable for :func:`train`: random shifts (and optional flips)."""

    max_shift: int = 2
    hflip: bool = False

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_shift(x, self.max_shift, rng, self.hflip)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K)`` counts: row = true class, column = predicted class."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall per class from a confusion matrix; NaN for classes with no samples."""
    totals = cm.sum(axis=1).astype(np.float64)
    correct = np.diag(cm).astype(np.float64)
    out = np.full(totals.shape, np.nan)
    np.divide(correct, totals, out=out, where=totals > 0)
    return out


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of correct predictions (0 for an empty set)."""
    y_true = np.asarray(y_true)
    return float(np.mean(y_true == np.asarray(y_pred))) if y_true.size else 0.0


def evaluate(
    network: Model, x: np.ndarray, y: np.ndarray, batch_size: int = 256
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``network`` (inference mode) on ``(x, y)``."""
    if len(x) == 0:
        return float("nan"), 0.0
    y = np.asarray(y, dtype=np.int64)
    # Diverged weights overflow in the forward pass too; the caller reports non-finite
    # losses as data, so no floating-point warning may escape from here.
    with np.errstate(all="ignore"):
        logits = network.predict_logits(x, batch_size)
        loss = _losses.cross_entropy(logits, y)
    return float(loss), accuracy(y, np.argmax(logits, axis=1))


# --------------------------------------------------------------------------------------
# Training loop
# --------------------------------------------------------------------------------------


def _should_stop(stop: StopFlag) -> bool:
    if stop is None:
        return False
    if hasattr(stop, "is_set"):
        return bool(stop.is_set())
    return bool(stop())  # type: ignore[operator]


def _reseed_dropout(network: Model, seed: int) -> None:
    for i, layer in enumerate(network.layers):
        if hasattr(layer, "reseed"):
            layer.reseed(seed * 1000 + i)


class _Snapshot:
    """Reusable copies of every parameter/buffer: the last weights with a finite loss."""

    def __init__(self, network: Model) -> None:
        self.live = network.state_arrays()
        self.saved = {k: v.copy() for k, v in self.live.items()}

    def save(self) -> None:
        for k, v in self.live.items():
            np.copyto(self.saved[k], v)

    def restore(self) -> None:
        for k, v in self.live.items():
            np.copyto(v, self.saved[k])


def _nan_reason(loss: float, epoch: int, batch: int, lr: float) -> str:
    what = "NaN" if math.isnan(loss) else "infinite"
    return (
        f"loss became {what} at epoch {epoch} batch {batch}: lower the learning rate "
        f"(now {lr:g}); the last good weights were restored"
    )


def train(
    network: Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    epochs: int = 5,
    batch_size: int = 64,
    optimizer: Optimizer | None = None,
    seed: int = 0,
    stop: StopFlag = None,
    augment: Augment | None = None,
) -> Iterator[Progress]:
    """Mini-batch training of ``network`` on ``x (N, C, H, W)``, ``y (N,)`` int labels.

    Yields a :class:`Progress` after each batch; the last record has ``done`` True.
    ``optimizer`` defaults to SGD(lr 0.01, momentum 0.9); its ``lr`` may be changed between
    batches. ``stop`` is a callable returning True or an object with ``is_set()`` (a
    ``threading.Event``); it is checked before every batch. ``augment(batch, rng)`` returns
    an augmented copy of a batch (see :class:`ShiftAugment`). Same ``seed``, data and
    initial weights → identical records (apart from ``elapsed``).
    """
    opt = optimizer if optimizer is not None else SGD(0.01, momentum=0.9)
    x = np.asarray(x)
    y = np.asarray(y, dtype=np.int64)
    if len(x) == 0:
        raise ValueError("no training samples: add images to at least one class")
    rng = np.random.default_rng(seed)
    aug_rng = np.random.default_rng([seed, 1])
    _reseed_dropout(network, seed)
    snapshot = _Snapshot(network)
    n_batches = math.ceil(len(x) / batch_size)
    buf = np.empty((min(batch_size, len(x)), *x.shape[1:]), dtype=x.dtype)
    start = time.perf_counter()
    where: dict[str, Any] = {"epoch": 1, "batch": 0, "loss": float("nan")}

    def record(kind: str, **extra: Any) -> Progress:
        return Progress(
            kind,
            epochs=epochs,
            batches_per_epoch=n_batches,
            lr=opt.lr,
            elapsed=time.perf_counter() - start,
            **{**where, **extra},
        )

    for epoch in range(1, epochs + 1):
        loss_sum, correct, seen = 0.0, 0, 0
        for b, idx in enumerate(batch_indices(len(x), batch_size, rng), start=1):
            if _should_stop(stop):
                yield record("stopped", done=True)
                return
            xb = np.take(x, idx, axis=0, out=buf[: len(idx)])
            if augment is not None:
                xb = augment(xb, aug_rng)
            with np.errstate(all="ignore"):
                loss, logits = network.loss_and_grads(xb, y[idx])
            where = {"epoch": epoch, "batch": b, "loss": loss}
            if not math.isfinite(loss):
                snapshot.restore()
                yield record("nonfinite", done=True, error=_nan_reason(loss, epoch, b, opt.lr))
                return
            snapshot.save()
            with np.errstate(all="ignore"):  # diverging weights: the next loss reports it
                opt.step(network)
            loss_sum += loss * len(idx)
            correct += int(np.sum(np.argmax(logits, axis=1) == y[idx]))
            seen += len(idx)
            yield record("batch")
        val_loss, val_acc = None, None
        if x_val is not None and y_val is not None and len(x_val):
            val_loss, val_acc = evaluate(network, x_val, np.asarray(y_val), batch_size)
        yield record(
            "epoch",
            train_loss=loss_sum / seen,
            train_accuracy=correct / seen,
            val_loss=val_loss,
            val_accuracy=val_acc,
            done=epoch == epochs,
        )


__all__ = [
    "Progress",
    "ShiftAugment",
    "accuracy",
    "batch_indices",
    "confusion_matrix",
    "evaluate",
    "per_class_accuracy",
    "random_shift",
    "stratified_split",
    "train",
]
