"""Saliency: the engine's input gradient against a central difference, gradient × input
completeness on a bias-free ReLU network, SmoothGrad's seeding and progress."""

from __future__ import annotations

import numpy as np
import pytest
from insight_nets import relu_net, smooth_net

from cnn_explorer.insight.saliency import input_gradient, saliency_map, smooth_grad
from cnn_explorer.insight.targets import CancelledError, InsightError, Target, run


def numerical_gradient(net, image: np.ndarray, target: Target, eps: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(image)
    for idx in np.ndindex(*image.shape):
        plus, minus = image.copy(), image.copy()
        plus[idx] += eps
        minus[idx] -= eps
        f_plus = target.values(net.forward(plus[None])[target.layer + 1])[0]
        f_minus = target.values(net.forward(minus[None])[target.layer + 1])[0]
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


@pytest.mark.parametrize(
    "target",
    [
        Target(6, 2),  # a class score
        Target(0, 1, cell=(2, 3)),  # one cell of the first conv
        Target(3, 2),  # a channel's sum after pooling and a second conv
        Target(4, 0, reduce="mean"),
    ],
    ids=["class", "cell", "channel-sum", "channel-mean"],
)
def test_saliency_equals_central_difference_on_a_non_square_two_channel_input(target) -> None:
    net = smooth_net(1, channels=2, size=(6, 5))
    image = np.random.default_rng(2).standard_normal((2, 6, 5))
    sal = input_gradient(net, image, target)
    assert sal.gradient.shape == image.shape
    np.testing.assert_allclose(
        sal.gradient, numerical_gradient(net, image, target), rtol=1e-6, atol=1e-8
    )
    expected_value = target.values(net.forward(image[None])[target.layer + 1])[0]
    assert sal.value == pytest.approx(expected_value)


def test_class_score_gradient_equals_the_networks_own_backward() -> None:
    net = smooth_net(3)
    image = np.random.default_rng(4).standard_normal((2, 6, 5))
    sal = input_gradient(net, image, Target.class_score(net, 1))
    net.forward(image[None])
    seed = np.zeros((1, 3))
    seed[0, 1] = 1
    np.testing.assert_array_equal(sal.gradient, net.backward(seed)[0])


def test_gradient_times_input_sums_to_the_score_of_a_bias_free_relu_network() -> None:
    """A ReLU/max-pool network without bias is positively homogeneous (f(tx) = t·f(x)), so
    by Euler's theorem Σ gradient × input is exactly the score."""
    net = relu_net(5, bias=False)
    image = np.random.default_rng(6).random((1, 8, 8))
    for k in range(3):
        sal = input_gradient(net, image, Target.class_score(net, k))
        total = saliency_map(sal.gradient, image, "grad_x_input").sum()
        assert total == pytest.approx(sal.value, rel=1e-9, abs=1e-12)


def test_heatmap_modes() -> None:
    g = np.array([[[1.0, -2.0]], [[-3.0, 0.5]]])  # (2, 1, 2)
    x = np.array([[[2.0, 1.0]], [[1.0, 4.0]]])
    np.testing.assert_array_equal(saliency_map(g, x, "abs"), [[3.0, 2.0]])
    np.testing.assert_array_equal(saliency_map(g, x, "signed"), [[-2.0, -1.5]])
    np.testing.assert_array_equal(saliency_map(g, x, "grad_x_input"), [[-1.0, 0.0]])
    with pytest.raises(InsightError):
        saliency_map(g, x, "nope")


def test_smoothgrad_is_seeded_reports_progress_and_tends_to_the_gradient() -> None:
    net = smooth_net(7)
    image = np.random.default_rng(8).standard_normal((2, 6, 5))
    target = Target.class_score(net, 0)
    records = list(smooth_grad(net, image, target, samples=10, sigma=0.1, seed=3, batch=4))
    assert [r.done for r in records] == [4, 8, 10, 10]
    a = records[-1].result
    b = run(smooth_grad(net, image, target, samples=10, sigma=0.1, seed=3, batch=4))
    np.testing.assert_array_equal(a.gradient, b.gradient)
    c = run(smooth_grad(net, image, target, samples=10, sigma=0.1, seed=4, batch=4))
    assert not np.array_equal(a.gradient, c.gradient)
    # Without noise it is the plain gradient.
    plain = input_gradient(net, image, target).gradient
    zero = run(smooth_grad(net, image, target, samples=3, sigma=0.0))
    np.testing.assert_allclose(zero.gradient, plain, rtol=1e-12, atol=1e-15)


def test_smoothgrad_cancel_stops_without_a_result() -> None:
    net = smooth_net(7)
    image = np.zeros((2, 6, 5))
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 1

    gen = smooth_grad(net, image, Target.class_score(net, 0), samples=20, batch=4, cancel=cancel)
    with pytest.raises(CancelledError):
        run(gen)


def test_bad_targets_are_refused_with_a_sentence() -> None:
    net = smooth_net(0)
    image = np.zeros((2, 6, 5))
    with pytest.raises(InsightError, match="channel 9"):
        input_gradient(net, image, Target(0, 9))
    with pytest.raises(InsightError, match="outside"):
        input_gradient(net, image, Target(0, 0, cell=(6, 0)))
    with pytest.raises(InsightError, match="layer 20"):
        input_gradient(net, image, Target(19, 0))
