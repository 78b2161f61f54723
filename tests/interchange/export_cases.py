"""Models the export tests share: the default classifier and a chain with every layer kind,
padding mode and pooling corner (asymmetric padding, dilation, ceil-mode overhang, a
disabled layer), with random non-trivial weights and batch-norm statistics."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnn_explorer.engine.layers import (
    Activation,
    AvgPool2D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
)
from cnn_explorer.engine.network import Network, default_classifier

DEFAULT_SHAPE = (1, 12, 12)
EVERY_SHAPE = (2, 11, 10)


def randomise(model: Any, seed: int = 0) -> Any:
    """Random biases, BN affine and running statistics (the defaults would hide errors)."""
    rng = np.random.default_rng(seed)
    layers: list[Layer] = (
        list(model.layers) if isinstance(model, Network) else [n.layer for n in model.nodes]
    )
    for layer in layers:
        for key, arr in {**layer.params, **layer.buffers}.items():
            if key in ("running_var",):
                arr[...] = rng.uniform(0.5, 2.0, arr.shape)
            elif key != "weight":
                arr[...] = rng.standard_normal(arr.shape) * 0.5
    return model


def default_network() -> Network:
    return randomise(default_classifier(DEFAULT_SHAPE, 3, seed=0))


def every_layer_network() -> Network:
    """Input ``(2, 11, 10)`` → 5 logits through every layer kind the engine has."""
    layers: list[Layer] = [
        Conv2D(2, 4, 3, padding=(1, 2, 0, 1), rng=1),
        Conv2D(4, 4, 3, padding=1, padding_mode="reflect", rng=2),
        Conv2D(4, 4, (3, 2), padding=(2, 1, 1, 2), padding_mode="circular", dilation=(1, 2), rng=3),
        Conv2D(4, 4, 3, padding=1, padding_mode="replicate", stride=2, flip_kernel=True, rng=4),
        BatchNorm2D(4),
        Activation("leaky_relu", negative_slope=0.2),
        Activation("elu", alpha=0.7),
        Activation("gelu_tanh"),
        Activation("softplus", beta=2.0),
        Activation("softplus"),
        Activation("sigmoid"),
        Activation("tanh"),
        Activation("identity"),
        Conv2D(4, 6, 1, bias=False, rng=6),
        MaxPool2D(3, 2, 1, ceil_mode=True),
        AvgPool2D(2, 2, 1, ceil_mode=True),
        AvgPool2D(2, 1, 0, enabled=False),
        Dropout(0.3),
        Activation("relu"),
        Flatten(),
        Dense(36, 5, rng=5),
    ]
    return randomise(Network(layers), seed=1)


def inputs(shape: tuple[int, ...], batch: int = 3, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)


RESIDUAL_SHAPE = (3, 8, 8)


def residual_graph() -> Any:
    """A ResNet basic block with a projection shortcut, a squeeze-style Mul, a Concat of
    two branches and a classifier head: input ``(3, 8, 8)`` → 4 logits."""
    from cnn_explorer.engine.graph import Graph, Node
    from cnn_explorer.engine.merge import Add, Concat, Mul

    nodes = [
        Node("stem", Conv2D(3, 4, 3, padding=1, rng=1), ("input",)),
        Node("stem_bn", BatchNorm2D(4), ("stem",)),
        Node("stem_relu", Activation("relu"), ("stem_bn",)),
        Node("block.conv1", Conv2D(4, 6, 3, stride=2, padding=1, rng=2), ("stem_relu",)),
        Node("block.bn1", BatchNorm2D(6), ("block.conv1",)),
        Node("block.relu", Activation("relu"), ("block.bn1",)),
        Node("block.conv2", Conv2D(6, 6, 3, padding=1, bias=False, rng=3), ("block.relu",)),
        Node("block.down", Conv2D(4, 6, 1, stride=2, bias=False, rng=4), ("stem_relu",)),
        Node("block.add", Add(), ("block.conv2", "block.down")),
        Node("block.out", Activation("relu"), ("block.add",)),
        Node("gate", Activation("sigmoid"), ("block.out",)),
        Node("gated", Mul(), ("block.out", "gate")),
        Node("side", MaxPool2D(2, 1), ("gated",)),
        Node("side2", AvgPool2D(2, 1), ("gated",)),
        Node("cat", Concat(), ("side", "side2")),
        Node("flat", Flatten(), ("cat",)),
        Node("fc", Dense(12 * 3 * 3, 4, rng=5), ("flat",)),
    ]
    return randomise(Graph(nodes), seed=2)


OPS_SHAPE = (4, 9, 8)


def graph_ops_graph() -> Any:
    """Every op graphs brought: Pad2D in each mode, grouped and depthwise convs, PReLU,
    asymmetric and exclude-pad pools, Clip (both bounds and one), adaptive and global
    pooling, Reshape, Concat and Softmax: input ``(4, 9, 8)`` → 3 probabilities."""
    from cnn_explorer.engine.extra_layers import (
        AdaptiveAvgPool2D,
        Clip,
        GlobalAvgPool2D,
        Pad2D,
        PReLU,
        Reshape,
        Softmax,
    )
    from cnn_explorer.engine.graph import Graph, Node
    from cnn_explorer.engine.merge import Concat

    nodes = [
        Node("pad_r", Pad2D((1, 2, 0, 1), "reflect"), ("input",)),
        Node("pad_c", Pad2D((2, 1, 1, 0), "circular"), ("pad_r",)),
        Node("pad_e", Pad2D(1, "replicate"), ("pad_c",)),
        Node("pad_z", Pad2D((0, 1, 2, 0), "zeros", 0.5), ("pad_e",)),
        Node("gconv", Conv2D(4, 8, 3, padding=1, groups=2, rng=1), ("pad_z",)),
        Node("dw", Conv2D(8, 8, 3, stride=2, padding=(0, 1, 1, 0), groups=8, rng=2), ("gconv",)),
        Node("prelu", PReLU(8), ("dw",)),
        Node("mp", MaxPool2D(3, 1, padding=(1, 0, 1, 0)), ("prelu",)),
        Node("ap", AvgPool2D(3, 1, padding=1, count_include_pad=False), ("mp",)),
        Node("relu6", Clip(0.0, 6.0), ("ap",)),
        Node("floor", Clip(min=-0.1), ("relu6",)),
        Node("adapt", AdaptiveAvgPool2D((3, 2)), ("floor",)),
        Node("flat", Reshape((-1,)), ("adapt",)),
        Node("gap", GlobalAvgPool2D(), ("floor",)),
        Node("gap_flat", Flatten(), ("gap",)),
        Node("cat", Concat(), ("flat", "gap_flat")),
        Node("fc", Dense(8 * 3 * 2 + 8, 3, rng=3), ("cat",)),
        Node("probs", Softmax(), ("fc",)),
    ]
    graph = randomise(Graph(nodes), seed=3)
    graph.node("prelu").layer.params["weight"][...] = np.linspace(-0.5, 0.5, 8)
    return graph
