"""Graph.backward_to: the gradient of an inner tensor's weighted sum with respect to the
input or to another inner tensor (what saliency of a hidden unit and Grad-CAM need),
checked against central differences on a residual graph, including the fan-out tensor
whose gradient is the sum over its two consumers."""

from __future__ import annotations

import numpy as np
from gradcheck import assert_gradient_close, numerical_gradient
from test_graph import fire_graph, residual_graph


def _x(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, 3, 6, 6))


def test_inner_start_to_input_matches_central_differences() -> None:
    g = residual_graph()
    x = _x()
    seed = np.random.default_rng(2).standard_normal(g.forward(x)["a_relu"].shape)
    g.forward(x)
    got = g.backward_to(seed, start="a_relu")
    numeric = numerical_gradient(lambda: float((g.forward(x)["a_relu"] * seed).sum()), x)
    assert_gradient_close(got, numeric, "a_relu w.r.t. input")


def test_output_to_fan_out_tensor_adds_both_consumers() -> None:
    g = residual_graph()
    x = _x()
    tensors = g.forward(x)
    seed = np.random.default_rng(3).standard_normal(tensors["fc"].shape)
    got = g.backward_to(seed, wrt="stem")
    stem = tensors["stem"].copy()

    def f() -> float:
        t = dict(tensors, stem=stem)
        return float((g.forward_from("a", t)["fc"] * seed).sum())

    assert_gradient_close(got, numerical_gradient(f, stem), "output w.r.t. stem")


def test_defaults_equal_backward_and_unrelated_tensors_give_zeros() -> None:
    g = residual_graph()
    x = _x()
    out = g.forward(x)["fc"]
    seed = np.ones_like(out)
    a = g.backward_to(seed)
    g.forward(x)
    np.testing.assert_array_equal(a, g.backward(seed))
    t = g.forward(x)
    z = g.backward_to(np.ones_like(t["a_relu"]), wrt="b", start="a_relu")
    assert z.shape == t["b"].shape and not z.any()


def test_concat_branch_and_unbatched_input() -> None:
    g = fire_graph()
    x = _x()[0]  # (C, H, W): the graph lifts it to a batch of one and back
    t = g.forward(x)
    seed = np.random.default_rng(4).standard_normal(t["cat"].shape)
    got = g.backward_to(seed, wrt="s_act")
    s_act = t["s_act"].copy()

    def f() -> float:
        both = g.forward_from("e1", dict(t, s_act=s_act))  # s_act feeds e1 and e3
        return float((g.forward_from("e3", both)["cat"] * seed).sum())

    assert got.shape == s_act.shape
    assert_gradient_close(got, numerical_gradient(f, s_act), "cat w.r.t. s_act")
