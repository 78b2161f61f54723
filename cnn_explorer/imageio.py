"""Decode image files into ``(C, H, W)`` float32 arrays in [0, 1], safely.

One decoder serves both the explorer (:func:`load_image`, one picture as the input grid) and
the training loader (:mod:`cnn_explorer.training.image_folder`, a folder of pictures).

Uses ``QImageReader`` (QtGui, no widgets, no QApplication) because it can report an image's
size *before* decoding it: a 20,000×20,000 PNG is refused or a big JPEG decoded straight to
the requested small size via ``setScaledSize`` instead of allocating gigabytes, and
``setAllocationLimit`` is a second guard. Grayscale, RGB, RGBA, palette and 16-bit files all
come out the same way; transparency is composited over black (a transparent pixel is 0,
whatever colour it hides). Any failure raises :class:`ImageLoadError` with a sentence for
the user and a short ``reason`` for a per-file skip list; the caller leaves its current
input untouched.

A truncated file is refused before it is decoded: Qt fills the missing part of a JPEG or
BMP with grey and reports success (and a PNG with a damaged end simply fails), so a cut-off
download would otherwise load "fine" and count as a good training image. The check reads
the file's structure (JPEG markers up to the end-of-image marker, the BMP pixel array
size, the PNG chunks up to ``IEND``, the first GIF frame's data blocks) without decoding.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QSize
from PySide6.QtGui import QImage, QImageIOHandler, QImageReader

from cnn_explorer.limits import MAX_INPUT_SIDE

MAX_SIDE = MAX_INPUT_SIDE
"""Largest grid side the explorer accepts for an input."""

DEFAULT_SIDE = 64
"""The longer side of the grid an image is offered at (the shorter follows its aspect)."""

MAX_SOURCE_PIXELS = 400_000_000
"""Refuse sources above this many pixels even with scaled decoding (20k×20k = 4e8 is ok)."""

ALLOCATION_LIMIT_MB = 256
"""QImageReader allocation limit for the decoded (already scaled) image."""


class ImageLoadError(ValueError):
    """The file is missing, not an image, corrupt, or too large.

    ``str(err)`` is a sentence naming the file, for a dialog; ``reason`` is the short
    ``"category: detail"`` form (no file name) for a list of skipped files, where the
    category before the ``:`` groups the skips.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message


def image_size(path: str, max_source_pixels: int = MAX_SOURCE_PIXELS) -> tuple[int, int]:
    """``(width, height)`` from the file header without decoding.

    Raises ImageLoadError for a missing/non-image file, or for a source too large to decode
    at all (so a caller can refuse at once instead of starting a doomed background job).
    """
    reader = _reader(path)
    _check_source(reader, os.path.basename(path), max_source_pixels)
    size = reader.size()
    return size.width(), size.height()


def source_channels(path: str) -> int | None:
    """1 for a grey file, 3 for a colour one, None when the header does not say (GIF),
    read from the header without decoding (so a colour photo can default to RGB)."""
    fmt = _reader(path).imageFormat()
    grey = (
        QImage.Format.Format_Grayscale8,
        QImage.Format.Format_Grayscale16,
        QImage.Format.Format_Mono,
        QImage.Format.Format_MonoLSB,
    )
    if fmt in grey:
        return 1
    return None if fmt == QImage.Format.Format_Invalid else 3


def aspect_size(
    src_h: int, src_w: int, long_side: int = DEFAULT_SIDE, limit: int = MAX_SIDE
) -> tuple[int, int]:
    """``(rows, cols)`` keeping a ``src_h × src_w`` picture's aspect ratio: the longer side
    is ``long_side`` (never more than the source's, so small pictures keep their size, and
    never more than ``limit``), the shorter follows (at least 1).

    e.g. 640×427 (w×h) → ``(43, 64)``.
    """
    long_side = max(1, min(long_side, limit, max(src_h, src_w)))
    scale = long_side / max(src_h, src_w)
    return (
        max(1, min(limit, round(src_h * scale))),
        max(1, min(limit, round(src_w * scale))),
    )


def follow_aspect(
    src_h: int, src_w: int, rows: int | None = None, cols: int | None = None, limit: int = MAX_SIDE
) -> tuple[int, int]:
    """The other side for a given ``rows`` (or ``cols``) at the source's aspect ratio.

    Both sides stay within ``1..limit``: when the other side would pass the limit it is
    set to the limit and the given side follows it instead.
    """
    if (rows is None) == (cols is None):
        raise ValueError("give exactly one of rows and cols")
    if rows is not None:
        rows = max(1, min(limit, rows))
        cols = max(1, round(rows * src_w / src_h))
        if cols > limit:
            cols, rows = limit, max(1, round(limit * src_h / src_w))
        return rows, cols
    assert cols is not None
    cols = max(1, min(limit, cols))
    rows = max(1, round(cols * src_h / src_w))
    if rows > limit:
        rows, cols = limit, max(1, round(limit * src_w / src_h))
    return rows, cols


