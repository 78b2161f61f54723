"""Activation maximisation: seeded (bit-reproducible), raises its objective, previews on
schedule, honours cancel; the regularisers' pieces."""

from __future__ import annotations

import numpy as np
import pytest
from insight_nets import relu_net

from cnn_explorer.insight.maximize import (
    MaximizeSettings,
    default_range,
    gaussian_blur,
    maximize,
    tv_gradient,
)
from cnn_explorer.insight.targets import CancelledError, InsightError, Target, run

SETTINGS = MaximizeSettings(steps=40, preview_every=10, seed=3)


def float32_net():
    return relu_net(11).astype(np.float32)


@pytest.mark.parametrize(
    "target",
    [Target(1, 2, reduce="mean"), Target(4, 1, reduce="mean"), Target(6, 0)],
    ids=["filter-1", "filter-2", "class"],
)
def test_maximisation_raises_the_objective_and_is_reproducible(target) -> None:
    net = float32_net()
    records = list(maximize(net, (1, 8, 8), target, SETTINGS))
    assert [r.done for r in records] == [10, 20, 30, 40]
    assert all(r.preview is not None and r.preview.shape == (1, 8, 8) for r in records)
    result = records[-1].result
    assert result.image.shape == (1, 8, 8) and result.image.dtype == np.float32
    assert result.value > result.start_value
    assert (result.image >= 0).all() and (result.image <= 1).all()
    again = run(maximize(net, (1, 8, 8), target, SETTINGS))
    np.testing.assert_array_equal(again.image, result.image)
    np.testing.assert_array_equal(again.history, result.history)
    other = run(maximize(net, (1, 8, 8), target, MaximizeSettings(steps=40, seed=4)))
    assert not np.array_equal(other.image, result.image)


def test_the_objective_rises_on_average_over_the_run() -> None:
    net = float32_net()
    result = run(maximize(net, (1, 8, 8), Target(4, 3, reduce="mean"), SETTINGS))
    first, last = result.history[:10].mean(), result.history[-10:].mean()
    assert last > first


def test_cancel_stops_without_a_result() -> None:
    net = float32_net()
    seen = []
    gen = maximize(net, (1, 8, 8), Target(6, 0), SETTINGS, cancel=lambda: len(seen) >= 1)
    for record in gen:
        seen.append(record)
    assert len(seen) == 1 and seen[0].result is None
    with pytest.raises(CancelledError):
        run(maximize(net, (1, 8, 8), Target(6, 0), SETTINGS, cancel=lambda: True))


def test_bad_settings_are_refused() -> None:
    net = float32_net()
    with pytest.raises(InsightError, match="steps"):
        run(maximize(net, (1, 8, 8), Target(6, 0), MaximizeSettings(steps=0)))
    with pytest.raises(InsightError, match="range"):
        run(maximize(net, (1, 8, 8), Target(6, 0), MaximizeSettings(value_range=(1, 1))))


def test_blur_keeps_a_constant_and_the_mass_and_tv_gradient_is_the_derivative() -> None:
    flat = np.full((1, 1, 5, 4), 0.3)
    np.testing.assert_allclose(gaussian_blur(flat, 1.0), flat)
    spike = np.zeros((1, 1, 9, 9))
    spike[0, 0, 4, 4] = 1
    blurred = gaussian_blur(spike, 1.0)
    assert blurred.sum() == pytest.approx(1.0) and blurred.max() < 0.5
    x = np.random.default_rng(0).random((1, 1, 4, 5))

    def tv(a: np.ndarray) -> float:
        return float((np.diff(a, axis=-2) ** 2).sum() + (np.diff(a, axis=-1) ** 2).sum())

    num = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        p, m = x.copy(), x.copy()
        p[idx] += 1e-6
        m[idx] -= 1e-6
        num[idx] = (tv(p) - tv(m)) / 2e-6
    np.testing.assert_allclose(tv_gradient(x), num, rtol=1e-6, atol=1e-8)


def test_default_range_is_the_datasets() -> None:
    assert default_range(None) == (0.0, 1.0)
    assert default_range(np.array([[-1.0, 2.0, np.nan]])) == (-1.0, 2.0)
    assert default_range(np.zeros((2, 2))) == (0.0, 1.0)
