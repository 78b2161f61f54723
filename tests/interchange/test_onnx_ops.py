"""Each operator's conversion, one small hand-built model at a time, checked against the
ONNX reference (the import's self-check) and onnxruntime (when installed).

Every case is ``image (N, C, H, W) -> nodes -> out``, with the constants it names given
as arrays; the table covers the attribute spellings that differ between opsets and
exporters (pads order, auto_pad, ceil_mode, count_include_pad, Clip inputs, Pad modes,
axes as attributes or inputs, Softmax before and after opset 13).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnn_explorer.interchange.load import load_model
from cnn_explorer.interchange.model import ImportedModel, ModelFileError

RNG = np.random.default_rng(7)


def _w(*shape: int) -> np.ndarray:
    return (RNG.standard_normal(shape) * 0.5).astype(np.float32)


def node(op: str, inputs: list[str], output: str = "out", **attrs: Any) -> Any:
    return helper.make_node(op, inputs, [output], name=f"{op.lower()}_{output}", **attrs)


CASES: dict[str, tuple[int, tuple[int, int, int], list[Any], dict[str, np.ndarray]]] = {
    # name: (opset, (C, H, W), nodes, constants)
    "conv_groups_dilation_stride_asym_pads": (
        13, (4, 9, 8),
        [node("Conv", ["image", "w", "b"], group=2, dilations=[2, 1], strides=[2, 1],
              pads=[0, 1, 2, 0])],
        {"w": _w(6, 2, 3, 3), "b": _w(6)},
    ),
    "conv_depthwise_same_upper": (
        13, (3, 7, 6), [node("Conv", ["image", "w"], group=3, auto_pad="SAME_UPPER",
                             strides=[2, 2])], {"w": _w(3, 1, 4, 4)},
    ),
    "conv_same_lower": (
        13, (2, 6, 6), [node("Conv", ["image", "w"], auto_pad="SAME_LOWER")], {"w": _w(3, 2, 2, 2)},
    ),
    "conv_valid": (13, (2, 6, 6), [node("Conv", ["image", "w"], auto_pad="VALID")],
                   {"w": _w(3, 2, 3, 3)}),
    "maxpool_ceil_pads": (
        13, (2, 8, 7), [node("MaxPool", ["image"], kernel_shape=[3, 3], strides=[2, 2],
                             pads=[1, 0, 1, 1], ceil_mode=1)], {},
    ),
    "maxpool_same_upper": (
        13, (2, 7, 7), [node("MaxPool", ["image"], kernel_shape=[2, 2], strides=[2, 2],
                             auto_pad="SAME_UPPER")], {},
    ),
    "avgpool_exclude_pad": (
        13, (2, 7, 6), [node("AveragePool", ["image"], kernel_shape=[3, 3], strides=[2, 2],
                             pads=[1, 1, 1, 1])], {},
    ),
    "avgpool_include_pad": (
        13, (2, 7, 6), [node("AveragePool", ["image"], kernel_shape=[3, 2], strides=[1, 2],
                             pads=[1, 0, 1, 1], count_include_pad=1)], {},
    ),
    "avgpool_ceil_include_pad": (
        13, (2, 8, 7), [node("AveragePool", ["image"], kernel_shape=[3, 3], strides=[2, 2],
                             pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)], {},
    ),
    "avgpool_ceil_exclude_pad": (
        13, (2, 8, 7), [node("AveragePool", ["image"], kernel_shape=[3, 3], strides=[2, 2],
                             pads=[0, 1, 1, 0], ceil_mode=1)], {},
    ),
    "global_pools": (
        13, (3, 5, 4),
        [node("GlobalMaxPool", ["image"], "gmp"), node("GlobalAveragePool", ["image"], "gap"),
         node("Add", ["gmp", "gap"])], {},
    ),
    "activations": (
        13, (2, 4, 4),
        [node("LeakyRelu", ["image"], "a", alpha=0.2), node("Elu", ["a"], "b", alpha=0.7),
         node("Softplus", ["b"], "c"), node("Sigmoid", ["c"], "d"), node("Tanh", ["d"], "e"),
         node("Relu", ["e"])], {},
    ),
    "prelu_per_channel_and_scalar": (
        13, (3, 4, 4),
        [node("PRelu", ["image", "slope3"], "p"), node("PRelu", ["p", "slope1"])],
        {"slope3": _w(3, 1, 1), "slope1": np.array([0.3], np.float32)},
    ),
    "clip_opset11_max_only": (
        11, (2, 4, 4), [node("Clip", ["image", "", "hi"])], {"hi": np.array(0.4, np.float32)},
    ),
    "clip_opset13_both": (
        13, (2, 4, 4), [node("Clip", ["image", "lo", "hi"])],
        {"lo": np.array(-0.2, np.float32), "hi": np.array(0.4, np.float32)},
    ),
    "batchnorm": (
        15, (3, 4, 4), [node("BatchNormalization", ["image", "g", "b", "m", "v"], epsilon=1e-3)],
        {"g": _w(3), "b": _w(3), "m": _w(3), "v": np.abs(_w(3)) + 0.5},
    ),
    "pad_constant_value_stays_a_layer": (
        13, (2, 4, 5), [node("Pad", ["image", "pads", "value"], "p"), node("Conv", ["p", "w"])],
        {"pads": np.array([0, 0, 1, 2, 0, 0, 0, 1]), "value": np.array(0.5, np.float32),
         "w": _w(2, 2, 3, 3)},
    ),
    "pad_edge_folds_into_conv": (
        13, (2, 5, 5), [node("Pad", ["image", "pads"], "p", mode="edge"), node("Conv", ["p", "w"])],
        {"pads": np.array([0, 0, 2, 1, 0, 0, 2, 1]), "w": _w(3, 2, 3, 3)},
    ),
    "pad_wrap_opset19": (
        19, (2, 5, 5), [node("Pad", ["image", "pads"], "p", mode="wrap"), node("Relu", ["p"])],
        {"pads": np.array([0, 0, 1, 2, 0, 0, 1, 0])},
    ),
    "pad_zeros_adds_to_conv_padding": (
        13, (2, 5, 5),
        [node("Pad", ["image", "pads"], "p"), node("Conv", ["p", "w"], pads=[1, 1, 1, 1])],
        {"pads": np.array([0, 0, 1, 0, 0, 0, 0, 2]), "w": _w(2, 2, 3, 3)},
    ),
    "broadcast_add_mul_of_computed_tensors": (
        13, (3, 4, 4),
        [node("GlobalAveragePool", ["image"], "g"), node("Sigmoid", ["g"], "s"),
         node("Mul", ["image", "s"], "m"), node("Add", ["m", "image"])], {},
    ),
    "constant_operands": (
        13, (3, 4, 4),
        [node("Relu", ["image"], "r"), node("Mul", ["r", "k"], "a"), node("Add", ["c", "a"], "b"),
         node("Sub", ["one", "b"], "d"), node("Div", ["d", "two"])],
        {"k": _w(1, 3, 1, 1), "c": _w(3, 1, 1), "one": np.array(1.0, np.float32),
         "two": np.array([2.0], np.float32)},
    ),
    "conv_then_constant_add_folds_into_bias": (
        13, (2, 4, 4), [node("Conv", ["image", "w"], "c"), node("Add", ["c", "b"])],
        {"w": _w(3, 2, 1, 1), "b": _w(1, 3, 1, 1)},
    ),
    "gemm_transb0_alpha_beta": (
        13, (2, 3, 3),
        [node("Flatten", ["image"], "f"), node("Gemm", ["f", "w", "c"], alpha=0.5, beta=3.0)],
        {"w": _w(18, 4), "c": _w(1, 4)},
    ),
    "matmul_without_bias_and_vector_constants": (
        13, (2, 3, 3),
        [node("Flatten", ["image"], "f"), node("MatMul", ["f", "w"], "m"), node("Relu", ["m"], "r"),
         node("Mul", ["r", "k"])],
        {"w": _w(18, 5), "k": _w(5)},
    ),
    "reshape_squeeze_unsqueeze": (
        13, (2, 3, 4),
        [node("Reshape", ["image", "s"], "r"), node("Relu", ["r"], "rr"),
         node("Reshape", ["rr", "flat"], "f"), node("Unsqueeze", ["f", "ax"], "u"),
         node("Squeeze", ["u", "ax"], "q"), node("Reshape", ["q", "back"])],
        {"s": np.array([0, 6, -1, 1]), "flat": np.array([0, -1]), "ax": np.array([2, 3]),
         "back": np.array([-1, 2, 3, 4])},
    ),
    "squeeze_opset11_to_vector": (
        11, (3, 4, 4),
        [node("GlobalAveragePool", ["image"], "g"), node("Squeeze", ["g"], "s", axes=[2, 3]),
         node("Unsqueeze", ["s"], axes=[2, 3])], {},
    ),
    "softmax_opset13_channels": (13, (3, 2, 2), [node("Softmax", ["image"], axis=1)], {}),
    "softmax_opset11_flattening": (11, (3, 2, 2), [node("Softmax", ["image"], axis=1)], {}),
    "softmax_opset11_last_axis": (11, (3, 2, 4), [node("Softmax", ["image"], axis=3)], {}),
    "reducemean_attribute_keepdims": (
        13, (3, 4, 5), [node("ReduceMean", ["image"], axes=[-1, -2], keepdims=1)], {},
    ),
    "concat_three_and_sum": (
        13, (2, 3, 3),
        [node("Relu", ["image"], "a"), node("Sigmoid", ["image"], "b"),
         node("Concat", ["a", "b", "image"], "c", axis=-3), node("Sum", ["c", "c", "c"])], {},
    ),
    "dropout_identity_and_folded_constants": (
        13, (2, 3, 3),
        [node("Dropout", ["image"], "d"), node("Identity", ["d"], "i"),
         helper.make_node("Constant", [], ["k0"], value=numpy_helper.from_array(_w(2, 1, 1))),
         node("Mul", ["k0", "two"], "k"), node("Add", ["i", "k"])],
        {"two": np.array(2.0, np.float32)},
    ),
}  # fmt: skip


def build(name: str, tmp_path: Path) -> Path:
    opset, (c, h, w), nodes, consts = CASES[name]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", c, h, w])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def _input(model: ImportedModel) -> np.ndarray:
    return np.random.default_rng(3).standard_normal((2, *model.preprocessing.input_shape))


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_reference_and_onnxruntime(name: str, tmp_path: Path) -> None:
    path = build(name, tmp_path)
    model = load_model(path)
    check = model.report.self_check
    assert check is not None and check.passed and check.max_abs_diff <= 1e-5, check
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _input(model).astype(np.float32)
    want = session.run(None, {"image": x})[0]
    np.testing.assert_allclose(model.graph(x), want, rtol=1e-5, atol=1e-5)


def _statuses(name: str, tmp_path: Path) -> dict[str, str]:
    model = load_model(build(name, tmp_path), self_check=False)
    return {e.node: e.status for e in model.report.entries}


def test_folds_are_reported(tmp_path: Path) -> None:
    assert _statuses("pad_edge_folds_into_conv", tmp_path)["pad_p"] == "transformed"
    assert _statuses("pad_zeros_adds_to_conv_padding", tmp_path)["pad_p"] == "transformed"
    assert _statuses("pad_constant_value_stays_a_layer", tmp_path)["pad_p"] == "mapped"
    assert _statuses("conv_then_constant_add_folds_into_bias", tmp_path)["add_out"] == "transformed"
    statuses = _statuses("dropout_identity_and_folded_constants", tmp_path)
    assert statuses["dropout_d"] == statuses["mul_k"] == "transformed"


def _one_node(tmp_path: Path, opset: int, shape: tuple[int, ...], n: Any, **consts: Any) -> Path:
    graph = helper.make_graph(
        [n],
        "bad",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize(
    ("opset", "shape", "n", "consts", "needle"),
    [
        (13, (3, 4, 4), node("Flatten", ["image"], axis=2), {}, "from axis 2"),
        (13, (3, 4, 4), node("Concat", ["image", "image"], axis=0), {}, "batch axis"),
        (13, (3, 4, 4), node("ReduceMean", ["image"], axes=[1]), {}, "axes [1]"),
        (13, (3, 4, 4), node("Reshape", ["image", "s"]), {"s": np.array([4, -1])}, "batch axis"),
        (13, (3, 4, 4), node("Reshape", ["image", "s"]), {"s": np.array([0, 12, 4])},
         "shape (N, 12, 4)"),
        (13, (3, 4, 4), node("Add", ["image", "k"]), {"k": np.ones((4, 4), np.float32)},
         "one per channel"),
        (13, (3, 4, 4), node("Div", ["k", "image"]), {"k": np.ones(1, np.float32)}, "divides"),
        (11, (3, 4, 4), node("Softmax", ["image"], axis=2), {}, "from axis 1"),
        (15, (3, 4, 4), node("BatchNormalization", ["image", "g", "g", "g", "g"], training_mode=1),
         {"g": np.ones(3, np.float32)}, "model.eval()"),
        (13, (3, 4, 4), node("MaxPool", ["image"], kernel_shape=[2, 2], dilations=[2, 2]), {},
         "dilation"),
        (13, (3, 4, 4), node("Conv", ["image", "w"]), {"w": np.ones((2, 3, 3), np.float32)},
         "1-D convolution"),
    ],
)  # fmt: skip
def test_unsupported_variants_say_why(
    tmp_path: Path, opset: int, shape: tuple, n: Any, consts: dict, needle: str
) -> None:
    with pytest.raises(ModelFileError, match=None) as info:
        load_model(_one_node(tmp_path, opset, shape, n, **consts))
    assert needle in str(info.value)
    assert n.name in str(info.value)
