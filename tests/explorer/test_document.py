"""The document without widgets: intents, undo, recompute, coalescing, threading."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_explorer.explorer import presets
from cnn_explorer.explorer.document import (
    Document,
    Selection,
    act_spec,
    conv_spec,
    map_stats,
    pool_spec,
)


@pytest.fixture
def doc(qapp):
    d = Document()
    yield d
    d.shutdown()


def settle(qtbot, d: Document) -> None:
    qtbot.waitUntil(lambda: d._dirty_from is None and not d._timer.isActive() and not d.busy)


def test_worked_example(doc):
    maps = doc.results.maps
    assert np.array_equal(maps[1][0], [[4, 2, 0], [2, 2, 2], [0, 2, 4]])
    assert np.array_equal(maps[2][0], [[4, 2, 0], [2, 2, 2], [0, 2, 4]])
    assert np.array_equal(maps[3][0], [[4, 2], [2, 4]])
    assert [s.shape for s in doc.statuses] == [(1, 3, 3), (1, 3, 3), (1, 2, 2)]


def test_edge_kernel(qtbot, doc):
    doc.set_kernel(0, 0, 0, presets.EDGE_KERNEL, "edge")
    settle(qtbot, doc)
    assert np.array_equal(doc.results.maps[1][0], [[0, 2, 0], [0, 0, 0], [0, -2, 0]])


def test_burst_of_edits_is_one_recompute(qtbot, doc):
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
    assert kinds == ["input", "layer", "layers"]


def test_forward_from_reuses_prefix(qtbot, doc):
    before = doc.results.maps
    doc.update_config(1, fn="sigmoid")
    settle(qtbot, doc)
    after = doc.results.maps
    assert after[1] is before[1]  # the conv output was reused, not recomputed
    assert after[2][0, 0, 2] == pytest.approx(0.5)


def test_results_first_names_the_first_map_that_can_differ(qtbot, doc):
    """Views redraw from ``results.first`` on: a layer edit must not redraw the input (or
    the maps before the layer), an input edit must redraw everything."""
    doc.set_weight(0, 0, 0, 0, 0, 3.0)
    settle(qtbot, doc)
    assert doc.results.first == 1  # maps[0] (the input) is the same array as before
    doc.update_config(1, fn="sigmoid")
    settle(qtbot, doc)
    assert doc.results.first == 2
    doc.set_cell(0, 0, 0, 5.0)
    settle(qtbot, doc)
    assert doc.results.first == 0
    doc.set_cell(0, 0, 0, 6.0)  # an input edit and a layer edit in one burst
    doc.update_config(1, fn="relu")
    settle(qtbot, doc)
    assert doc.results.first == 0


def test_every_recompute_runs_with_one_blas_thread(qtbot, doc, monkeypatch):
    """The GUI thread computes with one BLAS thread too (see single_blas_thread)."""
    from cnn_explorer.explorer import document as document_module

    entered = []

    class Spy:
        def __enter__(self) -> None:
            entered.append(True)

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(document_module, "single_blas_thread", Spy)
    doc.set_cell(0, 0, 0, 2.0)
    settle(qtbot, doc)
    doc.set_weight(0, 0, 0, 0, 0, 2.0)
    settle(qtbot, doc)
    assert entered == [True, True]


def test_undo_redo_every_kind_of_edit(qtbot, doc):
    start_input = doc.input.copy()
    start = [s.copy() for s in doc.layers]
    doc.set_cell(0, 0, 0, 3)
    doc.set_weight(0, 0, 0, 0, 0, -1)
    doc.update_config(0, kernel=[3, 3])
    doc.add_layer(pool_spec("avgpool", 1, 1), at=3)
    doc.move_layer(3, 0)
    doc.duplicate_layer(1)
    doc.remove_layer(0)
    doc.set_channels(3)
    doc.resize_input(6, 5)
    while doc.undo_stack.canUndo():
        doc.undo_stack.undo()
    settle(qtbot, doc)
    assert np.array_equal(doc.input, start_input)
    assert all(a.same_values(b) for a, b in zip(doc.layers, start, strict=True))
    assert np.array_equal(doc.results.maps[-1][0], [[4, 2], [2, 4]])
    while doc.undo_stack.canRedo():
        doc.undo_stack.redo()
    settle(qtbot, doc)
    assert doc.input.shape == (3, 6, 5)


def test_channel_change_conforms_conv_weights(qtbot, doc):
    doc.set_channels(3)
    settle(qtbot, doc)
    assert doc.layers[0].weight.shape == (1, 3, 2, 2)
    assert np.array_equal(doc.results.maps[1][0], 3 * np.array([[4, 2, 0], [2, 2, 2], [0, 2, 4]]))
    doc.undo_stack.undo()
    settle(qtbot, doc)
    assert doc.layers[0].weight.shape == (1, 1, 2, 2)


def test_filters_change_conforms_next_conv(qtbot, doc):
    doc.add_layer(conv_spec(1, 2, (1, 1)), at=3)
    doc.update_config(0, filters=4)
    settle(qtbot, doc)
    assert doc.layers[0].weight.shape == (4, 1, 2, 2)
    assert doc.layers[3].weight.shape == (2, 4, 1, 1)
    assert all(s.error is None for s in doc.statuses)


def test_kernel_larger_than_input_is_a_status_not_an_exception(qtbot, doc):
    doc.update_config(0, kernel=[7, 7])
    settle(qtbot, doc)
    assert "7×7" in doc.statuses[0].error
    assert doc.statuses[1].error == "no input"
    assert len(doc.results.maps) == 1


def test_nan_is_computed_through_and_reported(qtbot, doc):
    doc.set_cell(0, 0, 0, float("nan"))
    settle(qtbot, doc)
    assert np.isnan(doc.results.maps[1][0, 0, 0])
    assert any("NaN" in n or "nan" in n.lower() for n in doc.results.notes)


def test_selection_and_explanation(doc):
    sel = Selection(1, 0, 0, 1)
    doc.select_cell(sel)
    assert doc.selection == sel
    assert "out[0,1] = 1·1 + 0·1 + 1·1 + 0·1 = 2" in doc.explain(sel)
    regions = doc.receptive_field(Selection(3, 0, 0, 1))
    assert regions[0].row_range == (0, 2) and regions[0].col_range == (1, 3)
    doc.select_cell(Selection(9, 0, 0, 0))
    assert doc.selection is None


def test_large_recompute_runs_off_thread_and_discards_stale(qtbot, qapp):
    d = Document(async_cost=0)  # everything goes to the worker thread
    try:
        busy = []
        d.busy_changed.connect(busy.append)
        published = []
        d.results_ready.connect(published.append)
        x = np.random.default_rng(0).random((1, 256, 256)).astype(np.float32)
        d.set_input(x)
        d._recompute()  # start a job now ...
        d.set_cell(0, 0, 0, 100.0)  # ... and make it stale
        with qtbot.waitSignal(d.results_ready, timeout=20_000):
            pass
        settle(qtbot, d)
        assert busy[0] is True and busy[-1] is False
        final = published[-1]
        assert final.generation == d._generation
        assert final.maps[0][0, 0, 0] == 100.0
        assert all(p.generation == d._generation for p in published)  # stale ones dropped
    finally:
        d.shutdown()


def test_a_job_finishing_after_an_edit_is_never_published(qtbot, qapp):
    """The job computes the state before the edit; even when it finishes before the
    coalescing timer fires, its (stale) result must not reach the views."""
    d = Document(async_cost=0)
    try:
        x = np.random.default_rng(1).random((1, 128, 128)).astype(np.float32)
        published = []
        d.results_ready.connect(published.append)
        d.set_input(x)
        d._recompute()  # a job is in flight ...
        d.set_cell(0, 5, 5, 42.0)  # ... when an edit arrives
        d._timer.stop()  # hold the edit's recompute back until the job has reported
        d.wait_idle()
        qapp.processEvents()  # delivers the finished job's queued signal
        d._timer.start()
        settle(qtbot, d)
        assert published, "the edit was never published"
        assert [p.generation for p in published] == [d._generation]
        assert published[-1].maps[0][0, 5, 5] == 42.0
    finally:
        d.shutdown()


def test_shutdown_waits_and_stops(qtbot, qapp):
    d = Document(async_cost=0)
    d.set_input(np.ones((1, 128, 128), np.float32))
    d._recompute()
    d.shutdown()
    assert d._pool.activeThreadCount() == 0
    d.set_cell(0, 0, 0, 2.0)  # after shutdown nothing is scheduled
    assert not d._timer.isActive()


def test_bad_input_shapes_raise_value_error(doc):
    with pytest.raises(ValueError):
        doc.set_input(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError):
        doc.set_input(np.zeros((1, 0, 4)))


STACKS = {
    "same_stride": lambda: [
        conv_spec(1, 3, (3, 3), padding="same", seed=1),
        act_spec("relu"),
        pool_spec("maxpool", 2, 2),
        conv_spec(3, 2, (2, 2), stride=(2, 2), seed=2),
    ],
    "dilation_padding": lambda: [
        conv_spec(1, 2, (3, 3), padding=2, dilation=(2, 2), seed=3),
        act_spec("tanh"),
        pool_spec("avgpool", 3, 2, padding=1),
        act_spec("leaky_relu", 0.1),
    ],
    "flip_pool_pad": lambda: [
        conv_spec(1, 2, (3, 2), padding=1, flip=True, seed=4),
        pool_spec("maxpool", 3, 1, padding=1),
        act_spec("sigmoid"),
        act_spec("identity"),
    ],
}


@pytest.mark.parametrize("name", sorted(STACKS))
def test_incremental_updates_equal_full_recompute(qtbot, doc, name, monkeypatch):
    """Single-cell edits are patched in place; the result must equal a fresh forward."""
    import cnn_explorer.explorer.document as dm

    used = []
    real = dm._compute_incremental
    monkeypatch.setattr(dm, "_compute_incremental", lambda *a: (used.append(1), real(*a))[1])
    rng = np.random.default_rng(0)
    doc.set_input(rng.random((1, 13, 11)).astype(np.float32))
    doc.apply_layers(STACKS[name]())
    doc.recompute_now()
    if name == "flip_pool_pad":
        doc.set_enabled(2, False)
        doc.recompute_now()
    for _ in range(25):
        r, c = int(rng.integers(13)), int(rng.integers(11))
        doc.set_cell(0, r, c, float(rng.normal() * 3))
        if rng.random() < 0.3:
            doc.set_cell(0, 0, 0, 0.0)  # border cell (padding path) and exact zeros
        settle(qtbot, doc)
        fresh = Document()
        fresh.apply_document(doc.input, [s.copy() for s in doc.layers])
        fresh.recompute_now()
        assert len(fresh.results.maps) == len(doc.results.maps)
        for a, b, st in zip(doc.results.maps, fresh.results.maps, doc.results.stats, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
            full = map_stats(a)
            np.testing.assert_allclose(st.mins, full.mins, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(st.maxs, full.maxs, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(st.sums, full.sums, rtol=1e-4, atol=1e-4)
            assert np.array_equal(st.zeros, full.zeros)
        fresh.shutdown()
    assert len(used) >= 25  # the fast path really ran


def test_incremental_never_mutates_undo_history(qtbot, doc):
    doc.set_cell(0, 1, 1, 5.0)
    settle(qtbot, doc)
    doc.update_config(1, fn="identity")  # identity output could alias its input
    settle(qtbot, doc)
    snapshot = [c for c in range(doc.undo_stack.count())]
    inputs = [doc.undo_stack.command(i) for i in snapshot]
    olds = [getattr(cmd, "old", None) for cmd in inputs]
    copies = [o.copy() if isinstance(o, np.ndarray) else None for o in olds]
    for v in (1.0, 2.0, 3.0):
        doc.set_cell(0, 2, 2, v)
        settle(qtbot, doc)
    for o, c in zip(olds, copies, strict=True):
        if c is not None:
            assert np.array_equal(o, c)
    while doc.undo_stack.canUndo():
        doc.undo_stack.undo()
    settle(qtbot, doc)
    assert np.array_equal(doc.input[0], presets.WORKED_EXAMPLE)


@pytest.mark.parametrize("name", sorted(STACKS))
def test_weight_edits_recompute_only_changed_channels_exactly(qtbot, doc, name, monkeypatch):
    """A weight/bias edit recomputes one filter through the channel-wise layers after it
    (then a full pass from the next conv); results equal a fresh forward pass."""
    import cnn_explorer.explorer.document as dm

    used = []
    real = dm._compute_filters
    monkeypatch.setattr(dm, "_compute_filters", lambda *a: (used.append(a[3]), real(*a))[1])
    rng = np.random.default_rng(1)
    doc.set_input(rng.random((1, 13, 11)).astype(np.float32))
    doc.apply_layers(STACKS[name]())
    doc.recompute_now()
    convs = [i for i, s in enumerate(doc.layers) if s.kind == "conv"]
    for step in range(12):
        li = convs[step % len(convs)]
        w = doc.layers[li].weight
        f = int(rng.integers(w.shape[0]))
        if step % 3 == 2:
            doc.update_config(li, bias=True)
            doc.set_bias(li, f, float(rng.normal()))
        else:
            doc.set_weight(li, f, 0, 0, 0, float(rng.normal()))
        settle(qtbot, doc)
        fresh = Document()
        fresh.apply_document(doc.input, [s.copy() for s in doc.layers])
        fresh.recompute_now()
        for a, b, st in zip(doc.results.maps, fresh.results.maps, doc.results.stats, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
            full = map_stats(a)
            np.testing.assert_allclose(st.mins, full.mins, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(st.sums, full.sums, rtol=1e-4, atol=1e-4)
            assert np.array_equal(st.zeros, full.zeros)
        fresh.shutdown()
    assert used  # the channel path ran


def test_single_blas_thread_is_scoped_and_reentrant():
    from cnn_explorer.explorer import enginebridge as eb

    blas = eb.blas_controller().select(user_api="blas")
    if not blas.lib_controllers:
        pytest.skip("no BLAS thread pool found")

    def threads() -> set[int]:
        return {info["num_threads"] for info in blas.info()}

    before = threads()
    with eb.single_blas_thread():
        assert threads() == {1}
        with eb.single_blas_thread():
            assert threads() == {1}
        assert threads() == {1}
    assert threads() == before


def test_estimate_cost_counts_only_layers_still_to_compute(doc):
    from cnn_explorer.explorer.document import estimate_cost

    x = np.zeros((1, 8, 8), np.float32)
    doc.apply_document(x, [conv_spec(1, 2, (3, 3), padding="same"), act_spec("relu")])
    full = estimate_cost(doc.layers, doc.statuses, x.shape)
    assert estimate_cost(doc.layers, doc.statuses, x.shape, 1) == 2 * 8 * 8 < full


def _fresh_maps(doc: Document) -> list[np.ndarray]:
    fresh = Document()
    fresh.apply_document(doc.input, [s.copy() for s in doc.layers])
    fresh.recompute_now()
    maps = fresh.results.maps
    fresh.shutdown()
    return maps


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_next_conv_is_updated_by_difference_then_exactly(qtbot, doc, mode, monkeypatch):
    """A one-filter edit updates the next conv by ``conv(new − old)`` (its input changed
    in one channel): close to a full pass at once, bit-identical once the edits pause."""
    import cnn_explorer.explorer.document as dm

    used = []
    real = dm._delta_through_conv
    monkeypatch.setattr(dm, "_delta_through_conv", lambda *a: used.append(a[4]) or real(*a))
    rng = np.random.default_rng(2)
    doc.set_input(rng.standard_normal((1, 12, 10)).astype(np.float32))
    doc.apply_layers(
        [
            conv_spec(1, 4, (3, 3), padding=1, seed=1),
            act_spec("relu"),
            pool_spec("maxpool", 2, 1),
            conv_spec(4, 3, (3, 3), padding=2, dilation=(2, 1), padding_mode=mode, seed=2),
            act_spec("tanh"),
            conv_spec(3, 2, (2, 2), seed=3),
        ]
    )
    doc.recompute_now()
    for step in range(6):
        doc.set_weight(0, step % 4, 0, 1, 1, float(rng.normal()))
        settle(qtbot, doc)
        for a, b in zip(doc.results.maps, _fresh_maps(doc), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert used == [3] * 6  # conv 4 (index 3) was updated by difference every time
    assert doc._inexact_from == 3 and doc._refine_timer.isActive()
    with qtbot.waitSignal(doc.results_ready, timeout=5_000):
        pass  # the refresh after the pause
    settle(qtbot, doc)
    assert doc._inexact_from is None
    assert doc.results.first == 4  # from conv 4's output on
    for a, b in zip(doc.results.maps, _fresh_maps(doc), strict=True):
        assert np.array_equal(a, b)


def test_difference_update_is_skipped_for_nonfinite_maps(qtbot, doc, monkeypatch):
    """inf − inf is NaN: with non-finite values about, only a full pass is right."""
    import cnn_explorer.explorer.document as dm

    x = np.ones((1, 8, 8), np.float32)
    x[0, 2, 3] = np.inf
    doc.set_input(x)
    doc.apply_layers(
        [conv_spec(1, 2, (3, 3), seed=1), act_spec("relu"), conv_spec(2, 2, (3, 3), seed=2)]
    )
    doc.recompute_now()
    calls = []
    real = dm._delta_through_conv
    monkeypatch.setattr(
        dm, "_delta_through_conv", lambda *a: (calls.append(real(*a)), calls[-1])[1]
    )
    doc.set_weight(0, 1, 0, 0, 0, 0.5)
    settle(qtbot, doc)
    assert calls == [False]
    for a, b in zip(doc.results.maps, _fresh_maps(doc), strict=True):
        np.testing.assert_array_equal(a, b)  # NaN where the full pass has NaN
    assert doc._inexact_from is None


@pytest.mark.parametrize(("seed", "mode"), [(0, "zeros"), (1, "zeros"), (2, "replicate")])
def test_random_edit_sequences_always_match_a_fresh_forward(qtbot, doc, seed, mode, monkeypatch):
    """Every fast path at once (input-cell patches, one-filter recomputes, differences
    through the next conv, exact refresh, undo/redo): after each edit the maps equal a
    fresh forward pass up to float32 rounding, and bit for bit once the edits pause."""
    import cnn_explorer.explorer.document as dm

    used: dict[str, int] = {}
    for name in ("_compute_incremental", "_compute_filters", "_delta_through_conv"):
        real = getattr(dm, name)

        def spy(*a, _real=real, _name=name):
            used[_name] = used.get(_name, 0) + 1
            return _real(*a)

        monkeypatch.setattr(dm, name, spy)
    rng = np.random.default_rng(seed)
    doc.set_input(rng.standard_normal((3, 11, 9)).astype(np.float32))
    doc.apply_layers(
        [
            conv_spec(3, 3, (3, 3), padding=1, seed=1),
            act_spec("relu"),
            pool_spec("maxpool", 2, 1),
            conv_spec(3, 4, (3, 2), padding=1, padding_mode=mode, seed=2),
            act_spec("tanh"),
            conv_spec(4, 2, (2, 2), stride=(2, 1), seed=3),
        ]
    )
    doc.recompute_now()
    convs = [0, 3, 5]
    for _ in range(30):
        op = rng.integers(6)
        if op == 0:
            c, r, k = int(rng.integers(3)), int(rng.integers(11)), int(rng.integers(9))
            doc.set_cell(c, r, k, float(rng.normal()))
        elif op in (1, 2):
            li = convs[int(rng.integers(3))]
            o, i, kh, kw = doc.layers[li].weight.shape
            where = (int(rng.integers(o)), int(rng.integers(i)), int(rng.integers(kh)))
            doc.set_weight(li, *where, int(rng.integers(kw)), float(rng.normal()))
        elif op == 3:
            li = convs[int(rng.integers(3))]
            doc.set_bias(li, int(rng.integers(doc.layers[li].weight.shape[0])), float(rng.normal()))
        elif op == 4 and doc.undo_stack.canUndo():
            doc.undo_stack.undo()
        elif doc.undo_stack.canRedo():
            doc.undo_stack.redo()
        settle(qtbot, doc)
        for a, b in zip(doc.results.maps, _fresh_maps(doc), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert used.get("_compute_filters") and used.get("_delta_through_conv")
    if mode == "zeros":  # input-cell patches need layers that compute from a crop
        assert used.get("_compute_incremental")
    if doc._inexact_from is not None:
        with qtbot.waitSignal(doc.results_ready, timeout=5_000):
            pass
        settle(qtbot, doc)
    for a, b in zip(doc.results.maps, _fresh_maps(doc), strict=True):
        assert np.array_equal(a, b)
