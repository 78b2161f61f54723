"""The Model tab's imported model inside a project file: its engine graph (description and
arrays) and the metadata that came with it (preprocessing, import report, source name),
so that reopening the project shows the same model without the original file.

JSON (under ``"model"`` in ``project.json``)::

    {"graph": <engine graph config>, "arrays": [state key, ...], "meta": {...}}

Array ``i`` of ``"arrays"`` is stored as ``model/<i>`` in ``arrays.npz`` (node names of
imported models hold any characters; indices keep the member names plain). Reading
validates the graph here, in the order of :mod:`.project` (description rebuilt with its
parameters capped, every key known, then each array checked against its exact shape
before it is allocated, real numbers only). NaN/inf weights are kept: the importer
accepted them with a warning (shown, not fatal), and the saved report still carries it.
``meta`` is a JSON object this module does not interpret: the caller turns it into the
importer's types with their own validation (``interchange.saved_model``), before the
project replaces anything.
The section is optional: projects without it open as before. Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnn_explorer.engine.archive import ArraySpec, FileFormatError
from cnn_explorer.engine.graph import Graph
from cnn_explorer.engine.serialize import (
    array_specs,
    graph_from_config,
    load_state,
    network_to_state,
)
from cnn_explorer.explorer.validate import ProjectError

PREFIX = "model/"


@dataclass
class SavedModel:
    """An imported model as a project holds it: the graph and its metadata (JSON-safe)."""

    graph: Graph
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelPlan:
    """The model section after its JSON was validated: the graph built from its
    description, the arrays to read into it, and the metadata."""

    graph: Graph
    specs: dict[str, ArraySpec]
    keys: dict[str, str]
    """Stored member name (``model/<i>``) → the graph's state key."""
    meta: dict[str, Any]


def model_entry(model: SavedModel, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The JSON part of ``model``; its arrays go into ``arrays`` as ``model/<i>``."""
    config, params = network_to_state(model.graph)
    keys = sorted(params)
    for i, key in enumerate(keys):
        arrays[f"{PREFIX}{i}"] = params[key]
    return {"graph": config, "arrays": keys, "meta": model.meta}


def model_plan(entry: object, name: str) -> ModelPlan | None:
    """Validate the model section's description (None when absent)."""
    if entry is None:
        return None
    where = f"{name}: the imported model"
    if not isinstance(entry, dict) or not isinstance(entry.get("graph"), dict):
        raise ProjectError(f"{where} section is damaged (no graph description).")
    try:
        graph = graph_from_config(entry["graph"], "its description")
    except FileFormatError as exc:
        raise ProjectError(f"{where} cannot be rebuilt: {exc}.") from None
    specs = array_specs(graph)
    keys = entry.get("arrays")
    if (
        not isinstance(keys, list)
        or not all(isinstance(k, str) for k in keys)
        or sorted(keys) != sorted(specs)
    ):
        raise ProjectError(f"{where} lists arrays that do not match its layers.")
    meta = entry.get("meta", {})
    if not isinstance(meta, dict):
        raise ProjectError(f"{where} has damaged metadata (not an object).")
    return ModelPlan(
        graph,
        {f"{PREFIX}{i}": specs[k] for i, k in enumerate(keys)},
        {f"{PREFIX}{i}": k for i, k in enumerate(keys)},
        meta,
    )


def check_model_members(plan: ModelPlan, names: frozenset[str], name: str) -> None:
    missing = sorted(plan.keys[k] for k in plan.specs if f"{k}.npy" not in names)
    if missing:
        raise ProjectError(f"{name}: the imported model lacks arrays {missing[:4]}.")


def build_model(plan: ModelPlan, arrays: dict[str, np.ndarray], name: str) -> SavedModel:
    """Load the arrays into the planned graph (real numbers of the right shapes; NaN/inf
    kept as the import accepted them)."""
    params = {plan.keys[k]: arrays[k] for k in plan.specs}
    try:
        load_state(plan.graph, params, f"{name}: the imported model", allow_nonfinite=True)
    except FileFormatError as exc:
        raise ProjectError(f"{exc}.") from None
    return SavedModel(plan.graph, plan.meta)


__all__ = [
    "PREFIX",
    "ModelPlan",
    "SavedModel",
    "build_model",
    "check_model_members",
    "model_entry",
    "model_plan",
]
