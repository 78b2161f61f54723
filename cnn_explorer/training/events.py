"""What a training run produces: engine progress records plus, at epoch ends, copies of
everything the GUI will draw.

Why copies made in the worker thread: the GUI must never read a network that another thread
is updating (layers keep their last forward's context, so sharing one would corrupt the
backward pass). Qt-free: the generator is pumped by
:class:`~cnn_explorer.training.worker.TrainingWorker` (or a plain loop in the ``train``
command, which asks for no copies); the Training tab only reads the copies.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_explorer.engine.training import confusion_matrix, train
from cnn_explorer.training.data import Split


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
    """``[("layer 1 conv", weight copy)]`` for every conv layer (a graph's conv nodes are
    named: ``"layer 3 conv (layer1.0.conv1)"``)."""
    nodes = getattr(network, "nodes", None)
    names = [f" ({n.name})" for n in nodes] if nodes is not None else [""] * len(network.layers)
    return [
        (f"layer {i + 1} conv{names[i]}", np.array(layer.params["weight"], copy=True))
        for i, layer in enumerate(network.layers)
        if layer.kind == "conv"
    ]


def make_extras(network: Any, split: Split, num_classes: int) -> EpochExtras:
    """Copies of ``network`` and its conv weights, and the ``(K, K)`` validation confusion
    matrix (None without validation images)."""
    net = network.copy()
    confusion = None
    if len(split.y_val):
        # Network.predict does not silence float warnings (evaluate does); after a
        # divergence the restored weights can still be huge enough to overflow.
        with np.errstate(all="ignore"):
            pred = net.predict(split.x_val)
        confusion = confusion_matrix(split.y_val, pred, num_classes)
    return EpochExtras(net, conv_filters(net), confusion)


def train_split(network: Any, parts: Split, **train_kwargs: Any) -> Iterator[Any]:
    """The engine's ``train`` generator on ``parts``, validating on its ``x_val``/``y_val``;
    ``train_kwargs`` go to ``train`` unchanged."""
    return train(
        network,
        parts.x_train,
        parts.y_train,
        x_val=parts.x_val,
        y_val=parts.y_val,
        **train_kwargs,
    )


def training_events(
    network: Any,
    split: Split,
    num_classes: int,
    stop: Any,
    extras: bool = True,
    **train_kwargs: Any,
) -> Generator[TrainingEvent, None, None]:
    """The engine's ``train`` generator (via :func:`train_split`) as events, with
    epoch-end copies for the GUI unless ``extras`` is False."""
    for rec in train_split(network, split, stop=stop, **train_kwargs):
        copies = None
        if extras and (rec.epoch_end or rec.done):
            copies = make_extras(network, split, num_classes)
        yield TrainingEvent(rec, copies)
