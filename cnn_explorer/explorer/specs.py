"""Layer specs: the explorer's layers as plain, editable, JSON-safe data, and their one
conversion to engine layers.

The explorer stores each layer as a :class:`LayerSpec` (a config dict plus weight arrays)
so undo snapshots and project files stay simple; :func:`build_layer` is the one place where a
spec becomes an engine layer, and every shape, window, explanation and message comes from
that engine layer (no copies of engine logic here). Qt-free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_explorer.engine import layers
from cnn_explorer.engine.activations import ACTIVATION_LABELS
from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.engine.network import NO_INPUT, LayerStatus, Network
from cnn_explorer.explorer import presets
from cnn_explorer.limits import MAX_INPUT_SIDE

LAYER_KINDS = ("conv", "act", "maxpool", "avgpool", "batchnorm", "dropout")
"""Every kind of layer the explorer's stack can hold. ``batchnorm`` and ``dropout`` come
from trained networks and compute as in inference (the explorer never trains): batch
normalisation with its running statistics, dropout as the identity."""

BATCHNORM_LISTS = ("gamma", "beta", "mean", "var")
"""A batchnorm spec's per-channel values: scale γ, shift β, running mean and variance."""

ACTIVATIONS: dict[str, str] = {
    kind: ACTIVATION_LABELS[kind] for kind in ("relu", "leaky_relu", "sigmoid", "tanh", "identity")
}
"""Activation kind → display name (the kinds the layer stack offers)."""

CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "conv": (
        "filters",
        "kernel",
        "stride",
        "padding",
        "padding_mode",
        "dilation",
        "bias",
        "flip",
    ),
    "act": ("fn", "slope"),
    "maxpool": ("size", "stride", "padding"),
    "avgpool": ("size", "stride", "padding"),
    "batchnorm": ("eps", *BATCHNORM_LISTS),
    "dropout": ("p",),
}
"""The config fields of each layer kind (the property test edits every one of them)."""


@dataclass
class LayerSpec:
    """One layer of the stack as editable data (JSON-safe ``config`` + weight arrays).

    kind: one of :data:`LAYER_KINDS`.
    conv config: filters, kernel [kh, kw], stride [sh, sw], padding (int | "same" |
    "valid"), padding_mode, dilation [dh, dw], bias (bool), flip (true convolution).
    act config: fn (one of :data:`ACTIVATIONS`), slope.
    pool config: size [kh, kw], stride [sh, sw], padding (int).
    batchnorm config: eps, and gamma, beta, mean, var (one number per channel each): in
    inference ``y = (x − mean) / √(var + eps) · gamma + beta`` per channel.
    dropout config: p (the training-time drop probability; the identity in inference).
    ``weight`` is ``(O, C, kh, kw)`` and ``bias`` ``(O,)`` for conv, else ``None``.
    """

    kind: str
    config: dict[str, Any]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    enabled: bool = True

    def copy(self) -> LayerSpec:
        """A deep copy (arrays included): specs in undo commands are never shared. Config
        values are numbers, strings and lists of numbers (a copy of each list is deep)."""
        return LayerSpec(
            self.kind,
            {k: list(v) if isinstance(v, list) else v for k, v in self.config.items()},
            None if self.weight is None else self.weight.copy(),
            None if self.bias is None else self.bias.copy(),
            self.enabled,
        )

    @property
    def title(self) -> str:
        """Short human name, e.g. "Conv2D 1→8, 3×3" or "ReLU"."""
        c = self.config
        if self.kind == "conv":
            kh, kw = c["kernel"]
            cin = 0 if self.weight is None else self.weight.shape[1]
            return f"Conv2D {cin}→{c['filters']}, {kh}×{kw}"
        if self.kind == "act":
            return ACTIVATIONS.get(c["fn"], c["fn"])
        if self.kind == "batchnorm":
            return f"BatchNorm ({len(c['gamma'])} channels, inference)"
        if self.kind == "dropout":
            return f"Dropout {c['p']:g} (identity in inference)"
        kh, kw = c["size"]
        return f"{'Max' if self.kind == 'maxpool' else 'Avg'} pool {kh}×{kw}"

    def same_values(self, other: LayerSpec) -> bool:
        """True if both specs describe the same layer with equal weights."""
        return (
            self.kind == other.kind
            and self.config == other.config
            and self.enabled == other.enabled
            and arrays_equal(self.weight, other.weight)
            and arrays_equal(self.bias, other.bias)
        )

    def same_computation(self, other: LayerSpec) -> bool:
        """True if only weight or bias *values* differ: the one-filter path applies.

        Anything else (kind, any config field, enabled, array shapes) changes what the layer
        computes or its output shape, so the layer must be recomputed in full."""
        return (
            self.kind == other.kind
            and self.config == other.config
            and self.enabled == other.enabled
            and _shape(self.weight) == _shape(other.weight)
            and _shape(self.bias) == _shape(other.bias)
        )


