"""Every committed ONNX fixture imports, reports every node, passes its self-check, and
gives PyTorch's numbers (committed beside it) and onnxruntime's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx_helpers import FIXTURE_NAMES, FIXTURES

from cnn_explorer.engine import Add, BatchNorm2D, Concat, Conv2D
from cnn_explorer.interchange.load import load_model
from cnn_explorer.interchange.model import ImportedModel


def _load(name: str) -> ImportedModel:
    return load_model(FIXTURES / f"{name}.onnx")


@pytest.fixture(scope="module")
def imported() -> dict[str, ImportedModel]:
    return {name: _load(name) for name in FIXTURE_NAMES}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_is_small(name: str) -> None:
    assert (FIXTURES / f"{name}.onnx").stat().st_size < 300_000


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_imports_and_passes_self_check(name: str, imported: dict) -> None:
    check = imported[name].report.self_check
    assert check is not None and check.passed, check
    assert check.max_abs_diff <= 1e-5
    assert check.message.startswith("matches the reference to")


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_output_matches_committed_torch_output(name: str, imported: dict) -> None:
    data = np.load(FIXTURES / f"{name}.npz", allow_pickle=False)
    got = imported[name].graph(data["input"])
    np.testing.assert_allclose(got, data["output"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_output_matches_onnxruntime(name: str, imported: dict) -> None:
    ort = pytest.importorskip("onnxruntime")
    path = FIXTURES / f"{name}.onnx"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.load(FIXTURES / f"{name}.npz", allow_pickle=False)["input"]
    want = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(imported[name].graph(x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_report_has_one_entry_per_node(name: str, imported: dict) -> None:
    model = onnx.load(str(FIXTURES / f"{name}.onnx"))
    report = imported[name].report
    assert len(report.entries) == len(model.graph.node)
    want = sorted(n.name or n.output[0] for n in model.graph.node)
    assert sorted(e.node for e in report.entries) == want
    assert {e.status for e in report.entries} <= {"mapped", "transformed"}
    text = report.text()
    assert text.startswith(f"Imported {name}.onnx")
    assert "Self-check (onnx.reference) passed" in text


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_graph_round_trips_through_its_dict(name: str, imported: dict) -> None:
    graph = imported[name].graph
    x = np.load(FIXTURES / f"{name}.npz", allow_pickle=False)["input"]
    again = type(graph).from_dict(graph.to_dict(), graph.state_arrays())
    np.testing.assert_array_equal(again(x), graph(x))


def _layers(model: ImportedModel, kind: type) -> list:
    return [n for n in model.graph.nodes if isinstance(n.layer, kind)]


def test_lenet_is_a_chain_with_grey_preprocessing(imported: dict) -> None:
    model = imported["lenet5"]
    assert model.graph.is_chain()
    assert model.preprocessing.input_shape == (1, 32, 32)
    assert model.preprocessing.colour == "grey"


def test_vgg_keeps_batchnorm_and_reads_class_names(imported: dict) -> None:
    model = imported["vgg_bn"]
    assert len(_layers(model, BatchNorm2D)) == 4
    assert model.preprocessing.class_names == ("cat", "dog", "bird", "fish", "frog")
    assert "5 class names from the metadata key 'class_names'" in model.report.transformations
    assert not any("folded BatchNorm" in t for t in model.report.transformations)


@pytest.mark.parametrize("name", ["vgg_bn_fused", "resnet"])
def test_batchnorm_folded_by_the_exporter_is_reported(name: str, imported: dict) -> None:
    model = imported[name]
    assert not _layers(model, BatchNorm2D)
    notes = [t for t in model.report.transformations if "filters include folded BatchNorm" in t]
    assert len(notes) == 1


def test_resnet_has_residual_adds_and_folds_its_pads(imported: dict) -> None:
    model = imported["resnet"]
    assert not model.graph.is_chain()
    assert len(_layers(model, Add)) == 2
    folded = [e for e in model.report.entries if e.op == "Pad"]
    assert [e.status for e in folded] == ["transformed", "transformed"]
    assert all("folded into the padding of Conv" in e.detail for e in folded)
    convs = {n.name: n.layer for n in _layers(model, Conv2D)}
    assert convs["layer1/conv2/Conv"].padding4 == (1, 1, 1, 1)
    assert any(c.stride == (2, 2) and c.kernel_size == (1, 1) for c in convs.values())


def test_squeezenet_concats_and_reads_our_preprocessing(imported: dict) -> None:
    model = imported["squeezenet"]
    assert len(_layers(model, Concat)) == 3
    pre = model.preprocessing
    assert (pre.colour, pre.scale, pre.mean) == ("bgr", 1.0, (104.0, 117.0, 123.0))


def test_opset11_variants_are_transformed(imported: dict) -> None:
    report = imported["opset11_softmax"].report
    by_node = {e.node: e for e in report.entries}
    assert by_node["pad"].status == "transformed"
    assert "reflect" in " ".join(report.transformations)
    assert by_node["softmax_chw"].status == "transformed"
    assert by_node["softmax_classes"].status == "mapped"
    assert "folded into the weights and bias of Dense" in by_node["fc_bias"].detail


def test_opset18_reduce_mean_with_axes_input(imported: dict) -> None:
    by_node = {e.node: e for e in imported["opset18_reducemean"].report.entries}
    assert "GlobalAvgPool2D then Flatten" in by_node["gap"].detail
    assert by_node["pad_edge"].status == "mapped"  # read by a MaxPool: stays a layer
    assert "scale and shift" in by_node["div_std"].detail


def test_imported_model_knows_its_source(imported: dict) -> None:
    assert imported["lenet5"].source == Path(FIXTURES / "lenet5.onnx")


def test_self_check_can_be_skipped() -> None:
    model = load_model(FIXTURES / "lenet5.onnx", self_check=False)
    assert model.report.self_check is None
