"""Built-in architectures for a bare state_dict (weights with no architecture): LeNet-5,
AlexNet, VGG-11/13/16/19 with and without batch norm, ResNet-18/34, in torchvision's key
naming (LeNet-5 in the PyTorch tutorial's: ``conv1``, ``conv2``, ``fc1``…``fc3``).

A template is the op sequence of the torchvision model, written once as data
(:class:`Op`). A state_dict matches a template when its key set is the template's (BN's
``num_batches_tracked`` optional); the channel and class counts are then read from the
weight shapes, each layer built from them, and the engine's own shape inference says
whether they fit together. Kernel sizes are fixed by the template and checked.

Qt-free; NumPy and the engine only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnn_explorer.engine.extra_layers import AdaptiveAvgPool2D, GlobalAvgPool2D
from cnn_explorer.engine.graph import Graph, Node
from cnn_explorer.engine.layers import (
    Activation,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
)
from cnn_explorer.engine.merge import Add, MergeLayer
from cnn_explorer.interchange.model import ModelFileError

BN_KEYS = ("weight", "bias", "running_mean", "running_var")
BN_ENGINE = {"weight": "gamma", "bias": "beta"}
NUM_BATCHES = "num_batches_tracked"


def natural_key(text: str) -> list[Any]:
    """Sort key that puts ``features.5`` before ``features.12``."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t]


def natural_sorted(keys: Any) -> list[str]:
    return sorted(keys, key=natural_key)


@dataclass(frozen=True)
class Op:
    """One node of a template: ``name`` is the engine node (for weighted ops also the
    torch module path whose ``.weight``/``.bias``/… keys it reads)."""

    name: str
    kind: str  # conv | bn | linear | relu | max_pool | adaptive_avg | flatten | dropout | add
    inputs: tuple[str, ...]
    args: dict[str, Any] = field(default_factory=dict)

    def state_keys(self) -> list[str]:
        if self.kind == "conv":
            return [f"{self.name}.weight"] + ([f"{self.name}.bias"] if self.args["bias"] else [])
        if self.kind == "linear":
            return [f"{self.name}.weight", f"{self.name}.bias"]
        if self.kind == "bn":
            return [f"{self.name}.{k}" for k in BN_KEYS]
        return []


@dataclass(frozen=True)
class Template:
    """A named architecture: ops in order, the input height and width it was made for
    (channels come from the first conv), and whether it expects ImageNet normalisation."""

    name: str
    ops: tuple[Op, ...]
    input_hw: tuple[int, int]
    imagenet: bool

    def state_keys(self) -> list[str]:
        """Every key a matching state_dict has (``num_batches_tracked`` aside)."""
        return [k for op in self.ops for k in op.state_keys()]