def load_image(
    path: str,
    size: tuple[int, int] | None = None,
    channels: int = 1,
) -> np.ndarray:
    """Decode ``path`` into ``(channels, H, W)`` float32 values in [0, 1].

    ``size`` is ``(rows, cols)`` of the result; ``None`` keeps the source size if it fits
    ``MAX_SIDE`` and otherwise shrinks it to fit, preserving the aspect ratio.
    ``channels`` is 1 (luminance) or 3 (RGB).
    """
    return decode_image(path, size, channels)[0]


def decode_image(
    path: str | os.PathLike[str],
    size: tuple[int, int] | None,
    channels: int,
    max_source_pixels: int = MAX_SOURCE_PIXELS,
) -> tuple[np.ndarray, tuple[int, int]]:
    """One file -> (``(channels, H, W)`` float32 in [0, 1], source ``(H, W)``).

    ``size`` is the ``(rows, cols)`` of the result (the image is stretched to it), or None
    for the source size shrunk to fit ``MAX_SIDE``. The source size is checked from the
    header before anything is decoded, and decoding goes straight to the target size where
    the format allows it (JPEG). Sources above ``max_source_pixels`` are refused.
    """
    if channels not in (1, 3):
        raise ImageLoadError(f"channels must be 1 or 3, not {channels}")
    path = os.fspath(path)
    name = os.path.basename(path)
    reader = _reader(path)
    _check_source(reader, name, max_source_pixels)
    src = reader.size()
    rows, cols = size if size is not None else _fit(src.height(), src.width())
    if not (1 <= rows <= MAX_SIDE and 1 <= cols <= MAX_SIDE):
        raise ImageLoadError(f"target size {rows}×{cols} is outside 1..{MAX_SIDE}")
    _check_complete(path, bytes(reader.format().data()), name)
    reader.setScaledSize(QSize(cols, rows))
    image = reader.read()
    if image.isNull():
        detail = reader.errorString()
        raise ImageLoadError(f"{name} could not be decoded: {detail}.", f"corrupt image: {detail}")
    if image.width() != cols or image.height() != rows:
        # Some formats ignore setScaledSize; the decoded image is already bounded by the
        # allocation limit, so a smooth rescale here is cheap.
        image = image.scaled(cols, rows)
    return qimage_to_array(image, channels), (src.height(), src.width())


def qimage_to_array(image: QImage, channels: int) -> np.ndarray:
    """``(channels, H, W)`` float32 in [0, 1] from any QImage format (copied, contiguous).

    Alpha is premultiplied first, i.e. composited over black: Qt's plain conversion would
    drop alpha and expose whatever colour a transparent pixel happens to hide.
    """
    if image.hasAlphaChannel():
        image = image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    fmt = QImage.Format.Format_Grayscale8 if channels == 1 else QImage.Format.Format_RGB888
    converted = image.convertToFormat(fmt)  # kept alive while _bits views its memory
    arr = _bits(converted, channels).transpose(2, 0, 1)
    return np.ascontiguousarray(arr, dtype=np.float32) / np.float32(255.0)


def _bits(img: QImage, depth: int) -> np.ndarray:
    """``(H, W, depth)`` uint8 view of ``img`` without the row padding (still Qt's memory)."""
    h, w, stride = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=stride * h)
    return buf.reshape(h, stride)[:, : w * depth].reshape(h, w, depth)


