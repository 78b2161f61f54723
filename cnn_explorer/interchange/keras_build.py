"""The state of one Keras import while its layers are converted, and the helpers every
converter shares (config values, weight checks, padding, activations).

Layout: Keras images are ``(H, W, C)`` per sample, the engine's ``(C, H, W)``. A map keeps
its values, only the axis order differs, so converters swap axes in their configs and
weights. A vector made by flattening a map is where the orders really differ: Keras
flattens ``(H, W, C)``, the engine ``(C, H, W)``. The engine's vector is then a
permutation of Keras' (:attr:`KRef.perm`), carried through elementwise layers until the
first Dense, whose rows are permuted to undo it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_explorer.engine import Activation, Clip, Mul, Softmax
from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.engine.graph import Graph, Node
from cnn_explorer.engine.layers import Layer
from cnn_explorer.engine.merge import MergeLayer
from cnn_explorer.interchange.keras_config import KerasLayer, TensorKey
from cnn_explorer.interchange.model import (
    OUTPUT_KEY,
    ImportReport,
    ModelFileError,
    ReportEntry,
    unique_name,
)

Shape = tuple[int, ...]
Pads4 = tuple[int, int, int, int]


@dataclass(eq=False)
class KRef:
    """A Keras tensor as the engine computes it: the engine tensor's name, its per-image
    engine shape ``(C, H, W)`` or ``(F,)``, and for a vector whose values are in another
    order than Keras' the permutation: engine element ``i`` is Keras element ``perm[i]``."""

    name: str
    shape: Shape
    perm: np.ndarray | None = None
    flat_of: Shape | None = None
    """The engine map ``(C, H, W)`` this vector is the engine flattening of (so a Reshape
    back to Keras' ``(H, W, C)`` is the engine's Reshape to ``(C, H, W)``)."""
    no_channel: bool = False
    """Keras sees ``(H, W)`` (a model whose input has no channel axis, as in MNIST
    tutorials) where the engine holds ``(1, H, W)``."""


def hwc_perm(c: int, h: int, w: int) -> np.ndarray | None:
    """Engine (C, H, W) flattening as indices into Keras' (H, W, C) flattening; None when
    the two orders agree (one channel, or one pixel)."""
    if c == 1 or h * w == 1:
        return None
    return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).ravel()


def layer_error(layer: KerasLayer, text: str) -> ModelFileError:
    return ModelFileError(f"layer {layer.name!r} ({layer.cls}) {text}")


class KBuilder:
    """Collects engine nodes; converters call :meth:`emit` and :meth:`entry`."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        self.tensors: dict[TensorKey, KRef] = {}
        self.nodes: dict[str, Node] = {}
        self._names: set[str] = {Graph.INPUT, OUTPUT_KEY}

    def _unique(self, base: str) -> str:
        return unique_name(base.strip("/") or "layer", self._names)

    def emit(
        self, layer: KerasLayer, engine: Layer, inputs: Sequence[KRef], suffix: str = ""
    ) -> KRef:
        """Add an engine node for ``engine`` reading ``inputs``; its output, unpermuted."""
        name = self._unique(layer.name + suffix)
        engine.name = name
        try:
            if isinstance(engine, MergeLayer):
                shape = engine.output_shape_many([r.shape for r in inputs])
            else:
                shape = engine.output_shape(inputs[0].shape)
        except ShapeError as exc:
            raise layer_error(layer, f"does not fit: {exc}") from None
        self.nodes[name] = Node(name, engine, tuple(r.name for r in inputs))
        return KRef(name, tuple(int(s) for s in shape))

    def entry(self, layer: KerasLayer, status: str, detail: str = "") -> None:
        self.report.entries.append(ReportEntry(layer.name, layer.cls, status, detail))

    def transformed(self, layer: KerasLayer, detail: str, note: str) -> None:
        self.entry(layer, "transformed", detail)
        self.report.transformations.append(f"{layer.name}: {note}")

    def graph(self, output: KRef) -> Graph:
        if output.name == Graph.INPUT:
            raise ModelFileError("the model's output is its input: there is nothing to run")
        try:
            return Graph(list(self.nodes.values()), output=output.name)
        except ValueError as exc:
            raise ModelFileError(f"the converted graph is not valid: {exc}") from None


# -- construction helpers --------------------------------------------------------------------
def make(layer: KerasLayer, cls: type[Layer], *args: Any, **kwargs: Any) -> Layer:
    try:
        return cls(*args, **kwargs)
    except (ShapeError, ValueError, TypeError) as exc:
        raise layer_error(layer, f"cannot be built: {exc}") from None


def load(layer: KerasLayer, engine: Layer, arrays: dict[str, np.ndarray | None]) -> Layer:
    try:
        engine.load_arrays(
            {k: np.ascontiguousarray(v, np.float32) for k, v in arrays.items() if v is not None}
        )
    except ValueError as exc:
        raise layer_error(layer, f"has weights that do not fit: {exc}") from None
    return engine


def expect_weights(
    layer: KerasLayer, weights: list[np.ndarray], shapes: Sequence[Shape]
) -> list[np.ndarray]:
    """``weights`` after checking there is one of each shape in ``shapes``."""
    got = [tuple(w.shape) for w in weights]
    if got != [tuple(s) for s in shapes]:
        raise layer_error(
            layer,
            f"has weights of shapes {got or 'none'} but its config needs "
            f"{[tuple(s) for s in shapes]}",
        )
    return weights


def pair(layer: KerasLayer, key: str, default: int) -> tuple[int, int]:
    v = layer.config.get(key, default)
    if v is None:
        v = default
    items = [v, v] if isinstance(v, int) else list(v) if isinstance(v, list | tuple) else None
    if not items or len(items) != 2 or not all(isinstance(a, int) and a >= 1 for a in items):
        raise layer_error(layer, f"has {key} {v!r}; this app needs two whole numbers ≥ 1")
    return (int(items[0]), int(items[1]))


def need_map(layer: KerasLayer, x: KRef) -> tuple[int, int, int]:
    if len(x.shape) != 3:
        raise layer_error(
            layer, f"needs an image (H, W, C) input but its input has shape {x.shape}"
        )
    c, h, w = x.shape
    return c, h, w


def check_channels_last(layer: KerasLayer) -> None:
    fmt = layer.config.get("data_format")
    if fmt not in (None, "channels_last"):
        raise layer_error(
            layer,
            f"uses data_format {fmt!r}; this app imports channels_last Keras models (Keras' "
            "default; the layout TensorFlow runs on CPUs)",
        )


def same_pads(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow's ``'same'``: output ``ceil(size / s)``, the padding split with the extra
    cell at the end (bottom/right)."""
    eff = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def padding(
    b: KBuilder,
    layer: KerasLayer,
    hw: tuple[int, int],
    k: tuple[int, int],
    s: tuple[int, int],
    d: tuple[int, int] = (1, 1),
) -> Pads4:
    """Engine ``(top, bottom, left, right)`` for the layer's ``padding``; notes an
    asymmetric ``'same'`` in the report."""
    mode = str(layer.config.get("padding", "valid")).lower()
    if mode == "valid":
        return (0, 0, 0, 0)
    if mode != "same":
        raise layer_error(layer, f"has padding {mode!r}; this app reads 'valid' and 'same'")
    t, bo = same_pads(hw[0], k[0], s[0], d[0])
    le, r = same_pads(hw[1], k[1], s[1], d[1])
    pads = (t, bo, le, r)
    if t != bo or le != r:
        stride = s[0] if s[0] == s[1] else s
        b.report.transformations.append(
            f"{layer.name}: 'same' padding with stride {stride} padded asymmetrically {pads} "
            "(top, bottom, left, right), as TensorFlow does"
        )
    return pads


