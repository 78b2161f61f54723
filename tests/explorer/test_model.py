"""The explorer's Qt-free model: edits, undo, recompute paths and exactness (plain pytest)."""

from __future__ import annotations

import numpy as np
import pytest
from explorer_helpers import History, assert_close_to_fresh, assert_exactly_fresh

from cnn_explorer.engine import ForwardStopped
from cnn_explorer.explorer import presets
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.model import Explorer
from cnn_explorer.explorer.results import ForwardJob
from cnn_explorer.explorer.specs import act_spec, conv_spec, pool_spec
from cnn_explorer.explorer.stats import map_stats


@pytest.fixture
def model() -> Explorer:
    m = Explorer()
    m.recompute()
    return m


def settle(m: Explorer) -> None:
    """Compute what is pending, then make it exact (what the app does after a pause)."""
    m.recompute()
    m.refine()
    assert m.exact


def test_worked_example(model: Explorer) -> None:
    maps = model.results.maps
    assert np.array_equal(maps[1][0], [[4, 2, 0], [2, 2, 2], [0, 2, 4]])
    assert np.array_equal(maps[3][0], [[4, 2], [2, 4]])
    assert [s.output_shape for s in model.statuses] == [(1, 3, 3), (1, 3, 3), (1, 2, 2)]
    assert model.exact


def test_switching_the_pool_to_average_recomputes_it(model: Explorer) -> None:
    """Set Kind to Average: the map must be the average pool's, and undo gives max back
    (a kind change once took the one-filter path and kept the max-pool values)."""
    h = History(model)
    h.do("set_kind", 2, "avgpool")
    settle(model)
    assert model.layers[2].title == "Avg pool 2×2"
    assert np.array_equal(model.results.maps[3][0], [[2.5, 1.5], [1.5, 2.5]])
    assert "(2 + 0 + 2 + 2) / 4 = 1.5" in model.explain(Selection(3, 0, 0, 1))
    h.undo()
    settle(model)
    assert np.array_equal(model.results.maps[3][0], [[4, 2], [2, 4]])
    h.redo()
    model.recompute()
    assert np.array_equal(model.results.maps[3][0], [[2.5, 1.5], [1.5, 2.5]])


def test_set_kind_refuses_non_pool_layers(model: Explorer) -> None:
    with pytest.raises(ValueError, match="cannot turn"):
        History(model).do("set_kind", 0, "avgpool")


def test_edit_returns_the_change_and_marks_work(model: Explorer) -> None:
    [step] = History(model).do("set_cell", 0, 1, 2, 5.0)
    assert step.text == "Set input[0,1,2] = 5"
    assert model.pending and not model.exact
    model.recompute()
    assert not model.pending
    assert model.results.path == "cells" and model.results.first == 0
    assert model.needs_refine  # a fast path wrote the maps
    model.refine()
    assert model.exact and model.results.path == "forward"


def test_no_op_edits_make_no_steps(model: Explorer) -> None:
    h = History(model)
    assert h.do("set_cell", 0, 0, 0, float(model.input[0, 0, 0])) == []
    assert h.do("move_layer", 1, 1) == []
    assert h.do("set_channels", 1) == []


def test_results_first_names_the_first_map_that_can_differ(model: Explorer) -> None:
    h = History(model)
    h.do("set_weight", 0, 0, 0, 0, 0, 3.0)
    settle(model)
    assert model.results.first == 1  # the input was not recomputed
    h.do("update_config", 1, fn="sigmoid")
    model.recompute()
    assert model.results.first == 2
    assert model.results.maps[1] is not None
    h.do("set_cell", 0, 0, 0, 5.0)
    h.do("update_config", 1, fn="relu")  # an input edit and a layer edit in one burst
    model.recompute()
    assert model.results.first == 0


