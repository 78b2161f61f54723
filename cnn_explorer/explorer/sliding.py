"""The sliding window as a sequence of steps: what the animation of a conv or pool layer
shows, one kernel tap (or one output cell) at a time. Qt-free.

Everything comes from the engine: the geometry from ``Layer.window_for``, the padded
input from :func:`cnn_explorer.engine.conv.pad2d` (the padding mode's real values), the
terms of each output cell from ``Layer.explain`` (so a true convolution's flipped kernel,
grouped channels, ``count_include_pad`` and the max-pool winner are the engine's own). The
running sums are the explanation's products added in order; the value the animation ends
on is the layer's output cell itself, read from the computed map (never recomputed here).

Order of steps: output cells in raster order; within a cell, tap by tap (input channel by
channel, kernel rows then columns, the order of ``explain``), then the bias (conv with a
bias), then the result. With ``per_cell`` granularity one step is one whole output cell.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from cnn_explorer.engine.conv import pad2d
from cnn_explorer.engine.geometry import (
    AvgPoolExplanation,
    MaxPoolExplanation,
    Term,
    TermTable,
    WeightedSumExplanation,
    Window,
)
from cnn_explorer.engine.layers import Layer

INPUT, PADDING, BEYOND = 0, 1, 2
"""Kinds of a cell of the drawn frame: an input cell, a padding cell (value from the
padding mode), a cell a ``ceil_mode`` pooling window hangs beyond the padded frame (read
by no one: never counted, never a winner)."""

KINDS = {"conv": "conv", "max_pool": "max_pool", "avg_pool": "avg_pool"}


class NotSlidingError(ValueError):
    """The layer has no sliding window to animate (activation, disabled, flatten, …) or
    the maps given do not belong to it (a stale result)."""


class Frame:
    """The layer's input as its windows read it, one channel plane at a time.

    :meth:`plane` ``(FH, FW)``: channel ``c`` with its padding filled as the engine fills
    it (conv: the padding mode's zeros/reflected/replicated/wrapped values, from
    :func:`pad2d`; max pool: −∞, so padding never wins; average pool: 0); NaN on
    :data:`BEYOND` cells. Planes are made when asked for and the last few kept (a 64-channel
    512² input padded at once would cost hundreds of MB). ``kinds (FH, FW)``: :data:`INPUT`,
    :data:`PADDING` or :data:`BEYOND`. Frame cell ``(fr, fc)`` is input cell
    ``(fr − top, fc − left)`` (negative or past the edge for padding). ``mode`` names the
    padding's values: the conv's padding mode, ``"zeros"`` (average pool) or
    ``"−∞: never wins"`` (max pool)."""

    KEEP = 4  # planes kept

    def __init__(
        self, x: np.ndarray, kinds: np.ndarray, padding: tuple[int, int, int, int], mode: str
    ) -> None:
        self.x, self.kinds, self.padding = x, kinds, padding
        self.top, self.left = padding[0], padding[2]
        self.mode = mode
        self._planes: OrderedDict[int, np.ndarray] = OrderedDict()

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.kinds.shape[0]), int(self.kinds.shape[1])

    def plane(self, channel: int) -> np.ndarray:
        """Channel ``channel`` of the padded input, ``(FH, FW)`` float64 (see above)."""
        hit = self._planes.get(channel)
        if hit is not None:
            self._planes.move_to_end(channel)
            return hit
        pad_mode = "zeros" if self.mode.startswith("−∞") else self.mode
        padded = pad2d(np.asarray(self.x[channel], np.float64), self.padding, pad_mode)
        values = np.full(self.shape, np.nan)
        values[: padded.shape[0], : padded.shape[1]] = padded
        if self.mode.startswith("−∞"):
            values[self.kinds == PADDING] = -np.inf
        self._planes[channel] = values
        if len(self._planes) > self.KEEP:
            self._planes.popitem(last=False)
        return values


@dataclass(frozen=True)
class Tap:
    """One input read by the output cell (one term of the explanation).

    ``pos`` is the input position ``(row, col)`` (outside the map for padding);
    ``kernel_pos`` the kernel tap ``(i, j)`` as applied (a true convolution's kernel is
    already flipped); ``running`` is the value built so far including this tap: the sum of
    the products (conv, average pool) or the maximum (max pool, −∞ before any real cell);
    ``channel_running`` the same within this tap's input channel only (conv)."""

    channel: int
    pos: tuple[int, int]
    kernel_pos: tuple[int, int]
    value: float
    weight: float
    product: float
    is_padding: bool
    running: float
    channel_running: float
    leader: int | None = None  # max pool: index of the winner so far (None: only padding)


