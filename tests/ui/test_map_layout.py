"""The feature-map layout uses the space on every common screen: with a 64×96 RGB photo
and 32 filters the tiles flow over the width, tiles of neighbouring map sizes are drawn
at neighbouring sizes, drawn numbers never overlap, colour bars stay in view while
scrolling, layers collapse, the tile-size slider works and an overview tile click selects
and enlarges its channel."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRectF, Qt
from PySide6.QtWidgets import QApplication
from ui_helpers import click_map_cell, settle

from cnn_explorer.explorer.specs import act_spec, conv_spec, pool_spec
from cnn_explorer.ui.explorer.map_caption import CAPTION_H
from cnn_explorer.ui.explorer.map_layout import (
    TILE_PX_MAX,
    TILE_PX_MIN,
    SectionSpec,
    fit_px,
    plan_sections,
    tile_size,
)

SIZES = [(1280, 800), (1366, 768), (1440, 900), (1920, 1080)]
IDS = [f"{w}x{h}" for w, h in SIZES]


def _photo() -> np.ndarray:
    """A 3×64×96 "photo": smooth colour gradients and a disc."""
    yy, xx = np.mgrid[0:64, 0:96].astype(np.float32)
    r = 0.5 + 0.5 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    g = np.clip(yy / 64 * 0.8 + 0.2 * ((xx - 60) ** 2 + (yy - 30) ** 2 < 300), 0, 1)
    b = 1 - xx / 96
    return np.stack([r, g, b]).astype(np.float32)


def _load(qtbot, window, x: np.ndarray, layers: list, size: tuple[int, int]) -> None:
    window.resize(*size)
    window.doc.apply_document(x, layers)
    window.doc.recompute_now()
    settle(qtbot, window)
    QApplication.processEvents()
    window.maps.relayout()
    QApplication.processEvents()


def _photo_net(qtbot, window, size: tuple[int, int]) -> None:
    layers = [conv_spec(3, 32, (3, 3), padding=1, seed=3), act_spec("relu"), pool_spec()]
    _load(qtbot, window, _photo(), layers, size)


def _shown(t) -> bool:  # type: ignore[no-untyped-def]
    return t.vb.isVisible() and not t.rect.isEmpty()


def _viewport_width(window) -> int:  # type: ignore[no-untyped-def]
    return window.maps.scroll.viewport().width()


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_photo_with_32_filters_uses_the_width(qtbot, window, size):
    _photo_net(qtbot, window, size)
    maps = window.maps
    assert maps.is_overview(1) and not maps.is_overview(0)  # 32 channels: an overview
    width = _viewport_width(window)
    for mode in ("Auto", "All large"):
        maps.set_channel_mode(mode)
        for m in range(4):
            tiles = maps.group(m).tiles
            assert all(_shown(t) for t in tiles)
            assert max(t.rect.right() for t in tiles) <= width, (mode, m)
            columns = {round(t.vb.geometry().x()) for t in tiles}
            assert len(columns) > 1, (mode, m, size)  # not one long column
        # No horizontal scrolling needed, and no row leaves most of the width empty.
        assert maps.view.width() <= width
        big = maps.group(1).tiles
        right = max(t.vb.geometry().right() for t in big)
        assert right >= 0.7 * width, (mode, right, width)
    # An overview is far shorter than every channel at full size.
    maps.set_channel_mode("Auto")
    auto_h = maps.view.height()
    maps.set_channel_mode("All large")
    assert auto_h < 0.6 * maps.view.height()
    assert window.minimumSizeHint().width() <= 1280


def test_neighbouring_map_sizes_are_drawn_at_neighbouring_sizes():
    """For every slider position and width, an (n+1)-cell map is drawn no smaller than an
    n-cell one and bigger by no more than (n+1)/n."""
    for px in range(TILE_PX_MIN, TILE_PX_MAX + 1, 16):
        for inner in (300, 420, 640, 1400):
            prev = tile_size(1, 1, px, inner)[0]
            for n in range(2, 130):
                side = tile_size(n, n, px, inner)[0]
                assert prev <= side <= prev * (n + 1) / n + 1, (px, inner, n, prev, side)
                prev = side


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_neighbouring_sizes_in_the_window(qtbot, window, size):
    sides = {}
    for n in (12, 13, 16, 17):
        x = np.resize(np.linspace(-1, 1, 7, dtype=np.float32), (1, n, n))
        _load(qtbot, window, x, [act_spec("relu")], size)
        rect = window.maps.tile(0, 0).vb.geometry()
        assert window.maps.tile(1, 0).vb.geometry().size() == rect.size()
        sides[n] = max(rect.width(), rect.height())
    for n in (12, 16):
        assert sides[n] <= sides[n + 1] <= sides[n] * (n + 1) / n + 1, sides


def _all_labels(maps) -> list[tuple[QRectF, QRectF]]:  # type: ignore[no-untyped-def]
    """``(label rect, its cell rect)`` of every number drawn in every shown tile."""
    out = []
    for t in maps.shown_tiles():
        if t.numbers is not None:
            tr = t.numbers.sceneTransform()
            for r, c, _text, rect in t.numbers.labels():
                out.append((rect, tr.mapRect(QRectF(c, r, 1, 1))))
    return out


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_drawn_numbers_never_overlap(qtbot, window, size):
    x = np.random.default_rng(2).normal(size=(1, 12, 12)).astype(np.float32) * 3
    layers = [conv_spec(1, 8, (3, 3), seed=1), act_spec("relu"), conv_spec(8, 16, (3, 3))]
    _load(qtbot, window, x, layers, size)
    maps = window.maps
    assert maps.is_overview(3)  # its enlarged tile has numbers too
    for px in (TILE_PX_MIN, 128, 200, 256, 400):
        maps.set_tile_size(px)
        labels = _all_labels(maps)
        if px >= 200:
            assert len(labels) > 40
        rects = sorted((r.left(), r.right(), r.top(), r.bottom()) for r, _ in labels)
        for i, (_, r1, t1, b1) in enumerate(rects):
            for l2, _, t2, b2 in rects[i + 1 :]:
                if l2 >= r1:
                    break
                assert b1 <= t2 or b2 <= t1, f"labels overlap at tile size {px}"
        for rect, cell in labels:
            assert cell.contains(rect)
        captions = [t.caption.sceneBoundingRect() for t in maps.shown_tiles()]
        for rect, _ in labels[:: max(1, len(labels) // 50)]:
            assert not any(c.intersects(rect) for c in captions)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_colour_bar_stays_beside_its_layer_while_scrolling(qtbot, window, size):
    _photo_net(qtbot, window, size)
    maps = window.maps
    maps.set_channel_mode("All large")  # the tallest layout
    bar = maps.scroll.verticalScrollBar()
    g = maps.group(1)
    tiles = g.tiles
    top, bottom = tiles[0].rect.top(), tiles[-1].rect.bottom()
    vp = maps.scroll.viewport()
    for y in (top + 0.3 * (bottom - top), top + 0.6 * (bottom - top)):
        bar.setValue(int(y))
        QApplication.processEvents()
        shown = QRectF(0, bar.value(), vp.width(), vp.height())
        cbar = g.cbar.sceneBoundingRect()
        assert g.cbar.isVisible() and shown.contains(cbar), (y, cbar, shown)
        assert cbar.left() >= max(t.vb.geometry().right() for t in tiles)
    bar.setValue(0)
    QApplication.processEvents()
    assert g.cbar.sceneBoundingRect().top() < tiles[0].rect.bottom()  # back at the top


def test_per_map_scale_gives_every_tile_its_own_scale(qtbot, window):
    _photo_net(qtbot, window, (1280, 800))
    maps = window.maps
    maps.set_scale_mode("Per map")
    for m, c in ((0, 1), (1, 5), (3, 31)):
        t = maps.tile(m, c)
        assert " ▭ " in t.caption.text, t.caption.text  # min, a small colour bar, max
        lo, hi = t.caption.text.split(" ▭ ")
        assert lo.split()[-1][-1].isdigit() and hi[-1].isdigit()
    maps.set_scale_mode("Per layer")
    t = maps.tile(0, 1)
    assert t.caption.text.startswith("ch 1 · ") and " ▭ " not in t.caption.text
    assert maps.tile(1, 5).caption.text == "ch 5"  # an overview's small tile: its number
    tip = maps.tile(1, 5).caption.toolTip()
    assert "min" in tip and "mean" in tip and "zeros" in tip
    assert maps.tile(1, 5).image.toolTip() == tip  # a small tile: on its map too
    assert t.caption.toolTip() and not t.image.toolTip()  # a large map is hovered for values
    assert t.caption.boundingRect().height() == CAPTION_H <= 16  # one compact line


def _click_header(qtbot, window, m: int) -> None:
    maps = window.maps
    head = maps.group(m).title
    pt = head.mapToScene(30, 10)
    maps.scroll.ensureVisible(int(pt.x()), int(pt.y()))
    pos = maps.view.mapFromScene(pt)
    qtbot.mouseClick(maps.view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos.x(), pos.y()))
    QApplication.processEvents()


def test_collapse_hides_a_layers_tiles(qtbot, window):
    _photo_net(qtbot, window, (1440, 900))
    maps = window.maps
    below = maps.group(2).title.pos().y()
    _click_header(qtbot, window, 1)
    assert maps.is_collapsed(1)
    assert not any(t.vb.isVisible() for t in maps.group(1).all_tiles())
    assert not maps.group(1).cbar.isVisible()
    assert maps.group(2).title.pos().y() < below - 100  # the next layer moved up
    assert all(_shown(t) for t in maps.group(2).tiles)
    _click_header(qtbot, window, 1)
    assert not maps.is_collapsed(1)
    assert all(_shown(t) for t in maps.group(1).tiles)
    assert maps.group(2).title.pos().y() == below


def test_slider_changes_tile_size(qtbot, window):
    _photo_net(qtbot, window, (1440, 900))
    maps = window.maps
    maps.set_fit_width(False)
    before = maps.tile(0, 0).vb.geometry().width()
    maps.size_slider.setValue(128)  # as a user drags it: laid out after a short pause
    qtbot.waitUntil(lambda: maps.tile(0, 0).vb.geometry().width() != before)
    assert maps.tile(0, 0).vb.geometry().width() == pytest.approx(before / 2, abs=2)
    assert maps.toolbar.size_label.text() == "128 px"
    maps.set_fit_width(True)  # fitting moves the size a little at most
    assert 0.6 * 128 <= maps.drawn_px <= 1.15 * 128


def test_fit_width_fills_rows():
    specs = [SectionSpec(32, 64, 96, 200)]
    for inner in (380, 470, 620, 1100):
        px = fit_px(256, specs, inner)
        (plan,), _, _ = plan_sections(specs, px, inner + 24, False)
        right = max(r.right() for r in plan.tiles)
        assert inner - 10 <= right - 12 <= inner, (inner, px, right)


def test_overview_click_selects_and_enlarges(qtbot, window):
    _photo_net(qtbot, window, (1280, 800))
    maps, doc = window.maps, window.doc
    assert maps.focused_channel(1) == 0
    small, big = maps.tile(1, 5), maps.focus_tile(1)
    assert small.vb.geometry().width() < 0.5 * big.vb.geometry().width()
    click_map_cell(qtbot, window, 1, 5, 10, 20)  # cells of under a pixel: ±1 cell
    sel = doc.selection
    assert (sel.map_index, sel.channel) == (1, 5)
    assert abs(sel.row - 10) <= 1 and abs(sel.col - 20) <= 1
    assert maps.focused_channel(1) == 5
    big = maps.focus_tile(1)
    assert np.array_equal(big.image.data2d, doc.results.maps[1][5])
    assert big.cell_box.isVisible()  # the selected cell is marked on the enlarged tile
    click_map_cell(qtbot, window, 1, 9, 30, 40)  # cells of under a pixel: ±1 cell
    sel = doc.selection
    assert maps.focused_channel(1) == 9 and (sel.map_index, sel.channel) == (1, 9)
    assert abs(sel.row - 30) <= 1 and abs(sel.col - 40) <= 1


def test_tile_size_fit_and_channel_layout_are_remembered(qtbot):
    from cnn_explorer.ui.main_window import MainWindow

    a = MainWindow(restore_state=False)
    qtbot.addWidget(a)
    a.maps.set_tile_size(144)
    a.maps.set_fit_width(False)
    a.maps.set_channel_mode("Overview")
    a.save_window_state()
    a.doc.shutdown()
    b = MainWindow(restore_state=True)
    qtbot.addWidget(b)
    assert b.maps.tile_px == 144 and b.maps.size_slider.value() == 144
    assert not b.maps.fit_width and not b.maps.fit_check.isChecked()
    assert b.maps.channel_mode == "Overview" == b.maps.channels_combo.currentText()
    b.doc.shutdown()


def test_colour_bar_ticks_are_round_and_inside_the_levels():
    from cnn_explorer.ui.explorer.map_caption import nice_ticks

    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(-3, 3, 4) == [-2, 0, 2]
    assert nice_ticks(0, 4) == [0, 1, 2, 3, 4]
    assert nice_ticks(2, 2) == [2] and nice_ticks(float("nan"), 1) == []
    for lo, hi in ((-0.37, 12.5), (0, 1500), (1e-4, 3e-4)):
        ticks = nice_ticks(lo, hi)
        assert 2 <= len(ticks) <= 6 and lo <= ticks[0] and ticks[-1] <= hi


def test_each_layers_colour_bar_shows_its_scale(qtbot, window):
    from cnn_explorer.ui.common import colors

    _photo_net(qtbot, window, (1440, 900))
    res = window.doc.results
    for m in range(len(res.maps)):
        x = res.maps[m]
        levels, _ = colors.nice_levels(float(x.min()), float(x.max()))
        bar = window.maps.group(m).cbar
        assert bar.levels() == levels and bar.isVisible()
        assert window.maps.tile(m, 0).levels == levels
    window.maps.set_scale_mode("Per map")  # every tile has its own scale instead
    assert not any(window.maps.group(m).cbar.isVisible() for m in range(len(res.maps)))
