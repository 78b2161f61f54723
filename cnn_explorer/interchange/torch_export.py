"""Write an engine Network or Graph as PyTorch: a readable ``model.py`` (an
``nn.Sequential`` for a chain, an ``nn.Module`` with ``forward()`` for a graph) plus
``model.safetensors`` whose keys are exactly the generated module's ``state_dict`` keys, so
``model.load_state_dict(load_file(...), strict=True)`` just works.

No torch here: the code is text and the weights go through ``safetensors.numpy``. A student
opens the file, so each module gets a comment naming the engine layer it came from.

Where ``torch.nn`` has no single module for what the engine does, the layer becomes a
small sequence: asymmetric padding is a ``ZeroPad2d``/``ReflectionPad2d``/… before the
conv or pool, ceil-mode overhang that torch would count differently becomes explicit
padding, and a true convolution (``flip_kernel``) is exported with the flipped weights.

The safetensors header also carries the architecture (the exported nodes in the
``Graph.to_dict()`` format, see :data:`METADATA_ARCHITECTURE`) and which engine array each
key holds, so :mod:`cnn_explorer.interchange.safetensors_import` can rebuild the model.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save

from cnn_explorer.interchange.export_common import (
    INPUT,
    ExportError,
    ExportNode,
    ExportPlan,
    export_nodes,
    write_bytes_atomic,
)
from cnn_explorer.interchange.model import (
    METADATA_CLASS_NAMES,
    METADATA_PREPROCESSING,
    Preprocessing,
)

METADATA_ARCHITECTURE = "cnn_explorer.architecture"
"""safetensors metadata key: JSON ``{"graph": Graph.to_dict(), "input_shape": [C, H, W]}``."""

METADATA_KEYS = "cnn_explorer.keys"
"""safetensors metadata key: JSON ``{torch key: engine state key}`` (``"3.weight"``)."""


@dataclass
class _Module:
    """One ``torch.nn`` module: its constructor call and ``{torch param: array}``; the
    engine key each array came from is ``sources[torch param]`` (None for torch-only
    buffers such as ``num_batches_tracked``)."""

    code: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    sources: dict[str, str | None] = field(default_factory=dict)


@dataclass
class _Piece:
    """What one engine node becomes: modules applied in order, or (for ops without a
    module, like ``a + b``) a forward expression with ``{0}``, ``{1}`` for the inputs."""

    modules: list[_Module] = field(default_factory=list)
    expr: str | None = None


@dataclass
class TorchExport:
    """The generated ``model.py`` text, the tensors of ``model.safetensors`` keyed like
    the module's ``state_dict``, and the safetensors header metadata."""

    source: str
    tensors: dict[str, np.ndarray]
    metadata: dict[str, str]


# --------------------------------------------------------------------------------------
# Small formatting helpers
# --------------------------------------------------------------------------------------


def _lit(v: Any) -> str:
    """A Python literal: a pair with equal halves prints as one int, floats with repr."""
    if isinstance(v, tuple | list):
        vals = [int(x) if isinstance(x, int | np.integer) else x for x in v]
        if len(vals) == 2 and vals[0] == vals[1]:
            return _lit(vals[0])
        return "(" + ", ".join(_lit(x) for x in vals) + ("," if len(vals) == 1 else "") + ")"
    if isinstance(v, bool | str | None):
        return repr(v)
    if isinstance(v, float | np.floating):
        return "float('-inf')" if v == -np.inf else repr(float(v))
    return repr(int(v))


def _call(name: str, *args: Any, **kwargs: Any) -> str:
    parts = [_lit(a) for a in args] + [f"{k}={_lit(v)}" for k, v in kwargs.items()]
    return f"nn.{name}(" + ", ".join(parts) + ")"


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def _pad_module(pad4: Sequence[int], mode: str, value: float = 0.0) -> _Module:
    """Torch pads are ``(left, right, top, bottom)``; ours ``(top, bottom, left, right)``."""
    t, b, left, r = (int(v) for v in pad4)
    lrtb = (left, r, t, b)
    if mode == "zeros" and value == 0.0:
        return _Module(_call("ZeroPad2d", lrtb))
    names = {"reflect": "ReflectionPad2d", "replicate": "ReplicationPad2d"}
    if mode in names:
        return _Module(_call(names[mode], lrtb))
    if mode == "circular":
        return _Module(_call("CircularPad2d", lrtb))
    return _Module(_call("ConstantPad2d", lrtb, float(value)))


# --------------------------------------------------------------------------------------
# One translator per layer kind
# --------------------------------------------------------------------------------------

