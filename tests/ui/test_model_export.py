"""File ▸ Export model: the Model tab's model leaves as ONNX or PyTorch (the same exporter
as File ▸ Export network: in the background, atomically, preprocessing and class names
carried). A Keras model exported to ONNX re-imports to the same outputs; the PyTorch files
load strictly in torch (when installed); a model-less window refuses with one message."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.interchange.load import load_model
from cnn_explorer.interchange.model import Preprocessing

FIXTURES = Path(__file__).resolve().parents[1] / "interchange" / "fixtures"
KERAS = FIXTURES / "keras_sequential.keras"


def _open(qtbot, window, path: Path, pre: Preprocessing | None = None):  # type: ignore[no-untyped-def]
    tab = window.model_tab
    window.reporter.import_answer = pre
    assert window.open_path(str(path))
    tab.wait()
    qtbot.waitUntil(lambda: tab.doc.ready, timeout=30_000)
    return tab


def _menu_action(window, text: str):  # type: ignore[no-untyped-def]
    file_menu = next(
        a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "File"
    )
    export = next(a.menu() for a in file_menu.actions() if a.text() == "Export &model")
    return next(a for a in export.actions() if a.text() == text)


def test_keras_model_exported_to_onnx_reimports_the_same(qtbot, window, tmp_path):
    pre = Preprocessing((3, 12, 12), mean=(0.5,), std=(0.25,), class_names=tuple("abcdefghij"))
    _open(qtbot, window, KERAS, pre)
    target = tmp_path / "from_keras.onnx"
    window.reporter.next_save = str(target)
    exporter = window.networks.model_exporter
    with qtbot.waitSignal(exporter.finished, timeout=60_000) as done:
        _menu_action(window, "&ONNX…").trigger()
    assert done.args == [[str(target)]] and window.reporter.errors == []
    assert "Exported from_keras.onnx" in window.last_status
    back = load_model(target)
    data = np.load(FIXTURES / "keras_sequential.npz")
    keras = load_model(KERAS, self_check=False)
    np.testing.assert_allclose(back.graph(data["input"]), keras.graph(data["input"]), atol=1e-5)
    np.testing.assert_allclose(back.graph(data["input"]), data["output"], rtol=1e-4, atol=1e-5)
    assert back.preprocessing == pre
    assert back.report.self_check is not None and back.report.self_check.passed


def test_pytorch_export_writes_code_and_weights(qtbot, window, tmp_path):
    _open(qtbot, window, FIXTURES / "resnet.onnx")
    exporter = window.networks.model_exporter
    with qtbot.waitSignal(exporter.finished, timeout=60_000) as done:
        assert exporter.export_to(str(tmp_path / "resnet"), "torch")  # the suffix is added
    py, weights = tmp_path / "resnet.py", tmp_path / "resnet.safetensors"
    assert done.args == [[str(py), str(weights)]]
    assert "def build_model()" in py.read_text()
    x = np.random.default_rng(0).random((2, 3, 24, 24), dtype=np.float32)
    again = load_model(weights)  # our own weights file names its architecture
    np.testing.assert_allclose(again.graph(x), window.model_tab.doc.view.graph(x), atol=1e-5)


@pytest.mark.torch
def test_pytorch_export_runs_in_torch(qtbot, window, tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    tab = _open(qtbot, window, KERAS)
    exporter = window.networks.model_exporter
    with qtbot.waitSignal(exporter.finished, timeout=60_000):
        assert exporter.export_to(str(tmp_path / "net.py"), "torch")
    spec = importlib.util.spec_from_file_location("exported_net", tmp_path / "net.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build_model().eval()
    model.load_state_dict(load_file(str(tmp_path / "net.safetensors")), strict=True)
    x = np.load(FIXTURES / "keras_sequential.npz")["input"]
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, tab.doc.view.graph(x), rtol=1e-4, atol=1e-5)


def test_without_a_model_export_says_what_to_do(window, tmp_path):
    _menu_action(window, "&ONNX…").trigger()
    assert window.reporter.errors == [
        ("No model to export as ONNX", "Open a model in the Model tab first (File ▸ Open model…).")
    ]
    assert not list(tmp_path.iterdir())
