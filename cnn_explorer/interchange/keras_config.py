"""A Keras model config (``Sequential`` or ``Functional``, Keras 2 or 3) read into a plain
list of layers and the calls between them, without Keras.

Keras tensors are named ``(layer name, node index, tensor index)``: node ``i`` of a layer
is its ``i``-th call (a layer called twice shares its weights); an ``InputLayer``'s node 0
is the model's input. Keras 3 writes each call as ``{"args": [...], "kwargs": {...}}``
with ``{"class_name": "__keras_tensor__", "config": {"keras_history": [...]}}`` tensors;
Keras 2 as a list of ``[name, node, tensor, kwargs]``. Both are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cnn_explorer.interchange.model import ModelFileError

TensorKey = tuple[str, int, int]
"""``(layer name, node index, tensor index)``."""

MODEL_CLASSES = ("Sequential", "Functional", "Model")

SEQUENTIAL_INPUT = "/input"
"""The name given to a Sequential model's input (no Keras layer name holds a slash)."""


@dataclass
class KerasLayer:
    """One layer of the config."""

    name: str
    cls: str
    config: dict[str, Any]
    calls: list[list[TensorKey]] = field(default_factory=list)
    """The input tensors of each call, in call order."""
    weight_key: str = ""
    """Where its weights are in the weights file (see ``KerasFile.keyed_by_class``)."""


@dataclass
class KerasModel:
    kind: str
    """``"Sequential"`` or ``"Functional"``."""
    layers: list[KerasLayer]
    input: TensorKey
    input_dims: tuple[int | None, ...]
    """The input's batch shape as stored, e.g. ``(None, 28, 28, 1)``."""
    output: TensorKey
    extra_outputs: int = 0


def snake_case(name: str) -> str:
    """Keras 3's ``naming.to_snake_case``: how ``.keras`` names a layer's weights."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def _class_keys(classes: list[str]) -> list[str]:
    used: dict[str, int] = {}
    keys = []
    for cls in classes:
        key = snake_case(cls)
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        keys.append(key)
    return keys


def _layer(entry: Any, index: int) -> KerasLayer:
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise ModelFileError(f"layer {index + 1} of the model's config is malformed")
    config = entry.get("config")
    if not isinstance(config, dict):
        config = {}
    name = entry.get("name") or config.get("name") or f"layer_{index}"
    return KerasLayer(str(name), entry["class_name"], config)


def _dims(value: Any) -> tuple[int | None, ...] | None:
    if not isinstance(value, list | tuple):
        return None
    try:
        return tuple(None if v is None else int(v) for v in value)
    except (TypeError, ValueError):
        return None


def input_dims_of(config: dict[str, Any]) -> tuple[int | None, ...] | None:
    """The batch shape an InputLayer (or a Keras 2 first layer) declares."""
    for key in ("batch_shape", "batch_input_shape"):
        dims = _dims(config.get(key))
        if dims is not None:
            return dims
    shape = _dims(config.get("input_shape") or config.get("shape"))
    return None if shape is None else (None, *shape)


def _sequential(config: dict[str, Any]) -> KerasModel:
    entries = config.get("layers")
    if not isinstance(entries, list) or not entries:
        raise ModelFileError("the Sequential model's config lists no layers")
    layers = [_layer(e, i) for i, e in enumerate(entries)]
    dims = None
    if layers[0].cls == "InputLayer":
        dims = input_dims_of(layers.pop(0).config)
    elif layers:
        dims = input_dims_of(layers[0].config)
    if dims is None:
        dims = _dims(config.get("build_input_shape"))
    if dims is None:
        raise ModelFileError(
            "the Sequential model does not say its input shape (it was never built); build it "
            "with an Input before saving"
        )
    prev: TensorKey = (SEQUENTIAL_INPUT, 0, 0)
    for layer in layers:
        layer.calls = [[prev]]
        prev = (layer.name, 0, 0)
    inp = KerasLayer(SEQUENTIAL_INPUT, "InputLayer", {}, [], "")
    return KerasModel("Sequential", [inp, *layers], (SEQUENTIAL_INPUT, 0, 0), dims, prev)


def _keys(value: Any, what: str) -> list[TensorKey]:
    """``input_layers``/``output_layers``: one ``[name, node, tensor]`` or a list of them."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ModelFileError(f"the model's config has no {what}")
    out = []
    for v in value:
        if not (isinstance(v, list) and len(v) >= 3 and isinstance(v[0], str)):
            raise ModelFileError(f"the model's {what} are malformed")
        out.append((v[0], int(v[1]), int(v[2])))
    return out


