"""The training session: what the Training tab and the ``train`` command know about
training, as plain Python (no Qt, directly or indirectly).

Why one session for both: the GUI and the terminal must train identically (same split, same
initial weights, same optimizer) and agree on what a trained network is. The session holds
the dataset in use (:attr:`TrainingSession.data`, with the
:class:`~cnn_explorer.training.settings.DatasetChoice` it was loaded with), the explorer's
layers (for "train the explorer's stack"), the network loaded from a file (the "Loaded
weights" architecture), the trained :class:`~cnn_explorer.training.model.TrainedModel`
(network + class names + input shape, replaced only whole), and the current or last
:class:`Run`. Threads are not its business: a run's :meth:`Run.events` is a generator that
the tab's worker thread pumps and the command pumps in a loop, and
:meth:`TrainingSession.observe` takes each event back.

Loading goes through :func:`cnn_explorer.training.data.load_dataset` (the caller's thread
decides where); decoding files needs QtGui, so :meth:`TrainingSession.read_image` imports
the decoder only when called.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnn_explorer.engine.graph import Graph
from cnn_explorer.engine.history import INITIAL_CAPTION, TrainingHistory
from cnn_explorer.engine.optim import Optimizer
from cnn_explorer.engine.serialize import Model
from cnn_explorer.engine.serialize import load_model as load_model_file
from cnn_explorer.engine.training import Progress, StopFlag, evaluate
from cnn_explorer.training.data import LabeledImages, Split, split_dataset, with_channels
from cnn_explorer.training.events import TrainingEvent, conv_filters, training_events
from cnn_explorer.training.model import (
    IMPORTED_KEY,
    PREPROCESSING_KEY,
    TrainedModel,
    save_model,
)
from cnn_explorer.training.networks import (
    ARCH_LOADED,
    PREVIEW_CLASSES,
    PREVIEW_INPUT,
    Preview,
    apply_freeze,
    build_network,
    describe_classifier,
    network_input,
    preview,
)
from cnn_explorer.training.prediction import Prediction, predict
from cnn_explorer.training.settings import (
    DatasetChoice,
    RunSettings,
    augmenter,
    check,
    make_optimizer,
)

Prepare = Callable[[np.ndarray], np.ndarray]
"""Images as loaded ``(N, 1|3, H, W)`` in [0, 1] -> the model's input ``(N, C, H, W)``."""
Preprocessor = Callable[[Mapping[str, Any]], Prepare]
"""Turns a preprocessing record (``TrainedModel.preprocessing``) into its :data:`Prepare`.
The session is given one (the tab passes ``Preprocessing.from_dict(d).apply_batch`` from
``cnn_explorer.interchange``, the one place that maths lives; ``training`` may not import
``interchange``)."""

# --------------------------------------------------------------------------------------
# A run
# --------------------------------------------------------------------------------------


