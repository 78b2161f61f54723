"""The built-in "shapes" dataset: small grayscale drawings of six kinds of stroke figure.

Why procedural: it ships as a ~1 MB ``resources/shapes.npz`` yet can be regenerated
bit-for-bit from a seed (``python -m cnn_explorer.training.shapes --out resources/shapes.npz``),
and it is a good first CNN task: every figure is drawn at a random **position**, **size** and
**stroke width** (plus a small rotation for the polygons and a little noise), so a dense
network must learn each figure at every place while a convolution's shared weights learn an
edge detector once and slide it everywhere.

Drawing: each figure is a union of strokes described by an (unsigned) distance field ``d``
over pixel centres; a pixel's ink is ``clip(stroke/2 + 0.5 - d, 0, 1)``, a cheap
anti-aliased line. NumPy only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cnn_explorer.training.data import LabeledImages

CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "plus", "horizontal", "vertical")
"""Label ``k`` is ``CLASS_NAMES[k]``."""

IMAGE_SIZE = 28
PER_CLASS = 400
SEED = 0

RESOURCE_PATH = Path(__file__).resolve().parents[2] / "resources" / "shapes.npz"
"""Where the committed file lives: ``<repo>/resources/shapes.npz`` (editable install)."""


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(y, x)``, each ``(size, size)`` float64."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    return y, x


def _segment_distance(
    y: np.ndarray, x: np.ndarray, p: tuple[float, float], q: tuple[float, float]
) -> np.ndarray:
    """Distance of every pixel centre to the segment ``p``–``q`` (points are ``(y, x)``)."""
    py, px = p
    dy, dx = q[0] - py, q[1] - px
    length2 = max(dy * dy + dx * dx, 1e-12)
    t = np.clip(((y - py) * dy + (x - px) * dx) / length2, 0.0, 1.0)
    return np.hypot(y - (py + t * dy), x - (px + t * dx))


def _polygon_distance(y: np.ndarray, x: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance to the closed outline through ``points`` (``(K, 2)`` rows of ``(y, x)``)."""
    n = len(points)
    dists = [
        _segment_distance(y, x, tuple(points[i]), tuple(points[(i + 1) % n])) for i in range(n)
    ]
    return np.minimum.reduce(dists)


def _regular_polygon(cy: float, cx: float, r: float, k: int, angle: float) -> np.ndarray:
    """``k`` vertices on a circle of radius ``r``; ``angle`` rotates (0 = vertex on top)."""
    theta = angle - np.pi / 2 + 2 * np.pi * np.arange(k) / k
    return np.stack([cy + r * np.sin(theta), cx + r * np.cos(theta)], axis=1)


def _circle(
    y: np.ndarray, x: np.ndarray, cy: float, cx: float, r: float, rng: np.random.Generator
) -> np.ndarray:
    return np.abs(np.hypot(y - cy, x - cx) - r)


def _square(
    y: np.ndarray, x: np.ndarray, cy: float, cx: float, r: float, rng: np.random.Generator
) -> np.ndarray:
    # r is the half-diagonal-ish extent: vertices at radius r·√2·0.8 so size matches others.
    return _polygon_distance(
        y, x, _regular_polygon(cy, cx, r * 1.13, 4, np.pi / 4 + rng.uniform(-0.25, 0.25))
    )


def _triangle(
    y: np.ndarray, x: np.ndarray, cy: float, cx: float, r: float, rng: np.random.Generator
) -> np.ndarray:
    return _polygon_distance(
        y, x, _regular_polygon(cy + r * 0.15, cx, r * 1.15, 3, rng.uniform(-0.3, 0.3))
    )


def _plus(
    y: np.ndarray, x: np.ndarray, cy: float, cx: float, r: float, rng: np.random.Generator
) -> np.ndarray:
    h = _segment_distance(y, x, (cy, cx - r), (cy, cx + r))
    v = _segment_distance(y, x, (cy - r, cx), (cy + r, cx))
    return np.minimum(h, v)


def _horizontal(
    y: np.ndarray, x: np.ndarray, cy: float, cx: float, r: float, rng: np.random.Generator
) -> np.ndarray:
    tilt = rng.uniform(-0.15, 0.15) * r
    return _segment_distance(y, x, (cy - tilt, cx - r), (cy + tilt, cx + r))


