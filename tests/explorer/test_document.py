"""The Qt shell around the explorer's model: undo stack, coalescing, the pool, refinement."""

from __future__ import annotations

import numpy as np
import pytest
from explorer_helpers import assert_exactly_fresh

from cnn_explorer.explorer import presets
from cnn_explorer.explorer.blas import blas_controller, single_blas_thread
from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.specs import act_spec, conv_spec


@pytest.fixture
def doc(qapp):
    d = Document()
    yield d
    d.shutdown()


def computed(qtbot, d: Document) -> None:
    qtbot.waitUntil(lambda: d.computed, timeout=20_000)


def settled(qtbot, d: Document) -> None:
    qtbot.waitUntil(lambda: d.settled, timeout=20_000)


def test_burst_of_edits_is_one_recompute_and_one_undo_step_each(qtbot, doc):
    published = []
    doc.results_ready.connect(published.append)
    for v in range(10):
        doc.set_cell(0, 0, 0, float(v))
    with qtbot.waitSignal(doc.results_ready):
        pass
    assert len(published) == 1
    assert published[0].maps[1][0, 0, 0] == 9 + 1 + 1 + 1
    assert doc.undo_stack.count() == 10


def test_one_change_signal_per_edit(qtbot, doc):
    kinds = []
    doc.changed.connect(lambda c: kinds.append(c.kind))
    doc.set_cell(0, 1, 1, 2.0)
    doc.update_config(0, stride=[2, 2])
    doc.add_layer(act_spec("tanh"))
    doc.select_layer(1)
    assert kinds == ["input", "layer", "layers", "selection"]


def test_bias_edits_of_one_filter_merge_into_one_undo_step(qtbot, doc):
    for v in (0.5, 1.0, 1.5):
        doc.set_bias(0, 0, v)
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert doc.layers[0].bias[0] == 0.0


def test_kind_change_through_the_undo_stack(qtbot, doc):
    doc.set_kind(2, "avgpool")
    settled(qtbot, doc)
    assert np.array_equal(doc.results.maps[3][0], [[2.5, 1.5], [1.5, 2.5]])
    doc.undo_stack.undo()
    settled(qtbot, doc)
    assert np.array_equal(doc.results.maps[3][0], [[4, 2], [2, 4]])


def test_weight_edit_is_refined_to_a_plain_forward_after_the_pause(qtbot, doc):
    doc.apply_document(
        np.random.default_rng(0).random((1, 20, 20)).astype(np.float32),
        [
            conv_spec(1, 6, (3, 3), padding=1, seed=1),
            act_spec("relu"),
            conv_spec(6, 5, (3, 3), seed=2),
        ],
    )
    doc.recompute_now()
    doc.set_weight(0, 2, 0, 1, 1, 0.7)
    computed(qtbot, doc)
    assert doc.results.path == "filters" and not doc.settled
    settled(qtbot, doc)
    assert doc.results.path == "forward"
    assert_exactly_fresh(doc.model)


def test_paint_stroke_is_live_and_one_undo_step(qtbot, doc):
    doc.begin_stroke()
    doc.paint(0, [(0, 0)], 9.0)
    doc.paint(0, [(1, 1)], 9.0)
    computed(qtbot, doc)
    assert doc.results.maps[0][0, 1, 1] == 9.0 and doc.undo_stack.count() == 0
    doc.end_stroke()
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    settled(qtbot, doc)
    assert np.array_equal(doc.input[0], presets.WORKED_EXAMPLE)


def test_large_recompute_runs_off_thread_and_discards_stale(qtbot, qapp):
    d = Document(async_cost=0)  # everything goes to the pool
    try:
        busy, published = [], []
        d.busy_changed.connect(busy.append)
        d.results_ready.connect(published.append)
        x = np.random.default_rng(0).random((1, 256, 256)).astype(np.float32)
        with qtbot.waitSignal(d.busy_changed, timeout=5000):
            d.set_input(x)  # a job starts ...
        d.set_cell(0, 0, 0, 100.0)  # ... and goes stale
        settled(qtbot, d)
        assert busy[0] is True and busy[-1] is False and not d.busy
        assert published[-1].maps[0][0, 0, 0] == 100.0
        assert all(p.maps[0][0, 0, 0] == 100.0 for p in published)  # stale ones dropped
        assert_exactly_fresh(d.model)
    finally:
        d.shutdown()


