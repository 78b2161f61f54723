"""PyTorch export: readable source plus safetensors weights whose keys are the generated
module's state_dict; in torch (when installed) it loads strictly and matches the engine."""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
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
from safetensors.numpy import load_file

from cnn_explorer.engine.layers import AvgPool2D, Conv2D, Layer, MaxPool2D
from cnn_explorer.engine.network import Network
from cnn_explorer.interchange.export_common import ExportError
from cnn_explorer.interchange.model import METADATA_CLASS_NAMES
from cnn_explorer.interchange.torch_export import (
    METADATA_ARCHITECTURE,
    METADATA_KEYS,
    save_torch,
    to_torch,
)

TOL = 1e-5
CASES = {
    "default": (default_network, DEFAULT_SHAPE),
    "every_layer": (every_layer_network, EVERY_SHAPE),
    "residual": (residual_graph, RESIDUAL_SHAPE),
    "graph_ops": (graph_ops_graph, OPS_SHAPE),
}


def load_generated(py: Path, weights: Path) -> Any:
    """Import the generated file and load its weights strictly (needs torch)."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file as load_torch

    spec = importlib.util.spec_from_file_location(f"exported_{py.stem}", py)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build_model()
    model.load_state_dict(load_torch(str(weights)), strict=True)
    model.eval()
    assert isinstance(model, torch.nn.Module)
    return model


def run_torch(model: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.asarray(model(torch.from_numpy(x)).numpy())


@pytest.mark.parametrize("case", list(CASES))
def test_source_is_valid_python_and_weights_are_float32(case: str, tmp_path: Path) -> None:
    make, shape = CASES[case]
    py, weights = save_torch(tmp_path / "model.py", make(), shape, class_names=None)
    source = py.read_text()
    ast.parse(source)
    assert "def build_model()" in source
    kind = "class Model(nn.Module)" if case == "residual" else "nn.Sequential("
    assert kind in source
    assert 'load_file("model.safetensors")' in source
    tensors = load_file(str(weights))
    assert all(v.dtype in (np.float32, np.int64) for v in tensors.values())
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.torch
@pytest.mark.parametrize("case", list(CASES))
def test_torch_loads_strictly_and_matches_engine(case: str, tmp_path: Path) -> None:
    make, shape = CASES[case]
    net = make()
    model = load_generated(*save_torch(tmp_path / f"{case}.py", net, shape))
    for batch in (1, 3):
        x = inputs(shape, batch)
        np.testing.assert_allclose(run_torch(model, x), net(x), atol=TOL, rtol=TOL)


@pytest.mark.torch
@pytest.mark.parametrize(
    "layer",
    [
        MaxPool2D(2, 2, 0, ceil_mode=True),
        MaxPool2D(3, 2, 1, ceil_mode=True),
        AvgPool2D(3, 2, 1, ceil_mode=True),
        AvgPool2D(2, 2, padding=1, ceil_mode=True, count_include_pad=False),
        MaxPool2D(3, 1, padding=(1, 0, 1, 0)),
        MaxPool2D(3, 2, padding=(0, 1, 1, 0), ceil_mode=True),
        AvgPool2D(3, 2, padding=(1, 0, 0, 1)),
        AvgPool2D(3, 1, padding=(1, 0, 0, 1), count_include_pad=False),
        AvgPool2D(3, 2, padding=(0, 1, 1, 0), ceil_mode=True, count_include_pad=False),
        AvgPool2D(3, 2, padding=(1, 0, 0, 1), ceil_mode=True),
        AvgPool2D(2, 2, padding=(1, 0, 1, 0), ceil_mode=True),
        Conv2D(2, 4, 3, stride=2, padding=(0, 2, 2, 1), padding_mode="circular", rng=0),
        Conv2D(2, 2, 3, padding=(2, 1, 0, 2), padding_mode="reflect", rng=0),
        Conv2D(2, 2, 3, padding=(1, 2, 2, 0), padding_mode="replicate", flip_kernel=True, rng=0),
    ],
    ids=repr,
)
@pytest.mark.parametrize("side", [5, 6])
def test_padding_and_pool_corners_in_torch(layer: Layer, side: int, tmp_path: Path) -> None:
    net = Network([layer])
    shape = (2, side, side + 1)
    model = load_generated(*save_torch(tmp_path / "corner.py", net, shape))
    x = inputs(shape, 2)
    np.testing.assert_allclose(run_torch(model, x), net(x), atol=TOL, rtol=TOL)


def test_metadata_names_the_architecture_and_each_key() -> None:
    net = every_layer_network()
    out = to_torch(net, EVERY_SHAPE, class_names=list("abcde"))
    arch = json.loads(out.metadata[METADATA_ARCHITECTURE])
    assert arch["input_shape"] == list(EVERY_SHAPE)
    names = [n["name"] for n in arch["graph"]["nodes"]]
    assert "16" not in names  # the disabled layer is not exported
    keys = json.loads(out.metadata[METADATA_KEYS])
    engine_keys = {k for k in net.state_arrays() if not k.startswith("16.")}
    assert set(keys.values()) == engine_keys
    assert set(keys) | {k for k in out.tensors if k.endswith("num_batches_tracked")} == set(
        out.tensors
    )
    assert json.loads(out.metadata[METADATA_CLASS_NAMES]) == list("abcde")
    assert "CLASS_NAMES = ['a', 'b', 'c', 'd', 'e']" in out.source


def test_flipped_kernel_weights_are_flipped() -> None:
    conv = Conv2D(1, 2, 3, flip_kernel=True, rng=0)
    out = to_torch(Network([conv]), (1, 5, 5))
    np.testing.assert_array_equal(out.tensors["0.weight"], conv.weight[:, :, ::-1, ::-1])


def test_wrong_suffix_and_unknown_layers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"\.py file"):
        save_torch(tmp_path / "model.txt", default_network(), DEFAULT_SHAPE)

    class Odd(Layer):
        kind = "odd"

    with pytest.raises(ExportError, match="'odd' is not supported"):
        to_torch(Network([Odd()]), (1, 4, 4))
