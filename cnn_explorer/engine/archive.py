"""Reading ``.npz``-style zip archives from untrusted files without being blown up.

Why not ``np.load``: it decompresses every member it is asked for in full, trusting the
sizes written in the file, so a few kilobytes of DEFLATE data can claim gigabytes of memory
(an *archive bomb*), and a text file is reported as "pickled data". This reader

* refuses a file that is not a zip archive (by its first bytes) or whose central directory
  is oversized, before :mod:`zipfile` parses it;
* reads only the members it is asked for (everything else in the archive is ignored and
  never decompressed);
* checks each member's *declared* size against a cap before decompressing it, and streams
  it with a hard cap on the bytes actually produced (a header that lies cannot help);
* parses a ``.npy`` header itself (length capped, then :mod:`numpy.lib.format`, which uses
  ``ast.literal_eval``: no pickle, no code), checks dtype, shape and element count against
  what the caller expects, and only then allocates the array and reads exactly its bytes.

Every failure is a :class:`FileFormatError` whose message names the file and the problem;
only a missing file stays ``FileNotFoundError``. Standard library and NumPy only.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, BinaryIO

import numpy as np

CHUNK = 1 << 20
"""Bytes decompressed per step while streaming a member."""

MAX_MEMBERS = 4096
"""Most entries an archive may list (its central directory is parsed into memory)."""

MAX_NPY_HEADER = 16 * 1024
"""Largest ``.npy`` header accepted (NumPy writes about 128 bytes)."""

MEMBER_OVERHEAD = MAX_NPY_HEADER + 1024
"""Bytes an archive may spend per member beyond its array data (zip and ``.npy`` headers)."""

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError)


class FileFormatError(ValueError):
    """A file that is not a readable CNN Explorer file: corrupt, truncated, pickled,
    oversized, missing entries, or written by a newer version. The message says which, for
    the user."""


Dim = int | tuple[int, int]
"""One dimension of an expected shape: an exact size, or an inclusive ``(low, high)``."""


@dataclass(frozen=True)
class ArraySpec:
    """What one array member must hold, checked from its header before allocating.

    ``shape``: one :data:`Dim` per axis, or None for any shape; ``kinds``: allowed
    ``dtype.kind`` letters (``"f"`` float, ``"i"``/``"u"`` integers); ``max_elements``: a
    cap on the element count whatever the shape; ``what``: the array's name in messages
    ("layer 2 bias"); ``max_nbytes``: an optional cap on the data bytes. Items are at
    most 8 bytes.
    """

    shape: tuple[Dim, ...] | None
    kinds: str = "f"
    max_elements: int = 1 << 26
    what: str = ""
    max_nbytes: int | None = None

    def max_bytes(self) -> int:
        """Largest member this spec admits (data plus headers): the size cap of a member."""
        data = self.max_elements * 8
        if self.max_nbytes is not None:
            data = min(data, self.max_nbytes)
        return data + MEMBER_OVERHEAD

    def describe(self) -> str:
        """The expected shape as text, e.g. ``(2, 1..64, 3, 3)``."""
        if self.shape is None:
            return "any shape"
        dims = [str(d) if isinstance(d, int) else f"{d[0]}..{d[1]}" for d in self.shape]
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"

    def admits(self, shape: tuple[int, ...]) -> bool:
        if self.shape is None:
            return True
        if len(shape) != len(self.shape):
            return False
        return all(
            s == d if isinstance(d, int) else d[0] <= s <= d[1]
            for s, d in zip(shape, self.shape, strict=True)
        )


class SafeArchive:
    """A zip archive opened for bounded reads (see the module docstring).

    ``label`` names the file in every message ("model.npz"). Use :func:`open_archive`
    or :func:`archive_from_bytes`.
    """

    def __init__(self, zf: zipfile.ZipFile, label: str) -> None:
        self._zf = zf
        self.label = label
        self.names = frozenset(zf.namelist())

    def read_bytes(self, member: str, max_bytes: int, what: str = "") -> bytes:
        """The whole content of ``member``; refused if it is (or turns out) larger than
        ``max_bytes``."""
        what = what or member
        with self._open(member, max_bytes, what) as fh:
            data = _read_capped(fh, max_bytes, self.label, what)
        return data

    def read_array(self, member: str, spec: ArraySpec) -> np.ndarray:
        """The array stored as ``.npy`` in ``member``, checked against ``spec`` before any
        allocation; its dtype is kept (the caller converts)."""
        what = spec.what or f"array {member!r}"
        where = f"{self.label}: {what}"
        with self._open(member, spec.max_bytes(), what) as fh:
            shape, fortran, dtype = _npy_header(fh, where)
            if dtype.hasobject:
                raise FileFormatError(
                    f"{where} holds Python objects (pickled data), which are never loaded."
                )
            if (
                dtype.names is not None
                or dtype.subdtype is not None
                or dtype.kind not in spec.kinds
                or dtype.itemsize > 8
            ):
                raise FileFormatError(f"{where} has unsupported data type {dtype}.")
            count = math.prod(shape)
            nbytes = count * dtype.itemsize
            too_big = spec.max_nbytes is not None and nbytes > spec.max_nbytes
            if not spec.admits(shape) or count > spec.max_elements or too_big:
                raise FileFormatError(
                    f"{where} has shape {shape}, expected {spec.describe()} "
                    f"(at most {spec.max_elements:,} values)."
                )
            declared = self._zf.getinfo(member).file_size
            if declared != fh.tell() + nbytes:
                raise FileFormatError(
                    f"{where} is truncated or has extra data ({declared:,} bytes stored, "
                    f"{fh.tell() + nbytes:,} expected)."
                )
            flat = np.empty(count, dtype)
            _read_into(fh, flat.view(np.uint8).data, where)
            if fh.read(1):
                raise FileFormatError(f"{where} has more data than its header says.")
        if fortran:
            return np.ascontiguousarray(flat.reshape(shape[::-1]).T)
        return flat.reshape(shape)

    @contextmanager
    def _open(self, member: str, max_bytes: int, what: str) -> Iterator[IO[bytes]]:
        """Open ``member`` for streaming after checking its declared size and method;
        decoding errors inside the block become :class:`FileFormatError`."""
        if member not in self.names:
            raise FileFormatError(f"{self.label}: {what} is missing.")
        info = self._zf.getinfo(member)
        if info.flag_bits & 0x1:
            raise FileFormatError(f"{self.label}: {what} is encrypted.")
        if info.compress_type not in _METHODS:
            raise FileFormatError(f"{self.label}: {what} uses an unsupported compression method.")
        if info.file_size > max_bytes:
            raise FileFormatError(
                f"{self.label}: {what} would unpack to {_size(info.file_size)}, more than "
                f"the {_size(max_bytes)} it can hold: refusing to open it."
            )
        try:
            with self._zf.open(info) as fh:
                yield fh
        except FileFormatError:
            raise
        except _READ_ERRORS as exc:
            raise FileFormatError(f"{self.label}: {what} is damaged ({_reason(exc)}).") from None

    def close(self) -> None:
        self._zf.close()


@contextmanager
def open_archive(
    path: str | os.PathLike[str],
    label: str | None = None,
    max_members: int = MAX_MEMBERS,
    kind: str = "NumPy archive (.npz)",
) -> Iterator[SafeArchive]:
    """Open the zip archive at ``path`` for bounded reads (a context manager).

    A missing path raises FileNotFoundError; a folder, a non-zip file (a text file, a
    single ``.npy``), a damaged zip or one listing more than ``max_members`` entries
    raises :class:`FileFormatError`. ``kind`` names what the file should be, for the
    message ("model.npz is a text file, not a NumPy archive (.npz).").
    """
    label = label or os.path.basename(os.fspath(path))
    if os.path.isdir(path):
        raise FileFormatError(f"{label} is a folder, not a file.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {os.fspath(path)}")
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed below or by the archive)
    except (OSError, ValueError) as exc:  # ValueError: a path the OS cannot take
        raise FileFormatError(f"{label} cannot be read ({_reason(exc)}).") from None
    try:
        archive = _archive(fh, label, max_members, kind)
    except BaseException:
        fh.close()
        raise
    try:
        yield archive
    finally:
        archive.close()
        fh.close()


@contextmanager
def archive_from_bytes(
    data: bytes, label: str, max_members: int = MAX_MEMBERS
) -> Iterator[SafeArchive]:
    """Like :func:`open_archive` for an archive already in memory (a nested archive)."""
    archive = _archive(io.BytesIO(data), label, max_members)
    try:
        yield archive
    finally:
        archive.close()


def _archive(fh: BinaryIO, label: str, max_members: int, kind: str = "zip archive") -> SafeArchive:
    head = fh.read(512)
    if head.startswith(_NPY_MAGIC):
        raise FileFormatError(f"{label} holds a single array (.npy), not an .npz archive.")
    if head[:4] not in _ZIP_MAGIC:
        if not head:
            raise FileFormatError(f"{label} is empty, not a {kind}.")
        if _looks_like_text(head):
            raise FileFormatError(f"{label} is a text file, not a {kind}.")
        raise FileFormatError(f"{label} is not a {kind} (it does not start like a zip archive).")
    _check_directory(fh, label, max_members)
    try:
        fh.seek(0)
        return SafeArchive(zipfile.ZipFile(fh), label)
    except _READ_ERRORS as exc:
        raise FileFormatError(f"{label} is damaged or truncated ({_reason(exc)}).") from None


def _looks_like_text(head: bytes, full: int = 512) -> bool:
    """True when the first bytes read as printable UTF-8 (a full read may end inside a
    multi-byte character)."""
    text = head.decode("utf-8", errors="replace")
    if len(head) == full:
        text = text.rstrip("\ufffd")
    return "\ufffd" not in text and all(c.isprintable() or c in "\t\r\n\f" for c in text)


def _check_directory(fh: BinaryIO, label: str, max_members: int) -> None:
    """Refuse from the end-of-directory record alone: too many entries, an oversized
    directory, or a ZIP64 directory (our files never need one) are refused before
    :mod:`zipfile` builds an object per entry."""
    size = fh.seek(0, io.SEEK_END)
    tail_len = min(size, _EOCD_SIZE + 0xFFFF)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < _EOCD_SIZE:
        raise FileFormatError(f"{label} is damaged or truncated (no zip directory at its end).")
    _, _, _, _, entries, cd_size, _, _ = struct.unpack("<4s4H2LH", tail[at : at + _EOCD_SIZE])
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF or entries > max_members:
        raise FileFormatError(
            f"{label} lists too many entries (at most {max_members:,}): refusing to open it."
        )
    if cd_size > max_members * 1024:
        raise FileFormatError(f"{label} has an oversized zip directory: refusing to open it.")


def _npy_header(fh: IO[bytes], where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, order and dtype of a ``.npy`` stream; the header is read with a length cap
    and parsed by :mod:`numpy.lib.format` (a literal, never unpickled or executed)."""
    magic = fh.read(8)
    if len(magic) < 8 or not magic.startswith(_NPY_MAGIC):
        raise FileFormatError(f"{where} is not a NumPy array (.npy) entry.")
    version = (magic[6], magic[7])
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise FileFormatError(f"{where} uses unknown .npy version {version}.")
    fmt = "<H" if version == (1, 0) else "<I"
    raw_len = fh.read(struct.calcsize(fmt))
    if len(raw_len) != struct.calcsize(fmt):
        raise FileFormatError(f"{where} is truncated (in its header).")
    (length,) = struct.unpack(fmt, raw_len)
    if length > MAX_NPY_HEADER:
        raise FileFormatError(f"{where} has an oversized header ({length:,} bytes).")
    header = fh.read(length)
    if len(header) != length:
        raise FileFormatError(f"{where} is truncated (in its header).")
    reader = np.lib.format.read_array_header_1_0
    if version != (1, 0):
        reader = np.lib.format.read_array_header_2_0
    try:
        if version == (3, 0):
            # 3.0 only differs by a UTF-8 header; parse it as 2.0 after checking it is ASCII.
            header.decode("ascii")
        shape, fortran, dtype = reader(io.BytesIO(raw_len + header), max_header_size=MAX_NPY_HEADER)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError) as exc:
        raise FileFormatError(f"{where} has a damaged header ({_reason(exc)}).") from None
    if any(s < 0 for s in shape):
        raise FileFormatError(f"{where} has a negative dimension in its header.")
    return tuple(shape), bool(fortran), dtype


def _read_capped(fh: IO[bytes], limit: int, label: str, what: str) -> bytes:
    """Everything ``fh`` produces, refused as soon as it exceeds ``limit`` bytes."""
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = fh.read(min(CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > limit:
            raise FileFormatError(
                f"{label}: {what} unpacks to more than {_size(limit)}: refusing to open it."
            )
        parts.append(chunk)


def _read_into(fh: IO[bytes], out: memoryview, where: str) -> None:
    """Fill ``out`` exactly from ``fh`` in bounded steps (``out`` was sized from a checked
    header, so nothing beyond it is ever decompressed)."""
    pos, n = 0, len(out)
    while pos < n:
        chunk = fh.read(min(CHUNK, n - pos))
        if not chunk:
            raise FileFormatError(f"{where} is truncated ({pos:,} of {n:,} bytes).")
        out[pos : pos + len(chunk)] = chunk
        pos += len(chunk)


def _size(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n:,} bytes"


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__


__all__ = [
    "MAX_MEMBERS",
    "ArraySpec",
    "FileFormatError",
    "SafeArchive",
    "archive_from_bytes",
    "open_archive",
]
