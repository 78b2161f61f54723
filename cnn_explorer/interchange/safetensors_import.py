"""Import a state_dict (weights by name, no architecture) from ``.safetensors`` — and,
through :mod:`torch_file`, from ``.pt``/``.pth`` — as an engine Graph.

Where the architecture comes from:

1. Our own PyTorch export: the safetensors header names the exported graph
   (``Graph.to_dict()`` JSON) and which engine array each key holds
   (:data:`~cnn_explorer.interchange.torch_export.METADATA_ARCHITECTURE`, ``…KEYS``).
2. Otherwise a built-in template matched on the key names and checked on the shapes
   (:mod:`state_dict_templates`: LeNet-5, AlexNet, VGG, ResNet-18/34 in torchvision's
   naming). No match is a :class:`ModelFileError` listing what was expected.

The file is checked before anything is loaded: a regular file within the app's size
limit (``limits.MAX_MODEL_BYTES``), then the header (its declared
length, JSON, each tensor's dtype, shape and byte range against the file) — a hostile file
cannot make us allocate more than it holds. Then ``safetensors.numpy.load_file`` reads it.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cnn_explorer.engine.archive import FileFormatError
from cnn_explorer.engine.serialize import FORMAT_VERSION, GRAPH_FORMAT_NAME, graph_from_config
from cnn_explorer.interchange.files import check_memory, check_model_file
from cnn_explorer.interchange.model import (
    METADATA_CLASS_NAMES,
    METADATA_PREPROCESSING,
    ImportedModel,
    ImportReport,
    ModelFileError,
    Preprocessing,
    ReportEntry,
)
from cnn_explorer.interchange.state_dict_templates import (
    NUM_BATCHES,
    build,
    match,
    natural_sorted,
)
from cnn_explorer.interchange.torch_export import METADATA_ARCHITECTURE, METADATA_KEYS

MAX_HEADER_BYTES = 16 << 20
"""Largest safetensors JSON header (ResNet-34's is about 20 kB)."""

MAX_RANK = 8

DTYPES: dict[str, np.dtype] = {
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
}
"""safetensors dtypes the importer reads (integers only for ``num_batches_tracked``)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def _check_entry(name: str, info: Any, data_len: int, label: str) -> tuple[int, int]:
    """One tensor's header entry checked against the data block; ``(begin, end)``."""
    if not isinstance(info, dict):
        raise ModelFileError(f"{label}: tensor {name!r} has a damaged description")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype == "BF16":
        raise ModelFileError(
            f"{label}: tensor {name!r} is bfloat16; save the weights as float32 "
            "(model.float()) and try again"
        )
    if dtype not in DTYPES:
        raise ModelFileError(
            f"{label}: tensor {name!r} has dtype {dtype!r}; this app reads {', '.join(DTYPES)}"
        )
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_RANK
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
    ):
        raise ModelFileError(f"{label}: tensor {name!r} has an invalid shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
    ):
        raise ModelFileError(f"{label}: tensor {name!r} has invalid data offsets")
    begin, end = offsets
    nbytes = math.prod(shape) * DTYPES[dtype].itemsize
    if not 0 <= begin <= end <= data_len or end - begin != nbytes:
        raise ModelFileError(
            f"{label} is truncated or damaged: tensor {name!r} ({'×'.join(map(str, shape))} "
            f"{dtype}) needs bytes {begin}–{end} but the file holds {data_len} bytes of data"
        )
    return begin, end


