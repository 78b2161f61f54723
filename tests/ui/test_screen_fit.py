"""Every control is on screen at 1280×800, 1366×768, 1440×900 and 1920×1080 in every state
a new user reaches — the worked example, the Training tab opened, a 64×96 RGB photo with 32
filters, a 1×32 input, a project with a trained network opened — and the maps keep their
promises there: drawn numbers never overlap, tiles of neighbouring sizes are drawn at
neighbouring sizes.

"On screen" is checked on the widgets themselves: every visible control outside a scroll
area (those are reached by scrolling) lies inside the window and inside each of its
parents, so nothing is cut off or pushed past the edge."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect, QRectF, QSize
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QSlider,
    QTabBar,
    QWidget,
)
from ui_helpers import settle

from cnn_explorer.explorer.specs import act_spec, conv_spec, pool_spec
from cnn_explorer.ui.common.messages import RecordingReporter
from cnn_explorer.ui.main_window import MainWindow

SMALLEST = QSize(1280, 720)
SIZES = [(1280, 800), (1366, 768), (1440, 900), (1920, 1080)]
IDS = [f"{w}x{h}" for w, h in SIZES]
CONTROLS = (QAbstractButton, QComboBox, QAbstractSpinBox, QSlider, QLineEdit, QTabBar)
TIMEOUT = 60_000


def _resize(qtbot, win: MainWindow, w: int, h: int) -> None:  # type: ignore[no-untyped-def]
    assert win.minimumSizeHint().width() <= SMALLEST.width(), win.minimumSizeHint()
    assert win.minimumSizeHint().height() <= SMALLEST.height(), win.minimumSizeHint()
    win.resize(w, h)
    for _ in range(3):
        QApplication.processEvents()
    qtbot.wait(20)
    win.maps.relayout()
    QApplication.processEvents()
    assert win.size() == QSize(w, h), f"asked {w}×{h}, got {win.size()}"


def _scroll_area(widget: QWidget, top: QWidget) -> QAbstractScrollArea | None:
    """The scroll area whose viewport holds ``widget`` (None: none below ``top``)."""
    p = widget.parentWidget()
    while p is not None and p is not top:
        outer = p.parentWidget()
        if isinstance(outer, QAbstractScrollArea) and p is outer.viewport():
            return outer
        p = outer
    return None


def _rect_in(widget: QWidget, ancestor: QWidget) -> QRect:
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


def _assert_controls_on_screen(win: MainWindow, state: str) -> None:
    """Every visible control outside scroll areas lies inside the window and inside each
    parent (a control cut by its dock or pushed past the window edge fails); one inside a
    scroll area is reached by scrolling down, never sideways."""
    checked = 0
    for w in win.findChildren(QWidget):
        if not isinstance(w, CONTROLS) or not w.isVisible() or w.window() is not win:
            continue  # (a popup or a floating dock is its own window)
        if isinstance(w, QTabBar) and w.parentWidget() is win and w.count() < 2:
            continue  # a dock group's tab bar with one dock left: Qt parks it off-screen
        area = _scroll_area(w, win)
        if area is not None:
            bar = area.horizontalScrollBar()
            assert bar.maximum() == 0, f"{state}: {type(area).__name__} scrolls sideways"
            continue
        checked += 1
        name = f"{type(w).__name__} {w.objectName() or getattr(w, 'text', lambda: '')()!r}"
        rect = _rect_in(w, win)
        assert win.rect().contains(rect), f"{state}: {name} at {rect} outside {win.rect()}"
        parent = w.parentWidget()
        while parent is not None and parent is not win:
            inner = _rect_in(w, parent)
            assert parent.rect().contains(inner), (
                f"{state}: {name} at {inner} cut by {type(parent).__name__} {parent.rect()}"
            )
            parent = parent.parentWidget()
    assert checked > 5, f"{state}: only {checked} controls found"


def _assert_numbers_apart(win: MainWindow, state: str) -> None:
    """Drawn number labels of every shown tile: inside their cell, never overlapping."""
    labels: list[QRectF] = []
    for t in win.maps.shown_tiles():
        if t.numbers is None or not t.numbers.isVisible():
            continue
        tr = t.numbers.sceneTransform()
        for r, c, _text, rect in t.numbers.labels():
            assert tr.mapRect(QRectF(c, r, 1, 1)).contains(rect), state
            labels.append(rect)
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            assert not a.intersects(b), f"{state}: number labels overlap at {a}, {b}"


def _assert_neighbouring_tiles(win: MainWindow, state: str) -> None:
    """Of two maps drawn as large tiles, the one with more cells is drawn no smaller and
    bigger by no more than the ratio of their cell counts (the longer sides)."""
    maps, res = win.maps, win.doc.results
    sides = []
    for m, x in enumerate(res.maps):
        if maps.is_overview(m) or maps.picture_tile(m) is not None or maps.is_collapsed(m):
            continue
        t = maps.tile(m, 0)
        if t is None or t.rect.isEmpty():
            continue
        g = t.vb.geometry()
        sides.append((max(x.shape[1:]), max(g.width(), g.height())))
    for n1, s1 in sides:
        for n2, s2 in sides:
            if n1 < n2:
                assert s1 <= s2 + 1 and s2 <= s1 * n2 / n1 + 1, (state, n1, s1, n2, s2)


def _photo() -> np.ndarray:
    yy, xx = np.mgrid[0:64, 0:96].astype(np.float32)
    return np.stack([0.5 + 0.5 * np.sin(xx / 9), yy / 64, 1 - xx / 96]).astype(np.float32)


def _open(qtbot, win: MainWindow, x: np.ndarray, layers: list) -> None:  # type: ignore[no-untyped-def]
    win.doc.apply_document(x, layers)
    settle(qtbot, win)


STATES: dict[str, Callable[..., None]] = {
    "worked example": lambda qtbot, win: None,
    "photo, 32 filters": lambda qtbot, win: _open(
        qtbot,
        win,
        _photo(),
        [conv_spec(3, 32, (3, 3), padding=1, seed=3), act_spec("relu"), pool_spec()],
    ),
    "1×32 input": lambda qtbot, win: _open(
        qtbot,
        win,
        np.sin(np.linspace(0, 9, 32))[None, None].astype(np.float32),
        [conv_spec(1, 3, (1, 3), seed=1), act_spec("relu")],
    ),
}


def _check_state(qtbot, win: MainWindow, size: tuple[int, int], state: str) -> None:  # type: ignore[no-untyped-def]
    _resize(qtbot, win, *size)
    _assert_controls_on_screen(win, state)
    if win.tabs.currentIndex() == 0:
        _assert_numbers_apart(win, state)
        _assert_neighbouring_tiles(win, state)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_every_control_is_on_screen_before_and_after_the_training_tab(qtbot, window, size):
    for state, make in STATES.items():
        make(qtbot, window)
        _check_state(qtbot, window, size, state)
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.training is not None)
    _check_state(qtbot, window, size, "Training tab")
    window.tabs.setCurrentIndex(0)
    for state, make in STATES.items():
        make(qtbot, window)
        _check_state(qtbot, window, size, f"{state}, after the Training tab")


@pytest.fixture(scope="module")
def bars(make_bars: Callable[[int, int], Path]) -> Path:
    return make_bars(6, 11)


def test_a_project_with_a_trained_network_fits_every_screen(qtbot, tmp_path, bars):
    """Trained for real (curves, epoch filters, confusion matrix), saved, opened in a fresh
    window: both tabs, every size, every control on screen."""
    win = MainWindow(restore_state=False)
    win.persist_settings = False
    win.reporter = RecordingReporter(win)
    qtbot.addWidget(win)
    tab = win.show_training()
    tab.set_folder(str(bars))  # type: ignore[attr-defined]
    tab.controls.epochs.setValue(2)  # type: ignore[attr-defined]
    tab.controls.batch_size.setValue(4)  # type: ignore[attr-defined]
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT):  # type: ignore[attr-defined]
        assert tab.start()  # type: ignore[attr-defined]
    path = str(tmp_path / "trained.cnnx")
    assert win.save_to(path)
    assert tab.shutdown(TIMEOUT)  # type: ignore[attr-defined]

    fresh = MainWindow(restore_state=False)
    fresh.persist_settings = False
    fresh.reporter = RecordingReporter(fresh)
    qtbot.addWidget(fresh)
    fresh.show()
    qtbot.waitExposed(fresh)
    assert fresh.open_project(path)
    settle(qtbot, fresh)
    assert fresh.training is not None and fresh.training.trained is not None  # type: ignore[attr-defined]
    for size in SIZES:
        _check_state(qtbot, fresh, size, "trained project")
    fresh.tabs.setCurrentIndex(1)
    results = fresh.training.results.tabs  # type: ignore[attr-defined]
    for index in range(results.count()):
        results.setCurrentIndex(index)
        for size in SIZES:
            _check_state(qtbot, fresh, size, f"trained project, result tab {index}")
    assert fresh.training.shutdown(TIMEOUT)  # type: ignore[attr-defined]
