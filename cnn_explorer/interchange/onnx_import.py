"""Import an ``.onnx`` file as an engine :class:`~cnn_explorer.engine.graph.Graph`.

Steps: read and validate the file (:mod:`onnx_reader`); refuse unsupported operators all
at once, naming each and listing what is supported; convert node by node
(:mod:`onnx_ops`, :mod:`onnx_ops_tensor`, :mod:`onnx_ops_const`); estimate the memory the
maps need at the chosen input size and refuse above
:data:`~cnn_explorer.limits.MAX_DOCUMENT_BYTES`; read the preprocessing and class names
(:mod:`onnx_meta`); then run the graph next to ``onnx.reference`` on one seeded random
input (:mod:`onnx_selfcheck`).

Uses the ``onnx`` package only: never onnxruntime, never code from the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from cnn_explorer.engine.graph import Graph
from cnn_explorer.interchange.files import check_memory
from cnn_explorer.interchange.model import (
    ImportedModel,
    ImportReport,
    InputShapeNeededError,
    ModelFileError,
    ReportEntry,
)
from cnn_explorer.interchange.onnx_graph import Builder, decode_node
from cnn_explorer.interchange.onnx_meta import bn_folding_note, read_preprocessing
from cnn_explorer.interchange.onnx_ops import build_converters
from cnn_explorer.interchange.onnx_ops_const import FOLDABLE, FOLDED, fold_constant
from cnn_explorer.interchange.onnx_patterns import rewrite
from cnn_explorer.interchange.onnx_reader import OnnxFile, read_onnx, tensor_array
from cnn_explorer.interchange.onnx_selfcheck import self_check

CONVERTERS = build_converters()
SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(CONVERTERS))
"""The ONNX operators the importer maps (plus shape arithmetic on constants, computed at
import: see :data:`onnx_ops_const.FOLDABLE`)."""


def choose_input_shape(f: OnnxFile, input_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """``(C, H, W)`` from the model's input (batch may be dynamic) or ``input_shape``,
    which must agree with every fixed dimension."""
    dims = f.input_dims
    if dims and len(dims) != 4:
        raise ModelFileError(
            f"the model's input {f.input_name!r} has {len(dims)} dimensions; this app runs "
            "image models with an (N, C, H, W) input"
        )
    chw = dims[1:] if dims else ("?", "?", "?")
    if input_shape is not None:
        given = tuple(int(v) for v in input_shape)
        if len(given) != 3 or min(given) < 1:
            raise ModelFileError(f"the input size must be (C, H, W), not {tuple(input_shape)}")
        for name, fixed, want in zip(("channels", "height", "width"), chw, given, strict=True):
            if isinstance(fixed, int) and fixed > 0 and fixed != want:
                raise ModelFileError(
                    f"the model's input has {fixed} {name}, not {want} (its input is "
                    f"{_dims_text(dims)})"
                )
        return (given[0], given[1], given[2])
    if not all(isinstance(d, int) and d > 0 for d in chw):
        raise InputShapeNeededError(
            f"the model's input size is not fixed ({_dims_text(dims) if dims else 'unknown'}): "
            "choose the input size (channels, height, width) to import it at"
        )
    c, h, w = (int(d) for d in chw)
    return (c, h, w)


def _dims_text(dims: Sequence[int | str]) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


def _constant_names(model: onnx.ModelProto, nodes: Sequence[onnx.NodeProto]) -> set[str]:
    """ONNX tensors known at import: initializers, Constant outputs, and outputs of
    foldable operators on constants (a dry run of the conversion's constant handling)."""
    known = {t.name for t in model.graph.initializer}
    for node in nodes:
        ins = [i for i in node.input if i]
        folds = node.op_type in FOLDABLE | {"Dropout"} and ins and all(i in known for i in ins)
        if node.op_type in ("Constant", "Shape") or folds:
            known.update(o for o in node.output if o)
    return known


def _refuse_unsupported(model: onnx.ModelProto, nodes: Sequence[onnx.NodeProto]) -> None:
    known = _constant_names(model, nodes)
    report = ImportReport(source="")
    bad = []
    for node in nodes:
        label = node.name or (node.output[0] if node.output else node.op_type)
        ins = [i for i in node.input if i]
        foreign = node.domain not in ("", "ai.onnx")
        folded = node.op_type in FOLDABLE and ins and all(i in known for i in ins)
        if foreign or (node.op_type not in CONVERTERS and not folded):
            op = f"{node.domain}.{node.op_type}" if foreign else node.op_type
            bad.append(f"{op} (node {label!r})")
            report.entries.append(
                ReportEntry(label, op, "unsupported", "no engine layer does this")
            )
    if bad:
        raise ModelFileError(
            f"the model uses {'an operator' if len(bad) == 1 else 'operators'} this app does "
            f"not support: {', '.join(bad)}. Supported: {', '.join(SUPPORTED_OPS)}",
            report,
        )


def _weights(model: onnx.ModelProto, b: Builder) -> None:
    for t in model.graph.initializer:
        arr = tensor_array(t)
        b.consts[t.name] = arr
        if arr.dtype.kind == "f":
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            if bad:
                b.report.warnings.append(
                    f"the weights {t.name!r} hold {bad} NaN or infinite value"
                    f"{'s' if bad != 1 else ''}: the outputs they reach will be NaN or inf"
                )


def convert(f: OnnxFile, input_shape: tuple[int, int, int], report: ImportReport) -> Graph:
    """The engine graph for ``f`` at ``input_shape`` (entries added to ``report``)."""
    model = f.model
    b = Builder(f.opset, f.input_name, input_shape, list(f.output_names[:1]))
    b.report = report
    _weights(model, b)
    spelled = rewrite(model.graph.node, b.consts, f.output_names[:1])
    _refuse_unsupported(model, spelled.nodes)
    report.entries.extend(spelled.entries)
    report.transformations.extend(spelled.notes)
    b.count_uses(spelled.nodes)
    for proto in spelled.nodes:
        node = decode_node(proto)
        ins = [i for i in node.inputs if i]
        try:
            if node.op in FOLDABLE and ins and all(b.is_const(i) for i in ins):
                fold_constant(b, node)
            else:
                CONVERTERS[node.op](b, node)
        except ModelFileError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, ArithmeticError) as exc:
            # A malformed node the checker let through: say which, never crash.
            raise ModelFileError(
                f"node {node.label!r} ({node.op}) could not be converted: {exc}"
            ) from None
    folded = sum(e.detail == FOLDED for e in report.entries)
    if folded:
        report.transformations.append(
            f"{folded} node{'s' if folded != 1 else ''} of shape arithmetic computed from "
            "constants at import"
        )
    if len(f.output_names) > 1:
        report.warnings.append(
            f"the model has {len(f.output_names)} outputs; this app shows the first, "
            f"{f.output_names[0]!r}"
        )
    return b.graph(f.output_names[0])


def import_onnx(
    path: Path, *, input_shape: Sequence[int] | None = None, check: bool = True
) -> ImportedModel:
    """Read ``path`` and convert it; ``check`` runs the self-check (slow for big models:
    the reference evaluator is plain NumPy)."""
    f = read_onnx(path)
    shape = choose_input_shape(f, input_shape)
    report = ImportReport(source=path.name)
    if f.external_files:
        report.transformations.append(f"weights read from {', '.join(f.external_files)}")
    try:
        graph = convert(f, shape, report)
    except ModelFileError as exc:
        if exc.report is None:  # the entries so far show where the conversion stopped
            raise ModelFileError(str(exc), report) from None
        raise
    check_memory(graph, shape, report)
    note = bn_folding_note(f.model)
    if note:
        report.transformations.append(note)
    preprocessing = read_preprocessing(f.model, path, shape, graph, report)
    if check:
        report.self_check = self_check(f, graph, shape)
    return ImportedModel(graph, preprocessing, report, path)