class _Seq:
    """Appends ops, each reading the previous one unless told otherwise."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.last = Graph.INPUT

    def add(self, name: str, kind: str, inputs: tuple[str, ...] | None = None, **args: Any) -> str:
        self.ops.append(Op(name, kind, inputs or (self.last,), args))
        self.last = name
        return name


def _conv(s: _Seq, name: str, k: int, stride: int = 1, pad: int = 0, bias: bool = True) -> str:
    return s.add(name, "conv", kernel=k, stride=stride, padding=pad, bias=bias)


def lenet5() -> Template:
    s = _Seq()
    for i in (1, 2):
        _conv(s, f"conv{i}", 5)
        s.add(f"relu{i}", "relu")
        s.add(f"pool{i}", "max_pool", kernel=2, stride=2, padding=0)
    s.add("flatten", "flatten")
    for i in (1, 2, 3):
        s.add(f"fc{i}", "linear")
        if i < 3:
            s.add(f"fc{i}_relu", "relu")
    return Template("LeNet-5", tuple(s.ops), (32, 32), imagenet=False)


def _classifier(s: _Seq, dropout_first: bool) -> None:
    """torchvision's AlexNet/VGG head: (Dropout,) Linear, ReLU, Dropout, Linear, ReLU,
    (Dropout,) Linear, numbered ``classifier.0``…"""
    kinds = (
        ["dropout", "linear", "relu", "dropout", "linear", "relu", "linear"]
        if dropout_first
        else ["linear", "relu", "dropout", "linear", "relu", "dropout", "linear"]
    )
    for i, kind in enumerate(kinds):
        s.add(f"classifier.{i}", kind)


def alexnet() -> Template:
    s = _Seq()
    i = 0
    for item in [(11, 4, 2), (3,), (5, 1, 2), (3,), (3, 1, 1), (3, 1, 1), (3, 1, 1), (3,)]:
        if len(item) == 1:
            s.add(f"features.{i}", "max_pool", kernel=3, stride=2, padding=0)
            i += 1
            continue
        _conv(s, f"features.{i}", item[0], item[1], item[2])
        s.add(f"features.{i + 1}", "relu")
        i += 2
    s.add("avgpool", "adaptive_avg", size=(6, 6))
    s.add("flatten", "flatten")
    _classifier(s, dropout_first=True)
    return Template("AlexNet", tuple(s.ops), (224, 224), imagenet=True)


VGG_CONFIGS: dict[int, list[int]] = {
    11: [1, 1, 2, 2, 2],
    13: [2, 2, 2, 2, 2],
    16: [2, 2, 3, 3, 3],
    19: [2, 2, 4, 4, 4],
}
"""Convolutions per stage (each stage ends in a 2×2 max pool)."""


def vgg(depth: int, batch_norm: bool) -> Template:
    s = _Seq()
    i = 0
    for convs in VGG_CONFIGS[depth]:
        for _ in range(convs):
            _conv(s, f"features.{i}", 3, 1, 1)
            i += 1
            if batch_norm:
                s.add(f"features.{i}", "bn")
                i += 1
            s.add(f"features.{i}", "relu")
            i += 1
        s.add(f"features.{i}", "max_pool", kernel=2, stride=2, padding=0)
        i += 1
    s.add("avgpool", "adaptive_avg", size=(7, 7))
    s.add("flatten", "flatten")
    _classifier(s, dropout_first=False)
    name = f"VGG-{depth}" + (" with batch norm" if batch_norm else "")
    return Template(name, tuple(s.ops), (224, 224), imagenet=True)


def resnet(depth: int) -> Template:
    """torchvision's ResNet with basic blocks (18: 2-2-2-2, 34: 3-4-6-3)."""
    blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}[depth]
    s = _Seq()
    _conv(s, "conv1", 7, 2, 3, bias=False)
    s.add("bn1", "bn")
    s.add("relu", "relu")
    s.add("maxpool", "max_pool", kernel=3, stride=2, padding=1)
    for stage, count in enumerate(blocks, start=1):
        for j in range(count):
            p, block_in = f"layer{stage}.{j}", s.last
            stride = 2 if stage > 1 and j == 0 else 1
            _conv(s, f"{p}.conv1", 3, stride, 1, bias=False)
            s.add(f"{p}.bn1", "bn")
            s.add(f"{p}.relu1", "relu")
            _conv(s, f"{p}.conv2", 3, 1, 1, bias=False)
            main = s.add(f"{p}.bn2", "bn")
            shortcut = block_in
            if stride != 1:
                s.add(
                    f"{p}.downsample.0",
                    "conv",
                    (block_in,),
                    kernel=1,
                    stride=2,
                    padding=0,
                    bias=False,
                )
                shortcut = s.add(f"{p}.downsample.1", "bn")
            s.add(f"{p}.add", "add", (main, shortcut))
            s.add(f"{p}.relu2", "relu")
    s.add("avgpool", "adaptive_avg", size=(1, 1))
    s.add("flatten", "flatten")
    s.add("fc", "linear")
    return Template(f"ResNet-{depth}", tuple(s.ops), (224, 224), imagenet=True)


def templates() -> list[Template]:
    """Every built-in template, most specific first."""
    out = [lenet5(), alexnet()]
    out += [vgg(d, bn) for d in VGG_CONFIGS for bn in (False, True)]
    out += [resnet(18), resnet(34)]
    return out


# --------------------------------------------------------------------------------------
# Matching and building
# --------------------------------------------------------------------------------------


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape) or "a scalar"


class _Weights:
    """The state_dict as float32 arrays, checked for rank as they are taken; records the
    torch key → engine key mapping."""

    def __init__(self, tensors: Mapping[str, np.ndarray], template: str) -> None:
        self.tensors = tensors
        self.template = template
        self.mapping: dict[str, str] = {}

    def take(self, key: str, engine_key: str, rank: int, what: str) -> np.ndarray:
        arr = np.asarray(self.tensors[key])
        if arr.ndim != rank:
            raise ModelFileError(
                f"the shapes disagree with {self.template}: {key} is {_dims(arr.shape)} but "
                f"there the model has {what} ({rank} dimensions)"
            )
        self.mapping[key] = engine_key
        return np.asarray(arr, dtype=np.float32)


def _adaptive(op: Op, shape: tuple[int, ...]) -> Layer | None:
    """torch's ``AdaptiveAvgPool2d`` for an input ``(C, H, W)``: nothing when the map
    already has the output size (AlexNet and VGG at 224×224)."""
    _, h, w = shape
    size = tuple(op.args["size"])
    if (h, w) == size:
        return None
    if size == (1, 1):
        return GlobalAvgPool2D(name=op.name)
    return AdaptiveAvgPool2D(size, name=op.name)


