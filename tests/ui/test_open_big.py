"""Opening a big document keeps the GUI thread free: its first forward runs on the pool
while the map panel says it is computing, the maps appear once the pool is done, and
closing the window meanwhile is clean."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cnn_explorer.explorer import incremental
from cnn_explorer.explorer.specs import act_spec, conv_spec
from cnn_explorer.ui.explorer.map_pages import COMPUTING_TEXT


def _big() -> tuple[np.ndarray, list]:
    """A 256² picture through 16 filters: ~10 M multiply-adds, more than a new document's
    first forward may cost on the GUI thread, but quick on the pool."""
    x = np.random.default_rng(0).random((1, 256, 256), dtype=np.float32)
    return x, [conv_spec(1, 16, (3, 3), padding="same", seed=1), act_spec("relu")]


@pytest.fixture
def held_forward(monkeypatch):
    """Every forward pass records whether it ran on the GUI thread; one on another thread
    waits for ``release`` (so the test sees the document mid-computation)."""
    real = incremental.forward
    on_gui: list[bool] = []
    started, release = threading.Event(), threading.Event()

    def forward(*args, **kwargs):  # type: ignore[no-untyped-def]
        on_gui.append(threading.current_thread() is threading.main_thread())
        if not on_gui[-1]:
            started.set()
            release.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(incremental, "forward", forward)
    yield on_gui, started, release
    release.set()


def test_a_big_document_is_computed_off_the_gui_thread(qtbot, window, held_forward):
    on_gui, started, release = held_forward
    doc = window.doc
    x, layers = _big()
    with qtbot.waitSignal(doc.busy_changed) as busy:
        doc.apply_document(x, layers)
    assert busy.args == [True]
    assert started.wait(20)
    # The grid shows the new input at once; the maps say they are being computed
    # instead of showing the worked example's.
    assert window.grid.model.rowCount() == 256
    assert window.maps.stack.computing
    assert window.maps.stack.note.text() == COMPUTING_TEXT
    assert window.busy_bar.isVisible()
    release.set()
    qtbot.waitUntil(lambda: doc.settled, timeout=20_000)
    assert on_gui and not any(on_gui)  # every forward ran on the pool
    assert not window.maps.stack.computing
    assert window.maps.stack.currentWidget() is window.maps.scroll
    assert not window.busy_bar.isVisible()
    plain = doc.model.plain_forward()
    assert len(doc.results.maps) == len(plain) == 3
    for got, want in zip(doc.results.maps, plain, strict=True):
        assert np.array_equal(got, want)
    tile = window.maps.tile(2, 5)
    assert tile is not None and np.array_equal(tile.image.data2d, plain[2][5])


def test_a_small_document_is_computed_at_once(qtbot, window, held_forward):
    on_gui, _started, _release = held_forward
    doc = window.doc
    busy = []
    doc.busy_changed.connect(busy.append)
    x = np.random.default_rng(1).random((1, 12, 12), dtype=np.float32)
    with qtbot.waitSignal(doc.results_ready):
        doc.apply_document(x, [conv_spec(1, 2, (3, 3), seed=2)])
    assert on_gui == [True] and busy == []  # no pool round trip, no note flashing
    assert not window.maps.stack.computing
    assert window.maps.tile(1, 1) is not None


def test_an_edit_while_the_document_computes_ends_in_its_maps(qtbot, window, held_forward):
    _on_gui, started, release = held_forward
    doc = window.doc
    x, layers = _big()
    with qtbot.waitSignal(doc.busy_changed):
        doc.apply_document(x, layers)
    assert started.wait(20)
    doc.set_cell(0, 5, 7, 3.0)  # the running job is stale now
    release.set()
    qtbot.waitUntil(lambda: doc.settled, timeout=20_000)
    assert not window.maps.stack.computing
    plain = doc.model.plain_forward()
    assert plain[0][0, 5, 7] == 3.0
    for got, want in zip(doc.results.maps, plain, strict=True):
        assert np.array_equal(got, want)


def test_closing_while_a_document_computes_is_clean(qtbot, window, held_forward):
    _on_gui, started, release = held_forward
    doc = window.doc
    published = []
    doc.results_ready.connect(published.append)
    x, layers = _big()
    with qtbot.waitSignal(doc.busy_changed):
        doc.apply_document(x, layers)
    assert started.wait(20)
    # The job finishes while the window closes (closing waits for it, never kills it).
    threading.Timer(0.05, release.set).start()
    window.close()
    qtbot.wait(20)  # the job's queued "done" is delivered after the close
    assert not window.isVisible()
    assert published == []  # nothing is drawn into a closing window
    assert not doc.busy
