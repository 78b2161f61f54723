"""Project files: one zip holding ``project.json`` (format, version, layer configs) and
``arrays.npz`` (input and weights), written atomically and read without pickle.

Why a zip of JSON + npz: the JSON is human-readable and diffable, the arrays stay exact
(float32 bit for bit), and ``np.load(..., allow_pickle=False)`` can never execute code from
a file. A malformed or future-version file raises :class:`ProjectError` with a sentence for
the user; nothing is changed until the whole file has been validated. Qt-free.

A project may also carry the Training tab's trained classifier (:class:`TrainedState`): its
engine config (``network_to_state``) under ``"trained"`` in ``project.json``, its arrays as
``trained/<layer>.<name>`` in ``arrays.npz``. The section is optional, so format version 1
is unchanged: files without it load as before, and older readers ignore it.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnn_explorer import __version__
from cnn_explorer.engine.network import Network
from cnn_explorer.engine.serialize import (
    FileFormatError,
    atomic_write,
    network_from_state,
    network_to_state,
    write_npz,
)
from cnn_explorer.explorer.specs import ACTIVATIONS, LayerSpec
from cnn_explorer.limits import MAX_INPUT_SIDE as MAX_SIDE

FORMAT = "cnn-explorer-project"
VERSION = 1
SUFFIX = ".cnnx"
MAX_UNCOMPRESSED = 512 * 1024 * 1024
KINDS = ("conv", "act", "maxpool", "avgpool")
_CONV_KEYS = ("filters", "kernel", "stride", "padding", "dilation")
_POOL_KEYS = ("size", "stride", "padding")
TRAINED_PREFIX = "trained/"
MAX_TRAINED_SIDE = 4096


class ProjectError(ValueError):
    """The file cannot be opened as a project; the message says why."""


@dataclass
class TrainedState:
    """A trained classifier as everything needed to use it again.

    ``network`` is the whole engine network (conv part and Flatten/Dense head);
    ``class_names[k]`` names output ``k``; ``input_shape`` ``(C, H, W)`` is the image size
    it was trained on (images are resized to it and scaled to [0, 1]; None if unknown);
    ``extra`` holds JSON-safe notes such as the dataset source.
    """

    network: Network
    class_names: list[str]
    input_shape: tuple[int, int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Project:
    """Everything a project file holds: explorer input and layers, optional trained net."""

    input: np.ndarray
    layers: list[LayerSpec]
    trained: TrainedState | None = None


def save_project(
    path: str, x: np.ndarray, layers: list[LayerSpec], trained: TrainedState | None = None
) -> None:
    """Write input ``x (C, H, W)``, ``layers`` and an optional trained network to ``path``
    atomically (temp + replace)."""
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
    """Read and fully validate a project, trained network included, or raise ProjectError."""
    name = os.path.basename(path)
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(i.file_size for i in zf.infolist())
            if total > MAX_UNCOMPRESSED:
                raise ProjectError(
                    f"{name} would unpack to {total // 2**20} MB: refusing to open it."
                )
            names = set(zf.namelist())
            if "project.json" not in names or "arrays.npz" not in names:
                raise ProjectError(f"{name} is not a CNN Explorer project (project.json missing).")
            meta = json.loads(zf.read("project.json").decode("utf-8"))
            raw = zf.read("arrays.npz")
    except ProjectError:
        raise
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProjectError(f"{name} is not a readable project file: {exc}") from None
    _check_header(meta, name)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {k: np.array(npz[k]) for k in npz.files}
    except Exception as exc:
        raise ProjectError(f"{name}: the arrays are damaged ({exc}).") from None
    x = _array(arrays, meta.get("input"), name, "input")
    if (
        x.ndim != 3
        or x.shape[0] not in (1, 3)
        or not (1 <= x.shape[1] <= MAX_SIDE and 1 <= x.shape[2] <= MAX_SIDE)
    ):
        raise ProjectError(f"{name}: input has unsupported shape {x.shape}.")
    layers = meta.get("layers")
    if not isinstance(layers, list):
        raise ProjectError(f"{name}: 'layers' must be a list.")
    specs = [_layer(e, arrays, name, i) for i, e in enumerate(layers)]
    trained = _trained(meta.get("trained"), arrays, name)
    return Project(x.astype(np.float32), specs, trained)


def _trained_entry(trained: TrainedState, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The JSON part of a trained network; its arrays go into ``arrays`` under a prefix."""
    config, params = network_to_state(trained.network)
    for key, value in params.items():
        arrays[TRAINED_PREFIX + key] = value
    shape = trained.input_shape
    return {
        "network": config,
        "class_names": [str(n) for n in trained.class_names],
        "input_shape": [int(s) for s in shape] if shape is not None else None,
        "extra": dict(trained.extra),
    }


