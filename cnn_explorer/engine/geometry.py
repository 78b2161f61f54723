"""Geometry of sliding windows: output sizes, receptive fields and the arithmetic of one cell.

This is what turns the engine into an explorer. Everything here is exact integer reasoning
about which cells a window touches, so the UI can highlight a clicked cell's receptive field
in every earlier map and show the sum that produced it, with the user's own numbers.

Conventions: maps are ``(C, H, W)`` (one image), rows grow downwards, cell ``(r, c)`` of an
output map reads input positions ``r·s − p_top + d·i`` for kernel row ``i`` (same for columns).
Positions outside ``[0, H)`` are *padding* cells: they exist only in the padded frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

Pair = tuple[int, int]
Padding4 = tuple[int, int, int, int]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


# --------------------------------------------------------------------------------------
# Output size
# --------------------------------------------------------------------------------------


def _padding_pair(padding: int | Sequence[int]) -> Pair:
    """``p`` -> ``(p, p)``; ``(before, after)`` stays as is."""
    if isinstance(padding, int | np.integer):
        return int(padding), int(padding)
    before, after = padding
    return int(before), int(after)


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: ``d·(k−1) + 1`` (a 3-tap kernel with dilation 2 spans 5)."""
    return dilation * (kernel - 1) + 1


