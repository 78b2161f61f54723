"""Undoable edits of the explorer, and the intents that build them from gestures.

An *intent* (``set_cell``, ``update_config``, ``add_layer``, …) reads the current
:class:`~cnn_explorer.explorer.model.Explorer`, validates the request and returns the
:class:`Edit` objects that carry it out (none when nothing would change, several when one
gesture changes the input and the conv weights that follow it). An edit stores the old and
new state of the part it changes, so ``redo``/``undo`` are exact; the Qt shell wraps each in
a ``QUndoCommand``, and tests apply them directly. Every intent is registered in
:data:`INTENTS`, so a test can check that it exercises every kind of edit. Qt-free.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cnn_explorer.explorer import presets
from cnn_explorer.explorer.specs import (
    LayerSpec,
    check_input,
    document_bytes,
    replace_config,
    replace_kind,
)
from cnn_explorer.limits import MAX_DOCUMENT_BYTES, MAX_INPUT_SIDE, MAX_LAYERS

if TYPE_CHECKING:
    from cnn_explorer.explorer.model import Change, Explorer, Region


@dataclass
class InputEdit:
    """Replace the input ``(C, H, W)`` (cell edit, stroke, fill, preset, image, resize).
    ``applied``: the change is already on screen (a paint stroke); the first redo skips.
    Consecutive edits with the same ``merge_key`` (the rows and then the columns spin box
    of a resize) merge into one undo step."""

    old: np.ndarray
    new: np.ndarray
    text: str
    region: Region | None = None
    applied: bool = False
    merge_key: str | None = None

    def redo(self, m: Explorer) -> Change | None:
        if self.applied:
            self.applied = False
            return None
        return m.apply_input(self.new, self._region())

    def undo(self, m: Explorer) -> Change:
        return m.apply_input(self.old, self._region())

    def _region(self) -> Region | None:
        return self.region if self.old.shape == self.new.shape else None

    def merge(self, later: object) -> bool:
        """Absorb ``later`` if it continues this edit (same merge key); True when merged.
        Undo then restores the input from before the first of them, values included."""
        if not isinstance(later, InputEdit) or self.merge_key is None:
            return False
        if later.merge_key != self.merge_key:
            return False
        self.new, self.text, self.region = later.new, later.text, None
        return True

    @property
    def is_noop(self) -> bool:
        """True when merged edits came back to where they started."""
        return self.old.shape == self.new.shape and np.array_equal(
            self.old, self.new, equal_nan=True
        )


@dataclass
class LayerEdit:
    """Replace one layer's spec. Consecutive edits with the same ``merge_key`` (a bias
    spin box being dragged) merge into one undo step."""

    index: int
    old: LayerSpec
    new: LayerSpec
    text: str
    merge_key: str | None = None

    def redo(self, m: Explorer) -> Change:
        return m.apply_layer(self.index, self.new.copy())

    def undo(self, m: Explorer) -> Change:
        return m.apply_layer(self.index, self.old.copy())

    def merge(self, later: object) -> bool:
        """Absorb ``later`` if it edits the same thing; True when merged."""
        if not isinstance(later, LayerEdit) or self.merge_key is None:
            return False
        if later.merge_key != self.merge_key or later.index != self.index:
            return False
        self.new = later.new
        return True


@dataclass
class StackEdit:
    """Replace the whole stack (add, remove, duplicate, move, channel conform)."""

    old: list[LayerSpec]
    new: list[LayerSpec]
    text: str
    first: int = 0
    select_before: int = 0
    select_after: int | None = None

    def redo(self, m: Explorer) -> Change:
        return m.apply_layers([s.copy() for s in self.new], self.first, self.select_after)

    def undo(self, m: Explorer) -> Change:
        return m.apply_layers([s.copy() for s in self.old], self.first, self.select_before)


@dataclass
class DocumentEdit:
    """Replace input and layers together (a preset project, "Open in explorer")."""

    old_input: np.ndarray
    old_layers: list[LayerSpec]
    new_input: np.ndarray
    new_layers: list[LayerSpec]
    text: str

    def redo(self, m: Explorer) -> Change:
        return m.apply_document(self.new_input, [s.copy() for s in self.new_layers])

    def undo(self, m: Explorer) -> Change:
        return m.apply_document(self.old_input, [s.copy() for s in self.old_layers])


Edit = InputEdit | LayerEdit | StackEdit | DocumentEdit

INTENTS: dict[str, Callable[..., list[Any]]] = {}
"""Every intent by name (filled by :func:`intent`)."""


class EditRefusedError(ValueError):
    """An edit the explorer cannot hold (too many layers, maps too big for memory); the
    message says why, with the numbers, for the status bar."""


def intent(fn: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """Register ``fn`` in :data:`INTENTS`; the edits it returns are refused (EditRefusedError)
    when the document they lead to would break a limit."""

    @functools.wraps(fn)
    def checked(m: Explorer, *args: Any, **kwargs: Any) -> list[Any]:
        steps = fn(m, *args, **kwargs)
        _check_limits(m, steps)
        return steps

    INTENTS[fn.__name__] = checked
    return checked


def _check_limits(m: Explorer, steps: list[Any]) -> None:
    """Refuse ``steps`` if the document after them needs more than MAX_DOCUMENT_BYTES
    or holds more than MAX_LAYERS layers. Weight-value edits change no shape: skipped."""
    shape, layers, reshaped = m.input.shape, list(m.layers), False
    for step in steps:
        if isinstance(step, InputEdit):
            reshaped |= step.new.shape != shape
            shape = step.new.shape
        elif isinstance(step, LayerEdit):
            reshaped |= not step.old.same_computation(step.new)
            layers[step.index] = step.new
        elif isinstance(step, StackEdit):
            reshaped, layers = True, step.new
        elif isinstance(step, DocumentEdit):
            reshaped, shape, layers = True, step.new_input.shape, step.new_layers
    if not reshaped:
        return
    if len(layers) > MAX_LAYERS:
        raise EditRefusedError(f"the stack holds at most {MAX_LAYERS} layers")
    need = document_bytes(shape, layers)
    if need > MAX_DOCUMENT_BYTES:
        raise EditRefusedError(
            f"that would need {need / 2**20:,.0f} MB for the feature maps, more than the "
            f"{MAX_DOCUMENT_BYTES / 2**20:,.0f} MB the explorer allows"
        )


def _copies(m: Explorer) -> list[LayerSpec]:
    return [s.copy() for s in m.layers]


# --------------------------------------------------------------------------- input
@intent
def set_input(
    m: Explorer, new: np.ndarray, text: str = "Change input", region: Region | None = None
) -> list[Any]:
    """Replace the input; conv weights follow a channel-count change (one undo step)."""
    new = check_input(new)
    old = m.input
    if new.shape == old.shape and np.array_equal(new, old, equal_nan=True):
        return []
    if new.shape[0] == old.shape[0]:
        return [InputEdit(old, new, text, region)]
    conformed = m.conformed(m.layers, new.shape)
    edits: list[Any] = [InputEdit(old, new, text)]
    if any(a is not b for a, b in zip(conformed, m.layers, strict=True)):
        edits.append(
            StackEdit(
                _copies(m), conformed, "Match channels", 0, m.selected_layer, m.selected_layer
            )
        )
    return edits


@intent
def set_cell(m: Explorer, channel: int, row: int, col: int, value: float) -> list[Any]:
    """Set one input cell."""
    new = m.input.copy()
    new[channel, row, col] = value
    return set_input(m, new, f"Set input[{channel},{row},{col}] = {value:g}", (row, row, col, col))


@intent
def set_block(m: Explorer, channel: int, row: int, col: int, block: np.ndarray) -> list[Any]:
    """Paste a 2-D ``block`` at ``(row, col)``, clipped to the grid."""
    _, h, w = m.input.shape
    bh, bw = min(block.shape[0], h - row), min(block.shape[1], w - col)
    new = m.input.copy()
    new[channel, row : row + bh, col : col + bw] = block[:bh, :bw]
    return set_input(m, new, f"Paste {bh}×{bw} block", (row, row + bh - 1, col, col + bw - 1))


@intent
def resize_input(m: Explorer, rows: int, cols: int) -> list[Any]:
    """Change the grid size keeping the overlapping values (new cells are 0)."""
    rows, cols = max(1, min(rows, MAX_INPUT_SIDE)), max(1, min(cols, MAX_INPUT_SIDE))
    x = m.input
    new = np.zeros((x.shape[0], rows, cols), np.float32)
    h, w = min(rows, x.shape[1]), min(cols, x.shape[2])
    new[:, :h, :w] = x[:, :h, :w]
    steps = set_input(m, new, f"Resize input to {rows}×{cols}")
    for step in steps:  # rows, then columns (or a spin box stepped): one undo step
        if isinstance(step, InputEdit):
            step.merge_key = "resize"
    return steps


@intent
def set_channels(m: Explorer, n: int) -> list[Any]:
    """1 (grayscale) or 3 (RGB): RGB copies gray to all channels, gray averages RGB."""
    x = m.input
    if n == x.shape[0]:
        return []
    new = np.repeat(x[:1], 3, axis=0) if n == 3 else x.mean(axis=0, keepdims=True)
    return set_input(m, new, "Use RGB input" if n == 3 else "Use grayscale input")


# --------------------------------------------------------------------------- one layer
@intent
def set_layer(
    m: Explorer, index: int, spec: LayerSpec, text: str, merge_key: str | None = None
) -> list[Any]:
    """Replace layer ``index``; later convs follow a filter-count change."""
    old = m.layers[index]
    if old.same_values(spec):
        return []
    filters_changed = (
        spec.weight is not None
        and old.weight is not None
        and spec.weight.shape[0] != old.weight.shape[0]
    )
    if filters_changed:
        layers = _copies(m)
        layers[index] = spec
        return [StackEdit(_copies(m), m.conformed(layers), text, index, m.selected_layer, index)]
    return [LayerEdit(index, old.copy(), spec.copy(), text, merge_key)]


@intent
def update_config(m: Explorer, index: int, **changes: Any) -> list[Any]:
    """Change layer parameters (a kernel size change keeps the existing weights)."""
    spec = replace_config(m.layers[index], **changes)
    keys = ", ".join(f"{k}={v}" for k, v in changes.items())
    return set_layer(m, index, spec, f"Layer {index + 1}: {keys}")


@intent
def set_kind(m: Explorer, index: int, kind: str) -> list[Any]:
    """Switch a pool layer between max and average pooling."""
    spec = replace_kind(m.layers[index], kind)
    return set_layer(m, index, spec, f"Layer {index + 1}: {spec.title}")


@intent
def set_enabled(m: Explorer, index: int, enabled: bool) -> list[Any]:
    spec = m.layers[index].copy()
    spec.enabled = enabled
    return set_layer(m, index, spec, f"{'Enable' if enabled else 'Disable'} layer {index + 1}")


@intent
def set_kernel(
    m: Explorer, index: int, filt: int, in_ch: int, kernel: np.ndarray, text: str
) -> list[Any]:
    """Write a 2-D kernel into ``weight[filt, in_ch]`` (resizing the layer's kernel)."""
    spec = m.layers[index]
    kernel = np.asarray(kernel, np.float32)
    if tuple(spec.config["kernel"]) != kernel.shape:
        spec = replace_config(spec, kernel=[int(kernel.shape[0]), int(kernel.shape[1])])
    else:
        spec = spec.copy()
    assert spec.weight is not None
    spec.weight[filt, in_ch] = kernel
    return set_layer(m, index, spec, text)


@intent
def set_weight(
    m: Explorer, index: int, filt: int, in_ch: int, r: int, c: int, value: float
) -> list[Any]:
    spec = m.layers[index].copy()
    assert spec.weight is not None
    spec.weight[filt, in_ch, r, c] = value
    return set_layer(m, index, spec, f"Set weight[{filt},{in_ch},{r},{c}] = {value:g}")


@intent
def set_bias(m: Explorer, index: int, filt: int, value: float) -> list[Any]:
    spec = m.layers[index].copy()
    assert spec.bias is not None
    spec.bias[filt] = value
    return set_layer(
        m, index, spec, f"Set bias[{filt}] = {value:g}", merge_key=f"bias{index}:{filt}"
    )


@intent
def set_weights(m: Explorer, index: int, weight: np.ndarray, text: str) -> list[Any]:
    """Replace the whole weight of a conv (random init, normalise all)."""
    spec = m.layers[index].copy()
    spec.weight = np.ascontiguousarray(weight, np.float32)
    return set_layer(m, index, spec, text)


# --------------------------------------------------------------------------- the stack
def _stack(m: Explorer, layers: list[LayerSpec], text: str, first: int, select: int) -> list[Any]:
    return [StackEdit(_copies(m), m.conformed(layers), text, first, m.selected_layer, select)]


@intent
def add_layer(m: Explorer, spec: LayerSpec, at: int | None = None) -> list[Any]:
    """Insert ``spec`` at ``at`` (default: after the selected layer, or at the end); a
    conv gets seeded random weights for the channels that reach it."""
    n = len(m.layers)
    if at is None:
        at = m.selected_layer + 1 if n else 0
    at = max(0, min(at, n))
    weight = spec.weight
    if spec.kind == "conv" and weight is not None:
        shape = m.in_shape(at) if at < n or n == 0 else m.statuses[n - 1].output_shape
        if shape is not None and weight.shape[1] != shape[0]:
            spec = spec.copy()
            spec.weight = presets.random_kernel((weight.shape[0], shape[0], *weight.shape[2:]), at)
    layers = _copies(m)
    layers.insert(at, spec)
    return _stack(m, layers, f"Add {spec.title}", at, at)


@intent
def remove_layer(m: Explorer, index: int) -> list[Any]:
    layers = _copies(m)
    spec = layers.pop(index)
    return _stack(m, layers, f"Remove {spec.title}", index, max(0, index - 1))


@intent
def duplicate_layer(m: Explorer, index: int) -> list[Any]:
    layers = _copies(m)
    layers.insert(index + 1, layers[index].copy())
    return _stack(m, layers, f"Duplicate {layers[index].title}", index + 1, index + 1)


@intent
def move_layer(m: Explorer, src: int, dst: int) -> list[Any]:
    """Move layer ``src`` so it ends up at index ``dst``."""
    n = len(m.layers)
    if not (0 <= src < n and 0 <= dst < n) or src == dst:
        return []
    layers = _copies(m)
    spec = layers.pop(src)
    layers.insert(dst, spec)
    return _stack(m, layers, f"Move {spec.title}", min(src, dst), dst)


@intent
def new_document(m: Explorer, x: np.ndarray, layers: list[LayerSpec], text: str) -> list[Any]:
    """Replace input and layers (conv weights conformed to the input's channels)."""
    x = check_input(x)
    return [DocumentEdit(m.input, _copies(m), x, m.conformed(layers, x.shape), text)]


# --------------------------------------------------------------------------- paint strokes
@dataclass
class Stroke:
    """A paint stroke: cells change live (no undo step each), the whole stroke becomes one
    :class:`InputEdit` (already applied) when it ends."""

    old: np.ndarray
    region: Region | None = None

    def paint(
        self, m: Explorer, channel: int, cells: list[tuple[int, int]], value: float
    ) -> Change | None:
        """Set ``cells`` of ``channel`` to ``value`` now; None when nothing changed."""
        _, h, w = m.input.shape
        cells = [(r, c) for r, c in cells if 0 <= r < h and 0 <= c < w]
        if not cells or all(m.input[channel, r, c] == value for r, c in cells):
            return None
        new = m.input.copy()
        for r, c in cells:
            new[channel, r, c] = value
        rows, cols = [r for r, _ in cells], [c for _, c in cells]
        box = (min(rows), max(rows), min(cols), max(cols))
        cur = self.region
        self.region = (
            box
            if cur is None
            else (
                min(cur[0], box[0]),
                max(cur[1], box[1]),
                min(cur[2], box[2]),
                max(cur[3], box[3]),
            )
        )
        return m.apply_input(new, box)

    def finish(self, m: Explorer) -> InputEdit | None:
        """The stroke as one already-applied undo step (None if nothing changed)."""
        if np.array_equal(self.old, m.input, equal_nan=True):
            return None
        return InputEdit(self.old, m.input, "Paint stroke", self.region, applied=True)
