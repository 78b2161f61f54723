"""Files: project save/open, images (good, corrupt, huge), export, recent, close prompt."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QImage
from ui_helpers import drop_file, settle

from cnn_explorer import imageio
from cnn_explorer.explorer import presets
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.project import ProjectError, load_project, save_project
from cnn_explorer.explorer.specs import conv_spec
from cnn_explorer.imageio import save_png


def _big_png(path, w: int, h: int) -> None:
    """A valid grayscale PNG of w×h (compressed rows, written without decoding memory)."""

    def chunk(t: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data))

    comp = zlib.compressobj(1)
    row = b"\x00" + b"\x80" * w
    body = b"".join(comp.compress(row * min(256, h - n)) for n in range(0, h, 256)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def test_save_open_round_trip_is_identical(qtbot, window, tmp_path):
    doc = window.doc
    doc.set_channels(3)
    doc.add_layer(conv_spec(3, 2, (1, 1), seed=4), at=1)
    doc.set_bias(1, 1, 0.25)
    doc.update_config(2, fn="leaky_relu", slope=0.2)
    settle(qtbot, window)
    x0 = doc.input.copy()
    layers0 = [s.copy() for s in doc.layers]
    maps0 = [m.copy() for m in doc.results.maps]
    path = str(tmp_path / "p.cnnx")
    assert window.save_to(path)
    assert doc.undo_stack.isClean() and not window.isWindowModified()
    doc.set_cell(0, 0, 0, 42)
    doc.remove_layer(0)
    settle(qtbot, window)
    assert window.open_project(path)
    settle(qtbot, window)
    assert np.array_equal(doc.input, x0)
    assert all(a.same_values(b) for a, b in zip(doc.layers, layers0, strict=True))
    for a, b in zip(doc.results.maps, maps0, strict=True):
        assert np.array_equal(a, b)
    assert window.windowTitle().startswith("p.cnnx")
    assert QSettings().value("recentFiles")[0].endswith("p.cnnx")
    assert window.recent_menu.actions()[0].text() == "p.cnnx"


def test_save_is_atomic_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.cnnx"
    save_project(str(path), presets.WORKED_EXAMPLE[None], [])
    save_project(str(path), presets.WORKED_EXAMPLE[None], [])
    assert [p.name for p in tmp_path.iterdir()] == ["a.cnnx"]
    with zipfile.ZipFile(path) as zf:
        assert json.loads(zf.read("project.json"))["version"] == 1


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "a.cnnx"
    save_project(str(path), presets.WORKED_EXAMPLE[None], [])
    before = path.read_bytes()
    bad = [conv_spec(1, 1, (2, 2))]
    bad[0].weight = np.array([[[[object()]]]], dtype=object)  # cannot be saved without pickle
    with pytest.raises(ValueError):
        save_project(str(path), presets.WORKED_EXAMPLE[None], bad)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.cnnx"]


def _write_project(path, meta: dict, arrays: dict) -> None:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.json", json.dumps(meta))
        zf.writestr("arrays.npz", buf.getvalue())


@pytest.mark.parametrize(
    "case",
    ["garbage", "future", "no_format", "missing_array", "bad_shape", "bad_json", "pickle"],
)
def test_malformed_projects_are_refused(qtbot, window, tmp_path, case):
    path = tmp_path / f"{case}.cnnx"
    meta = {"format": "cnn-explorer-project", "version": 1, "input": "input", "layers": []}
    arrays = {"input": np.ones((1, 4, 4), np.float32)}
    if case == "garbage":
        path.write_bytes(b"not a zip at all")
    elif case == "bad_json":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("project.json", "{oops")
            zf.writestr("arrays.npz", b"")
    else:
        if case == "future":
            meta["version"] = 99
        elif case == "no_format":
            del meta["format"]
        elif case == "missing_array":
            meta["input"] = "nope"
        elif case == "bad_shape":
            arrays["input"] = np.ones((2, 4, 4), np.float32)
        elif case == "pickle":
            arrays["input"] = np.array([{"a": 1}], dtype=object)
        _write_project(path, meta, arrays) if case != "pickle" else _write_pickle(path, meta)
    before_x = window.doc.input.copy()
    before_n = len(window.doc.layers)
    assert not window.open_project(str(path))
    assert window.reporter.errors, case
    text = window.reporter.errors[-1][1]
    if case == "future":
        assert "newer" in text
    assert np.array_equal(window.doc.input, before_x)
    assert len(window.doc.layers) == before_n
    with pytest.raises(ProjectError):
        load_project(str(path))


def _write_pickle(path, meta) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as inner:
        inner.writestr("input.npy", buf.getvalue())
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.json", json.dumps(meta))
        zf.writestr("arrays.npz", npz.getvalue())


def test_load_image_resized_gray_and_rgb(qtbot, window, tmp_path):
    from cnn_explorer.ui.common.messages import ImageOptions

    img = np.zeros((40, 60, 3), np.uint8)
    img[:, 30:, 0] = 255
    path = tmp_path / "red.png"
    save_png(img, str(path))
    assert window.load_image(str(path), ImageOptions(10, 12, 3))
    settle(qtbot, window)
    x = window.doc.input
    assert x.shape == (3, 10, 12)
    assert x[0, :, -1].min() > 0.9 and x[1].max() < 0.1
    assert window.doc.layers[0].weight.shape[1] == 3
    window.reporter.image_answer = ImageOptions(8, 8, 1)
    assert window.open_path(str(path))
    assert window.doc.input.shape == (1, 8, 8)
    window.undo_action.trigger()
    assert window.doc.input.shape == (3, 10, 12)


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n garbage", b"hello world"])
def test_corrupt_image_leaves_input_untouched(qtbot, window, tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    before = window.doc.input.copy()
    assert not window.load_image(str(path))
    assert window.reporter.errors and "unchanged" in window.reporter.errors[-1][1]
    assert np.array_equal(window.doc.input, before)


def test_missing_and_non_image_files(window, tmp_path):
    assert not window.load_image(str(tmp_path / "nope.png"))
    txt = tmp_path / "notes.gif"
    txt.write_text("just text")
    assert not window.load_image(str(txt))
    assert len(window.reporter.errors) == 2


def test_huge_png_is_refused_quickly_with_message(qtbot, window, tmp_path):
    path = tmp_path / "huge.png"
    _big_png(path, 20_000, 20_000)
    before = window.doc.input.copy()
    assert not window.load_image(str(path))
    text = window.reporter.errors[-1][1]
    assert "20000×20000" in text
    assert np.array_equal(window.doc.input, before)


def test_huge_jpeg_is_downscaled_off_thread(qtbot, window, tmp_path):
    from cnn_explorer.ui.common.messages import ImageOptions

    img = QImage(6000, 5000, QImage.Format.Format_Grayscale8)
    img.fill(200)
    path = str(tmp_path / "huge.jpg")
    assert img.save(path, "JPEG", 30)
    with qtbot.waitSignal(window.image_loaded, timeout=30_000) as blocker:
        assert window.load_image(path, ImageOptions(50, 60, 1))
    assert blocker.args == [path]
    assert window.doc.input.shape == (1, 50, 60)
    assert abs(float(window.doc.input.mean()) - 200 / 255) < 0.02


def test_imageio_limits(tmp_path, qapp):
    path = tmp_path / "big.png"
    _big_png(path, 20_000, 20_000)
    with pytest.raises(imageio.ImageLoadError, match="20000×20000"):
        imageio.image_size(str(path))
    with pytest.raises(imageio.ImageLoadError, match="cannot be decoded at a smaller size"):
        imageio.load_image(str(path), (32, 32))


def test_drop_file_opens_it(qtbot, window, tmp_path):
    path = tmp_path / "d.png"
    save_png(np.full((8, 8), 255, np.uint8), str(path))
    drop_file(window, str(path))
    assert window.doc.input.shape[1:] == (8, 8)


@pytest.mark.parametrize("ext", ["png", "csv", "npy"])
def test_export_selected_map(qtbot, window, tmp_path, ext):
    path = str(tmp_path / f"m.{ext}")
    window.reporter.next_save = path
    window.doc.select_cell(Selection(1, 0, 0, 0))
    window.exporter.export_selected_dialog(ext)
    if ext == "csv":
        assert np.array_equal(np.loadtxt(path, delimiter=","), [[4, 2, 0], [2, 2, 2], [0, 2, 4]])
    elif ext == "npy":
        assert np.array_equal(np.load(path, allow_pickle=False), [[4, 2, 0], [2, 2, 2], [0, 2, 4]])
    else:
        img = QImage(path)
        assert not img.isNull() and img.width() >= 200


def test_export_all(window, tmp_path):
    n = window.exporter.export_all(str(tmp_path))
    assert n == 4
    with np.load(tmp_path / "maps.npz", allow_pickle=False) as z:
        assert np.array_equal(z["map3"][0], [[4, 2], [2, 4]])


def test_close_prompts_for_unsaved_changes(qtbot, window, tmp_path):
    window.doc.set_cell(0, 0, 0, 9)
    assert window.isWindowModified()
    window.reporter.save_answer = "cancel"
    assert not window.close()
    assert window.isVisible()
    window.reporter.save_answer = "save"
    window.reporter.next_save = str(tmp_path / "saved.cnnx")
    assert window.close()
    assert (tmp_path / "saved.cnnx").exists()
    assert QSettings().value("window/geometry") is not None


def test_window_state_restored(qtbot, tmp_path):
    from cnn_explorer.ui.main_window import MainWindow

    a = MainWindow(restore_state=False)
    qtbot.addWidget(a)
    a.maps.set_scale_mode("Global")
    a.kernel_dock.hide()
    a.save_window_state()
    a.doc.shutdown()
    b = MainWindow(restore_state=True)
    qtbot.addWidget(b)
    assert b.maps.scale_mode == "Global"
    assert b.kernel_dock.isHidden()
    b.doc.shutdown()


def test_unsaveable_data_is_reported_not_raised(window, tmp_path, monkeypatch):
    path = tmp_path / "a.cnnx"
    spec = conv_spec(1, 1, (2, 2))
    spec.weight = np.array([[[[object()]]]], dtype=object)  # only pickle could store it
    from cnn_explorer.ui import files

    def save_unsaveable(target, x, layers, trained=None, model=None):
        save_project(target, x, [spec])

    monkeypatch.setattr(files, "save_project", save_unsaveable)
    assert window.save_to(str(path)) is False
    assert window.reporter.errors and "Could not write" in window.reporter.errors[-1][1]
    assert not path.exists()


@pytest.mark.parametrize("name", ["x.png", "x.cnnx"])
def test_a_folder_is_called_a_folder(window, tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    before = window.doc.input.copy()
    assert not window.open_path(str(folder))
    text = window.reporter.errors[-1][1]
    assert f"{name} is a folder" in text and "no such file" not in text
    assert np.array_equal(window.doc.input, before)
    if name.endswith(".png"):
        assert not window.load_image(str(folder))
        assert f"{name} is a folder" in window.reporter.errors[-1][1]
