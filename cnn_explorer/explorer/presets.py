"""Input and kernel presets as plain NumPy data (no Qt).

Inputs are ``(H, W)`` float32 arrays (one channel; the caller broadcasts to RGB when the
document has three channels). Kernels are ``(kh, kw)`` float32 arrays; the kernel editor
writes them into the selected filter/input-channel slice of a conv weight ``(O, C, kh, kw)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

WORKED_EXAMPLE = np.array(
    [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]],
    dtype=np.float32,
)
"""The 4×4 input of the primer's worked example (two diagonal 2×2 blocks of ones)."""

EDGE_KERNEL = np.array([[1, -1], [1, -1]], dtype=np.float32)
"""The 2×2 vertical-edge kernel of the worked example."""

_DIGIT_7 = [
    "0000000",
    "0111110",
    "0000010",
    "0000100",
    "0001000",
    "0001000",
    "0010000",
    "0000000",
]


def worked_example(rows: int = 4, cols: int = 4) -> np.ndarray:
    """The worked-example input, ignoring the requested size (it is always 4×4)."""
    return WORKED_EXAMPLE.copy()


def checkerboard(rows: int = 8, cols: int = 8) -> np.ndarray:
    """Alternating 1/0 cells, ``(rows, cols)``; 1 at the top-left corner."""
    r, c = np.indices((rows, cols))
    return ((r + c) % 2 == 0).astype(np.float32)