@dataclass(frozen=True)
class CellAnimation:
    """Everything the animation shows for output cell ``index = (channel, row, col)``.

    Steps ``0 … len(taps) − 1`` show tap by tap; then, for a conv with a bias, one step
    adds the bias; the last step shows ``result``, the layer's output cell (exact).
    ``explained`` is ``explain()``'s own total; ``subtotals`` the sum of products of each
    input channel read (conv); ``winner`` the max pool's winning tap; ``divisor`` the
    average pool's."""

    kind: str
    index: tuple[int, int, int]
    taps: tuple[Tap, ...]
    bias: float | None
    result: float
    explained: float
    subtotals: tuple[tuple[int, float], ...] = ()
    winner: int | None = None
    divisor: int | None = None

    @property
    def n_steps(self) -> int:
        return len(self.taps) + (self.bias is not None) + 1

    def phase(self, step: int) -> str:
        """``"tap"``, ``"bias"`` or ``"result"`` for step ``step`` of this cell."""
        if step < len(self.taps):
            return "tap"
        return "result" if step == self.n_steps - 1 else "bias"

    def running(self, step: int) -> float:
        """The value on show at ``step``: the running sum/max, with the bias once added,
        then the mean (average pool) and finally the output cell."""
        if step >= self.n_steps - 1:
            return self.result
        if step < len(self.taps):
            return self.taps[step].running
        return self.taps[-1].running + (self.bias or 0.0)


def frame_of(layer: Layer, x: np.ndarray) -> Frame:
    """The padded input of ``layer`` for one image ``x (C, H, W)`` (see :class:`Frame`)."""
    win = _window(layer, x)
    _, h, w = x.shape
    t, b, left, r = win.padding
    oh, ow = win.output_hw(h, w)
    eh, ew = win.effective_kernel
    fh = max(h + t + b, (oh - 1) * win.stride[0] + eh)  # ceil_mode windows may hang over
    fw = max(w + left + r, (ow - 1) * win.stride[1] + ew)
    kind = getattr(layer, "kind", "")
    mode = win.padding_mode if kind == "conv" else "zeros"
    kinds = np.full((fh, fw), BEYOND, np.int8)
    kinds[: h + t + b, : w + left + r] = PADDING
    kinds[t : t + h, left : left + w] = INPUT
    return Frame(x, kinds, (t, b, left, r), "−∞: never wins" if kind == "max_pool" else mode)


def _window(layer: Layer, x: np.ndarray) -> Window:
    if getattr(layer, "kind", "") not in KINDS or np.ndim(x) != 3:
        raise NotSlidingError(f"{type(layer).__name__} has no sliding window to animate")
    win = layer.window_for(x.shape)
    if win is None:
        raise NotSlidingError("a disabled layer has no sliding window to animate")
    return win


