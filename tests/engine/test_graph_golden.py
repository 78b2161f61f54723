"""The graph layers and whole graph networks against torch, without torch: the golden files
``tests/golden/golden_graph_ops.npz`` (one new layer per case) and
``tests/golden/golden_graph.npz`` (a ResNet-style and a SqueezeNet-style graph), made by
``tests/golden/make_golden.py graph`` with torch float64 outputs and autograd gradients."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from cnn_explorer.engine import Graph, layer_from_dict, losses

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def _cases(name: str) -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
    with np.load(GOLDEN / name, allow_pickle=False) as data:
        arrays = {k: np.array(data[k]) for k in data.files}
    cases = []
    for key in sorted(k for k in arrays if k.endswith("/config")):
        prefix = key[: -len("config")]
        fields = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        cases.append((json.loads(str(fields.pop("config"))), fields))
    return cases


def _sub(fields: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in fields.items() if k.startswith(prefix)}


LAYER_CASES = _cases("golden_graph_ops.npz")
GRAPH_CASES = _cases("golden_graph.npz")


def test_golden_files_are_small_and_cover_every_new_kind() -> None:
    for name in ("golden_graph_ops.npz", "golden_graph.npz"):
        assert (GOLDEN / name).stat().st_size < 200 * 1024
    kinds = {c["layer"]["kind"] for c, _ in LAYER_CASES}
    new = {"pad", "global_avg_pool", "adaptive_avg_pool", "prelu", "clip", "softmax", "reshape"}
    assert new | {"conv", "max_pool", "avg_pool"} <= kinds
    assert any(c["layer"].get("groups", 1) > 1 for c, _ in LAYER_CASES)
    assert [c["note"] for c, _ in GRAPH_CASES] == ["resnet-style", "squeezenet-style"]
    graph_kinds = {n["layer"]["kind"] for c, _ in GRAPH_CASES for n in c["graph"]["nodes"]}
    assert {"add", "concat", "batch_norm", "global_avg_pool", "max_pool"} <= graph_kinds


@pytest.mark.parametrize(("config", "fields"), LAYER_CASES, ids=[c["note"] for c, _ in LAYER_CASES])
def test_layer_matches_torch(config: dict[str, Any], fields: dict[str, np.ndarray]) -> None:
    layer = layer_from_dict(config["layer"]).astype(np.float64)
    layer.load_arrays(_sub(fields, "param/"))
    out = layer.forward(fields["x"])
    np.testing.assert_allclose(out, fields["out"], rtol=1e-10, atol=1e-12)
    layer.zero_grad()
    grad_x = layer.backward(fields["grad_out"])
    np.testing.assert_allclose(grad_x, fields["grad_x"], rtol=1e-10, atol=1e-12)
    expected = _sub(fields, "grad/")
    assert set(expected) == set(layer.params)
    for key, value in expected.items():
        np.testing.assert_allclose(layer.grads[key], value, rtol=1e-10, atol=1e-11, err_msg=key)


def _graph(config: dict[str, Any], fields: dict[str, np.ndarray]) -> Graph:
    graph = Graph.from_dict(config["graph"]).astype(np.float64)
    graph.load_state_arrays(_sub(fields, "param/"))
    return graph


@pytest.mark.parametrize(("config", "fields"), GRAPH_CASES, ids=[c["note"] for c, _ in GRAPH_CASES])
def test_graph_loss_and_gradients_match_torch(
    config: dict[str, Any], fields: dict[str, np.ndarray]
) -> None:
    graph = _graph(config, fields)
    loss, logits = graph.loss_and_grads(fields["x"], fields["y"])
    assert loss == pytest.approx(float(fields["loss"]), rel=1e-12)
    np.testing.assert_allclose(logits, fields["logits"], rtol=1e-10, atol=1e-12)
    expected = _sub(fields, "grad/")
    grads = dict(graph.gradients())
    assert set(grads) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(grads[key], value, rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize(("config", "fields"), GRAPH_CASES, ids=[c["note"] for c, _ in GRAPH_CASES])
def test_graph_input_gradient_matches_torch(
    config: dict[str, Any], fields: dict[str, np.ndarray]
) -> None:
    graph = _graph(config, fields)
    graph.zero_grad()
    logits = graph(fields["x"], training=True)
    loss, ctx = losses.cross_entropy_forward(logits, fields["y"])
    grad_input = graph.backward(losses.cross_entropy_backward(1.0, ctx))
    assert float(loss) == pytest.approx(float(fields["loss"]), rel=1e-12)
    np.testing.assert_allclose(grad_input, fields["grad_input"], rtol=1e-9, atol=1e-12)
    for key, value in graph.gradients():
        np.testing.assert_allclose(value, fields[f"grad/{key}"], rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------
# live: the same graphs with fresh weights and data, float64 and float32
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oracle() -> ModuleType:
    """``tests/golden/make_golden.py`` as a module (its graph builders and torch runner)."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_golden", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("which", ["resnet", "squeezenet"])
def test_live_graph_parity_with_torch(oracle: ModuleType, which: str, dtype: type) -> None:
    rng = np.random.default_rng(99)
    built = oracle.resnet_graph(rng) if which == "resnet" else oracle.squeezenet_graph(rng)
    side = 12 if which == "resnet" else 19
    x = rng.standard_normal((3, 3, side, side))
    y = rng.integers(0, 3, 3)
    fields = oracle.graph_case(built, x, y, which)["arrays"]
    graph = Graph.from_dict(built.to_dict(), built.state_arrays()).astype(dtype)
    loss, logits = graph.loss_and_grads(x.astype(dtype), y)
    tol = {"rtol": 1e-9, "atol": 1e-11} if dtype == np.float64 else {"rtol": 2e-3, "atol": 2e-4}
    assert loss == pytest.approx(float(fields["loss"]), rel=tol["rtol"])
    np.testing.assert_allclose(logits, fields["logits"], **tol)
    for key, value in graph.gradients():
        np.testing.assert_allclose(value, fields[f"grad/{key}"], err_msg=key, **tol)
