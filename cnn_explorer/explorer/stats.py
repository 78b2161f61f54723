"""Per-channel statistics of the explorer's maps, kept up to date incrementally.

Every map on screen shows its min, max, mean and fraction of zeros; recomputing them over
32 maps of 512² after each edit would cost more than the edit, so the fast paths update
them by difference (:func:`update_stats`) and only the changed channels are recounted.
A map whose every cell is zero is *dead* (:attr:`MapStats.dead`, :func:`channel_flags`):
after a ReLU that means the unit does not fire at all on this input, which "zeros 100%"
alone does not say. :func:`histogram` gives the distribution of one map or of a filter's
weights on demand (finite values only, NaN/inf counted apart). NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class MapStats:
    """Per-channel statistics of one map ``(C, H, W)``.

    ``mins``/``maxs`` are over finite values (NaN/inf ignored; NaN when a channel has no
    finite value), ``sums`` float64, ``zeros`` counts exact zeros, ``nonfinite`` counts
    NaN/inf per channel, ``n`` is the number of cells per channel.
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

    @property
    def dead(self) -> np.ndarray:
        """``(C,)`` bool: channels whose every cell is exactly zero (a dead unit on this
        input). An empty map is never dead."""
        return (self.zeros == self.n) & (self.n > 0)

    def copy(self) -> MapStats:
        return MapStats(
            self.mins.copy(),
            self.maxs.copy(),
            self.sums.copy(),
            self.zeros.copy(),
            self.nonfinite.copy(),
            self.n,
        )

    def with_channels(self, channels: list[int], part: MapStats) -> MapStats:
        """A copy whose ``channels`` take the statistics of ``part`` (same order)."""
        new = self.copy()
        new.mins[channels] = part.mins
        new.maxs[channels] = part.maxs
        new.sums[channels] = part.sums
        new.zeros[channels] = part.zeros
        new.nonfinite[channels] = part.nonfinite
        return new


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


def channel_flags(st: MapStats, channel: int) -> list[str]:
    """Short warnings for one channel's tile, worst first: ``"3 NaN/inf"`` (shown in red)
    and ``"dead: all zeros"``; empty for a healthy map."""
    flags = []
    bad = int(st.nonfinite[channel])
    if bad:
        flags.append(f"{bad} NaN/inf")
    if bool(st.dead[channel]):
        flags.append("dead: all zeros")
    return flags


def dead_notes(stats: list[MapStats]) -> list[str]:
    """One sentence per layer output with dead channels (``"layer 2's output: channels 3,
    5 of 8 are all zeros (dead)"``); the input is never reported."""
    notes = []
    for i, st in enumerate(stats[1:], start=1):
        dead = np.flatnonzero(st.dead)
        if len(dead):
            which = ", ".join(map(str, dead))
            word = "channel" if len(dead) == 1 else "channels"
            notes.append(
                f"layer {i}'s output: {word} {which} of {len(st.dead)} "
                f"{'is' if len(dead) == 1 else 'are'} all zeros (dead)"
            )
    return notes


@dataclass(frozen=True)
class Histogram:
    """``counts (bins,)`` of the finite values between ``edges (bins + 1,)``, and how many
    values were NaN, +inf and −inf (never binned)."""

    counts: np.ndarray
    edges: np.ndarray
    nan: int = 0
    posinf: int = 0
    neginf: int = 0

    @property
    def nonfinite(self) -> int:
        return self.nan + self.posinf + self.neginf


def histogram(values: np.ndarray, bins: int = 32) -> Histogram:
    """Histogram of any array (a map ``(H, W)``, a filter ``(C, kh, kw)``, a whole layer's
    weights): ``bins`` equal bins over the finite range (one bin ``[v − 0.5, v + 0.5]``
    when every finite value is ``v``; ``[0, 1]`` when none is finite)."""
    if bins < 1:
        raise ValueError(f"a histogram needs at least 1 bin, not {bins}")
    a = np.asarray(values, np.float64).ravel()
    fin = np.isfinite(a)
    nan = int(np.isnan(a).sum())
    posinf = int(np.isposinf(a).sum())
    neginf = int(np.isneginf(a).sum())
    good = a[fin]
    if good.size == 0:
        lo, hi = 0.0, 1.0
    else:
        lo, hi = float(good.min()), float(good.max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(good, bins=bins, range=(lo, hi))
    return Histogram(counts.astype(np.int64), edges, nan, posinf, neginf)


def weight_histogram(
    weight: np.ndarray, filter_index: int | None = None, bins: int = 32
) -> Histogram:
    """Histogram of a conv layer's weights ``(O, I, kh, kw)``, or of one filter's."""
    w = np.asarray(weight)
    if filter_index is not None:
        if not 0 <= filter_index < w.shape[0]:
            raise IndexError(f"filter {filter_index} does not exist: the layer has {w.shape[0]}")
        w = w[filter_index]
    return histogram(w, bins)


def stats_notes(stats: list[MapStats]) -> list[str]:
    """One sentence per map that contains NaN or infinite values."""
    notes = []
    for i, st in enumerate(stats):
        bad = int(st.nonfinite.sum())
        if bad:
            name = "the input" if i == 0 else f"layer {i}'s output"
            notes.append(f"{name} contains {bad} NaN/infinite value{'s' if bad > 1 else ''}")
    return notes
