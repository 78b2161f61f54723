"""Dead and NaN maps say so on their tile's caption (in words, first), and a right click on
a map opens its histogram beside it, counting every cell of that channel."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from cnn_explorer.explorer.stats import map_stats
from cnn_explorer.ui.common.histogram_window import HistogramPopup
from cnn_explorer.ui.explorer.map_caption import TileCaption, TileStats, caption_texts


def test_dead_and_nan_channels_lead_the_caption(qapp) -> None:  # type: ignore[no-untyped-def]
    a = np.zeros((3, 4, 4), np.float32)
    a[1] = np.arange(16).reshape(4, 4)
    a[2, 0, 0] = np.nan
    st = map_stats(a)
    dead, alive, nan = (TileStats.of(st, c) for c in range(3))
    assert dead.flags == ("dead: all zeros",) and alive.flags == ()
    assert nan.flags[0] == "1 NaN/inf"
    assert caption_texts(dead)[0] == "ch 0 · dead: all zeros"
    assert caption_texts(nan)[0].startswith("ch 2 · 1 NaN/inf")
    caption = TileCaption()
    caption.set_width(40, compact=True)  # an overview's small tile keeps the word
    caption.set_stats(dead, ((0.0, 1.0), False))  # even with a per-map colour bar
    assert caption.text in ("ch 0 · dead", "0 dead")


def test_right_click_on_a_map_opens_its_histogram(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    tile = window.maps.tile(1, 0)
    assert tile is not None
    values = np.asarray(tile.image.data2d)
    scene_pt = tile.image.mapToScene(0.5, 0.5)
    view = window.maps.view
    window.maps.scroll.ensureVisible(int(scene_pt.x()), int(scene_pt.y()))
    pos = view.mapFromScene(scene_pt)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.RightButton, pos=QPoint(pos.x(), pos.y()))
    QApplication.processEvents()
    popups = [w for w in QApplication.topLevelWidgets() if isinstance(w, HistogramPopup)]
    assert len(popups) == 1 and popups[0].isVisible()
    popup = popups[0]
    assert int(popup.hist.counts.sum()) == values.size
    assert "channel 0" in popup.windowTitle()
    assert f"{values.size} values" in popup.summary.text()
    popup.close()