def test_a_job_on_the_pool_equals_a_plain_forward_bit_for_bit(qtbot, qapp):
    """The pool computes with one BLAS thread, like the plain forward: OpenBLAS takes a
    thread limit only from the main thread, and two threads round differently (seen
    with OPENBLAS_CORETYPE=Haswell)."""
    d = Document(async_cost=0)  # everything goes to the pool
    try:
        x = np.random.default_rng(5).random((1, 256, 256)).astype(np.float32)
        layers = [
            conv_spec(1, 16, (3, 3), padding="same", seed=1),
            act_spec("relu"),
            conv_spec(16, 8, (3, 3), seed=2),
        ]
        with qtbot.waitSignal(d.busy_changed, timeout=5000):
            d.apply_document(x, layers)
        settled(qtbot, d)
        assert_exactly_fresh(d.model)
        d.set_weight(2, 3, 4, 1, 1, 0.5)  # a later conv's weight: a job from layer 2 on
        settled(qtbot, d)
        assert_exactly_fresh(d.model)
    finally:
        d.shutdown()


def test_busy_never_sticks_when_a_cheap_edit_supersedes_a_slow_job(qtbot, qapp):
    """A 256×256 scene resized to 255 rows and at once to 4×4: the slow job goes stale,
    the cheap edit is computed inline, and "Computing…" must end."""
    d = Document(async_cost=2_000_000)
    try:
        d.apply_document(
            np.random.default_rng(2).random((1, 256, 256)).astype(np.float32),
            [conv_spec(1, 8, (5, 5), padding=2, seed=1), act_spec("relu")],
        )
        d.recompute_now()
        with qtbot.waitSignal(d.busy_changed, timeout=5000):
            d.resize_input(255, 256)
        d.resize_input(4, 4)
        settled(qtbot, d)
        assert not d.busy and d.results.maps[0].shape == (1, 4, 4)
        d.set_cell(0, 0, 0, 3.0)  # later edits take the fast path again
        computed(qtbot, d)
        assert d.results.path == "cells"
    finally:
        d.shutdown()


def test_shutdown_waits_and_stops(qtbot, qapp):
    d = Document(async_cost=0)
    published = []
    d.results_ready.connect(published.append)
    d.set_input(np.ones((1, 128, 128), np.float32))
    d.shutdown()
    d.set_cell(0, 0, 0, 2.0)  # after shutdown nothing is computed
    qtbot.wait(50)
    assert published == []


def test_single_blas_thread_is_scoped_and_reentrant():
    blas = blas_controller().select(user_api="blas")
    if not blas.lib_controllers:
        pytest.skip("no BLAS found by threadpoolctl")
    before = blas.info()[0]["num_threads"]
    with single_blas_thread():
        assert blas.info()[0]["num_threads"] == 1
        with single_blas_thread():
            assert blas.info()[0]["num_threads"] == 1
        assert blas.info()[0]["num_threads"] == 1
    assert blas.info()[0]["num_threads"] == before


def test_a_refused_edit_is_announced_and_changes_nothing(qtbot, doc):
    from cnn_explorer.limits import MAX_LAYERS

    for _ in range(MAX_LAYERS - len(doc.layers)):
        doc.add_layer(act_spec("identity"))
    steps = doc.undo_stack.count()
    with qtbot.waitSignal(doc.refused) as said:
        doc.duplicate_layer(0)
    assert f"at most {MAX_LAYERS} layers" in said.args[0]
    assert doc.undo_stack.count() == steps and len(doc.layers) == MAX_LAYERS