def _vertical(
    y: np.ndarray, x: np.ndarray, cy: float, cx: float, r: float, rng: np.random.Generator
) -> np.ndarray:
    tilt = rng.uniform(-0.15, 0.15) * r
    return _segment_distance(y, x, (cy - r, cx - tilt), (cy + r, cx + tilt))


Drawer = Callable[[np.ndarray, np.ndarray, float, float, float, np.random.Generator], np.ndarray]
"""``(y, x, centre y, centre x, radius, rng)`` → distance field ``(size, size)``."""

_DRAW: dict[str, Drawer] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "plus": _plus,
    "horizontal": _horizontal,
    "vertical": _vertical,
}


def draw(name: str, size: int, rng: np.random.Generator, noise: float = 0.06) -> np.ndarray:
    """One ``(size, size)`` float64 image in [0, 1] of figure ``name`` at a random place.

    Radius is 18–40 % of the side, stroke 1–2.6 px, the centre anywhere the figure still
    fits (one pixel of margin), then Gaussian noise of std ``noise``.
    """
    y, x = _grid(size)
    stroke = rng.uniform(1.0, 2.6)
    r = min(rng.uniform(0.18, 0.40) * size, (size - 1) / 2 - stroke / 2 - 1.5)
    margin = r + stroke / 2 + 1.0
    cy = rng.uniform(margin, size - 1 - margin)
    cx = rng.uniform(margin, size - 1 - margin)
    dist = _DRAW[name](y, x, cy, cx, r, rng)
    ink = np.clip(stroke / 2 + 0.5 - dist, 0.0, 1.0) * rng.uniform(0.7, 1.0)
    return np.clip(ink + rng.normal(0.0, noise, ink.shape), 0.0, 1.0)


def generate(
    per_class: int = PER_CLASS, size: int = IMAGE_SIZE, seed: int = SEED, noise: float = 0.06
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic ``(images uint8 (N,1,size,size), labels int64 (N,), class_names U)``.

    Samples are shuffled (classes interleaved) with the same seed, so any prefix is roughly
    balanced.
    """
    if per_class < 1 or size < 8:
        raise ValueError(f"need per_class ≥ 1 and size ≥ 8, got {per_class} and {size}")
    rng = np.random.default_rng(seed)
    n = per_class * len(CLASS_NAMES)
    labels = np.repeat(np.arange(len(CLASS_NAMES), dtype=np.int64), per_class)
    labels = labels[rng.permutation(n)]
    images = np.empty((n, 1, size, size), np.uint8)
    for i, label in enumerate(labels):
        img = draw(CLASS_NAMES[label], size, rng, noise)
        images[i, 0] = np.round(img * 255.0).astype(np.uint8)
    return images, labels, np.array(CLASS_NAMES, dtype=np.str_)


def save(
    path: str | Path, per_class: int = PER_CLASS, size: int = IMAGE_SIZE, seed: int = SEED
) -> Path:
    """Generate and write the compressed ``.npz`` (arrays only: loadable without pickle)."""
    images, labels, names = generate(per_class, size, seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, images=images, labels=labels, class_names=names)
    return path


def load_shapes(path: str | Path | None = None) -> LabeledImages:
    """The built-in set as :class:`LabeledImages` (float32 in [0, 1]).

    Reads ``resources/shapes.npz`` when present (fast); regenerates the identical data on
    the fly when the file is missing or unreadable (a source checkout without resources).
    """
    path = Path(path) if path is not None else RESOURCE_PATH
    notes: list[str] = []
    try:
        with np.load(path, allow_pickle=False) as f:
            images, labels, names = f["images"], f["labels"], f["class_names"]
    except (OSError, KeyError, ValueError) as exc:
        notes.append(f"{path.name} not readable ({exc.__class__.__name__}); generated in memory")
        images, labels, names = generate()
    return LabeledImages(
        images.astype(np.float32) / np.float32(255.0),
        labels.astype(np.int64),
        [str(n) for n in names],
        "builtin:shapes",
        notes,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m cnn_explorer.training.shapes --out resources/shapes.npz``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESOURCE_PATH), help="output .npz path")
    parser.add_argument("--per-class", type=int, default=PER_CLASS)
    parser.add_argument("--size", type=int, default=IMAGE_SIZE)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    path = save(args.out, args.per_class, args.size, args.seed)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
