"""The Model tab's Insight page: Grad-CAM of the top class at the default (deepest) node
of an imported ResNet equals the insight package's, saliency of a class chosen by name
equals the input gradient, the heatmap is drawn over the picture as shown (not the
normalised input), PNG and .npy export, an unknown class name is refused with a message,
cancel returns the page to idle, and a new picture clears the old result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.insight.gradcam import default_cam_node, grad_cam
from cnn_explorer.insight.saliency import input_gradient
from cnn_explorer.insight.targets import Target

FIXTURES = Path(__file__).resolve().parents[1] / "interchange" / "fixtures"
TIMEOUT = 60_000


def _open(qtbot, window, name: str):  # type: ignore[no-untyped-def]
    tab = window.model_tab
    assert window.open_path(str(FIXTURES / f"{name}.onnx"))
    tab.wait()
    qtbot.waitUntil(lambda: tab.doc.ready and tab.doc.view.tensors is not None, timeout=TIMEOUT)
    tab.centre_tabs.setCurrentWidget(tab.insight)
    return tab, tab.insight


def _run(qtbot, panel) -> str:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT) as done:
        panel.run_button.click()
    return str(done.args[0])


def test_grad_cam_of_the_top_class_at_the_default_node(qtbot, window, tmp_path):  # type: ignore[no-untyped-def]
    tab, panel = _open(qtbot, window, "resnet")
    vm = tab.doc.view
    node = default_cam_node(vm.graph, vm.input_shape)
    assert panel.layer.currentData() == node
    panel.choose(method="gradcam")
    assert panel.layer.isVisible() and not panel.samples.isVisible()
    assert _run(qtbot, panel) == "completed"
    graph = vm.graph.copy()
    x = np.asarray(vm.x[0])
    k = int(np.argmax(graph(x[None]).reshape(-1)))
    want = grad_cam(graph, x, node, Target.class_score(graph, k)).heatmap
    np.testing.assert_allclose(panel.result.heatmap, want, rtol=1e-5, atol=1e-7)
    assert node in panel.result.title
    np.testing.assert_allclose(panel.result.image, vm.pixels.transpose(2, 0, 1) / 255.0, atol=1e-7)
    assert panel.export_npy(str(tmp_path / "cam.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "cam.npy", allow_pickle=False), want)
    assert panel.export_png(str(tmp_path / "cam.png"))
    assert (tmp_path / "cam.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tab.doc.set_image(vm.pixels[::-1].copy(), "flipped")  # a new picture: the result goes
    assert panel.result is None


def test_saliency_of_a_class_chosen_by_name(qtbot, window):  # type: ignore[no-untyped-def]
    tab, panel = _open(qtbot, window, "vgg_bn")
    vm = tab.doc.view
    dog = list(vm.preprocessing.class_names).index("dog")
    panel.choose(method="saliency", klass="dog")
    assert not panel.layer.isVisible() and panel.mode.isVisible()
    assert _run(qtbot, panel) == "completed"
    graph = vm.graph.copy()
    sal = input_gradient(graph, np.asarray(vm.x[0]), Target.class_score(graph, dog))
    np.testing.assert_allclose(panel.result.heatmap, sal.heatmap("abs"), rtol=1e-5, atol=1e-7)
    assert "dog" in panel.result.title


def test_unknown_class_is_refused_and_cancel_returns_to_idle(qtbot, window):  # type: ignore[no-untyped-def]
    _, panel = _open(qtbot, window, "vgg_bn")
    panel.klass.setEditText("zebra")
    assert not panel.run()
    assert "zebra" in panel.status.text() and not panel.worker.is_running()
    panel.choose(method="smoothgrad", klass="cat")
    panel.samples.setValue(200)
    with qtbot.waitSignal(panel.worker.progress, timeout=TIMEOUT):
        panel.run()
    assert not panel.run_button.isEnabled() and panel.cancel_button.isEnabled()
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT) as done:
        panel.cancel_button.click()
    assert done.args[0] in ("stopped", "completed")  # it may finish before the flag is seen
    if done.args[0] == "stopped":
        assert panel.result is None and "Cancelled" in panel.status.text()
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()


@pytest.mark.parametrize("method", ["gradcam++", "smoothgrad"])
def test_every_method_runs_on_squeezenet(qtbot, window, method):  # type: ignore[no-untyped-def]
    _, panel = _open(qtbot, window, "squeezenet")
    panel.choose(method=method)
    panel.samples.setValue(4)
    assert _run(qtbot, panel) == "completed"
    assert panel.result is not None and panel.result.heatmap.shape == (33, 33)
