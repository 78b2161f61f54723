"""Graph networks (engine/graph.py) and merge layers (engine/merge.py): wiring checks,
topological order, every-tensor forward and forward_from, fan-out gradient accumulation,
Concat's gradient split, central-difference gradient checks of whole graphs, chain
equivalence with Network (bit for bit), config round trips and training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gradcheck import assert_gradient_close, numerical_gradient

from cnn_explorer.engine import (
    SGD,
    Activation,
    Add,
    AvgPool2D,
    BatchNorm2D,
    Concat,
    Conv2D,
    Dense,
    Flatten,
    Graph,
    MaxPool2D,
    Mul,
    Network,
    Node,
    ShapeError,
    default_classifier,
    layer_from_dict,
    losses,
    train,
)
from cnn_explorer.engine.serialize import (
    FileFormatError,
    graph_from_config,
    load_model,
    load_network,
    network_from_config,
    network_to_state,
    save_network,
)

F64 = np.float64


def residual_graph(c: int = 3, classes: int = 3, hw: int = 6, seed: int = 0) -> Graph:
    """stem conv → (conv → relu → conv) + stem → relu → pool → flatten → dense."""
    rng = np.random.default_rng(seed)
    return Graph(
        [
            Node("stem", Conv2D(c, 4, 3, padding=1, rng=rng, dtype=F64), ("input",)),
            Node("a", Conv2D(4, 4, 3, padding=1, rng=rng, dtype=F64), ("stem",)),
            Node("a_relu", Activation("tanh"), ("a",)),
            Node("b", Conv2D(4, 4, 3, padding=1, rng=rng, dtype=F64), ("a_relu",)),
            Node("add", Add(), ("b", "stem")),
            Node("act", Activation("tanh"), ("add",)),
            Node("pool", AvgPool2D(2), ("act",)),
            Node("flat", Flatten(), ("pool",)),
            Node("fc", Dense(4 * (hw // 2) ** 2, classes, rng=rng, dtype=F64), ("flat",)),
        ]
    )


def fire_graph(seed: int = 0) -> Graph:
    """A SqueezeNet fire module: squeeze 1×1, expand 1×1 and 3×3 side by side, concat."""
    rng = np.random.default_rng(seed)
    return Graph(
        [
            Node("squeeze", Conv2D(3, 2, 1, rng=rng, dtype=F64), ("input",)),
            Node("s_act", Activation("tanh"), ("squeeze",)),
            Node("e1", Conv2D(2, 3, 1, rng=rng, dtype=F64), ("s_act",)),
            Node("e3", Conv2D(2, 4, 3, padding=1, rng=rng, dtype=F64), ("s_act",)),
            Node("cat", Concat(), ("e1", "e3")),
        ]
    )


def check_graph_gradients(graph: Graph, x: np.ndarray, seed: int = 0) -> None:
    """Input and parameter gradients of ``Σ out · g`` against central differences."""
    x = np.array(x, dtype=F64)
    graph.zero_grad()
    out = graph(x)
    g = np.random.default_rng(seed).standard_normal(out.shape)
    gx = graph.backward(g)
    analytic = {k: v.copy() for k, v in graph.gradients()}

    def loss() -> float:
        return float(np.sum(graph(x) * g))

    assert_gradient_close(gx, numerical_gradient(loss, x), "input")
    for key, param in graph.parameters():
        assert_gradient_close(analytic[key], numerical_gradient(loss, param), key)


# --------------------------------------------------------------------------------------
# wiring
# --------------------------------------------------------------------------------------


def test_duplicate_name_is_refused_with_the_name() -> None:
    nodes = [Node("a", Activation(), ("input",)), Node("a", Activation(), ("a",))]
    with pytest.raises(ValueError, match="two nodes are named 'a'"):
        Graph(nodes)


def test_unknown_input_is_refused_naming_node_and_input() -> None:
    with pytest.raises(ValueError, match="node 'a' reads 'nowhere'"):
        Graph([Node("a", Activation(), ("nowhere",))])


def test_cycle_is_refused_naming_its_nodes() -> None:
    nodes = [
        Node("a", Add(), ("input", "c")),
        Node("b", Activation(), ("a",)),
        Node("c", Activation(), ("b",)),
    ]
    with pytest.raises(ValueError, match="cycle") as info:
        Graph(nodes)
    text = str(info.value)
    assert all(f"'{n}'" in text for n in "abc")


def test_reserved_name_two_inputs_and_shared_layer_are_refused() -> None:
    with pytest.raises(ValueError, match="'input' names the graph's input"):
        Graph([Node("input", Activation(), ("input",))])
    with pytest.raises(ValueError, match="takes one input, got 2"):
        Graph([Node("a", Activation(), ("input", "input"))])
    shared = Activation()
    with pytest.raises(ValueError, match="share one layer object"):
        Graph([Node("a", shared, ("input",)), Node("b", shared, ("a",))])
    with pytest.raises(ValueError, match="output 'zzz' is not a node"):
        Graph([Node("a", Activation(), ("input",))], output="zzz")


def test_nodes_are_reordered_topologically_and_valid_orders_kept() -> None:
    nodes = [
        Node("add", Add(), ("left", "right")),
        Node("right", Activation("tanh"), ("input",)),
        Node("left", Activation("relu"), ("input",)),
    ]
    graph = Graph(nodes, output="add")
    assert [n.name for n in graph.nodes] == ["right", "left", "add"]
    kept = Graph([nodes[2], nodes[1], nodes[0]])
    assert [n.name for n in kept.nodes] == ["left", "right", "add"]
    assert graph.consumers("input") == ["right", "left"]
    assert graph.consumers("add") == []
    assert graph.node("left").layer is nodes[2].layer
    with pytest.raises(KeyError, match="no node named"):
        graph.node("missing")


def test_output_defaults_to_the_last_given_node_and_is_chain() -> None:
    graph = fire_graph()
    assert graph.output == "cat"
    assert not graph.is_chain()
    chain = Graph.from_network(default_classifier((1, 8, 8), 3))
    assert chain.is_chain()
    assert chain.output == str(len(chain) - 1)


# --------------------------------------------------------------------------------------
# shapes and forward
# --------------------------------------------------------------------------------------


def test_output_shapes_per_tensor_and_errors_name_the_node() -> None:
    graph = residual_graph()
    shapes = graph.output_shapes((3, 6, 6))
    assert list(shapes) == ["input", *(n.name for n in graph.nodes)]
    assert shapes["add"] == (4, 6, 6)
    assert shapes["fc"] == (3,)
    assert graph.output_shape((3, 6, 6)) == (3,)
    with pytest.raises(ShapeError, match=r"node 'stem'.*expects 3 input channels"):
        graph.output_shapes((2, 6, 6))
    bad = Graph(
        [
            Node("a", Conv2D(1, 2, 3, padding=1), ("input",)),
            Node("b", Conv2D(1, 3, 3), ("input",)),
            Node("add", Add(), ("a", "b")),
        ]
    )
    with pytest.raises(ShapeError, match=r"node 'add'.*2×6×6, 3×4×4"):
        bad.output_shapes((1, 6, 6))
    with pytest.raises(ShapeError, match="node 'add'"):
        bad(np.zeros((2, 1, 6, 6), np.float32))


def test_forward_returns_every_tensor_in_topological_order() -> None:
    graph = fire_graph()
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 5))
    tensors = graph.forward(x)
    assert list(tensors) == ["input", "squeeze", "s_act", "e1", "e3", "cat"]
    assert tensors["input"] is x
    np.testing.assert_array_equal(tensors["cat"][:, :3], tensors["e1"])
    np.testing.assert_array_equal(tensors["cat"][:, 3:], tensors["e3"])
    np.testing.assert_array_equal(graph(x), tensors["cat"])


def test_single_image_runs_as_a_batch_of_one() -> None:
    graph = residual_graph()
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 6))
    batched = graph.forward(x)
    single = graph.forward(x[1])
    for name, value in single.items():
        np.testing.assert_allclose(value, batched[name][1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(graph(x[1]), batched["fc"][1], rtol=1e-12, atol=1e-12)
    g = np.ones(3)
    gx = graph.backward(g)
    assert gx.shape == (3, 6, 6)


def test_forward_from_reuses_upstream_tensors_and_recomputes_downstream() -> None:
    graph = fire_graph()
    x = np.random.default_rng(3).standard_normal((2, 3, 5, 5))
    tensors = graph.forward(x)
    graph.node("e3").layer.params["weight"] *= 2.0
    again = graph.forward_from("e3", tensors)
    assert list(again) == list(tensors)
    for name in ("input", "squeeze", "s_act", "e1"):
        assert again[name] is tensors[name]
    np.testing.assert_allclose(again["e3"], graph.forward(x)["e3"])
    assert not np.allclose(again["e3"], tensors["e3"])
    np.testing.assert_array_equal(again["cat"][:, 3:], again["e3"])
    everything = graph.forward_from("input", {"input": x + 1.0})
    np.testing.assert_allclose(everything["cat"], graph(x + 1.0))
    with pytest.raises(KeyError, match="needs the tensors"):
        graph.forward_from("e3", {"input": x})


def test_nonfinite_reports_name_nodes() -> None:
    graph = fire_graph()
    x = np.zeros((1, 3, 5, 5))
    x[0, 0, 0, 0] = np.nan
    reports = graph.nonfinite_reports(graph.forward(x))
    assert reports[0].startswith("the input contains 1 NaN")
    assert any(r.startswith("node 'cat' (Concat) output contains") for r in reports)


# --------------------------------------------------------------------------------------
# backward
# --------------------------------------------------------------------------------------


def test_fan_out_gradients_are_added_by_hand() -> None:
    # y = relu(x) + 3·x  →  dy/dx = [x > 0] + 3 (x feeds two nodes)
    graph = Graph(
        [
            Node("r", Activation("relu"), ("input",)),
            Node("scale", Activation("leaky_relu", negative_slope=3.0), ("input",)),
            Node("add", Add(), ("r", "scale")),
        ]
    )
    x = np.array([[-2.0, -1.0, 0.5, 2.0]])
    out = graph(x)
    np.testing.assert_array_equal(out, np.maximum(x, 0) + np.where(x > 0, x, 3 * x))
    gx = graph.backward(np.ones_like(x))
    np.testing.assert_array_equal(gx, [[3.0, 3.0, 2.0, 2.0]])


def test_same_tensor_twice_into_a_merge() -> None:
    graph = Graph([Node("sq", Mul(), ("input", "input"))])
    x = np.array([[1.0, -2.0, 3.0]])
    np.testing.assert_array_equal(graph(x), x * x)
    np.testing.assert_array_equal(graph.backward(np.ones_like(x)), 2 * x)


def test_concat_splits_its_gradient() -> None:
    layer = Concat()
    a, b = np.ones((2, 1, 2, 2)), np.zeros((2, 3, 2, 2))
    out = layer.forward_many([a, b])
    assert out.shape == (2, 4, 2, 2)
    grad = np.arange(out.size, dtype=F64).reshape(out.shape)
    ga, gb = layer.backward_many(grad)
    np.testing.assert_array_equal(ga, grad[:, :1])
    np.testing.assert_array_equal(gb, grad[:, 1:])
    assert layer.output_shape_many([(1, 2, 2), (3, 2, 2)]) == (4, 2, 2)
    with pytest.raises(ShapeError, match="every other size must match"):
        layer.output_shape_many([(1, 2, 2), (3, 2, 3)])
    last = Concat(axis=-1)
    assert last.output_shape_many([(1, 2, 2), (1, 2, 5)]) == (1, 2, 7)
    assert last.forward_many([a, np.ones((2, 1, 2, 5))]).shape == (2, 1, 2, 7)
    with pytest.raises(ShapeError, match="batch axis"):
        Concat(axis=0)


def test_add_and_mul_broadcast_and_reduce_their_gradients() -> None:
    rng = np.random.default_rng(4)
    x, gate = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 1, 1))
    for layer in (Add(), Mul()):
        assert layer.output_shape_many([(3, 4, 4), (3, 1, 1)]) == (3, 4, 4)
        out = layer.forward_many([x, gate])
        grad = rng.standard_normal(out.shape)
        gx, gg = layer.backward_many(grad)
        assert gx.shape == x.shape and gg.shape == gate.shape

        def loss(layer: Add | Mul = layer, grad: np.ndarray = grad) -> float:
            return float(np.sum(layer.forward_many([x, gate]) * grad))

        assert_gradient_close(gx, numerical_gradient(loss, x), "x")
        assert_gradient_close(gg, numerical_gradient(loss, gate), "gate")
    with pytest.raises(ShapeError, match="cannot combine inputs of shapes 3×4×4, 2×4×4"):
        Add().output_shape_many([(3, 4, 4), (2, 4, 4)])
    with pytest.raises(ShapeError, match="same rank"):
        Mul().output_shape_many([(3, 4, 4), (3,)])
    with pytest.raises(TypeError, match="forward_many"):
        Add().forward(x)


def test_disabled_merge_passes_its_first_input() -> None:
    layer = Add(enabled=False)
    a, b = np.ones((1, 2)), np.full((1, 2), 5.0)
    assert layer.forward_many([a, b]) is a
    ga, gb = layer.backward_many(np.full((1, 2), 7.0))
    np.testing.assert_array_equal(ga, [[7.0, 7.0]])
    np.testing.assert_array_equal(gb, [[0.0, 0.0]])


def test_residual_graph_gradients_match_central_differences() -> None:
    x = np.random.default_rng(5).standard_normal((2, 3, 6, 6))
    check_graph_gradients(residual_graph(), x)


def test_fire_graph_gradients_match_central_differences() -> None:
    x = np.random.default_rng(6).standard_normal((2, 3, 5, 5))
    check_graph_gradients(fire_graph(), x)


def test_squeeze_excite_graph_gradients_match_central_differences() -> None:
    rng = np.random.default_rng(7)
    graph = Graph(
        [
            Node("conv", Conv2D(2, 3, 3, padding=1, rng=rng, dtype=F64), ("input",)),
            Node("pool", AvgPool2D(4), ("conv",)),
            Node("excite", Conv2D(3, 3, 1, rng=rng, dtype=F64), ("pool",)),
            Node("gate", Activation("sigmoid"), ("excite",)),
            Node("scaled", Mul(), ("conv", "gate")),
        ]
    )
    check_graph_gradients(graph, rng.standard_normal((2, 2, 4, 4)))


def test_loss_and_grads_of_a_graph_match_backward_of_its_loss() -> None:
    graph = residual_graph()
    x = np.random.default_rng(8).standard_normal((4, 3, 6, 6))
    y = np.array([0, 1, 2, 1])
    loss, logits = graph.loss_and_grads(x, y)
    fast = {k: v.copy() for k, v in graph.gradients()}
    graph.zero_grad()
    out = graph(x, training=True)
    ref, ctx = losses.cross_entropy_forward(out, y)
    graph.backward(losses.cross_entropy_backward(1.0, ctx))
    assert loss == pytest.approx(float(ref), rel=1e-14)
    np.testing.assert_array_equal(logits, out)
    for key, value in graph.gradients():
        np.testing.assert_allclose(fast[key], value, rtol=1e-13, atol=1e-15, err_msg=key)


# --------------------------------------------------------------------------------------
# chains are Networks
# --------------------------------------------------------------------------------------


def chain_network() -> Network:
    rng = np.random.default_rng(9)
    return Network(
        [
            Conv2D(1, 4, 3, padding=1, rng=rng),
            BatchNorm2D(4),
            Activation("relu"),
            MaxPool2D(2),
            Conv2D(4, 6, 3, padding=1, rng=rng),
            Activation("relu"),
            MaxPool2D(2),
            Flatten(),
            Dense(6 * 16, 5, rng=rng),
        ]
    )


def test_chain_graph_is_bit_identical_to_its_network() -> None:
    net = chain_network()
    graph = Graph.from_network(net.copy())
    x = np.random.default_rng(10).standard_normal((3, 1, 16, 16)).astype(np.float32)
    y = np.array([0, 4, 2])
    maps = net.forward(x)
    tensors = graph.forward(x)
    assert len(maps) == len(tensors)
    for m, t in zip(maps, tensors.values(), strict=True):
        np.testing.assert_array_equal(m, t)
    np.testing.assert_array_equal(net(x[0]), graph(x[0]))
    g = np.random.default_rng(11).standard_normal(maps[-1].shape).astype(np.float32)
    net.zero_grad()
    graph.zero_grad()
    net.forward(x, training=True)
    graph.forward(x, training=True)
    np.testing.assert_array_equal(net.backward(g), graph.backward(g))
    for (ka, a), (kb, b) in zip(net.gradients(), graph.gradients(), strict=True):
        assert ka == kb
        np.testing.assert_array_equal(a, b)
    la, logits_a = net.loss_and_grads(x, y)
    lb, logits_b = graph.loss_and_grads(x, y)
    assert la == lb
    np.testing.assert_array_equal(logits_a, logits_b)
    for (_, a), (_, b) in zip(net.gradients(), graph.gradients(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_from_network_and_to_network_round_trip() -> None:
    net = chain_network()
    graph = Graph.from_network(net)
    assert [n.name for n in graph.nodes] == [str(i) for i in range(len(net))]
    assert graph.layers == net.layers
    assert list(graph.state_arrays()) == list(net.state_arrays())
    back = graph.to_network()
    assert back is not None and back.layers == net.layers
    assert fire_graph().to_network() is None
    assert Graph.from_network(Network()).to_network() is not None


# --------------------------------------------------------------------------------------
# config, copies, training
# --------------------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip_through_json() -> None:
    graph = residual_graph()
    config = json.loads(json.dumps(graph.to_dict()))
    assert config["output"] == "fc"
    assert config["nodes"][4] == {
        "name": "add",
        "inputs": ["b", "stem"],
        "layer": Add().to_dict(),
    }
    again = Graph.from_dict(config, graph.state_arrays())
    x = np.random.default_rng(12).standard_normal((2, 3, 6, 6))
    np.testing.assert_array_equal(again(x), graph(x))
    assert again.param_count() == graph.param_count()
    assert layer_from_dict(Concat(axis=2).to_dict()).to_dict() == Concat(axis=2).to_dict()
    with pytest.raises(ValueError, match="list of nodes"):
        Graph.from_dict({"layers": []})
    with pytest.raises(ValueError, match="does not belong to any node"):
        graph.load_state_arrays({"nope.weight": np.zeros(1)})


def test_copy_is_deep_and_keeps_dtype_and_dotted_names_load() -> None:
    graph = Graph(
        [
            Node("layer1.0.conv", Conv2D(1, 2, 3, dtype=F64), ("input",)),
            Node("layer1.0.bn", BatchNorm2D(2, dtype=F64), ("layer1.0.conv",)),
        ]
    )
    twin = graph.copy()
    assert twin.state_arrays()["layer1.0.conv.weight"].dtype == F64
    twin.load_state_arrays({"layer1.0.bn.running_mean": np.array([1.0, 2.0])})
    np.testing.assert_array_equal(twin.state_arrays()["layer1.0.bn.running_mean"], [1.0, 2.0])
    np.testing.assert_array_equal(graph.state_arrays()["layer1.0.bn.running_mean"], [0.0, 0.0])


def test_sgd_steps_on_a_residual_graph_reduce_the_loss() -> None:
    graph = residual_graph(seed=13).astype(np.float32)
    rng = np.random.default_rng(14)
    x = rng.standard_normal((16, 3, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    opt = SGD(0.05, momentum=0.9)
    first, _ = graph.loss_and_grads(x, y)
    for _ in range(15):
        loss, _ = graph.loss_and_grads(x, y)
        opt.step(graph)
    assert loss < 0.7 * first
    assert graph.predict(x).shape == (16,)
    np.testing.assert_allclose(graph.predict_proba(x).sum(axis=1), 1.0, rtol=1e-5)


def test_train_loop_runs_a_graph() -> None:
    graph = fire_graph(seed=15)
    head = Graph(
        [
            *graph.copy().nodes,
            Node("pool", AvgPool2D(5), ("cat",)),
            Node("flat", Flatten(), ("pool",)),
            Node("fc", Dense(7, 2, dtype=F64), ("flat",)),
        ]
    )
    rng = np.random.default_rng(16)
    x = rng.standard_normal((12, 3, 5, 5))
    y = rng.integers(0, 2, 12)
    records = list(train(head, x, y, x_val=x, y_val=y, epochs=3, batch_size=4))
    epochs = [r for r in records if r.epoch_end]
    assert len(epochs) == 3 and epochs[-1].done
    assert epochs[-1].train_loss is not None and np.isfinite(epochs[-1].train_loss)


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------


def test_graph_file_round_trip(tmp_path: Path) -> None:
    graph = residual_graph()
    path = tmp_path / "g.npz"
    save_network(path, graph, extra={"input_shape": [3, 6, 6], "class_names": ["a", "b", "c"]})
    loaded, extra = load_model(path)
    assert isinstance(loaded, Graph)
    assert extra["class_names"] == ["a", "b", "c"]
    x = np.random.default_rng(17).standard_normal((2, 3, 6, 6))
    np.testing.assert_array_equal(loaded(x), graph(x))
    with pytest.raises(FileFormatError, match="graph network with branches"):
        load_network(path)


def test_chain_graph_file_opens_as_a_network_and_network_files_as_networks(
    tmp_path: Path,
) -> None:
    net = chain_network()
    save_network(tmp_path / "chain.npz", Graph.from_network(net))
    opened, _ = load_network(tmp_path / "chain.npz")
    assert isinstance(opened, Network)
    x = np.random.default_rng(18).standard_normal((1, 1, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(opened(x), net(x))
    save_network(tmp_path / "net.npz", net)
    model, _ = load_model(tmp_path / "net.npz")
    assert isinstance(model, Network)


def test_damaged_graph_descriptions_are_file_format_errors() -> None:
    config, _ = network_to_state(fire_graph())
    assert config["format"] == "cnn-explorer-graph"
    broken = {**config, "nodes": [*config["nodes"], {"name": "x", "inputs": ["zz"], "layer": {}}]}
    with pytest.raises(FileFormatError, match="has an invalid graph"):
        graph_from_config(broken)
    huge = json.loads(json.dumps(config))
    huge["nodes"][0]["layer"]["out_channels"] = 10**8
    with pytest.raises(FileFormatError, match="parameters, more than"):
        graph_from_config(huge)
    with pytest.raises(FileFormatError, match="not a network file"):
        network_from_config(config)