Translate = Callable[[ExportNode, ExportPlan], _Piece]


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


def _conv(node: ExportNode, plan: ExportPlan) -> _Piece:
    layer: Any = node.layer
    arrays, sources = _weights(node)
    if layer.flip_kernel:  # true convolution = cross-correlation with the flipped kernel
        arrays["weight"] = np.ascontiguousarray(arrays["weight"][:, :, ::-1, ::-1])
    t, b, left, r = layer.padding4
    mods: list[_Module] = []
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
    code = _call("Conv2d", layer.in_channels, layer.out_channels, layer.kernel_size, **kw)
    mods.append(_Module(code, arrays, dict(sources)))
    return _Piece(mods)


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


def _max_pool(node: ExportNode, plan: ExportPlan) -> _Piece:
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
    mods.append(_Module(_call("MaxPool2d", layer.kernel_size, **kw)))
    return _Piece(mods)


def _avg_pool(node: ExportNode, plan: ExportPlan) -> _Piece:
    layer: Any = node.layer
    include_pad = bool(getattr(layer, "count_include_pad", True))
    orig = tuple(int(v) for v in layer.padding4)
    (t, b, left, r), ceil = _pool_pads(node, plan)
    kw: dict[str, Any] = {} if layer.stride == layer.kernel_size else {"stride": layer.stride}
    mods = []
    symmetric = t == b and left == r
    if symmetric and 2 * t <= layer.kernel_size[0] and 2 * left <= layer.kernel_size[1]:
        if (t, left) != (0, 0):
            kw["padding"] = (t, left)
    elif include_pad and (t, b, left, r) == orig:
        # zero padding counted in the divisor, no overhang: pad first, then pool
        mods.append(_pad_module((t, b, left, r), "zeros"))
    else:
        raise ExportError(
            f"node {node.name!r} ({layer.describe()}): torch.nn has no average pool with this "
            "uneven padding; make the padding equal on both sides to export it"
        )
    if ceil:
        kw["ceil_mode"] = True
    if not include_pad:
        kw["count_include_pad"] = False
    mods.append(_Module(_call("AvgPool2d", layer.kernel_size, **kw)))
    return _Piece(mods)


_ACTIVATIONS: dict[str, Callable[[dict[str, float]], str]] = {
    "relu": lambda s: _call("ReLU"),
    "sigmoid": lambda s: _call("Sigmoid"),
    "tanh": lambda s: _call("Tanh"),
    "identity": lambda s: _call("Identity"),
    "leaky_relu": lambda s: _call("LeakyReLU", negative_slope=s.get("negative_slope", 0.01)),
    "elu": lambda s: _call("ELU", alpha=s.get("alpha", 1.0)),
    "gelu_tanh": lambda s: _call("GELU", approximate="tanh"),
    "softplus": lambda s: _call(
        "Softplus", beta=s.get("beta", 1.0), threshold=s.get("threshold", 20.0)
    ),
}


def _activation(node: ExportNode, plan: ExportPlan) -> _Piece:
    layer: Any = node.layer
    make = _ACTIVATIONS.get(layer.activation)
    if make is None:
        raise ExportError(
            f"activation {layer.activation!r} of node {node.name!r} has no torch form"
        )
    return _Piece([_Module(make(layer.settings))])


def _batch_norm(node: ExportNode, plan: ExportPlan) -> _Piece:
    layer: Any = node.layer
    arrays, sources = _weights(node, gamma="weight", beta="bias")
    # torch counts the batches it has seen; the engine does not (it is unused by torch
    # unless momentum is None), but strict loading needs the key
    arrays["num_batches_tracked"] = np.zeros((), np.int64)
    sources["num_batches_tracked"] = None
    code = _call("BatchNorm2d", layer.num_features, eps=layer.eps, momentum=layer.momentum)
    return _Piece([_Module(code, arrays, dict(sources))])


def _dense(node: ExportNode, plan: ExportPlan) -> _Piece:
    layer: Any = node.layer
    arrays, sources = _weights(node)
    kw = {} if layer.use_bias else {"bias": False}
    code = _call("Linear", layer.in_features, layer.out_features, **kw)
    return _Piece([_Module(code, arrays, dict(sources))])


TRANSLATORS: dict[str, Translate] = {
    "conv": _conv,
    "max_pool": _max_pool,
    "avg_pool": _avg_pool,
    "activation": _activation,
    "batch_norm": _batch_norm,
    "flatten": lambda n, p: _Piece([_Module(_call("Flatten"))]),
    "dense": _dense,
    "dropout": lambda n, p: _Piece([_Module(_call("Dropout", p=float(n.layer.p)))]),  # type: ignore[attr-defined]
}
"""Layer kind → its torch form (graph ops are added by :mod:`torch_export_graph`)."""