@dataclass
class Run:
    """One training run: the live ``network`` (trained by whoever pumps :meth:`events`; read
    only copies while it runs), the ``split`` it trains and validates on (images adapted to
    the network's channels), the optimizer, the last progress record, and the
    :class:`~cnn_explorer.engine.history.TrainingHistory` recorded so far (filled by
    :meth:`TrainingSession.observe`; it starts with the initial filters)."""

    network: Model
    split: Split
    optimizer: Optimizer
    settings: RunSettings
    class_names: list[str]
    source: str
    note: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    """Notes the trained model keeps (an imported model's preprocessing and file name)."""
    last: Progress | None = None
    history: TrainingHistory = field(default_factory=TrainingHistory)

    def __post_init__(self) -> None:
        if not self.history.snapshots:
            self.history.add_snapshot(INITIAL_CAPTION, conv_filters(self.network))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` the network is trained on."""
        c, h, w = self.split.x_train.shape[1:]
        return int(c), int(h), int(w)

    def events(
        self, stop: StopFlag = None, extras: bool = True
    ) -> Generator[TrainingEvent, None, None]:
        """The training generator; ``extras`` adds copies for a GUI at epoch ends."""
        s = self.settings
        kwargs = {
            "epochs": s.epochs,
            "batch_size": s.batch_size,
            "optimizer": self.optimizer,
            "seed": s.seed,
            "augment": augmenter(self.input_shape[-1]) if s.augment else None,
        }
        return training_events(
            self.network, self.split, len(self.class_names), stop, extras, **kwargs
        )

    def model(self, network: Model | None = None) -> TrainedModel:
        """The run's network (or a copy of it taken at an epoch end) as a model, with the
        history recorded so far."""
        return TrainedModel(
            self.network if network is None else network,
            list(self.class_names),
            self.input_shape,
            {**self.notes, "source": self.source},
            history=self.history.copy(),
        )

    def validation_accuracy(self) -> float | None:
        """Accuracy of the network now on the validation images; None without any."""
        if not len(self.split.y_val):
            return None
        return evaluate(self.network, self.split.x_val, self.split.y_val)[1]

    def start_message(self) -> str:
        return (
            f"Training {self.network.param_count():,} parameters on "
            f"{len(self.split.y_train)} images…" + (f" Note: {self.note}." if self.note else "")
        )

    def finish_message(self, reason: str) -> tuple[str, bool]:
        """``(sentence, is_error)`` for how the run ended (the worker's reason)."""
        rec = self.last
        if reason == "nonfinite" and rec is not None:
            return f"Training stopped: {rec.error}. Try a learning rate 10× smaller.", True
        if reason == "stopped":
            where = f" at epoch {rec.epoch}, batch {rec.batch}" if rec is not None else ""
            return f"Stopped{where}. The network keeps the weights trained so far.", False
        acc = rec.val_accuracy if rec is not None else None
        tail = f": validation accuracy {acc:.1%}." if acc is not None else " (no validation set)."
        return f"Finished {self.settings.epochs} epochs" + tail, False


# --------------------------------------------------------------------------------------
# The session
# --------------------------------------------------------------------------------------


class TrainingSession:
    """Dataset, architecture inputs, trained model and runs; see the module docstring."""

    def __init__(self, preprocessor: Preprocessor | None = None) -> None:
        self.preprocessor = preprocessor
        self.data: LabeledImages | None = None
        self.choice: DatasetChoice | None = None
        self.summary = ""
        self.explorer_layers: list[Any] | None = None
        self.loaded: TrainedModel | None = None
        self.trained: TrainedModel | None = None
        self.run: Run | None = None

    # -- dataset ---------------------------------------------------------------------------
    def needs_load(self, choice: DatasetChoice) -> bool:
        """True unless the dataset in use was loaded with exactly ``choice``."""
        return self.data is None or self.choice != choice

    def use_dataset(self, data: LabeledImages, choice: DatasetChoice, summary: str = "") -> None:
        """Make ``data`` the dataset runs train on. The trained model (and its class
        names) stays as it is: ask :meth:`fit_problem` whether the two fit."""
        self.data, self.choice, self.summary = data, choice, summary

    def fit_problem(self, data: LabeledImages | None = None) -> str | None:
        """Why the trained model cannot classify ``data`` (default: the dataset in use):
        other class names or another image size; None when it can (channels are adapted
        the way a run adapts them)."""
        data = self.data if data is None else data
        model = self.trained
        if model is None:
            return "Train or load a network first."
        if data is None:
            return "Load a dataset first."
        shape = model.input_shape
        if list(data.class_names) == model.class_names and (
            shape is not None and tuple(data.input_shape[1:]) == shape[1:]
        ):
            return None
        kind = "loaded" if model.origin else "trained"
        return (
            f"This dataset ({data.num_classes} classes, {'×'.join(map(str, data.input_shape))}) "
            f"does not fit the {kind} network ({len(model.class_names)} classes, "
            f"{'×'.join(map(str, shape)) if shape else '?'}): train on it to try its images."
        )

    def validation_images(self, val_split: float, seed: int) -> Split:
        """The dataset in use split exactly as a run with these settings would split it,
        images adapted to the trained model's channels. ValueError (the
        :meth:`fit_problem` sentence) when the model cannot classify it."""
        problem = self.fit_problem()
        if problem is not None:
            raise ValueError(problem)
        assert self.data is not None and self.trained is not None
        assert self.trained.input_shape is not None
        data = self._model_images(self.trained, self.data, self.trained.input_shape[0])
        return split_dataset(data, val_split, seed)

    def _prepare(self, model: TrainedModel | None) -> Prepare | None:
        """How images become ``model``'s input: its preprocessing (an imported model), or
        None for a network made here (it reads the loaded images as they are)."""
        record = model.preprocessing if model is not None else None
        if record is None:
            return None
        if self.preprocessor is None:
            raise ValueError("this model needs its preprocessing, which this session cannot apply")
        return self.preprocessor(record)

    def _model_images(
        self, model: TrainedModel | None, data: LabeledImages, channels: int
    ) -> LabeledImages:
        """``data`` as ``model`` reads it: through its preprocessing when it has one, else
        with the images adapted to ``channels``."""
        prepare = self._prepare(model)
        if prepare is None:
            return with_channels(data, channels)
        images = prepare(data.images)
        return LabeledImages(images, data.labels, data.class_names, data.source, data.notes)

    # -- networks --------------------------------------------------------------------------
    def set_explorer_layers(self, layers: Sequence[Any] | None) -> None:
        """The explorer's engine layers (its conv part gets a classifier head when
        ``arch`` is ``"explorer"``); copied when a network is built, never modified."""
        self.explorer_layers = list(layers) if layers else None

    def _target(self, arch: str) -> tuple[tuple[int, ...], int]:
        """``((C, H, W), classes)`` a network is built for: the dataset in use, else the
        loaded network's own, else the built-in set's."""
        if self.data is not None:
            return self.data.input_shape, self.data.num_classes
        loaded = self.loaded
        if arch == ARCH_LOADED and loaded is not None and loaded.input_shape is not None:
            return loaded.input_shape, len(loaded.class_names)
        return PREVIEW_INPUT, PREVIEW_CLASSES

    def build_network(self, settings: RunSettings) -> Model:
        """A fresh network for ``settings`` (ValueError with a sentence when impossible)."""
        shape, k = self._target(settings.arch)
        loaded = self.loaded.network if self.loaded is not None else None
        return build_network(
            settings.arch,
            shape,
            k,
            settings.seed,
            self.explorer_layers,
            loaded,
            new_head=settings.new_head,
        )

    def fine_tuning(self, settings: RunSettings) -> bool:
        """True when ``settings`` train further a model imported from another tool (its
        preview ticks every layer but the last to freeze by default)."""
        loaded = self.loaded
        return settings.arch == ARCH_LOADED and loaded is not None and IMPORTED_KEY in loaded.extra

    def head_mismatch(self, settings: RunSettings) -> str | None:
        """When the loaded model outputs another number of classes than the dataset in use
        has and its classifier layer could be replaced: the question to ask the user
        (``settings.new_head`` says yes). None otherwise."""
        loaded, data = self.loaded, self.data
        if settings.arch != ARCH_LOADED or loaded is None or data is None or settings.new_head:
            return None
        k = len(loaded.class_names)
        layer = describe_classifier(loaded.network)
        if k == data.num_classes or layer is None:
            return None
        return (
            f"The model outputs {k} classes but this dataset has {data.num_classes}. "
            f"Replace its classifier layer {layer} with a new one for these "
            f"{data.num_classes} classes (trained from scratch; the other layers keep "
            "their weights)?"
        )

    def preview(self, settings: RunSettings) -> Preview:
        """Shapes, parameters and freezable layers of what ``settings`` would train."""
        shape = self._target(settings.arch)[0]
        return preview(self.build_network(settings), shape, self.fine_tuning(settings))

    # -- runs ------------------------------------------------------------------------------
    def start_run(self, settings: RunSettings) -> Run:
        """Build, freeze and split for a new run on the dataset in use; it becomes
        :attr:`run`. The trained model stays until the run's first epoch-end copy arrives.
        ValueError (with a sentence) for bad settings or a network that does not fit."""
        check(settings)
        if self.data is None:
            raise ValueError("load a dataset first")
        network = self.build_network(settings)
        apply_freeze(network, settings.frozen)
        base = self.loaded if settings.arch == ARCH_LOADED else None
        channels = network_input(network, self.data.input_shape)[0]
        data = self._model_images(base, self.data, channels)
        parts = split_dataset(data, settings.val_split, settings.seed)
        optimizer = make_optimizer(settings.optimizer, settings.lr, settings.weight_decay)
        names = list(data.class_names)
        note = parts.note(settings.val_split)
        notes = {}
        if base is not None:
            notes = {k: base.extra[k] for k in (PREPROCESSING_KEY, IMPORTED_KEY) if k in base.extra}
            if PREPROCESSING_KEY in notes:
                notes[PREPROCESSING_KEY] = {**notes[PREPROCESSING_KEY], "class_names": names}
        self.run = Run(network, parts, optimizer, settings, names, data.source, note, notes)
        return self.run

    def observe(self, event: TrainingEvent) -> bool:
        """Take one event of the current run back into its history; True when it brought
        a new trained model (an epoch-end copy, or the copy made when a run ends early)."""
        run = self.run
        if run is None:
            return False
        run.last = event.record
        extras = event.extras
        if extras is None:
            run.history.add(event.record)
            return False
        run.history.add(event.record, extras.filters, extras.confusion)
        self.trained = run.model(extras.network)
        return True

    # -- trained network in and out --------------------------------------------------------
    def adopt(
        self,
        network: Model,
        extra: dict[str, Any],
        origin: str,
        history: TrainingHistory | None = None,
    ) -> str:
        """Make a network read from a file (``extra`` as stored beside it, and the history
        of how it was trained when a project kept it) the trained model and the "Loaded
        weights" architecture; returns the status sentence."""
        model = TrainedModel.from_file(network, extra, origin, history)
        self.loaded = model
        self.trained = model.copy()
        return f"Loaded {origin}: {len(network.layers)} layers, {len(model.class_names)} classes."

    def adopt_imported(
        self,
        graph: Graph,
        preprocessing: Mapping[str, Any],
        origin: str,
    ) -> str:
        """Make a model imported from another tool (an engine graph and its preprocessing
        record, ``Preprocessing.to_dict()``) the trained model and the "Loaded weights"
        architecture, ready to fine-tune: its input shape and class names come from the
        record (missing names become ``class 0``, …); a final Softmax is left out (training
        and the probabilities shown work on logits). Returns the status sentence;
        ValueError with a sentence when the model is not a classifier."""
        record = dict(preprocessing)
        shape = record.get("input_shape")
        names = record.get("class_names") or []
        network = graph.copy()
        note = ""
        last = network.node(network.output)
        if last.layer.kind == "softmax" and len(last.inputs) == 1 and len(network.nodes) > 1:
            kept = [n for n in network.nodes if n.name != last.name]
            network = Graph(kept, last.inputs[0])
            note = " Its final Softmax is left out: training works on logits."
        extra = {
            PREPROCESSING_KEY: record,
            IMPORTED_KEY: origin,
            "class_names": list(names),
            "input_shape": list(shape) if shape is not None else None,
        }
        message = self.adopt(network, extra, origin)
        return message + note + " Choose a dataset and the layers to freeze, then Start."

    def load_weights(self, path: str | os.PathLike[str]) -> str:
        """Adopt a file written by :meth:`save_weights` or ``train --save`` (a chain of
        layers or a graph network)."""
        network, extra = load_model_file(path)
        return self.adopt(network, extra, os.path.basename(path))

    def save_weights(self, path: str | os.PathLike[str]) -> None:
        """Save the trained model as ``.npz`` (no pickle)."""
        if self.trained is None:
            raise ValueError("nothing to save yet: train or load a network first")
        save_model(path, self.trained)

    def predict(self, image: np.ndarray) -> Prediction:
        """Classify ``image`` ``(C, H, W)`` with the trained model."""
        if self.trained is None:
            raise ValueError("train or load a network first")
        return predict(self.trained.network, image)

    def read_image(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Decode an image file to the trained model's ``(C, H, W)`` (ValueError or
        OSError with a sentence when it cannot)."""
        shape = self.trained.input_shape if self.trained is not None else None
        if shape is None:
            raise ValueError("train or load a network first")
        from cnn_explorer.training.image_folder import decode  # QtGui decodes files

        prepare = self._prepare(self.trained)
        channels = 3 if prepare is not None or shape[0] == 3 else 1
        image, _ = decode(Path(path), (shape[1], shape[2]), channels)
        return image if prepare is None else prepare(image[None])[0]


__all__ = ["Run", "TrainingSession"]
