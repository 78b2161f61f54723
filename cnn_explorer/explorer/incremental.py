"""The explorer's recompute: a plain forward pass and three fast paths.

* :func:`forward` recomputes every map from layer ``first`` on (``Network.forward_from``).
* :func:`patch_cells`: an edit of a few input cells changes only a small window of every
  later map; each layer recomputes just that window from a crop of its input (the crop is
  padded exactly as the layer pads and the layer runs with padding 0 on it).
* :func:`patch_filters`: a weight edit of some filters of a conv recomputes only those
  output channels and carries them through the channel-wise layers after it.
* :func:`delta_through_conv`: the conv after that updates by difference; it is linear in
  its input with every padding mode, so ``out += conv(new − old, weight[:, filters])``.

The fast paths round differently from a full pass (a product over a crop or one filter's
row takes another BLAS code path: measured up to 5e-5 on a 12→17 channel 5×5 conv), so the
model marks every map a fast path touched as inexact and recomputes it with
:func:`forward` once the edits pause. The patch functions write into the given maps in
place (the model guarantees no other thread reads them), copying a map first where it
aliases an earlier one. NumPy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnn_explorer.engine.errors import Stop
from cnn_explorer.explorer.specs import BATCHNORM_LISTS, LayerSpec, build_layer, build_network
from cnn_explorer.explorer.stats import MapStats, map_stats, update_stats

Region = tuple[int, int, int, int]
"""``(row0, row1, col0, col1)`` inclusive."""


def forward(
    layers: Sequence[LayerSpec],
    prev: Sequence[np.ndarray],
    prev_stats: Sequence[MapStats],
    first: int,
    x: np.ndarray,
    stop: Stop = None,
) -> tuple[list[np.ndarray], list[MapStats]]:
    """Every map of the (valid) ``layers`` for input ``x (C, H, W)``, reusing
    ``prev[:first + 1]`` and their statistics; ``first == 0`` is a plain forward pass.
    ``stop`` is polled before each layer (ForwardStopped when it says so)."""
    net = build_network(layers)
    start = min(first, len(layers))
    with np.errstate(all="ignore"):
        if start == 0 or len(prev) < start + 1 or len(prev_stats) < start + 1:
            start = 0
            maps = net.forward(x, stop=stop)
        else:
            maps = net.forward_from(start, list(prev[: start + 1]), stop=stop)
    maps = [np.asarray(m) for m in maps]
    stats = list(prev_stats[: start + 1]) if start else []
    stats += [map_stats(m) for m in maps[len(stats) :]]
    return maps, stats


def forward_cost(
    layers: Sequence[LayerSpec], out_shapes: Sequence[tuple[int, ...] | None], x_shape: tuple
) -> list[int]:
    """Rough multiply-adds of each layer (index ``i``: layer ``i``; an extra first entry
    for the input's statistics). Decides inline vs. thread pool; every map counts once more
    for its statistics."""
    costs = [int(np.prod(x_shape))]
    for spec, shape in zip(layers, out_shapes, strict=False):
        if shape is None:
            break
        n = int(np.prod(shape))
        if spec.kind == "conv" and spec.enabled and spec.weight is not None:
            n *= int(np.prod(spec.weight.shape[1:]))
        costs.append(n)
    return costs


# --------------------------------------------------------------------------- input cells
def supports_cells(spec: LayerSpec) -> bool:
    """True when a region of this layer's output can be recomputed from a crop."""
    if not spec.enabled or spec.kind in ("act", "maxpool", "avgpool", "batchnorm", "dropout"):
        return True
    return spec.kind == "conv" and spec.config.get("padding_mode", "zeros") == "zeros"


def _axis_out(lo: int, hi: int, k: int, s: int, d: int, p: int, n_out: int) -> tuple[int, int]:
    o0 = max(0, -((-(lo + p - d * (k - 1))) // s))
    o1 = min(n_out - 1, (hi + p) // s)
    return o0, o1


def output_region(spec: LayerSpec, region: Region, out_hw: tuple[int, int]) -> Region | None:
    """The output cells whose windows read any input cell of ``region`` (None if none)."""
    win = build_layer(spec).window()
    if win is None:
        return region
    t, _, left, _ = win.padding
    r0, r1 = _axis_out(
        region[0], region[1], win.kernel[0], win.stride[0], win.dilation[0], t, out_hw[0]
    )
    c0, c1 = _axis_out(
        region[2], region[3], win.kernel[1], win.stride[1], win.dilation[1], left, out_hw[1]
    )
    if r0 > r1 or c0 > c1:
        return None
    return r0, r1, c0, c1


def compute_region(spec: LayerSpec, x: np.ndarray, out: Region) -> np.ndarray:
    """Layer output cells ``out`` (all channels) from its full input ``x (C, H, W)``."""
    r0, r1, c0, c1 = out
    layer = build_layer(spec)
    win = layer.window()
    if win is None:
        return layer.forward(np.ascontiguousarray(x[:, r0 : r1 + 1, c0 : c1 + 1])).copy()
    t, _, left, _ = win.padding
    (kh, kw), (sh, sw), (dh, dw) = win.kernel, win.stride, win.dilation
    lo_r, hi_r = r0 * sh - t, r1 * sh - t + dh * (kh - 1)
    lo_c, hi_c = c0 * sw - left, c1 * sw - left + dw * (kw - 1)
    _, h, w = x.shape
    crop = x[:, max(0, lo_r) : min(h, hi_r + 1), max(0, lo_c) : min(w, hi_c + 1)]
    pads = ((0, 0), (max(0, -lo_r), max(0, hi_r + 1 - h)), (max(0, -lo_c), max(0, hi_c + 1 - w)))
    if any(p for pair in pads for p in pair):
        fill = -np.inf if spec.kind == "maxpool" else 0.0
        crop = np.pad(crop, pads, constant_values=fill)
    flat = spec.copy()
    flat.config["padding"] = 0
    return build_layer(flat).forward(np.ascontiguousarray(crop))


def patch_cells(
    layers: Sequence[LayerSpec],
    prev: list[np.ndarray],
    prev_stats: list[MapStats],
    x: np.ndarray,
    region: Region,
) -> tuple[list[np.ndarray], list[MapStats], dict[int, Region]]:
    """Update ``prev`` after input cells in ``region`` changed to ``x``'s, recomputing only
    the cells each layer's windows make depend on them. The third value maps each map
    that changed to the window (every channel) outside which it did not: views recolour
    only that (maps after the change dies out are in it with an empty window, ``r0 > r1``)."""
    maps = [x, *prev[1:]]
    r0, r1, c0, c1 = region
    old_in = prev[0][:, r0 : r1 + 1, c0 : c1 + 1]
    stats = [update_stats(prev_stats[0], x, old_in, x[:, r0 : r1 + 1, c0 : c1 + 1])]
    windows: dict[int, Region] = {0: region}
    reg: Region | None = region
    for i, spec in enumerate(layers[: len(maps) - 1]):
        out = maps[i + 1]
        if reg is not None:
            reg = output_region(spec, reg, out.shape[1:])
        if reg is None:  # nothing further changes
            stats += prev_stats[i + 1 : len(maps)]
            windows.update({k: (0, -1, 0, -1) for k in range(i + 1, len(maps))})
            break
        windows[i + 1] = reg
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
    return maps, stats, windows


# --------------------------------------------------------------------------- one filter
def changed_filters(old: LayerSpec, new: LayerSpec) -> frozenset[int]:
    """Output channels of a conv whose weights or bias differ (same shapes)."""
    if old.weight is None or new.weight is None:
        return frozenset()
    same_w = (old.weight == new.weight) | (np.isnan(old.weight) & np.isnan(new.weight))
    diff = ~np.all(same_w, axis=(1, 2, 3))
    if old.bias is not None and new.bias is not None and old.bias.shape == new.bias.shape:
        diff |= ~((old.bias == new.bias) | (np.isnan(old.bias) & np.isnan(new.bias)))
    return frozenset(int(i) for i in np.flatnonzero(diff))


def patch_filters(
    layers: Sequence[LayerSpec],
    prev: list[np.ndarray],
    prev_stats: list[MapStats],
    index: int,
    filters: list[int],
) -> tuple[list[np.ndarray], list[MapStats], int, np.ndarray | None]:
    """Recompute only output channels ``filters`` of conv ``index`` and carry them through
    the channel-wise layers after it (activations, pools, batch norm, dropout). Returns the
    patched maps and stats, the index ``j`` of the first layer that still needs a full
    forward (a later conv mixes all channels) or ``len(layers)``, and the old values of the patched
    channels of ``maps[j]`` (that conv's input)."""
    maps, stats = list(prev), list(prev_stats)
    spec = layers[index]
    if not filters or not spec.enabled or spec.weight is None or spec.bias is None:
        return maps, stats, len(layers), None
    sub = spec.copy()
    sub.weight = np.ascontiguousarray(spec.weight[filters])
    sub.bias = np.ascontiguousarray(spec.bias[filters])
    sub.config["filters"] = len(filters)
    with np.errstate(all="ignore"):
        block = build_layer(sub).forward(maps[index])
    old = _write_channels(maps, stats, index + 1, filters, block)
    j = index + 1
    while j < len(layers):
        s = layers[j]
        if s.enabled and s.kind == "conv":
            return maps, stats, j, old
        if not s.enabled:
            maps[j + 1], stats[j + 1] = maps[j], stats[j]
        else:
            with np.errstate(all="ignore"):
                layer = build_layer(_channels_of(s, filters))
                block = layer.forward(np.ascontiguousarray(maps[j][filters]))
            old = _write_channels(maps, stats, j + 1, filters, block)
        j += 1
    return maps, stats, j, old


def _channels_of(spec: LayerSpec, filters: list[int]) -> LayerSpec:
    """``spec`` for channels ``filters`` of its input only: a batch norm keeps those
    channels' values; every other channel-wise layer is the same for any channel count."""
    if spec.kind != "batchnorm":
        return spec
    sub = spec.copy()
    for key in BATCHNORM_LISTS:
        sub.config[key] = [spec.config[key][f] for f in filters]
    return sub


def delta_through_conv(
    spec: LayerSpec,
    maps: list[np.ndarray],
    stats: list[MapStats],
    j: int,
    filters: list[int],
    old_in: np.ndarray,
) -> bool:
    """Update the output of conv ``j`` after channels ``filters`` of its input changed
    from ``old_in`` to ``maps[j][filters]``, in ``len(filters)/C`` of a full pass.

    Returns False (nothing written) when it does not apply: a disabled or non-conv layer,
    or NaN/inf anywhere involved (inf − inf: only a full pass gets NaN/inf right)."""
    if not spec.enabled or spec.kind != "conv" or spec.weight is None:
        return False
    if stats[j + 1].nonfinite.any():
        return False
    with np.errstate(all="ignore"):
        delta_in = maps[j][filters] - old_in
        if not np.isfinite(delta_in).all():
            return False
        sub = spec.copy()
        sub.weight = np.ascontiguousarray(spec.weight[:, filters])
        sub.config["bias"] = False
        delta_out = build_layer(sub).forward(delta_in)
        out = maps[j + 1]
        if any(np.may_share_memory(out, m) for m in maps[: j + 1]):
            out = out.copy()
            maps[j + 1] = out
        out += delta_out
    stats[j + 1] = map_stats(out)
    return True


def _write_channels(
    maps: list[np.ndarray],
    stats: list[MapStats],
    k: int,
    filters: list[int],
    block: np.ndarray,
) -> np.ndarray:
    """Store channels ``filters`` of map ``k`` (copying it first if it aliases an earlier
    map) and refresh their statistics. Returns their old values."""
    out = maps[k]
    if any(np.may_share_memory(out, m) for m in maps[:k]):
        out = out.copy()
        maps[k] = out
    old = out[filters]  # a copy (fancy indexing)
    out[filters] = block
    stats[k] = stats[k].with_channels(filters, map_stats(block))
    return old
