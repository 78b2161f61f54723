"""Compare mode's arithmetic: which maps of two configurations pair up, and their difference.

A is the document, B an edited copy of it; both run on the same input (B follows every
input edit of A: :func:`follow_input`). Map ``m`` (0 = the input, ``i + 1`` = the output of
layer ``i``) of A pairs with map ``m`` of B when both exist and have the same shape
``(C, H, W)``; the pair's difference map is ``B − A`` elementwise, computed from each
side's own published maps (a fresh forward pass of its own state once both are exact).
A map without a counterpart, or of another shape, gets a note saying so instead. Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnn_explorer.explorer.model import Change, Explorer, Region
from cnn_explorer.explorer.results import Results
from cnn_explorer.explorer.specs import LayerSpec, document_bytes
from cnn_explorer.limits import MAX_DOCUMENT_BYTES

Shape = tuple[int, int, int]


@dataclass(frozen=True)
class MapPair:
    """Map ``index`` of A and of B: their shapes (None when that side has no such map)
    and, when a side has none, why (``a_why``/``b_why``: "no such layer", the layer's
    error, or "not computed")."""

    index: int
    a_shape: Shape | None
    b_shape: Shape | None
    a_why: str = ""
    b_why: str = ""

    @property
    def paired(self) -> bool:
        """True when both sides have this map with the same shape: a difference exists."""
        return self.a_shape is not None and self.a_shape == self.b_shape

    @property
    def note(self) -> str:
        """Plain words for a map without a difference ("" when paired)."""
        if self.paired:
            return ""
        name = "Input" if self.index == 0 else f"Layer {self.index}"
        a, b = self.a_shape, self.b_shape
        if a is not None and b is not None:
            return (
                f"{name}: A gives {_shape(a)}, B gives {_shape(b)} — different shapes, "
                "so no difference map"
            )
        if a is None and b is None:
            return f"{name}: no map in A ({self.a_why}) nor in B ({self.b_why})"
        if a is None:
            return f"{name}: only in B — A has no counterpart ({self.a_why})"
        return f"{name}: only in A — B has no counterpart ({self.b_why})"


def _shape(s: Shape) -> str:
    return "×".join(str(v) for v in s)


def _why(res: Results, m: int) -> str:
    if m - 1 >= len(res.statuses):
        return "no such layer"
    return res.statuses[m - 1].error or "not computed"


def pair_maps(a: Results, b: Results) -> list[MapPair]:
    """One :class:`MapPair` per map index present in A or B (or a layer either side has)."""
    n = max(len(a.maps), len(b.maps), len(a.statuses) + 1, len(b.statuses) + 1)
    pairs = []
    for m in range(n):
        sa = tuple(a.maps[m].shape) if m < len(a.maps) else None
        sb = tuple(b.maps[m].shape) if m < len(b.maps) else None
        pairs.append(
            MapPair(
                m,
                sa,  # type: ignore[arg-type]
                sb,  # type: ignore[arg-type]
                "" if sa is not None else _why(a, m),
                "" if sb is not None else _why(b, m),
            )
        )
    return pairs


def difference(a: Results, b: Results, m: int) -> np.ndarray | None:
    """``B − A`` of map ``m`` ``(C, H, W)`` float32, or None when the maps do not pair."""
    if m >= len(a.maps) or m >= len(b.maps) or a.maps[m].shape != b.maps[m].shape:
        return None
    with np.errstate(all="ignore"):
        return np.subtract(b.maps[m], a.maps[m], dtype=np.float32)


def differences(a: Results, b: Results) -> list[np.ndarray | None]:
    """:func:`difference` of every map index of :func:`pair_maps`."""
    return [difference(a, b, p.index) for p in pair_maps(a, b)]


def shared_range(a: np.ndarray | None, b: np.ndarray | None) -> tuple[float, float]:
    """``(min, max)`` of the finite values of both maps: A and B of a layer share one
    colour scale, so the same colour means the same value on both sides."""
    los, his = [], []
    for x in (a, b):
        if x is None or x.size == 0:
            continue
        with np.errstate(all="ignore"):
            f = x[np.isfinite(x)]
        if f.size:
            los.append(float(f.min()))
            his.append(float(f.max()))
    return (min(los), max(his)) if los else (0.0, 0.0)


def diff_bound(d: np.ndarray) -> float:
    """Largest finite ``|B − A|`` (0 when the maps are equal): the diverging scale of a
    difference map runs from ``−bound`` to ``+bound``, centred on 0."""
    with np.errstate(all="ignore"):
        f = np.abs(d[np.isfinite(d)])
    return float(f.max()) if f.size else 0.0


def check_room(a: Explorer) -> None:
    """Raise ValueError (a sentence with the numbers) when comparing ``a`` would hold more
    feature maps than one document may: A's, B's and their differences, three times A's."""
    need = 3 * document_bytes(a.input.shape, a.layers)
    if need > MAX_DOCUMENT_BYTES:
        raise ValueError(
            f"comparing needs A's, B's and the difference maps: {need / 2**20:,.0f} MB, more "
            f"than the {MAX_DOCUMENT_BYTES / 2**20:,.0f} MB the explorer allows"
        )


def copy_layers(layers: list[LayerSpec]) -> list[LayerSpec]:
    """Independent copies of a stack (B's edits never reach A's specs)."""
    return [s.copy() for s in layers]


def duplicate(a: Explorer) -> Explorer:
    """A new explorer holding A's input, a copy of A's layers and A's selection."""
    b = Explorer(a.input, copy_layers(a.layers))
    b.select_layer(a.selected_layer, a.selected_filter, a.selected_in_channel)
    b.select_input_channel(a.selected_input_channel)
    return b


def follow_input(b: Explorer, a: Explorer, region: Region | None = None) -> Change | None:
    """Give B A's input (the input is shared: an input edit of A applies to B too);
    None when B already has it. ``region`` narrows the change to the cells that moved.
    A change of the channel count (grayscale ↔ RGB) also fits B's convs to it, as the
    same edit does to A's: the change is then a ``"document"`` one (everything moved)."""
    if b.input is a.input or (
        b.input.shape == a.input.shape and np.array_equal(b.input, a.input, equal_nan=True)
    ):
        return None
    if b.input.shape != a.input.shape:
        region = None
    change = b.apply_input(a.input, region)
    if change.kind == "input_shape":
        conformed = b.conformed(b.layers)
        if any(x is not y for x, y in zip(conformed, b.layers, strict=True)):
            b.apply_layers(conformed, 0)
            return Change("document")
    return change
