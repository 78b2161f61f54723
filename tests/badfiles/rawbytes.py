"""Raw bytes for the bad-file corpus: zip archives whose headers say whatever we like,
DEFLATE bombs built in a second, bare ``.npy`` headers, and whole image files to cut
(JPEG, PNG and BMP written by Qt; GIF built here, Qt writes none).

Kept apart from :mod:`make_corpus` (the cases) because these are byte-level tools: each
says exactly which header field it fakes, so a reader of the corpus can see what a bad
file contains without a hex editor.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

BOMB_BYTES = 1 << 30
"""What each DEFLATE bomb unpacks to (1 GiB of zeros from about 1 MB)."""


@dataclass
class Member:
    """A zip entry written byte for byte: ``payload`` as stored, sizes as *declared*."""

    name: str
    payload: bytes
    size: int
    crc: int
    method: int = zipfile.ZIP_STORED


def stored(name: str, data: bytes) -> Member:
    return Member(name, data, len(data), zlib.crc32(data))


def zip_bytes(members: list[Member]) -> bytes:
    """A zip archive whose headers say exactly what the members say (true or not)."""
    out, central = io.BytesIO(), io.BytesIO()
    for m in members:
        offset = out.tell()
        name = m.name.encode()
        common = (0, m.method, 0, 0x21, m.crc, len(m.payload), m.size, len(name))
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, *common, 0) + name + m.payload)
        central.write(
            struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, *common, 0, 0, 0, 0, 0, offset) + name
        )
    cd = central.getvalue()
    n = len(members)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, len(cd), out.tell(), 0)
    return out.getvalue() + cd + end


@lru_cache(maxsize=4)
def zero_bomb(prefix: bytes, zeros: int = BOMB_BYTES) -> tuple[bytes, int]:
    """Raw DEFLATE data unpacking to ``prefix`` then ``zeros`` zero bytes (a multiple of
    16 MiB; about 1/1000 of that on disk), and its CRC-32.

    Built in a second, not by compressing a gigabyte: a 16 MiB run of zeros is compressed
    once, ending with a full flush (byte-aligned, no reference to earlier data), and that
    segment is repeated; a final empty block closes the stream."""
    chunk = 1 << 24
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = head.compress(prefix) + head.flush(zlib.Z_FULL_FLUSH)
    run = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = run.compress(bytes(chunk)) + run.flush(zlib.Z_FULL_FLUSH)
    stream = first + segment * (zeros // chunk) + b"\x03\x00"
    return stream, _zeros_crc(zlib.crc32(prefix), zeros // chunk * chunk)


def _zeros_crc(crc: int, n: int) -> int:
    block = bytes(1 << 24)
    while n:
        step = min(n, len(block))
        crc = zlib.crc32(block[:step] if step < len(block) else block, crc)
        n -= step
    return crc


def deflate_member(name: str, prefix: bytes, declared: int | None = None) -> Member:
    """A DEFLATE member unpacking to ``prefix`` + zeros (1 GiB), declaring ``declared``."""
    stream, crc = zero_bomb(prefix)
    size = len(prefix) + BOMB_BYTES if declared is None else declared
    return Member(name, stream, size, crc, zipfile.ZIP_DEFLATED)


def npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    """A version 1.0 ``.npy`` header for ``shape`` (no data)."""
    buf = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def gif_bytes(w: int, h: int) -> bytes:
    """A GIF of noise (Qt has no GIF writer): 8-bit LZW codes, a clear code every 200
    pixels so the code width stays 9 bits."""
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, w * h).tolist()
    palette = bytes(v for i in range(256) for v in (i, 255 - i, (i * 7) % 256))
    codes: list[int] = []
    for i in range(0, len(pixels), 200):
        codes += [256, *pixels[i : i + 200]]
    codes.append(257)
    acc = nbits = 0
    packed = bytearray()
    for c in codes:
        acc |= c << nbits
        nbits += 9
        while nbits >= 8:
            packed.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        packed.append(acc & 0xFF)
    blocks = b"".join(
        bytes([len(packed[i : i + 255])]) + packed[i : i + 255] for i in range(0, len(packed), 255)
    )
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", w, h, 0xF7, 0, 0)
        + palette
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, w, h, 0)
        + b"\x08"
        + blocks
        + b"\x00\x3b"
    )


def qimage(w: int = 80, h: int = 64) -> Any:
    """A noisy RGB QImage (noise keeps JPEG and PNG files big enough to cut)."""
    from PySide6.QtGui import QImage

    rng = np.random.default_rng(0)
    a = np.ascontiguousarray((rng.random((h, w, 3)) * 255).astype(np.uint8))
    return QImage(a.tobytes(), w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def image_bytes(fmt: str) -> bytes:
    """A whole, valid image file of ``fmt`` (JPEG, PNG, BMP via Qt; GIF built here)."""
    if fmt == "GIF":
        return gif_bytes(80, 64)
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not qimage().save(buf, fmt):
        raise RuntimeError(f"Qt cannot write {fmt}")
    buf.close()
    return bytes(data.data())
