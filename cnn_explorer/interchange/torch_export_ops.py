"""The ``torch.nn`` form of each engine layer kind, as source text plus the arrays its
``state_dict`` holds. :mod:`torch_export` lays the pieces out as a module; the notes
there say why some layers become several modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnn_explorer.interchange.export_common import ExportError, ExportNode, ExportPlan


@dataclass
class TorchModule:
    """One ``torch.nn`` module: its constructor call and ``{torch param: array}``; the
    engine key each array came from is ``sources[torch param]`` (None for torch-only
    buffers such as ``num_batches_tracked``)."""

    code: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    sources: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Piece:
    """What one engine node becomes: modules applied in order, or (for ops without a
    module, like ``a + b``) a forward expression with ``{0}``, ``{1}`` for the inputs."""

    modules: list[TorchModule] = field(default_factory=list)
    expr: str | None = None
    helpers: tuple[str, ...] = ()
    """Names of :data:`HELPERS` classes the code uses (written once into the file)."""


HELPERS: dict[str, str] = {
    "AvgPoolPadded": '''class AvgPoolPadded(nn.Module):
    """Average pooling with padding nn.AvgPool2d cannot express (different on each side,
    or windows that run past it): pool the padded map, then divide by each window's share
    of counted pixels (the real ones, plus the padding when count_pad is True)."""

    def __init__(self, kernel_size, stride, padding, extra, count_pad) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.padding = padding  # (left, right, top, bottom), as nn.functional.pad takes it
        self.extra = extra  # room for the last windows; never counted
        self.count_pad = count_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def pool(t: torch.Tensor) -> torch.Tensor:
            padded = nn.functional.pad(t, self.extra)
            return nn.functional.avg_pool2d(padded, self.kernel_size, self.stride)

        ones = torch.ones_like(x[:1, :1])
        counted = nn.functional.pad(ones, self.padding, value=float(self.count_pad))
        return pool(nn.functional.pad(x, self.padding)) / pool(counted)''',
}
"""Small modules the generated file defines for itself when torch.nn has none."""


# --------------------------------------------------------------------------------------
# Small formatting helpers
# --------------------------------------------------------------------------------------


def lit(v: Any) -> str:
    """A Python literal: a pair with equal halves prints as one int, floats with repr."""
    if isinstance(v, tuple | list):
        vals = [int(x) if isinstance(x, int | np.integer) else x for x in v]
        if len(vals) == 2 and vals[0] == vals[1]:
            return lit(vals[0])
        return "(" + ", ".join(lit(x) for x in vals) + ("," if len(vals) == 1 else "") + ")"
    if isinstance(v, bool | str | None):
        return repr(v)
    if isinstance(v, float | np.floating):
        return "float('-inf')" if v == -np.inf else repr(float(v))
    return repr(int(v))


def call(name: str, *args: Any, **kwargs: Any) -> str:
    parts = [lit(a) for a in args] + [f"{k}={lit(v)}" for k, v in kwargs.items()]
    return f"nn.{name}(" + ", ".join(parts) + ")"


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def _pad_module(pad4: Sequence[int], mode: str, value: float = 0.0) -> TorchModule:
    """Torch pads are ``(left, right, top, bottom)``; ours ``(top, bottom, left, right)``."""
    t, b, left, r = (int(v) for v in pad4)
    lrtb = (left, r, t, b)
    if mode == "zeros" and value == 0.0:
        return TorchModule(call("ZeroPad2d", lrtb))
    names = {"reflect": "ReflectionPad2d", "replicate": "ReplicationPad2d"}
    if mode in names:
        return TorchModule(call(names[mode], lrtb))
    if mode == "circular":
        return TorchModule(call("CircularPad2d", lrtb))
    return TorchModule(call("ConstantPad2d", lrtb, float(value)))


# --------------------------------------------------------------------------------------
# One translator per layer kind
# --------------------------------------------------------------------------------------

Translate = Callable[[ExportNode, ExportPlan], Piece]


def _weights(
    node: ExportNode, **renames: str
) -> tuple[dict[str, np.ndarray], dict[str, str | None]]:
    """``({torch name: array}, {torch name: engine key})`` of a node's params/buffers."""
    arrays: dict[str, np.ndarray] = {}
    sources: dict[str, str | None] = {}
    for key, arr in {**node.layer.params, **node.layer.buffers}.items():
        tname = renames.get(key, key)
        arrays[tname], sources[tname] = _f32(arr), f"{node.name}.{key}"
    return arrays, sources


