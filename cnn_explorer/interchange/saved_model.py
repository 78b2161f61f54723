"""An :class:`ImportedModel`'s metadata (preprocessing, import report, source name) as
JSON, for saving it inside a project, and back with every field validated.

The project file keeps the graph and its arrays itself (``explorer.project_model``); this
module turns the rest into a JSON object (:func:`saved_meta`) and rebuilds the importer's
types from it (:func:`imported_from_saved`), refusing anything malformed with a
:class:`ModelFileError` whose sentence names the field. Qt-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnn_explorer.engine.graph import Graph
from cnn_explorer.interchange.model import (
    REPORT_STATUSES,
    ImportedModel,
    ImportReport,
    ModelFileError,
    Preprocessing,
    ReportEntry,
    SelfCheck,
)

MAX_TEXT = 2000
"""Longest string kept from a report field (a real one is a line)."""
MAX_ENTRIES = 20_000
"""Most report lines read (one per node of the source model, plus notes)."""


def saved_meta(model: ImportedModel) -> dict[str, Any]:
    """The metadata of ``model`` as a JSON-safe object."""
    rep = model.report
    check = rep.self_check
    return {
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


def imported_from_saved(graph: Graph, meta: object) -> ImportedModel:
    """The imported model a project saved: ``graph`` (already loaded) with the metadata
    of :func:`saved_meta`. ModelFileError names the first malformed field."""
    if not isinstance(meta, dict):
        raise ModelFileError("its metadata is not an object")
    pre = Preprocessing.from_dict(meta.get("preprocessing"))
    try:
        graph.output_shapes(pre.input_shape)
    except ValueError as exc:  # the engine's ShapeError
        raise ModelFileError(f"its graph cannot take the saved input size: {exc}") from None
    source = _text(meta.get("source", "model"), "source")
    report = _report(meta.get("report"))
    _warn_nonfinite(graph, report)
    return ImportedModel(graph, pre, report, Path(Path(source).name))


def _warn_nonfinite(graph: Graph, report: ImportReport) -> None:
    """Keep issue 10's rule on reopening: NaN/inf weights are shown, not fatal, and the
    report says so (the import's own warning is saved; a file edited since gets one)."""
    bad = sum(int(v.size - np.count_nonzero(np.isfinite(v))) for v in graph.state_arrays().values())
    if bad and not any("NaN or infinite" in w for w in report.warnings):
        report.warnings.append(f"the saved weights hold {bad} NaN or infinite values")


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ModelFileError(f"its import report is damaged ({what} is not a short text)")
    return value


def _texts(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_ENTRIES:
        raise ModelFileError(f"its import report is damaged ({what} is not a list of texts)")
    return [_text(v, what) for v in value]


def _report(data: object) -> ImportReport:
    """The saved import report, every field checked for its type and size."""
    if not isinstance(data, dict):
        raise ModelFileError("it has no import report")
    rep = ImportReport(_text(data.get("source", ""), "source"))
    rows = data.get("entries", [])
    if not isinstance(rows, list) or len(rows) > MAX_ENTRIES:
        raise ModelFileError("its import report is damaged (entries)")
    for row in rows:
        if not isinstance(row, list) or len(row) != 4:
            raise ModelFileError("its import report has a damaged entry")
        node, op, status, detail = _texts(row, "an entry")
        if status not in REPORT_STATUSES:
            raise ModelFileError(f"its import report has an entry with status {status!r:.40}")
        rep.entries.append(ReportEntry(node, op, status, detail))
    rep.transformations = _texts(data.get("transformations", []), "transformations")
    rep.warnings = _texts(data.get("warnings", []), "warnings")
    check = data.get("self_check")
    if check is not None:
        rep.self_check = _self_check(check)
    return rep


def _self_check(data: object) -> SelfCheck:
    bad = ModelFileError("its import report has a damaged self-check record")
    if not isinstance(data, dict):
        raise bad
    diff, tol, passed = data.get("max_abs_diff"), data.get("tolerance"), data.get("passed")
    if not isinstance(passed, bool):
        raise bad
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (diff, tol)):
        raise bad
    return SelfCheck(
        _text(data.get("reference"), "reference"),
        float(diff),  # type: ignore[arg-type]
        float(tol),  # type: ignore[arg-type]
        passed,
        _text(data.get("message"), "message"),
    )


__all__ = ["imported_from_saved", "saved_meta"]
