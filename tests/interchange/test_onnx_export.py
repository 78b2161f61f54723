"""ONNX export: the file passes the full checker and computes what the engine computes, in
``onnx.reference`` (always) and onnxruntime (when installed), for any batch size."""

from __future__ import annotations

import json
from collections import Counter
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


CORNERS = [
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
]
"""Layers whose export needs several nodes or spelled-out padding."""


@pytest.mark.parametrize("layer", CORNERS, ids=repr)
@pytest.mark.parametrize("side", [5, 6, 7])
def test_pool_and_padding_corners(layer: Layer, side: int) -> None:
    net = Network([layer])
    shape = (2, side, side + 1)
    proto = to_onnx(net, shape)
    x = inputs(shape, 2)
    np.testing.assert_allclose(run_reference(proto, x), net(x), atol=TOL, rtol=TOL)
    np.testing.assert_allclose(run_onnxruntime(proto, x), net(x), atol=TOL, rtol=TOL)


@pytest.mark.parametrize("layer", CORNERS, ids=repr)
@pytest.mark.parametrize("side", [5, 6, 7])
def test_corners_reimport_as_one_layer(layer: Layer, side: int, tmp_path: Path) -> None:
    """Pad + pool, floor-mode overhangs, Mul/Softplus/Div/Where: each comes back as the
    one layer it was, computing the same."""
    from cnn_explorer.interchange.onnx_import import import_onnx

    net = Network([layer])
    shape = (2, side, side + 1)
    save_onnx(tmp_path / "m.onnx", net, shape)
    back = import_onnx(tmp_path / "m.onnx")
    assert [n.layer.kind for n in back.graph.nodes] == [layer.kind]
    x = inputs(shape, 2)
    np.testing.assert_allclose(back.graph(x), net(x), atol=TOL, rtol=TOL)


def test_model_that_does_not_fit_its_input_is_refused() -> None:
    with pytest.raises(ExportError, match="does not compute on input"):
        to_onnx(default_network(), (1, 20, 20))


def test_unknown_layer_kind_is_a_clear_error() -> None:
    class Odd(Layer):
        kind = "odd"

    with pytest.raises(ExportError, match="'odd' is not supported"):
        to_onnx(Network([Odd()]), (1, 4, 4))


def _kinds(model: Any) -> Counter[str]:
    """Layer kinds with what tells them apart (activation, padding mode); dropout, the
    identity activation and disabled layers export to an Identity (or nothing) that the
    importer drops, a flattening Reshape imports as Flatten."""
    layers = model.layers if isinstance(model, Network) else [n.layer for n in model.nodes]
    out: Counter[str] = Counter()
    for layer in layers:
        if (
            not layer.enabled
            or layer.kind == "dropout"
            or layer.to_dict().get("activation") == "identity"
        ):
            continue
        kind = "flatten" if layer.kind == "reshape" and len(layer.shape) == 1 else layer.kind
        detail = getattr(layer, "activation", None) or getattr(layer, "padding_mode", None)
        out[f"{kind}:{detail or getattr(layer, 'mode', '')}"] += 1
    return out


OUR_SPELLINGS = (
    "conv:circular",
    "pad:circular",
    "activation:gelu_tanh",
    "activation:softplus",
    "adaptive_avg_pool:",
    "max_pool:",
    "avg_pool:",
)
"""Layers the exporter spells as several ONNX nodes that the importer folds back."""


@pytest.mark.parametrize("case", list(CASES))
def test_reimport_gives_the_same_outputs_and_layers(case: str, tmp_path: Path) -> None:
    from cnn_explorer.interchange.onnx_import import import_onnx

    make, shape = CASES[case]
    model = make()
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
    assert _kinds(back.graph) == _kinds(model)  # layer for layer