def read_header(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``(tensors' header entries, metadata)`` of a safetensors file, every entry checked
    against the file's real size; nothing else is read."""
    label = path.name
    size = check_model_file(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ModelFileError(f"{label} is truncated: not even a safetensors header")
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER_BYTES:
            raise ModelFileError(
                f"{label} claims a {n:,}-byte header, more than the {MAX_HEADER_BYTES:,} "
                "allowed: it is not a safetensors file or it is damaged"
            )
        if 8 + n > size:
            raise ModelFileError(f"{label} is truncated: its header runs past the end")
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ModelFileError(
            f"{label} is not a safetensors file (its header is not JSON)"
        ) from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{label} is not a safetensors file (bad header)")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError(f"{label}: the header's metadata must map names to text")
    data_len = size - 8 - n
    spans = sorted(_check_entry(k, v, data_len, label) for k, v in header.items())
    for (_, end), (begin, _) in itertools.pairwise(spans):
        if begin < end:
            raise ModelFileError(f"{label} is damaged: two tensors share the same bytes")
    return header, meta


def load_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(tensors, metadata)`` after :func:`read_header` accepted the file."""
    _, meta = read_header(path)
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path.name} cannot be read as safetensors ({exc})") from None
    return tensors, meta


# --------------------------------------------------------------------------------------
# State dict → graph
# --------------------------------------------------------------------------------------


def _floats(tensors: Mapping[str, np.ndarray], label: str) -> dict[str, np.ndarray]:
    """Float tensors as float32; integer tensors only where torch keeps counters."""
    out = {}
    for key, arr in tensors.items():
        a = np.asarray(arr)
        if a.dtype.kind == "f":
            out[key] = np.ascontiguousarray(a, dtype=np.float32)
        elif key.endswith(f".{NUM_BATCHES}"):
            out[key] = a
        else:
            raise ModelFileError(f"{label}: {key} holds {a.dtype} values, not weights")
    return out


def _entries(tensors: Mapping[str, np.ndarray], mapping: Mapping[str, str]) -> list[ReportEntry]:
    """One report line per key, in natural order (``features.5`` before ``features.12``)."""
    entries = []
    for key in natural_sorted(tensors):
        shape = "×".join(str(s) for s in np.shape(tensors[key])) or "scalar"
        if key in mapping:
            entries.append(ReportEntry(key, shape, "mapped", f"engine {mapping[key]}"))
        else:
            detail = "a counter the engine does not need (dropped)"
            entries.append(ReportEntry(key, shape, "transformed", detail))
    return entries


def _warnings(tensors: Mapping[str, np.ndarray]) -> list[str]:
    bad = [k for k, v in tensors.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    return [f"{k} contains NaN or infinite values" for k in natural_sorted(bad)]


def _from_own_export(
    tensors: dict[str, np.ndarray], meta: Mapping[str, str], label: str
) -> tuple[Any, dict[str, str], tuple[int, int, int]]:
    """The graph a CNN Explorer export describes in its header."""
    try:
        arch = json.loads(meta[METADATA_ARCHITECTURE])
        keys = json.loads(meta[METADATA_KEYS])
        shape = tuple(int(v) for v in arch["input_shape"])
        config = {"format": GRAPH_FORMAT_NAME, "version": FORMAT_VERSION, **arch["graph"]}
    except (ValueError, TypeError, KeyError):
        raise ModelFileError(f"{label}: the architecture in its header is damaged") from None
    if not isinstance(keys, dict) or len(shape) != 3:
        raise ModelFileError(f"{label}: the architecture in its header is damaged")
    try:
        graph = graph_from_config(config, label)
    except FileFormatError as exc:
        raise ModelFileError(str(exc)) from None
    missing = natural_sorted(set(keys) - set(tensors))
    needed = set(graph.state_arrays())
    if missing or set(keys.values()) != needed:
        lost = missing or natural_sorted(needed - set(keys.values()))
        raise ModelFileError(f"{label} lacks the weights {', '.join(lost[:6])}")
    try:
        graph.load_state_arrays({keys[k]: tensors[k] for k in keys})
    except ValueError as exc:
        raise ModelFileError(f"{label}: the shapes disagree with its architecture: {exc}") from None
    return graph, dict(keys), (shape[0], shape[1], shape[2])


def _strip_prefix(tensors: dict[str, np.ndarray], report: ImportReport) -> dict[str, np.ndarray]:
    """``nn.DataParallel`` saves every key as ``module.…``: drop that prefix."""
    if tensors and all(k.startswith("module.") for k in tensors):
        report.transformations.append("removed the 'module.' prefix nn.DataParallel adds")
        return {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def _shape3(values: Any, label: str) -> tuple[int, int, int]:
    try:
        s = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        s = ()
    if len(s) != 3 or min(s) < 1:
        raise ModelFileError(f"{label}: the input shape must be C, H, W, not {values!r}")
    return (s[0], s[1], s[2])


def import_state_dict(
    tensors: Mapping[str, np.ndarray],
    metadata: Mapping[str, str],
    source: Path,
    *,
    input_shape: tuple[int, ...] | None = None,
) -> ImportedModel:
    """An :class:`ImportedModel` from named weights: the architecture from our own export's
    header or a matching built-in template. ``input_shape`` ``(C, H, W)`` overrides the
    usual size (e.g. 32×32 for a ResNet trained on CIFAR)."""
    label = source.name
    report = ImportReport(source=label)
    arrays = _floats(tensors, label)
    if not arrays:
        raise ModelFileError(f"{label} holds no tensors")
    override = None if input_shape is None else _shape3(input_shape, label)
    prep: Preprocessing | None = None
    if METADATA_ARCHITECTURE in metadata:
        graph, mapping, shape = _from_own_export(arrays, metadata, label)
        report.transformations.append("architecture read from the file (a CNN Explorer export)")
        if METADATA_PREPROCESSING in metadata:
            prep = Preprocessing.from_json(metadata[METADATA_PREPROCESSING])
        shape = override or shape
    else:
        arrays = _strip_prefix(arrays, report)
        template = match(arrays)
        first = next(op for op in template.ops if op.kind == "conv")
        channels = int(np.shape(arrays[f"{first.name}.weight"])[1])
        shape = override or (channels, *template.input_hw)
        graph, mapping = build(template, arrays, shape)
        report.transformations.append(
            f"architecture: the built-in {template.name} template, matched on the key names"
        )
        if template.imagenet and shape[0] == 3:
            prep = Preprocessing(shape, "rgb", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    try:
        graph.output_shapes(shape)
    except ValueError as exc:
        raise ModelFileError(f"{label} does not compute on input {shape}: {exc}") from None
    check_memory(graph, (shape[0], shape[1], shape[2]), report)
    if prep is None:
        prep = Preprocessing(shape, "rgb" if shape[0] == 3 else "grey")
    elif prep.input_shape != shape:
        prep = dataclasses.replace(prep, input_shape=shape)
    if METADATA_CLASS_NAMES in metadata and not prep.class_names:
        try:
            names = json.loads(metadata[METADATA_CLASS_NAMES])
        except ValueError:
            names = None
        if isinstance(names, list):
            prep.class_names = tuple(str(n) for n in names)
    report.entries = _entries(arrays, mapping)
    report.warnings = _warnings(arrays)
    return ImportedModel(graph=graph, preprocessing=prep, report=report, source=source)


def import_safetensors(
    path: str | os.PathLike[str], *, input_shape: tuple[int, ...] | None = None
) -> ImportedModel:
    """Import a ``.safetensors`` state_dict (see the module notes)."""
    p = Path(path)
    tensors, meta = load_safetensors(p)
    return import_state_dict(tensors, meta, p, input_shape=input_shape)


def import_state_dict_file(
    path: str | os.PathLike[str], *, input_shape: tuple[int, ...] | None = None
) -> ImportedModel:
    """``.safetensors`` here, ``.pt``/``.pth`` through :mod:`torch_file` (torch needed)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        return import_safetensors(p, input_shape=input_shape)
    if suffix in (".pt", ".pth"):
        from cnn_explorer.interchange.torch_file import load_torch_state_dict

        tensors = load_torch_state_dict(p)
        return import_state_dict(tensors, {}, p, input_shape=input_shape)
    raise ModelFileError(f"{p.name}: expected a .safetensors, .pt or .pth file")


__all__ = [
    "MAX_HEADER_BYTES",
    "import_safetensors",
    "import_state_dict",
    "import_state_dict_file",
    "load_safetensors",
    "read_header",
]
