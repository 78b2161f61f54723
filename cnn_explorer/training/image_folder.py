"""Load an "image folder" dataset: one subfolder per class, images inside.

::

    my_data/
        cats/   a.png b.jpg ...
        dogs/   c.png d.bmp ...

Each picture is decoded by :func:`cnn_explorer.imageio.decode_image` (QtGui's
``QImageReader``: no widgets, no QApplication needed), which reads the size from the header
*before* decoding and decodes straight to the requested small size, so a 20,000×20,000
bitmap is never allocated. It understands grayscale, RGB, RGBA, palette and 16-bit files
alike.

A real folder is messy, so bad files never abort the load: zero-byte files, non-images,
corrupt or oversized images are *skipped with a reason* and counted in the summary. Only a
dataset that cannot be trained on is refused (:class:`ImageFolderError`, one clear sentence):
missing or empty folder, fewer than two classes with images, no images at all, or more
memory than allowed at the chosen size (the estimate ``N·C·H·W·4`` bytes is stated).

``progress(done, total)`` and ``cancel() -> bool`` let it run in a worker thread; a cancel
raises :class:`~cnn_explorer.training.data.LoadCancelled` between two files. Readable
suffixes are :data:`cnn_explorer.limits.IMAGE_SUFFIXES`; sides are at most
:data:`cnn_explorer.limits.MAX_TRAINING_SIDE`. Most callers want
:func:`cnn_explorer.training.data.load_dataset`, which also knows the built-in set.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnn_explorer import imageio
from cnn_explorer.imageio import ImageLoadError
from cnn_explorer.limits import IMAGE_SUFFIXES, MAX_TRAINING_SIDE
from cnn_explorer.training.data import LabeledImages, LoadCancelled

DEFAULT_SIZE = 28
"""Side used when the folder's images do not all share one size (or are larger than
``NATIVE_MAX``)."""

NATIVE_MAX = 64
"""Images that all share a size up to this side are kept at their native size by default."""

DEFAULT_MEMORY_LIMIT = 1 << 30
"""Refuse a dataset whose float32 array would exceed this many bytes (1 GiB)."""

MAX_SOURCE_PIXELS = 100_000_000
"""Skip sources above 100 megapixels: formats without scaled decoding would decode in full."""

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


class ImageFolderError(ValueError):
    """The folder cannot be used as a dataset; ``str(err)`` is one sentence for the user."""


@dataclass
class FolderSummary:
    """What a load found: images per class, skipped files and why, sizes, memory."""

    root: str
    image_size: tuple[int, int]
    channels: int
    per_class: dict[str, int]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    empty_classes: list[str] = field(default_factory=list)
    source_sizes: Counter[tuple[int, int]] = field(default_factory=Counter)
    estimate_bytes: int = 0

    @property
    def total(self) -> int:
        return sum(self.per_class.values())

    def skipped_by_reason(self) -> dict[str, int]:
        """Skip counts per reason category (the text before the first ':')."""
        return dict(Counter(reason.split(":")[0] for _, reason in self.skipped))

    def text(self, max_files: int = 5) -> str:
        """A short multi-line report for a label or the terminal."""
        h, w = self.image_size
        mode = "grayscale" if self.channels == 1 else "RGB"
        lines = [
            f"{self.total} images in {len(self.per_class)} classes, {h}×{w} {mode} "
            f"({self.estimate_bytes / 1e6:.1f} MB)",
            "  " + ", ".join(f"{name}: {n}" for name, n in self.per_class.items()),
        ]
        if len(self.source_sizes) > 1:
            lines.append(
                f"  {len(self.source_sizes)} different source sizes, all resized to {h}×{w}"
            )
        if self.empty_classes:
            lines.append("  folders without images (left out): " + ", ".join(self.empty_classes))
        if self.skipped:
            counts = ", ".join(f"{n} {why}" for why, n in self.skipped_by_reason().items())
            lines.append(f"  skipped {len(self.skipped)} files: {counts}")
            for path, reason in self.skipped[:max_files]:
                lines.append(f"    {path}: {reason}")
            if len(self.skipped) > max_files:
                lines.append(f"    … and {len(self.skipped) - max_files} more")
        return "\n".join(lines)


@dataclass
class _Candidate:
    path: Path
    label: int


def scan(root: str | os.PathLike[str]) -> tuple[list[str], list[_Candidate], list[tuple[str, str]]]:
    """Class names (sorted subfolder names), candidate image files, and files skipped by
    name (non-image suffix, hidden, zero bytes). Subfolders of a class folder count as the
    same class. Raises :class:`ImageFolderError` for a missing, non-folder or empty root."""
    root = Path(root)
    if not root.exists():
        raise ImageFolderError(f"{root} does not exist.")
    if not root.is_dir():
        raise ImageFolderError(f"{root} is a file, not a folder of class subfolders.")
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    if not entries:
        raise ImageFolderError(f"{root} is empty: put one subfolder of images per class in it.")
    class_dirs = [p for p in entries if p.is_dir()]
    if not class_dirs:
        raise ImageFolderError(
            f"{root} has no subfolders: put the images of each class in its own subfolder "
            "(e.g. cats/, dogs/)."
        )
    names = [p.name for p in class_dirs]
    candidates: list[_Candidate] = []
    skipped: list[tuple[str, str]] = []
    for label, folder in enumerate(class_dirs):
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            rel = str(path.relative_to(root))
            reason = _name_reason(path)
            if reason:
                skipped.append((rel, reason))
            else:
                candidates.append(_Candidate(path, label))
    return names, candidates, skipped


def _name_reason(path: Path) -> str | None:
    """Why ``path`` is skipped without opening it, or None if it should be decoded."""
    if any(part.startswith(".") for part in path.parts[-2:]):
        return "hidden file"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"not an image file: {path.suffix or 'no extension'}"
    if path.stat().st_size == 0:
        return "empty file: 0 bytes"
    return None


def load_image_folder(
    root: str | os.PathLike[str],
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = 1,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> tuple[LabeledImages, FolderSummary]:
    """Decode every image under ``root`` into ``(N, channels, H, W)`` float32 in [0, 1].

    ``image_size`` is a side, ``(H, W)``, or None: the native size when all images share one
    no larger than ``NATIVE_MAX``, else ``DEFAULT_SIZE``. Images are stretched to the size.
    ``channels`` is 1 (luminance), 3 (RGB) or None (auto: decoded as RGB, then kept as one
    channel when every pixel of every image is gray); transparency is composited over black.
    Classes whose folders end up without a readable image are left out (and reported).
    """
    if channels not in (1, 3, None):
        raise ImageFolderError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels}.")
    auto = channels is None
    channels = 3 if channels is None else channels
    names, candidates, skipped = scan(root)
    if not candidates:
        raise ImageFolderError(f"{root} has no images (PNG, JPEG, BMP or GIF) in its subfolders.")
    if len({c.label for c in candidates}) < 2:
        only = names[candidates[0].label]
        raise ImageFolderError(
            f"{root} has images for one class only ({only}): a classifier needs at least two "
            "class subfolders with images."
        )
    sources = Counter[tuple[int, int]]()
    if image_size is None:
        sources = _header_sizes(candidates, cancel)
        size = _default_size(sources)
    else:
        size = _as_size(image_size)
    _check_memory(len(candidates), channels, size, memory_limit)
    images, labels, bad = _decode_all(candidates, size, channels, progress, cancel, sources)
    if auto and _all_gray(images):
        images, channels = np.ascontiguousarray(images[:, :1]), 1
    skipped.extend((str(p.relative_to(root)), why) for p, why in bad)
    return _finish(root, names, images, labels, skipped, size, channels, sources)


def _finish(
    root: str | os.PathLike[str],
    names: list[str],
    images: np.ndarray,
    labels: np.ndarray,
    skipped: list[tuple[str, str]],
    size: tuple[int, int],
    channels: int,
    sources: Counter[tuple[int, int]],
) -> tuple[LabeledImages, FolderSummary]:
    """Drop classes without images, relabel densely, refuse < 2 classes, build the summary."""
    present = np.unique(labels)
    if len(present) < 2:
        raise ImageFolderError(
            f"{root} has readable images for {len(present)} class(es) only: a classifier needs "
            "at least two class subfolders with images."
        )
    kept = [names[k] for k in present]
    empty = [n for k, n in enumerate(names) if k not in set(present.tolist())]
    remap = np.full(len(names), -1, np.int64)
    remap[present] = np.arange(len(present))
    labels = remap[labels]
    per_class = {name: int(n) for name, n in zip(kept, np.bincount(labels), strict=True)}
    summary = FolderSummary(
        str(root), size, channels, per_class, skipped, empty, sources, int(images.nbytes)
    )
    data = LabeledImages(images, labels, kept, str(root), summary.text().splitlines())
    return data, summary


def _all_gray(images: np.ndarray) -> bool:
    """True when every pixel of ``(N, 3, H, W)`` has R == G == B."""
    return bool(
        np.array_equal(images[:, 0], images[:, 1]) and np.array_equal(images[:, 0], images[:, 2])
    )


def estimate_bytes(n: int, channels: int, size: tuple[int, int]) -> int:
    """float32 bytes of ``n`` images: ``N·C·H·W·4``."""
    return n * channels * size[0] * size[1] * 4


def _check_memory(n: int, channels: int, size: tuple[int, int], limit: int) -> None:
    need = estimate_bytes(n, channels, size)
    if need > limit:
        h, w = size
        raise ImageFolderError(
            f"{n} images at {channels}×{h}×{w} need about {need / 1e6:,.0f} MB as float32 "
            f"(N·C·H·W·4), more than the {limit / 1e6:,.0f} MB allowed: choose a smaller image "
            "size, grayscale, or fewer images."
        )


def _as_size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    if not (1 <= h <= MAX_TRAINING_SIDE and 1 <= w <= MAX_TRAINING_SIDE):
        raise ImageFolderError(
            f"image size {h}×{w} is outside 1..{MAX_TRAINING_SIDE} pixels per side."
        )
    return int(h), int(w)


def _default_size(sources: Counter[tuple[int, int]]) -> tuple[int, int]:
    """Native ``(H, W)`` if every readable header agrees and fits ``NATIVE_MAX``."""
    if len(sources) == 1:
        ((h, w),) = sources
        if max(h, w) <= NATIVE_MAX:
            return h, w
    return DEFAULT_SIZE, DEFAULT_SIZE


def _header_sizes(
    candidates: list[_Candidate], cancel: CancelFn | None
) -> Counter[tuple[int, int]]:
    """``(H, W)`` counts from the file headers (no decoding); files whose header is
    unreadable or too large are ignored here (their decode will skip them with a reason)."""
    sizes: Counter[tuple[int, int]] = Counter()
    for cand in candidates:
        if cancel is not None and cancel():
            raise LoadCancelled()
        try:
            w, h = imageio.image_size(str(cand.path), MAX_SOURCE_PIXELS)
        except ImageLoadError:
            continue
        sizes[(h, w)] += 1
    return sizes


def _decode_all(
    candidates: list[_Candidate],
    size: tuple[int, int],
    channels: int,
    progress: ProgressFn | None,
    cancel: CancelFn | None,
    sources: Counter[tuple[int, int]],
) -> tuple[np.ndarray, np.ndarray, list[tuple[Path, str]]]:
    """Decode into a preallocated array; return (images, labels, [(path, reason)] failures)."""
    n = len(candidates)
    out = np.empty((n, channels, *size), np.float32)
    labels = np.empty(n, np.int64)
    bad: list[tuple[Path, str]] = []
    kept = 0
    record_sizes = not sources
    for i, cand in enumerate(candidates):
        if cancel is not None and cancel():
            raise LoadCancelled()
        try:
            out[kept], src = decode(cand.path, size, channels)
        except ImageLoadError as exc:
            bad.append((cand.path, exc.reason))
        else:
            labels[kept] = cand.label
            kept += 1
            if record_sizes:
                sources[src] += 1
        if progress is not None:
            progress(i + 1, n)
    return out[:kept].copy() if kept < n else out, labels[:kept], bad


def decode(path: Path, size: tuple[int, int], channels: int) -> tuple[np.ndarray, tuple[int, int]]:
    """One file at this loader's limits -> (``(channels, H, W)`` float32 in [0, 1], source
    ``(H, W)``). Raises :class:`~cnn_explorer.imageio.ImageLoadError` (a ValueError) for an
    unreadable, corrupt or oversized file; its ``reason`` reads ``"category: detail"``."""
    return imageio.decode_image(path, size, channels, max_source_pixels=MAX_SOURCE_PIXELS)


__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "FolderSummary",
    "ImageFolderError",
    "LoadCancelled",
    "decode",
    "estimate_bytes",
    "load_image_folder",
    "scan",
]
