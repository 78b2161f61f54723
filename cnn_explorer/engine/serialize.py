"""Networks to and from files: a JSON-safe config plus a dict of arrays in one ``.npz``.

Why ``.npz`` without pickle: a network file may come from anyone, and ``np.load`` with
``allow_pickle=False`` cannot execute code. The JSON config travels inside the archive as a
``uint8`` array (UTF-8 bytes), so a single file holds everything. Writes are atomic (temp
file in the same directory, fsync, ``os.replace``): a crash mid-save never leaves a
half-written file in place of the user's work, and a save cleans up the temp files that
killed saves left in the same folder.

Reading goes through :mod:`cnn_explorer.engine.archive`: only the members a network needs
are read, each checked against the exact shape the network's description implies before it
is allocated, so a small file can never claim gigabytes. The description is checked too:
its parameter count is estimated and capped *before* any layer is built, and weights that
are not finite, or class names that do not match the network's outputs, are refused.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from cnn_explorer.engine.archive import ArraySpec, FileFormatError, SafeArchive, open_archive
from cnn_explorer.engine.graph import Graph
from cnn_explorer.engine.layers import Dense, Layer
from cnn_explorer.engine.network import Network

Model = Network | Graph
"""What a network file holds: a chain of layers or a graph network."""

FORMAT_NAME = "cnn-explorer-network"
GRAPH_FORMAT_NAME = "cnn-explorer-graph"
"""Graph files get their own format name, so an older CNN Explorer that knows only chains
says the file is not a network file instead of misreading it."""
FORMAT_VERSION = 1
CONFIG_KEY = "__config__"
ARRAY_PREFIX = "param/"

MAX_CONFIG_BYTES = 4 * 2**20
"""Largest JSON description inside a network file (a real one is a few kilobytes)."""

MAX_NETWORK_LAYERS = 256
MAX_GRAPH_NODES = 4096
"""Most nodes a graph file may describe (a ResNet-50 has ~180, a MobileNet ~150)."""
MAX_NETWORK_ELEMENTS = 64 * 2**20
"""Most parameter and buffer values a network file may describe (256 MB as float32)."""

MAX_NPZ_BYTES = 512 * 2**20
"""Most array bytes :func:`load_npz_safe` reads from one file."""

MAX_INPUT_SIDE = 4096
"""Largest side of a network's recorded input shape (``extra["input_shape"]``)."""

STALE_TEMP_SECONDS = 60.0
"""A save's temp file this much older than now belongs to a save that was killed."""

_TEMP_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")
"""``tempfile.mkstemp(prefix=".<target>.", suffix=".tmp")``: eight characters between."""

_TEMP_TARGETS = (".cnnx", ".npz")
"""Suffixes of the files this app saves atomically: only their temp files are removed."""


# --------------------------------------------------------------------------------------
# In-memory form
# --------------------------------------------------------------------------------------


