"""Project files: one zip holding ``project.json`` (format, version, layer configs) and
``arrays.npz`` (input and weights), written atomically and read without pickle.

Why a zip of JSON + npz: the JSON is human-readable and diffable and the arrays stay exact
(float32 bit for bit). Reading never unpickles or executes anything and is bounded: both
archives go through :mod:`cnn_explorer.engine.archive`, which reads only the members the
JSON refers to, each checked against the shape its layer implies before it is allocated
(a few kilobytes of DEFLATE cannot claim gigabytes). Every field is validated strictly
(:mod:`cnn_explorer.explorer.validate`) and the memory of the document is estimated before
anything is computed. A malformed, oversized or future-version file raises
:class:`ProjectError` with a sentence naming the file and the problem; nothing is changed
until the whole file has been validated. Qt-free.

A project may also carry the Training tab's trained classifier (:class:`TrainedState`): its
engine config (``network_to_state``: a chain of layers, or a graph network's nodes) under
``"trained"`` in ``project.json``, its arrays as ``trained/<layer or node>.<name>`` in
``arrays.npz``. The section is optional, so format version 1 is unchanged: files without it
load as before, and older readers ignore it. The Model tab's imported model is an optional
section of the same kind (:mod:`.project_model`).

The trained section may in turn carry the run's :class:`~cnn_explorer.engine.history.
TrainingHistory` (loss and accuracy curves, the filter snapshot of every epoch, the last
validation confusion matrix) under ``"trained"`` → ``"history"``, its arrays under
``trained/history/`` (:func:`~cnn_explorer.explorer.validate.plan_history` says which and
validates them). Also optional: a file without it opens with the network alone. A long
history is thinned evenly to the limits in :mod:`cnn_explorer.limits` when saved.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from cnn_explorer import __version__
from cnn_explorer.engine.archive import (
    ArraySpec,
    FileFormatError,
    archive_from_bytes,
    open_archive,
)
from cnn_explorer.engine.history import TrainingHistory
from cnn_explorer.engine.serialize import (
    Model,
    array_specs,
    atomic_write,
    check_classifier,
    load_state,
    model_from_config,
    network_to_state,
    write_npz,
)
from cnn_explorer.explorer.project_model import (
    ModelPlan,
    SavedModel,
    build_model,
    check_model_members,
    model_entry,
    model_plan,
)
from cnn_explorer.explorer.specs import LayerSpec
from cnn_explorer.explorer.validate import (
    INPUT_SPEC,
    HistoryPlan,
    LayerPlan,
    ProjectError,
    check_document_size,
    history_from_arrays,
    history_key,
    plan_history,
    plan_layers,
)
from cnn_explorer.limits import (
    MAX_EPOCHS,
    MAX_HISTORY_BATCHES,
    MAX_HISTORY_SNAPSHOT_VALUES,
)

FORMAT = "cnn-explorer-project"
VERSION = 1
SUFFIX = ".cnnx"
TRAINED_PREFIX = "trained/"
META_MEMBER = "project.json"
ARRAYS_MEMBER = "arrays.npz"
MAX_META_BYTES = 4 * 2**20
"""Largest ``project.json`` read (a real one is a few kilobytes)."""
MAX_OUTER_MEMBERS = 64
"""A project zip holds two entries; a few more are tolerated (and ignored)."""
_DIRECTORY_SLACK = 1 << 16


@dataclass
class TrainedState:
    """A trained classifier as everything needed to use it again.

    ``network`` is the whole engine network (conv part and Flatten/Dense head), a chain
    :class:`~cnn_explorer.engine.network.Network` or a
    :class:`~cnn_explorer.engine.graph.Graph` (an imported model fine-tuned here);
    ``class_names[k]`` names output ``k``; ``input_shape`` ``(C, H, W)`` is the image size
    it was trained on (images are resized to it and scaled to [0, 1]; None if unknown);
    ``extra`` holds JSON-safe notes such as the dataset source; ``history`` how it was
    trained (None for a network loaded from a weights file, or an older project).
    """

    network: Model
    class_names: list[str]
    input_shape: tuple[int, int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    history: TrainingHistory | None = None


@dataclass
class Project:
    """Everything a project file holds: explorer input and layers, optional trained net."""

    input: np.ndarray
    layers: list[LayerSpec]
    trained: TrainedState | None = None
    model: SavedModel | None = None
    """The Model tab's imported model (graph and arrays; preprocessing and import report
    as metadata)."""


def save_project(
    path: str,
    x: np.ndarray,
    layers: list[LayerSpec],
    trained: TrainedState | None = None,
    model: SavedModel | None = None,
) -> None:
    """Write input ``x (C, H, W)``, ``layers``, an optional trained network and an optional
    imported model to ``path`` atomically (temp + replace)."""
    arrays: dict[str, np.ndarray] = {"input": np.asarray(x, np.float32)}
    entries = []
    for i, spec in enumerate(layers):
        entry: dict[str, Any] = {"kind": spec.kind, "config": spec.config, "enabled": spec.enabled}
        if spec.weight is not None:
            arrays[f"layer{i}.weight"] = spec.weight
            entry["weight"] = f"layer{i}.weight"
        if spec.bias is not None:
            arrays[f"layer{i}.bias"] = spec.bias
            entry["bias"] = f"layer{i}.bias"
        entries.append(entry)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "app_version": __version__,
        "input": "input",
        "layers": entries,
    }
    if trained is not None:
        meta["trained"] = _trained_entry(trained, arrays)
    if model is not None:
        meta["model"] = model_entry(model, arrays)
    buf = io.BytesIO()
    write_npz(buf, arrays)
    with atomic_write(path) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("project.json", json.dumps(meta, indent=2))
        zf.writestr("arrays.npz", buf.getvalue())


def load_project(path: str) -> tuple[np.ndarray, list[LayerSpec]]:
    """Read and fully validate a project; returns ``(input, layers)`` or raises ProjectError."""
    project = read_project(path)
    return project.input, project.layers


def read_project(path: str) -> Project:
    """Read and fully validate a project, trained network included, or raise ProjectError.

    Order matters for safety: the JSON is read (size-capped) and validated first, so the
    exact arrays it implies are known, then only those arrays are read, each checked
    before it is allocated; last, the document's memory is estimated."""
    name = os.path.basename(path)
    try:
        with open_archive(path, name, MAX_OUTER_MEMBERS, "readable project file") as outer:
            if META_MEMBER not in outer.names or ARRAYS_MEMBER not in outer.names:
                raise ProjectError(f"{name} is not a CNN Explorer project (project.json missing).")
            meta = _parse_json(outer.read_bytes(META_MEMBER, MAX_META_BYTES), name)
            _check_header(meta, name)
            plans = plan_layers(meta.get("layers"), name)
            trained = _trained_plan(meta.get("trained"), name)
            model = model_plan(meta.get("model"), name)
            wanted = _wanted_arrays(meta, plans, trained, model, name)
            budget = sum(spec.max_bytes() for _, spec in wanted) + _DIRECTORY_SLACK
            raw = outer.read_bytes(ARRAYS_MEMBER, budget)
        with archive_from_bytes(raw, name) as inner:
            if trained is not None:
                _check_trained_members(trained, inner.names, name)
            if model is not None:
                check_model_members(model, inner.names, name)
            arrays = {key: inner.read_array(f"{key}.npy", spec) for key, spec in wanted}
    except FileNotFoundError:
        raise ProjectError(f"{name}: no such file.") from None
    except FileFormatError as exc:
        raise ProjectError(str(exc)) from None
    except OSError as exc:
        raise ProjectError(f"{name} cannot be read ({exc.strerror or exc}).") from None
    x = arrays[meta["input"]]
    if x.shape[0] not in (1, 3):
        raise ProjectError(f"{name}: input has unsupported shape {x.shape} (1 or 3 channels).")
    specs = [_layer(p, arrays) for p in plans]
    check_document_size(x.shape, specs, name)
    state = None if trained is None else _trained(trained, arrays, name)
    imported = None if model is None else build_model(model, arrays, name)
    return Project(x.astype(np.float32), specs, state, imported)


