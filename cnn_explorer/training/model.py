"""A trained network with what it needs to be used again, and saving it.

Why a class of its own: a network alone does not say which class each output is, which
image size it reads, or which dataset taught it. :class:`TrainedModel` keeps the four
together and refuses class names that do not match the outputs, and the session only ever
replaces a model whole. So loading another dataset, or starting a run on one, cannot pair a
trained network with another dataset's class names (a project saved like that would be
refused when opened). Qt-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnn_explorer.engine.history import TrainingHistory
from cnn_explorer.engine.serialize import Model, output_count, save_network

FILE_KEYS = ("class_names", "input_shape")
"""``extra`` keys a weights file or project stores beside the network itself."""

PREPROCESSING_KEY = "preprocessing"
"""``extra`` key of an imported model's preprocessing record (the JSON of
``interchange.model.Preprocessing.to_dict``): how its pictures become its input. Saved with
weights files and projects like any other note."""

IMPORTED_KEY = "imported_from"
"""``extra`` key naming the model file a network was imported from (fine-tuning defaults:
everything frozen but the last layer)."""


def _class_count(network: Model, input_shape: tuple[int, int, int] | None) -> int:
    """How many classes ``network`` (a Network or a Graph) outputs (for images of
    ``input_shape`` when known)."""
    if input_shape is not None:
        out = network.output_shape(input_shape)
        if len(out) != 1:
            raise ValueError(
                f"the network outputs {'×'.join(map(str, out))} maps, not one value per "
                "class: it has no classifier head"
            )
        return int(out[0])
    count = output_count(network)
    if count is None:
        raise ValueError("the network does not end in a Dense classifier layer")
    return int(count)


def _shape3(value: Any) -> tuple[int, int, int] | None:
    """``(C, H, W)`` from a file's ``input_shape`` entry, None when absent or malformed."""
    if not (isinstance(value, list | tuple) and len(value) == 3):
        return None
    if not all(isinstance(v, int | np.integer) and v > 0 for v in value):
        return None
    c, h, w = (int(v) for v in value)
    return c, h, w


@dataclass(frozen=True)
class TrainedModel:
    """A classifier with its metadata: ``class_names[k]`` names output ``k``;
    ``input_shape`` is the ``(C, H, W)`` it reads (None when a file did not say); ``extra``
    holds JSON-safe notes such as ``source`` (the dataset); ``origin`` names the file it was
    loaded from ("" for a network trained here); ``history`` is how it was trained (curves,
    filter snapshots, confusion matrix; None when unknown, as for a weights file).

    Raises ValueError when the names do not match the outputs: no code path can pair a
    network with another dataset's classes."""

    network: Model
    class_names: list[str]
    input_shape: tuple[int, int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    origin: str = ""
    history: TrainingHistory | None = None

    def __post_init__(self) -> None:
        k = _class_count(self.network, self.input_shape)
        if len(self.class_names) != k:
            raise ValueError(
                f"the network outputs {k} classes but {len(self.class_names)} class names "
                "were given"
            )

    @classmethod
    def from_file(
        cls,
        network: Model,
        extra: dict[str, Any],
        origin: str,
        history: TrainingHistory | None = None,
    ) -> TrainedModel:
        """A network read from a weights file or project with its ``extra`` dict (and the
        project's training history); class names that do not match the outputs become
        ``class 0``, ``class 1`` … (and then the history's confusion matrix, whose classes
        are unknown, is dropped)."""
        shape = _shape3(extra.get("input_shape"))
        names = [str(n) for n in extra.get("class_names", [])]
        k = _class_count(network, shape)
        if len(names) != k:
            names = [f"class {i}" for i in range(k)]
        if history is not None and history.confusion is not None:
            fits = history.confusion.shape == (k, k) and names == extra.get("class_names")
            history = history if fits else replace(history, confusion=None)
        rest = {key: v for key, v in extra.items() if key not in FILE_KEYS}
        return cls(network, names, shape, rest, origin, history)

    @property
    def preprocessing(self) -> dict[str, Any] | None:
        """The imported model's preprocessing record (see :data:`PREPROCESSING_KEY`), or
        None for a network made here (its inputs are the loaders' images as they are)."""
        record = self.extra.get(PREPROCESSING_KEY)
        return record if isinstance(record, dict) else None

    def preprocessing_record(self) -> dict[str, Any]:
        """How pictures become this model's input, as a preprocessing record (what an
        export writes beside the weights): an imported model's own record with this
        model's class names, else the app's loaders' convention: pixels scaled to 0–1,
        grey for one channel and RGB for three, no mean or std. ValueError when the input
        shape is unknown (a weights file that did not record it)."""
        if self.input_shape is None:
            raise ValueError("the network's input size is unknown: train it on a dataset first")
        own = self.preprocessing
        base = (
            dict(own)
            if own is not None
            else {
                "colour": "grey" if self.input_shape[0] == 1 else "rgb",
                "scale": 1 / 255,
                "mean": [0.0],
                "std": [1.0],
            }
        )
        return {
            **base,
            "input_shape": list(self.input_shape),
            "class_names": list(self.class_names),
        }

    @property
    def source(self) -> str:
        """The dataset it was trained on (a folder or ``builtin:shapes``), or ""."""
        return str(self.extra.get("source", ""))

    def file_extra(self) -> dict[str, Any]:
        """``extra`` plus class names and input shape: what a weights file stores."""
        out = {**self.extra, "class_names": list(self.class_names)}
        if self.input_shape is not None:
            out["input_shape"] = list(self.input_shape)
        return out

    def copy(self) -> TrainedModel:
        """The same model with its own copy of the network."""
        return replace(self, network=self.network.copy())


def save_model(path: str | os.PathLike[str], model: TrainedModel) -> None:
    """Write ``model`` as ``.npz`` (no pickle, atomic); OSError when it cannot."""
    save_network(path, model.network, model.file_extra())


def save_path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why a network cannot be written to ``path`` (checked *before* a long run), or None."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        return f"{p} is a folder: give a file name such as {p / 'weights.npz'}"
    if not parent.exists():
        return f"the folder {parent} does not exist"
    if not parent.is_dir():
        return f"{parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"the folder {parent} is not writable"
    return None


__all__ = [
    "FILE_KEYS",
    "IMPORTED_KEY",
    "PREPROCESSING_KEY",
    "TrainedModel",
    "save_model",
    "save_path_problem",
]
