"""Labelled image datasets: the container every loader returns, the built-in procedural
shapes, **one loader for both the built-in set and image folders** (:func:`load_dataset`),
and the seeded train/validation split a run uses (:func:`split_dataset`).

Why here and Qt-free: the training tab, its loader thread and the ``train`` command all load
and split through these functions, so the GUI and the terminal see the same images in the
same order. Decoding a folder needs QtGui (:mod:`cnn_explorer.training.image_folder`), so it
is imported inside :func:`load_dataset`, only when a folder is actually loaded: importing
this module (or the session built on it) loads no Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cnn_explorer.engine.training import stratified_split


@dataclass
class LabeledImages:
    """A labelled image set ready for training.

    ``images`` is ``(N, C, H, W)`` float32 in [0, 1]; ``labels`` is ``(N,)`` int64 in
    ``0..len(class_names)-1``; ``class_names[k]`` names label ``k``. ``source`` says where it
    came from (a folder path or ``builtin:shapes``) for titles and reports.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {self.images.shape}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"{self.images.shape[0]} images but labels have shape {self.labels.shape}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def counts(self) -> dict[str, int]:
        """Images per class name, in label order."""
        per = np.bincount(self.labels, minlength=self.num_classes)
        return {name: int(n) for name, n in zip(self.class_names, per, strict=True)}


BUILTIN_PREFIX = "builtin:"
BUILTIN_NAMES = ("shapes",)


def is_builtin(spec: str) -> bool:
    """True for ``builtin:shapes`` (the spelling the train command and the tab accept)."""
    return spec.startswith(BUILTIN_PREFIX)


def load_builtin(spec: str, image_size: int | None = None, channels: int = 1) -> LabeledImages:
    """Load ``builtin:NAME``; raise ``ValueError`` naming the known names otherwise.

    ``image_size`` (side in pixels) resamples by nearest neighbour when it differs from the
    stored 28; ``channels`` 3 repeats the gray channel (so an RGB network can train on it).
    """
    name = spec[len(BUILTIN_PREFIX) :] if is_builtin(spec) else spec
    if name != "shapes":
        known = ", ".join(BUILTIN_PREFIX + n for n in BUILTIN_NAMES)
        raise ValueError(f"unknown built-in dataset {spec!r}; known: {known}")
    from cnn_explorer.training.shapes import load_shapes

    data = load_shapes()
    images = data.images
    if image_size is not None and image_size != images.shape[-1]:
        images = resize_nearest(images, image_size)
    if channels == 3 and images.shape[1] == 1:
        images = np.repeat(images, 3, axis=1)
    return LabeledImages(images, data.labels, data.class_names, data.source, data.notes)


def resize_nearest(images: np.ndarray, size: int) -> np.ndarray:
    """``(N, C, H, W)`` -> ``(N, C, size, size)`` by nearest-neighbour sampling (cheap, exact
    for integer factors; good enough for the synthetic set)."""
    h, w = images.shape[-2:]
    rows = np.minimum((np.arange(size) + 0.5) * h / size, h - 1).astype(np.intp)
    cols = np.minimum((np.arange(size) + 0.5) * w / size, w - 1).astype(np.intp)
    return np.ascontiguousarray(images[:, :, rows][:, :, :, cols])


# --------------------------------------------------------------------------------------
# One loader for the built-in set and image folders
# --------------------------------------------------------------------------------------


class DataError(ValueError):
    """The dataset cannot be used; ``str(err)`` is one line for the user."""


class LoadCancelled(Exception):  # noqa: N818 (a signal, not an error)
    """The caller's ``cancel()`` returned True during a load; nothing was returned."""


