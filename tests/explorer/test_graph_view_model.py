"""The Model tab's Qt-free core (explorer/graph_view_model.py) on the committed ONNX
fixtures: every cell's explanation computes the tensor's value, receptive fields contain
every input cell whose perturbation changes the cell, top-k probabilities, input handling
and stale results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.explorer.graph_view_model import (
    INPUT,
    GraphCell,
    GraphViewModel,
    display_maps,
    sample_pixels,
    tensor_index,
)
from cnn_explorer.interchange.load import load_model
from cnn_explorer.interchange.model import ModelFileError, Preprocessing

FIXTURES = Path(__file__).resolve().parents[1] / "interchange" / "fixtures"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.onnx"))
OTHER_FORMATS = sorted(
    p.name
    for p in FIXTURES.iterdir()
    if p.suffix in (".keras", ".h5", ".safetensors") and "lambda" not in p.name
)


def _model(name: str) -> GraphViewModel:
    path = FIXTURES / (name if "." in name else f"{name}.onnx")
    vm = GraphViewModel(load_model(path, self_check=False))
    vm.compute()
    return vm


@pytest.mark.parametrize("name", NAMES + OTHER_FORMATS)
def test_every_node_explains_its_cells_with_the_tensor_value(name: str) -> None:
    vm = _model(name)
    rng = np.random.default_rng(1)
    rows = vm.nodes()
    assert [r.name for r in rows] == [INPUT, *(n.name for n in vm.graph.nodes)]
    for row in rows:
        a = vm.tensor(row.name)
        assert a.shape == row.shape
        for _ in range(3):
            index = tuple(int(rng.integers(n)) for n in a.shape)
            got = vm.explain(GraphCell(row.name, index))
            assert got.result == pytest.approx(float(a[index]), rel=1e-4, abs=1e-5), got.text
            assert got.text


def test_merges_are_explained_from_their_inputs() -> None:
    vm = _model("squeezenet")
    cat = next(n for n in vm.graph.nodes if n.layer.kind == "concat")
    c = vm.shapes[cat.name][0] - 1  # the last channel comes from the last input
    got = vm.explain(GraphCell(cat.name, (c, 1, 1)))
    assert cat.inputs[-1] in got.text and "concatenated" in got.text
    res = _model("resnet")
    add = next(n for n in res.graph.nodes if n.layer.kind == "add")
    got = res.explain(GraphCell(add.name, (0, 2, 3)))
    assert " + " in got.text and all(i in got.text for i in add.inputs)


def _brute_support(vm: GraphViewModel, cell: GraphCell) -> np.ndarray:
    """Input cells whose big perturbation changes the cell (one batched forward)."""
    shape = vm.input_shape
    n = int(np.prod(shape))
    base = vm.x[0]
    batch = np.repeat(base[None], n, axis=0).reshape(n, -1)
    batch[np.arange(n), np.arange(n)] += 25.0
    out = vm.graph.forward(batch.reshape(n, *shape))[cell.tensor]
    ref = vm.graph.forward(vm.x)[cell.tensor][0][cell.index]
    changed = np.abs(out[(slice(None), *cell.index)] - ref) > 1e-6
    return changed.reshape(shape)


@pytest.mark.parametrize(("name", "which"), [("resnet", "add"), ("squeezenet", "concat")])
def test_receptive_field_contains_every_cell_that_changes_the_output(name: str, which: str) -> None:
    vm = _model(name)
    node = [n for n in vm.graph.nodes if n.layer.kind == which][-1]
    c, h, w = vm.shapes[node.name]
    cell = GraphCell(node.name, (c - 1, h // 2, w // 2))
    rf = vm.receptive_field(cell)
    assert rf is not None
    brute = _brute_support(vm, cell)
    assert brute.any()
    assert not (brute & ~rf.mask).any()
    rows = np.flatnonzero(brute.any(axis=(0, 2)))
    assert rf.bounds(1)[0] <= rows[0] and rows[-1] <= rf.bounds(1)[1]  # type: ignore[index]
    assert vm.receptive_field(GraphCell(INPUT, (0, 0, 0))) is None


def test_top_k_sums_to_at_most_one_and_uses_the_class_names() -> None:
    vm = _model("vgg_bn")
    top = vm.top_k(3)
    assert top is not None and len(top) == 3
    assert top[0].name in vm.preprocessing.class_names
    probs = [t.probability for t in top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9
    all_classes = vm.top_k(100)
    assert all_classes is not None and sum(t.probability for t in all_classes) == pytest.approx(1)
    ends_softmax = _model("squeezenet").top_k(2)  # already probabilities: not softmax-ed again
    assert ends_softmax is not None and ends_softmax[0].probability == ends_softmax[0].score


def test_a_new_input_drops_the_stale_result_and_stats_follow() -> None:
    vm = _model("lenet5")
    job = vm.forward_job()
    pixels = np.full((32, 32), 200, np.uint8)
    vm.set_image(pixels, "grey square")
    assert vm.tensors is None
    assert not vm.publish(job, job.run())
    vm.compute()
    first = vm.graph.nodes[0].name
    st = vm.stats(first)
    assert st.mins.shape == (vm.shapes[first][0],)
    with pytest.raises(ModelFileError):
        vm.set_image(np.zeros((5, 5), np.uint8))
    vm.set_array(np.zeros((1, 32, 32), np.float32))
    assert vm.pixels.shape == (32, 32)


def test_preprocessing_changes_re_preprocess_and_check_shapes() -> None:
    vm = _model("vgg_bn")
    pre = vm.preprocessing
    new = Preprocessing(pre.input_shape, "bgr", 1.0, (100.0,), (50.0,), ("a", "b"))
    vm.set_preprocessing(new)
    assert vm.preprocessing.class_names == ("a", "b")
    assert np.allclose(vm.x[0, 0], (vm.pixels[:, :, 2] - 100.0) / 50.0)
    with pytest.raises(ValueError):  # the classifier head fixes the input size
        vm.set_preprocessing(Preprocessing((3, 40, 40)))
    assert vm.preprocessing is new


def test_selection_display_helpers_and_sample_picture() -> None:
    vm = _model("resnet")
    node = vm.graph.nodes[2].name
    vm.select_cell(GraphCell(node, (0, 1, 1)))
    assert vm.selected_node == node
    with pytest.raises(IndexError):
        vm.select_cell(GraphCell(node, (0, 99, 1)))
    with pytest.raises(KeyError):
        vm.select_node("no such node")
    assert display_maps(np.zeros((4, 1, 1))) is None
    assert display_maps(np.zeros((2, 3))).shape == (1, 2, 3)  # type: ignore[union-attr]
    assert tensor_index((4, 1, 1), False, (2,)) == (2, 0, 0)
    assert tensor_index((2, 3), True, (0, 1, 2)) == (1, 2)
    assert sample_pixels(Preprocessing((1, 5, 7), "grey")).shape == (5, 7)
    branches = {r.name: r.branch for r in vm.nodes()}
    assert 1 in branches.values() and branches[vm.graph.output] == 0
