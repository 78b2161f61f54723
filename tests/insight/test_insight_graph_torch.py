"""Grad-CAM and saliency on the imported ResNet-style ONNX fixture equal torch's on the
PyTorch module it was exported from (rebuilt exactly as
``tests/interchange/fixtures/make_fixtures.py`` builds it; its stored output proves the
rebuild is the same model). Grad-CAM at the last residual block's output, the default
node, as pytorch-grad-cam's formula: spatial mean of the gradient, weighted sum, ReLU,
bilinear upsampling with half-pixel centres."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.insight.gradcam import default_cam_node, grad_cam
from cnn_explorer.insight.saliency import input_gradient
from cnn_explorer.insight.targets import Target
from cnn_explorer.interchange.load import load_model

FIXTURES = Path(__file__).resolve().parents[1] / "interchange" / "fixtures"

pytestmark = pytest.mark.torch
TOL = {"rtol": 1e-4, "atol": 1e-9}


def _torch_resnet():  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    sys.path.insert(0, str(FIXTURES))
    import make_fixtures as mf

    torch.manual_seed(mf.SEED)
    model = mf.ResNetSmall()
    mf._randomise_bn(model, torch.Generator().manual_seed(mf.SEED))
    model.eval()
    with np.load(FIXTURES / "resnet.npz", allow_pickle=False) as f:
        x, y = f["input"], f["output"]
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    if not np.allclose(got, y, rtol=1e-5, atol=1e-6):
        pytest.skip("this torch builds a different model from the fixture's seed")
    return torch, model.double(), x


def test_grad_cam_and_saliency_equal_torch_on_the_resnet_fixture() -> None:
    torch, model, xs = _torch_resnet()
    graph = load_model(FIXTURES / "resnet.onnx").graph.astype(np.float64)
    x = xs[1].astype(np.float64)
    node = default_cam_node(graph, x.shape)
    assert node == "layer2/out/PRelu"
    saved: dict[str, object] = {}
    model.layer2.register_forward_hook(lambda _m, _i, out: saved.update(a=out))
    for k in range(4):
        xt = torch.from_numpy(x[None].copy()).requires_grad_(True)
        scores = model(xt)
        a = saved["a"]
        g_a, g_x = torch.autograd.grad(scores[0, k], [a, xt])
        w = g_a[0].mean(dim=(1, 2))
        cam = torch.relu((w[:, None, None] * a[0]).sum(0))
        heat = torch.nn.functional.interpolate(
            cam[None, None], size=x.shape[1:], mode="bilinear", align_corners=False
        )[0, 0]
        ours = grad_cam(graph, x, node, Target.class_score(graph, k))
        # the import folded batch norm into the convs in float32: agreement to ~1e-5
        np.testing.assert_allclose(ours.weights, w.detach().numpy(), **TOL)
        np.testing.assert_allclose(ours.heatmap, heat.detach().numpy(), **TOL)
        sal = input_gradient(graph, x, Target.class_score(graph, k)).gradient
        np.testing.assert_allclose(sal, g_x[0].numpy(), **TOL)
