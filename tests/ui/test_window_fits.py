"""The window fits every common screen from 1280×720 up: its minimum size fits 1280×720, a
resize gets exactly the size asked for, and the Training tab's Start button is on screen
(inside the window and inside any scroll area's visible viewport) without scrolling, before
and after the Training tab was first shown, and after a short real training run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, QSize
from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QWidget

from cnn_explorer.ui.main_window import MainWindow

SMALLEST = QSize(1280, 720)
SIZES = [(1280, 800), (1366, 768), (1440, 900), (1920, 1080)]
TIMEOUT = 60_000


def _fits(size: QSize, bound: QSize = SMALLEST) -> bool:
    return size.width() <= bound.width() and size.height() <= bound.height()


def _settle(qtbot, win: MainWindow, w: int, h: int) -> None:  # type: ignore[no-untyped-def]
    win.resize(w, h)
    for _ in range(3):
        QApplication.processEvents()
    qtbot.wait(20)


def _rect_in(widget: QWidget, ancestor: QWidget) -> QRect:
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


def _check_fits(qtbot, win: MainWindow, w: int, h: int) -> None:  # type: ignore[no-untyped-def]
    """(a) minimum size fits 1280×720, (b) the resize is honoured, (c) Start is on screen."""
    assert _fits(win.minimumSizeHint()), win.minimumSizeHint()
    assert _fits(win.minimumSize()), win.minimumSize()
    _settle(qtbot, win, w, h)
    assert win.size() == QSize(w, h), f"asked {w}×{h}, got {win.size()}"
    assert _fits(win.minimumSizeHint()), win.minimumSizeHint()
    if win.tabs.currentWidget() is not win.training:  # created when first shown
        return
    start = win.training.controls.start_button  # type: ignore[attr-defined]
    assert start.isVisible()
    rect = _rect_in(start, win)
    assert win.rect().contains(rect), f"Start at {rect} outside {win.rect()} at {w}×{h}"
    parent = start.parentWidget()
    while parent is not None and parent is not win:
        scroll = parent.parentWidget()
        if isinstance(scroll, QAbstractScrollArea) and parent is scroll.viewport():
            shown = _rect_in(start, parent)
            assert parent.rect().contains(shown), (
                f"Start at {shown} outside the scroll viewport {parent.rect()} at {w}×{h}"
            )
        assert parent.rect().contains(_rect_in(start, parent)), f"Start clipped by {parent}"
        parent = parent.parentWidget()
    assert not start.visibleRegion().isEmpty()


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_window_fits_before_and_after_the_training_tab(qtbot, window: MainWindow, size) -> None:  # type: ignore[no-untyped-def]
    w, h = size
    _check_fits(qtbot, window, w, h)
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.training is not None)
    _check_fits(qtbot, window, w, h)
    window.tabs.setCurrentIndex(0)  # back on the maps: the created tab must not widen it
    _check_fits(qtbot, window, w, h)
    window.tabs.setCurrentIndex(1)
    _check_fits(qtbot, window, w, h)


def test_every_size_in_turn_keeps_start_visible(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.training is not None)
    for w, h in [*SIZES, (1280, 720), *reversed(SIZES)]:
        _check_fits(qtbot, window, w, h)


@pytest.fixture(scope="module")
def bars(make_bars: Callable[[int, int], Path]) -> Path:
    return make_bars(6, 5)


def test_window_fits_with_a_trained_network(qtbot, window: MainWindow, bars: Path) -> None:  # type: ignore[no-untyped-def]
    """After a short real run (filters, confusion matrix, a long status sentence) and on
    each result tab, the window still fits and Start is still on screen."""
    tab = window.show_training()
    tab.set_folder(str(bars))  # type: ignore[attr-defined]
    tab.controls.epochs.setValue(2)  # type: ignore[attr-defined]
    tab.controls.batch_size.setValue(4)  # type: ignore[attr-defined]
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT) as done:  # type: ignore[attr-defined]
        assert tab.start()  # type: ignore[attr-defined]
    assert done.args == ["completed"]
    assert tab.trained is not None  # type: ignore[attr-defined]
    results = tab.results.tabs  # type: ignore[attr-defined]
    for index in range(results.count()):
        results.setCurrentIndex(index)
        for w, h in SIZES:
            _check_fits(qtbot, window, w, h)