def _fit(h: int, w: int, limit: int = MAX_SIDE) -> tuple[int, int]:
    scale = min(1.0, limit / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def _reader(path: str) -> QImageReader:
    name = os.path.basename(os.path.normpath(path))
    if os.path.isdir(path):
        raise ImageLoadError(f"{name} is a folder, not an image file.", "not a file: a folder")
    if not os.path.isfile(path):
        raise ImageLoadError(f"{name}: no such file.", "missing file: no such file")
    reader = QImageReader(path)
    reader.setAllocationLimit(ALLOCATION_LIMIT_MB)
    reader.setAutoTransform(True)
    if not reader.canRead():
        raise ImageLoadError(
            f"{name} is not an image this explorer can read (PNG, JPEG, BMP or GIF).",
            f"unreadable image: {reader.errorString()}",
        )
    return reader


def _check_source(reader: QImageReader, name: str, max_source_pixels: int) -> None:
    """Refuse from the header alone: no valid size, too many pixels, or too big to decode
    in full when the format cannot decode at a smaller size."""
    src = reader.size()
    w, h = src.width(), src.height()
    if not src.isValid() or w <= 0 or h <= 0:
        detail = reader.errorString()
        raise ImageLoadError(
            f"{name} is not a readable image ({detail}).", f"unreadable image: {detail}"
        )
    if w * h > max_source_pixels:
        raise ImageLoadError(
            f"{name} is {w}×{h} pixels, more than the "
            f"{max_source_pixels // 1_000_000} megapixels this explorer will open.",
            f"too large: {w}×{h} pixels",
        )
    decoded_mb = w * h * 4 / 2**20
    scales = reader.supportsOption(QImageIOHandler.ImageOption.ScaledSize)
    if decoded_mb > ALLOCATION_LIMIT_MB and not scales:
        raise ImageLoadError(
            f"{name} is {w}×{h} pixels ({decoded_mb:,.0f} MB once decoded), "
            f"more than the {ALLOCATION_LIMIT_MB} MB this explorer decodes, and its format "
            f"cannot be decoded at a smaller size. Shrink it in an image editor first "
            f"(large JPEG files are downscaled while decoding).",
            f"too large: {w}×{h} pixels ({decoded_mb:,.0f} MB once decoded)",
        )


def _check_complete(path: str, fmt: bytes, name: str) -> None:
    """Refuse a file that ends before its picture does (see the module docstring)."""
    check = _COMPLETE.get(fmt.lower())
    if check is None:
        return
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                complete = False
            else:
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                    complete = check(data)
    except (OSError, ValueError, IndexError, struct.error) as exc:
        raise ImageLoadError(f"{name} cannot be read: {exc}.", f"unreadable image: {exc}") from None
    if not complete:
        raise ImageLoadError(
            f"{name} is truncated: the file ends before the picture does (an interrupted "
            "download or copy?).",
            "corrupt image: truncated file",
        )


def _jpeg_complete(data: mmap.mmap) -> bool:
    """Walk the header segments to the first scan, then look for the end-of-image marker
    (``FF D9`` cannot occur inside scan data, where ``FF`` is always escaped)."""
    n, pos = len(data), 2
    if data[:2] != b"\xff\xd8":
        return True  # not ours to judge: Qt reports it
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return True  # damaged headers: Qt reports them
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
        elif marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            pos += 2
        elif marker == 0xD9:
            return True
        elif marker == 0xDA:
            start = pos + 2 + ((data[pos + 2] << 8) | data[pos + 3])
            return data.rfind(b"\xff\xd9", start) >= 0
        else:
            pos += 2 + ((data[pos + 2] << 8) | data[pos + 3])
    return False


def _png_complete(data: mmap.mmap) -> bool:
    """The chunks, followed by their declared lengths, reach the closing ``IEND`` chunk."""
    n, pos = len(data), 8
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return True
    while pos + 8 <= n:
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IEND":
            return True
        pos += 12 + length
    return False


def _bmp_complete(data: mmap.mmap) -> bool:
    """The pixel array (from the header's offset, size and bit depth) fits in the file."""
    if len(data) < 26 or data[:2] != b"BM":
        return True
    offset, dib = struct.unpack_from("<II", data, 10)
    if dib == 12:
        width, height, bpp = struct.unpack_from("<HH2xH", data, 18)
        compression, size_image = 0, 0
    elif dib >= 40 and len(data) >= 38:
        width, height, bpp, compression, size_image = struct.unpack_from("<ii2xHII", data, 18)
    else:
        return True
    if compression in (0, 3, 6):  # uncompressed rows, 4-byte aligned
        need = offset + (bpp * abs(width) + 31) // 32 * 4 * abs(height)
    elif size_image:
        need = offset + size_image
    else:
        return True
    return len(data) >= need


def _gif_complete(data: mmap.mmap) -> bool:
    """The first frame's data blocks end (with their terminator) inside the file."""
    n = len(data)
    if n < 13 or data[:3] != b"GIF":
        return True

    def blocks_end(pos: int) -> int:
        while pos < n:
            size = data[pos]
            if size == 0:
                return pos + 1
            pos += 1 + size
        return -1

    flags, pos = data[10], 13
    if flags & 0x80:
        pos += 3 * (2 << (flags & 7))
    while 0 <= pos < n:
        kind = data[pos]
        if kind == 0x21:  # extension: label, then data blocks
            pos = blocks_end(pos + 2)
        elif kind == 0x2C:  # image: descriptor, local colours, LZW code size, data blocks
            if pos + 10 > n:
                return False
            local = data[pos + 9]
            pos += 10 + (3 * (2 << (local & 7)) if local & 0x80 else 0)
            return blocks_end(pos + 1) >= 0
        else:
            return True  # a trailer or damage: Qt reports it
    return False


_COMPLETE: dict[bytes, Callable[[mmap.mmap], bool]] = {
    b"jpeg": _jpeg_complete,
    b"jpg": _jpeg_complete,
    b"png": _png_complete,
    b"bmp": _bmp_complete,
    b"gif": _gif_complete,
}


def save_png(array: np.ndarray, path: str) -> None:
    """Write a ``(H, W)`` uint8 grayscale or ``(H, W, 3|4)`` uint8 array as a PNG."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    h, w = a.shape[:2]
    if a.ndim == 2:
        img = QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8)
    elif a.shape[2] == 3:
        img = QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    else:
        img = QImage(a.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    if not img.copy().save(path, "PNG"):
        raise OSError(f"could not write {path}")