def _trained(entry: object, arrays: dict[str, np.ndarray], name: str) -> TrainedState | None:
    """Validate and rebuild the optional trained-network section (None when absent)."""
    if entry is None:
        return None
    where = f"{name}: the trained network"
    if not isinstance(entry, dict) or not isinstance(entry.get("network"), dict):
        raise ProjectError(f"{where} section is damaged (no network description).")
    params = {
        k[len(TRAINED_PREFIX) :]: v for k, v in arrays.items() if k.startswith(TRAINED_PREFIX)
    }
    bad = sorted(k for k, v in params.items() if v.dtype.kind != "f")
    if bad:
        raise ProjectError(f"{where} has non-numeric weights ({', '.join(bad)}).")
    try:
        network = network_from_state(entry["network"], params)
    except FileFormatError as exc:
        raise ProjectError(f"{where} cannot be rebuilt: {exc}.") from None
    names = entry.get("class_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ProjectError(f"{where} has no valid list of class names.")
    shape = _trained_shape(entry.get("input_shape"), where)
    if shape is not None:
        try:
            out = network.output_shape(shape)
        except ValueError as exc:
            raise ProjectError(f"{where} does not fit its input shape {shape}: {exc}") from None
        if out != (len(names),):
            raise ProjectError(
                f"{where} outputs {out} values but the file names {len(names)} classes."
            )
    extra = entry.get("extra", {})
    if not isinstance(extra, dict):
        raise ProjectError(f"{where} has damaged notes ('extra' is not a dictionary).")
    return TrainedState(network, names, shape, extra)


def _trained_shape(value: object, where: str) -> tuple[int, int, int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_TRAINED_SIDE
            for v in value
        )
    ):
        raise ProjectError(f"{where} has an invalid input shape {value!r} (expected [C, H, W]).")
    return (value[0], value[1], value[2])


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


def _array(arrays: dict[str, np.ndarray], key: object, name: str, what: str) -> np.ndarray:
    if not isinstance(key, str) or key not in arrays:
        raise ProjectError(f"{name}: array for {what} is missing.")
    a = arrays[key]
    if a.dtype.kind not in "fiu":
        raise ProjectError(f"{name}: {what} has non-numeric type {a.dtype}.")
    return a


def _pair(v: object) -> bool:
    return (
        isinstance(v, list) and len(v) == 2 and all(isinstance(i, int) and 1 <= i <= 64 for i in v)
    )


def _layer(entry: object, arrays: dict[str, np.ndarray], name: str, i: int) -> LayerSpec:
    where = f"{name}: layer {i + 1}"
    if not isinstance(entry, dict) or entry.get("kind") not in KINDS:
        raise ProjectError(f"{where} has an unknown kind.")
    cfg = entry.get("config")
    if not isinstance(cfg, dict):
        raise ProjectError(f"{where} has no config.")
    kind = entry["kind"]
    enabled = bool(entry.get("enabled", True))
    if kind == "act":
        if cfg.get("fn") not in ACTIVATIONS:
            raise ProjectError(f"{where}: unknown activation {cfg.get('fn')!r}.")
        return LayerSpec(
            "act", {"fn": cfg["fn"], "slope": float(cfg.get("slope", 0.01))}, enabled=enabled
        )
    if kind in ("maxpool", "avgpool"):
        if not all(k in cfg for k in _POOL_KEYS) or not (
            _pair(cfg["size"]) and _pair(cfg["stride"])
        ):
            raise ProjectError(f"{where}: pool config is incomplete or invalid.")
        return LayerSpec(kind, dict(cfg), enabled=enabled)
    if not all(k in cfg for k in _CONV_KEYS):
        raise ProjectError(f"{where}: conv config is incomplete.")
    w = _array(arrays, entry.get("weight"), name, f"layer {i + 1} weight").astype(np.float32)
    b = _array(arrays, entry.get("bias"), name, f"layer {i + 1} bias").astype(np.float32)
    if (
        w.ndim != 4
        or b.shape != (w.shape[0],)
        or list(w.shape[2:]) != list(cfg["kernel"])
        or w.shape[0] != cfg["filters"]
    ):
        raise ProjectError(f"{where}: weight shape {w.shape} does not match its config.")
    if not (_pair(cfg["stride"]) and _pair(cfg["dilation"]) and _pair(cfg["kernel"])):
        raise ProjectError(f"{where}: stride, dilation and kernel must be pairs of 1..64.")
    full = {"padding_mode": "zeros", "bias": True, "flip": False, **cfg}
    return LayerSpec("conv", full, w, b, enabled)
