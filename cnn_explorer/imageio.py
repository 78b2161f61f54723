"""Load an image file into a ``(C, H, W)`` float32 array in [0, 1] safely.

Uses ``QImageReader`` (QtGui, no widgets) because it can report an image's size *before*
decoding it: a 20,000×20,000 PNG is decoded straight to the requested small size via
``setScaledSize`` instead of allocating gigabytes, and ``setAllocationLimit`` is a second
guard. Any failure raises :class:`ImageLoadError` with a sentence for the user; the caller
leaves its current input untouched.
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
    """The file is missing, not an image, corrupt, or too large; the message says which."""


def image_size(path: str) -> tuple[int, int]:
    """``(width, height)`` from the file header without decoding.

    Raises ImageLoadError for a missing/non-image file, or for a source too large to decode
    at all (so a caller can refuse at once instead of starting a doomed background job).
    """
    reader = _reader(path)
    _check_source(reader, os.path.basename(path))
    size = reader.size()
    return size.width(), size.height()


def _check_source(reader: QImageReader, name: str) -> None:
    src = reader.size()
    if not src.isValid() or src.width() <= 0 or src.height() <= 0:
        raise ImageLoadError(f"{name} is not a readable image ({reader.errorString()}).")
    if src.width() * src.height() > MAX_SOURCE_PIXELS:
        raise ImageLoadError(
            f"{name} is {src.width()}×{src.height()} pixels, more than the "
            f"{MAX_SOURCE_PIXELS // 1_000_000} megapixels this explorer will open."
        )
    decoded_mb = src.width() * src.height() * 4 / 2**20
    scales = reader.supportsOption(QImageIOHandler.ImageOption.ScaledSize)
    if decoded_mb > ALLOCATION_LIMIT_MB and not scales:
        raise ImageLoadError(
            f"{name} is {src.width()}×{src.height()} pixels ({decoded_mb:,.0f} MB once decoded), "
            f"more than the {ALLOCATION_LIMIT_MB} MB this explorer decodes, and its format "
            f"cannot be decoded at a smaller size. Shrink it in an image editor first "
            f"(large JPEG files are downscaled while decoding)."
        )


def load_image(
    path: str,
    size: tuple[int, int] | None = None,
    channels: int = 1,
) -> np.ndarray:
    """Decode ``path`` into ``(channels, H, W)`` float32 values in [0, 1].

    ``size`` is ``(rows, cols)`` of the result; ``None`` keeps the source size if it fits
    ``MAX_SIDE`` and otherwise shrinks it to fit, preserving the aspect ratio.
    ``channels`` is 1 (luminance) or 3 (RGB). The source size is checked from the header
    before anything is decoded, and decoding goes straight to the target size where the
    format allows it.
    """
    if channels not in (1, 3):
        raise ImageLoadError(f"channels must be 1 or 3, not {channels}")
    name = os.path.basename(path)
    reader = _reader(path)
    _check_source(reader, name)
    src = reader.size()
    rows, cols = size if size is not None else _fit(src.height(), src.width())
    if not (1 <= rows <= MAX_SIDE and 1 <= cols <= MAX_SIDE):
        raise ImageLoadError(f"target size {rows}×{cols} is outside 1..{MAX_SIDE}")
    reader.setScaledSize(QSize(cols, rows))
    image = reader.read()
    if image.isNull():
        raise ImageLoadError(f"{name} could not be decoded: {reader.errorString()}.")
    if image.width() != cols or image.height() != rows:
        # Some formats ignore setScaledSize; the decoded image is already bounded by the
        # allocation limit, so a smooth rescale here is cheap.
        image = image.scaled(cols, rows)
    return qimage_to_array(image, channels)


def qimage_to_array(image: QImage, channels: int) -> np.ndarray:
    """``(channels, H, W)`` float32 in [0, 1] from any QImage (copied, independent)."""
    if channels == 1:
        img = image.convertToFormat(QImage.Format.Format_Grayscale8)
        arr = _bits(img, 1)[None]
    else:
        img = image.convertToFormat(QImage.Format.Format_RGB888)
        arr = _bits(img, 3).transpose(2, 0, 1)
    return np.ascontiguousarray(arr, dtype=np.float32) / np.float32(255.0)


def _bits(img: QImage, depth: int) -> np.ndarray:
    h, w = img.height(), img.width()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=img.bytesPerLine() * h)
    rows = buf.reshape(h, img.bytesPerLine())[:, : w * depth]
    return rows.reshape(h, w, depth).squeeze(-1) if depth == 1 else rows.reshape(h, w, depth)


def _fit(h: int, w: int, limit: int = MAX_SIDE) -> tuple[int, int]:
    scale = min(1.0, limit / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def _reader(path: str) -> QImageReader:
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise ImageLoadError(f"{name}: no such file.")
    reader = QImageReader(path)
    reader.setAllocationLimit(ALLOCATION_LIMIT_MB)
    reader.setAutoTransform(True)
    if not reader.canRead():
        raise ImageLoadError(
            f"{name} is not an image this explorer can read (PNG, JPEG, BMP or GIF)."
        )
    return reader


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
