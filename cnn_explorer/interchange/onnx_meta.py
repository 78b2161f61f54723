"""What an ONNX file says about its use rather than its maths: the preprocessing and class
names (our own ``metadata_props`` keys, common label keys, or a ``labels.txt`` beside the
model), and whether the exporter folded BatchNorm into the convolutions.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import onnx

from cnn_explorer.engine.graph import Graph
from cnn_explorer.interchange.labels import LABELS_FILE, labels_beside, parse_class_names
from cnn_explorer.interchange.model import (
    METADATA_CLASS_NAME_KEYS,
    METADATA_PREPROCESSING,
    ImportReport,
    ModelFileError,
    Preprocessing,
)


def _output_classes(graph: Graph, shape: tuple[int, int, int]) -> int | None:
    """The number of classes when the output is one score per class, else None."""
    out = graph.output_shapes(shape)[graph.output]
    return math.prod(out) if len(out) == 1 or all(d == 1 for d in out[1:]) else None


def read_preprocessing(
    model: onnx.ModelProto,
    path: Path,
    shape: tuple[int, int, int],
    graph: Graph,
    report: ImportReport,
) -> Preprocessing:
    """The model's :class:`Preprocessing`: ours from the metadata when the exporter wrote
    it, else the defaults for the channel count (RGB for 3, else grey copied into every
    channel; values 0–1)."""
    meta = {p.key: p.value for p in model.metadata_props}
    pre = Preprocessing(shape, colour="rgb" if shape[0] == 3 else "grey")
    if METADATA_PREPROCESSING in meta:
        try:
            pre = Preprocessing.from_json(meta[METADATA_PREPROCESSING])
        except ModelFileError as exc:
            report.warnings.append(f"the preprocessing in the file was ignored: {exc}")
        else:
            if pre.input_shape != shape:
                pre = dataclasses.replace(pre, input_shape=shape)
    names = pre.class_names
    source = "the file's preprocessing"
    for key in METADATA_CLASS_NAME_KEYS:
        if not names and key in meta:
            names, source = parse_class_names(meta[key]), f"the metadata key {key!r}"
    if not names:
        names, source = labels_beside(path, report), LABELS_FILE
    classes = _output_classes(graph, shape)
    if names and classes != len(names):
        report.warnings.append(
            f"{len(names)} class names from {source} do not match the model's "
            f"{classes if classes is not None else 'non-vector'} outputs: names not used"
        )
        names = ()
    elif names:
        report.transformations.append(f"{len(names)} class names from {source}")
    return dataclasses.replace(pre, class_names=names)


def _mentions_bn(name: str) -> bool:
    words = re.split(r"[^a-z]+", name.lower())
    return any(w in ("bn", "batchnorm") for w in words)


def bn_folding_note(model: onnx.ModelProto) -> str | None:
    """A note when the convolutions' filters evidently include a folded BatchNorm.

    Detectable cases only: no BatchNormalization node is left but a Conv's weights carry
    the anonymous name PyTorch's exporter gives a fused Conv+BatchNorm
    (``onnx::Conv_123``), or a Conv's node or weight name mentions ``bn``.
    """
    nodes = model.graph.node
    if any(n.op_type == "BatchNormalization" for n in nodes):
        return None
    convs = [n for n in nodes if n.op_type == "Conv" and len(n.input) > 1]
    fused = [
        n
        for n in convs
        if n.input[1].startswith("onnx::Conv_") or _mentions_bn(n.name) or _mentions_bn(n.input[1])
    ]
    if not fused:
        return None
    producer = model.producer_name or "the exporter"
    return (
        f"filters include folded BatchNorm: {producer} merged BatchNorm into "
        f"{len(fused)} of {len(convs)} Conv layers, so their weights and biases are the "
        "fused values and no BatchNorm layer appears"
    )
