"""The Insight tab of training results, through its controls: every method on a tiny
trained network, cancel, export, and closing the window mid-run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from cnn_explorer.engine.network import Network, default_classifier
from cnn_explorer.insight.jobs import METHODS
from cnn_explorer.training.prediction import predict
from cnn_explorer.ui.training.insight_controls import FILTER, PREDICTED
from cnn_explorer.ui.training.insight_panel import InsightPanel
from cnn_explorer.ui.training.tab import TrainingTab

TIMEOUT = 60_000


@pytest.fixture(scope="module")
def bars(make_bars: Callable[[int, int], Path]) -> Path:
    return make_bars(10, 3)


def choose(combo, data) -> None:  # type: ignore[no-untyped-def]
    at = combo.findData(data)
    assert at >= 0, data
    combo.setCurrentIndex(at)


def run(qtbot, panel: InsightPanel) -> str:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT) as done:
        assert panel.run_button.isEnabled()
        panel.run_button.click()
    return str(done.args[0])


def test_every_method_on_a_trained_network_and_export(qtbot, bars: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tab = TrainingTab()
    qtbot.addWidget(tab)
    tab.set_folder(str(bars))
    tab.controls.epochs.setValue(2)
    tab.controls.batch_size.setValue(4)
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT):
        assert tab.start()
    panel = tab.insight
    assert panel.network is tab.trained
    c = panel.controls
    assert c.layer.count() == 2 and c.target.count() == 2 + 2  # predicted, 2 classes, filter
    c.steps.setValue(20)
    c.samples.setValue(5)
    c.k.setValue(4)
    for method in METHODS:
        choose(c.method, method)
        assert run(qtbot, panel) == "completed", panel.status.text()
        result = panel.result
        assert result is not None and np.isfinite(result.data).all()
        assert panel.status.text().startswith("Done") and result.title
        if result.kind == "heatmap":
            assert result.heatmap.shape == (8, 8)
            assert panel.view.colorbar is not None and panel.view.overlay is not None
        elif result.kind == "image":
            assert result.image.shape == (1, 8, 8)
        elif result.kind == "patches":
            assert len(result.patches) == 4
        else:
            assert result.values.shape == (16,)  # the second conv layer is chosen
    choose(c.method, "gradcam")
    assert run(qtbot, panel) == "completed"
    panel.opacity.setValue(25)
    assert panel.view.overlay.opacity() == pytest.approx(0.25)
    png, npy = tmp_path / "cam.png", tmp_path / "cam.npy"
    assert panel.export_png(str(png)) and panel.export_npy(str(npy))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(np.load(npy, allow_pickle=False), panel.result.data)
    assert not panel.export_npy(str(tmp_path / "missing" / "x.npy"))
    assert "Could not export" in panel.status.text()
    # A filter as the target of SmoothGrad; Grad-CAM offers classes only.
    choose(c.method, "smoothgrad")
    choose(c.target, FILTER)
    assert not c.filter.isHidden()
    assert run(qtbot, panel) == "completed" and "channel" in panel.result.title
    choose(c.method, "gradcam")
    choose(c.target, 1)
    assert run(qtbot, panel) == "completed"
    assert f"class “{tab.class_names[1]}”" in panel.result.title
    assert tab.shutdown(TIMEOUT)


@pytest.fixture
def panel(qtbot):  # type: ignore[no-untyped-def]
    p = InsightPanel()
    qtbot.addWidget(p)
    images = np.random.default_rng(0).random((12, 1, 10, 7)).astype(np.float32)
    p.set_images(images, np.zeros(12, np.int64))
    p.set_network(default_classifier((1, 10, 7), 3, seed=1), ["a", "b", "c"])
    p.show()
    yield p
    assert p.shutdown(TIMEOUT)


def test_cancel_stops_a_long_maximisation(qtbot, panel: InsightPanel) -> None:  # type: ignore[no-untyped-def]
    c = panel.controls
    choose(c.method, "maximize")
    c.steps.setValue(5000)
    with qtbot.waitSignal(panel.worker.progress, timeout=TIMEOUT):
        panel.run_button.click()
    assert not panel.run()  # refused while running
    assert "already running" in panel.status.text()
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT) as done:
        panel.cancel_button.click()
    assert done.args == ["stopped"] and panel.result is None
    assert "Cancelled" in panel.status.text() and panel.run_button.isEnabled()


def test_closing_mid_run_stops_cleanly(qtbot, panel: InsightPanel) -> None:  # type: ignore[no-untyped-def]
    choose(panel.controls.method, "maximize")
    panel.controls.steps.setValue(5000)
    with qtbot.waitSignal(panel.worker.progress, timeout=TIMEOUT):
        panel.run()
    assert panel.shutdown(TIMEOUT)
    assert not panel.worker.is_running()


def test_non_square_one_channel_grad_cam_and_a_bad_request(qtbot, panel: InsightPanel) -> None:  # type: ignore[no-untyped-def]
    choose(panel.controls.method, "gradcam++")
    assert run(qtbot, panel) == "completed"
    assert panel.result.heatmap.shape == (10, 7)
    panel.set_network(None, [])
    assert not panel.run() and "network first" in panel.status.text()


def test_closing_the_training_tab_mid_run_stops_the_insight_thread(qtbot) -> None:  # type: ignore[no-untyped-def]
    tab = TrainingTab()
    qtbot.addWidget(tab)
    panel = tab.insight
    images = np.random.default_rng(1).random((4, 1, 8, 8)).astype(np.float32)
    panel.set_images(images, np.zeros(4, np.int64))
    panel.set_network(default_classifier((1, 8, 8), 2, seed=2), ["x", "y"])
    choose(panel.controls.method, "maximize")
    panel.controls.steps.setValue(5000)
    tab.show()
    with qtbot.waitSignal(panel.worker.progress, timeout=TIMEOUT):
        panel.run()
    tab.close()
    assert not panel.worker.is_running()


def test_without_images_no_layer_is_offered(qtbot, panel: InsightPanel) -> None:  # type: ignore[no-untyped-def]
    assert panel.controls.layer.count() == 2
    panel.set_images(np.zeros((0, 1, 1, 1), np.float32), np.zeros(0, np.int64))
    assert panel.controls.layer.count() == 0
    choose(panel.controls.method, "maximize")
    assert not panel.run() and "dataset" in panel.status.text()


def test_one_cell_and_the_datasets_range(qtbot, panel: InsightPanel) -> None:  # type: ignore[no-untyped-def]
    c = panel.controls
    choose(c.method, "saliency")
    choose(c.target, FILTER)
    assert not c.cell.isHidden() and not c.row.isEnabled()
    c.one_cell.setChecked(True)
    assert c.row.isEnabled() and c.row.maximum() == 4 and c.col.maximum() == 2  # 5×3 map
    c.row.setValue(4)
    c.col.setValue(2)
    assert run(qtbot, panel) == "completed"
    assert "cell [0, 4, 2]" in panel.result.title
    choose(c.method, "patches")
    assert c.cell.isHidden()
    panel.images[:] *= 0.5  # the dataset's range is now within [0, 0.5]
    choose(c.method, "maximize")
    c.steps.setValue(10)
    assert run(qtbot, panel) == "completed"
    assert panel.result.image.max() <= panel.images.max()


def test_the_predicted_class_is_the_one_try_an_image_predicts(qtbot, panel: InsightPanel) -> None:  # type: ignore[no-untyped-def]
    """ "The predicted class" is found on the worker thread: the same Grad-CAM as asking
    for that class by name."""
    image = panel.current_image()
    assert image is not None
    best = predict(panel.network, image).best
    choose(panel.controls.method, "gradcam")
    choose(panel.controls.target, PREDICTED)
    assert run(qtbot, panel) == "completed"
    by_prediction = panel.result.heatmap.copy()
    choose(panel.controls.target, best)
    assert run(qtbot, panel) == "completed"
    np.testing.assert_array_equal(panel.result.heatmap, by_prediction)
    assert panel.network is not None and panel.class_names[best] in panel.result.title


class _GatedCopy(Network):
    """A network whose copy waits at a gate the test opens: Run would hang the window if
    it copied on the GUI thread (a big network's copy takes tenths of a second)."""

    def __init__(self, layer_list: list[Any], gate: threading.Event) -> None:
        super().__init__(layer_list)
        self.gate = gate
        self.copied_on: list[int] = []

    def copy(self) -> Network:
        self.copied_on.append(threading.get_ident())
        assert self.gate.wait(TIMEOUT / 1000), "the gate was never opened"
        return Network.copy(self)


def test_run_copies_the_network_on_the_worker_thread(qtbot, panel: InsightPanel) -> None:  # type: ignore[no-untyped-def]
    plain = panel.network
    choose(panel.controls.method, "gradcam")
    assert run(qtbot, panel) == "completed"
    want = panel.result.heatmap.copy()
    gate = threading.Event()
    gated = _GatedCopy(plain.copy().layers, gate)
    before = {k: v.copy() for k, v in gated.state_arrays().items()}
    panel.set_network(gated, ["a", "b", "c"])
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT) as done:
        assert panel.run()  # returns with the gate shut: the copy is not made here
        assert panel.worker.is_running() and not panel.run_button.isEnabled()
        fired: list[bool] = []
        QTimer.singleShot(0, lambda: fired.append(True))
        qtbot.waitUntil(lambda: bool(fired), timeout=TIMEOUT)  # the GUI thread is free
        gate.set()
    assert done.args == ["completed"]
    assert gated.copied_on and threading.get_ident() not in gated.copied_on
    np.testing.assert_array_equal(panel.result.heatmap, want)
    after = gated.state_arrays()
    assert all(np.array_equal(after[k], v) for k, v in before.items())  # the job used a copy