def test_spelled_out_layers_come_back_as_one_layer_each(tmp_path: Path) -> None:
    from cnn_explorer.engine.extra_layers import AdaptiveAvgPool2D, Pad2D
    from cnn_explorer.engine.graph import Graph, Node
    from cnn_explorer.interchange.onnx_import import import_onnx

    graph = Graph(
        [
            Node("wrap", Pad2D((1, 0, 2, 1), "circular"), ("input",)),
            Node("conv", Conv2D(2, 3, 3, padding=1, padding_mode="circular", rng=0), ("wrap",)),
            Node("gelu", Activation("gelu_tanh"), ("conv",)),
            Node("pool", AdaptiveAvgPool2D((3, 4)), ("gelu",)),
        ]
    )
    shape = (2, 7, 6)
    save_onnx(tmp_path / "m.onnx", graph, shape)
    back = import_onnx(tmp_path / "m.onnx")
    assert [(n.name, n.layer.kind) for n in back.graph.nodes] == [
        ("wrap", "pad"),
        ("conv", "conv"),
        ("gelu", "activation"),
        ("pool", "adaptive_avg_pool"),
    ]
    assert back.graph.node("conv").layer.padding_mode == "circular"
    assert back.graph.node("pool").layer.output_size == (3, 4)
    x = inputs(shape)
    np.testing.assert_allclose(back.graph(x), graph(x), atol=TOL, rtol=TOL)
    notes = " ".join(back.report.transformations)
    assert "circular padding" in notes and "GELU" in notes and "AdaptiveAvgPool2D" in notes


def test_near_miss_gelu_is_left_as_nodes(tmp_path: Path) -> None:
    """A constant that is not GELU's (0.04 for 0.044715) is imported node by node."""
    from cnn_explorer.interchange.onnx_import import import_onnx

    proto = to_onnx(Network([Activation("gelu_tanh")]), (1, 3, 3))
    for init in proto.graph.initializer:
        if init.name.endswith(".c"):
            init.CopyFrom(onnx.numpy_helper.from_array(np.float32(0.04), init.name))
    onnx.save(proto, str(tmp_path / "m.onnx"))
    back = import_onnx(tmp_path / "m.onnx")
    assert "activation:gelu_tanh" not in _kinds(back.graph)
    assert back.report.self_check is not None and back.report.self_check.passed


def test_uneven_torch_style_matmul_that_is_not_pooling_is_refused(tmp_path: Path) -> None:
    from cnn_explorer.engine.extra_layers import AdaptiveAvgPool2D
    from cnn_explorer.interchange.model import ModelFileError
    from cnn_explorer.interchange.onnx_import import import_onnx

    proto = to_onnx(Network([AdaptiveAvgPool2D((2, 3))]), (1, 5, 5))
    rows = next(i for i in proto.graph.initializer if i.name.endswith(".rows"))
    rows.CopyFrom(onnx.numpy_helper.from_array(np.ones((2, 5), np.float32), rows.name))
    onnx.save(proto, str(tmp_path / "m.onnx"))
    with pytest.raises(ModelFileError, match="adaptive average pooling"):
        import_onnx(tmp_path / "m.onnx")


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


@pytest.mark.parametrize(
    "name", ["keras_sequential", "keras_functional", "keras_legacy", "keras_zoo"]
)
def test_imported_keras_model_leaves_as_onnx_and_comes_back(name: str, tmp_path: Path) -> None:
    """Keras in, ONNX out, ONNX in again: the same outputs, preprocessing and layers."""
    from cnn_explorer.interchange.load import load_model

    fixtures = Path(__file__).parent / "fixtures"
    suffix = ".h5" if name == "keras_legacy" else ".keras"
    keras = load_model(fixtures / f"{name}{suffix}", self_check=False)
    pre = keras.preprocessing
    save_onnx(tmp_path / "m.onnx", keras.graph, pre.input_shape, preprocessing=pre)
    back = load_model(tmp_path / "m.onnx")
    x = np.load(fixtures / f"{name}.npz")["input"]
    np.testing.assert_allclose(back.graph(x), keras.graph(x), atol=TOL, rtol=TOL)
    assert back.preprocessing == pre
    missing = _kinds(keras.graph) - _kinds(back.graph)
    assert set(missing) <= {"pad:zeros"}  # zero padding before a conv joins the conv's own
