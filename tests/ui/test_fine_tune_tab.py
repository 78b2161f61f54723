"""The Training tab fine-tunes a model imported from a file: "Open in training" switches
the dataset controls to the model's input, ticks every layer but the last, asks before
replacing a classifier layer for a folder with another class count, and trains."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from cnn_explorer.engine.graph import Graph
from cnn_explorer.interchange.model import ImportedModel, ImportReport, Preprocessing
from cnn_explorer.ui.common.messages import RecordingReporter
from cnn_explorer.ui.training.tab import TrainingTab

TIMEOUT = 60_000


def imported(graph: Graph, prep: dict, **changes: object) -> ImportedModel:
    record = Preprocessing.from_dict({**prep, **changes})
    return ImportedModel(graph, record, ImportReport("tiny.onnx"), Path("/models/tiny.onnx"))


@pytest.fixture
def tab(qtbot, make_bars: Callable[[int, int], Path]):  # type: ignore[no-untyped-def]
    t = TrainingTab()
    qtbot.addWidget(t)
    t.reporter = RecordingReporter()
    t.set_folder(str(make_bars(6, 3)))
    t.controls.epochs.setValue(1)
    t.controls.batch_size.setValue(4)
    yield t
    assert t.shutdown(TIMEOUT)


def ticked(tab: TrainingTab) -> list[str]:
    items = [tab.controls.freeze.item(i) for i in range(tab.controls.freeze.count())]
    return [item.text() for item in items if item.checkState() == Qt.CheckState.Checked]


def test_open_in_training_fine_tunes_the_last_layer(
    qtbot, tab, tiny_residual, tiny_preprocessing
) -> None:  # type: ignore[no-untyped-def]
    graph = tiny_residual()
    assert tab.open_in_training(imported(graph, tiny_preprocessing))
    assert tab.controls.image_size.value() == 8 and tab.controls.color.currentData() == 3
    assert [t.split(":")[0] for t in ticked(tab)] == ["1. stem", "2. bn", "4. conv"]
    assert "tiny.onnx" in tab.status.text()
    assert not tab.insight.run() and "has branches" in tab.insight.status.text()
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT) as done:
        assert tab.start()
    assert done.args == ["completed"]
    assert isinstance(tab.trained, Graph) and tab.reporter.questions == []
    after = tab.trained.state_arrays()
    for key, value in graph.state_arrays().items():
        assert np.array_equal(after[key], value) != key.startswith("fc."), key
    assert tab.prediction.probabilities.size == 2


def test_another_class_count_asks_before_replacing_the_classifier(
    qtbot, tab, tiny_residual, tiny_preprocessing
) -> None:  # type: ignore[no-untyped-def]
    model = imported(tiny_residual(classes=5), tiny_preprocessing, class_names=[])
    assert tab.open_in_training(model)
    tab.reporter.yes_answer = False
    tab.load_dataset()
    qtbot.waitUntil(lambda: tab.data is not None, timeout=TIMEOUT)
    assert not tab.start()
    assert "fc (Dense 4→5)" in tab.reporter.questions[-1]
    assert "do not match" in tab.status.text()
    tab.reporter.yes_answer = True
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT):
        assert tab.start()
    assert tab.trained.output_shape((3, 8, 8)) == (2,)
    assert tab.class_names == ["horizontal", "vertical"]


def test_a_model_that_is_not_a_classifier_is_refused_with_a_reason(
    tab, tiny_residual, tiny_preprocessing
) -> None:  # type: ignore[no-untyped-def]
    features = Graph(list(tiny_residual().nodes)[:5])
    assert not tab.open_in_training(imported(features, tiny_preprocessing))
    assert "Cannot fine-tune tiny.onnx" in tab.status.text()


def test_the_model_tab_model_goes_to_training_from_the_file_menu(  # type: ignore[no-untyped-def]
    qtbot, window, tmp_path, tiny_residual, tiny_preprocessing
):
    from cnn_explorer.interchange.onnx_export import save_onnx

    assert not window.networks.fine_tune_imported()
    assert "Open a model file first" in window.reporter.errors[-1][1]
    graph = tiny_residual()
    prep = Preprocessing.from_dict(tiny_preprocessing)
    path = tmp_path / "tiny.onnx"
    save_onnx(path, graph, (3, 8, 8), preprocessing=prep, class_names=list(prep.class_names))
    assert window.open_path(str(path))
    window.model_tab.wait()
    qtbot.waitUntil(lambda: window.model_tab.doc.ready, timeout=30_000)
    assert window.networks.fine_tune_imported()
    tab = window.training
    assert window.tabs.currentWidget() is tab
    assert tab.class_names == ["horizontal", "vertical"]
    x = np.random.default_rng(1).normal(size=(2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(tab.trained(x), graph(x), atol=1e-5, rtol=1e-5)
    assert ticked(tab) and len(ticked(tab)) == tab.controls.freeze.count() - 1