def arrays_equal(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Same shape and values (NaN equals NaN); ``None`` equals only ``None``."""
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


def _shape(a: np.ndarray | None) -> tuple[int, ...] | None:
    return None if a is None else a.shape


# --------------------------------------------------------------------------- constructors
def conv_spec(
    in_channels: int,
    filters: int = 1,
    kernel: tuple[int, int] = (3, 3),
    *,
    stride: tuple[int, int] = (1, 1),
    padding: int | str = 0,
    padding_mode: str = "zeros",
    dilation: tuple[int, int] = (1, 1),
    bias: bool = True,
    flip: bool = False,
    weight: np.ndarray | None = None,
    seed: int = 0,
) -> LayerSpec:
    """A conv layer spec; weights default to seeded He-style random values."""
    kh, kw = kernel
    if weight is None:
        weight = presets.random_kernel((filters, in_channels, kh, kw), seed)
    cfg = {
        "filters": int(filters),
        "kernel": [int(kh), int(kw)],
        "stride": [int(stride[0]), int(stride[1])],
        "padding": padding,
        "padding_mode": padding_mode,
        "dilation": [int(dilation[0]), int(dilation[1])],
        "bias": bool(bias),
        "flip": bool(flip),
    }
    return LayerSpec("conv", cfg, weight.astype(np.float32), np.zeros(filters, np.float32))


def act_spec(fn: str = "relu", slope: float = 0.01) -> LayerSpec:
    """An activation layer spec (fn one of :data:`ACTIVATIONS`)."""
    return LayerSpec("act", {"fn": fn, "slope": float(slope)})


def pool_spec(kind: str = "maxpool", size: int = 2, stride: int = 2, padding: int = 0) -> LayerSpec:
    """A max or average pool spec with square window ``size`` and ``stride``."""
    return LayerSpec(
        kind, {"size": [size, size], "stride": [stride, stride], "padding": int(padding)}
    )


def batchnorm_spec(
    gamma: Sequence[float],
    beta: Sequence[float],
    mean: Sequence[float],
    var: Sequence[float],
    eps: float = 1e-5,
) -> LayerSpec:
    """A batch normalisation spec in inference mode (one value per channel in each list)."""
    lists = {
        k: [float(v) for v in vals]
        for k, vals in zip(BATCHNORM_LISTS, (gamma, beta, mean, var), strict=True)
    }
    return LayerSpec("batchnorm", {"eps": float(eps), **lists})


def dropout_spec(p: float = 0.5) -> LayerSpec:
    """A dropout spec: the identity in the explorer (inference), ``p`` kept for display."""
    return LayerSpec("dropout", {"p": float(p)})


def worked_example_layers() -> list[LayerSpec]:
    """The primer's worked example: conv 2×2 of ones (stride 1, no bias) → ReLU → 2×2 max
    pool with stride 1; on :data:`presets.WORKED_EXAMPLE` it gives ``[[4, 2], [2, 4]]``."""
    conv = conv_spec(1, 1, (2, 2), weight=np.ones((1, 1, 2, 2), np.float32), bias=False)
    return [conv, act_spec("relu"), pool_spec("maxpool", 2, 1)]


def replace_config(spec: LayerSpec, **changes: Any) -> LayerSpec:
    """A copy of ``spec`` with config keys updated; conv weights follow kernel/filters
    (a bigger kernel keeps the old values centred, new filters get seeded random values)."""
    new = spec.copy()
    new.config.update(changes)
    if spec.kind == "conv" and new.weight is not None:
        kh, kw = new.config["kernel"]
        w = presets.resize_kernel(new.weight, kh, kw)
        o = int(new.config["filters"])
        if o != w.shape[0]:
            if o < w.shape[0]:
                w = w[:o]
            else:
                extra = presets.random_kernel((o - w.shape[0], w.shape[1], kh, kw), seed=o)
                w = np.concatenate([w, extra], axis=0)
        new.weight = np.ascontiguousarray(w, dtype=np.float32)
        b = new.bias if new.bias is not None else np.zeros(0, np.float32)
        new.bias = np.concatenate([b[:o], np.zeros(max(0, o - b.shape[0]), np.float32)])
    return new


def replace_kind(spec: LayerSpec, kind: str) -> LayerSpec:
    """A copy of a pool spec as the other pool kind (max ↔ average), same window."""
    if spec.kind not in ("maxpool", "avgpool") or kind not in ("maxpool", "avgpool"):
        raise ValueError(f"cannot turn a {spec.kind} layer into {kind}")
    new = spec.copy()
    new.kind = kind
    return new


def check_input(x: np.ndarray) -> np.ndarray:
    """``x`` as a contiguous float32 ``(C, H, W)``; raises ValueError unless C is 1 or 3 and
    both sides are in ``1..MAX_INPUT_SIDE`` (a 2-D array is one channel)."""
    a = np.asarray(x)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"input must be (1|3, H, W), got shape {a.shape}")
    if not (1 <= a.shape[1] <= MAX_INPUT_SIDE and 1 <= a.shape[2] <= MAX_INPUT_SIDE):
        raise ValueError(f"input sides must be 1..{MAX_INPUT_SIDE}, got {a.shape[1]}×{a.shape[2]}")
    return np.ascontiguousarray(a, dtype=np.float32)


# --------------------------------------------------------------------------- engine layers
def build_layer(spec: LayerSpec) -> layers.Layer:
    """An engine layer for ``spec`` (weights copied, so the spec stays immutable).

    Raises ValueError (or ShapeError) when the engine refuses the parameters."""
    c = spec.config
    layer: layers.Layer
    if spec.kind == "conv":
        if spec.weight is None:
            raise ValueError("a conv layer needs a weight")
        o, cin, kh, kw = spec.weight.shape
        pad = c["padding"]
        layer = layers.Conv2D(
            cin,
            o,
            (kh, kw),
            stride=tuple(c["stride"]),
            padding=pad if isinstance(pad, str) else int(pad),
            dilation=tuple(c["dilation"]),
            padding_mode=c.get("padding_mode", "zeros"),
            bias=bool(c.get("bias", True)),
            flip_kernel=bool(c.get("flip", False)),
            init="zeros",  # the spec's weights are copied in next: no random draw
        )
        layer.params["weight"][...] = spec.weight
        if "bias" in layer.params and spec.bias is not None:
            layer.params["bias"][...] = spec.bias
    elif spec.kind == "act":
        if c["fn"] == "leaky_relu":
            layer = layers.Activation(c["fn"], negative_slope=float(c.get("slope", 0.01)))
        else:
            layer = layers.Activation(c["fn"])
    elif spec.kind in ("maxpool", "avgpool"):
        pool = layers.MaxPool2D if spec.kind == "maxpool" else layers.AvgPool2D
        layer = pool(tuple(c["size"]), stride=tuple(c["stride"]), padding=int(c["padding"]))
    elif spec.kind == "batchnorm":
        layer = _batchnorm(c)
    elif spec.kind == "dropout":
        layer = layers.Dropout(float(c["p"]))
    else:
        raise ValueError(f"unknown layer kind {spec.kind!r}")
    layer.enabled = spec.enabled
    return layer


def _batchnorm(c: dict[str, Any]) -> layers.BatchNorm2D:
    """The engine BatchNorm2D of a batchnorm config (float32 like a trained one)."""
    values = [np.asarray(c[k], np.float32) for k in BATCHNORM_LISTS]
    n = values[0].size
    if n == 0 or any(v.ndim != 1 or v.size != n for v in values):
        raise ValueError(
            "batch normalisation needs one gamma, beta, mean and variance per channel "
            f"(got {', '.join(str(np.size(v)) for v in values)})"
        )
    layer = layers.BatchNorm2D(n, eps=float(c["eps"]))
    layer.params["gamma"][...], layer.params["beta"][...] = values[0], values[1]
    layer.buffers["running_mean"][...], layer.buffers["running_var"][...] = values[2], values[3]
    return layer


def build_network(specs: Sequence[LayerSpec]) -> Network:
    """An engine ``Network`` of the given specs (``forward`` / ``forward_from``)."""
    return Network([build_layer(s) for s in specs])


def validate(specs: Sequence[LayerSpec], in_shape: tuple[int, ...]) -> list[LayerStatus]:
    """One engine :class:`LayerStatus` per layer: its output shape or the engine's message,
    ``"no input"`` after the first invalid layer.

    Never raises: a layer whose parameters the engine refuses at construction (a stride
    of 0) is reported like any other invalid layer, and so is an engine bug."""
    out: list[LayerStatus] = []
    shape: tuple[int, ...] | None = tuple(int(v) for v in in_shape)
    for i, spec in enumerate(specs):
        if shape is None:
            out.append(LayerStatus(i, spec.title, None, None, NO_INPUT))
            continue
        try:
            new: tuple[int, ...] | None = build_layer(spec).output_shape(shape, i)
            error = None
        except (ShapeError, ValueError) as exc:
            msg = str(exc) or type(exc).__name__
            new, error = None, msg if msg.startswith("layer") else f"layer {i + 1}: {msg}"
        except Exception as exc:  # an engine bug must not take the window down
            new, error = None, f"layer {i + 1}: internal error: {exc!r}"
        out.append(LayerStatus(i, spec.title, shape, new, error))
        shape = new
    return out


def document_bytes(input_shape: Sequence[int], specs: Sequence[LayerSpec]) -> int:
    """Bytes of the input and of every feature map the explorer computes for them
    (float32; maps after the first invalid layer are not computed)."""
    total = math.prod(input_shape)
    for status in validate(specs, tuple(input_shape)):
        if status.output_shape is None:
            break
        total += math.prod(status.output_shape)
    return 4 * total


def valid_prefix(statuses: Sequence[LayerStatus]) -> int:
    """How many layers from the first one compute (the index of the first invalid one)."""
    return next((i for i, s in enumerate(statuses) if s.error), len(statuses))


def conformed_layers(layers_: Sequence[LayerSpec], in_shape: tuple[int, ...]) -> list[LayerSpec]:
    """Copy of ``layers_`` whose conv weights match the channels reaching them.

    When the input goes from 1 to 3 channels (or a conv before changes its filter count), a
    later conv's weight gains channels (copies of its first channel) or loses its last ones,
    so the stack stays computable instead of failing on a mismatch. Unchanged specs are
    returned as the same objects."""
    out: list[LayerSpec] = []
    shape: tuple[int, ...] | None = tuple(in_shape)
    for spec in layers_:
        s = spec
        if shape is not None and spec.kind == "conv" and spec.weight is not None:
            cin, w = shape[0], spec.weight
            if w.shape[1] != cin:
                s = spec.copy()
                if w.shape[1] > cin:
                    s.weight = w[:, :cin].copy()
                else:
                    extra = np.repeat(w[:, :1], cin - w.shape[1], axis=1)
                    s.weight = np.concatenate([w, extra], axis=1)
        out.append(s)
        if shape is not None:
            st = validate([s], shape)[0]
            shape = st.output_shape
    return out


# --------------------------------------------------------------------------- from the engine
def specs_from_engine(layers_: Sequence[Any]) -> tuple[list[LayerSpec], str]:
    """Editable specs for the feature-extractor part of an engine network.

    Conv, activation, pooling, BatchNorm (its running statistics: inference mode) and
    Dropout (the identity in inference) layers convert exactly; the stack stops at the
    first layer the explorer cannot show as maps (Flatten, Dense, …). Returns the specs
    and a note naming what was left out ("" when everything converted).
    """
    out: list[LayerSpec] = []
    for i, layer in enumerate(layers_):
        try:
            spec = _spec_from_engine_layer(layer)
        except (AttributeError, TypeError, ValueError):
            spec = None
        if spec is None:
            rest = len(layers_) - i
            plural = "s" if rest > 1 else ""
            kind = getattr(layer, "kind", "")
            return out, f"left out {rest} layer{plural} from layer {i + 1} ({kind}) on"
        spec.enabled = bool(getattr(layer, "enabled", True))
        out.append(spec)
    return out, ""


def _spec_from_engine_layer(layer: Any) -> LayerSpec | None:
    if isinstance(layer, layers.Conv2D):
        pad: int | str
        if isinstance(layer.padding, str):
            pad = layer.padding
        else:
            p4 = {int(v) for v in layer.padding4}
            if len(p4) != 1:
                return None  # asymmetric padding: the explorer's form has one number
            pad = p4.pop()
        w = np.asarray(layer.params["weight"], np.float32).copy()
        spec = conv_spec(
            w.shape[1],
            w.shape[0],
            (w.shape[2], w.shape[3]),
            stride=(int(layer.stride[0]), int(layer.stride[1])),
            padding=pad,
            padding_mode=layer.padding_mode,
            dilation=(int(layer.dilation[0]), int(layer.dilation[1])),
            bias=bool(layer.use_bias),
            flip=bool(layer.flip_kernel),
            weight=w,
        )
        if layer.params.get("bias") is not None:
            spec.bias = np.asarray(layer.params["bias"], np.float32).copy()
        return spec
    if isinstance(layer, layers.Activation):
        if layer.activation not in ACTIVATIONS:
            return None
        return act_spec(layer.activation, float(layer.settings.get("negative_slope", 0.01)))
    if isinstance(layer, layers.MaxPool2D | layers.AvgPool2D):
        ph, pw = layer.padding
        if ph != pw or getattr(layer, "ceil_mode", False):
            return None
        spec = pool_spec("maxpool" if isinstance(layer, layers.MaxPool2D) else "avgpool")
        spec.config["size"] = [int(v) for v in layer.kernel_size]
        spec.config["stride"] = [int(v) for v in layer.stride]
        spec.config["padding"] = int(ph)
        return spec
    if isinstance(layer, layers.BatchNorm2D):
        p, b = layer.params, layer.buffers
        return batchnorm_spec(
            p["gamma"].tolist(),
            p["beta"].tolist(),
            b["running_mean"].tolist(),
            b["running_var"].tolist(),
            float(layer.eps),
        )
    if isinstance(layer, layers.Dropout):
        return dropout_spec(layer.p)
    return None
