"""The feature-map view's fast paths: off-screen tiles refreshed when scrolled into view,
direct RGB32 colouring identical to pyqtgraph's, one repaint per edit."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QWidget
from ui_helpers import cell_texts, settle

from cnn_explorer.explorer.specs import act_spec, conv_spec
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.explorer.map_items import MapImage


def _many_small_maps(window) -> None:
    """12×12 input and 3 conv layers of 8 maps: more tiles than the viewport shows."""
    x = np.random.default_rng(0).random((1, 12, 12), dtype=np.float32)
    layers = [
        conv_spec(1, 8, (3, 3), padding="same", seed=1),
        act_spec("relu"),
        conv_spec(8, 8, (3, 3), padding="same", seed=2),
        conv_spec(8, 8, (3, 3), padding="same", seed=3),
    ]
    window.doc.apply_document(x, layers)
    window.doc.recompute_now()
    window.maps.relayout()
    QApplication.processEvents()


def test_off_screen_tile_refreshes_when_scrolled_into_view(qtbot, window):
    _many_small_maps(window)
    maps, doc = window.maps, window.doc
    maps.scroll.verticalScrollBar().setValue(0)
    last = maps.group(len(doc.results.maps) - 1)
    assert maps.scroll.verticalScrollBar().maximum() > 0, "the test needs a scrolled view"
    doc.set_weight(0, 0, 0, 1, 1, float(doc.layers[0].weight[0, 0, 1, 1]) + 0.5)
    settle(qtbot, window)
    hidden = [t for t in last.tiles if t.pending is not None]
    assert hidden, "tiles below the viewport should wait until they are scrolled to"
    t = hidden[-1]
    maps.scroll.ensureVisible(int(t.rect.center().x()), int(t.rect.center().y()))
    qtbot.waitUntil(lambda: t.pending is None)  # now, or a turn later (tiles made in slices)
    fresh = doc.results.maps[last.map_index][t.channel]
    assert np.array_equal(t.numbers._a, fresh)
    assert np.array_equal(t.image.data2d, fresh)
    assert t.title_text.startswith(f"ch {t.channel}")


def test_opening_many_maps_makes_only_the_tiles_in_view_then_the_rest_as_scrolled(qtbot, window):
    _many_small_maps(window)
    maps, doc = window.maps, window.doc
    maps.scroll.verticalScrollBar().setValue(0)
    qtbot.wait(50)
    tiles = [t for g in (maps.group(m) for m in range(len(doc.results.maps))) for t in g.tiles]
    view = maps.scroll.viewport()
    # (channel 0 of each map was drawn before, for the worked example: tiles are kept)
    below = [t for t in tiles if t.rect.top() > view.height() + 100 and t.channel > 0]
    assert below and not any(t.made for t in below)  # cheap placeholders, no view box yet
    in_view = [t for t in tiles if t.rect.bottom() < view.height()]
    qtbot.waitUntil(lambda: all(t.made and t.pending is None for t in in_view))
    t = below[-1]
    maps.scroll.ensureVisible(int(t.rect.center().x()), int(t.rect.center().y()))
    qtbot.waitUntil(lambda: t.made and t.pending is None)
    assert np.array_equal(t.image.data2d, doc.results.maps[t.map_index][t.channel])


def test_tile_accessor_brings_an_off_screen_tile_up_to_date(qtbot, window):
    _many_small_maps(window)
    maps, doc = window.maps, window.doc
    maps.scroll.verticalScrollBar().setValue(0)
    m = len(doc.results.maps) - 1
    doc.set_weight(0, 0, 0, 0, 0, float(doc.layers[0].weight[0, 0, 0, 0]) - 1.0)
    settle(qtbot, window)
    for c in range(8):
        texts = cell_texts(window, m, c)
        # The text the overlay draws: fewer decimals where the cells are narrow.
        numbers = maps.group(m).tiles[c].numbers
        expected = [[numbers.choose(float(v)) for v in row] for row in doc.results.maps[m][c]]
        assert texts == expected and any(any(row) for row in texts)
        assert maps.group(m).tiles[c].pending is None


@pytest.mark.parametrize("signed", [False, True])
def test_map_image_colours_exactly_like_pyqtgraph(qapp, signed):
    rng = np.random.default_rng(1)
    arrays = [
        rng.random((37, 29), dtype=np.float32) * 3 - 1,
        np.linspace(-2, 2, 400, dtype=np.float32).reshape(20, 20),
        rng.random((64, 64), dtype=np.float32)[::2, ::3],  # non-contiguous (decimated)
        np.array([[np.inf, -np.inf], [0.5, 3.0]], np.float32),
    ]
    for a in arrays:
        for levels in ((0.0, 2.0), (-2.0, 2.0), (1.0, 1.0)):
            ref = pg.ImageItem(axisOrder="row-major")
            ref.setLookupTable(colors.lut(signed))
            ref.setImage(a, autoLevels=False, levels=levels)
            ref.render()
            mine = MapImage(0, 0)
            mine.setLookupTable(colors.lut(signed))
            mine.setImage(a, autoLevels=False, levels=levels)
            mine.render()
            assert ref.qimage.convertToFormat(mine.qimage.format()) == mine.qimage


class _PaintCounter(QObject):
    count = 0

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if ev.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def test_an_edit_repaints_the_map_view_once(qtbot, window):
    doc = window.doc
    counter = _PaintCounter()
    window.maps.view.viewport().installEventFilter(counter)
    qtbot.wait(250)  # the window's first layout (after its docks settle) is painted
    QApplication.processEvents()
    for k in range(3):
        counter.count = 0
        doc.set_weight(0, 0, 0, 0, 0, float(doc.layers[0].weight[0, 0, 0, 0]) + 1.0)
        settle(qtbot, window)
        QApplication.sendPostedEvents()
        QApplication.processEvents()
        assert counter.count == 1, f"edit {k}: {counter.count} repaints"


def test_a_one_filter_edit_recolours_only_that_filters_tiles(qtbot, window, monkeypatch):
    """A kernel edit of filter 0 changes channel 0 of the conv and of the ReLU after it:
    their other tiles keep their images unless the shared colour scale moved."""
    maps, doc = window.maps, window.doc
    x = np.random.default_rng(0).random((1, 64, 64), dtype=np.float32)
    doc.apply_document(x, [conv_spec(1, 8, (3, 3), padding="same", seed=1), act_spec("relu")])
    doc.recompute_now()
    maps.relayout()
    QApplication.processEvents()
    set_images: list[tuple[int, int]] = []
    original = MapImage.setImage

    def spy(self, *args, **kwargs):
        set_images.append((self.map_index, self.channel))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MapImage, "setImage", spy)
    w = float(doc.layers[0].weight[0, 0, 1, 1])
    doc.set_weight(0, 0, 0, 1, 1, w + 1e-3)  # tiny: the layer's nice colour scale stays
    settle(qtbot, window)
    assert doc.results.channels == {1: frozenset({0}), 2: frozenset({0})}
    recoloured = {(m, c) for m, c in set_images if m in (1, 2)}
    assert (1, 0) in recoloured and recoloured <= {(1, 0), (2, 0)}
    assert 0 not in {m for m, _ in set_images}  # the input did not change
    for m in (1, 2):  # every tile shows (or will show, once on screen) the current values
        for t in maps.group(m).tiles:
            shown = t.pending[0] if t.pending else t.image.data2d
            assert np.array_equal(shown, doc.results.maps[m][t.channel])
    set_images.clear()
    doc.set_weight(0, 0, 0, 1, 1, w + 50.0)  # the layer's colour scale grows: recolour all
    settle(qtbot, window)
    on_screen = {t.channel for t in maps.group(1).tiles if t.pending is None}
    assert len(on_screen) > 1
    assert {c for m, c in set_images if m == 1} == on_screen


def test_a_weight_edit_repaints_no_form_or_layer_list(qtbot, window):
    """Re-syncing the layer form, the layer list and the kernel editor's navigation after a
    weight edit must not repaint them (an unguarded setValue repaints ~30 widgets)."""
    doc = window.doc
    painted: list[str] = []

    class Recorder(QObject):
        def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
            if ev.type() == QEvent.Type.Paint:
                painted.append(type(obj).__name__)
            return False

    k = window.kernel
    watched = [window.layers.list.viewport(), window.layers.form]
    watched += [k.filter_spin, k.channel_spin, k.kh_spin, k.kw_spin]
    watched += window.layers.form.findChildren(QWidget)
    recorder = Recorder()
    for w in watched:
        w.installEventFilter(recorder)
    QApplication.sendPostedEvents()
    QApplication.processEvents()
    painted.clear()
    doc.set_weight(0, 0, 0, 0, 0, float(doc.layers[0].weight[0, 0, 0, 0]) + 1.0)
    settle(qtbot, window)
    QApplication.sendPostedEvents()
    QApplication.processEvents()
    assert painted == []


def test_a_resize_that_keeps_the_layout_reuses_the_tiles(qtbot, window):
    """512² → 500² with 16 filters: every tile keeps its place and size, so the view keeps
    its items (rebuilding 64 pyqtgraph tiles froze the window for ~200 ms) and shows the
    new maps; a change of filter count keeps the tiles of the channels that remain and
    removes the others."""
    doc, maps = window.doc, window.maps
    x = np.random.default_rng(3).random((1, 128, 128), dtype=np.float32)
    doc.apply_document(x, [conv_spec(1, 16, (3, 3), padding="same", seed=1)])
    doc.recompute_now()
    doc.resize_input(124, 124)  # the first resize may move a scroll bar and reflow
    settle(qtbot, window)
    before = [maps.tile(1, c) for c in range(16)]
    doc.resize_input(120, 120)
    settle(qtbot, window)
    after = [maps.tile(1, c) for c in range(16)]
    assert all(a is b for a, b in zip(before, after, strict=True))
    assert np.array_equal(after[5].image.data2d, doc.results.maps[1][5])
    assert after[5].vb.viewRange()[0] == pytest.approx([0, 120], abs=1e-6)
    items = len(maps.scene.items())
    doc.update_config(0, filters=8)
    settle(qtbot, window)
    assert maps.tile(1, 0) is before[0] and len(maps.group(1).tiles) == 8
    assert maps.tile(1, 8) is None and len(maps.scene.items()) < items
    assert np.array_equal(maps.tile(1, 7).image.data2d, doc.results.maps[1][7])


def _rendered(a: np.ndarray, levels: tuple[float, float], signed: bool) -> MapImage:
    fresh = MapImage(0, 0)
    fresh.setLookupTable(colors.lut(signed))
    fresh.setImage(a, autoLevels=False, levels=levels)
    fresh.render()
    return fresh


@pytest.mark.parametrize(
    ("shape", "cells"),
    [
        ((3, 24, 36), [(0, 0), (5, 17), (23, 35), (5, 18)]),
        ((1, 512, 512), [(0, 0), (6, 18), (511, 511), (7, 19)]),  # shown every 2nd cell
    ],
)
def test_a_cell_edit_recolours_only_its_window_and_every_tile_shows_the_new_values(
    qtbot, window, monkeypatch, shape, cells
):
    """Tiles recolour just the cells a cell edit changed (Results.windows); what they
    show must be exactly a full rendering of the new values (big maps are shown
    decimated: a window between two shown cells changes nothing on screen)."""
    patched = []
    real_patch = MapImage.patch

    def patch(self, a, cells, step=1):  # type: ignore[no-untyped-def]
        patched.append(real_patch(self, a, cells, step))
        return patched[-1]

    monkeypatch.setattr(MapImage, "patch", patch)
    doc = window.doc
    x = np.random.default_rng(3).random(shape, dtype=np.float32)
    layers = [conv_spec(shape[0], 3, (3, 3), padding=1, seed=3), act_spec("relu")]
    doc.apply_document(x, layers)
    qtbot.waitUntil(lambda: doc.settled)
    window.maps.relayout()
    QApplication.processEvents()
    for k, (r, c) in enumerate(cells):
        ch = k % shape[0]
        with qtbot.waitSignal(doc.results_ready, check_params_cb=lambda res: res.path == "cells"):
            doc.set_cell(ch, r, c, float(doc.input[ch, r, c]) + 0.75)
        res = doc.results
        assert res.windows[0] == (r, r, c, c)
        for m in range(len(res.maps)):
            for ch in range(res.maps[m].shape[0]):
                tile = window.maps.tile(m, ch)
                assert np.array_equal(tile.image.data2d, res.maps[m][ch])
                step = 2 if shape[1] == 512 else 1
                want = res.maps[m][ch][::step, ::step]
                fresh = _rendered(want, tile.levels, bool(tile.signed))
                shown = tile.image.getPixmap().toImage()  # rendered now if it waits for a paint
                assert shown == fresh.getPixmap().toImage(), (k, m, ch)
    assert sum(patched) >= 6  # most tiles took the window path
