"""Per-map statistics the explorer shows: the dead flag (a map all zeros), NaN/inf flags,
and histograms of a map or of a filter's weights."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_explorer.explorer.stats import (
    channel_flags,
    dead_notes,
    histogram,
    map_stats,
    update_stats,
    weight_histogram,
)


def test_a_fully_dead_map_is_flagged_and_a_partly_zero_one_is_not() -> None:
    a = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    a[1] = 0
    a[2, :2] = 0  # 40% zeros: not dead
    st = map_stats(a)
    assert st.dead.tolist() == [False, True, False]
    assert channel_flags(st, 1) == ["dead: all zeros"]
    assert channel_flags(st, 2) == []
    assert dead_notes([map_stats(a), st]) == [
        "layer 1's output: channel 1 of 3 is all zeros (dead)"
    ]
    b = a.copy()
    b[0] = 0
    assert dead_notes([st, map_stats(b)]) == [
        "layer 1's output: channels 0, 1 of 3 are all zeros (dead)"
    ]


def test_the_dead_flag_follows_incremental_updates() -> None:
    a = np.zeros((2, 3, 3), np.float32)
    st = map_stats(a)
    assert st.dead.all()
    old = a[:, :1, :1].copy()
    a[0, 0, 0] = 1.5
    st2 = update_stats(st, a, old, a[:, :1, :1].copy())
    assert st2.dead.tolist() == [False, True]
    assert st.dead.all()  # the old statistics are not changed


def test_nonfinite_cells_are_flagged_first() -> None:
    a = np.zeros((1, 2, 2), np.float32)
    a[0, 0, 0] = np.nan
    a[0, 1, 1] = np.inf
    st = map_stats(a)
    assert channel_flags(st, 0) == ["2 NaN/inf"]  # not all zero: the NaN is not a zero
    assert not st.dead[0]


def test_histogram_counts_finite_values_and_reports_the_rest() -> None:
    values = np.array([0.0, 0.5, 1.0, 1.0, np.nan, np.inf, -np.inf, np.inf])
    h = histogram(values, bins=4)
    assert h.counts.tolist() == [1, 0, 1, 2]
    np.testing.assert_allclose(h.edges, [0, 0.25, 0.5, 0.75, 1.0])
    assert (h.nan, h.posinf, h.neginf, h.nonfinite) == (1, 2, 1, 4)
    const = histogram(np.full((3, 3), 2.0), bins=2)
    assert const.counts.sum() == 9 and const.edges[0] < 2 < const.edges[-1]
    empty = histogram(np.array([np.nan]))
    assert empty.counts.sum() == 0 and empty.nan == 1
    with pytest.raises(ValueError):
        histogram(values, bins=0)


def test_weight_histogram_of_a_layer_or_one_filter() -> None:
    w = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)
    assert weight_histogram(w, bins=3).counts.sum() == 18
    one = weight_histogram(w, 1, bins=3)
    assert one.counts.sum() == 9 and one.edges[0] == 9
    with pytest.raises(IndexError):
        weight_histogram(w, 2)
