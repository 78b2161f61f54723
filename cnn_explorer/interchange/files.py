"""Checks every model reader shares: a path is an existing regular file, not a symlink,
within the size limit, read without following links."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cnn_explorer.interchange.model import ModelFileError
from cnn_explorer.limits import MAX_MODEL_BYTES


def mb(n: float) -> str:
    """``"12.3 MB"`` for messages."""
    return f"{n / 1e6:.1f} MB"


def check_regular_file(path: Path, what: str = "the model file") -> int:
    """Size in bytes of ``path`` if it is a regular file and not a symbolic link;
    ModelFileError otherwise. ``what`` starts the message (``"the model file"``)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ModelFileError(f"{what} {path.name} does not exist") from None
    except OSError as exc:
        raise ModelFileError(f"{what} {path.name} cannot be read ({exc.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise ModelFileError(f"{what} {path.name} is a symbolic link; open the file it points to")
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(f"{what} {path.name} is not a regular file")
    return int(st.st_size)


def check_model_file(path: Path) -> int:
    """:func:`check_regular_file` plus the size limit; returns the size."""
    size = check_regular_file(path)
    if size > MAX_MODEL_BYTES:
        raise ModelFileError(
            f"{path.name} is {mb(size)}, more than the {mb(MAX_MODEL_BYTES)} this app reads"
        )
    return size


def read_range(path: Path, offset: int = 0, length: int | None = None) -> bytes:
    """Bytes of ``path`` (never through a symlink); ModelFileError when fewer than
    ``length`` bytes are there."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ModelFileError(f"{path.name} cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        fh.seek(offset)
        data = fh.read() if length is None else fh.read(length)
    if length is not None and len(data) != length:
        raise ModelFileError(f"{path.name} is truncated")
    return data