def animate_cell(
    layer: Layer, x: np.ndarray, out: np.ndarray, row: int, col: int, channel: int = 0
) -> CellAnimation:
    """The steps of output cell ``[channel, row, col]`` of ``layer`` whose input is
    ``x (C, H, W)`` and whose computed output is ``out (O, H', W')``."""
    _window(layer, x)
    e = layer.explain(x, row, col, channel)
    result = float(out[channel, row, col])
    taps: list[Tap] = []
    if isinstance(e, WeightedSumExplanation):
        taps, per_channel = _sum_taps(e.terms)
        return CellAnimation(
            "conv",
            (channel, row, col),
            tuple(taps),
            e.bias,
            result,
            e.result,
            tuple(per_channel.items()),
        )
    if isinstance(e, MaxPoolExplanation):
        best: float = -np.inf
        leader: int | None = None
        for k, t in enumerate(e.terms):  # the engine's rule: first maximum, NaN takes over
            if not t.is_padding and (leader is None or np.isnan(t.value) or t.value > best):
                best, leader = t.value, k
            taps.append(_tap(t, best, best, leader))
        return CellAnimation(
            "max_pool", (channel, row, col), tuple(taps), None, result, e.result, winner=leader
        )
    if isinstance(e, AvgPoolExplanation):
        total = 0.0
        for t in e.terms:
            total += t.value
            taps.append(_tap(t, total, total))
        return CellAnimation(
            "avg_pool",
            (channel, row, col),
            tuple(taps),
            None,
            result,
            e.result,
            divisor=e.divisor,
        )
    raise NotSlidingError(f"{type(layer).__name__} has no sliding window to animate")


def _sum_taps(terms: Sequence[Term]) -> tuple[list[Tap], dict[int, float]]:
    """The taps of a weighted sum and each input channel's sum of products. The running
    sums are added one product at a time from 0.0, in term order (``np.cumsum`` of
    ``[0.0, products…]`` adds exactly so), read from the term columns without making a
    Term of each (a big conv cell has tens of thousands)."""
    if not isinstance(terms, TermTable):
        terms = TermTable(
            **{k: np.array([getattr(t, k) for t in terms]) for k in TermTable.FIELDS},
            kernel_i=np.array([t.kernel_pos[0] for t in terms], np.int64),
            kernel_j=np.array([t.kernel_pos[1] for t in terms], np.int64),
        )
    if not len(terms):
        return [], {}
    col = terms.column
    channels, products = col("channel"), np.asarray(col("product"), np.float64)
    with np.errstate(all="ignore"):  # inf − inf is NaN, as in Python floats
        running = np.cumsum(np.concatenate([[0.0], products]))[1:]
        in_channel = np.empty_like(running)
        per_channel: dict[int, float] = {}
        starts = np.flatnonzero(np.r_[True, channels[1:] != channels[:-1]])
        ends = [*starts[1:], channels.size]
        for a, b in zip(starts, ends, strict=True):
            part = np.cumsum(np.concatenate([[per_channel.get(int(channels[a]), 0.0)],
                                             products[a:b]]))[1:]  # fmt: skip
            in_channel[a:b] = part
            per_channel[int(channels[a])] = float(part[-1])
    cols = {k: col(k).tolist() for k in (*TermTable.FIELDS, "kernel_i", "kernel_j")}
    taps = [
        Tap(c, (r, q), (i, j), v, w, p, pad, run, sub)
        for c, r, q, v, w, p, pad, i, j, run, sub in zip(
            cols["channel"], cols["row"], cols["col"], cols["value"], cols["weight"],
            cols["product"], cols["is_padding"], cols["kernel_i"], cols["kernel_j"],
            running.tolist(), in_channel.tolist(), strict=True,
        )
    ]  # fmt: skip
    return taps, per_channel


def _tap(t: Term, running: float, channel_running: float, leader: int | None = None) -> Tap:
    return Tap(
        t.channel,
        (t.row, t.col),
        t.kernel_pos,
        t.value,
        t.weight,
        t.product,
        t.is_padding,
        running,
        channel_running,
        leader,
    )


