"""ONNX export: the file passes the full checker and computes what the engine computes, in
``onnx.reference`` (always) and onnxruntime (when installed), for any batch size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from export_cases import (
    DEFAULT_SHAPE,
    EVERY_SHAPE,
    OPS_SHAPE,
    RESIDUAL_SHAPE,
    default_network,
    every_layer_network,
    graph_ops_graph,
    inputs,
    residual_graph,
)
from onnx.reference import ReferenceEvaluator

from cnn_explorer.engine.layers import Activation, AvgPool2D, Conv2D, Layer, MaxPool2D
from cnn_explorer.engine.network import Network
from cnn_explorer.interchange.export_common import ExportError
from cnn_explorer.interchange.model import (
    METADATA_CLASS_NAMES,
    METADATA_PREPROCESSING,
    Preprocessing,
)
from cnn_explorer.interchange.onnx_export import IR_VERSION, OPSET, save_onnx, to_onnx

TOL = 1e-5


def run_reference(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return np.asarray(ReferenceEvaluator(proto).run(None, {"input": x})[0])


def run_onnxruntime(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {"input": x})[0])


CASES = {
    "default": (default_network, DEFAULT_SHAPE),
    "every_layer": (every_layer_network, EVERY_SHAPE),
    "residual": (residual_graph, RESIDUAL_SHAPE),
    "graph_ops": (graph_ops_graph, OPS_SHAPE),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("runner", [run_reference, run_onnxruntime], ids=["reference", "ort"])
def test_export_matches_engine(case: str, runner: Any) -> None:
    make, shape = CASES[case]
    net = make()
    proto = to_onnx(net, shape)
    for batch in (1, 3):
        x = inputs(shape, batch)
        expected = net(x)
        got = runner(proto, x)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=TOL, rtol=TOL)
        assert np.abs(expected).max() > 1e-2  # a real signal, not all zeros


def test_header_opset_dynamic_batch_and_names(tmp_path: Path) -> None:
    net = default_network()
    path = tmp_path / "model.onnx"
    save_onnx(path, net, DEFAULT_SHAPE)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.ir_version == IR_VERSION
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", OPSET)]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == list(DEFAULT_SHAPE)
    outputs = [n.output[0] for n in proto.graph.node]
    assert outputs == [str(i) for i in range(len(net))]
    assert {i.name for i in proto.graph.initializer} == set(net.state_arrays())
    assert not list(tmp_path.glob(".*.tmp"))


def test_metadata_carries_preprocessing_and_class_names() -> None:
    net = default_network()
    prep = Preprocessing((1, 12, 12), colour="grey", mean=(0.5,), std=(0.25,))
    proto = to_onnx(net, DEFAULT_SHAPE, preprocessing=prep, class_names=["a", "b", "c"])
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta[METADATA_CLASS_NAMES]) == ["a", "b", "c"]
    assert Preprocessing.from_json(meta[METADATA_PREPROCESSING]) == prep


def test_disabled_layers_are_left_out() -> None:
    net = every_layer_network()
    proto = to_onnx(net, EVERY_SHAPE)
    disabled = [str(i) for i, layer in enumerate(net.layers) if not layer.enabled]
    names = {n.name for n in proto.graph.node}
    assert disabled and not names & set(disabled)


def test_flipped_kernel_is_exported_flipped() -> None:
    conv = Conv2D(1, 1, 3, flip_kernel=True, rng=0)
    proto = to_onnx(Network([conv]), (1, 5, 5))
    (w,) = [onnx.numpy_helper.to_array(i) for i in proto.graph.initializer if i.name == "0.weight"]
    np.testing.assert_array_equal(w, conv.weight[:, :, ::-1, ::-1])


@pytest.mark.parametrize(
    "layer",
    [
        MaxPool2D(2, 2, 0, ceil_mode=True),
        MaxPool2D(3, 2, 1, ceil_mode=True),
        AvgPool2D(2, 2, 0, ceil_mode=True),
        AvgPool2D(3, 2, 1, ceil_mode=True),
        AvgPool2D(3, 3, 1, ceil_mode=False),
        MaxPool2D(3, 1, padding=(1, 0, 1, 0)),
        MaxPool2D(3, 2, padding=(0, 1, 1, 0), ceil_mode=True),
        AvgPool2D(3, 2, padding=(1, 0, 0, 1), ceil_mode=True),
        AvgPool2D(3, 2, padding=(1, 0, 0, 1), ceil_mode=True, count_include_pad=False),
        AvgPool2D(2, 2, padding=1, ceil_mode=True, count_include_pad=False),
        Conv2D(2, 4, 3, stride=2, padding=(0, 2, 2, 1), padding_mode="circular", rng=0),
        Conv2D(2, 2, 3, padding=2, dilation=2, padding_mode="reflect", rng=0),
        Activation("softplus", beta=0.5, threshold=0.5),
    ],
    ids=repr,
)
@pytest.mark.parametrize("side", [5, 6, 7])
def test_pool_and_padding_corners(layer: Layer, side: int) -> None:
    net = Network([layer])
    shape = (2, side, side + 1)
    proto = to_onnx(net, shape)
    x = inputs(shape, 2)
    np.testing.assert_allclose(run_reference(proto, x), net(x), atol=TOL, rtol=TOL)
    np.testing.assert_allclose(run_onnxruntime(proto, x), net(x), atol=TOL, rtol=TOL)


def test_model_that_does_not_fit_its_input_is_refused() -> None:
    with pytest.raises(ExportError, match="does not compute on input"):
        to_onnx(default_network(), (1, 20, 20))


def test_unknown_layer_kind_is_a_clear_error() -> None:
    class Odd(Layer):
        kind = "odd"

    with pytest.raises(ExportError, match="'odd' is not supported"):
        to_onnx(Network([Odd()]), (1, 4, 4))


def importable(case: str) -> tuple[Any, tuple[int, ...]]:
    """The case as the ONNX importer reads it back: it has no ``Slice`` (our circular
    padding) and no constant-first ``MatMul`` (uneven adaptive pooling), so those two
    layers are made plain here (same shapes)."""
    make, shape = CASES[case]
    model = make()
    if case == "every_layer":
        model.layers[2].padding_mode = "zeros"
    if case == "graph_ops":
        model.node("pad_c").layer.mode = "zeros"
        model.node("adapt").layer.output_size = (2, 3)
    return model, shape


@pytest.mark.parametrize("case", list(CASES))
def test_reimport_gives_the_same_outputs(case: str, tmp_path: Path) -> None:
    from cnn_explorer.interchange.onnx_import import import_onnx

    model, shape = importable(case)
    path = tmp_path / f"{case}.onnx"
    save_onnx(
        path,
        model,
        shape,
        class_names=["a", "b", "c", "d", "e"][: model(inputs(shape, 1)).shape[1]],
    )
    back = import_onnx(path)
    x = inputs(shape)
    np.testing.assert_allclose(back.graph(x), model(x), atol=TOL, rtol=TOL)
    assert back.preprocessing.input_shape == shape
    assert back.preprocessing.class_names
    assert back.report.self_check is not None and back.report.self_check.passed


def test_all_disabled_is_the_identity_and_names_never_clash() -> None:
    from cnn_explorer.engine.graph import Graph, Node

    net = Network([Conv2D(1, 1, 3, rng=0, enabled=False)])
    x = inputs((1, 4, 4), 2)
    np.testing.assert_array_equal(run_reference(to_onnx(net, (1, 4, 4)), x), x)
    conv = Conv2D(1, 1, 3, padding=1, padding_mode="reflect", rng=0)
    graph = Graph([Node("a", conv, ("input",)), Node("a/pad", Activation("relu"), ("a",))])
    proto = to_onnx(graph, (1, 4, 4))
    assert len({o for n in proto.graph.node for o in n.output}) == len(proto.graph.node)
    np.testing.assert_allclose(run_reference(proto, x), graph(x), atol=TOL)
