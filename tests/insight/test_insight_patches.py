"""Top patches per filter agree with a brute-force scan; dead units over a dataset."""

from __future__ import annotations

import numpy as np
import pytest
from insight_nets import relu_net

from cnn_explorer.insight.patches import top_patches
from cnn_explorer.insight.stats import dead_channels, dead_unit_rates
from cnn_explorer.insight.targets import CancelledError, InsightError, run


def brute_force(net, images: np.ndarray, layer: int, channel: int, k: int) -> list[tuple]:
    maps = net.forward(images)[layer + 1][:, channel]
    rows = []
    for i, m in enumerate(maps):
        flat = int(np.argmax(m))
        rows.append((-float(m.max()), i, divmod(flat, m.shape[1])))
    rows.sort(key=lambda t: (t[0], t[1]))
    out = []
    for neg, i, (r, c) in rows[:k]:
        mask = net.receptive_field(images.shape[1:], layer, r, c, channel)[0].mask
        rr, cc = np.nonzero(mask)
        patch = images[i][:, rr.min() : rr.max() + 1, cc.min() : cc.max() + 1]
        out.append((i, -neg, (r, c), patch))
    return out


@pytest.mark.parametrize(("layer", "channel"), [(0, 1), (1, 3), (2, 0), (4, 5)])
def test_top_patches_match_a_brute_force_scan(layer: int, channel: int) -> None:
    net = relu_net(3)
    images = np.random.default_rng(4).random((23, 1, 8, 8))
    images[7] = images[3]  # a tie: the earlier image ranks first
    records = list(top_patches(net, images, layer, channel, k=6, chunk=5))
    assert [r.done for r in records[:-1]] == [5, 10, 15, 20, 23]
    got = records[-1].result
    want = brute_force(net, images, layer, channel, 6)
    assert [p.index for p in got] == [w[0] for w in want]
    for p, (_, value, cell, patch) in zip(got, want, strict=True):
        assert p.value == pytest.approx(value, rel=1e-12)
        assert p.cell == cell
        np.testing.assert_array_equal(p.patch, patch)
        top, bottom, left, right = p.box
        assert p.patch.shape == (1, bottom - top, right - left)


def test_chunking_does_not_change_the_answer_and_cancel_stops() -> None:
    net = relu_net(8)
    images = np.random.default_rng(9).random((12, 1, 8, 8))
    a = run(top_patches(net, images, 4, 2, k=4, chunk=1))
    b = run(top_patches(net, images, 4, 2, k=4))
    assert [p.index for p in a] == [p.index for p in b]
    with pytest.raises(CancelledError):
        run(top_patches(net, images, 4, 2, cancel=lambda: True))
    with pytest.raises(InsightError):
        run(top_patches(net, images, 5, 0))  # a vector layer


def test_dead_units_flags_and_rates() -> None:
    net = relu_net(1)
    net.layers[0].params["bias"][2] = -100.0  # channel 2 never fires after the ReLU
    net.layers[0].params["bias"][0] = 100.0  # channel 0 always fires
    images = np.random.default_rng(2).random((9, 1, 8, 8))
    maps = net.forward(images)[2]
    flags = dead_channels(maps)
    assert flags.shape == (9, 4)
    assert flags[:, 2].all() and not flags[:, 0].any()
    assert dead_channels(maps[0]).shape == (4,)
    res = run(dead_unit_rates(net, images, 1, chunk=4))
    np.testing.assert_allclose(res.rates, flags.mean(axis=0))
    assert res.dead[2] and not res.dead[0]
    assert res.dead.tolist() == (flags.mean(axis=0) == 1).tolist()
    assert res.text().startswith(f"{res.dead.sum()} of 4 channels are dead on every image (")
    assert res.nonfinite.sum() == 0
    images[0, 0, 0, 0] = np.nan
    assert run(dead_unit_rates(net, images, 1)).nonfinite.sum() > 0