def test_undo_redo_every_kind_of_edit(model: Explorer) -> None:
    h = History(model)
    start_input, start = model.input.copy(), [s.copy() for s in model.layers]
    h.do("set_cell", 0, 0, 0, 3)
    h.do("set_weight", 0, 0, 0, 0, 0, -1)
    h.do("update_config", 0, kernel=[3, 3])
    h.do("add_layer", pool_spec("avgpool", 1, 1), 3)
    h.do("move_layer", 3, 0)
    h.do("duplicate_layer", 1)
    h.do("remove_layer", 0)
    h.do("set_channels", 3)
    h.do("resize_input", 6, 5)
    while h.undo():
        pass
    settle(model)
    assert np.array_equal(model.input, start_input)
    assert all(a.same_values(b) for a, b in zip(model.layers, start, strict=True))
    assert np.array_equal(model.results.maps[-1][0], [[4, 2], [2, 4]])
    while h.redo():
        pass
    settle(model)
    assert model.input.shape == (3, 6, 5)


def test_channel_change_conforms_conv_weights(model: Explorer) -> None:
    h = History(model)
    h.do("set_channels", 3)
    settle(model)
    assert model.layers[0].weight.shape == (1, 3, 2, 2)
    assert np.array_equal(model.results.maps[1][0], 3 * np.array([[4, 2, 0], [2, 2, 2], [0, 2, 4]]))
    h.undo()
    settle(model)
    assert model.layers[0].weight.shape == (1, 1, 2, 2)


def test_filters_change_conforms_next_conv(model: Explorer) -> None:
    h = History(model)
    h.do("add_layer", conv_spec(1, 2, (1, 1)), 3)
    h.do("update_config", 0, filters=4)
    settle(model)
    assert model.layers[0].weight.shape == (4, 1, 2, 2)
    assert model.layers[3].weight.shape == (2, 4, 1, 1)
    assert all(s.error is None for s in model.statuses)


def test_kernel_larger_than_input_is_a_status_not_an_exception(model: Explorer) -> None:
    History(model).do("update_config", 0, kernel=[7, 7])
    settle(model)
    assert "7×7" in model.statuses[0].error
    assert model.statuses[1].error == "no input"
    assert len(model.results.maps) == 1


def test_nan_is_computed_through_and_reported(model: Explorer) -> None:
    History(model).do("set_cell", 0, 0, 0, float("nan"))
    settle(model)
    assert np.isnan(model.results.maps[1][0, 0, 0])
    assert any("NaN" in n for n in model.results.notes)


def test_selection_and_explanation(model: Explorer) -> None:
    sel = Selection(1, 0, 0, 1)
    change = model.select_cell(sel)
    assert change.kind == "cell" and model.selection == sel
    assert "out[0,1] = 1·1 + 0·1 + 1·1 + 0·1 = 2" in model.explain(sel)
    regions = model.receptive_field(Selection(3, 0, 0, 1))
    assert regions[0].row_range == (0, 2) and regions[0].col_range == (1, 3)
    model.select_cell(Selection(9, 0, 0, 0))
    assert model.selection is None


def test_a_selected_cell_that_disappears_is_deselected(model: Explorer) -> None:
    model.select_cell(Selection(3, 0, 1, 1))
    History(model).do("update_config", 2, stride=[2, 2])
    model.recompute()
    assert model.selection is None


def test_bad_input_shapes_raise_value_error(model: Explorer) -> None:
    with pytest.raises(ValueError):
        History(model).do("set_input", np.zeros((2, 4, 4)))
    with pytest.raises(ValueError):
        History(model).do("set_input", np.zeros((1, 0, 4)))


def test_paint_stroke_is_one_step(model: Explorer) -> None:
    from cnn_explorer.explorer.edits import Stroke

    h = History(model)
    stroke = Stroke(model.input)
    assert stroke.paint(model, 0, [(0, 0), (0, 1)], 7.0) is not None
    assert stroke.paint(model, 0, [(9, 9)], 7.0) is None  # outside the grid
    model.recompute()
    step = stroke.finish(model)
    assert step is not None and step.region == (0, 0, 0, 1)
    h.push([step])  # already applied: pushing does not apply it again
    assert model.input[0, 0, 1] == 7.0
    h.undo()
    settle(model)
    assert np.array_equal(model.input[0], presets.WORKED_EXAMPLE)


