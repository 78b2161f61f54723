"""What a training run is started with: the dataset choice and the run settings, their
limits and defaults, and the optimizer and augmentation they name.

Why a module of its own: the Training tab's widgets and the ``train`` command's options both
turn into these objects, and one ``problems()`` check serves both (the command reports a
problem as a usage error naming its option, see :func:`option_name`). Qt-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cnn_explorer.engine.optim import SGD, Adam
from cnn_explorer.engine.training import ShiftAugment
from cnn_explorer.limits import MAX_EPOCHS, MAX_TRAINING_SIDE
from cnn_explorer.training.networks import ARCH_DEFAULT, ARCHITECTURES

DEFAULT_EPOCHS = 12
DEFAULT_LR = 0.01
DEFAULT_BATCH = 32
DEFAULT_VAL_SPLIT = 0.2
DEFAULT_OPTIMIZER = "adam"
OPTIMIZERS = ("adam", "sgd")
MAX_SEED = 2**31 - 1
"""Largest seed (the tab's spin box is a 32-bit int); seeds are never negative."""


def make_optimizer(kind: str, lr: float, weight_decay: float = 0.0, momentum: float = 0.9) -> Any:
    """``"adam"`` or ``"sgd"`` (with momentum), as the engine's optimizers."""
    if kind == "adam":
        return Adam(lr, weight_decay=weight_decay)
    if kind == "sgd":
        return SGD(lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {kind!r}: choose adam or sgd")


def augmenter(image_side: int) -> ShiftAugment:
    """Random shifts of about 1/14 of the side (2 px at 28), the engine's ShiftAugment."""
    return ShiftAugment(max_shift=max(1, round(image_side / 14)))


@dataclass(frozen=True)
class DatasetChoice:
    """Which dataset to load: ``source`` (a folder or ``builtin:shapes``), the square
    ``image_size`` (None = automatic) and ``channels`` (1, 3 or None = automatic). Two
    equal choices load the same arrays, so a loaded dataset is reused while it is equal."""

    source: str
    image_size: int | None = None
    channels: int | None = None

    def problems(self) -> list[tuple[str, str]]:
        """``(field, what is wrong)`` for every bad value (empty when usable)."""
        out = []
        if not self.source:
            out.append(("source", "choose an image folder (one subfolder per class)"))
        if self.image_size is not None and not 1 <= self.image_size <= MAX_TRAINING_SIDE:
            out.append(("image_size", f"must be between 1 and {MAX_TRAINING_SIDE}"))
        if self.channels not in (None, 1, 3):
            out.append(("channels", "must be 1 (grayscale) or 3 (RGB)"))
        return out


@dataclass(frozen=True)
class RunSettings:
    """Everything a run is started with besides the data. ``frozen`` holds the indices of
    layers training must leave alone; ``val_split`` the fraction of each class held out;
    ``new_head`` replaces a loaded model's classifier layer when the dataset has another
    number of classes (see ``networks.replace_classifier``)."""

    arch: str = ARCH_DEFAULT
    optimizer: str = DEFAULT_OPTIMIZER
    lr: float = DEFAULT_LR
    batch_size: int = DEFAULT_BATCH
    epochs: int = DEFAULT_EPOCHS
    weight_decay: float = 0.0
    seed: int = 0
    augment: bool = False
    val_split: float = DEFAULT_VAL_SPLIT
    frozen: frozenset[int] = frozenset()
    new_head: bool = False

    def problems(self) -> list[tuple[str, str]]:
        """``(field, what is wrong)`` for every bad value (the command turns a field into
        its option: ``weight_decay`` → ``--weight-decay``)."""
        checks = [
            ("arch", self.arch in ARCHITECTURES, "must be one of " + ", ".join(ARCHITECTURES)),
            ("optimizer", self.optimizer in OPTIMIZERS, "must be adam or sgd"),
            ("lr", math.isfinite(self.lr) and self.lr > 0, "must be a positive number"),
            ("batch_size", self.batch_size >= 1, "must be at least 1"),
            ("epochs", 1 <= self.epochs <= MAX_EPOCHS, f"must be between 1 and {MAX_EPOCHS}"),
            (
                "weight_decay",
                math.isfinite(self.weight_decay) and self.weight_decay >= 0,
                "must be a number ≥ 0",
            ),
            ("seed", 0 <= self.seed <= MAX_SEED, f"must be between 0 and {MAX_SEED}"),
            ("val_split", 0 < self.val_split < 1, "must be between 0 and 1 (exclusive)"),
        ]
        return [(name, why) for name, ok, why in checks if not ok]


def check(settings: DatasetChoice | RunSettings) -> None:
    """Raise ValueError naming every problem of ``settings`` (return when there is none)."""
    problems = settings.problems()
    if problems:
        raise ValueError("; ".join(f"{name} {why}" for name, why in problems))


def option_name(field_name: str) -> str:
    """``weight_decay`` → ``--weight-decay`` (the command's spelling of a setting)."""
    return "--" + field_name.replace("_", "-")


__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_EPOCHS",
    "DEFAULT_LR",
    "DEFAULT_OPTIMIZER",
    "DEFAULT_VAL_SPLIT",
    "MAX_SEED",
    "OPTIMIZERS",
    "DatasetChoice",
    "RunSettings",
    "augmenter",
    "check",
    "make_optimizer",
    "option_name",
]
