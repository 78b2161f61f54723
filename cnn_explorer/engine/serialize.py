"""Networks to and from files: a JSON-safe config plus a dict of arrays in one ``.npz``.

Why ``.npz`` without pickle: a network file may come from anyone, and ``np.load`` with
``allow_pickle=False`` cannot execute code. The JSON config travels inside the archive as a
``uint8`` array (UTF-8 bytes), so a single file holds everything. Writes are atomic (temp
file in the same directory, fsync, ``os.replace``): a crash mid-save never leaves a
half-written file in place of the user's work.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from cnn_explorer.engine.network import Network

FORMAT_NAME = "cnn-explorer-network"
FORMAT_VERSION = 1
CONFIG_KEY = "__config__"
ARRAY_PREFIX = "param/"


class FileFormatError(ValueError):
    """A file that is not a readable CNN Explorer file: corrupt, truncated, pickled,
    missing entries, or written by a newer version. The message says which, for the user."""


# --------------------------------------------------------------------------------------
# In-memory form
# --------------------------------------------------------------------------------------


def network_to_state(network: Network) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(config, arrays)``: the JSON-safe description (with format name and version) and
    copies of every parameter/buffer keyed ``"3.weight"``."""
    config = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **network.to_dict()}
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


def network_from_state(config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Network:
    """Rebuild a network from :func:`network_to_state` output; bad content raises
    :class:`FileFormatError` (never a KeyError deep inside)."""
    check_version(config)
    if config.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise FileFormatError(f"not a network file (format {config.get('format')!r})")
    layers = config.get("layers")
    if not isinstance(layers, list):
        raise FileFormatError("the network file has no layer list")
    try:
        net = Network.from_dict({"layers": layers})
        expected = set(net.state_arrays())
        missing = expected - set(arrays)
        if missing:
            raise FileFormatError(f"the network file lacks arrays {sorted(missing)}")
        net.load_state_arrays({k: arrays[k] for k in expected})
    except FileFormatError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise FileFormatError(f"the network file has an invalid layer: {exc}") from exc
    return net


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


def load_npz_safe(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` with ``allow_pickle=False`` into memory.

    A missing file raises FileNotFoundError; anything unreadable (not a zip, truncated,
    pickled object arrays, corrupt members) raises :class:`FileFormatError`.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    try:
        # Open the file ourselves: np.load(path) leaks its handle when the zip is corrupt.
        with open(p, "rb") as fh:
            data = np.load(fh, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("a single array (.npy), not an .npz archive")
            with data:
                return {k: np.array(data[k]) for k in data.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise FileFormatError(f"{p.name} is not a readable array file ({exc})") from exc


def encode_json(obj: Any) -> np.ndarray:
    """A JSON-safe object as a ``uint8`` array of UTF-8 bytes (storable without pickle)."""
    return np.frombuffer(json.dumps(obj, allow_nan=False).encode("utf-8"), dtype=np.uint8)


def decode_json(array: np.ndarray) -> Any:
    """Inverse of :func:`encode_json`; raises :class:`FileFormatError` on bad bytes."""
    try:
        return json.loads(np.asarray(array, dtype=np.uint8).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise FileFormatError(f"the file's description is damaged ({exc})") from exc


def save_network(
    path: str | os.PathLike[str], network: Network, extra: Mapping[str, Any] | None = None
) -> None:
    """Save ``network`` (config + arrays, and an optional JSON-safe ``extra`` dict such as
    class names or the input shape) to one ``.npz`` file, atomically."""
    config, arrays = network_to_state(network)
    if extra:
        config["extra"] = dict(extra)
    payload = {CONFIG_KEY: encode_json(config)}
    payload.update({ARRAY_PREFIX + k: v for k, v in arrays.items()})
    save_npz_atomic(path, payload)


def load_network(path: str | os.PathLike[str]) -> tuple[Network, dict[str, Any]]:
    """Load a file written by :func:`save_network`: ``(network, extra)``."""
    data = load_npz_safe(path)
    if CONFIG_KEY not in data:
        raise FileFormatError(
            f"{Path(path).name} is not a CNN Explorer network file (no description inside)"
        )
    config = decode_json(data[CONFIG_KEY])
    if not isinstance(config, dict):
        raise FileFormatError("the file's description is not a dictionary")
    arrays = {k[len(ARRAY_PREFIX) :]: v for k, v in data.items() if k.startswith(ARRAY_PREFIX)}
    net = network_from_state(config, arrays)
    extra = config.get("extra", {})
    return net, extra if isinstance(extra, dict) else {}


__all__ = [
    "FORMAT_VERSION",
    "FileFormatError",
    "check_version",
    "decode_json",
    "encode_json",
    "load_network",
    "load_npz_safe",
    "network_from_state",
    "network_to_state",
    "save_network",
    "save_npz_atomic",
]