def test_big_work_comes_back_as_a_job_and_stale_jobs_are_dropped(model: Explorer) -> None:
    h = History(model)
    h.do("set_input", np.random.default_rng(0).random((1, 64, 64)).astype(np.float32))
    job = model.recompute(inline_cost=0)
    assert isinstance(job, ForwardJob) and model.jobs_in_flight == 1 and not model.exact
    h.do("set_cell", 0, 0, 0, 100.0)  # makes the job stale
    assert model.finish(job, job.run()) is None and model.jobs_in_flight == 0
    second = model.recompute(inline_cost=0)
    assert isinstance(second, ForwardJob)
    assert model.finish(second, None) is None  # not computed: nothing published ...
    assert model.jobs_in_flight == 0 and model.pending  # ... and its work is still to do
    settle(model)
    assert model.results.maps[0][0, 0, 0] == 100.0
    assert_exactly_fresh(model)


def test_a_job_polls_its_stop_before_each_layer(model: Explorer) -> None:
    """A pool job gives up before its next layer once a newer edit made it stale or the
    window is closing (ForwardStopped), and a stop that never fires changes nothing."""
    History(model).do("set_input", np.random.default_rng(1).random((1, 16, 16)))
    job = model.recompute(inline_cost=0)
    assert isinstance(job, ForwardJob)
    polls: list[int] = []

    def stop_at_second_layer() -> bool:
        polls.append(1)
        return len(polls) == 2

    assert isinstance(job.run(stop_at_second_layer), ForwardStopped) and len(polls) == 2
    never, plain = job.run(lambda: False), job.run()
    assert not isinstance(never, Exception) and not isinstance(plain, Exception)
    assert len(never[0]) == len(plain[0]) == 4  # the input and the worked example's 3 maps
    for mine, ref in zip(never[0], plain[0], strict=True):
        np.testing.assert_array_equal(mine, ref)


def test_a_failing_computation_is_reported_not_raised(model: Explorer) -> None:
    h = History(model)
    h.do("set_input", np.ones((1, 8, 8), np.float32))
    job = model.recompute(inline_cost=0)
    assert isinstance(job, ForwardJob)
    results = model.finish(job, RuntimeError("boom"))
    assert results is not None and results.error and "boom" in results.error
    assert len(results.maps) == 1 and model.jobs_in_flight == 0


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
        conv_spec(2, 3, (3, 3), padding=1, padding_mode="reflect", seed=5),
        act_spec("leaky_relu", 0.1),
    ],
    "flip_pool_pad": lambda: [
        conv_spec(1, 4, (3, 2), padding=1, flip=True, seed=4),
        pool_spec("maxpool", 3, 1, padding=1),
        act_spec("sigmoid"),
        conv_spec(4, 8, (3, 3), padding=1, seed=6),
        act_spec("identity"),
    ],
}