def conv_output_size(
    n: int,
    kernel: int,
    stride: int = 1,
    padding: int | Sequence[int] = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Number of window positions along one axis: ``⌊(n + 2p − d(k−1) − 1)/s⌋ + 1``.

    ``padding`` is ``p`` (both sides) or ``(before, after)``. With ``ceil_mode`` the division
    rounds up, but (as in torch) a last window that would start inside the right padding is
    dropped. The result may be ``≤ 0``: the caller decides how to report an impossible layer.
    """
    before, after = _padding_pair(padding)
    span = n + before + after - effective_kernel(kernel, dilation)
    if span < 0 or not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= n + before:
        out -= 1
    return out


def _fmt_int(v: int) -> str:
    return f"({v})" if v < 0 else str(v)


def explain_output_size(
    n: int,
    kernel: int,
    stride: int = 1,
    padding: int | Sequence[int] = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> str:
    """The output-size formula filled in with the user's numbers.

    ``explain_output_size(4, 2) == "(4 + 2·0 − 1·(2−1) − 1) / 1 + 1 = 3"``. The floor brackets
    ``⌊…⌋`` appear only when the division is not exact (that is when they matter), and a
    non-positive result gets a short reason.
    """
    before, after = _padding_pair(padding)
    pad_txt = f"2·{before}" if before == after else f"{before} + {after}"
    num = f"{n} + {pad_txt} − {dilation}·({kernel}−1) − 1"
    span = n + before + after - effective_kernel(kernel, dilation)
    out = conv_output_size(n, kernel, stride, (before, after), dilation, ceil_mode)
    if span >= 0 and span % stride == 0:
        text = f"({num}) / {stride} + 1 = {out}"
    else:
        lo, hi = ("⌈", "⌉") if ceil_mode else ("⌊", "⌋")
        q = -(-span // stride) if ceil_mode else span // stride
        text = f"{lo}({num}) / {stride}{hi} + 1 = {q} + 1 = {q + 1}"
        if out != q + 1:
            text += f" − 1 (the last window would start in the padding, so it is dropped) = {out}"
    if out <= 0:
        text += (
            f": the kernel (effective size {effective_kernel(kernel, dilation)}) does not fit"
            f" in the padded input ({n + before + after})"
        )
    return text


def same_padding(kernel: int, dilation: int = 1) -> Pair:
    """``(before, after)`` padding that keeps the size at stride 1, extra on the after side
    for even effective kernels (the torch ``padding="same"`` rule)."""
    total = effective_kernel(kernel, dilation) - 1
    return total // 2, total - total // 2


# --------------------------------------------------------------------------------------
# Window
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The sliding-window geometry of a spatial layer (conv or pool).

    ``padding`` is ``(top, bottom, left, right)``. ``mixes_channels`` is True for a conv (each
    output cell reads every input channel) and False for a pool (it reads only its own
    channel). ``padding_mode`` matters for receptive fields: with ``"reflect"`` a padding
    cell is a copy of an in-bounds cell, so that cell is part of the receptive field too.
    ``channel_groups`` is ``(groups, in_channels, out_channels)`` for a grouped conv, whose
    output channel reads only its own group's input channels (None: no groups).
    """

    kernel: Pair
    stride: Pair = (1, 1)
    dilation: Pair = (1, 1)
    padding: Padding4 = (0, 0, 0, 0)
    ceil_mode: bool = False
    mixes_channels: bool = False
    padding_mode: str = "zeros"
    channel_groups: tuple[int, int, int] | None = None

    @property
    def effective_kernel(self) -> Pair:
        """Span ``(eh, ew)`` of the dilated kernel."""
        return (
            effective_kernel(self.kernel[0], self.dilation[0]),
            effective_kernel(self.kernel[1], self.dilation[1]),
        )

    def output_hw(self, h: int, w: int) -> Pair:
        """Output ``(H', W')`` for an input ``(H, W)`` (may be ``≤ 0`` for impossible configs)."""
        t, b, left, r = self.padding
        return (
            conv_output_size(
                h, self.kernel[0], self.stride[0], (t, b), self.dilation[0], self.ceil_mode
            ),
            conv_output_size(
                w, self.kernel[1], self.stride[1], (left, r), self.dilation[1], self.ceil_mode
            ),
        )

    def row_positions(self, out_row: int) -> np.ndarray:
        """Input rows (padded-frame coordinates, may be negative) read by output row ``out_row``."""
        return (
            out_row * self.stride[0]
            - self.padding[0]
            + self.dilation[0] * np.arange(self.kernel[0])
        )

    def col_positions(self, out_col: int) -> np.ndarray:
        """Input columns read by output column ``out_col`` (may be outside the map)."""
        return (
            out_col * self.stride[1]
            - self.padding[2]
            + self.dilation[1] * np.arange(self.kernel[1])
        )


# --------------------------------------------------------------------------------------
# Receptive field
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """The part of one map that a chosen output cell depends on.

    The dependency of a window stack is separable (rows and columns never mix), so a region is
    exactly ``rows × cols`` — sparse when dilation or stride skip cells.

    - ``map_index``: 0 is the network input, ``i + 1`` the output of layer ``i``.
    - ``shape``: ``(H, W)`` of the map (vectors after Flatten/Dense are ``(1, F)``).
    - ``rows``, ``cols``: sorted in-bounds indices the output depends on.
    - ``touched_rows``, ``touched_cols``: sorted positions the next layer's windows read
      directly, including padding positions outside ``[0, H)`` (empty for elementwise links).
    - ``channels``: sorted channel indices involved, or ``None`` for all channels.
    """

    map_index: int
    shape: Pair
    rows: np.ndarray
    cols: np.ndarray
    touched_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    touched_cols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    channels: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray:
        """Boolean ``(H, W)`` mask of the in-bounds cells in the receptive field."""
        m = np.zeros(self.shape, dtype=bool)
        m[np.ix_(self.rows, self.cols)] = True
        return m

    @property
    def padding_cells(self) -> list[Pair]:
        """Cells ``(r, c)`` outside the map (negative or ``≥ H``/``≥ W``) that were read."""
        h, w = self.shape
        return [
            (int(r), int(c))
            for r in self.touched_rows
            for c in self.touched_cols
            if not (0 <= r < h and 0 <= c < w)
        ]

    @property
    def row_range(self) -> Pair | None:
        """``(first, last)`` in-bounds row (inclusive), or None if empty."""
        return (int(self.rows[0]), int(self.rows[-1])) if self.rows.size else None

    @property
    def col_range(self) -> Pair | None:
        """``(first, last)`` in-bounds column (inclusive), or None if empty."""
        return (int(self.cols[0]), int(self.cols[-1])) if self.cols.size else None

    @property
    def size(self) -> int:
        """Number of in-bounds cells per channel."""
        return int(self.rows.size * self.cols.size)


def _source_index(pos: np.ndarray, n: int, mode: str) -> np.ndarray:
    """In-bounds cell a padding position copies (reflect/replicate/circular); zeros: none."""
    if mode == "reflect":
        period = 2 * (n - 1) if n > 1 else 1
        p = np.mod(pos, period)
        return np.where(p >= n, period - p, p)
    if mode == "replicate":
        return np.clip(pos, 0, n - 1)
    if mode == "circular":
        return np.mod(pos, n)
    return np.zeros(0, dtype=np.int64)


def _back_axis(
    out_idx: np.ndarray,
    n_in: int,
    stride: int,
    pad_before: int,
    dilation: int,
    kernel: int,
    mode: str,
) -> tuple[np.ndarray, np.ndarray]:
    """One axis through one window: ``(in-bounds dependencies, touched positions)``."""
    taps = dilation * np.arange(kernel)
    touched = np.unique((out_idx[:, None] * stride - pad_before + taps[None, :]).ravel())
    inside = touched[(touched >= 0) & (touched < n_in)]
    outside = touched[(touched < 0) | (touched >= n_in)]
    if outside.size and mode != "zeros":
        inside = np.union1d(inside, _source_index(outside, n_in, mode))
    return inside.astype(np.int64), touched.astype(np.int64)


def _group_channels(
    groups: tuple[int, int, int] | None, channels: np.ndarray | None
) -> np.ndarray | None:
    """Input channels a grouped conv's output ``channels`` read (None: all channels)."""
    if groups is None or channels is None:
        return None
    g, c_in, c_out = groups
    group_of = np.unique(np.asarray(channels) // (c_out // g))
    cin = c_in // g
    return (group_of[:, None] * cin + np.arange(cin)[None, :]).ravel().astype(np.int64)


def map_sizes(windows: Sequence[Window | None], input_hw: Pair) -> list[Pair]:
    """``(H, W)`` of every map of a spatial stack, input first (``len(windows) + 1`` items)."""
    sizes = [tuple(input_hw)]
    for w in windows:
        h_, w_ = sizes[-1]
        sizes.append(w.output_hw(h_, w_) if w is not None else (h_, w_))
    return sizes  # type: ignore[return-value]


def propagate_back(
    windows: Sequence[Window | None],
    sizes: Sequence[Pair],
    rows: np.ndarray,
    cols: np.ndarray,
    channels: np.ndarray | None,
) -> list[Region]:
    """Walk a dependency set ``rows × cols`` (of map ``len(windows)``) back to map 0.

    ``sizes[i]`` is the ``(H, W)`` of map ``i``. Returns one Region per map ``0..len(windows)-1``,
    input first. Used by :func:`receptive_field` and by ``Network.receptive_field``.
    """
    regions: list[Region] = []
    for i in range(len(windows) - 1, -1, -1):
        win = windows[i]
        h, w = sizes[i]
        if win is None:
            regions.append(Region(i, (h, w), rows, cols, channels=channels))
            continue
        t, _, left, _ = win.padding
        rows, trows = _back_axis(
            rows, h, win.stride[0], t, win.dilation[0], win.kernel[0], win.padding_mode
        )
        cols, tcols = _back_axis(
            cols, w, win.stride[1], left, win.dilation[1], win.kernel[1], win.padding_mode
        )
        if win.mixes_channels:
            channels = _group_channels(win.channel_groups, channels)
        regions.append(Region(i, (h, w), rows, cols, trows, tcols, channels))
    return regions[::-1]


def receptive_field(
    windows: Sequence[Window | None],
    layer_index: int,
    row: int,
    col: int,
    input_hw: Pair,
    channel: int | None = None,
) -> list[Region]:
    """Which cells of every earlier map output cell ``(row, col)`` of layer ``layer_index`` reads.

    ``windows[i]`` is layer ``i``'s :class:`Window` (``None`` for elementwise layers, which
    map a cell to the same cell). ``input_hw`` is the network input's ``(H, W)``, needed to
    tell in-bounds cells from padding. ``channel`` is the output channel (``None``: unknown,
    report all channels). Returns ``layer_index + 1`` regions: maps ``0 .. layer_index``.

    Exact through stride, dilation, padding (including reflect/replicate/circular copies) and
    ceil_mode. Example: 4×4 input, conv 2×2 then max pool 2×2 stride 1: pool output ``[0, 1]``
    reads conv rows 0–1, cols 1–2, hence input rows 0–2, cols 1–3.
    """
    stack = list(windows[: layer_index + 1])
    sizes = map_sizes(stack, input_hw)
    oh, ow = sizes[-1]
    if not (0 <= row < oh and 0 <= col < ow):
        raise IndexError(
            f"cell ({row}, {col}) is outside the {oh}×{ow} output of layer {layer_index + 1}"
        )
    ch = None if channel is None else np.array([channel], dtype=np.int64)
    return propagate_back(stack, sizes, np.array([row]), np.array([col]), ch)


# --------------------------------------------------------------------------------------
# Parameter counts
# --------------------------------------------------------------------------------------


def conv_param_count(in_c: int, out_c: int, kh: int, kw: int, bias: bool = True) -> int:
    """Weights of a conv: ``out_c·in_c·kh·kw`` (+ ``out_c`` biases) — independent of image size."""
    return out_c * in_c * kh * kw + (out_c if bias else 0)


def dense_param_count_equivalent(
    input_shape: Sequence[int], output_shape: Sequence[int], bias: bool = True
) -> int:
    """Weights a fully connected layer needs to map the same input to the same output shape.

    The weight-sharing argument in numbers: a 3×3 conv 1→8 on 28×28 has 80 parameters, the
    dense equivalent ``784 · 6272 + 6272`` ≈ 4.9 million.
    """
    n_in = int(np.prod(input_shape))
    n_out = int(np.prod(output_shape))
    return n_in * n_out + (n_out if bias else 0)


# --------------------------------------------------------------------------------------
# Explanations of one output cell
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One input read by an output cell: ``value × weight = product``.

    ``(channel, row, col)`` is the position in the layer's input map (padding positions lie
    outside it and have ``is_padding`` True); ``kernel_pos`` is the kernel tap ``(i, j)``.
    Pool terms have ``weight`` 1.
    """

    channel: int
    row: int
    col: int
    value: float
    weight: float
    product: float
    is_padding: bool
    kernel_pos: Pair = (0, 0)


class TermTable(Sequence[Term]):
    """The terms of one output cell held as NumPy columns, each :class:`Term` made only
    when it is read.

    Why: a 64-channel 15×15 conv cell (or a dense unit of VGG's 25,088 inputs) has tens of
    thousands of terms, and making a Python object of each cost tens of milliseconds per
    click on the GUI thread, while a textbook line shows 36 of them. It behaves as the tuple
    of terms it stands for: length, indexing, slicing (a tuple), iteration, equality with
    any sequence of terms. Columns are 1-D and equally long: ``channel``, ``row``, ``col``,
    ``kernel_i``, ``kernel_j`` (ints), ``value``, ``weight``, ``product`` (float64),
    ``is_padding`` (bool)."""

    __slots__ = ("_cols", "_lists")

    FIELDS = ("channel", "row", "col", "value", "weight", "product", "is_padding")

    def __init__(self, **columns: np.ndarray) -> None:
        cols = {k: np.asarray(v).reshape(-1) for k, v in columns.items()}
        if set(cols) != {*self.FIELDS, "kernel_i", "kernel_j"}:
            raise ValueError(f"a term table needs the columns {self.FIELDS} and kernel_i/j")
        if len({v.size for v in cols.values()}) != 1:
            raise ValueError("the columns of a term table must be equally long")
        self._cols = cols
        self._lists: dict[str, list] | None = None  # type: ignore[type-arg]

    def column(self, name: str) -> np.ndarray:
        """One column as an array (read-only use): e.g. ``column("product")``."""
        return self._cols[name]

    def __len__(self) -> int:
        return int(self._cols["value"].size)

    def _as_lists(self) -> dict[str, list]:  # type: ignore[type-arg]
        if self._lists is None:  # Python ints, floats and bools, as Term has them
            self._lists = {k: v.tolist() for k, v in self._cols.items()}
        return self._lists

    def _term(self, i: int) -> Term:
        c = self._as_lists()
        return Term(
            c["channel"][i],
            c["row"][i],
            c["col"][i],
            c["value"][i],
            c["weight"][i],
            c["product"][i],
            c["is_padding"][i],
            (c["kernel_i"][i], c["kernel_j"][i]),
        )

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        if isinstance(index, slice):
            return tuple(self._term(i) for i in range(*index.indices(len(self))))
        i = int(index)
        n = len(self)
        if not -n <= i < n:
            raise IndexError("term index out of range")
        return self._term(i % n)

    def __iter__(self) -> Iterator[Term]:
        return (self._term(i) for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(other) == len(self) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"TermTable({len(self)} terms)"


@dataclass(frozen=True)
class WeightedSumExplanation:
    """A conv or dense output cell: ``Σ value·weight + bias = result``.

    ``index`` is the output index: ``(out_channel, row, col)`` for conv, ``(j,)`` for dense.
    """

    kind: str  # "conv" | "dense"
    index: tuple[int, ...]
    terms: Sequence[Term]
    """A tuple, or a :class:`TermTable` (the same terms, made when read)."""
    bias: float | None
    result: float
    show_channel: bool = True


@dataclass(frozen=True)
class MaxPoolExplanation:
    """A max-pool cell: the window's values, the winner (first maximum) and the result.

    Padding positions read as −∞ (they never win), matching torch.
    """

    index: tuple[int, int, int]
    terms: Sequence[Term]
    winner: Term
    result: float
    show_channel: bool = True
    kind: str = "max_pool"


@dataclass(frozen=True)
class AvgPoolExplanation:
    """An average-pool cell: ``(sum of values) / divisor = result``.

    ``divisor`` counts padding cells when ``count_include_pad`` (torch's default).
    """

    index: tuple[int, int, int]
    terms: Sequence[Term]
    divisor: int
    result: float
    show_channel: bool = True
    kind: str = "avg_pool"


@dataclass(frozen=True)
class ElementwiseExplanation:
    """A cell computed from one input value: activation ``f(x)``, batch norm, flatten, …

    ``function`` is the name shown (``"relu"``), ``formula`` an optional worked formula
    (e.g. ``"(x − μ) / √(σ² + ε) · γ + β"`` filled in).
    """

    kind: str
    index: tuple[int, ...]
    function: str
    x: float
    result: float
    formula: str = ""


Explanation = (
    WeightedSumExplanation | MaxPoolExplanation | AvgPoolExplanation | ElementwiseExplanation
)


def _cell(x: np.ndarray, c: int, r: int, q: int) -> tuple[float, bool]:
    """Value at ``x[c, r, q]`` and whether it is padding (outside the map)."""
    _, h, w = x.shape
    if 0 <= r < h and 0 <= q < w:
        return float(x[c, r, q]), False
    return 0.0, True


def window_values(
    x: np.ndarray, window: Window, row: int, col: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What output cell ``(row, col)`` reads of ``x (C, H, W)``, every channel at once:
    ``values (C, kh, kw)`` float64 (a padding cell reads 0, or what reflect/replicate/
    circular padding copies), ``is_padding (kh, kw)``, and the padded-frame ``rows (kh,)``
    and ``cols (kw,)``. Only the window is read: the cost is C·kh·kw, whatever the map size.
    """
    _, h, w = x.shape
    rows = np.asarray(window.row_positions(row), np.int64)
    cols = np.asarray(window.col_positions(col), np.int64)
    in_r, in_c = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
    pad = ~(in_r[:, None] & in_c[None, :])
    mode = window.padding_mode
    if mode == "zeros":
        src_r, src_c = np.where(in_r, rows, 0), np.where(in_c, cols, 0)
    else:
        src_r, src_c = _source_index(rows, h, mode), _source_index(cols, w, mode)
    values = np.asarray(x)[:, src_r[:, None], src_c[None, :]].astype(np.float64)
    if mode == "zeros":
        values[:, pad] = 0.0
    return values, pad, rows, cols


def _term_table(
    values: np.ndarray,
    weights: np.ndarray,
    pad: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    channels: np.ndarray,
) -> TermTable:
    """The terms of ``values``/``weights (C, kh, kw)`` in the order the textbook reads
    them: channel-major, then kernel rows, then kernel columns."""
    c, kh, kw = values.shape
    shape = (c, kh, kw)
    return TermTable(
        channel=np.broadcast_to(channels[:, None, None], shape),
        row=np.broadcast_to(rows[None, :, None], shape),
        col=np.broadcast_to(cols[None, None, :], shape),
        value=values,
        weight=weights,
        product=values * weights,
        is_padding=np.broadcast_to(pad[None], shape),
        kernel_i=np.broadcast_to(np.arange(kh)[None, :, None], shape),
        kernel_j=np.broadcast_to(np.arange(kw)[None, None, :], shape),
    )


def explain_conv_cell(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    window: Window,
    row: int,
    col: int,
    channel: int = 0,
    *,
    channel_offset: int = 0,
) -> WeightedSumExplanation:
    """Terms of conv output ``out[channel, row, col]`` for one image ``x (C, H, W)``.

    ``weight (O, C, kh, kw)`` is applied as stored (cross-correlation, like torch); pass a
    180°-rotated weight for a true convolution. Terms run channel-major, then kernel rows;
    their channels are numbered from ``channel_offset`` (a grouped conv's slice of ``x``).
    Reads only the cell's window (:func:`window_values`); the sum is float64, pairwise
    over the products in term order (``np.sum``).
    """
    values, pad, rows, cols = window_values(x, window, row, col)
    weights = np.asarray(weight[channel, : values.shape[0]], np.float64)
    channels = channel_offset + np.arange(values.shape[0])
    b = None if bias is None else float(bias[channel])
    with np.errstate(all="ignore"):  # inf·0 and inf − inf are NaN, said in the text
        terms = _term_table(values, weights, pad, rows, cols, channels)
        total = float(np.sum(terms.column("product"), dtype=np.float64)) + (b or 0.0)
    return WeightedSumExplanation(
        "conv",
        (channel, row, col),
        terms,
        b,
        total,
        show_channel=weight.shape[0] > 1 or x.shape[0] > 1,
    )


def _pool_terms(x: np.ndarray, window: Window, row: int, col: int, channel: int) -> list[Term]:
    rows, cols = window.row_positions(row), window.col_positions(col)
    terms = []
    for i, r in enumerate(rows):
        for j, q in enumerate(cols):
            value, pad = _cell(x, channel, int(r), int(q))
            terms.append(Term(channel, int(r), int(q), value, 1.0, value, pad, (i, j)))
    return terms


def explain_max_pool_cell(
    x: np.ndarray, window: Window, row: int, col: int, channel: int = 0
) -> MaxPoolExplanation:
    """Window values of max-pool output ``[channel, row, col]`` and the winning position.

    The winner is the one the backward pass routes the gradient to (torch's rule): the
    first maximum in row-major window order; padding cells never win; a NaN takes over from
    anything before it, so the last NaN wins (NaN propagates through max).
    """
    terms = _pool_terms(x, window, row, col, channel)
    real = [t for t in terms if not t.is_padding]
    winner = real[0]
    for t in real[1:]:
        if np.isnan(t.value) or t.value > winner.value:
            winner = t
    return MaxPoolExplanation(
        (channel, row, col), tuple(terms), winner, winner.value, show_channel=x.shape[0] > 1
    )


def explain_avg_pool_cell(
    x: np.ndarray,
    window: Window,
    row: int,
    col: int,
    channel: int = 0,
    count_include_pad: bool = True,
) -> AvgPoolExplanation:
    """Window values of avg-pool output ``[channel, row, col]``, the divisor and the mean.

    Like torch: with ``count_include_pad`` the divisor counts explicit padding cells but
    not the cells a ``ceil_mode`` window hangs beyond the padded frame.
    """
    terms = _pool_terms(x, window, row, col, channel)
    _, h, w = x.shape
    t, b, left, r = window.padding
    if count_include_pad:
        in_frame = [tt for tt in terms if -t <= tt.row < h + b and -left <= tt.col < w + r]
        divisor = len(in_frame)
    else:
        divisor = sum(not tt.is_padding for tt in terms)
    total = float(np.sum([tt.value for tt in terms], dtype=np.float64))
    return AvgPoolExplanation(
        (channel, row, col), tuple(terms), divisor, total / divisor, show_channel=x.shape[0] > 1
    )


def explain_elementwise_cell(
    function: str,
    f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    index: tuple[int, ...],
    kind: str = "activation",
    formula: str = "",
) -> ElementwiseExplanation:
    """``f(x)`` for the single value ``x[index]`` (``f`` maps an array to an array)."""
    value = float(x[index])
    with np.errstate(all="ignore"):
        result = float(np.asarray(f(np.array([value], dtype=np.float64)))[0])
    return ElementwiseExplanation(kind, index, function, value, result, formula)


class _Explainable:
    """Anything with ``explain(x, row, col, channel)`` (every layer in ``layers.py``)."""

    def explain(self, x: np.ndarray, row: int, col: int, channel: int = 0) -> Explanation:
        raise NotImplementedError


def explain_cell(
    layer: _Explainable, x: np.ndarray, row: int, col: int, channel: int = 0
) -> Explanation:
    """The arithmetic of output cell ``[channel, row, col]`` of ``layer`` as data.

    ``x`` is the layer's input for one image, ``(C, H, W)`` (or ``(F,)`` for Dense). Delegates
    to ``layer.explain``; see :func:`format_explanation` for the textbook rendering.
    """
    return layer.explain(x, row, col, channel)


# --------------------------------------------------------------------------------------
# Textbook rendering
# --------------------------------------------------------------------------------------


def fmt_number(v: float, digits: int = 4) -> str:
    """A number as a person would write it in an explanation: ``2`` not ``2.0``, ``digits``
    significant digits, a true minus sign (``−2``, as in the formulas), ``-0`` as ``0``,
    ``NaN``, ``∞`` and ``−∞``. The one number format of every explanation."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v == 0:
        return "0"
    text = f"{v:.{digits}g}"
    return "−" + text[1:] if text.startswith("-") else text


def _factor(v: float, digits: int) -> str:
    s = fmt_number(v, digits)
    return f"({s})" if s.startswith("−") else s


def _out_name(index: tuple[int, ...], show_channel: bool) -> str:
    idx = index if show_channel or len(index) != 3 else index[1:]
    return "out[" + ",".join(str(i) for i in idx) + "]"


def _limit(terms: Sequence[Term], text: Callable[[Term], str], max_terms: int | None) -> list[str]:
    """``text`` of the first ``max_terms`` terms, then how many more there are: only the
    shown terms are formatted (a long sum has tens of thousands)."""
    if max_terms is None or len(terms) <= max_terms:
        return [text(t) for t in terms]
    return [*(text(t) for t in terms[:max_terms]), f"… ({len(terms) - max_terms} more terms)"]


def format_explanation(
    explanation: Explanation, digits: int = 4, max_terms: int | None = 36
) -> str:
    """Render an explanation like a textbook line, with the real numbers.

    Conv on the worked example with a ones kernel: ``out[0,1] = 1·1 + 0·1 + 1·1 + 0·1 = 2``.
    Max pool: ``out[0,1] = max(2, 0, 2, 2) = 2 at (0, 1)``. Avg pool: ``out[0,0] = (1 + 2 + 3
    + 4) / 4 = 2.5``. Activation: ``relu(-2) = 0``. The channel index is shown only for
    multi-channel maps. Long sums are cut after ``max_terms`` terms.
    """
    e = explanation
    if isinstance(e, WeightedSumExplanation):
        name = _out_name(e.index, e.show_channel)
        parts = _limit(
            e.terms, lambda t: f"{_factor(t.value, digits)}·{_factor(t.weight, digits)}", max_terms
        )
        total = " + ".join(parts)
        if e.bias is not None:  # "… + 0.5" or "… − 0.5", never "+ −0.5"
            b = fmt_number(e.bias, digits)
            total += f" − {b[1:]}" if b.startswith("−") else f" + {b}"
        return f"{name} = {total} = {fmt_number(e.result, digits)}"
    if isinstance(e, MaxPoolExplanation):
        name = _out_name(e.index, e.show_channel)
        real = [t for t in e.terms if not t.is_padding]
        vals = _limit(real, lambda t: fmt_number(t.value, digits), max_terms)
        return (
            f"{name} = max({', '.join(vals)}) = {fmt_number(e.result, digits)}"
            f" at ({e.winner.row}, {e.winner.col})"
        )
    if isinstance(e, AvgPoolExplanation):
        name = _out_name(e.index, e.show_channel)
        vals = _limit(e.terms, lambda t: fmt_number(t.value, digits), max_terms)
        return f"{name} = ({' + '.join(vals)}) / {e.divisor} = {fmt_number(e.result, digits)}"
    if e.kind == "activation" and e.formula:
        return e.formula  # already "ReLU(−2) = max(0, −2) = 0"
    text = f"{e.function}({fmt_number(e.x, digits)}) = {fmt_number(e.result, digits)}"
    return f"{text}: {e.formula}" if e.formula else text
