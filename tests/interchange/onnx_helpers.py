"""Helpers for the model import tests: the committed fixtures (see
``fixtures/make_fixtures.py``) and tiny hand-built ONNX models for the bad-file cases."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_NAMES = (
    "lenet5",
    "vgg_bn",
    "vgg_bn_fused",
    "resnet",
    "squeezenet",
    "opset11_softmax",
    "opset18_reducemean",
)


def tiny_model(
    *,
    extra: Sequence[onnx.NodeProto] = (),
    weight: np.ndarray | None = None,
    dims: Sequence[int | str] = ("N", 1, 6, 6),
    opset: int = 13,
) -> onnx.ModelProto:
    """``image -> Conv 3×3 (1→2) -> Relu -> [extra nodes reading "relu"] -> last output``."""
    w = np.full((2, 1, 3, 3), 0.1, np.float32) if weight is None else weight
    nodes = [
        helper.make_node("Conv", ["image", "w"], ["conv"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        *extra,
    ]
    out = nodes[-1].output[0]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(dims))],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 2, *dims[2:]])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path
