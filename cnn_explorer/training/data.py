"""Labelled image datasets for the Training tab: the built-in procedural shapes and the
common container both it and :mod:`cnn_explorer.training.image_folder` return.

NumPy only (no Qt): the container is plain arrays so the engine can train on it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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


__all__ = [
    "BUILTIN_NAMES",
    "BUILTIN_PREFIX",
    "LabeledImages",
    "is_builtin",
    "load_builtin",
    "resize_nearest",
]
