"""What the Training tab's worker thread produces: engine progress records plus, at epoch
ends, copies of everything the GUI will draw.

Why copies made in the worker thread: the GUI must never read a network that another thread
is updating (layers keep their last forward's context, so sharing one would corrupt the
backward pass). Qt-free: the generator is pumped by
:class:`~cnn_explorer.training.worker.TrainingWorker`; the Training tab only reads the copies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_explorer.training.cli import Split, train_split


@dataclass
class EpochExtras:
    """Copies made in the worker thread at an epoch end (or when a run ends early)."""

    network: Any
    filters: list[tuple[str, np.ndarray]]
    confusion: np.ndarray | None


@dataclass
class TrainingEvent:
    """One engine ``Progress`` record, plus :class:`EpochExtras` at epoch ends."""

    record: Any
    extras: EpochExtras | None = None

    @property
    def kind(self) -> str:
        """The record's kind: ``"batch"``, ``"epoch"``, ``"stopped"`` or ``"nonfinite"``."""
        return str(self.record.kind)

    @property
    def stop_reason(self) -> str:
        return str(self.record.stop_reason)


def conv_filters(network: Any) -> list[tuple[str, np.ndarray]]:
    """``[("layer 1 conv", weight copy)]`` for every conv layer."""
    return [
        (f"layer {i + 1} conv", np.array(layer.params["weight"], copy=True))
        for i, layer in enumerate(network.layers)
        if layer.kind == "conv"
    ]


def make_extras(network: Any, split: Split, num_classes: int) -> EpochExtras:
    from cnn_explorer.engine.training import confusion_matrix

    net = network.copy()
    confusion = None
    if len(split.y_val):
        # Network.predict does not silence float warnings (evaluate does); after a
        # divergence the restored weights can still be huge enough to overflow.
        with np.errstate(all="ignore"):
            pred = net.predict(split.x_val)
        confusion = confusion_matrix(split.y_val, pred, num_classes)
    return EpochExtras(net, conv_filters(net), confusion)


def training_events(
    network: Any, split: Split, num_classes: int, stop: Any, **train_kwargs: Any
) -> Iterator[TrainingEvent]:
    """The engine's ``train`` generator (via :func:`train_split`), with epoch-end copies
    for the GUI."""
    for rec in train_split(network, split, stop=stop, **train_kwargs):
        extras = None
        if rec.epoch_end or rec.done:
            extras = make_extras(network, split, num_classes)
        yield TrainingEvent(rec, extras)


def match_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Adapt ``(N, C, H, W)`` to ``channels``: gray → RGB repeats, RGB → gray averages."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1:
        return np.repeat(images, channels, axis=1)
    return images.mean(axis=1, keepdims=True, dtype=np.float32)


def conv_stack(layers: Sequence[Any]) -> list[Any]:
    """Deep copies of ``layers`` up to (not including) the first Flatten/Dense."""
    from cnn_explorer.engine.network import Network

    stack = []
    for layer in layers:
        if layer.kind in ("flatten", "dense"):
            break
        stack.append(layer)
    return list(Network(stack).copy().layers)
