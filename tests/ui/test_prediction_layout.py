"""The first picture of a network in "Try an image" makes its plot items a few per
event-loop turn (a fine-tuned ResNet's twenty-odd view boxes blocked the GUI for a quarter
of a second): the GUI's timers keep firing meanwhile, the panel is busy until the last
column is made, and the complete panel is pixel for pixel the one made in a single turn —
also when a newer image or network arrives mid-way, or the window closes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGraphicsRectItem

from cnn_explorer.engine import layers
from cnn_explorer.engine.network import Network
from cnn_explorer.ui.training.prediction_panel import PredictionPanel

CLASSES = ["a", "b", "c"]
WAIT_MS = 20_000


def _deep(convs: int, seed: int = 0) -> Network:
    """``convs`` conv + ReLU pairs on a 1×8×8 input: one mosaic column each."""
    stack: list[layers.Layer] = []
    for k in range(convs):
        stack += [layers.Conv2D(1 if k == 0 else 3, 3, 3, padding=1, rng=seed + k)]
        stack += [layers.Activation("relu")]
    return Network([*stack, layers.Flatten(), layers.Dense(3 * 8 * 8, 3, rng=seed + 99)])


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(5).normal(size=(n, 1, 8, 8)).astype(np.float32)


def _panel(qtbot: Any, budget_s: float) -> PredictionPanel:
    """A shown panel whose turns make columns for ``budget_s`` (0: one column a turn)."""
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    panel.view.budget_s = budget_s
    panel.resize(1500, 360)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def _pictures(panel: PredictionPanel) -> list[bytes]:
    items = panel.view.scene().items()
    shown = [i.image.tobytes() for i in items if isinstance(i, pg.ImageItem)]
    shown += [i.opts["width"].tobytes() for i in items if isinstance(i, pg.BarGraphItem)]
    return sorted(shown)


def _columns(panel: PredictionPanel) -> int:
    return sum(isinstance(i, pg.ImageItem) for i in panel.view.scene().items())


def _grab(qtbot: Any, panel: PredictionPanel) -> Any:
    """The panel's pixels once they no longer change: painting the probability axis the
    first time sizes it, which lays the grid out again."""
    before = panel.view.grab().toImage()
    for _ in range(20):
        qtbot.wait(5)
        after = panel.view.grab().toImage()
        if after == before:
            return after
        before = after
    raise AssertionError("the panel kept changing")


def _reference(qtbot: Any, net: Network, image: np.ndarray, select: Any = None) -> Any:
    """A panel that makes every column at once, as the panel always did."""
    ref = _panel(qtbot, math.inf)
    ref.set_network(net, CLASSES)
    if select is not None:
        ref.select_filter(*select)
    ref.show_image(image, "image")
    assert not ref.is_busy  # all made in show_image
    return ref


@pytest.fixture
def ticks(qtbot):
    """A GUI timer firing every turn; each tick records how many columns were made."""
    seen: list[int] = []
    timer = QTimer()
    timer.setInterval(0)
    yield timer, seen
    timer.stop()


def test_a_new_layout_is_made_over_several_turns_while_a_gui_timer_fires(qtbot, ticks):
    timer, seen = ticks
    panel = _panel(qtbot, 0.0)
    net = _deep(12)
    panel.set_network(net, CLASSES)
    panel.select_filter(4, 1)
    image = _images(1)[0]
    timer.timeout.connect(lambda: seen.append(_columns(panel)) if panel.is_busy else None)
    timer.start()
    panel.show_image(image, "image")  # classified at once: a small network
    assert panel.is_busy and not panel.busy.isHidden()
    assert 0 < _columns(panel) < 14  # input + 12 maps + the selected filter's
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=WAIT_MS)
    assert panel.busy.isHidden()
    assert len(set(seen)) >= 5 and seen == sorted(seen)  # grew turn by turn, timer firing
    ref = _reference(qtbot, net, image, (4, 1))
    assert _pictures(panel) == _pictures(ref) and _columns(panel) == 14
    outlines = [i for i in panel.view.scene().items() if isinstance(i, QGraphicsRectItem)]
    assert [o.pen().color().name() for o in outlines].count("#ff7f0e") == 1
    assert _grab(qtbot, panel) == _grab(qtbot, ref)
    assert panel.result.text() == ref.result.text()


def test_a_newer_image_mid_way_is_the_one_the_complete_panel_shows(qtbot):
    panel = _panel(qtbot, 0.0)
    net = _deep(10)
    panel.set_network(net, CLASSES)
    first, second = _images(2)
    panel.show_image(first, "image")
    assert panel.is_busy
    panel.show_image(second, "image")  # same layout: goes on with the items made so far
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=WAIT_MS)
    ref = _reference(qtbot, net, second)
    assert _pictures(panel) == _pictures(ref)
    assert _grab(qtbot, panel) == _grab(qtbot, ref)


def test_a_newer_network_mid_way_makes_its_own_layout(qtbot):
    panel = _panel(qtbot, 0.0)
    image = _images(1)[0]
    panel.set_network(_deep(10), CLASSES)
    panel.show_image(image, "image")
    assert panel.is_busy
    other = _deep(6, seed=40)
    panel.set_network(other, CLASSES)  # shows the same image with it
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=WAIT_MS)
    ref = _reference(qtbot, other, image)
    assert _pictures(panel) == _pictures(ref) and _columns(panel) == 7
    assert _grab(qtbot, panel) == _grab(qtbot, ref)


def test_closing_mid_way_stops_and_the_next_image_is_drawn_whole(qtbot):
    panel = _panel(qtbot, 0.0)
    net = _deep(8)
    panel.set_network(net, CLASSES)
    first, second = _images(2)
    panel.show_image(first, "image")
    assert panel.is_busy
    assert panel.shutdown()
    made = _columns(panel)
    qtbot.wait(20)
    assert not panel.is_busy and _columns(panel) == made < 9  # no column made after close
    panel.show_image(second, "image")
    panel.wait()  # scripts: every column made
    assert not panel.is_busy
    ref = _reference(qtbot, net, second)
    assert _pictures(panel) == _pictures(ref)
    assert _grab(qtbot, panel) == _grab(qtbot, ref)


def test_a_deep_network_scrolls_sideways_instead_of_clipping_its_last_columns(qtbot):
    """Twenty mosaics do not fit a 900-pixel panel: the view takes the width its captions
    need and scrolls, so the last maps and the probability bars are inside it (they were
    cut off at the panel's right edge)."""
    panel = _panel(qtbot, math.inf)
    panel.resize(900, 360)
    panel.set_network(_deep(20), CLASSES)
    panel.show_image(_images(1)[0], "image")
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=WAIT_MS)
    _grab(qtbot, panel)  # laid out
    assert panel.scroll.horizontalScrollBar().maximum() > 0
    view_width = panel.view.width()
    plots = [i for i in panel.view.scene().items() if isinstance(i, pg.PlotItem)]
    assert len(plots) == 1 and plots[0].sceneBoundingRect().right() <= view_width
    boxes = [i for i in panel.view.scene().items() if isinstance(i, pg.ViewBox)]
    assert len(boxes) > 20 and all(b.sceneBoundingRect().right() <= view_width for b in boxes)
