"""File ▸ Export model: the Model tab's model leaves as ONNX or PyTorch (in the background,
with its preprocessing and class names): a Keras model exported to ONNX re-imports to the
same outputs; the PyTorch files load strictly in torch (when installed); a failed write
says so and leaves nothing behind."""

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
    export.aboutToShow.emit()
    return next(a for a in export.actions() if a.text() == text)


def test_keras_model_exported_to_onnx_reimports_the_same(qtbot, window, tmp_path):
    pre = Preprocessing((3, 12, 12), mean=(0.5,), std=(0.25,), class_names=tuple("abcdefghij"))
    tab = _open(qtbot, window, KERAS, pre)
    target = tmp_path / "from_keras.onnx"
    window.reporter.next_save = str(target)
    action = _menu_action(window, "ONNX…")
    assert action.isEnabled()
    action.trigger()
    tab.wait()
    assert window.reporter.errors == []
    assert "from_keras.onnx" in window.last_status
    back = load_model(target)
    x = np.load(FIXTURES / "keras_sequential.npz")["input"]
    keras = load_model(KERAS, self_check=False)
    np.testing.assert_allclose(back.graph(x), keras.graph(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        back.graph(x), np.load(FIXTURES / "keras_sequential.npz")["output"], rtol=1e-4, atol=1e-5
    )
    assert back.preprocessing == pre
    assert back.report.self_check is not None and back.report.self_check.passed


def test_pytorch_export_writes_code_and_weights(qtbot, window, tmp_path):
    tab = _open(qtbot, window, FIXTURES / "resnet.onnx")
    window.reporter.next_save = str(tmp_path / "resnet")  # the suffix is added
    _menu_action(window, "PyTorch…").trigger()
    tab.wait()
    assert window.reporter.errors == []
    py, weights = tmp_path / "resnet.py", tmp_path / "resnet.safetensors"
    assert py.is_file() and weights.is_file()
    assert "def build_model()" in py.read_text()


@pytest.mark.torch
def test_pytorch_export_runs_in_torch(qtbot, window, tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    tab = _open(qtbot, window, KERAS)
    assert tab.exporter.export("pytorch", str(tmp_path / "net.py"))
    tab.wait()
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


def test_a_failed_export_says_so_and_writes_nothing(qtbot, window, tmp_path):
    tab = _open(qtbot, window, FIXTURES / "lenet5.onnx")
    assert tab.exporter.export("onnx", str(tmp_path / "missing" / "m.onnx"))
    tab.wait()
    assert [t for t, _ in window.reporter.errors] == ["Export failed"]
    assert "Nothing was written" in window.reporter.errors[0][1]
    assert not (tmp_path / "missing").exists()


def test_export_is_disabled_without_a_model(window):
    assert not _menu_action(window, "ONNX…").isEnabled()
    assert not window.model_tab.exporter.export("onnx", "never.onnx")
