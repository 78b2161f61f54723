"""File ▸ Export network: the Training tab's trained network written as ONNX (runs in
onnx.reference to 1e-5 of the engine, preprocessing and class names in its metadata) or as
PyTorch code plus safetensors weights (re-imports to the same outputs), off the GUI thread,
atomically, with a clear message when it cannot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from ui_helpers import settle

from cnn_explorer.interchange.load import load_model
from cnn_explorer.interchange.model import ImportedModel, ImportReport, Preprocessing


def open_model(window, graph, prep: dict) -> None:  # type: ignore[no-untyped-def]
    model = ImportedModel(
        graph, Preprocessing.from_dict(prep), ImportReport("tiny.onnx"), Path("tiny.onnx")
    )
    assert window.open_in_training(model)


def test_export_as_onnx_runs_in_the_reference_like_the_engine(  # type: ignore[no-untyped-def]
    qtbot, window, tmp_path, tiny_residual, tiny_preprocessing
):
    graph = tiny_residual()
    open_model(window, graph, tiny_preprocessing)
    target = tmp_path / "tuned.onnx"
    window.reporter.next_save = str(target)
    with qtbot.waitSignal(window.networks.exporter.finished, timeout=60_000) as done:
        assert window.networks.exporter.export_dialog("onnx")
    assert done.args == [[str(target)]] and "Exported tuned.onnx" in window.last_status
    proto = onnx.load(str(target))
    x = np.random.default_rng(3).normal(size=(2, 3, 8, 8)).astype(np.float32)
    got = ReferenceEvaluator(proto).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, graph(x), atol=1e-5, rtol=1e-5)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["class_names"]) == ["horizontal", "vertical"]
    prep = json.loads(meta["cnn_explorer.preprocessing"])
    assert prep["mean"] == [0.5] and prep["std"] == [0.25] and prep["input_shape"] == [3, 8, 8]


def test_export_as_pytorch_writes_code_and_weights_that_reimport(  # type: ignore[no-untyped-def]
    qtbot, window, tmp_path, tiny_residual, tiny_preprocessing
):
    graph = tiny_residual()
    open_model(window, graph, tiny_preprocessing)
    with qtbot.waitSignal(window.networks.exporter.finished, timeout=60_000) as done:
        assert window.networks.exporter.export_to(str(tmp_path / "tuned"), "torch")
    py, weights = tmp_path / "tuned.py", tmp_path / "tuned.safetensors"
    assert done.args == [[str(py), str(weights)]]
    assert "class " in py.read_text() and "load_state_dict" in py.read_text()
    again = load_model(weights)
    x = np.random.default_rng(4).normal(size=(2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(again.graph(x), graph(x), atol=1e-5, rtol=1e-5)
    assert list(again.preprocessing.class_names) == ["horizontal", "vertical"]


def test_nothing_to_export_and_a_missing_folder_are_said_plainly(qtbot, window, tmp_path):  # type: ignore[no-untyped-def]
    assert not window.networks.exporter.export_dialog("onnx")
    assert "Training tab" in window.reporter.errors[-1][1]
    window.show_training()
    settle(qtbot, window)
    assert not window.networks.exporter.export_to(str(tmp_path / "no" / "m.onnx"), "onnx")
    assert "Training tab" in window.reporter.errors[-1][1]  # still nothing trained


def test_a_failed_export_leaves_no_partial_file_and_says_why(  # type: ignore[no-untyped-def]
    qtbot, window, tmp_path, tiny_residual, tiny_preprocessing
):
    open_model(window, tiny_residual(), tiny_preprocessing)
    assert not window.networks.exporter.export_to(str(tmp_path / "no" / "m.onnx"), "onnx")
    assert "does not exist" in window.reporter.errors[-1][1]
    target = tmp_path / "m.onnx"
    target.mkdir()  # a folder where the file should go: the final rename fails
    with qtbot.waitSignal(window.networks.exporter.finished, timeout=60_000) as done:
        assert window.networks.exporter.export_to(str(target), "onnx")
    assert done.args == [[]]
    title, text = window.reporter.errors[-1]
    assert title == "Export failed" and text.startswith("Could not export to m.onnx: ")
    assert "Export failed" in window.last_status
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temp file left
