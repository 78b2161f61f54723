"""Insight on graphs (imported models): saliency equals central differences of the graph,
Grad-CAM at any node (a fan-out stem, a residual block's output) equals a NumPy reference
whose gradient is taken by central differences, a chain gives the same maps as the
Network it came from, and the committed ONNX fixtures (ResNet-style, VGG with batch norm,
SqueezeNet's concat and final Softmax) explain their class scores at the default node."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.engine.graph import Graph
from cnn_explorer.insight import jobs
from cnn_explorer.insight.gradcam import (
    cam_layers,
    default_cam_node,
    grad_cam,
    upsample_bilinear,
)
from cnn_explorer.insight.saliency import input_gradient, smooth_grad
from cnn_explorer.insight.targets import InsightError, Target, run
from cnn_explorer.interchange.load import load_model

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
from gradcheck import assert_gradient_close, numerical_gradient
from insight_nets import smooth_net
from test_graph import residual_graph

FIXTURES = Path(__file__).parents[1] / "interchange" / "fixtures"
EPS = 1e-6


def _image(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def _score(graph: Graph, target: Target, x: np.ndarray) -> float:
    return float(target.values(graph.forward(x[None])[str(target.layer)])[0])


def _reference_cam(
    graph: Graph, x: np.ndarray, node: str, target: Target, plus: bool = False
) -> np.ndarray:
    """Grad-CAM by hand: the node's map ``A`` and d target / d A by central differences
    (every consumer of ``node`` recomputed with forward_from), then the paper's formula."""
    tensors = graph.forward(x[None])
    a = tensors[node].copy()
    later = graph.consumers(node)

    def f() -> float:
        t = dict(tensors, **{node: a})
        for c in later:
            t = graph.forward_from(c, t)
        return float(target.values(t[str(target.layer)])[0])

    g = numerical_gradient(f, a)[0]
    a0 = a[0]
    if plus:
        alpha = g**2 / (2 * g**2 + a0.sum(axis=(1, 2))[:, None, None] * g**3 + 1e-7)
        w = (np.maximum(g, 0) * np.where(g != 0, alpha, 0)).sum(axis=(1, 2))
    else:
        w = g.mean(axis=(1, 2))
    cam = np.maximum((w[:, None, None] * a0).sum(axis=0), 0)
    return upsample_bilinear(cam, x.shape[1:])


def test_saliency_of_class_and_inner_cell_equals_central_differences() -> None:
    g = residual_graph()
    x = _image((3, 6, 6))
    for target in (Target.class_score(g, 1), Target("a_relu", 2, cell=(3, 1))):
        got = input_gradient(g, x, target).gradient
        xx = x.copy()
        numeric = numerical_gradient(lambda t=target, xx=xx: _score(g, t, xx), xx)
        assert_gradient_close(got, numeric, target.describe(g))


def test_smoothgrad_without_noise_is_the_gradient() -> None:
    g = residual_graph()
    x = _image((3, 6, 6))
    t = Target.class_score(g, 0)
    res = run(smooth_grad(g, x, t, samples=3, sigma=0.0))
    np.testing.assert_allclose(res.gradient, input_gradient(g, x, t).gradient, rtol=1e-12)


@pytest.mark.parametrize(("node", "plus"), [("stem", False), ("add", False), ("act", True)])
def test_grad_cam_at_any_node_equals_the_reference(node: str, plus: bool) -> None:
    g = residual_graph()
    x = _image((3, 6, 6))
    target = Target.class_score(g, 2)
    got = grad_cam(g, x, node, target, plus=plus)
    np.testing.assert_allclose(got.heatmap, _reference_cam(g, x, node, target, plus), atol=1e-7)


def test_chain_graph_gives_the_networks_maps() -> None:
    net = smooth_net()
    graph = Graph.from_network(net)
    x = _image((2, 6, 5))
    t_net, t_graph = Target.class_score(net, 1), Target.class_score(graph, 1)
    assert t_graph.layer == graph.output
    a = grad_cam(net, x, 3, t_net).heatmap
    b = grad_cam(graph, x, "3", t_graph).heatmap
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        input_gradient(net, x, t_net).gradient, input_gradient(graph, x, t_graph).gradient
    )
    assert cam_layers(graph, (2, 6, 5)) == ["0", "1", "2", "3", "4"]


def test_bad_graph_targets_are_sentences() -> None:
    g = residual_graph()
    x = _image((3, 6, 6))
    with pytest.raises(InsightError, match="no node 'nope'"):
        grad_cam(g, x, "nope", Target.class_score(g, 0))
    with pytest.raises(InsightError, match="not computed from"):
        grad_cam(g, x, "b", Target("a_relu", 0))
    with pytest.raises(InsightError, match="maps"):
        grad_cam(g, x, "flat", Target.class_score(g, 0))
    with pytest.raises(InsightError, match="networks trained in the app"):
        jobs.job(jobs.Request(jobs.MAXIMIZE, "stem"), g, x, None)


@pytest.mark.parametrize("name", ["resnet", "vgg_bn", "squeezenet"])
def test_onnx_fixtures_saliency_and_grad_cam(name: str) -> None:
    model = load_model(FIXTURES / f"{name}.onnx")
    graph = model.graph.astype(np.float64)
    shape = model.preprocessing.input_shape
    x = _image(shape, seed=3) * 0.5
    node = default_cam_node(graph, shape)
    assert node is not None
    scores = graph.forward(x[None])
    k = int(np.argmax(scores[graph.output][0]))
    target = Target.class_score(graph, k)
    if name == "squeezenet":  # explained before its Softmax: the logits
        assert target.layer != graph.output and target.is_output(graph)
    # saliency: central differences at a few pixels (each costs two forward passes)
    sal = input_gradient(graph, x, target).gradient
    rng = np.random.default_rng(0)
    for idx in zip(*(rng.integers(0, n, 6) for n in shape), strict=True):
        xx = x.copy()
        xx[idx] += EPS
        up = _score(graph, target, xx)
        xx[idx] -= 2 * EPS
        down = _score(graph, target, xx)
        assert sal[idx] == pytest.approx((up - down) / (2 * EPS), rel=1e-4, abs=1e-6)
    # Grad-CAM: the formula by hand from the node's map and a gradient checked along a
    # random direction by central differences
    res = grad_cam(graph, x, node, target)
    tensors = graph.forward(x[None])
    a = tensors[node]
    graph.zero_grad()
    grad = graph.backward_to(
        target.seed(tensors[str(target.layer)]), wrt=node, start=str(target.layer)
    )
    # (only where the map is non-zero: a max pool over a ReLU's zeros has ties, a kink)
    v = rng.standard_normal(a.shape) * (a != 0)

    def along(step: float) -> float:
        t = dict(tensors, **{node: a + step * v})
        for c in graph.consumers(node):
            t = graph.forward_from(c, t)
        return float(target.values(t[str(target.layer)])[0])

    assert float((grad * v).sum()) == pytest.approx(
        (along(EPS) - along(-EPS)) / (2 * EPS), rel=1e-4, abs=1e-6
    )
    w = grad[0].mean(axis=(1, 2))
    cam = np.maximum((w[:, None, None] * a[0]).sum(axis=0), 0)
    np.testing.assert_allclose(res.cam, cam, rtol=1e-10, atol=1e-12)
    assert res.heatmap.shape == shape[1:]
    out = run(jobs.job(jobs.Request(jobs.GRADCAM, node, klass=k), graph, x, None))
    assert out.kind == "heatmap" and f"node {node!r}" in out.title
