"""Which network a run trains: the default small CNN, the explorer's conv stack plus a
classifier head, or a loaded network; its preview (shapes, parameters, layers that can be
frozen) and freezing.

Why apart from the session: building is pure (inputs in, a new :class:`Network` out), so the
tab's preview, the session's run and the tests all call the same function. Qt-free; the
explorer's layers arrive as engine layers, never as explorer objects.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from cnn_explorer.engine.network import Network, default_classifier, with_classifier_head

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


def network_input(network: Network, data_shape: Sequence[int]) -> tuple[int, int, int]:
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
    loaded: Network | None = None,
) -> Network:
    """A fresh network for images of ``input_shape`` ``(C, H, W)`` and ``num_classes``.

    ``arch`` is :data:`ARCH_DEFAULT` (seeded), :data:`ARCH_EXPLORER` (copies of the conv part
    of ``explorer_layers`` + a seeded Dense head; falls back to the default when there are
    none) or :data:`ARCH_LOADED` (a copy of ``loaded``, which must output ``num_classes``
    values). Raises ValueError (ShapeError included) with a sentence when it cannot fit.
    """
    shape = tuple(int(s) for s in input_shape)
    if arch == ARCH_EXPLORER and explorer_layers:
        stack = conv_stack(explorer_layers)
        c = first_conv_channels(stack) or shape[0]
        return with_classifier_head(stack, (c, *shape[1:]), num_classes, seed)
    if arch == ARCH_LOADED and loaded is not None:
        net = loaded.copy()
        out = net.output_shape(network_input(net, shape))
        if out != (num_classes,):
            raise ValueError(
                f"the loaded network outputs {out} values but the dataset has {num_classes} classes"
            )
        return net
    return default_classifier(shape, num_classes, seed)


@dataclass(frozen=True)
class Preview:
    """What the architecture box shows: ``shapes`` of the input and every layer's output
    (``(C, H, W)`` then … ``(K,)``), the parameter count, and ``(index, text)`` of every
    layer with parameters (the ones that can be frozen)."""

    shapes: list[tuple[int, ...]]
    parameters: int
    trainable: list[tuple[int, str]]

    def text(self) -> str:
        """``1×28×28 → 8×28×28 → … → 6`` and the parameter count, on two lines."""
        chain = " → ".join("×".join(map(str, s)) for s in self.shapes)
        return f"{chain}\n{self.parameters:,} parameters"


def preview(network: Network, data_shape: Sequence[int]) -> Preview:
    """The :class:`Preview` of ``network`` on images of ``data_shape`` ``(C, H, W)``."""
    shapes = network.output_shapes(network_input(network, data_shape))
    layers = [
        (i, f"{i + 1}. {layer.describe()}")
        for i, layer in enumerate(network.layers)
        if layer.params
    ]
    return Preview(shapes, network.param_count(), layers)


def apply_freeze(network: Network, frozen: Collection[int]) -> None:
    """Mark layers ``frozen`` (indices) as not trainable and every other as trainable."""
    for i, layer in enumerate(network.layers):
        layer.trainable = i not in frozen


__all__ = [
    "ARCHITECTURES",
    "ARCH_DEFAULT",
    "ARCH_EXPLORER",
    "ARCH_LOADED",
    "Preview",
    "apply_freeze",
    "build_network",
    "conv_stack",
    "first_conv_channels",
    "network_input",
    "preview",
]
