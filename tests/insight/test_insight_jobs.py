"""The panel's requests: every method gives a finite result of the right kind and shape,
and a request missing what it needs is refused before any thread would start."""

from __future__ import annotations

import numpy as np
import pytest
from insight_nets import relu_net

from cnn_explorer.insight.jobs import METHODS, InsightResult, Request, job
from cnn_explorer.insight.maximize import MaximizeSettings
from cnn_explorer.insight.targets import InsightError, run

IMAGES = np.random.default_rng(0).random((10, 1, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_gives_a_finite_result(method: str) -> None:
    net = relu_net(1).astype(np.float32)
    request = Request(
        method, layer=1, klass=2, filter=1, samples=4, k=3, maximize=MaximizeSettings(steps=8)
    )
    result: InsightResult = run(job(request, net, IMAGES[0], IMAGES))
    assert np.isfinite(result.data).all() and result.title
    if result.kind == "heatmap":
        assert result.heatmap is not None and result.heatmap.shape == (8, 8)
    elif result.kind == "image":
        assert result.image is not None and result.image.shape == (1, 8, 8)
    elif result.kind == "patches":
        assert len(result.patches) == 3 and result.data.shape == (3, 1, 8, 8)
    else:
        assert result.values is not None and result.values.shape == (4,)


def test_requests_missing_what_they_need_are_refused_at_once() -> None:
    net = relu_net(1)
    with pytest.raises(InsightError, match="image"):
        job(Request("saliency", 1), net, None, None)
    with pytest.raises(InsightError, match="dataset"):
        job(Request("patches", 1), net, IMAGES[0], None)
    with pytest.raises(InsightError, match="layer 6"):
        job(Request("gradcam", 5), net, IMAGES[0], None)
    with pytest.raises(InsightError, match="channel 9"):
        job(Request("maximize", 1, klass=None, filter=9), net, IMAGES[0], None)


def test_one_cell_of_a_filter_is_a_saliency_target() -> None:
    from cnn_explorer.insight.saliency import input_gradient
    from cnn_explorer.insight.targets import Target

    net = relu_net(4)
    request = Request("saliency", layer=4, klass=None, filter=2, mode="signed", cell=(1, 3))
    assert request.target(net) == Target(4, 2, cell=(1, 3), reduce="mean")
    result = run(job(request, net, IMAGES[1], None))
    want = input_gradient(net, IMAGES[1], Target(4, 2, cell=(1, 3))).heatmap("signed")
    np.testing.assert_array_equal(result.heatmap, want)
    assert "cell [2, 1, 3]" in result.title
    with pytest.raises(InsightError, match="outside"):
        job(Request("saliency", 4, klass=None, cell=(4, 0)), net, IMAGES[1], None)