def _parse_json(raw: bytes, name: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise ProjectError(f"{name}: project.json is damaged ({exc}).") from None


def _wanted_arrays(
    meta: dict[str, Any],
    plans: list[LayerPlan],
    trained: _TrainedPlan | None,
    model: ModelPlan | None,
    name: str,
) -> list[tuple[str, ArraySpec]]:
    """Every array the JSON refers to, with what it must be (an array may serve once)."""
    key = meta.get("input")
    if not isinstance(key, str) or not key:
        raise ProjectError(f"{name}: array for input is missing.")
    wanted = [(key, INPUT_SPEC)]
    for plan in plans:
        wanted.extend(plan.arrays.values())
    if trained is not None:
        wanted.extend(trained.specs.items())
    if model is not None:
        wanted.extend(model.specs.items())
    seen: dict[str, ArraySpec] = {}
    for k, spec in wanted:
        if seen.setdefault(k, spec) is not spec:
            raise ProjectError(f"{name}: {spec.what} and {seen[k].what} share one array {k!r}.")
    return list(seen.items())


def _layer(plan: LayerPlan, arrays: dict[str, np.ndarray]) -> LayerSpec:
    if plan.kind != "conv":
        return LayerSpec(plan.kind, plan.config, enabled=plan.enabled)
    w = arrays[plan.arrays["weight"][0]].astype(np.float32)
    b = arrays[plan.arrays["bias"][0]].astype(np.float32)
    return LayerSpec("conv", plan.config, w, b, plan.enabled)


@dataclass
class _TrainedPlan:
    """The trained section after its JSON was validated: the network built from its
    description (initial values) and the arrays to read into it."""

    network: Model
    specs: dict[str, ArraySpec]
    entry: dict[str, Any]
    history: HistoryPlan | None = None


def _trained_entry(trained: TrainedState, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The JSON part of a trained network; its arrays go into ``arrays`` under a prefix."""
    config, params = network_to_state(trained.network)
    for key, value in params.items():
        arrays[TRAINED_PREFIX + key] = value
    shape = trained.input_shape
    entry = {
        "network": config,
        "class_names": [str(n) for n in trained.class_names],
        "input_shape": [int(s) for s in shape] if shape is not None else None,
        "extra": dict(trained.extra),
    }
    if trained.history is not None:
        entry["history"] = _history_entry(trained.history, arrays)
    return entry


def _history_entry(history: TrainingHistory, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The JSON part of a training history (thinned to the file's limits); its arrays go
    into ``arrays`` under :data:`~cnn_explorer.explorer.validate.HISTORY_PREFIX`."""
    h = history.thinned(MAX_HISTORY_BATCHES, MAX_EPOCHS, MAX_HISTORY_SNAPSHOT_VALUES)
    arrays[history_key("batches")] = np.array([h.batch_x, h.batch_loss], np.float64)
    arrays[history_key("epochs")] = h.epoch_columns()
    if h.confusion is not None:
        arrays[history_key("confusion")] = np.asarray(h.confusion, np.int64)
    for i, (_, layers) in enumerate(h.snapshots):
        for j, (_, weight) in enumerate(layers):
            arrays[history_key(f"snapshot{i}.{j}")] = np.asarray(weight, np.float32)
    titles = [title for title, _ in h.snapshots[0][1]] if h.snapshots else []
    return {
        "batches": len(h.batch_x),
        "epochs": len(h.epochs),
        "confusion": h.confusion is not None,
        "filter_layers": titles,
        "snapshots": [caption for caption, _ in h.snapshots],
    }


def _trained_plan(entry: object, name: str) -> _TrainedPlan | None:
    """Validate the optional trained section's description (None when absent)."""
    if entry is None:
        return None
    where = f"{name}: the trained network"
    if not isinstance(entry, dict) or not isinstance(entry.get("network"), dict):
        raise ProjectError(f"{where} section is damaged (no network description).")
    try:
        network = model_from_config(entry["network"], "its description")
    except FileFormatError as exc:
        raise ProjectError(f"{where} cannot be rebuilt: {exc}.") from None
    if not isinstance(entry.get("extra", {}), dict):
        raise ProjectError(f"{where} has damaged notes ('extra' is not a dictionary).")
    specs = {
        # Strings are admitted here (bounded like numbers) only to be named below.
        k: replace(spec, kinds="fiuSU", what=f"the trained network's {spec.what}")
        for k, spec in array_specs(network, TRAINED_PREFIX).items()
    }
    names = entry.get("class_names")
    history = plan_history(
        entry.get("history"),
        [tuple(layer.params["weight"].shape) for layer in network.layers if layer.kind == "conv"],
        len(names) if isinstance(names, list) and names else None,
        name,
    )
    if history is not None:
        specs.update(history.specs)
    return _TrainedPlan(network, specs, entry, history)


def _check_trained_members(plan: _TrainedPlan, names: frozenset[str], name: str) -> None:
    """The network's own arrays must all be there (a missing history array is named by
    the archive reader with the history's words)."""
    own = [k for k in plan.specs if plan.history is None or k not in plan.history.specs]
    missing = sorted(k[len(TRAINED_PREFIX) :] for k in own if f"{k}.npy" not in names)
    if missing:
        raise ProjectError(f"{name}: the trained network lacks arrays {missing}.")


def _trained(plan: _TrainedPlan, arrays: dict[str, np.ndarray], name: str) -> TrainedState:
    """Load the trained arrays into the planned network and check it is a usable
    classifier (finite weights, one class name per output), then its history."""
    where = f"{name}: the trained network"
    own = set(plan.network.state_arrays())
    params = {k[len(TRAINED_PREFIX) :]: arrays[k] for k in plan.specs}
    params = {k: v for k, v in params.items() if k in own}
    entry = plan.entry
    try:
        load_state(plan.network, params, where)
        names, shape = check_classifier(
            plan.network, entry.get("class_names"), entry.get("input_shape"), where
        )
    except FileFormatError as exc:
        raise ProjectError(f"{exc}.") from None
    if names is None:
        raise ProjectError(f"{where} has no valid list of class names.")
    history = None
    if plan.history is not None:
        history = history_from_arrays(plan.history, arrays, len(names), name)
    return TrainedState(plan.network, names, shape, dict(entry.get("extra", {})), history)


def _check_header(meta: object, name: str) -> None:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ProjectError(f"{name} is not a CNN Explorer project.")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ProjectError(f"{name}: invalid format version {version!r}.")
    if version > VERSION:
        raise ProjectError(
            f"{name} was saved by a newer CNN Explorer (format version {version}; this "
            f"version reads up to {VERSION}). Update the app to open it."
        )


__all__ = [
    "FORMAT",
    "SUFFIX",
    "VERSION",
    "Project",
    "ProjectError",
    "TrainedState",
    "load_project",
    "read_project",
    "save_project",
]