def _tensors(value: Any, found: list[TensorKey]) -> None:
    """Every Keras 3 ``__keras_tensor__`` inside ``value``, in order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            history = (value.get("config") or {}).get("keras_history")
            if not (isinstance(history, list) and len(history) == 3):
                raise ModelFileError("a layer call in the model's config is malformed")
            found.append((str(history[0]), int(history[1]), int(history[2])))
        else:
            for v in value.values():
                _tensors(v, found)
    elif isinstance(value, list):
        for v in value:
            _tensors(v, found)


def _call_inputs(node: Any, layer: str) -> list[TensorKey]:
    if isinstance(node, dict):  # Keras 3
        found: list[TensorKey] = []
        _tensors(node.get("args", []), found)
        extra: list[TensorKey] = []
        _tensors(node.get("kwargs", {}), extra)
        if extra:
            raise ModelFileError(
                f"layer {layer!r} is called with tensors as keyword arguments (a mask?); this "
                "app imports layers called on their inputs only"
            )
        return found
    if isinstance(node, list):  # Keras 2: [[name, node, tensor, kwargs], ...]
        out = []
        for item in node:
            if not (isinstance(item, list) and len(item) >= 3 and isinstance(item[0], str)):
                raise ModelFileError(f"the inputs of layer {layer!r} are malformed")
            if len(item) > 3 and isinstance(item[3], dict) and item[3]:
                raise ModelFileError(
                    f"layer {layer!r} is called with keyword arguments {sorted(item[3])}; this "
                    "app imports layers called on their inputs only"
                )
            out.append((item[0], int(item[1]), int(item[2])))
        return out
    raise ModelFileError(f"the inputs of layer {layer!r} are malformed")


def _functional(config: dict[str, Any]) -> KerasModel:
    entries = config.get("layers")
    if not isinstance(entries, list) or not entries:
        raise ModelFileError("the model's config lists no layers")
    layers = [_layer(e, i) for i, e in enumerate(entries)]
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise ModelFileError("two layers of the model have the same name")
    for layer, entry in zip(layers, entries, strict=True):
        nodes = entry.get("inbound_nodes") or []
        if not isinstance(nodes, list):
            raise ModelFileError(f"the inputs of layer {layer.name!r} are malformed")
        layer.calls = [_call_inputs(n, layer.name) for n in nodes]
    inputs = _keys(config.get("input_layers"), "inputs")
    outputs = _keys(config.get("output_layers"), "outputs")
    if len(inputs) != 1:
        raise ModelFileError(
            f"the model has {len(inputs)} inputs; this app imports models with one image input"
        )
    by_name = {layer.name: layer for layer in layers}
    first = by_name.get(inputs[0][0])
    if first is None or first.cls != "InputLayer":
        raise ModelFileError("the model's input is not an InputLayer")
    dims = input_dims_of(first.config)
    if dims is None:
        raise ModelFileError(f"the model's input {first.name!r} does not say its shape")
    return KerasModel(
        "Functional", layers, inputs[0], dims, outputs[0], extra_outputs=len(outputs) - 1
    )


def parse_model(config: dict[str, Any], keyed_by_class: bool) -> KerasModel:
    """The :class:`KerasModel` a model config describes; ModelFileError for anything that is
    not a Sequential or Functional model."""
    cls = config.get("class_name")
    inner = config.get("config")
    if cls not in MODEL_CLASSES or not isinstance(inner, dict):
        raise ModelFileError(
            f"the file holds a {cls!r}, not a Sequential or Functional model; subclassed "
            "models keep their architecture in Python code and cannot be imported"
        )
    model = _sequential(inner) if cls == "Sequential" else _functional(inner)
    # .keras names weight groups after each saved layer's class (the Sequential's implicit
    # input is not a saved layer); .h5 after the layer's name.
    saved = model.layers[1:] if model.kind == "Sequential" else model.layers
    keys = _class_keys([layer.cls for layer in saved])
    for layer, key in zip(saved, keys, strict=True):
        layer.weight_key = key if keyed_by_class else layer.name
    return model