def _conv(node: ExportNode, plan: ExportPlan) -> Piece:
    layer: Any = node.layer
    arrays, sources = _weights(node)
    if layer.flip_kernel:  # true convolution = cross-correlation with the flipped kernel
        arrays["weight"] = np.ascontiguousarray(arrays["weight"][:, :, ::-1, ::-1])
    t, b, left, r = layer.padding4
    mods: list[TorchModule] = []
    kw: dict[str, Any] = {} if layer.stride == (1, 1) else {"stride": layer.stride}
    if (t, b, left, r) != (0, 0, 0, 0):
        if t == b and left == r:
            kw["padding"] = (t, left)
            if layer.padding_mode != "zeros":
                kw["padding_mode"] = layer.padding_mode
        else:
            mods.append(_pad_module((t, b, left, r), layer.padding_mode))
    if layer.dilation != (1, 1):
        kw["dilation"] = layer.dilation
    groups = int(getattr(layer, "groups", 1))
    if groups != 1:
        kw["groups"] = groups
    if not layer.use_bias:
        kw["bias"] = False
    code = call("Conv2d", layer.in_channels, layer.out_channels, layer.kernel_size, **kw)
    mods.append(TorchModule(code, arrays, dict(sources)))
    return Piece(mods)


def _pool_pads(node: ExportNode, plan: ExportPlan) -> tuple[tuple[int, int, int, int], bool]:
    """``(padding4, ceil_mode)`` that torch's pool must use to give the engine's output
    size: ceil mode is kept when torch's count agrees, else it becomes explicit padding."""
    layer: Any = node.layer
    _, h, w = plan.shapes[node.inputs[0]]
    _, oh, ow = plan.shapes[node.name]
    t, b, left, r = (int(v) for v in layer.padding4)
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    symmetric = t == b and left == r and 2 * t <= kh and 2 * left <= kw
    if symmetric and layer.ceil_mode:  # torch's own ceil rule is the engine's
        return (t, b, left, r), True
    floor_h = (h + t + b - kh) // sh + 1
    floor_w = (w + left + r - kw) // sw + 1
    if (floor_h, floor_w) == (oh, ow):
        return (t, b, left, r), False
    eh = max(0, (oh - 1) * sh + kh - (h + t + b))
    ew = max(0, (ow - 1) * sw + kw - (w + left + r))
    return (t, b + eh, left, r + ew), False


def _max_pool(node: ExportNode, plan: ExportPlan) -> Piece:
    layer: Any = node.layer
    (t, b, left, r), ceil = _pool_pads(node, plan)
    kw: dict[str, Any] = {} if layer.stride == layer.kernel_size else {"stride": layer.stride}
    mods = []
    if t == b and left == r and 2 * t <= layer.kernel_size[0] and 2 * left <= layer.kernel_size[1]:
        if (t, left) != (0, 0):
            kw["padding"] = (t, left)
    else:  # torch pads max pooling with −∞ only symmetrically: pad explicitly
        mods.append(_pad_module((t, b, left, r), "zeros", float("-inf")))
    if ceil:
        kw["ceil_mode"] = True
    mods.append(TorchModule(call("MaxPool2d", layer.kernel_size, **kw)))
    return Piece(mods)


def _avg_pool(node: ExportNode, plan: ExportPlan) -> Piece:
    """``nn.AvgPool2d`` where its padding and divisor rules give the engine's numbers;
    otherwise zero padding first, or the generated :data:`HELPERS` module."""
    layer: Any = node.layer
    include_pad = bool(getattr(layer, "count_include_pad", True))
    t0, b0, l0, r0 = (int(v) for v in layer.padding4)
    (t, b, left, r), ceil = _pool_pads(node, plan)
    extra = (0, r - r0, 0, b - b0)  # (left, right, top, bottom) beyond the real padding
    kh, kw_ = layer.kernel_size
    kw: dict[str, Any] = {} if layer.stride == layer.kernel_size else {"stride": layer.stride}
    mods = []
    native = t == b and left == r and 2 * t <= kh and 2 * left <= kw_
    if native and (not include_pad or extra == (0, 0, 0, 0)):
        if (t, left) != (0, 0):
            kw["padding"] = (t, left)
    elif include_pad and extra == (0, 0, 0, 0):  # counted zero padding: pad, then pool
        mods.append(_pad_module((t, b, left, r), "zeros"))
    else:
        args = [layer.kernel_size, layer.stride, (l0, r0, t0, b0), extra]
        code = f"AvgPoolPadded({', '.join(lit(v) for v in args)}, {include_pad})"
        return Piece([TorchModule(code)], helpers=("AvgPoolPadded",))
    if ceil:
        kw["ceil_mode"] = True
    if not include_pad:
        kw["count_include_pad"] = False
    mods.append(TorchModule(call("AvgPool2d", layer.kernel_size, **kw)))
    return Piece(mods)


_ACTIVATIONS: dict[str, Callable[[dict[str, float]], str]] = {
    "relu": lambda s: call("ReLU"),
    "sigmoid": lambda s: call("Sigmoid"),
    "tanh": lambda s: call("Tanh"),
    "identity": lambda s: call("Identity"),
    "leaky_relu": lambda s: call("LeakyReLU", negative_slope=s.get("negative_slope", 0.01)),
    "elu": lambda s: call("ELU", alpha=s.get("alpha", 1.0)),
    "gelu_tanh": lambda s: call("GELU", approximate="tanh"),
    "softplus": lambda s: call(
        "Softplus", beta=s.get("beta", 1.0), threshold=s.get("threshold", 20.0)
    ),
}