def network_to_state(network: Model) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(config, arrays)``: the JSON-safe description (with format name and version) and
    copies of every parameter/buffer keyed ``"3.weight"`` (a graph: ``"conv1.weight"``)."""
    name = GRAPH_FORMAT_NAME if isinstance(network, Graph) else FORMAT_NAME
    config = {"format": name, "version": FORMAT_VERSION, **network.to_dict()}
    arrays = {k: np.array(v, copy=True) for k, v in network.state_arrays().items()}
    return config, arrays


def check_version(config: Mapping[str, Any], what: str = "network") -> None:
    """Raise :class:`FileFormatError` for a missing, foreign or future format version."""
    version = config.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise FileFormatError(
            f"this {what} file has no valid format version: it was not "
            "written by CNN Explorer or is damaged"
        )
    if version > FORMAT_VERSION:
        raise FileFormatError(
            f"this {what} file uses format version {version}, newer than this CNN Explorer "
            f"understands ({FORMAT_VERSION}): update CNN Explorer to open it"
        )
    if version < 1:
        raise FileFormatError(f"unknown {what} format version {version}")


def network_from_config(config: Mapping[str, Any], label: str = "the network file") -> Network:
    """A network built from a description (initial values; load its arrays next).

    The version, format and layer list are checked, and the number of values the layers
    would allocate is estimated from the description and capped
    (:data:`MAX_NETWORK_ELEMENTS`) *before* any layer is built. Raises
    :class:`FileFormatError` naming ``label``.
    """
    check_version(config)
    if config.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise FileFormatError(f"{label} is not a network file (format {config.get('format')!r})")
    layers = config.get("layers")
    if not isinstance(layers, list) or not all(isinstance(c, dict) for c in layers):
        raise FileFormatError(f"{label} has no valid layer list")
    if len(layers) > MAX_NETWORK_LAYERS:
        raise FileFormatError(
            f"{label} has {len(layers)} layers, more than the {MAX_NETWORK_LAYERS} this app opens"
        )
    total = sum(_declared_elements(c, i, label) for i, c in enumerate(layers))
    if total > MAX_NETWORK_ELEMENTS:
        raise FileFormatError(
            f"{label} has {total:,} parameters, more than the "
            f"{MAX_NETWORK_ELEMENTS:,} this app opens"
        )
    try:
        return Network.from_dict({"layers": layers})
    except Exception as exc:
        # The layer constructors were written for trusted arguments: whatever a strange
        # description makes them raise is reported as a damaged file, not a crash.
        raise FileFormatError(f"{label} has an invalid layer: {exc}") from None


def graph_from_config(config: Mapping[str, Any], label: str = "the network file") -> Graph:
    """A graph built from a description (initial values; load its arrays next), checked
    like :func:`network_from_config`: version, node list, and the values the layers would
    allocate capped *before* any layer is built. Raises :class:`FileFormatError`."""
    check_version(config)
    if config.get("format") != GRAPH_FORMAT_NAME:
        raise FileFormatError(f"{label} is not a graph network file")
    nodes = config.get("nodes")
    if not isinstance(nodes, list) or not all(
        isinstance(n, dict) and isinstance(n.get("layer"), dict) for n in nodes
    ):
        raise FileFormatError(f"{label} has no valid node list")
    if len(nodes) > MAX_GRAPH_NODES:
        raise FileFormatError(
            f"{label} has {len(nodes)} nodes, more than the {MAX_GRAPH_NODES} this app opens"
        )
    total = sum(_declared_elements(n["layer"], i, label) for i, n in enumerate(nodes))
    if total > MAX_NETWORK_ELEMENTS:
        raise FileFormatError(
            f"{label} has {total:,} parameters, more than the "
            f"{MAX_NETWORK_ELEMENTS:,} this app opens"
        )
    try:
        return Graph.from_dict({"nodes": nodes, "output": config.get("output")})
    except Exception as exc:
        # As in network_from_config: a strange description is a damaged file, not a crash.
        raise FileFormatError(f"{label} has an invalid graph: {exc}") from None


def model_from_config(config: Mapping[str, Any], label: str = "the network file") -> Model:
    """:func:`graph_from_config` for a graph description, else :func:`network_from_config`."""
    if config.get("format") == GRAPH_FORMAT_NAME:
        return graph_from_config(config, label)
    return network_from_config(config, label)


def array_specs(network: Model, prefix: str = "") -> dict[str, ArraySpec]:
    """The exact float array each parameter/buffer of ``network`` must be, keyed by
    ``prefix + "3.weight"``: what a file's members are checked against before reading."""
    return {
        prefix + k: ArraySpec(tuple(v.shape), "f", max(1, v.size), f"array {k}")
        for k, v in network.state_arrays().items()
    }


