"""Read a Keras model file safely, without Keras: the architecture as JSON and every
layer's weights as NumPy arrays. Nothing from the file is ever run.

- ``.keras`` (Keras 3): a zip holding ``config.json`` and ``model.weights.h5``. The
  archive's directory is checked before anything is decompressed: at most
  :data:`~cnn_explorer.limits.MAX_ARCHIVE_MEMBERS` members, no absolute or ``..`` names,
  no duplicate names, each member's declared size within its limit and its compression
  ratio plausible (a zip bomb is refused from its directory alone). The weights file is
  opened by h5py from memory; nothing is written to disk.
- legacy ``.h5`` (Keras 2, or Keras 3's ``save("x.h5")``): the ``model_config`` attribute
  (JSON) and the ``model_weights`` group.

In both, every dataset is reached through hard links only (no external or soft links, no
external or virtual storage: an HDF5 file must not make us read another file) and its size
is checked before it is read.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import h5py
import numpy as np

from cnn_explorer.interchange.files import check_model_file, mb
from cnn_explorer.interchange.model import ModelFileError
from cnn_explorer.limits import MAX_ARCHIVE_MEMBERS, MAX_CONFIG_BYTES, MAX_MODEL_BYTES

CONFIG_MEMBER = "config.json"
WEIGHTS_MEMBER = "model.weights.h5"
MAX_COMPRESSION_RATIO = 200
"""Declared size / compressed size above which a zip member (over 1 MB) is taken for a zip
bomb: float weights compress by 1.1×, JSON by 10–20×."""


@dataclass
class KerasFile:
    """A Keras model file's architecture and weights, read but not interpreted."""

    config: dict[str, Any]
    """The model's JSON config (``{"class_name": "Sequential" | "Functional", ...}``)."""
    weights: dict[str, list[np.ndarray]] = field(default_factory=dict)
    """Each layer's variables in Keras' order (kernel, bias; gamma, beta, mean, var…)."""
    keyed_by_class: bool = True
    """True for ``.keras``: weights are keyed like Keras 3 saves them (the snake-case class
    name, numbered in layer order: ``conv2d``, ``conv2d_1``); False for ``.h5``: keyed by
    the layer's name."""
    keras_version: str = ""


def _parse_config(text: bytes | str, name: str) -> dict[str, Any]:
    try:
        config = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise ModelFileError(f"{name}: the model's config is not valid JSON") from None
    except RecursionError:
        raise ModelFileError(f"{name}: the model's config is nested too deeply") from None
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ModelFileError(f"{name}: the model's config does not describe a Keras model")
    return config


# -- HDF5 ------------------------------------------------------------------------------------
def _child(group: h5py.Group, key: str, where: str) -> Any:
    """``group[key]`` if it is reached through a hard link (never a soft or external link
    that could point into another file); None when absent."""
    link = group.get(key, getlink=True)
    if link is None:
        return None
    if not isinstance(link, h5py.HardLink):
        raise ModelFileError(f"the weights file links {where}/{key} elsewhere; it is refused")
    return group[key]


def _walk(group: h5py.Group, path: str, where: str) -> Any:
    obj: Any = group
    for part in PurePosixPath(path).parts:
        if not isinstance(obj, h5py.Group):
            return None
        obj = _child(obj, part, where)
        if obj is None:
            return None
    return obj


def _read_dataset(ds: Any, where: str, budget: list[int]) -> np.ndarray:
    """The array in ``ds`` as float32 after checking its kind (floats, or integers such as
    Normalization's count), storage and size."""
    if not isinstance(ds, h5py.Dataset):
        raise ModelFileError(f"the weights file holds no array at {where}")
    if ds.external or ds.is_virtual:
        raise ModelFileError(f"the weights at {where} are stored in another file; refused")
    if ds.dtype.kind not in "fiu" or ds.dtype.itemsize not in (1, 2, 4, 8):
        raise ModelFileError(f"the weights at {where} are {ds.dtype}, not numbers")
    size = int(np.prod(ds.shape, dtype=np.int64)) * ds.dtype.itemsize
    budget[0] -= size
    if budget[0] < 0:
        raise ModelFileError(
            f"the weights add up to more than the {mb(MAX_MODEL_BYTES)} this app reads"
        )
    return np.asarray(ds[()], dtype=np.float32)