def vertical_edge(rows: int = 8, cols: int = 8) -> np.ndarray:
    """Left half 1, right half 0: one vertical edge in the middle."""
    out = np.zeros((rows, cols), np.float32)
    out[:, : max(1, cols // 2)] = 1.0
    return out


def horizontal_edge(rows: int = 8, cols: int = 8) -> np.ndarray:
    """Top half 1, bottom half 0: one horizontal edge in the middle."""
    out = np.zeros((rows, cols), np.float32)
    out[: max(1, rows // 2), :] = 1.0
    return out


def diagonal(rows: int = 8, cols: int = 8) -> np.ndarray:
    """Ones on the main diagonal (scaled to non-square grids)."""
    out = np.zeros((rows, cols), np.float32)
    for r in range(rows):
        c = round(r * (cols - 1) / max(1, rows - 1)) if rows > 1 else 0
        out[r, c] = 1.0
    return out


def small_digit(rows: int = 8, cols: int = 7) -> np.ndarray:
    """A hand-drawn 8×7 digit "7" (the requested size is ignored)."""
    return np.array([[float(ch) for ch in line] for line in _DIGIT_7], dtype=np.float32)


INPUT_PRESETS: dict[str, Callable[[int, int], np.ndarray]] = {
    "Worked example": worked_example,
    "Checkerboard": checkerboard,
    "Vertical edge": vertical_edge,
    "Horizontal edge": horizontal_edge,
    "Diagonal": diagonal,
    "Small digit (7)": small_digit,
}
"""Name → factory ``(rows, cols) -> (H, W) float32``; sizes are a hint."""


def _f(rows: list[list[float]]) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


KERNEL_PRESETS: dict[str, np.ndarray] = {
    "Identity": _f([[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
    "Box blur": np.full((3, 3), 1 / 9, np.float32),
    "Gaussian blur": _f([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16,
    "Sharpen": _f([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "Sobel x": _f([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    "Sobel y": _f([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
    "Prewitt x": _f([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]),
    "Prewitt y": _f([[-1, -1, -1], [0, 0, 0], [1, 1, 1]]),
    "Laplacian": _f([[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
    "Emboss": _f([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
    "Outline": _f([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    "Edge [[1,-1],[1,-1]]": EDGE_KERNEL.copy(),
    "Ones 2×2": np.ones((2, 2), np.float32),
}
"""Name → ``(kh, kw)`` float32 kernel. Copy before writing into a weight."""


NO_PRESET = "— choose —"
"""What a preset combo shows when the current data matches no preset."""


def matching_kernel_preset(kernel: np.ndarray) -> str:
    """Name of the kernel preset equal to ``kernel`` ``(kh, kw)`` (float32 tolerance:
    ``|preset − kernel| ≤ 1e-7 + 1e-6·|kernel|``), else ``NO_PRESET``.

    The kernel editor asks after every weight edit, so all presets of that shape are
    compared in one vectorised step (a loop of ``np.allclose`` took ~0.4 ms)."""
    names, stack = _presets_of_shape(kernel.shape)
    if not names:
        return NO_PRESET
    with np.errstate(invalid="ignore"):
        close = np.abs(stack - kernel) <= 1e-7 + 1e-6 * np.abs(kernel)
    hits = np.flatnonzero(close.reshape(len(names), -1).all(axis=1))
    return names[hits[0]] if hits.size else NO_PRESET


@functools.cache
def _presets_of_shape(shape: tuple[int, ...]) -> tuple[tuple[str, ...], np.ndarray]:
    """Names and stacked kernels ``(n, kh, kw)`` of the presets of one shape, in order."""
    items = [(n, k) for n, k in KERNEL_PRESETS.items() if k.shape == shape]
    return tuple(n for n, _ in items), np.array([k for _, k in items], np.float32)


_INPUT_PLANES: dict[tuple[str, int, int], np.ndarray] = {}


def input_preset_plane(name: str, rows: int, cols: int) -> np.ndarray:
    """The plane the grid editor loads for preset ``name`` on a ``rows×cols`` grid (presets
    are at least 8×8, the worked example and the digit have a fixed size). Cached: callers
    must not write into it."""
    key = (name, rows, cols)
    plane = _INPUT_PLANES.get(key)
    if plane is None:
        plane = INPUT_PRESETS[name](max(rows, 8), max(cols, 8))
        plane.setflags(write=False)
        _INPUT_PLANES[key] = plane
    return plane


def matching_input_preset(x: np.ndarray) -> str:
    """Name of the input preset that ``x`` ``(C, H, W)`` equals on every channel, else
    ``NO_PRESET`` — so the combo never claims "Worked example" after an edit or an image.

    Every input preset holds only 0 and 1 (a test checks it), so any other value rules
    them all out before a plane is made: opening a 512² picture made six 512² planes on
    the GUI thread (~7–15 ms)."""
    _, h, w = x.shape
    if not bool(np.all((x == 0) | (x == 1))):
        return NO_PRESET
    for name in INPUT_PRESETS:
        plane = input_preset_plane(name, h, w)
        if plane.shape == (h, w) and bool(np.all(x == plane)):
            return name
    return NO_PRESET


def kernel_preset(name: str) -> np.ndarray:
    """A fresh copy of the named kernel preset; ``KeyError`` for an unknown name."""
    return KERNEL_PRESETS[name].copy()


def random_kernel(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Seeded He-style random weights of ``shape`` (reproducible for a given seed).

    The fan-in is the product of all but the first axis (as for a conv weight
    ``(O, C, kh, kw)``), or of all axes for a single 2-D kernel.
    """
    rng = np.random.default_rng(seed)
    fan_in = int(np.prod(shape[1:])) if len(shape) > 2 else int(np.prod(shape))
    std = np.sqrt(2.0 / max(1, fan_in))
    return (rng.standard_normal(shape) * std).astype(np.float32)


def normalise_kernel(kernel: np.ndarray) -> np.ndarray:
    """Scale so the weights sum to 1 (blur-like), or, for a zero-sum kernel (edge-like),
    so the absolute values sum to 2 (positive part sums to 1). An all-zero kernel is
    returned unchanged."""
    k = np.asarray(kernel, dtype=np.float32)
    total = float(k.sum())
    if abs(total) > 1e-6:
        return (k / total).astype(np.float32)
    mag = float(np.abs(k).sum())
    if mag < 1e-12:
        return k.copy()
    return (k * (2.0 / mag)).astype(np.float32)


def resize_kernel(kernel: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """Change a ``(..., kh0, kw0)`` kernel to ``(..., kh, kw)`` keeping the overlapping
    top-left values and zero-filling new cells (so a size change loses nothing it keeps)."""
    k = np.asarray(kernel)
    out = np.zeros((*k.shape[:-2], kh, kw), dtype=k.dtype)
    h = min(kh, k.shape[-2])
    w = min(kw, k.shape[-1])
    out[..., :h, :w] = k[..., :h, :w]
    return out
