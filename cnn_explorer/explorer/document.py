"""The editable state of the explorer: input grid, layer stack, weights and selection.

Data flow (see ARCHITECTURE.md): a widget gesture becomes an undo command (commands.py)
pushed on :attr:`Document.undo_stack`; the command calls one of the ``apply_*`` methods
here, which store the new state and emit :attr:`Document.changed` once, naming what
changed. A zero-delay timer coalesces a burst of changes into one recompute that starts at
the first affected layer (``Network.forward_from``) and publishes :class:`Results` through
:attr:`Document.results_ready`. Large recomputes run on a QThreadPool worker; a generation
counter discards stale results.

QtCore only (no widgets): the document is testable without a window.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal
from PySide6.QtGui import QUndoStack

from cnn_explorer.explorer import presets
from cnn_explorer.explorer.enginebridge import (
    ACTIVATIONS,
    LayerStatus,
    Selection,
    build_network,
    compute_region,
    explain_cell_text,
    explain_trace,
    layer_param_count,
    output_region,
    receptive_regions,
    single_blas_thread,
    supports_incremental,
    validate,
)

MAX_SIDE = 512
MAX_FILTERS = 64
ASYNC_COST = 100_000_000
"""Estimated multiply-adds of the layers still to compute above which a recompute leaves
the GUI thread. Single-threaded BLAS does ~10 M multiply-adds per ms here, so inline work
stays under ~10 ms; handing a job to the pool costs an extra event-loop round trip and
competes with the GUI thread for the cores, which made mid-sized edits slower, not faster."""
REFINE_AFTER_MS = 300
"""After a pause this long, maps updated by difference are recomputed exactly."""


# --------------------------------------------------------------------------- state types
@dataclass
class LayerSpec:
    """One layer of the stack as editable data (JSON-safe ``config`` + weight arrays).

    kind: ``"conv"`` | ``"act"`` | ``"maxpool"`` | ``"avgpool"``.
    conv config: filters, kernel [kh, kw], stride [sh, sw], padding (int | "same" |
    "valid"), padding_mode, dilation [dh, dw], bias (bool), flip (true convolution).
    act config: fn (relu, leaky_relu, sigmoid, tanh, identity), slope.
    pool config: size [kh, kw], stride [sh, sw], padding (int).
    ``weight`` is ``(O, C, kh, kw)`` and ``bias`` ``(O,)`` for conv, else ``None``.
    """

    kind: str
    config: dict[str, Any]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    enabled: bool = True

    def copy(self) -> LayerSpec:
        """A deep copy (arrays included): specs in undo commands are never shared."""
        return LayerSpec(
            self.kind,
            copy.deepcopy(self.config),
            None if self.weight is None else self.weight.copy(),
            None if self.bias is None else self.bias.copy(),
            self.enabled,
        )

    @property
    def title(self) -> str:
        """Short human name, e.g. "Conv2D 1→8, 3×3" or "ReLU"."""
        c = self.config
        if self.kind == "conv":
            kh, kw = c["kernel"]
            cin = 0 if self.weight is None else self.weight.shape[1]
            return f"Conv2D {cin}→{c['filters']}, {kh}×{kw}"
        if self.kind == "act":
            return ACTIVATIONS.get(c["fn"], c["fn"])
        kh, kw = c["size"]
        return f"{'Max' if self.kind == 'maxpool' else 'Avg'} pool {kh}×{kw}"

    def same_values(self, other: LayerSpec) -> bool:
        """True if both specs describe the same layer with equal weights."""
        return (
            self.kind == other.kind
            and self.config == other.config
            and self.enabled == other.enabled
            and _arr_eq(self.weight, other.weight)
            and _arr_eq(self.bias, other.bias)
        )


def _arr_eq(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


def conv_spec(
    in_channels: int,
    filters: int = 1,
    kernel: tuple[int, int] = (3, 3),
    *,
    stride: tuple[int, int] = (1, 1),
    padding: int | str = 0,
    padding_mode: str = "zeros",
    dilation: tuple[int, int] = (1, 1),
    bias: bool = True,
    flip: bool = False,
    weight: np.ndarray | None = None,
    seed: int = 0,
) -> LayerSpec:
    """A conv layer spec; weights default to seeded He-style random values."""
    kh, kw = kernel
    if weight is None:
        weight = presets.random_kernel((filters, in_channels, kh, kw), seed)
    cfg = {
        "filters": int(filters),
        "kernel": [int(kh), int(kw)],
        "stride": [int(stride[0]), int(stride[1])],
        "padding": padding,
        "padding_mode": padding_mode,
        "dilation": [int(dilation[0]), int(dilation[1])],
        "bias": bool(bias),
        "flip": bool(flip),
    }
    return LayerSpec("conv", cfg, weight.astype(np.float32), np.zeros(filters, np.float32))


def act_spec(fn: str = "relu", slope: float = 0.01) -> LayerSpec:
    """An activation layer spec (fn one of :data:`ACTIVATIONS`)."""
    return LayerSpec("act", {"fn": fn, "slope": float(slope)})


def pool_spec(kind: str = "maxpool", size: int = 2, stride: int = 2, padding: int = 0) -> LayerSpec:
    """A max or average pool spec with square window ``size`` and ``stride``."""
    return LayerSpec(
        kind, {"size": [size, size], "stride": [stride, stride], "padding": int(padding)}
    )


def worked_example_layers() -> list[LayerSpec]:
    """conv 2×2 ones (stride 1) → ReLU → 2×2 max pool stride 1 (CONTRACT.md)."""
    conv = conv_spec(1, 1, (2, 2), weight=np.ones((1, 1, 2, 2), np.float32), bias=False)
    return [conv, act_spec("relu"), pool_spec("maxpool", 2, 1)]


def specs_from_engine(layers: list[Any]) -> tuple[list[LayerSpec], str]:
    """Editable specs for the feature-extractor part of an engine network.

    Conv, activation and pooling layers convert exactly; the stack stops at the first layer
    the explorer cannot show as maps (Flatten, Dense, BatchNorm, …). Returns the specs and a
    note naming what was left out ("" when everything converted).
    """
    out: list[LayerSpec] = []
    for i, layer in enumerate(layers):
        kind = getattr(layer, "kind", "")
        try:
            spec = _spec_from_engine_layer(layer)
        except (AttributeError, TypeError, ValueError):
            spec = None
        if spec is None:
            rest = len(layers) - i
            plural = "s" if rest > 1 else ""
            return (
                out,
                f"left out {rest} layer{plural} from layer {i + 1} ({kind}) on",
            )
        spec.enabled = bool(getattr(layer, "enabled", True))
        out.append(spec)
    return out, ""


def _spec_from_engine_layer(layer: Any) -> LayerSpec | None:
    kind = getattr(layer, "kind", "")
    if kind == "conv":
        pad = layer.padding
        if not isinstance(pad, str):
            p4 = tuple(int(v) for v in layer.padding4)
            if len(set(p4)) != 1:
                return None
            pad = p4[0]
        w = np.asarray(layer.params["weight"], np.float32).copy()
        spec = conv_spec(
            w.shape[1],
            w.shape[0],
            (w.shape[2], w.shape[3]),
            stride=tuple(layer.stride),
            padding=pad,
            padding_mode=layer.padding_mode,
            dilation=tuple(layer.dilation),
            bias=bool(layer.use_bias),
            flip=bool(layer.flip_kernel),
            weight=w,
        )
        if layer.params.get("bias") is not None:
            spec.bias = np.asarray(layer.params["bias"], np.float32).copy()
        return spec
    if kind == "activation":
        if layer.activation not in ACTIVATIONS:
            return None
        return act_spec(layer.activation, float(layer.settings.get("negative_slope", 0.01)))
    if kind in ("max_pool", "avg_pool", "maxpool", "avgpool") or type(layer).__name__ in (
        "MaxPool2D",
        "AvgPool2D",
    ):
        ph, pw = layer.padding
        if ph != pw or getattr(layer, "ceil_mode", False):
            return None
        name = "maxpool" if type(layer).__name__ == "MaxPool2D" else "avgpool"
        spec = pool_spec(name, 2, 2, int(ph))
        spec.config["size"] = [int(v) for v in layer.kernel_size]
        spec.config["stride"] = [int(v) for v in layer.stride]
        return spec
    return None


@dataclass(frozen=True)
class Change:
    """What changed, carried by :attr:`Document.changed`.

    kind: ``"input"`` (values), ``"input_shape"``, ``"layer"`` (one layer's weights or
    config; ``index`` says which), ``"layers"`` (the stack's structure), ``"selection"``
    (selected layer/filter/channel), ``"cell"`` (selected output cell), ``"document"``
    (everything: a file was opened). ``region`` (rows/cols, inclusive) narrows an
    ``"input"`` change to the cells that changed, when known.
    """

    kind: str
    index: int = 0
    region: tuple[int, int, int, int] | None = None


@dataclass
class Results:
    """One published forward pass.

    maps[0] is the input ``(C, H, W)``; maps[i+1] the output of layer i, for every layer
    up to (not including) the first invalid one. ``statuses`` has one entry per layer.
    ``first`` is the index of the first map whose values may differ from the last result.
    ``channels`` narrows that further: map ``m`` in it changed only in those channels (a
    kernel edit of one filter), so views can leave the other tiles as they are.
    """

    maps: list[np.ndarray]
    statuses: list[LayerStatus]
    generation: int
    first: int = 0
    notes: list[str] = field(default_factory=list)
    stats: list[MapStats] = field(default_factory=list)
    channels: dict[int, frozenset[int]] = field(default_factory=dict)


@dataclass
class MapStats:
    """Per-channel statistics of one map ``(C, H, W)``, kept up to date incrementally.

    ``mins``/``maxs`` are over finite values (NaN/inf ignored), ``sums`` float64,
    ``zeros`` counts exact zeros, ``n`` cells per channel, ``nonfinite`` per channel.
    """

    mins: np.ndarray
    maxs: np.ndarray
    sums: np.ndarray
    zeros: np.ndarray
    nonfinite: np.ndarray
    n: int

    @property
    def means(self) -> np.ndarray:
        return self.sums / max(1, self.n)

    def range(self) -> tuple[float, float]:
        """Finite ``(min, max)`` over all channels (``(0, 0)`` if none)."""
        ok = np.isfinite(self.mins)
        if not ok.any():
            return 0.0, 0.0
        return float(self.mins[ok].min()), float(self.maxs[ok].max())


def map_stats(a: np.ndarray) -> MapStats:
    """Full statistics of ``a (C, H, W)`` (a few vectorised passes)."""
    c = a.shape[0]
    n = int(a.shape[1] * a.shape[2])
    with np.errstate(all="ignore"):
        flat = a.reshape(c, n)  # one vectorised pass per statistic over all channels
        mins = flat.min(axis=1).astype(np.float64) if n else np.zeros(c)
        maxs = flat.max(axis=1).astype(np.float64) if n else np.zeros(c)
        # Pairwise float32 summation is accurate to ~1e-6 relative (plenty for a mean
        # shown with 3 digits) and twice as fast as accumulating in float64.
        sums = flat.sum(axis=1).astype(np.float64)
        zeros = _count_zeros(flat)
        nonfinite = np.zeros(c, np.int64)
        if not (np.isfinite(mins).all() and np.isfinite(maxs).all()):
            fin = np.isfinite(a)
            nonfinite = (~fin).sum(axis=(1, 2)).astype(np.int64)
            mins = np.where(fin, a, np.inf).min(axis=(1, 2)).astype(np.float64)
            maxs = np.where(fin, a, -np.inf).max(axis=(1, 2)).astype(np.float64)
            sums = np.where(fin, a, 0).sum(axis=(1, 2), dtype=np.float64)
            mins[~np.isfinite(mins)] = np.nan
            maxs[~np.isfinite(maxs)] = np.nan
    return MapStats(mins, maxs, sums, zeros, nonfinite, n)


def _count_zeros(flat: np.ndarray) -> np.ndarray:
    """Exact zeros per row of ``flat (C, N)``. Row by row on purpose: ``count_nonzero``
    over a whole contiguous bool row is several times faster than with ``axis=``."""
    return np.array([np.count_nonzero(row == 0) for row in flat], np.int64).reshape(-1)


def update_stats(st: MapStats, a: np.ndarray, old: np.ndarray, new: np.ndarray) -> MapStats:
    """Stats of ``a`` after cells whose values were ``old`` became ``new`` (same blocks).

    Exact: sums and zero counts are updated by difference; a channel whose old extreme may
    have been inside the changed block gets its min/max recomputed from ``a``.
    """
    with np.errstate(all="ignore"):
        if st.nonfinite.any() or not (np.isfinite(new).all() and np.isfinite(old).all()):
            return map_stats(a)
        sums = (
            st.sums
            + new.sum(axis=(1, 2), dtype=np.float64)
            - old.sum(axis=(1, 2), dtype=np.float64)
        )
        zeros = (
            st.zeros
            + np.count_nonzero(new == 0, axis=(1, 2))
            - np.count_nonzero(old == 0, axis=(1, 2))
        )
        mins = np.minimum(st.mins, new.min(axis=(1, 2)))
        maxs = np.maximum(st.maxs, new.max(axis=(1, 2)))
        redo_min = old.min(axis=(1, 2)) <= st.mins
        redo_max = old.max(axis=(1, 2)) >= st.maxs
        for c in np.flatnonzero(redo_min):
            mins[c] = a[c].min()
        for c in np.flatnonzero(redo_max):
            maxs[c] = a[c].max()
    return MapStats(mins, maxs, sums, zeros, st.nonfinite, st.n)


def stats_notes(stats: list[MapStats]) -> list[str]:
    """One sentence per map that contains NaN or infinite values."""
    notes = []
    for i, st in enumerate(stats):
        bad = int(st.nonfinite.sum())
        if bad:
            name = "the input" if i == 0 else f"layer {i}'s output"
            notes.append(f"{name} contains {bad} NaN/infinite value{'s' if bad > 1 else ''}")
    return notes


# --------------------------------------------------------------------------- background job
class _JobSignals(QObject):
    done = Signal(object, object)  # (generation, Results | Exception)


class _ComputeJob(QRunnable):
    """Runs one forward pass off the GUI thread on snapshot data (no shared mutation)."""

    def __init__(self, generation: int, job: Any) -> None:
        super().__init__()
        self.signals = _JobSignals()
        self.generation = generation
        self.job = job
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            with single_blas_thread():
                result: object = _compute(*self.job)
        except Exception as exc:  # reported on the GUI thread, never crashes
            result = exc
        self.signals.done.emit(self.generation, result)


def _compute(
    layers: list[LayerSpec],
    statuses: list[LayerStatus],
    prev: list[np.ndarray],
    prev_stats: list[MapStats],
    first: int,
    x: np.ndarray,
) -> tuple[list[np.ndarray], list[MapStats]]:
    """Forward ``x`` through the valid prefix of ``layers`` reusing ``prev[:first+1]``."""
    n_valid = next((i for i, s in enumerate(statuses) if s.error), len(statuses))
    net = build_network(layers[:n_valid])
    start = min(first, n_valid)
    if start == 0 or len(prev) < start + 1 or len(prev_stats) < start + 1:
        start = 0
        with np.errstate(all="ignore"):
            maps = net.forward(x)
    else:
        with np.errstate(all="ignore"):
            maps = net.forward_from(start, list(prev[: start + 1]))
    maps = [np.asarray(m) for m in maps]
    stats = list(prev_stats[: start + 1]) if start else []
    stats += [map_stats(m) for m in maps[len(stats) :]]
    return maps, stats


def _compute_incremental(
    layers: list[LayerSpec],
    prev: list[np.ndarray],
    prev_stats: list[MapStats],
    x: np.ndarray,
    region: tuple[int, int, int, int],
) -> tuple[list[np.ndarray], list[MapStats]]:
    """Update ``prev`` after input cells in ``region`` changed, recomputing only the cells
    each layer's windows make depend on them. Writes into ``prev[1:]`` in place (callers
    guarantee no other thread reads them) except where an array aliases another map."""
    maps = [x, *prev[1:]]
    stats = [update_stats(prev_stats[0], x, _block(prev[0], region), _block(x, region))]
    reg: tuple[int, int, int, int] | None = region
    for i, spec in enumerate(layers[: len(maps) - 1]):
        out = maps[i + 1]
        if reg is not None:
            reg = output_region(spec, reg, out.shape[1:])
        if reg is None:  # nothing further changes
            stats += prev_stats[i + 1 : len(maps)]
            break
        if not spec.enabled:
            maps[i + 1] = maps[i]
            stats.append(stats[i])
            continue
        if any(np.may_share_memory(out, m) for m in (prev[0], x, maps[i])):
            out = out.copy()
            maps[i + 1] = out
        block = compute_region(spec, maps[i], reg)
        r0, r1, c0, c1 = reg
        old = out[:, r0 : r1 + 1, c0 : c1 + 1].copy()
        out[:, r0 : r1 + 1, c0 : c1 + 1] = block
        stats.append(update_stats(prev_stats[i + 1], out, old, block))
    return maps, stats


def _changed_filters(old: LayerSpec, new: LayerSpec) -> frozenset[int]:
    """Output channels of a conv whose weights or bias differ (same shapes)."""
    if old.weight is None or new.weight is None:
        return frozenset()
    same_w = (old.weight == new.weight) | (np.isnan(old.weight) & np.isnan(new.weight))
    diff = ~np.all(same_w, axis=(1, 2, 3))
    if old.bias is not None and new.bias is not None and old.bias.shape == new.bias.shape:
        diff |= ~((old.bias == new.bias) | (np.isnan(old.bias) & np.isnan(new.bias)))
    return frozenset(int(i) for i in np.flatnonzero(diff))


def _compute_filters(
    layers: list[LayerSpec],
    prev: list[np.ndarray],
    prev_stats: list[MapStats],
    index: int,
    filters: list[int],
) -> tuple[list[np.ndarray], list[MapStats], int, np.ndarray | None]:
    """Recompute only output channels ``filters`` of conv ``index`` and carry them through
    the channel-wise layers after it (activations, pools). Returns the patched maps and
    stats, the index ``j`` of the first layer that still needs a full forward (a later
    conv mixes all channels) or ``len(layers)``, and the old values of the patched
    channels of ``maps[j]`` (that conv's input). Writes into ``prev[index+1:]`` in place."""
    maps, stats = list(prev), list(prev_stats)
    spec = layers[index]
    if not filters or not spec.enabled or spec.weight is None or spec.bias is None:
        return maps, stats, len(layers), None
    sub = spec.copy()
    sub.weight = np.ascontiguousarray(spec.weight[filters])
    sub.bias = np.ascontiguousarray(spec.bias[filters])
    sub.config["filters"] = len(filters)
    with np.errstate(all="ignore"):
        block = build_network([sub]).forward(maps[index])[-1]
    old = _write_channels(maps, stats, prev[0], index + 1, filters, block)
    j = index + 1
    while j < len(layers):
        s = layers[j]
        if s.enabled and s.kind == "conv":
            return maps, stats, j, old
        if not s.enabled:
            maps[j + 1], stats[j + 1] = maps[j], stats[j]
        else:
            with np.errstate(all="ignore"):
                x = np.ascontiguousarray(maps[j][filters])
                block = build_network([s]).forward(x)[-1]
            old = _write_channels(maps, stats, prev[0], j + 1, filters, block)
        j += 1
    return maps, stats, j, old


def _delta_through_conv(
    spec: LayerSpec,
    maps: list[np.ndarray],
    stats: list[MapStats],
    x0: np.ndarray,
    j: int,
    filters: list[int],
    old_in: np.ndarray,
) -> bool:
    """Update the output of conv ``j`` after channels ``filters`` of its input changed
    from ``old_in`` to ``maps[j][filters]``, in ``len(filters)/C`` of a full pass.

    A convolution is linear in its input (with every padding mode: padding only copies
    cells), so ``out += conv(new − old, weight[:, filters])`` without bias. Float32
    rounding makes each update drift by ~1e-7 relative: the document recomputes exactly
    when the edits pause. Returns False (nothing written) when it does not apply."""
    if not spec.enabled or spec.kind != "conv" or spec.weight is None:
        return False
    if stats[j + 1].nonfinite.any():
        return False  # inf − inf: only a full pass gets NaN/inf right
    with np.errstate(all="ignore"):
        delta_in = maps[j][filters] - old_in
        if not np.isfinite(delta_in).all():
            return False
        sub = spec.copy()
        sub.weight = np.ascontiguousarray(spec.weight[:, filters])
        sub.config["bias"] = False
        delta_out = build_network([sub]).forward(delta_in)[-1]
        out = maps[j + 1]
        if any(np.may_share_memory(out, m) for m in (x0, *maps[: j + 1])):
            out = out.copy()
            maps[j + 1] = out
        out += delta_out
    stats[j + 1] = map_stats(out)
    return True


def _write_channels(
    maps: list[np.ndarray],
    stats: list[MapStats],
    x0: np.ndarray,
    k: int,
    filters: list[int],
    block: np.ndarray,
) -> np.ndarray:
    """Store channels ``filters`` of map ``k`` (copying it first if it aliases another
    map or the input) and refresh their statistics. Returns their old values."""
    out = maps[k]
    if any(np.may_share_memory(out, m) for m in (x0, *maps[:k])):
        out = out.copy()
        maps[k] = out
    old = out[filters]  # a copy (fancy indexing)
    out[filters] = block
    part = map_stats(block)
    st = stats[k]
    new = MapStats(
        st.mins.copy(), st.maxs.copy(), st.sums.copy(), st.zeros.copy(), st.nonfinite.copy(), st.n
    )
    new.mins[filters] = part.mins
    new.maxs[filters] = part.maxs
    new.sums[filters] = part.sums
    new.zeros[filters] = part.zeros
    new.nonfinite[filters] = part.nonfinite
    stats[k] = new
    return old


def _union(
    a: tuple[int, int, int, int] | None, b: tuple[int, int, int, int]
) -> tuple[int, int, int, int]:
    if a is None:
        return b
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def _block(a: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    r0, r1, c0, c1 = region
    return a[:, r0 : r1 + 1, c0 : c1 + 1]


def estimate_cost(
    layers: list[LayerSpec], statuses: list[LayerStatus], x_shape: tuple, first: int = 0
) -> int:
    """Rough multiply-add count of a forward pass from layer ``first`` on (decides thread
    vs. inline); every map counts once more for its statistics."""
    total = int(np.prod(x_shape)) if first == 0 else 0
    for i, (spec, st) in enumerate(zip(layers, statuses, strict=False)):
        if st.error or st.shape is None:
            break
        if i < first:
            continue
        n = int(np.prod(st.shape))
        if spec.kind == "conv" and spec.weight is not None:
            n *= int(np.prod(spec.weight.shape[1:]))
        total += n
    return total


# --------------------------------------------------------------------------- the document
class Document(QObject):
    """Input + layers + selection, with undo, change notification and recompute."""

    changed = Signal(object)  # Change
    results_ready = Signal(object)  # Results
    busy_changed = Signal(bool)
    compute_failed = Signal(str)

    def __init__(self, parent: QObject | None = None, *, async_cost: int = ASYNC_COST) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.async_cost = async_cost
        self._input = presets.WORKED_EXAMPLE[None].copy()
        self._layers: list[LayerSpec] = worked_example_layers()
        self.selected_layer = 0
        self.selected_filter = 0
        self.selected_in_channel = 0
        self.selected_input_channel = 0
        self.selection: Selection | None = None
        self._statuses: list[LayerStatus] = validate(self._layers, self._input.shape)
        self.results = Results(
            [self._input], list(self._statuses), 0, stats=[map_stats(self._input)]
        )
        self._generation = 0
        self._dirty_from: int | None = 0
        self._unpublished_from: int | None = None
        # Whether the input itself changed since the last publication: maps[0] must be
        # redrawn only then (a layer edit leaves maps[:index+1] as they were).
        self._input_dirty = True
        self._dirty_region: Any = "full"
        self._dirty_filters: Any = "full"
        self._busy = False
        self._closing = False
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._jobs: set[_ComputeJob] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._recompute)
        self._inexact_from: int | None = None
        self._refine_timer = QTimer(self)
        self._refine_timer.setSingleShot(True)
        self._refine_timer.setInterval(REFINE_AFTER_MS)
        self._refine_timer.timeout.connect(self._refine)
        self.recompute_now()

    # ------------------------------------------------------------------ read access
    @property
    def input(self) -> np.ndarray:
        """The input ``(C, H, W)`` float32 (do not mutate: apply_input replaces it)."""
        return self._input

    @property
    def layers(self) -> list[LayerSpec]:
        """The layer specs (do not mutate: use commands)."""
        return self._layers

    @property
    def statuses(self) -> list[LayerStatus]:
        """One status per layer for the current input shape (shape or error)."""
        return self._statuses

    def layer(self, index: int) -> LayerSpec:
        return self._layers[index]

    def in_shape(self, index: int) -> tuple[int, int, int] | None:
        """Input shape of layer ``index``, or None if an earlier layer is invalid."""
        if index == 0:
            return tuple(self._input.shape)  # type: ignore[return-value]
        st = self._statuses[index - 1]
        return None if st.error else st.shape

    def param_count(self, index: int) -> int:
        return layer_param_count(self._layers[index])

    @property
    def busy(self) -> bool:
        return self._busy

    # ------------------------------------------------------------------ state changes
    # Called by commands only (they make every edit undoable).
    def apply_input(self, new: np.ndarray, region: tuple[int, int, int, int] | None = None) -> None:
        """Replace the input ``(C, H, W)``; shape changes revalidate the stack.

        ``region`` (rows/cols, inclusive) says only those cells changed (fast path)."""
        new = np.ascontiguousarray(new, dtype=np.float32)
        shape_changed = new.shape != self._input.shape
        self._input = new
        if shape_changed:
            self.selection = None
            self.selected_input_channel = min(self.selected_input_channel, new.shape[0] - 1)
            self._revalidate()
        self._mark_dirty(0, None if shape_changed else region, input_changed=True)
        if shape_changed:
            self.changed.emit(Change("input_shape"))
        else:
            self.changed.emit(Change("input", 0, region))

    def apply_layer(self, index: int, spec: LayerSpec) -> None:
        """Replace one layer's spec (weights or config)."""
        old = self._layers[index]
        self._layers[index] = spec
        cfg_changed = old.config != spec.config or old.enabled != spec.enabled
        if cfg_changed or _shape(old.weight) != _shape(spec.weight):
            self._revalidate()
            self._clamp_selection()
            self._mark_dirty(index)
        else:
            self._mark_dirty(index, filters=(index, _changed_filters(old, spec)))
        self.changed.emit(Change("layer", index))

    def apply_layers(
        self, layers: list[LayerSpec], first: int = 0, selected: int | None = None
    ) -> None:
        """Replace the whole stack (structure edits); ``first`` = first layer affected."""
        self._layers = layers
        if selected is not None:
            self.selected_layer = selected
        self._revalidate()
        self._clamp_selection()
        self.selection = None
        self._mark_dirty(first)
        self.changed.emit(Change("layers", first))

    def apply_document(self, x: np.ndarray, layers: list[LayerSpec]) -> None:
        """Replace everything (open file / new)."""
        self._input = np.ascontiguousarray(x, dtype=np.float32)
        self._layers = layers
        self.selected_layer = 0
        self.selected_filter = self.selected_in_channel = self.selected_input_channel = 0
        self.selection = None
        self._revalidate()
        self._mark_dirty(0, input_changed=True)
        self.changed.emit(Change("document"))

    # ------------------------------------------------------------------ intents (undoable)
    # Widgets call these; each validates, builds one undo command and pushes it.
    def _push(self, command: Any) -> None:
        self.undo_stack.push(command)

    def set_input(
        self,
        new: np.ndarray,
        text: str = "Change input",
        region: tuple[int, int, int, int] | None = None,
    ) -> None:
        """Replace the input; conv weights follow a channel-count change (one undo step)."""
        from cnn_explorer.explorer.commands import SetInputCommand, SetLayersCommand

        new = _check_input(new)
        if new.shape == self._input.shape and np.array_equal(new, self._input, equal_nan=True):
            return
        if new.shape[0] == self._input.shape[0]:
            self._push(SetInputCommand(self, self._input, new, text, region=region))
            return
        conformed = self.conformed_layers(self._layers, new.shape)
        self.undo_stack.beginMacro(text)
        self._push(SetInputCommand(self, self._input, new, text))
        if any(a is not b for a, b in zip(conformed, self._layers, strict=True)):
            old = [s.copy() for s in self._layers]
            self._push(SetLayersCommand(self, old, conformed, "Match channels"))
        self.undo_stack.endMacro()

    def set_cell(self, channel: int, row: int, col: int, value: float) -> None:
        """Set one input cell (one undo step)."""
        new = self._input.copy()
        new[channel, row, col] = value
        self.set_input(new, f"Set input[{channel},{row},{col}] = {value:g}", (row, row, col, col))

    def set_block(self, channel: int, row: int, col: int, block: np.ndarray) -> bool:
        """Paste a 2-D ``block`` at ``(row, col)``, clipped to the grid. True if clipped."""
        _, h, w = self._input.shape
        bh, bw = min(block.shape[0], h - row), min(block.shape[1], w - col)
        new = self._input.copy()
        new[channel, row : row + bh, col : col + bw] = block[:bh, :bw]
        self.set_input(new, f"Paste {bh}×{bw} block", (row, row + bh - 1, col, col + bw - 1))
        return (bh, bw) != block.shape

    def resize_input(self, rows: int, cols: int) -> None:
        """Change the grid size keeping the overlapping values (new cells are 0)."""
        rows, cols = max(1, min(rows, MAX_SIDE)), max(1, min(cols, MAX_SIDE))
        c = self._input.shape[0]
        new = np.zeros((c, rows, cols), np.float32)
        h, w = min(rows, self._input.shape[1]), min(cols, self._input.shape[2])
        new[:, :h, :w] = self._input[:, :h, :w]
        self.set_input(new, f"Resize input to {rows}×{cols}")

    def set_channels(self, n: int) -> None:
        """1 (grayscale) or 3 (RGB): RGB copies gray to all channels, gray averages RGB."""
        x = self._input
        if n == x.shape[0]:
            return
        new = np.repeat(x[:1], 3, axis=0) if n == 3 else x.mean(axis=0, keepdims=True)
        self.set_input(new, "Use RGB input" if n == 3 else "Use grayscale input")

    # Paint strokes: the input changes live (one recompute per event-loop pass), and the
    # whole stroke becomes one undo step on release.
    def begin_stroke(self) -> None:
        self._stroke_old = self._input

    def paint(self, channel: int, cells: list[tuple[int, int]], value: float) -> None:
        if getattr(self, "_stroke_old", None) is None:
            self.begin_stroke()
        _, h, w = self._input.shape
        cells = [(r, c) for r, c in cells if 0 <= r < h and 0 <= c < w]
        if not cells or all(self._input[channel, r, c] == value for r, c in cells):
            return
        new = self._input.copy()
        for r, c in cells:
            new[channel, r, c] = value
        rows = [r for r, _ in cells]
        cols = [c for _, c in cells]
        self._stroke_region = _union(
            getattr(self, "_stroke_region", None), (min(rows), max(rows), min(cols), max(cols))
        )
        self.apply_input(new, (min(rows), max(rows), min(cols), max(cols)))

    def end_stroke(self) -> None:
        from cnn_explorer.explorer.commands import SetInputCommand

        old = getattr(self, "_stroke_old", None)
        self._stroke_old = None
        if old is not None and not np.array_equal(old, self._input, equal_nan=True):
            self._push(
                SetInputCommand(
                    self,
                    old,
                    self._input,
                    "Paint stroke",
                    applied=True,
                    region=getattr(self, "_stroke_region", None),
                )
            )
        self._stroke_region = None

    def set_layer(
        self, index: int, spec: LayerSpec, text: str, merge_key: str | None = None
    ) -> None:
        """Replace layer ``index``; later convs follow a filter-count change."""
        from cnn_explorer.explorer.commands import SetLayerCommand, SetLayersCommand

        old = self._layers[index]
        if old.same_values(spec):
            return
        if (
            spec.kind == "conv"
            and spec.weight is not None
            and old.weight is not None
            and (spec.weight.shape[0] != old.weight.shape[0])
        ):
            new_layers = [s.copy() for s in self._layers]
            new_layers[index] = spec
            new_layers = self.conformed_layers(new_layers, self._input.shape)
            self._push(
                SetLayersCommand(
                    self, [s.copy() for s in self._layers], new_layers, text, index, index
                )
            )
            return
        self._push(SetLayerCommand(self, index, old.copy(), spec.copy(), text, merge_key))

    def update_config(self, index: int, **changes: Any) -> None:
        """Change layer parameters (kernel size keeps existing weights)."""
        spec = replace_config(self._layers[index], **changes)
        keys = ", ".join(f"{k}={v}" for k, v in changes.items())
        self.set_layer(index, spec, f"Layer {index + 1}: {keys}")

    def set_enabled(self, index: int, enabled: bool) -> None:
        spec = self._layers[index].copy()
        spec.enabled = enabled
        self.set_layer(index, spec, f"{'Enable' if enabled else 'Disable'} layer {index + 1}")

    def set_kernel(self, index: int, filt: int, in_ch: int, kernel: np.ndarray, text: str) -> None:
        """Write a 2-D kernel into weight[filt, in_ch] (resizing the layer's kernel size)."""
        spec = self._layers[index]
        kernel = np.asarray(kernel, np.float32)
        if tuple(spec.config["kernel"]) != kernel.shape:
            spec = replace_config(spec, kernel=[int(kernel.shape[0]), int(kernel.shape[1])])
        else:
            spec = spec.copy()
        assert spec.weight is not None
        spec.weight[filt, in_ch] = kernel
        self.set_layer(index, spec, text)

    def set_weight(self, index: int, filt: int, in_ch: int, r: int, c: int, value: float) -> None:
        spec = self._layers[index].copy()
        assert spec.weight is not None
        spec.weight[filt, in_ch, r, c] = value
        self.set_layer(index, spec, f"Set weight[{filt},{in_ch},{r},{c}] = {value:g}")

    def set_bias(self, index: int, filt: int, value: float) -> None:
        spec = self._layers[index].copy()
        assert spec.bias is not None
        spec.bias[filt] = value
        self.set_layer(
            index, spec, f"Set bias[{filt}] = {value:g}", merge_key=f"bias{index}:{filt}"
        )

    def set_weights(self, index: int, weight: np.ndarray, text: str) -> None:
        """Replace the whole weight of a conv (random init, normalise all)."""
        spec = self._layers[index].copy()
        spec.weight = np.ascontiguousarray(weight, np.float32)
        self.set_layer(index, spec, text)

    def _set_stack(self, layers: list[LayerSpec], text: str, first: int, select: int) -> None:
        from cnn_explorer.explorer.commands import SetLayersCommand

        layers = self.conformed_layers(layers, self._input.shape)
        old = [s.copy() for s in self._layers]
        self._push(SetLayersCommand(self, old, layers, text, first, select))

    def add_layer(self, spec: LayerSpec, at: int | None = None) -> None:
        """Insert ``spec`` at ``at`` (default: after the selected layer, or at the end)."""
        n = len(self._layers)
        if at is None:
            at = self.selected_layer + 1 if n else 0
        at = max(0, min(at, n))
        if spec.kind == "conv" and spec.weight is not None:
            shape = self.in_shape(at) if at < n or n == 0 else self._out_shape(n - 1)
            if shape is not None and spec.weight.shape[1] != shape[0]:
                w = presets.random_kernel(
                    (spec.weight.shape[0], shape[0], *spec.weight.shape[2:]), at
                )
                spec = spec.copy()
                spec.weight = w
        layers = [s.copy() for s in self._layers]
        layers.insert(at, spec)
        self._set_stack(layers, f"Add {spec.title}", at, at)

    def _out_shape(self, index: int) -> tuple[int, ...] | None:
        st = self._statuses[index]
        return None if st.error else st.shape

    def remove_layer(self, index: int) -> None:
        layers = [s.copy() for s in self._layers]
        spec = layers.pop(index)
        self._set_stack(layers, f"Remove {spec.title}", index, max(0, index - 1))

    def duplicate_layer(self, index: int) -> None:
        layers = [s.copy() for s in self._layers]
        layers.insert(index + 1, layers[index].copy())
        self._set_stack(layers, f"Duplicate {layers[index].title}", index + 1, index + 1)

    def move_layer(self, src: int, dst: int) -> None:
        """Move layer ``src`` so it ends up at index ``dst``."""
        n = len(self._layers)
        if not (0 <= src < n and 0 <= dst < n) or src == dst:
            return
        layers = [s.copy() for s in self._layers]
        spec = layers.pop(src)
        layers.insert(dst, spec)
        self._set_stack(layers, f"Move {spec.title}", min(src, dst), dst)

    def new_document(self, x: np.ndarray, layers: list[LayerSpec], text: str) -> None:
        from cnn_explorer.explorer.commands import SetDocumentCommand

        x = _check_input(x)
        layers = self.conformed_layers(layers, x.shape)
        old = (self._input, [s.copy() for s in self._layers])
        self._push(SetDocumentCommand(self, old, (x, layers), text))

    # ------------------------------------------------------------------ selection (not undoable)
    def select_layer(self, index: int, filt: int | None = None, in_ch: int | None = None) -> None:
        """Select the layer the kernel editor and parameter form show."""
        self.selected_layer = max(0, min(index, len(self._layers) - 1))
        if filt is not None:
            self.selected_filter = filt
        if in_ch is not None:
            self.selected_in_channel = in_ch
        self._clamp_selection()
        self.changed.emit(Change("selection", self.selected_layer))

    def select_input_channel(self, channel: int) -> None:
        self.selected_input_channel = max(0, min(channel, self._input.shape[0] - 1))
        self.changed.emit(Change("selection", self.selected_layer))

    def select_cell(self, sel: Selection | None) -> None:
        """Select an output cell (receptive field + explanation follow)."""
        if sel is not None and not self._valid_cell(sel):
            sel = None
        self.selection = sel
        self.changed.emit(Change("cell", -1 if sel is None else sel.map_index))

    def _valid_cell(self, sel: Selection) -> bool:
        maps = self.results.maps
        if not 0 <= sel.map_index < len(maps):
            return False
        c, h, w = maps[sel.map_index].shape
        return 0 <= sel.channel < c and 0 <= sel.row < h and 0 <= sel.col < w

    def _clamp_selection(self) -> None:
        if not self._layers:
            self.selected_layer = 0
            return
        self.selected_layer = max(0, min(self.selected_layer, len(self._layers) - 1))
        spec = self._layers[self.selected_layer]
        if spec.weight is not None:
            self.selected_filter = max(0, min(self.selected_filter, spec.weight.shape[0] - 1))
            self.selected_in_channel = max(
                0, min(self.selected_in_channel, spec.weight.shape[1] - 1)
            )

    # ------------------------------------------------------------------ derived values
    def receptive_field(self, sel: Selection) -> list[Any]:
        """Regions (one per map 0..sel.map_index-1) that feed the selected cell."""
        return receptive_regions(self._layers, self.results.maps, sel)

    def explain(self, sel: Selection) -> str:
        """The arithmetic of the selected cell with the current numbers."""
        return explain_cell_text(self._layers, self.results.maps, sel)

    def trace(self, sel: Selection) -> list[Selection]:
        """Cells the selected value came from one to one: through activations to the same
        cell, through a max pool to its winner (earliest last)."""
        return explain_trace(self._layers, self.results.maps, sel)[1]

    def conformed_layers(
        self, layers: list[LayerSpec], in_shape: tuple[int, ...]
    ) -> list[LayerSpec]:
        """Copy of ``layers`` whose conv weights match the channels reaching them.

        When the input goes from 1 to 3 channels (or a conv before changes its filter
        count), a later conv's weight gains channels (copies of its first channel) or loses
        its last ones, so the stack stays computable instead of failing on a mismatch.
        """
        out: list[LayerSpec] = []
        shape: tuple[int, ...] | None = tuple(in_shape)
        for spec in layers:
            s = spec
            if shape is not None and spec.kind == "conv" and spec.weight is not None:
                cin, w = shape[0], spec.weight
                if w.shape[1] != cin:
                    s = spec.copy()
                    if w.shape[1] > cin:
                        s.weight = w[:, :cin].copy()
                    else:
                        extra = np.repeat(w[:, :1], cin - w.shape[1], axis=1)
                        s.weight = np.concatenate([w, extra], axis=1)
            out.append(s)
            if shape is not None:
                st = validate([s], shape)[0]
                shape = None if st.error else st.shape
        return out

    # ------------------------------------------------------------------ recompute
    def _revalidate(self) -> None:
        self._statuses = validate(self._layers, self._input.shape)

    def _mark_dirty(
        self,
        first_layer: int,
        region: tuple[int, int, int, int] | None = None,
        filters: tuple[int, frozenset[int]] | None = None,
        input_changed: bool = False,
    ) -> None:
        """Recompute from layer ``first_layer`` (maps[first_layer] is its input).

        ``region`` (input rows/cols, inclusive) marks an edit of a few input cells, which
        can be patched incrementally; anything else needs a forward pass.
        """
        self._input_dirty |= input_changed
        d = self._dirty_from
        pending = d is not None
        self._dirty_from = first_layer if d is None else min(d, first_layer)
        curf = self._dirty_filters
        if filters is None or (pending and curf is None) or curf == "full":
            self._dirty_filters = "full"
        elif isinstance(curf, tuple):
            same = curf[0] == filters[0]
            self._dirty_filters = (curf[0], curf[1] | filters[1]) if same else "full"
        else:
            self._dirty_filters = filters
        cur = self._dirty_region
        if region is None or first_layer != 0 or (pending and cur is None) or cur == "full":
            self._dirty_region = "full"
        elif isinstance(cur, tuple):
            self._dirty_region = (
                min(cur[0], region[0]),
                max(cur[1], region[1]),
                min(cur[2], region[2]),
                max(cur[3], region[3]),
            )
        else:
            self._dirty_region = region
        # A job already in flight computes the state before this edit: make its result
        # stale now, or it would be published for a moment after the edit.
        self._generation += 1
        if not self._closing:
            self._timer.start()

    def recompute_now(self) -> None:
        """Compute synchronously (tests, screenshots, start-up)."""
        self._timer.stop()
        self._recompute(force_sync=True)

    def _recompute(self, force_sync: bool = False) -> None:
        if self._dirty_from is None or self._closing:
            return
        with single_blas_thread():
            self._recompute_dirty(force_sync)

    def _recompute_dirty(self, force_sync: bool) -> None:
        first = self._dirty_from
        region = self._dirty_region
        filt = self._dirty_filters
        self._dirty_from = None
        self._dirty_region = None
        self._dirty_filters = None
        # A job still in flight will be discarded as stale: cover what it covered too.
        if self._unpublished_from is not None:
            first = min(first, self._unpublished_from)
            region = filt = "full"
        self._unpublished_from = first
        self._generation += 1
        gen = self._generation
        prev = self.results.maps
        statuses = list(self._statuses)
        n_valid = next((i for i, s in enumerate(statuses) if s.error), len(statuses))
        first = min(first, len(prev) - 1, n_valid)
        if isinstance(region, tuple) and self._can_increment(prev, n_valid):
            try:
                out: object = _compute_incremental(
                    self._layers[:n_valid],
                    list(prev),
                    list(self.results.stats),
                    self._input,
                    region,
                )
            except Exception as exc:
                out = exc
            self._accept(gen, out, 0, statuses)
            return
        prev_stats = list(self.results.stats)
        shown_first = first  # `first` moves on below when the filter path patches maps
        channels: dict[int, frozenset[int]] = {}
        if (
            isinstance(filt, tuple)
            and filt[0] < n_valid
            and first == filt[0]
            and self._can_increment(prev, n_valid, cells=False)
        ):
            try:
                filters = sorted(filt[1])
                prev, prev_stats, first, old_in = _compute_filters(
                    self._layers[:n_valid], list(prev), prev_stats, filt[0], filters
                )
                channels = {k: frozenset(filters) for k in range(filt[0] + 1, first + 1)}
                if first < n_valid and old_in is not None:
                    spec = self._layers[first]
                    if _delta_through_conv(
                        spec, prev, prev_stats, self._input, first, filters, old_in
                    ):
                        self._mark_inexact(first)
                        first += 1
            except Exception as exc:
                self._accept(gen, exc, 0, statuses)
                return
            if first >= n_valid:  # only channel-wise layers followed: done
                self._accept(gen, (prev, prev_stats), self._first_map(filt[0]), statuses, channels)
                return
        job = (
            [s.copy() for s in self._layers],
            statuses,
            list(prev),
            prev_stats,
            first,
            self._input,
        )
        cost = estimate_cost(self._layers, statuses, self._input.shape, first)
        if force_sync or cost < self.async_cost:
            try:
                out = _compute(*job)
            except Exception as exc:
                out = exc
            self._accept(gen, out, self._first_map(shown_first), statuses, channels)
            return
        runnable = _ComputeJob(gen, job)
        published = (self._first_map(shown_first), statuses, channels)
        runnable.signals.done.connect(
            lambda g, r, p=published, rn=runnable: self._on_job_done(g, r, *p)
        )
        self._pool.clear()  # queued jobs are stale now: never start them
        self._jobs.add(runnable)
        self._set_busy(True)
        self._pool.start(runnable)

    def _mark_inexact(self, layer: int) -> None:
        """Layer ``layer``'s output was updated by difference: recompute it exactly once
        the edits pause (so the numbers shown at rest are a plain forward pass's)."""
        cur = self._inexact_from
        self._inexact_from = layer if cur is None else min(cur, layer)
        self._refine_timer.start()

    def _refine(self) -> None:
        if self._inexact_from is None or self._closing:
            return
        if self._dirty_from is not None or self._busy:
            self._refine_timer.start()  # still editing: wait for the next pause
            return
        first, self._inexact_from = self._inexact_from, None
        self._mark_dirty(first)

    def _first_map(self, first_layer: int) -> int:
        """The first map that may differ when layers from ``first_layer`` on recompute."""
        return 0 if self._input_dirty else first_layer + 1

    def _can_increment(self, prev: list[np.ndarray], n_valid: int, cells: bool = True) -> bool:
        """Whether the last results can be patched in place: for an input-cell edit
        (``cells``: every layer must compute from a crop) or for a one-filter edit."""
        if self._busy or self._pool.activeThreadCount() or len(prev) != n_valid + 1:
            return False
        if len(self.results.stats) != len(prev) or prev[0].shape != self._input.shape:
            return False
        shapes_ok = all(
            tuple(m.shape) == st.shape for m, st in zip(prev[1:], self._statuses, strict=False)
        )
        if not cells:
            return shapes_ok
        return shapes_ok and all(supports_incremental(s) for s in self._layers[:n_valid])

    def _on_job_done(
        self,
        gen: int,
        result: object,
        first: int,
        statuses: list[LayerStatus],
        channels: dict[int, frozenset[int]],
    ) -> None:
        if gen == self._generation:
            self._jobs.clear()  # every older job has finished or was dropped from the queue
            self._set_busy(False)
            self._accept(gen, result, first, statuses, channels)

    def _accept(
        self,
        gen: int,
        result: object,
        first: int,
        statuses: list[LayerStatus],
        channels: dict[int, frozenset[int]] | None = None,
    ) -> None:
        if gen != self._generation or self._closing:
            return  # stale: a newer edit is already being computed
        if isinstance(result, Exception):
            self.compute_failed.emit(f"Could not compute the network: {result}")
            maps, stats = [self._input], [map_stats(self._input)]
            notes = [str(result)]
            first, channels = 0, None
        else:
            maps, stats = result  # type: ignore[misc]
            notes = stats_notes(stats)
        self._unpublished_from = None
        self._input_dirty = False
        self.results = Results(maps, statuses, gen, first, notes, stats, channels or {})
        if self.selection is not None and not self._valid_cell(self.selection):
            self.selection = None
            self.changed.emit(Change("cell", -1))
        self.results_ready.emit(self.results)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    def wait_idle(self, msecs: int = 30_000) -> None:
        """Block until background work is done (shutdown, tests, screenshots)."""
        self._pool.waitForDone(msecs)

    def shutdown(self) -> None:
        """Stop recomputing and wait for a running job (clean close)."""
        self._closing = True
        self._timer.stop()
        self._refine_timer.stop()
        self._pool.clear()
        self._pool.waitForDone(10_000)


def _shape(a: np.ndarray | None) -> tuple[int, ...] | None:
    return None if a is None else a.shape


def _check_input(x: np.ndarray) -> np.ndarray:
    """Validate an input array: ``(C, H, W)`` with C in {1, 3} and sides in 1..MAX_SIDE."""
    a = np.asarray(x)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"input must be (1|3, H, W), got shape {a.shape}")
    if not (1 <= a.shape[1] <= MAX_SIDE and 1 <= a.shape[2] <= MAX_SIDE):
        raise ValueError(f"input sides must be 1..{MAX_SIDE}, got {a.shape[1]}×{a.shape[2]}")
    return np.ascontiguousarray(a, dtype=np.float32)


def replace_config(spec: LayerSpec, **changes: Any) -> LayerSpec:
    """A copy of ``spec`` with config keys updated; conv weights follow kernel/filters."""
    new = spec.copy()
    new.config.update(changes)
    if spec.kind == "conv" and new.weight is not None:
        kh, kw = new.config["kernel"]
        w = presets.resize_kernel(new.weight, kh, kw)
        o = int(new.config["filters"])
        if o != w.shape[0]:
            if o < w.shape[0]:
                w = w[:o]
            else:
                extra = presets.random_kernel((o - w.shape[0], w.shape[1], kh, kw), seed=o)
                w = np.concatenate([w, extra], axis=0)
        new.weight = np.ascontiguousarray(w, dtype=np.float32)
        b = new.bias if new.bias is not None else np.zeros(0, np.float32)
        new.bias = np.concatenate([b[:o], np.zeros(max(0, o - b.shape[0]), np.float32)])
    return new


__all__ = [
    "Change",
    "Document",
    "LayerSpec",
    "Results",
    "Selection",
    "act_spec",
    "conv_spec",
    "pool_spec",
    "replace_config",
    "worked_example_layers",
]