def _attr_size(obj: Any, key: str) -> int:
    """Bytes an attribute holds, read from its header (0 for an empty one)."""
    try:
        return int(obj.attrs.get_id(key).get_storage_size())
    except RuntimeError:  # HDF5 reports an empty attribute's size as an error
        return 0


def _attr_text(obj: Any, key: str, name: str) -> str | None:
    """A string attribute (size checked before reading), None when absent."""
    if key not in obj.attrs:
        return None
    if _attr_size(obj, key) > MAX_CONFIG_BYTES:
        raise ModelFileError(f"{name}: the model's {key} is larger than {mb(MAX_CONFIG_BYTES)}")
    value = obj.attrs[key]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _names_attr(obj: Any, key: str) -> list[str]:
    """A list-of-names attribute (``layer_names``, ``weight_names``), size checked first."""
    if key not in obj.attrs:
        return []
    if _attr_size(obj, key) > MAX_CONFIG_BYTES:
        raise ModelFileError(f"the weights file's {key} is larger than {mb(MAX_CONFIG_BYTES)}")
    value = obj.attrs[key]
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value]


def _keras3_weights(f: h5py.File) -> dict[str, list[np.ndarray]]:
    """``layers/<key>/vars/<i>`` of a Keras 3 weights file."""
    budget = [MAX_MODEL_BYTES]
    layers = _child(f, "layers", "/")
    out: dict[str, list[np.ndarray]] = {}
    if not isinstance(layers, h5py.Group):
        return out
    for key in layers:
        vars_group = _walk(layers, f"{key}/vars", "/layers")
        if not isinstance(vars_group, h5py.Group):
            continue
        indices = sorted(int(k) for k in vars_group if k.isdigit())
        if indices != list(range(len(indices))):
            raise ModelFileError(f"the weights of layer {key!r} are numbered irregularly")
        out[key] = [
            _read_dataset(_child(vars_group, str(i), key), f"layers/{key}/vars/{i}", budget)
            for i in indices
        ]
    return out


def _legacy_weights(f: h5py.File) -> dict[str, list[np.ndarray]]:
    """``model_weights/<layer>/<weight name>`` in the order of ``weight_names``."""
    budget = [MAX_MODEL_BYTES]
    group = _child(f, "model_weights", "/")
    if not isinstance(group, h5py.Group):
        raise ModelFileError("the file holds no model_weights group")
    out: dict[str, list[np.ndarray]] = {}
    for layer in _names_attr(group, "layer_names"):
        g = _child(group, layer, "model_weights")
        if not isinstance(g, h5py.Group):
            continue
        out[layer] = [
            _read_dataset(_walk(g, w, layer), f"model_weights/{layer}/{w}", budget)
            for w in _names_attr(g, "weight_names")
        ]
    return out


def _open_h5(source: Path | io.BytesIO, name: str) -> h5py.File:
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError):
        raise ModelFileError(f"{name} is not a readable HDF5 file or is truncated") from None


# -- readers ---------------------------------------------------------------------------------
H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError)
"""What h5py raises on a damaged file (HDF5's own errors surface as several of these)."""


@contextmanager
def _damage_is_a_sentence(name: str) -> Iterator[None]:
    """Turn h5py's errors on a damaged file into one sentence naming the file."""
    try:
        yield
    except ModelFileError:
        raise
    except H5_ERRORS as exc:
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ModelFileError(
            f"{name} is damaged: its HDF5 data cannot be read ({detail})"
        ) from None


def read_h5(path: Path) -> KerasFile:
    """A legacy ``.h5`` model: ``model_config`` attribute plus ``model_weights``."""
    check_model_file(path)
    with _damage_is_a_sentence(path.name), _open_h5(path, path.name) as f:
        text = _attr_text(f, "model_config", path.name)
        if text is None:
            raise ModelFileError(
                f"{path.name} holds weights only, no model architecture (model_config); save "
                "the whole model with model.save(...) to open it here"
            )
        config = _parse_config(text, path.name)
        weights = _legacy_weights(f)
        version = _attr_text(f, "keras_version", path.name) or ""
    return KerasFile(config, weights, keyed_by_class=False, keras_version=version)