def load_dataset(
    source: str,
    image_size: int | None = None,
    channels: int | None = None,
    *,
    memory_limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[LabeledImages, str]:
    """``(images, summary text)`` for ``builtin:NAME`` or an image-folder path.

    ``image_size`` is the side of the square images (None: the folder's native size when all
    its images share one, else 28; the built-in set's 28). ``channels`` 1 or 3, or None for
    automatic (gray when every pixel is gray; the built-in set is gray). ``progress(done,
    total)`` and ``cancel()`` are for a loader thread (a cancel raises
    :class:`LoadCancelled`). Any reason the data cannot be used raises :class:`DataError`
    with the loader's first line.
    """
    try:
        if is_builtin(source):
            data = load_builtin(source, image_size, channels or 1)
            return data, builtin_summary(data)
        from cnn_explorer.training import image_folder  # QtGui decodes the files

        limit = memory_limit or image_folder.DEFAULT_MEMORY_LIMIT
        data, summary = image_folder.load_image_folder(
            source, image_size, channels, limit, progress=progress, cancel=cancel
        )
    except LoadCancelled:
        raise
    except (ValueError, OSError) as exc:
        raise DataError(str(exc).splitlines()[0]) from exc
    return data, summary.text()


def builtin_summary(data: LabeledImages) -> str:
    """The two-line report the built-in set gets (an image folder's comes from its loader)."""
    c, h, w = data.input_shape
    counts = ", ".join(f"{k}: {v}" for k, v in data.counts().items())
    mode = "grayscale" if c == 1 else "RGB"
    return f"{len(data)} images in {data.num_classes} classes, {h}×{w} {mode}\n  {counts}"


# --------------------------------------------------------------------------------------
# Train / validation split
# --------------------------------------------------------------------------------------


@dataclass
class Split:
    """Train/validation arrays: ``x_*`` ``(N, C, H, W)`` float32, ``y_*`` ``(N,)`` int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    def note(self, val_fraction: float) -> str | None:
        """A sentence when the split is not what ``val_fraction`` asked for (tiny classes:
        each class with ≥ 2 images keeps at least one image in each part, a class with one
        image trains only), else None."""
        n_val, n = len(self.y_val), len(self.y_val) + len(self.y_train)
        if n_val == 0:
            return (
                "no validation images: every class has a single image, so the validation "
                f"fraction {val_fraction:g} could not be applied (accuracy is measured on "
                "nothing; add images)"
            )
        got = n_val / n
        if abs(got - val_fraction) > 0.05 + 0.5 / n:
            return (
                f"validating on {n_val} of {n} images ({got:.0%}), not the {val_fraction:.0%} "
                "asked: the classes are too small to split finer (each keeps at least one "
                "image in each part)"
            )
        return None


def split_dataset(data: LabeledImages, val_fraction: float, seed: int) -> Split:
    """Stratified, seeded split of ``data``: every class with ≥ 2 images appears in both
    parts, and a class with a single image stays in training (the engine's split would hand
    it to validation when ``val_fraction`` ≥ ½, leaving that class untrained, or nothing at
    all to train on)."""
    tr, va = stratified_split(data.labels, val_fraction, seed)
    counts = np.bincount(data.labels, minlength=data.num_classes)
    single = counts[data.labels[va]] < 2
    if single.any():
        tr = np.sort(np.concatenate([tr, va[single]]))
        va = va[~single]
    return Split(data.images[tr], data.labels[tr], data.images[va], data.labels[va])


def match_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Adapt ``(N, C, H, W)`` to ``channels``: gray → RGB repeats, RGB → gray averages."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1:
        return np.repeat(images, channels, axis=1)
    return images.mean(axis=1, keepdims=True, dtype=np.float32)


def with_channels(data: LabeledImages, channels: int) -> LabeledImages:
    """``data`` with its images adapted to ``channels`` (the same object when they match)."""
    images = match_channels(data.images, channels)
    if images is data.images:
        return data
    return LabeledImages(images, data.labels, data.class_names, data.source, data.notes)


__all__ = [
    "BUILTIN_NAMES",
    "BUILTIN_PREFIX",
    "DataError",
    "LabeledImages",
    "LoadCancelled",
    "Split",
    "builtin_summary",
    "is_builtin",
    "load_builtin",
    "load_dataset",
    "match_channels",
    "resize_nearest",
    "split_dataset",
    "with_channels",
]
