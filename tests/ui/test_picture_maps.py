"""A 3-channel map drawn as one picture in the feature-map view: the input of a photo by
default, any 3-channel map under the input's "Show" RGB/Grey; its channels stay beside it
and hovering it reads the three values."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt
from ui_helpers import settle

from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.specs import conv_spec
from cnn_explorer.imageio import save_png
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.common.messages import ImageOptions


def _load_photo(qtbot, window, tmp_path, h: int = 24, w: int = 32) -> np.ndarray:
    rgb = np.random.default_rng(5).integers(0, 256, (h, w, 3), dtype=np.uint8)
    path = str(tmp_path / "photo.png")
    save_png(rgb, path)
    assert window.load_image(path, ImageOptions(h, w, 3))
    settle(qtbot, window)
    return rgb


def test_a_photo_input_is_drawn_as_itself_with_its_channels_beside_it(qtbot, window, tmp_path):
    rgb = _load_photo(qtbot, window, tmp_path)
    maps = window.maps
    pic = maps.picture_tile(0)
    assert pic is not None
    assert np.array_equal(pic.export_rgb(), rgb)
    shown = maps.shown_tiles()
    channels = [t for t in shown if t.map_index == 0 and t is not pic]
    assert sorted(t.channel for t in channels) == [0, 1, 2]
    for t in channels:  # reachable, smaller than the picture, never overlapping it
        assert t.rect.width() < pic.rect.width()
        assert not t.rect.intersects(pic.rect)
    assert "RGB" in pic.title_text
    # Layer outputs keep their colour maps under "Auto".
    assert all(maps.picture_tile(m) is None for m in range(1, len(window.doc.results.maps)))


def test_hovering_the_picture_reads_the_three_values(qtbot, window, tmp_path):
    _load_photo(qtbot, window, tmp_path)
    maps = window.maps
    pic = maps.picture_tile(0)
    scene_pt = pic.image.mapToScene(5.5, 3.5)
    maps.scroll.ensureVisible(int(scene_pt.x()), int(scene_pt.y()))
    pos = maps.view.mapFromScene(scene_pt)
    qtbot.mouseMove(maps.view.viewport(), QPoint(pos.x(), pos.y()))
    qtbot.waitUntil(lambda: "[:,3,5]" in maps.hover_label.text())
    x = window.doc.input[:, 3, 5]
    text = maps.hover_label.text()
    for name, v in zip("RGB", x, strict=True):
        assert f"{name} {float(v):.6g}" in text
    qtbot.mouseClick(maps.view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos.x(), pos.y()))
    assert window.doc.selection == Selection(0, 0, 3, 5)


def test_the_grids_show_setting_drives_the_picture(qtbot, window, tmp_path):
    _load_photo(qtbot, window, tmp_path)
    maps, grid = window.maps, window.grid
    grid.display_combo.setCurrentText("Colour map")
    assert maps.picture_tile(0) is None
    assert [t.channel for t in maps.shown_tiles() if t.map_index == 0] == [0, 1, 2]
    grid.display_combo.setCurrentText("Grey")
    pic = maps.picture_tile(0)
    assert pic is not None
    px = pic.export_rgb()
    assert np.array_equal(px[..., 0], px[..., 2])
    assert np.array_equal(px, colors.grey_rgba(window.doc.input, (0.0, 1.0))[..., :3])
    assert window.doc.undo_stack.count() == 1  # a view setting, not an edit


def test_any_three_channel_map_can_be_a_picture(qtbot, window):
    doc = window.doc
    doc.new_document(doc.input, [conv_spec(doc.input.shape[0], 3, padding=1)], "three maps")
    settle(qtbot, window)
    maps = window.maps
    assert maps.picture_tile(1) is None  # feature maps keep their colour maps under Auto
    window.grid.set_display("RGB")
    pic = maps.picture_tile(1)
    assert pic is not None
    x = window.doc.results.maps[1]
    levels = colors.image_levels(*colors.finite_range(x))
    assert np.array_equal(pic.export_rgb(), colors.composite_rgba(x, levels)[..., :3])
    # An edit updates the picture in place.
    window.doc.set_input(window.doc.input * 2, "double")
    settle(qtbot, window)
    x = window.doc.results.maps[1]
    levels = colors.image_levels(*colors.finite_range(x))
    assert np.array_equal(
        maps.picture_tile(1).export_rgb(), colors.composite_rgba(x, levels)[..., :3]
    )


def test_the_picture_comes_and_goes_with_the_third_channel(qtbot, window, tmp_path):
    _load_photo(qtbot, window, tmp_path)
    maps = window.maps
    window.grid.channels_combo.setCurrentIndex(0)  # grayscale: one channel, no picture
    settle(qtbot, window)
    assert maps.picture_tile(0) is None
    assert [t.channel for t in maps.shown_tiles() if t.map_index == 0] == [0]
    window.doc.undo_stack.undo()
    settle(qtbot, window)
    pic = maps.picture_tile(0)
    assert pic is not None and not pic.rect.isEmpty()
    assert np.array_equal(pic.export_rgb()[..., 0], np.rint(window.doc.input[0] * 255))