def _check_members(infos: list[zipfile.ZipInfo], name: str) -> dict[str, zipfile.ZipInfo]:
    if len(infos) > MAX_ARCHIVE_MEMBERS:
        raise ModelFileError(
            f"{name} holds {len(infos)} files, more than the {MAX_ARCHIVE_MEMBERS} a Keras model "
            "archive has; it is refused"
        )
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        p = PurePosixPath(info.filename)
        if info.filename.startswith("/") or "\\" in info.filename or ".." in p.parts:
            raise ModelFileError(f"{name} holds a file with an unsafe name ({info.filename!r})")
        if info.filename in members:
            raise ModelFileError(f"{name} holds {info.filename!r} twice; it is refused")
        members[info.filename] = info
    return members


def _member_limit(filename: str) -> int:
    """Most bytes a member may unpack to: the config and metadata are small, the weights
    up to the model size limit; other members (assets) are never unpacked."""
    return MAX_MODEL_BYTES if filename == WEIGHTS_MEMBER else MAX_CONFIG_BYTES


def _check_sizes(members: dict[str, zipfile.ZipInfo], name: str) -> None:
    """Every member's declared size and compression ratio, before anything is unpacked."""
    for info in members.values():
        limit = _member_limit(info.filename)
        if info.filename in (CONFIG_MEMBER, WEIGHTS_MEMBER) and info.file_size > limit:
            raise ModelFileError(
                f"{name}: {info.filename} would unpack to {mb(info.file_size)}, more than the "
                f"{mb(limit)} this app reads"
            )
        ratio = info.file_size / max(1, info.compress_size)
        if info.file_size > 1_000_000 and ratio > MAX_COMPRESSION_RATIO:
            raise ModelFileError(
                f"{name}: {info.filename} would unpack to {mb(info.file_size)} from "
                f"{mb(info.compress_size)} (a zip bomb?); it is refused"
            )


def _member_bytes(z: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    """A member's content (sizes already checked), never more than its declared size."""
    limit = _member_limit(info.filename)
    if info.file_size > limit:
        raise ModelFileError(f"{name}: {info.filename} is larger than {mb(limit)}")
    try:
        with z.open(info) as fh:
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ModelFileError(f"{name}: {info.filename} cannot be unpacked ({exc})") from None
    if len(data) != info.file_size:
        raise ModelFileError(f"{name}: {info.filename} is not the size its archive says")
    return data


def read_keras(path: Path) -> KerasFile:
    """A Keras 3 ``.keras`` archive."""
    check_model_file(path)
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError):
        raise ModelFileError(
            f"{path.name} is not a Keras model archive (a .keras file is a zip) or is truncated"
        ) from None
    with z:
        members = _check_members(z.infolist(), path.name)
        _check_sizes(members, path.name)
        if CONFIG_MEMBER not in members:
            raise ModelFileError(f"{path.name} has no {CONFIG_MEMBER}: it is not a Keras model")
        config = _parse_config(_member_bytes(z, members[CONFIG_MEMBER], path.name), path.name)
        version = ""
        if "metadata.json" in members:
            meta = _member_bytes(z, members["metadata.json"], path.name)
            try:
                version = str(json.loads(meta).get("keras_version", ""))
            except (ValueError, AttributeError, UnicodeDecodeError):
                version = ""
        if WEIGHTS_MEMBER not in members:
            if any(n.startswith("model.weights") for n in members):
                raise ModelFileError(
                    f"{path.name} stores its weights in shards or another format; this app "
                    f"reads a single {WEIGHTS_MEMBER}"
                )
            raise ModelFileError(f"{path.name} has no {WEIGHTS_MEMBER}: its weights are missing")
        data = _member_bytes(z, members[WEIGHTS_MEMBER], path.name)
    where = f"{path.name}'s {WEIGHTS_MEMBER}"
    with _damage_is_a_sentence(where), _open_h5(io.BytesIO(data), where) as f:
        weights = _keras3_weights(f)
    return KerasFile(config, weights, keyed_by_class=True, keras_version=version)
