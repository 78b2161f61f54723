"""A bounded random-action run through the real window's widgets (the long soak is
``python -m cnn_explorer.bench.soak``): no uncaught exception, no Qt critical message, no
action blocking the GUI for 2 s, and every map bit-for-bit a plain forward pass whenever
the explorer is settled."""

from __future__ import annotations

import pytest

from cnn_explorer.bench.soak import RandomActions


@pytest.mark.qt_log_level_fail("CRITICAL")
@pytest.mark.parametrize("seed", range(3))
def test_random_actions_keep_every_map_exact(window, tmp_path, seed):
    run = RandomActions(window, seed, str(tmp_path), max_block_s=2.0)
    counts = run.run(400, check_every=50)
    assert all(counts.values()), counts  # every kind of action ran
