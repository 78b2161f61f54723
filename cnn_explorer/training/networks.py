"""Which network a run trains: the default small CNN, the explorer's conv stack plus a
classifier head, or a loaded network (a chain :class:`Network` or an imported
:class:`~cnn_explorer.engine.graph.Graph`, whose classifier layer can be replaced for a
folder with other classes); its preview (shapes, parameters, layers that can be frozen) and
freezing.

Why apart from the session: building is pure (inputs in, a new :class:`Network` out), so the
tab's preview, the session's run and the tests all call the same function. Qt-free; the
explorer's layers arrive as engine layers, never as explorer objects.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from cnn_explorer.engine.graph import Graph, Node
from cnn_explorer.engine.layers import Dense, Layer
from cnn_explorer.engine.network import Network, default_classifier, with_classifier_head
from cnn_explorer.engine.serialize import Model

HEAD_PASS_THROUGH = ("activation", "dropout", "softmax", "identity", "flatten", "reshape")
"""Layer kinds that may follow the classifier's Dense before the output (no parameters,
one value per class in and out)."""

ARCH_DEFAULT, ARCH_EXPLORER, ARCH_LOADED = "default", "explorer", "loaded"
ARCHITECTURES = (ARCH_DEFAULT, ARCH_EXPLORER, ARCH_LOADED)
PREVIEW_INPUT = (1, 28, 28)
"""``(C, H, W)`` the preview assumes before a dataset is loaded (the built-in set's)."""
PREVIEW_CLASSES = 6
"""Classes the preview assumes before a dataset is loaded (the built-in set's)."""


def conv_stack(layers: Sequence[Any]) -> list[Any]:
    """Deep copies of ``layers`` up to (not including) the first Flatten/Dense: the part of
    the explorer's stack a classifier head can be put on. The explorer's own layer objects
    are never handed to a training thread."""
    stack = []
    for layer in layers:
        if layer.kind in ("flatten", "dense"):
            break
        stack.append(layer)
    return list(Network(stack).copy().layers)


def first_conv_channels(layers: Sequence[Any]) -> int | None:
    """Input channels of the first conv layer (what the network expects), or None."""
    for layer in layers:
        if layer.kind == "conv":
            return int(layer.params["weight"].shape[1])
    return None


def network_input(network: Model, data_shape: Sequence[int]) -> tuple[int, int, int]:
    """``(C, H, W)`` the network is fed for images of ``data_shape``: the images' size with
    the channels its first conv wants (gray images are repeated to RGB and back)."""
    c = first_conv_channels(network.layers) or int(data_shape[0])
    return c, int(data_shape[1]), int(data_shape[2])


def build_network(
    arch: str,
    input_shape: Sequence[int],
    num_classes: int,
    seed: int,
    explorer_layers: Sequence[Any] | None = None,
    loaded: Model | None = None,
    new_head: bool = False,
) -> Model:
    """A fresh network for images of ``input_shape`` ``(C, H, W)`` and ``num_classes``.

    ``arch`` is :data:`ARCH_DEFAULT` (seeded), :data:`ARCH_EXPLORER` (copies of the conv part
    of ``explorer_layers`` + a seeded Dense head; falls back to the default when there are
    none) or :data:`ARCH_LOADED` (a copy of ``loaded``, a Network or a Graph, which must
    output ``num_classes`` values; with ``new_head`` a model with another class count gets
    its classifier Dense replaced by a seeded one for ``num_classes``, see
    :func:`replace_classifier`). Raises ValueError (ShapeError included) with a sentence
    when it cannot fit.
    """
    shape = tuple(int(s) for s in input_shape)
    if arch == ARCH_EXPLORER and explorer_layers:
        stack = conv_stack(explorer_layers)
        c = first_conv_channels(stack) or shape[0]
        return with_classifier_head(stack, (c, *shape[1:]), num_classes, seed)
    if arch == ARCH_LOADED and loaded is not None:
        net = loaded.copy()
        out = net.output_shape(network_input(net, shape))
        if out != (num_classes,) and new_head and len(out) == 1:
            net = replace_classifier(net, num_classes, seed)
            out = net.output_shape(network_input(net, shape))
        if out != (num_classes,):
            hint = (
                f" (its classifier layer {describe_classifier(net)} can be replaced by a new "
                "one for this dataset's classes)"
                if len(out) == 1 and describe_classifier(net) is not None
                else ""
            )
            raise ValueError(
                f"the loaded network outputs {out} values but the dataset has "
                f"{num_classes} classes{hint}"
            )
        return net
    return default_classifier(shape, num_classes, seed)


# --------------------------------------------------------------------------------------
# The classifier layer of a loaded model
# --------------------------------------------------------------------------------------


def _node_names(network: Model) -> list[str]:
    """Names of ``network.layers`` in order: a graph's node names, a chain's positions."""
    if isinstance(network, Graph):
        return [n.name for n in network.nodes]
    return [str(i) for i in range(len(network.layers))]


def classifier_index(network: Model) -> int | None:
    """Index in ``network.layers`` of the Dense layer that makes the output (walking back
    from the output through parameter-free layers such as an activation, Dropout or
    Softmax), or None when the output is not made by one."""
    if isinstance(network, Graph):
        name, names = network.output, _node_names(network)
        while name != Graph.INPUT:
            node = network.node(name)
            if isinstance(node.layer, Dense):
                return names.index(name)
            if node.layer.kind not in HEAD_PASS_THROUGH or len(node.inputs) != 1:
                return None
            name = node.inputs[0]
        return None
    for i in range(len(network.layers) - 1, -1, -1):
        layer = network.layers[i]
        if isinstance(layer, Dense):
            return i
        if layer.kind not in HEAD_PASS_THROUGH:
            return None
    return None


def replace_classifier(network: Model, num_classes: int, seed: int) -> Model:
    """A network whose classifier Dense (:func:`classifier_index`) is replaced by a new
    Dense with the same inputs and ``num_classes`` outputs (Xavier init from ``seed``,
    trainable); every other layer is shared with ``network``. ValueError with a sentence
    when the output is not made by a Dense layer."""
    index = classifier_index(network)
    if index is None:
        raise ValueError(
            "the network's output is not made by a Dense (fully connected) layer, so there "
            "is no classifier layer to replace"
        )
    old = network.layers[index]
    assert isinstance(old, Dense)
    head = Dense(old.in_features, int(num_classes), old.use_bias, rng=seed, init="xavier")
    if isinstance(network, Graph):
        target = network.nodes[index].name
        nodes = [Node(n.name, head if n.name == target else n.layer, n.inputs) for n in network]
        return Graph(nodes, network.output)
    layers: list[Layer] = list(network.layers)
    layers[index] = head
    return Network(layers)


def describe_classifier(network: Model) -> str | None:
    """``"fc (Dense 512→1000)"``: the layer :func:`replace_classifier` would replace, or
    None when there is none."""
    index = classifier_index(network)
    if index is None:
        return None
    return f"{_node_names(network)[index]} ({network.layers[index].describe()})"


# --------------------------------------------------------------------------------------
# Preview and freezing
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """What the architecture box shows: ``shapes`` of the input and every layer's output
    (``(C, H, W)`` then … ``(K,)``), the parameter count, ``(index, text)`` of every layer
    with parameters (the ones that can be frozen; for a graph the text names the node) and
    the indices ticked by default (``default_frozen``: an imported model fine-tunes only
    its last layer)."""

    shapes: list[tuple[int, ...]]
    parameters: int
    trainable: list[tuple[int, str]]
    default_frozen: frozenset[int] = frozenset()

    def text(self) -> str:
        """``1×28×28 → 8×28×28 → … → 6`` and the parameter count, on two lines (a long
        graph shows its input, node count and output)."""
        if len(self.shapes) > 12:
            first, last = ("×".join(map(str, s)) for s in (self.shapes[0], self.shapes[-1]))
            chain = f"{first} → {len(self.shapes) - 2} nodes → {last}"
        else:
            chain = " → ".join("×".join(map(str, s)) for s in self.shapes)
        return f"{chain}\n{self.parameters:,} parameters"


def preview(network: Model, data_shape: Sequence[int], fine_tune: bool = False) -> Preview:
    """The :class:`Preview` of ``network`` on images of ``data_shape`` ``(C, H, W)``;
    ``fine_tune`` ticks every layer with parameters but the last by default."""
    shape = network_input(network, data_shape)
    if isinstance(network, Graph):
        found = network.output_shapes(shape)
        shapes = [found[Graph.INPUT], *(found[n.name] for n in network.nodes)]
        if network.output != network.nodes[-1].name:
            shapes.append(found[network.output])
    else:
        shapes = network.output_shapes(shape)
    names = _node_names(network)
    graph = isinstance(network, Graph)
    layers = [
        (i, f"{i + 1}. {names[i] + ': ' if graph else ''}{layer.describe()}")
        for i, layer in enumerate(network.layers)
        if layer.params
    ]
    default = frozenset(i for i, _ in layers[:-1]) if fine_tune else frozenset()
    return Preview(shapes, network.param_count(), layers, default)


def as_chain(network: Model | None) -> Network | None:
    """``network`` as a chain of layers (sharing them) for what works on chains only (the
    explorer's stack, saliency and Grad-CAM), or None for a graph with branches."""
    if network is None or isinstance(network, Network):
        return network
    return network.to_network()


def apply_freeze(network: Model, frozen: Collection[int]) -> None:
    """Mark layers ``frozen`` (indices into ``network.layers``) as not trainable and every
    other as trainable. (A frozen BatchNorm also keeps its running statistics: it
    normalises with them even while the rest trains.)"""
    for i, layer in enumerate(network.layers):
        layer.trainable = i not in frozen


__all__ = [
    "ARCHITECTURES",
    "ARCH_DEFAULT",
    "ARCH_EXPLORER",
    "ARCH_LOADED",
    "Preview",
    "apply_freeze",
    "as_chain",
    "build_network",
    "classifier_index",
    "conv_stack",
    "describe_classifier",
    "first_conv_channels",
    "network_input",
    "preview",
    "replace_classifier",
]
