"""Checks every model reader shares: a path is an existing regular file, not a symlink,
within the size limit, read without following links; the imported graph's maps fit in
memory at the chosen input size."""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cnn_explorer.interchange.model import ImportReport, ModelFileError
from cnn_explorer.limits import MAX_DOCUMENT_BYTES, MAX_MODEL_BYTES

if TYPE_CHECKING:
    from cnn_explorer.engine.graph import Graph


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


def memory_estimate(graph: Graph, input_shape: Sequence[int]) -> int:
    """Bytes of float32 the input and every map take for one image."""
    shapes = graph.output_shapes(tuple(input_shape))
    return 4 * sum(math.prod(s) for s in shapes.values())


def check_memory(graph: Graph, shape: tuple[int, int, int], report: ImportReport) -> None:
    """Refuse (before anything runs) a graph whose maps at ``shape`` exceed
    :data:`~cnn_explorer.limits.MAX_DOCUMENT_BYTES`."""
    need = memory_estimate(graph, shape)
    if need > MAX_DOCUMENT_BYTES:
        raise ModelFileError(
            f"at input size {shape[0]}×{shape[1]}×{shape[2]} the model's maps take about "
            f"{mb(need)}, more than the {mb(MAX_DOCUMENT_BYTES)} this app allows; choose a "
            "smaller input size",
            report,
        )
