"""Saliency and Grad-CAM / Grad-CAM++ against torch's answers stored in
``tests/golden/golden_insight.npz`` (made by ``tests/golden/make_insight_golden.py``): runs
without torch, a 1-channel non-square input, three layers, every class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.engine.network import Network
from cnn_explorer.insight.gradcam import grad_cam
from cnn_explorer.insight.saliency import input_gradient
from cnn_explorer.insight.targets import Target

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "golden_insight.npz"
TOL = {"rtol": 1e-9, "atol": 1e-12}


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def network(golden: dict[str, np.ndarray]) -> Network:
    params = {k.removeprefix("param/"): v for k, v in golden.items() if k.startswith("param/")}
    net = Network.from_dict(json.loads(str(golden["config"])))
    net.load_state_arrays(params)
    assert all(v.dtype == np.float64 for _, v in net.parameters())
    return net


def test_saliency_equals_torch_autograd(golden: dict[str, np.ndarray]) -> None:
    net = network(golden)
    for k in range(3):
        sal = input_gradient(net, golden["x"], Target.class_score(net, k))
        np.testing.assert_allclose(sal.gradient, golden[f"saliency/{k}"], **TOL)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
@pytest.mark.parametrize("layer", [1, 2, 4])
def test_grad_cam_equals_the_torch_reference(
    golden: dict[str, np.ndarray], method: str, layer: int
) -> None:
    net = network(golden)
    for k in range(3):
        res = grad_cam(net, golden["x"], layer, Target.class_score(net, k), method == "gradcam++")
        key = f"{method}/{layer}/{k}"
        np.testing.assert_allclose(res.weights, golden[f"{key}/weights"], **TOL)
        np.testing.assert_allclose(res.cam, golden[f"{key}/cam"], **TOL)
        np.testing.assert_allclose(res.heatmap, golden[f"{key}/heatmap"], **TOL)
        assert res.heatmap.shape == (10, 7)