# --------------------------------------------------------------------------------------
# Code generation
# --------------------------------------------------------------------------------------


def _identifier(name: str, taken: set[str]) -> str:
    """A Python attribute name for a node: ``"layer1.0.conv1"`` → ``layer1_0_conv1``,
    ``"3"`` → ``layer3``; unique among ``taken``."""
    ident = re.sub(r"\W", "_", name).strip("_") or "node"
    if not ident[0].isalpha():
        ident = f"layer{ident}"
    base, k = ident, 1
    while ident in taken or ident in ("forward", "training", "input"):
        k += 1
        ident = f"{base}_{k}"
    taken.add(ident)
    return ident


def _pieces(plan: ExportPlan) -> list[_Piece]:
    pieces = []
    for node in plan.nodes:
        translate = TRANSLATORS.get(node.layer.kind)
        if translate is None:
            raise ExportError(
                f"node {node.name!r} ({node.layer.describe()}) cannot be written as PyTorch: "
                f"layer kind {node.layer.kind!r} is not supported by the exporter"
            )
        pieces.append(translate(node, plan))
    return pieces


def _comment(node: ExportNode, plan: ExportPlan) -> str:
    shape = "×".join(str(s) for s in plan.shapes[node.name])
    return f"{node.layer.describe()} → {shape}"


def _sequential(
    plan: ExportPlan, pieces: list[_Piece], tensors: dict[str, np.ndarray], keys: dict[str, str]
) -> list[str]:
    """``build_model()`` returning one ``nn.Sequential``: a chain whose every layer is a
    module (positional keys ``"4.weight"``)."""
    lines = ["def build_model() -> nn.Sequential:", "    return nn.Sequential("]
    index = 0
    for node, piece in zip(plan.nodes, pieces, strict=True):
        lines.append(f"        # node {node.name}: {_comment(node, plan)}")
        for mod in piece.modules:
            lines.append(f"        {mod.code},  # [{index}]")
            _collect(str(index), mod, tensors, keys)
            index += 1
    lines.append("    )")
    return lines


def _collect(
    prefix: str, mod: _Module, tensors: dict[str, np.ndarray], keys: dict[str, str]
) -> None:
    for pname, arr in mod.arrays.items():
        tensors[f"{prefix}.{pname}"] = arr
        src = mod.sources.get(pname)
        if src is not None:
            keys[f"{prefix}.{pname}"] = src


# The whole class text is laid out here at once: splitting __init__ and forward into
# separate passes would walk the nodes twice and keep two name tables in step.
def _module_class(
    plan: ExportPlan, pieces: list[_Piece], tensors: dict[str, np.ndarray], keys: dict[str, str]
) -> list[str]:
    """``class Model(nn.Module)`` with one attribute per node and a ``forward()``."""
    init = [
        "class Model(nn.Module):",
        '    """The exported graph: one attribute per node, wired in forward()."""',
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
    ]
    fwd = ["    def forward(self, x: torch.Tensor) -> torch.Tensor:"]
    taken: set[str] = set()
    var = {INPUT: "x"}
    for node, piece in zip(plan.nodes, pieces, strict=True):
        ident = _identifier(node.name, taken)
        args = [var[i] for i in node.inputs]
        fwd.append(f"        # {node.name}: {_comment(node, plan)}")
        if piece.modules:
            if len(piece.modules) == 1:
                init.append(f"        self.{ident} = {piece.modules[0].code}")
                _collect(ident, piece.modules[0], tensors, keys)
            else:
                init.append(f"        self.{ident} = nn.Sequential(")
                for j, mod in enumerate(piece.modules):
                    init.append(f"            {mod.code},")
                    _collect(f"{ident}.{j}", mod, tensors, keys)
                init.append("        )")
            fwd.append(f"        {ident} = self.{ident}({', '.join(args)})")
        else:
            assert piece.expr is not None
            fwd.append(f"        {ident} = {piece.expr.format(*args)}")
        var[node.name] = ident
    fwd.append(f"        return {var[plan.output]}")
    return [*init, "", *fwd, "", "", "def build_model() -> Model:", "    return Model()"]