# One branch per op kind keeps the template's whole recipe readable in one place.
def _layer(op: Op, wts: _Weights, shape: tuple[int, ...]) -> Layer | None:
    """The engine layer for ``op`` with its weights loaded (None: nothing to compute)."""
    n = op.name
    if op.kind == "conv":
        w = wts.take(f"{n}.weight", f"{n}.weight", 4, "a convolution weight")
        k = op.args["kernel"]
        if w.shape[2:] != (k, k):
            raise ModelFileError(
                f"the shapes disagree with {wts.template}: {n}.weight is {_dims(w.shape)}, "
                f"but its kernel there is {k}×{k}"
            )
        conv = Conv2D(
            w.shape[1],
            w.shape[0],
            k,
            op.args["stride"],
            op.args["padding"],
            bias=op.args["bias"],
            init="zeros",
            name=n,
        )
        arrays = {"weight": w}
        if op.args["bias"]:
            arrays["bias"] = wts.take(f"{n}.bias", f"{n}.bias", 1, "a bias vector")
        conv.load_arrays(arrays)
        return conv
    if op.kind == "bn":
        vals = {
            BN_ENGINE.get(k, k): wts.take(
                f"{n}.{k}", f"{n}.{BN_ENGINE.get(k, k)}", 1, "a batch-norm vector"
            )
            for k in BN_KEYS
        }
        bn = BatchNorm2D(vals["gamma"].shape[0], name=n)
        bn.load_arrays(vals)
        return bn
    if op.kind == "linear":
        w = wts.take(f"{n}.weight", f"{n}.weight", 2, "a fully connected weight")
        dense = Dense(w.shape[1], w.shape[0], init="zeros", name=n)
        dense.load_arrays({"weight": w, "bias": wts.take(f"{n}.bias", f"{n}.bias", 1, "a bias")})
        return dense
    if op.kind == "max_pool":
        return MaxPool2D(op.args["kernel"], op.args["stride"], op.args["padding"], name=n)
    if op.kind == "adaptive_avg":
        return _adaptive(op, shape)
    simple: dict[str, Any] = {
        "relu": lambda: Activation("relu", name=n),
        "flatten": lambda: Flatten(name=n),
        "dropout": lambda: Dropout(0.5, name=n),
        "add": lambda: Add(name=n),
    }
    return simple[op.kind]()


def build(
    template: Template, tensors: Mapping[str, np.ndarray], input_shape: tuple[int, int, int]
) -> tuple[Graph, dict[str, str]]:
    """The template as an engine Graph with the state_dict's weights, and the mapping
    torch key → engine key. ModelFileError when the shapes do not fit together."""
    wts = _Weights(tensors, template.name)
    nodes: list[Node] = []
    alias: dict[str, str] = {}
    shapes: dict[str, tuple[int, ...]] = {Graph.INPUT: tuple(input_shape)}
    for op in template.ops:
        inputs = tuple(alias.get(i, i) for i in op.inputs)
        try:
            layer = _layer(op, wts, shapes[inputs[0]])
            if layer is None:
                alias[op.name] = inputs[0]
                continue
            ins = [shapes[i] for i in inputs]
            if isinstance(layer, MergeLayer):
                shapes[op.name] = layer.output_shape_many(ins)
            else:
                shapes[op.name] = layer.output_shape(ins[0])
        except ValueError as exc:  # ShapeError, or a load_arrays shape mismatch
            if isinstance(exc, ModelFileError):
                raise
            raise ModelFileError(
                f"the shapes disagree with {template.name} at {op.name}: {exc}"
            ) from None
        nodes.append(Node(op.name, layer, inputs))
    return Graph(nodes), wts.mapping


def key_sets(tensors: Mapping[str, Any]) -> set[str]:
    """The keys that decide the match (``num_batches_tracked`` is optional)."""
    return {k for k in tensors if not k.endswith(f".{NUM_BATCHES}")}


def match(tensors: Mapping[str, Any]) -> Template:
    """The template whose keys are exactly the state_dict's; ModelFileError listing what
    the closest template expected otherwise."""
    have = key_sets(tensors)
    candidates = templates()
    for t in candidates:
        if set(t.state_keys()) == have:
            return t
    closest = min(candidates, key=lambda t: len(set(t.state_keys()) ^ have))
    want = set(closest.state_keys())
    missing, extra = natural_sorted(want - have), natural_sorted(have - want)

    def some(keys: list[str]) -> str:
        more = f" … (+{len(keys) - 6} more)" if len(keys) > 6 else ""
        return ", ".join(keys[:6]) + more if keys else "none"

    names = ", ".join(t.name for t in candidates)
    raise ModelFileError(
        f"its {len(have)} weight names match no built-in architecture ({names}). "
        f"Closest is {closest.name}, which expects {len(want)} keys "
        f"({some(natural_sorted(want))}); "
        f"missing: {some(missing)}; unexpected: {some(extra)}. Export the model as ONNX to "
        "bring its architecture along."
    )