@pytest.mark.parametrize("name", sorted(STACKS))
def test_fast_paths_match_a_fresh_forward_then_exactly(model: Explorer, name: str) -> None:
    """Cell edits (patched windows), weight/bias edits (one filter, then the next conv by
    difference): within 1e-5 at once, bit for bit after refine(), on any BLAS kernel."""
    rng = np.random.default_rng(0)
    h = History(model)
    h.do("new_document", rng.random((1, 13, 11)).astype(np.float32), STACKS[name](), "stack")
    settle(model)
    convs = [i for i, s in enumerate(model.layers) if s.kind == "conv"]
    paths = set()
    for step in range(30):
        if step % 2:
            h.do("set_cell", 0, int(rng.integers(13)), int(rng.integers(11)), float(rng.normal()))
        else:
            i = int(rng.choice(convs))
            o, c, kh, kw = model.layers[i].weight.shape
            f = int(rng.integers(o))
            if rng.random() < 0.3:
                h.do("set_bias", i, f, float(rng.normal()))
            else:
                h.do(
                    "set_weight",
                    i,
                    f,
                    int(rng.integers(c)),
                    int(rng.integers(kh)),
                    int(rng.integers(kw)),
                    float(rng.normal()),
                )
        model.recompute()
        paths.add(model.results.path)
        assert_close_to_fresh(model)
        for a, st in zip(model.results.maps, model.results.stats, strict=True):
            full = map_stats(a)
            np.testing.assert_allclose(st.mins, full.mins, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(st.sums, full.sums, rtol=1e-4, atol=1e-4)
            assert np.array_equal(st.zeros, full.zeros)
        if step % 5 == 4:
            model.refine()
            assert model.exact
            assert_exactly_fresh(model)
    assert {"filters"} <= paths  # the fast paths really ran
    if name != "dilation_padding":  # reflect padding has no cell path
        assert "cells" in paths


def test_edits_never_mutate_the_undo_history(model: Explorer) -> None:
    h = History(model)
    h.do("set_cell", 0, 1, 1, 5.0)
    model.recompute()
    h.do("update_config", 1, fn="identity")  # identity output could alias its input
    model.recompute()
    olds = [
        step.old.copy()
        for group in h.done
        for step in group
        if hasattr(step, "old") and isinstance(step.old, np.ndarray)
    ]
    for v in (1.0, 2.0, 3.0):
        h.do("set_cell", 0, 2, 2, v)
        model.recompute()
    now = [
        step.old
        for group in h.done[:2]
        for step in group
        if isinstance(getattr(step, "old", None), np.ndarray)
    ]
    assert all(np.array_equal(a, b) for a, b in zip(olds, now, strict=False))
    while h.undo():
        pass
    settle(model)
    assert np.array_equal(model.input[0], presets.WORKED_EXAMPLE)


def test_the_stack_holds_at_most_max_layers(model: Explorer) -> None:
    from cnn_explorer.limits import MAX_LAYERS

    h = History(model)
    while len(model.layers) < MAX_LAYERS:
        h.do("add_layer", act_spec("identity"))
    with pytest.raises(ValueError, match=f"at most {MAX_LAYERS} layers"):
        h.do("add_layer", act_spec("identity"))
    with pytest.raises(ValueError, match=f"at most {MAX_LAYERS} layers"):
        h.do("duplicate_layer", 0)


def test_an_edit_whose_maps_would_not_fit_in_memory_is_refused(model: Explorer) -> None:
    from cnn_explorer.explorer.edits import EditRefusedError

    h = History(model)
    h.do("resize_input", 512, 512)
    h.do("update_config", 0, filters=64, padding=8)
    before = [s.copy() for s in model.layers]
    with pytest.raises(EditRefusedError, match="MB the explorer allows"):
        for _ in range(14):  # each 64-filter 512² map needs over 70 MB
            h.do("duplicate_layer", 0)
    assert len(model.layers) > len(before)  # the ones that fitted were added
    assert len(model.layers) < len(before) + 14


def test_filter_of_a_cell_goes_back_through_channel_wise_layers(model: Explorer) -> None:
    from cnn_explorer.explorer.explain import filter_of

    layers = model.layers  # conv, ReLU, max pool
    assert filter_of(layers, Selection(3, 0, 1, 1)) == (0, 0)
    assert filter_of(layers, Selection(1, 0, 1, 1)) == (0, 0)
    assert filter_of(layers, Selection(0, 0, 1, 1)) is None


@pytest.mark.parametrize("cell", [(0, 0), (7, 11), (15, 23)])
def test_a_cell_edit_names_the_window_each_map_changed_in(cell: tuple[int, int]) -> None:
    """Results.windows: outside its window a map equals the previous results bit for bit,
    so views may recolour only the window."""
    rng = np.random.default_rng(4)
    x = rng.random((3, 16, 24), dtype=np.float32)
    m = Explorer(
        x,
        [
            conv_spec(3, 4, (3, 3), padding=1, seed=1),
            act_spec("relu"),
            pool_spec("maxpool", 2, 2),
            conv_spec(4, 2, (3, 3), seed=2),
        ],
    )
    settle(m)
    before = [a.copy() for a in m.results.maps]
    r, c = cell
    new = x.copy()
    new[1, r, c] += 5.0
    m.apply_input(new, (r, r, c, c))
    res = m.recompute()
    assert res is not None and res.path == "cells"
    assert res.windows[0] == (r, r, c, c)
    assert set(res.windows) == set(range(len(res.maps)))
    for k, (old, now) in enumerate(zip(before, res.maps, strict=True)):
        r0, r1, c0, c1 = res.windows[k]
        outside = np.ones(now.shape[1:], bool)
        outside[r0 : r1 + 1, c0 : c1 + 1] = False
        assert np.array_equal(old[:, outside], now[:, outside]), k
    settle(m)
    assert m.results.windows == {}  # a plain forward: anything may have changed