# -- activations -----------------------------------------------------------------------------
ACTIVATIONS = (
    "linear",
    "relu",
    "relu6",
    "sigmoid",
    "tanh",
    "softmax",
    "elu",
    "leaky_relu",
    "softplus",
    "silu",
    "swish",
)
"""The ``activation`` values (of Activation, Conv and Dense layers) the importer maps."""

ActivationFn = Callable[[KBuilder, KerasLayer, KRef, str], KRef]


def activation_name(layer: KerasLayer, value: Any) -> str:
    """The activation's name; refuses custom functions and ones the engine lacks."""
    if value is None:
        return "linear"
    if isinstance(value, dict):  # Keras 3 may serialise a built-in as a function object
        module = str(value.get("module") or "")
        if value.get("class_name") != "function" or not module.startswith("keras"):
            raise layer_error(layer, "uses a custom activation function; it is refused")
        value = value.get("config")
    name = str(value)
    if name == "gelu":
        raise layer_error(
            layer,
            "uses the exact (erf) GELU; the engine has only the tanh approximation. Supported "
            f"activations: {', '.join(ACTIVATIONS)}",
        )
    if name not in ACTIVATIONS:
        raise layer_error(
            layer, f"uses activation {name!r}. Supported activations: {', '.join(ACTIVATIONS)}"
        )
    return name


def softmax_axis(layer: KerasLayer, x: KRef, axis: Any = -1) -> int:
    """The engine's batched softmax axis for a Keras axis over ``(H, W, C)`` or ``(F,)``."""
    rank = len(x.shape)
    a = int(axis[0] if isinstance(axis, list) and len(axis) == 1 else axis)
    a = a + rank + 1 if a < 0 else a
    if rank == 1 and a == 1:
        return 1
    if rank == 3 and a in (1, 2, 3):
        return {1: 2, 2: 3, 3: 1}[a]
    raise layer_error(layer, f"runs softmax over axis {axis!r}, which this app cannot map")


def apply_activation(
    b: KBuilder, layer: KerasLayer, x: KRef, name: str, suffix: str = "/activation"
) -> KRef:
    """Engine nodes for activation ``name`` on ``x`` (nothing for ``linear``); the result
    keeps ``x``'s order (every activation here is elementwise or, softmax, order-free)."""
    if name == "linear":
        return x
    engine: Layer
    if name in ("relu", "sigmoid", "tanh", "elu", "softplus"):
        engine = Activation(name)
    elif name == "leaky_relu":
        engine = Activation("leaky_relu", negative_slope=0.2)  # keras.activations default
    elif name == "relu6":
        engine = Clip(0.0, 6.0)
        b.report.transformations.append(f"{layer.name}: relu6 as Clip(0, 6)")
    elif name == "softmax":
        engine = Softmax(softmax_axis(layer, x))
    else:  # silu / swish: x · sigmoid(x)
        sig = b.emit(layer, Activation("sigmoid"), [x], suffix + "_sigmoid")
        out = b.emit(layer, Mul(), [x, sig], suffix)
        b.report.transformations.append(f"{layer.name}: {name} as x · sigmoid(x)")
        return KRef(out.name, out.shape, x.perm, x.flat_of)
    out = b.emit(layer, engine, [x], suffix)
    return KRef(out.name, out.shape, x.perm, x.flat_of)