def _activation(node: ExportNode, plan: ExportPlan) -> Piece:
    layer: Any = node.layer
    make = _ACTIVATIONS.get(layer.activation)
    if make is None:
        raise ExportError(
            f"activation {layer.activation!r} of node {node.name!r} has no torch form"
        )
    return Piece([TorchModule(make(layer.settings))])


def _batch_norm(node: ExportNode, plan: ExportPlan) -> Piece:
    layer: Any = node.layer
    arrays, sources = _weights(node, gamma="weight", beta="bias")
    # torch counts the batches it has seen; the engine does not (it is unused by torch
    # unless momentum is None), but strict loading needs the key
    arrays["num_batches_tracked"] = np.zeros((), np.int64)
    sources["num_batches_tracked"] = None
    code = call("BatchNorm2d", layer.num_features, eps=layer.eps, momentum=layer.momentum)
    return Piece([TorchModule(code, arrays, dict(sources))])


def _dense(node: ExportNode, plan: ExportPlan) -> Piece:
    layer: Any = node.layer
    arrays, sources = _weights(node)
    kw = {} if layer.use_bias else {"bias": False}
    code = call("Linear", layer.in_features, layer.out_features, **kw)
    return Piece([TorchModule(code, arrays, dict(sources))])


TRANSLATORS: dict[str, Translate] = {
    "conv": _conv,
    "max_pool": _max_pool,
    "avg_pool": _avg_pool,
    "activation": _activation,
    "batch_norm": _batch_norm,
    "flatten": lambda n, p: Piece([TorchModule(call("Flatten"))]),
    "dense": _dense,
    "dropout": lambda n, p: Piece([TorchModule(call("Dropout", p=float(n.layer.p)))]),  # type: ignore[attr-defined]
}
"""Layer kind → its torch form."""


# --------------------------------------------------------------------------------------
# Graph ops: joins are expressions in forward(), the rest modules
# --------------------------------------------------------------------------------------


def _join(symbol: str) -> Translate:
    def translate(node: ExportNode, plan: ExportPlan) -> Piece:
        return Piece(expr=f" {symbol} ".join(f"{{{i}}}" for i in range(len(node.inputs))))

    return translate


def _concat(node: ExportNode, plan: ExportPlan) -> Piece:
    parts = ", ".join(f"{{{i}}}" for i in range(len(node.inputs)))
    return Piece(expr=f"torch.cat([{parts}], dim={int(node.layer.to_dict()['axis'])})")


TRANSLATORS.update({"add": _join("+"), "mul": _join("*"), "concat": _concat})


def _pad_layer(node: ExportNode, plan: ExportPlan) -> Piece:
    cfg = node.layer.to_dict()
    return Piece([_pad_module(cfg["padding"], cfg["mode"], float(cfg["value"]))])


def _adaptive(node: ExportNode, plan: ExportPlan) -> Piece:
    size = tuple(node.layer.to_dict().get("output_size", (1, 1)))
    return Piece([TorchModule(call("AdaptiveAvgPool2d", size))])


def _prelu(node: ExportNode, plan: ExportPlan) -> Piece:
    layer: Any = node.layer
    arrays, sources = _weights(node)
    code = call("PReLU", num_parameters=layer.num_parameters)
    return Piece([TorchModule(code, arrays, dict(sources))])


def _clip(node: ExportNode, plan: ExportPlan) -> Piece:
    lo, hi = node.layer.to_dict()["min"], node.layer.to_dict()["max"]
    if (lo, hi) == (0.0, 6.0):
        return Piece([TorchModule(call("ReLU6"))])
    if lo is not None and hi is not None:
        return Piece([TorchModule(call("Hardtanh", float(lo), float(hi)))])
    bound = f"min={float(lo)!r}" if lo is not None else f"max={float(hi)!r}"
    return Piece(expr=f"torch.clamp({{0}}, {bound})")


def _reshape(node: ExportNode, plan: ExportPlan) -> Piece:
    dims = ", ".join(str(int(v)) for v in node.layer.to_dict()["shape"])
    return Piece(expr=f"{{0}}.reshape({{0}}.shape[0], {dims})")


TRANSLATORS.update(
    {
        "pad": _pad_layer,
        "global_avg_pool": lambda n, p: Piece([TorchModule(call("AdaptiveAvgPool2d", 1))]),
        "adaptive_avg_pool": _adaptive,
        "prelu": _prelu,
        "clip": _clip,
        "softmax": lambda n, p: Piece(
            [TorchModule(call("Softmax", dim=int(n.layer.to_dict()["axis"])))]
        ),
        "reshape": _reshape,
    }
)
