"""The imported model inside a project file: its graph description, arrays, preprocessing
and import report, so that reopening the project shows the same model without the
original file.

JSON (under ``"model"`` in ``project.json``)::

    {"graph": <engine graph config>, "arrays": [state key, ...], "source": "resnet.onnx",
     "preprocessing": <Preprocessing.to_dict()>, "report": {...}}

Array ``i`` of ``"arrays"`` is stored as ``model/<i>`` in ``arrays.npz`` (node names of
imported models hold any characters; indices keep the member names plain). Reading
validates everything before it is used, in the order of :mod:`.project`: the description
(graph rebuilt with its parameters capped, every key known, preprocessing, memory of the
maps), then the arrays, each checked against its exact shape before it is allocated.
The section is optional: projects without it open as before. Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
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
from cnn_explorer.explorer.graph_view_model import checked_shapes
from cnn_explorer.explorer.validate import ProjectError
from cnn_explorer.interchange.model import (
    REPORT_STATUSES,
    ImportedModel,
    ImportReport,
    Preprocessing,
    ReportEntry,
    SelfCheck,
)

PREFIX = "model/"
MAX_TEXT = 2000
"""Longest string kept from a report field (a real one is a line)."""
MAX_ENTRIES = 20_000
"""Most report lines read (one per node of the source model, plus notes)."""


@dataclass
class ModelPlan:
    """The model section after its JSON was validated: the graph built from its
    description, the arrays to read into it, and the rest of the section."""

    graph: Graph
    specs: dict[str, ArraySpec]
    keys: dict[str, str]
    """Stored member name (``model/<i>``) → the graph's state key."""
    preprocessing: Preprocessing
    report: ImportReport
    source: str


def model_entry(model: ImportedModel, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The JSON part of ``model``; its arrays go into ``arrays`` as ``model/<i>``."""
    config, params = network_to_state(model.graph)
    keys = sorted(params)
    for i, key in enumerate(keys):
        arrays[f"{PREFIX}{i}"] = params[key]
    rep = model.report
    check = rep.self_check
    return {
        "graph": config,
        "arrays": keys,
        "source": model.source.name,
        "preprocessing": model.preprocessing.to_dict(),
        "report": {
            "source": rep.source,
            "entries": [[e.node, e.op, e.status, e.detail] for e in rep.entries],
            "transformations": list(rep.transformations),
            "warnings": list(rep.warnings),
            "self_check": None
            if check is None
            else {
                "reference": check.reference,
                "max_abs_diff": check.max_abs_diff,
                "tolerance": check.tolerance,
                "passed": check.passed,
                "message": check.message,
            },
        },
    }


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
        or sorted(map(str, keys)) != sorted(specs)
        or len(set(keys)) != len(keys)
    ):
        raise ProjectError(f"{where} lists arrays that do not match its layers.")
    try:
        pre = Preprocessing.from_dict(entry.get("preprocessing"))
        checked_shapes(graph, pre.input_shape)
    except ValueError as exc:  # ModelFileError, and the engine's ShapeError
        raise ProjectError(f"{where} has an unusable preprocessing: {exc}.") from None
    return ModelPlan(
        graph,
        {f"{PREFIX}{i}": specs[k] for i, k in enumerate(keys)},
        {f"{PREFIX}{i}": k for i, k in enumerate(keys)},
        pre,
        _report(entry.get("report"), where),
        _text(entry.get("source", "model"), where, "source"),
    )


def check_model_members(plan: ModelPlan, names: frozenset[str], name: str) -> None:
    missing = sorted(plan.keys[k] for k in plan.specs if f"{k}.npy" not in names)
    if missing:
        raise ProjectError(f"{name}: the imported model lacks arrays {missing[:4]}.")


def build_model(plan: ModelPlan, arrays: dict[str, np.ndarray], name: str) -> ImportedModel:
    """Load the arrays into the planned graph (finite real numbers of the right shapes)."""
    params = {plan.keys[k]: arrays[k] for k in plan.specs}
    try:
        load_state(plan.graph, params, f"{name}: the imported model")
    except FileFormatError as exc:
        raise ProjectError(f"{exc}.") from None
    return ImportedModel(plan.graph, plan.preprocessing, plan.report, Path(plan.source))


def _text(value: object, where: str, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ProjectError(f"{where} has a damaged report ({what} is not a short text).")
    return value


def _texts(value: object, where: str, what: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_ENTRIES:
        raise ProjectError(f"{where} has a damaged report ({what} is not a list of texts).")
    return [_text(v, where, what) for v in value]


def _report(data: object, where: str) -> ImportReport:
    """The saved import report, every field checked for its type and size."""
    if not isinstance(data, dict):
        raise ProjectError(f"{where} has no import report.")
    rep = ImportReport(_text(data.get("source", ""), where, "source"))
    rows = data.get("entries", [])
    if not isinstance(rows, list) or len(rows) > MAX_ENTRIES:
        raise ProjectError(f"{where} has a damaged report (entries).")
    for row in rows:
        node, op, status, detail = (
            _texts(row, where, "an entry") if isinstance(row, list) and len(row) == 4 else [""] * 4
        )
        if status not in REPORT_STATUSES:
            raise ProjectError(f"{where} has a damaged report entry {row!r:.80}.")
        rep.entries.append(ReportEntry(node, op, status, detail))
    rep.transformations = _texts(data.get("transformations", []), where, "transformations")
    rep.warnings = _texts(data.get("warnings", []), where, "warnings")
    check = data.get("self_check")
    if check is not None:
        rep.self_check = _self_check(check, where)
    return rep


def _self_check(data: object, where: str) -> SelfCheck:
    bad = ProjectError(f"{where} has a damaged self-check record.")
    if not isinstance(data, dict):
        raise bad
    diff, tol, passed = data.get("max_abs_diff"), data.get("tolerance"), data.get("passed")
    if not isinstance(passed, bool) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in (diff, tol)
    ):
        raise bad
    return SelfCheck(
        _text(data.get("reference"), where, "reference"),
        float(diff),  # type: ignore[arg-type]
        float(tol),  # type: ignore[arg-type]
        passed,
        _text(data.get("message"), where, "message"),
    )


__all__ = ["PREFIX", "ModelPlan", "build_model", "check_model_members", "model_entry", "model_plan"]