def load_state(
    network: Model,
    arrays: Mapping[str, np.ndarray],
    label: str,
    *,
    allow_nonfinite: bool = False,
) -> None:
    """Copy ``arrays`` (keys as :meth:`Network.state_arrays`) into ``network``; refuse
    missing arrays, wrong shapes and non-finite values (a diverged run's NaN weights would
    otherwise show up as "nan%" predictions). ``allow_nonfinite`` is for an imported model
    saved in a project only: its NaN/inf weights were accepted with a warning at import
    (shown, not fatal), so the project must reopen with them as saved."""
    expected = network.state_arrays()
    missing = sorted(set(expected) - set(arrays))
    if missing:
        raise FileFormatError(f"{label} lacks arrays {missing}")
    kinds = {k: np.asarray(arrays[k]).dtype.kind for k in expected}
    text = sorted(k for k, kind in kinds.items() if kind not in "biuf")
    if text:
        raise FileFormatError(f"{label} has non-numeric weights ({', '.join(text)})")
    whole = sorted(k for k, kind in kinds.items() if kind != "f")
    if whole:
        raise FileFormatError(
            f"{label} stores weights as integers ({', '.join(whole)}), not as real numbers"
        )
    bad = [] if allow_nonfinite else [k for k in expected if not np.isfinite(arrays[k]).all()]
    if bad:
        listed = ", ".join(bad[:4]) + (", …" if len(bad) > 4 else "")
        raise FileFormatError(
            f"{label} has weights that are not finite numbers (NaN or infinite, in {listed}): "
            "the network cannot be used"
        )
    try:
        network.load_state_arrays({k: arrays[k] for k in expected})
    except (ValueError, TypeError, KeyError) as exc:
        raise FileFormatError(f"{label} has an invalid layer: {exc}") from None