class SlidingWindow:
    """A cursor over the animation of one layer's output channel: which output cell, which
    step of it; forward and back by tap or by whole cell; jump to any cell.

    ``x (C, H, W)`` is the layer's input and ``out (O, H', W')`` its computed output; they
    must belong to ``layer`` (else :class:`NotSlidingError`, e.g. a stale result)."""

    CACHE = 64  # cell animations kept (stepping back and forth never recomputes them)

    def __init__(self, layer: Layer, x: np.ndarray, out: np.ndarray, channel: int = 0) -> None:
        self.window = _window(layer, x)
        try:
            shape = tuple(layer.output_shape(x.shape))
        except ValueError as exc:
            raise NotSlidingError(str(exc)) from exc
        if shape != tuple(out.shape):
            raise NotSlidingError(f"output {out.shape} does not belong to this layer ({shape})")
        if not 0 <= channel < out.shape[0]:
            raise NotSlidingError(f"channel {channel} is not among the {out.shape[0]} outputs")
        self.layer, self.x, self.out, self.channel = layer, x, out, channel
        self.kind = str(getattr(layer, "kind", ""))
        self.frame = frame_of(layer, x)
        self.shape = (int(out.shape[1]), int(out.shape[2]))
        self.cell = (0, 0)
        self.step = 0
        self._cache: OrderedDict[tuple[int, int], CellAnimation] = OrderedDict()

    # ------------------------------------------------------------------ read
    def animation(self, cell: tuple[int, int] | None = None) -> CellAnimation:
        """The :class:`CellAnimation` of ``cell`` (default: the current cell)."""
        key = self.cell if cell is None else cell
        anim = self._cache.get(key)
        if anim is None:
            anim = animate_cell(self.layer, self.x, self.out, key[0], key[1], self.channel)
            self._cache[key] = anim
            if len(self._cache) > self.CACHE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return anim

    @property
    def index(self) -> int:
        """Raster index of the current output cell."""
        return self.cell[0] * self.shape[1] + self.cell[1]

    @property
    def cells(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def at_end(self) -> bool:
        """True on the last step of the last cell."""
        return self.index == self.cells - 1 and self.step == self.animation().n_steps - 1

    @property
    def at_start(self) -> bool:
        return self.index == 0 and self.step == 0

    # ------------------------------------------------------------------ move
    def jump(self, row: int, col: int, step: int = 0) -> None:
        """Go to output cell ``(row, col)`` at ``step`` (−1: its last step, the result)."""
        if not (0 <= row < self.shape[0] and 0 <= col < self.shape[1]):
            raise IndexError(f"cell ({row}, {col}) is outside the {self.shape} output")
        self.cell = (row, col)
        n = self.animation().n_steps
        self.step = n - 1 if step < 0 else min(step, n - 1)

    def _cell_at(self, index: int) -> tuple[int, int]:
        return divmod(index, self.shape[1])

    def forward(self, per_cell: bool = False) -> bool:
        """One step on (a tap, or a whole cell); False at the end (nothing moved)."""
        if per_cell:
            if self.index == self.cells - 1:
                last = self.animation().n_steps - 1
                moved = self.step != last
                self.step = last
                return moved
            self.jump(*self._cell_at(self.index + 1), -1)
            return True
        if self.step < self.animation().n_steps - 1:
            self.step += 1
            return True
        if self.index == self.cells - 1:
            return False
        self.jump(*self._cell_at(self.index + 1), 0)
        return True

    def back(self, per_cell: bool = False) -> bool:
        """One step back (a tap, or a whole cell); False at the start."""
        if per_cell:
            if self.index == 0:
                return False
            self.jump(*self._cell_at(self.index - 1), -1)
            return True
        if self.step > 0:
            self.step -= 1
            return True
        if self.index == 0:
            return False
        self.jump(*self._cell_at(self.index - 1), -1)
        return True

    def steps(self, per_cell: bool = False) -> Iterator[tuple[tuple[int, int], int]]:
        """Every ``(cell, step)`` from the current position to the end (moves the cursor);
        ``per_cell`` shows every cell complete (its last step), the current one first."""
        if per_cell:
            self.step = self.animation().n_steps - 1
        yield self.cell, self.step
        while self.forward(per_cell):
            yield self.cell, self.step
