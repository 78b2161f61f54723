"""Grad-CAM and Grad-CAM++: a hand-computed tiny case, torch's autograd + interpolate as
the reference, 1-channel non-square inputs, and the upsampling."""

from __future__ import annotations

import numpy as np
import pytest
from insight_nets import relu_net

from cnn_explorer.engine.layers import Activation, Conv2D, Dense, Flatten, MaxPool2D
from cnn_explorer.engine.network import Network, with_classifier_head
from cnn_explorer.insight.gradcam import cam_layers, grad_cam, upsample_bilinear
from cnn_explorer.insight.targets import InsightError, Target


def hand_net() -> tuple[Network, np.ndarray]:
    """conv 1×1 (weights 1 and −1, no bias) → flatten → dense(12 → 2) on a 1×2×3 input.
    Class 0's dense row makes d score / d A = G0 for channel 0 and G1 for channel 1."""
    conv = Conv2D(1, 2, 1, bias=False, dtype=np.float64)
    conv.params["weight"][:] = np.array([1.0, -1.0]).reshape(2, 1, 1, 1)
    dense = Dense(12, 2, bias=False, dtype=np.float64)
    g0 = np.array([[1.0, 0, 0], [0, 0, 2.0]])  # mean 0.5
    g1 = np.array([[-3.0, 0, 0], [0, 0, 0]])  # mean -0.5
    dense.params["weight"][0] = np.concatenate([g0.ravel(), g1.ravel()])
    dense.params["weight"][1] = 0.1
    x = np.array([[[1.0, 0, 2.0], [0, 1.0, 0]]])
    return Network([conv, Flatten(), dense]), x


def test_grad_cam_equals_the_hand_computed_map() -> None:
    net, x = hand_net()
    res = grad_cam(net, x, 0, Target.class_score(net, 0))
    # weights (0.5, −0.5); A = (x, −x): ReLU(0.5·x + 0.5·x) = x.
    np.testing.assert_allclose(res.weights, [0.5, -0.5])
    np.testing.assert_allclose(res.cam, x[0])
    np.testing.assert_allclose(res.heatmap, x[0])  # same size: no resampling


def test_grad_cam_plus_plus_equals_the_hand_computed_map() -> None:
    net, x = hand_net()
    res = grad_cam(net, x, 0, Target.class_score(net, 0), plus=True)
    # channel 0: Σ A = 4; α = g²/(2g² + 4g³): 1/6 where g = 1, 4/40 where g = 2.
    # channel 1: its only gradient is negative, so its weight is 0.
    w0 = 1 / 6 + 2 * 0.1
    np.testing.assert_allclose(res.weights, [w0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(res.cam, w0 * x[0], rtol=1e-6)


def test_upsampling_uses_half_pixel_centres() -> None:
    np.testing.assert_allclose(
        upsample_bilinear(np.array([[0.0, 1.0]]), (1, 4)), [[0, 0.25, 0.75, 1]]
    )
    np.testing.assert_allclose(upsample_bilinear(np.array([[2.0]]), (3, 5)), np.full((3, 5), 2.0))


def nonsquare_net(seed: int = 0) -> Network:
    rng = np.random.default_rng(seed)
    convs = [
        Conv2D(1, 4, 3, padding=1, rng=rng),
        Activation("relu"),
        MaxPool2D(2),
        Conv2D(4, 6, 3, padding=1, rng=rng),
        Activation("relu"),
    ]
    net = with_classifier_head(convs, (1, 10, 7), 3, seed)
    return net.astype(np.float64)


def test_grad_cam_on_a_one_channel_non_square_input() -> None:
    net = nonsquare_net()
    x = np.random.default_rng(1).random((1, 10, 7))
    assert cam_layers(net, (1, 10, 7)) == [0, 1, 2, 3, 4]
    for layer in (1, 4):
        for plus in (False, True):
            res = grad_cam(net, x, layer, Target.class_score(net, 2), plus=plus)
            assert res.heatmap.shape == (10, 7)
            assert np.isfinite(res.heatmap).all() and (res.heatmap >= 0).all()
    # The first layer's maps have the input's size: no resampling at all.
    res = grad_cam(net, x, 1, Target.class_score(net, 0))
    np.testing.assert_array_equal(res.heatmap, res.cam)


def test_grad_cam_for_a_selected_unit_of_a_later_layer() -> None:
    net = relu_net(2)
    x = np.random.default_rng(3).random((1, 8, 8))
    res = grad_cam(net, x, 1, Target(4, 2, cell=(1, 1)))
    assert res.cam.shape == (8, 8) and res.heatmap.shape == (8, 8)


def test_grad_cam_refuses_a_vector_layer_or_a_target_before_it() -> None:
    net = relu_net(2)
    x = np.zeros((1, 8, 8))
    with pytest.raises(InsightError, match="maps"):
        grad_cam(net, x, 5, Target.class_score(net, 0))
    with pytest.raises(InsightError, match="after"):
        grad_cam(net, x, 4, Target(1, 0))


@pytest.mark.torch
@pytest.mark.parametrize("plus", [False, True], ids=["gradcam", "gradcam++"])
@pytest.mark.parametrize("layer", [1, 4])
def test_grad_cam_matches_a_torch_implementation(plus: bool, layer: int) -> None:
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    net = nonsquare_net(5)
    x = np.random.default_rng(6).random((1, 10, 7))
    c1, c2, dense = net.layers[0], net.layers[3], net.layers[-1]
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(dense.params["weight"].shape[1], 3),
    ).double()
    with torch.no_grad():
        for mod, lay in ((model[0], c1), (model[3], c2), (model[6], dense)):
            mod.weight.copy_(torch.from_numpy(lay.params["weight"]))
            mod.bias.copy_(torch.from_numpy(lay.params["bias"]))
    for k in range(3):
        features = model[: layer + 1](torch.from_numpy(x[None]))
        features.retain_grad()
        score = model[layer + 1 :](features)[0, k]
        score.backward()
        a, g = features.detach(), features.grad
        if plus:  # pytorch-grad-cam's GradCAMPlusPlus weights
            g2, g3 = g**2, g**3
            sum_a = a.sum(dim=(2, 3), keepdim=True)
            alpha = g2 / (2 * g2 + sum_a * g3 + 1e-7)
            alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
            weights = (torch.relu(g) * alpha).sum(dim=(2, 3))
        else:
            weights = g.mean(dim=(2, 3))
        cam = torch.relu((weights[:, :, None, None] * a).sum(dim=1, keepdim=True))
        up = functional.interpolate(cam, size=(10, 7), mode="bilinear", align_corners=False)
        res = grad_cam(net, x, layer, Target.class_score(net, k), plus=plus)
        np.testing.assert_allclose(res.weights, weights[0].numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(res.cam, cam[0, 0].numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(res.heatmap, up[0, 0].numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.torch
def test_upsampling_matches_torch_interpolate_for_odd_sizes() -> None:
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).random((3, 5))
    for size in ((7, 11), (3, 13), (9, 5), (2, 3)):
        ref = torch.nn.functional.interpolate(
            torch.from_numpy(a)[None, None], size=size, mode="bilinear", align_corners=False
        )[0, 0].numpy()
        np.testing.assert_allclose(upsample_bilinear(a, size), ref, rtol=1e-12, atol=1e-12)
