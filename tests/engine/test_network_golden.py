"""Whole-network gradients against torch autograd, without torch: the golden file
``tests/golden/golden_network.npz`` (made by ``tests/golden/make_golden.py network``) holds two
networks' seeded weights, a random batch, torch's cross-entropy and its float64 gradients of
every parameter and of the input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnn_explorer.engine import losses
from cnn_explorer.engine.network import Network

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "golden_network.npz"


def _cases() -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
    with np.load(GOLDEN, allow_pickle=False) as data:
        arrays = {k: np.array(data[k]) for k in data.files}
    cases = []
    for key in sorted(k for k in arrays if k.endswith("/config")):
        prefix = key[: -len("config")]
        fields = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        cases.append((json.loads(str(fields.pop("config"))), fields))
    return cases


CASES = _cases()


def _network(config: dict[str, Any], fields: dict[str, np.ndarray]) -> Network:
    params = {k[len("param/") :]: v for k, v in fields.items() if k.startswith("param/")}
    net = Network.from_dict(config["network"]).astype(np.float64)
    net.load_state_arrays(params)
    return net


def test_golden_file_is_small_and_complete() -> None:
    assert GOLDEN.stat().st_size < 200 * 1024
    assert len(CASES) == 2
    notes = [config["note"] for config, _ in CASES]
    assert any("default_classifier" in n for n in notes)
    kinds = {layer["kind"] for config, _ in CASES for layer in config["network"]["layers"]}
    assert {"conv", "max_pool", "avg_pool", "activation", "flatten", "dense"} <= kinds


@pytest.mark.parametrize(("config", "fields"), CASES, ids=[c["note"] for c, _ in CASES])
def test_loss_and_parameter_gradients_match_torch(
    config: dict[str, Any], fields: dict[str, np.ndarray]
) -> None:
    net = _network(config, fields)
    loss, logits = net.loss_and_grads(fields["x"], fields["y"])
    assert loss == pytest.approx(float(fields["loss"]), rel=1e-12)
    np.testing.assert_allclose(logits, fields["logits"], rtol=1e-10, atol=1e-12)
    grads = dict(net.gradients())
    expected = {k[len("grad/") :]: v for k, v in fields.items() if k.startswith("grad/")}
    assert set(grads) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(grads[key], value, rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize(("config", "fields"), CASES, ids=[c["note"] for c, _ in CASES])
def test_input_gradient_through_backward_matches_torch(
    config: dict[str, Any], fields: dict[str, np.ndarray]
) -> None:
    net = _network(config, fields)
    net.zero_grad()
    logits = net(fields["x"], training=True)
    loss, ctx = losses.cross_entropy_forward(logits, fields["y"])
    grad_input = net.backward(losses.cross_entropy_backward(1.0, ctx))
    assert float(loss) == pytest.approx(float(fields["loss"]), rel=1e-12)
    np.testing.assert_allclose(grad_input, fields["grad_input"], rtol=1e-9, atol=1e-12)
    for key, value in net.gradients():
        np.testing.assert_allclose(value, fields[f"grad/{key}"], rtol=1e-9, atol=1e-12)