def _header(plan: ExportPlan, meta: dict[str, str], names: list[str], filename: str) -> list[str]:
    c_h_w = plan.shapes[INPUT]
    stem = Path(filename).stem
    doc = [
        '"""A model exported by CNN Explorer.',
        "",
        f"Input: a batch of shape (N, {', '.join(str(s) for s in c_h_w)}); "
        f"output: (N, {', '.join(str(s) for s in plan.shapes[plan.output])}).",
        "",
        "Load the weights saved beside this file and run it:",
        "",
        "    import torch",
        "    from safetensors.torch import load_file",
        f"    from {stem} import build_model",
        "",
        "    model = build_model()",
        f'    model.load_state_dict(load_file("{stem}.safetensors"), strict=True)',
        "    model.eval()  # batch norm uses its running statistics, dropout is off",
        f"    logits = model(torch.zeros(1, {', '.join(str(s) for s in c_h_w)}))",
        '"""',
        "",
        "import torch",
        "from torch import nn",
        "",
        f"INPUT_SHAPE = {tuple(int(s) for s in c_h_w)!r}  # one image, without the batch axis",
        f"CLASS_NAMES = {names!r}",
    ]
    if METADATA_PREPROCESSING in meta:
        prep = json.loads(meta[METADATA_PREPROCESSING])
        doc.append(
            "# Preprocessing: pixels × scale, then (value − mean) / std per channel: "
            f"scale={prep['scale']!r}, mean={prep['mean']!r}, std={prep['std']!r}, "
            f"colour={prep['colour']!r}"
        )
    return [*doc, "", ""]


def _metadata(
    plan: ExportPlan,
    preprocessing: Preprocessing | None,
    class_names: Sequence[str] | None,
    keys: dict[str, str],
) -> tuple[dict[str, str], list[str]]:
    names = [str(n) for n in (class_names or (preprocessing.class_names if preprocessing else ()))]
    graph = {
        "nodes": [
            {"name": n.name, "inputs": list(n.inputs), "layer": n.layer.to_dict()}
            for n in plan.nodes
        ],
        "output": plan.output,
    }
    arch = {"graph": graph, "input_shape": list(plan.shapes[INPUT])}
    meta = {
        "format": "pt",
        METADATA_ARCHITECTURE: json.dumps(arch, allow_nan=False),
        METADATA_KEYS: json.dumps(keys),
    }
    if preprocessing is not None:
        meta[METADATA_PREPROCESSING] = preprocessing.to_json()
    if names:
        meta[METADATA_CLASS_NAMES] = json.dumps(names)
    return meta, names


def to_torch(
    model: Any,
    input_shape: Sequence[int],
    *,
    preprocessing: Preprocessing | None = None,
    class_names: Sequence[str] | None = None,
    filename: str = "model.py",
) -> TorchExport:
    """The PyTorch source and weights of ``model`` (an engine Network or Graph) for the
    per-image ``input_shape``. ``filename`` only shapes the usage note in the docstring.

    Raises :class:`ExportError` naming the first layer that ``torch.nn`` cannot express.
    """
    plan = export_nodes(model, input_shape)
    pieces = _pieces(plan)
    tensors: dict[str, np.ndarray] = {}
    keys: dict[str, str] = {}
    if plan.is_chain and all(p.modules for p in pieces):
        body = _sequential(plan, pieces, tensors, keys)
    else:
        body = _module_class(plan, pieces, tensors, keys)
    meta, names = _metadata(plan, preprocessing, class_names, keys)
    source = "\n".join([*_header(plan, meta, names, filename), *body]) + "\n"
    return TorchExport(source, tensors, meta)


def save_torch(
    path: str | os.PathLike[str],
    model: Any,
    input_shape: Sequence[int],
    *,
    preprocessing: Preprocessing | None = None,
    class_names: Sequence[str] | None = None,
) -> tuple[Path, Path]:
    """Write ``path`` (``…/model.py``) and ``…/model.safetensors`` beside it, each
    atomically; returns both paths."""
    py = Path(path)
    if py.suffix != ".py":
        raise ExportError(f"a PyTorch export is written as a .py file, not {py.name!r}")
    out = to_torch(
        model, input_shape, preprocessing=preprocessing, class_names=class_names, filename=py.name
    )
    weights = py.with_suffix(".safetensors")
    write_bytes_atomic(weights, save(out.tensors, metadata=out.metadata))
    write_bytes_atomic(py, out.source.encode("utf-8"))
    return py, weights


__all__ = [
    "METADATA_ARCHITECTURE",
    "METADATA_KEYS",
    "TRANSLATORS",
    "TorchExport",
    "save_torch",
    "to_torch",
]