def network_from_state(config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Network:
    """Rebuild a network from :func:`network_to_state` output; bad content raises
    :class:`FileFormatError` (never a KeyError deep inside)."""
    net = network_from_config(config)
    load_state(net, arrays, "the network file")
    return net


def output_count(network: Model, input_shape: tuple[int, ...] | None = None) -> int | None:
    """How many values the network outputs per sample (its number of classes), from the
    input shape when known, else from its last Dense layer; None when it cannot be told."""
    if input_shape is not None:
        out = network.output_shape(input_shape)
        return out[0] if len(out) == 1 else None
    for layer in reversed(_output_chain(network)):
        if isinstance(layer, Dense):
            return layer.out_features
        if layer.kind not in ("activation", "dropout"):
            return None
    return None


def _output_chain(network: Model) -> list[Layer]:
    """The layers leading to the output through single-input nodes, input side first."""
    if isinstance(network, Network):
        return list(network.layers)
    chain: list[Layer] = []
    name = network.output
    while name != Graph.INPUT:
        node = network.node(name)
        chain.append(node.layer)
        if len(node.inputs) != 1:
            break
        name = node.inputs[0]
    return chain[::-1]


def check_classifier(
    network: Model, class_names: object, input_shape: object, label: str
) -> tuple[list[str] | None, tuple[int, int, int] | None]:
    """Validate a classifier's notes: ``input_shape`` ``[C, H, W]`` (C 1 or 3, sides
    1..:data:`MAX_INPUT_SIDE`, and the network must compute on it) and ``class_names``
    (strings, exactly one per output). Either may be None (absent)."""
    shape = None
    if input_shape is not None:
        if (
            not isinstance(input_shape, list)
            or len(input_shape) != 3
            or not all(_is_int(v) for v in input_shape)
            or input_shape[0] not in (1, 3)
            or not all(1 <= v <= MAX_INPUT_SIDE for v in input_shape[1:])
        ):
            raise FileFormatError(
                f"{label} has an invalid input shape {input_shape!r} (expected [C, H, W] with "
                f"C 1 or 3 and sides 1..{MAX_INPUT_SIDE})"
            )
        shape = (input_shape[0], input_shape[1], input_shape[2])
    try:
        outputs = output_count(network, shape)
    except ValueError as exc:
        raise FileFormatError(f"{label} does not fit its input shape {shape}: {exc}") from None
    if class_names is None:
        return None, shape
    if not isinstance(class_names, list) or not all(isinstance(n, str) for n in class_names):
        raise FileFormatError(f"{label} has no valid list of class names")
    if outputs is not None and len(class_names) != outputs:
        raise FileFormatError(
            f"{label} outputs {(outputs,)} values but the file names {len(class_names)} "
            "classes (one name per output)"
        )
    return list(class_names), shape


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _declared_elements(cfg: Mapping[str, Any], index: int, label: str) -> int:
    """Values a layer description would allocate, from its sizes alone (no layer built).

    Sizes must be whole positive numbers; anything else is left for the constructor to
    refuse, but never multiplied into a huge allocation."""

    def size(key: str, default: object = None) -> list[int]:
        value = cfg.get(key, default)
        items = value if isinstance(value, list) else [value]
        if value is None or not items or not all(_is_int(v) and v >= 1 for v in items):
            raise FileFormatError(
                f"{label}: layer {index + 1} has an invalid {key} {value!r} "
                "(expected a whole number of at least 1)"
            )
        return items

    kind = cfg.get("kind")
    if kind == "conv":
        out = size("out_channels")[0]
        groups = size("groups", 1)[0]
        return size("in_channels")[0] // groups * out * math.prod(size("kernel_size", 3)) + out
    if kind == "dense":
        out = size("out_features")[0]
        return size("in_features")[0] * out + out
    if kind == "batch_norm":
        return 4 * size("num_features")[0]
    if kind == "prelu":
        return size("num_parameters", 1)[0]
    return 0


# --------------------------------------------------------------------------------------
# npz files
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary file whose content replaces ``path`` only if the block succeeds.

    The data go to a temp file in the same directory (same filesystem, so ``os.replace``
    is atomic), are fsynced, then replace ``path``, and the rename itself is fsynced. On
    any error the temp file is removed and the old ``path`` is untouched: a crash mid-save
    never leaves a half-written file in place of the user's work.
    """
    target = Path(path)
    remove_stale_temps(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def remove_stale_temps(directory: str | os.PathLike[str], age: float = STALE_TEMP_SECONDS) -> int:
    """Delete temp files that killed saves left in ``directory``; returns how many.

    Only our exact naming (``.<name>.<8 characters>.tmp`` where ``<name>`` is a
    ``.cnnx`` or ``.npz`` file), only regular files of this user, only ones untouched for
    ``age`` seconds (a save in progress keeps writing to its file). Errors are ignored: a
    cleanup must never stop a save.
    """
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(directory or "."))
    except OSError:
        return 0
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if match is None or not match["target"].lower().endswith(_TEMP_TARGETS):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
            if stat.S_ISREG(st.st_mode) and mine and now - st.st_mtime > age:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed


def save_npz_atomic(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` as an uncompressed ``.npz``, atomically
    (:func:`atomic_write`). Object arrays are refused (they would need pickle)."""
    with atomic_write(path) as fh:
        write_npz(fh, arrays)


def write_npz(fh: BinaryIO, arrays: Mapping[str, np.ndarray]) -> None:
    """What ``np.savez`` does, minus its keyword arguments (an array named
    ``allow_pickle`` cannot collide) and with pickling refused."""
    for key, value in arrays.items():
        if np.asarray(value).dtype.hasobject:
            raise ValueError(f"array {key!r} holds Python objects; only numeric data can be saved")
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in arrays.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_npz_safe(
    path: str | os.PathLike[str], max_bytes: int = MAX_NPZ_BYTES
) -> dict[str, np.ndarray]:
    """Read every numeric array of an ``.npz`` into memory, never unpickling anything.

    A missing file raises FileNotFoundError; anything unreadable (not a zip, a single
    ``.npy``, truncated, pickled object arrays, corrupt members, or more than
    ``max_bytes`` of data however small the file) raises :class:`FileFormatError`.
    Members that are not ``.npy`` entries are ignored.
    """
    out: dict[str, np.ndarray] = {}
    left = max_bytes
    with open_archive(path) as archive:
        for member in sorted(n for n in archive.names if n.endswith(".npy")):
            room = max(0, left)
            spec = ArraySpec(None, "biuf", room, f"array {member[:-4]!r}", max_nbytes=room)
            out[member[:-4]] = arr = archive.read_array(member, spec)
            left -= arr.nbytes
    return out


def _read_config(archive: SafeArchive) -> dict[str, Any]:
    """The JSON description of a network file (size-capped), as a dictionary."""
    member = CONFIG_KEY + ".npy"
    if member not in archive.names:
        raise FileFormatError(
            f"{archive.label} is not a CNN Explorer network file (no description inside)"
        )
    cap = MAX_CONFIG_BYTES
    spec = ArraySpec(((0, cap),), "u", cap, "its description", max_nbytes=cap)
    config = decode_json(archive.read_array(member, spec))
    if not isinstance(config, dict):
        raise FileFormatError(f"{archive.label}: the file's description is not a dictionary")
    return config


def encode_json(obj: Any) -> np.ndarray:
    """A JSON-safe object as a ``uint8`` array of UTF-8 bytes (storable without pickle)."""
    return np.frombuffer(json.dumps(obj, allow_nan=False).encode("utf-8"), dtype=np.uint8)


def decode_json(array: np.ndarray) -> Any:
    """Inverse of :func:`encode_json`; raises :class:`FileFormatError` on bad bytes."""
    try:
        return json.loads(np.asarray(array, dtype=np.uint8).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, TypeError, RecursionError) as exc:
        raise FileFormatError(f"the file's description is damaged ({exc})") from exc


def save_network(
    path: str | os.PathLike[str], network: Model, extra: Mapping[str, Any] | None = None
) -> None:
    """Save ``network`` (a Network or a Graph: config + arrays, and an optional JSON-safe
    ``extra`` dict such as class names or the input shape) to one ``.npz`` file,
    atomically."""
    config, arrays = network_to_state(network)
    if extra:
        config["extra"] = dict(extra)
    payload = {CONFIG_KEY: encode_json(config)}
    payload.update({ARRAY_PREFIX + k: v for k, v in arrays.items()})
    save_npz_atomic(path, payload)


def load_network(path: str | os.PathLike[str]) -> tuple[Network, dict[str, Any]]:
    """Load a chain network written by :func:`save_network`: ``(network, extra)``.

    A graph file whose graph is a chain is returned as a Network (keys ``"0.weight"``,
    …); a graph with branches or joins raises :class:`FileFormatError` (open it with
    :func:`load_model`). See :func:`load_model` for the checks.
    """
    model, extra = load_model(path)
    if isinstance(model, Network):
        return model, extra
    net = model.to_network()
    if net is None:
        raise FileFormatError(
            f"{Path(path).name} holds a graph network with branches or joins, not a chain "
            "of layers: open it where graph networks are supported"
        )
    return net, extra


def load_model(path: str | os.PathLike[str]) -> tuple[Model, dict[str, Any]]:
    """Load a file written by :func:`save_network`: ``(network or graph, extra)``.

    Only the description and the arrays it implies are read (each checked against its
    exact shape before allocation); non-finite weights are refused, and so are the
    well-known notes ``extra["class_names"]`` / ``extra["input_shape"]`` when they do not
    fit the network. Raises FileNotFoundError or :class:`FileFormatError`.
    """
    with open_archive(path) as archive:
        label = archive.label
        config = _read_config(archive)
        net = model_from_config(config, label)
        specs = array_specs(net)
        missing = sorted(k for k in specs if f"{ARRAY_PREFIX}{k}.npy" not in archive.names)
        if missing:
            raise FileFormatError(f"{label} lacks arrays {missing}")
        arrays = {k: archive.read_array(f"{ARRAY_PREFIX}{k}.npy", s) for k, s in specs.items()}
    load_state(net, arrays, label)
    extra = config.get("extra", {})
    if not isinstance(extra, dict):
        raise FileFormatError(f"{label}: the notes saved with the network are damaged")
    check_classifier(net, extra.get("class_names"), extra.get("input_shape"), label)
    return net, extra


__all__ = [
    "FORMAT_VERSION",
    "GRAPH_FORMAT_NAME",
    "MAX_GRAPH_NODES",
    "MAX_NETWORK_ELEMENTS",
    "FileFormatError",
    "array_specs",
    "check_classifier",
    "check_version",
    "decode_json",
    "encode_json",
    "graph_from_config",
    "load_model",
    "load_network",
    "load_npz_safe",
    "load_state",
    "model_from_config",
    "network_from_config",
    "network_from_state",
    "network_to_state",
    "output_count",
    "remove_stale_temps",
    "save_network",
    "save_npz_atomic",
]
