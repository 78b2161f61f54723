"""Read an ``.onnx`` file safely: sizes checked before reading, external weight files only
from the model's own folder (never through a symlink, never past their end), the protobuf
parsed and checked with the ``onnx`` package, and nothing from the file ever run.

Returns the :class:`onnx.ModelProto` with every tensor in memory, plus the facts the
importer needs (opset, the real input, constants as NumPy arrays). Every failure is a
:class:`~cnn_explorer.interchange.model.ModelFileError` with one sentence for the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from cnn_explorer.interchange.files import check_model_file, check_regular_file, mb, read_range
from cnn_explorer.interchange.model import ModelFileError
from cnn_explorer.limits import MAX_MODEL_BYTES

MIN_OPSET = 11
"""Oldest default-domain opset the importer reads (what the op table implements)."""

_ELEMENT_SIZES: dict[int, int] = {
    onnx.TensorProto.FLOAT: 4,
    onnx.TensorProto.DOUBLE: 8,
    onnx.TensorProto.FLOAT16: 2,
    onnx.TensorProto.INT64: 8,
    onnx.TensorProto.INT32: 4,
    onnx.TensorProto.INT8: 1,
    onnx.TensorProto.UINT8: 1,
    onnx.TensorProto.BOOL: 1,
}


@dataclass
class OnnxFile:
    """A parsed, validated model with its weights loaded."""

    model: onnx.ModelProto
    opset: int
    input_name: str
    input_dims: tuple[int | str, ...]
    """The input's dims as stored: ints, or the symbol name (``"N"``, ``"?"``) of a
    dynamic one."""
    output_names: tuple[str, ...]
    external_files: tuple[str, ...]
    """Names of the external weight files read (beside the model)."""


def _external_entries(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    tensors = [t for t in model.graph.initializer]
    for node in model.graph.node:
        tensors.extend(a.t for a in node.attribute if a.type == onnx.AttributeProto.TENSOR)
    return [t for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]


def _expected_bytes(t: onnx.TensorProto) -> int | None:
    size = _ELEMENT_SIZES.get(t.data_type)
    return None if size is None else size * int(np.prod(list(t.dims), dtype=np.int64))


def _external_location(t: onnx.TensorProto, folder: Path) -> tuple[Path, int, int | None]:
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    rel = Path(location)
    if not location or rel.is_absolute() or ".." in rel.parts or len(rel.parts) != 1:
        raise ModelFileError(
            f"the weights of {t.name!r} are stored in {location!r}, which is not a file in "
            "the model's own folder; external weight files must sit beside the .onnx file"
        )
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise ModelFileError(f"the external data record of {t.name!r} is malformed") from None
    if offset < 0 or (length is not None and length < 0):
        raise ModelFileError(f"the external data record of {t.name!r} is malformed")
    return folder / rel.name, offset, length


def _load_external(model: onnx.ModelProto, folder: Path, budget: int) -> tuple[str, ...]:
    """Read every external tensor into the model, after checking every file and range."""
    entries = _external_entries(model)
    sizes: dict[Path, int] = {}
    plan = []
    for t in entries:
        path, offset, length = _external_location(t, folder)
        if path not in sizes:
            sizes[path] = check_regular_file(path, f"the weight file of {t.name!r},")
        expected = _expected_bytes(t)
        if length is None:
            length = expected if expected is not None else sizes[path] - offset
        if expected is not None and length != expected:
            raise ModelFileError(
                f"the weights of {t.name!r} take {length} bytes in {path.name} but its shape "
                f"needs {expected}; the file is damaged"
            )
        if offset + length > sizes[path]:
            raise ModelFileError(
                f"the weights of {t.name!r} run past the end of {path.name}; the file is truncated"
            )
        plan.append((t, path, offset, length))
    total = sum(sizes.values())
    if total > budget:
        raise ModelFileError(
            f"the model's weight files take {mb(total)}, more than the {mb(MAX_MODEL_BYTES)} "
            "this app reads"
        )
    for t, path, offset, length in plan:
        data = read_range(path, offset, length)
        t.raw_data = data
        t.data_location = onnx.TensorProto.DEFAULT
        del t.external_data[:]
    return tuple(sorted(p.name for p in sizes))


def _opset(model: onnx.ModelProto) -> int:
    opset = None
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            opset = int(imp.version)
    if opset is None:
        raise ModelFileError("the model does not say which ONNX opset it uses")
    if opset < MIN_OPSET:
        raise ModelFileError(
            f"the model uses ONNX opset {opset}; this app reads opset {MIN_OPSET} and newer "
            "(re-export it with a newer opset, or upgrade it with onnx.version_converter)"
        )
    return opset


def _dims(vi: onnx.ValueInfoProto) -> tuple[int | str, ...]:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return ()
    return tuple(
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim
    )


def _check(model: onnx.ModelProto, name: str) -> None:
    """``onnx.checker`` on the model. The checker insists that a graph output states its
    shape, which writers (and onnxruntime) treat as optional: such outputs are given an
    empty shape for the check only."""
    unshaped = [
        vi.type.tensor_type
        for vi in model.graph.output
        if vi.type.HasField("tensor_type") and not vi.type.tensor_type.HasField("shape")
    ]
    for t in unshaped:
        t.shape.SetInParent()
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{name} is not a valid ONNX model: {first}") from None
    finally:
        for t in unshaped:
            t.ClearField("shape")


def read_onnx(path: Path) -> OnnxFile:
    """Parse and validate ``path`` (already a checked regular file) and load its weights."""
    size = check_model_file(path)
    data = read_range(path)
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise ModelFileError(
            f"{path.name} is not a readable ONNX model (it may be truncated or another kind "
            f"of file): {type(exc).__name__}"
        ) from None
    if not model.HasField("graph") or not model.graph.node:
        raise ModelFileError(f"{path.name} is not an ONNX model (it holds no graph)")
    opset = _opset(model)
    external = _load_external(model, path.parent, MAX_MODEL_BYTES - size)
    _check(model, path.name)
    init_names = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in init_names]
    if len(inputs) != 1:
        names = ", ".join(vi.name for vi in inputs) or "none"
        raise ModelFileError(
            f"the model has {len(inputs)} inputs ({names}); this app runs models with one "
            "image input"
        )
    elem = inputs[0].type.tensor_type.elem_type
    if elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
        raise ModelFileError(
            f"the model's input {inputs[0].name!r} is not a float tensor; this app feeds images "
            "as float32"
        )
    outputs = tuple(vi.name for vi in model.graph.output)
    return OnnxFile(model, opset, inputs[0].name, _dims(inputs[0]), outputs, external)


def tensor_array(t: onnx.TensorProto) -> np.ndarray:
    """A TensorProto as a NumPy array (float64/float16 become float32)."""
    try:
        arr = numpy_helper.to_array(t)
    except Exception as exc:
        raise ModelFileError(f"the tensor {t.name!r} cannot be decoded ({exc})") from None
    if arr.dtype.kind == "f" and arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    return np.asarray(arr)
