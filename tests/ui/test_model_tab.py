"""The Model tab: opening each committed ONNX fixture shows every node in the navigator,
clicking a node shows its maps, clicking a cell explains it with the tensor's value and
highlights its receptive field on the picture, top-k names and probabilities, bad files
give one message and change nothing, and pictures load at the model's size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from ui_helpers import drop_file

from cnn_explorer.imageio import save_png
from cnn_explorer.interchange.model import Preprocessing

FIXTURES = Path(__file__).resolve().parents[1] / "interchange" / "fixtures"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.onnx"))


def _open(qtbot, window, path: Path) -> None:
    tab = window.model_tab
    assert window.open_path(str(path))
    tab.wait()
    qtbot.waitUntil(lambda: tab.doc.ready, timeout=30_000)


def _click_grid(qtbot, tab, channel: int, row: int, col: int) -> None:
    """A real mouse click on a cell of the mosaic."""
    grid = tab.grid
    y, x = grid.tile_origin(channel)
    scene = grid.image.mapToScene(x + col + 0.5, y + row + 0.5)
    pos = grid.maps_view.mapFromScene(scene)
    qtbot.mouseClick(
        grid.maps_view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos.x(), pos.y())
    )


@pytest.mark.parametrize("name", NAMES)
def test_each_fixture_opens_with_every_node_in_the_navigator(qtbot, window, name):
    _open(qtbot, window, FIXTURES / f"{name}.onnx")
    tab = window.model_tab
    vm = tab.doc.view
    assert window.tabs.currentWidget() is tab
    assert window.reporter.reports and window.reporter.errors == []
    assert tab.navigator.names() == ["input", *(n.name for n in vm.graph.nodes)]
    assert name in tab.title.text()
    for node in vm.graph.nodes[:: max(1, len(vm.graph.nodes) // 5)]:
        item = tab.navigator._items[node.name]  # the row the user clicks
        rect = tab.navigator.visualItemRect(item)
        qtbot.mouseClick(tab.navigator.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        assert vm.selected_node == node.name
        assert node.name in tab.header.text()
        shown = tab.grid.vector if tab.grid.showing_bars else tab.grid.maps
        assert shown is not None and shown.size == vm.tensor(node.name).size


def test_clicking_a_cell_explains_it_and_shows_its_receptive_field(qtbot, window):
    _open(qtbot, window, FIXTURES / "resnet.onnx")
    tab = window.model_tab
    vm = tab.doc.view
    add = next(n.name for n in vm.graph.nodes if n.layer.kind == "add")
    tab.doc.select_node(add)
    _click_grid(qtbot, tab, 1, 3, 4)
    cell = vm.selection
    assert cell is not None and cell.tensor == add and cell.index == (1, 3, 4)
    value = float(vm.tensor(add)[1, 3, 4])
    assert vm.explain(cell).result == pytest.approx(value, rel=1e-5, abs=1e-6)
    assert " + " in tab.explanation_text
    assert tab.picture.field is not None and tab.picture.field.mask.any()
    y, x = tab.grid.tile_origin(1)
    tab.grid.hover_at(QPointF(x + 4.5, y + 3.5))  # what the mouse reports over the cell
    assert f"{add}[1, 3, 4]" in window.last_status and "channel 1: min" in window.last_status
    assert "Receptive field" in tab.picture.caption.text()
    conv = vm.graph.nodes[0].name
    tab.doc.select_node(conv)
    _click_grid(qtbot, tab, 0, 0, 0)
    assert vm.selection.tensor == conv
    assert tab.explanation_text.startswith("out[")  # a conv's multiply-adds
    got = vm.explain(vm.selection).result
    assert got == pytest.approx(float(vm.tensor(conv)[vm.selection.index]), rel=1e-5, abs=1e-6)


def test_top_k_shows_class_names_and_probabilities(qtbot, window):
    _open(qtbot, window, FIXTURES / "vgg_bn.onnx")
    tab = window.model_tab
    rows = tab.top_rows()
    assert len(rows) == 5
    names = tab.doc.view.preprocessing.class_names
    assert {n for n, _ in rows} <= set(names)
    assert 0 < sum(p for _, p in rows) <= 1 + 1e-9
    last = tab.doc.view.graph.output
    tab.doc.select_node(last)
    assert tab.grid.showing_bars
    qtbot.mouseClick(tab.grid.bars_view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(5, 5))


def test_a_bad_file_gives_one_message_and_keeps_the_model(qtbot, window, tmp_path):
    _open(qtbot, window, FIXTURES / "lenet5.onnx")
    tab = window.model_tab
    before = tab.doc.view
    bad = tmp_path / "broken.onnx"
    bad.write_bytes((FIXTURES / "resnet.onnx").read_bytes()[:300])
    drop_file(window, str(bad))
    tab.wait()
    qtbot.waitUntil(lambda: bool(window.reporter.errors), timeout=30_000)
    assert len(window.reporter.errors) == 1
    _title, text = window.reporter.errors[0]
    assert "broken.onnx" in text and "unchanged" in text
    assert tab.doc.view is before and tab.navigator.names()[1] == before.graph.nodes[0].name
    assert window.last_status


def test_cancel_in_the_report_opens_nothing_and_edits_apply(qtbot, window):
    window.reporter.import_cancel = True
    assert window.open_path(str(FIXTURES / "resnet.onnx"))
    window.model_tab.wait()
    qtbot.waitUntil(lambda: bool(window.reporter.reports))
    assert window.model_tab.doc.view is None
    window.reporter.import_cancel = False
    window.reporter.import_answer = Preprocessing((3, 24, 24), "bgr", 1.0, (1.0,), (2.0,), ("x",))
    _open(qtbot, window, FIXTURES / "resnet.onnx")
    vm = window.model_tab.doc.view
    assert vm.preprocessing.colour == "bgr"
    rows = window.model_tab.top_rows()
    assert "x" in [n for n, _ in rows] and "class 1" in [n for n, _ in rows]


def test_a_picture_loads_at_the_model_size(qtbot, window, tmp_path):
    _open(qtbot, window, FIXTURES / "squeezenet.onnx")
    tab = window.model_tab
    img = np.zeros((50, 70, 3), np.uint8)
    img[:, :35, 0] = 255
    path = tmp_path / "red.png"
    save_png(img, str(path))
    assert window.open_path(str(path))  # the Model tab is shown: the picture goes there
    tab.wait()
    qtbot.waitUntil(lambda: tab.doc.view.input_name == "red.png" and tab.doc.ready)
    assert tab.doc.view.pixels.shape == (33, 33, 3)
    assert tab.doc.view.pixels[5, 2, 0] == 255  # red on the left
    tab.load_image(str(tmp_path / "missing.png"))
    tab.wait()
    qtbot.waitUntil(lambda: bool(window.reporter.errors))
    assert tab.doc.view.input_name == "red.png"


def test_the_model_is_saved_in_the_project_and_comes_back(qtbot, window, tmp_path):
    from cnn_explorer.ui.common.messages import RecordingReporter
    from cnn_explorer.ui.main_window import MainWindow

    window.reporter.import_answer = Preprocessing((3, 24, 24), "rgb", 1 / 255, (0.5,), (0.25,))
    _open(qtbot, window, FIXTURES / "resnet.onnx")
    path = tmp_path / "with_model.cnnx"
    assert window.save_to(str(path))
    other = MainWindow(restore_state=False)
    other.reporter = RecordingReporter(other)
    qtbot.addWidget(other)
    assert other.open_project(str(path))
    tab = other.model_tab
    tab.wait()
    qtbot.waitUntil(lambda: tab.doc.ready)
    assert other.reporter.reports == []  # no import dialog: the project holds the model
    assert tab.doc.view.preprocessing.std == (0.25,)
    assert tab.navigator.names() == window.model_tab.navigator.names()
    out = tab.doc.view.graph.output
    assert np.array_equal(tab.doc.view.tensor(out), window.model_tab.doc.view.tensor(out))
    other.doc.undo_stack.setClean()
    other.close()


def test_a_project_with_a_damaged_model_is_not_opened(qtbot, window, tmp_path):
    import json
    import zipfile

    _open(qtbot, window, FIXTURES / "lenet5.onnx")
    path = tmp_path / "damaged.cnnx"
    assert window.save_to(str(path))
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["project.json"])
    meta["model"]["meta"]["preprocessing"]["colour"] = "cmyk"
    members["project.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    before = window.model_tab.doc.view
    window.reporter.errors.clear()
    assert not window.open_project(str(path))
    assert len(window.reporter.errors) == 1 and "cmyk" in window.reporter.errors[0][1]
    assert window.model_tab.doc.view is before


def test_a_model_without_a_fixed_input_size_asks_for_one(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES.parent))
    from onnx_helpers import save, tiny_model

    from cnn_explorer.ui.common.messages import parse_input_size

    path = save(tiny_model(dims=("N", 1, "H", "W")), tmp_path / "dynamic.onnx")
    window.reporter.input_size_answer = (1, 9, 7)
    _open(qtbot, window, path)
    assert any("not fixed" in q for q in window.reporter.questions)
    assert window.model_tab.doc.view.input_shape == (1, 9, 7)
    window.reporter.input_size_answer = None  # Cancel: one message, nothing opened
    window.open_path(str(tmp_path / "dynamic.onnx"))
    window.model_tab.wait()
    qtbot.waitUntil(lambda: bool(window.reporter.errors))
    assert "not fixed" in window.reporter.errors[-1][1]
    assert parse_input_size("3×224 x 224") == (3, 224, 224)
    assert parse_input_size("3×0×2") is None and parse_input_size("a b c") is None
