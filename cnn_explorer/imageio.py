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
"""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import QSize
from PySide6.QtGui import QImage, QImageIOHandler, QImageReader

MAX_SIDE = 512
"""Largest grid side the explorer accepts for an input."""

MAX_SOURCE_PIXELS = 400_000_000
"""Refuse sources above this many pixels even with scaled decoding (20k×20k = 4e8 is ok)."""

ALLOCATION_LIMIT_MB = 256
"""QImageReader allocation limit for the decoded (already scaled) image."""

SUPPORTED_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


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
    name = os.path.basename(path)
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
