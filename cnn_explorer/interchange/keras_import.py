"""Import a Keras model (``.keras`` or legacy ``.h5``) as an engine
:class:`~cnn_explorer.engine.graph.Graph`, without Keras.

Steps: read the file safely (:mod:`keras_reader`); read the config into layers and calls
(:mod:`keras_config`); refuse every unsupported layer at once, naming each (a ``Lambda``
holds Python code, which is never run); convert the calls in dependency order
(:mod:`keras_layers`, :mod:`keras_layers_tensor`), NHWC → NCHW; a leading ``Rescaling``
becomes the preprocessing; estimate the memory; then, when Keras is installed, compare
with Keras on one seeded random input (:mod:`keras_selfcheck`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnn_explorer.engine.graph import Graph
from cnn_explorer.interchange.files import check_memory
from cnn_explorer.interchange.keras_build import KBuilder, KRef
from cnn_explorer.interchange.keras_config import MODEL_CLASSES, KerasLayer, KerasModel, parse_model
from cnn_explorer.interchange.keras_layers_tensor import CONVERTERS, SUPPORTED_LAYERS
from cnn_explorer.interchange.keras_reader import KerasFile, read_h5, read_keras
from cnn_explorer.interchange.keras_selfcheck import keras_outputs, self_check
from cnn_explorer.interchange.labels import labels_beside
from cnn_explorer.interchange.model import (
    ImportedModel,
    ImportReport,
    InputShapeNeededError,
    ModelFileError,
    Preprocessing,
    ReportEntry,
)

LAYOUT_NOTE = (
    "images converted from Keras' (H, W, C) to (C, H, W); kernels from (kh, kw, in, out) to "
    "(out, in, kh, kw); Dense kernels transposed to (out, in)"
)


def _refuse_unsupported(model: KerasModel) -> None:
    report = ImportReport(source="")
    bad = []
    for layer in model.layers[1:] if model.kind == "Sequential" else model.layers:
        if layer.cls in CONVERTERS and (layer.cls != "InputLayer" or not layer.calls):
            continue
        if layer.cls == "Lambda":
            why = "holds Python code, which this app never runs"
        elif layer.cls in MODEL_CLASSES:
            why = "is a nested model; flatten it into one model before saving"
        else:
            why = "is not a layer this app maps (a custom or unsupported class)"
        bad.append(f"{layer.name!r} ({layer.cls})")
        report.entries.append(ReportEntry(layer.name, layer.cls, "unsupported", why))
    if bad:
        first = report.entries[0]
        raise ModelFileError(
            f"the model has {'a layer' if len(bad) == 1 else 'layers'} this app does not "
            f"support: {', '.join(bad)}; layer {first.node!r} {first.detail}. Supported: "
            f"{', '.join(SUPPORTED_LAYERS)}",
            report,
        )


def choose_input_shape(
    model: KerasModel, input_shape: Sequence[int] | None
) -> tuple[int, int, int]:
    """``(C, H, W)`` from the model's ``(None, H, W, C)`` input or ``input_shape``, which
    must agree with every fixed dimension."""
    dims = model.input_dims
    if len(dims) == 3:  # (N, H, W): one channel
        dims = (*dims, 1)
    if len(dims) != 4:
        raise ModelFileError(
            f"the model's input has shape {tuple(dims)}; this app runs image models with an "
            "(N, H, W, C) or (N, H, W) input"
        )
    chw = (dims[3], dims[1], dims[2])
    if input_shape is not None:
        given = tuple(int(v) for v in input_shape)
        if len(given) != 3 or min(given) < 1:
            raise ModelFileError(f"the input size must be (C, H, W), not {tuple(input_shape)}")
        for name, fixed, want in zip(("channels", "height", "width"), chw, given, strict=True):
            if fixed is not None and fixed != want:
                raise ModelFileError(f"the model's input has {fixed} {name}, not {want}")
        return (given[0], given[1], given[2])
    if any(d is None or d < 1 for d in chw):
        raise InputShapeNeededError(
            f"the model's input size is not fixed {tuple(dims)}: choose the input size "
            "(channels, height, width) to import it at"
        )
    return (int(chw[0]), int(chw[1]), int(chw[2]))  # type: ignore[arg-type]


def _weights(kf: KerasFile, layer: KerasLayer, report: ImportReport) -> list[np.ndarray]:
    arrays = kf.weights.get(layer.weight_key, [])
    for i, a in enumerate(arrays):
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        if bad:
            report.warnings.append(
                f"weight {i} of layer {layer.name!r} holds {bad} NaN or infinite value"
                f"{'s' if bad != 1 else ''}: the outputs it reaches will be NaN or inf"
            )
    return arrays


KEEPS_NO_CHANNEL = frozenset(
    {"Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization"}
    | {"Activation", "ReLU", "LeakyReLU", "ELU", "Rescaling"}
)
"""Layers that work value by value, so an (H, W) tensor without channels stays one."""


def _call(b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]) -> KRef:
    """Convert one layer call; a config value of the wrong type becomes a sentence naming
    the layer."""
    try:
        return _convert_call(b, layer, xs, weights)
    except ModelFileError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ModelFileError(
            f"layer {layer.name!r} ({layer.cls}) has a config this app cannot read ({exc})"
        ) from None


def _convert_call(
    b: KBuilder, layer: KerasLayer, xs: list[KRef], weights: list[np.ndarray]
) -> KRef:
    """Layers on an (H, W) tensor without a channel axis are limited to the value-by-value
    ones and Flatten/Reshape (the rest would act on W)."""
    if not any(x.no_channel for x in xs):
        return CONVERTERS[layer.cls](b, layer, xs, weights)
    act = layer.config.get("activation") if layer.cls == "Activation" else None
    if layer.cls not in KEEPS_NO_CHANNEL | {"Flatten", "Reshape"} or act == "softmax":
        raise ModelFileError(
            f"layer {layer.name!r} ({layer.cls}) works on the model's (H, W) input, which has "
            "no channel axis; this app maps only Flatten, Reshape and value-by-value layers "
            "there (add a channel axis with Reshape first)"
        )
    out = CONVERTERS[layer.cls](b, layer, xs, weights)
    keep = layer.cls in KEEPS_NO_CHANNEL and len(out.shape) == 3
    return KRef(out.name, out.shape, out.perm, out.flat_of, no_channel=keep)


def collapse_notes(notes: list[str], most: int = 3) -> list[str]:
    """Per-layer notes ``"layer: what"``; a ``what`` repeated for more than ``most`` layers
    becomes one line naming how many and the first few (a 200-layer EfficientNet has 49
    ``silu`` rewrites)."""
    groups: dict[str, list[str]] = {}
    for note in notes:
        name, sep, what = note.partition(": ")
        groups.setdefault(what if sep else note, []).append(name if sep else "")
    out = []
    for what, names in groups.items():
        if len(names) > most and all(names):
            out.append(f"{what}: {len(names)} layers ({', '.join(names[:3])}, …)")
        else:
            out.extend(f"{n}: {what}" if n else what for n in names)
    return out


def _leading_rescaling(model: KerasModel) -> KerasLayer | None:
    """The Rescaling layer that is the only reader of the model's input, if any."""
    readers = [
        (layer, i)
        for layer in model.layers
        for i, call in enumerate(layer.calls)
        if model.input in call
    ]
    if len(readers) == 1 and readers[0][0].cls == "Rescaling" and len(readers[0][0].calls) == 1:
        return readers[0][0]
    return None


def _rescaling_preprocessing(layer: KerasLayer, shape: tuple[int, int, int]) -> Preprocessing:
    """``x·scale + offset`` as :class:`Preprocessing` ``(x·scale − mean) / std``."""
    c = shape[0]
    try:
        scale = np.broadcast_to(
            np.asarray(layer.config.get("scale", 1.0), np.float64).reshape(-1), (c,)
        )
        offset = np.broadcast_to(
            np.asarray(layer.config.get("offset", 0.0), np.float64).reshape(-1), (c,)
        )
    except (ValueError, TypeError):
        raise ModelFileError(
            f"layer {layer.name!r} (Rescaling) has a scale or offset that does not fit {c} channels"
        ) from None
    colour = "rgb" if c == 3 else "grey"
    if np.all(scale == scale[0]) and scale[0] != 0:
        mean = (0.0 - offset[0],) if np.all(offset == offset[0]) else tuple(0.0 - offset)
        return Preprocessing(shape, colour, float(scale[0]), mean, (1.0,))
    if np.any(scale == 0):
        raise ModelFileError(f"layer {layer.name!r} (Rescaling) multiplies a channel by 0")
    return Preprocessing(shape, colour, 1.0, tuple(-offset / scale), tuple(1.0 / scale))


# A worklist over every layer call: the config lists layers in creation order, and a layer
# called twice may be called the second time on something made later.
def convert(
    kf: KerasFile, model: KerasModel, shape: tuple[int, int, int], report: ImportReport
) -> tuple[Graph, KRef, KerasLayer | None]:
    """The engine graph; its output's :class:`KRef`; the leading Rescaling moved into the
    preprocessing (None if none was)."""
    _refuse_unsupported(model)
    b = KBuilder(report)
    b.tensors[model.input] = KRef(Graph.INPUT, shape, no_channel=len(model.input_dims) == 3)
    rescale = _leading_rescaling(model)
    pending = [(layer, i) for layer in model.layers for i in range(len(layer.calls))]
    if rescale is not None:
        pending.remove((rescale, 0))
        b.tensors[(rescale.name, 0, 0)] = b.tensors[model.input]
        b.entry(rescale, "transformed", "moved into the preprocessing (x·scale + offset)")
        report.transformations.append(
            f"{rescale.name}: the leading Rescaling became the preprocessing's scale and mean"
        )
    while pending:
        progress = []
        for layer, i in pending:
            keys = layer.calls[i]
            if not all(k in b.tensors for k in keys):
                continue
            xs = [b.tensors[k] for k in keys]
            if not xs:
                raise ModelFileError(f"layer {layer.name!r} ({layer.cls}) is called on nothing")
            b.tensors[(layer.name, i, 0)] = _call(b, layer, xs, _weights(kf, layer, report))
            progress.append((layer, i))
        if not progress:
            layer, i = pending[0]
            missing = [k[0] for k in layer.calls[i] if k not in b.tensors]
            raise ModelFileError(
                f"layer {layer.name!r} reads {missing[0]!r}, which nothing in the model computes"
            )
        pending = [p for p in pending if p not in progress]
    report.transformations[:] = collapse_notes(report.transformations)
    if model.output not in b.tensors:
        raise ModelFileError(
            f"the model's output {model.output[0]!r} is not computed from its input"
        )
    out = b.tensors[model.output]
    if out.perm is not None:
        report.warnings.append(
            "the model's output is a flattened image: the app lists its values in (C, H, W) "
            "order, Keras in (H, W, C) order"
        )
    if model.extra_outputs:
        report.warnings.append(
            f"the model has {model.extra_outputs + 1} outputs; this app shows the first, "
            f"{model.output[0]!r}"
        )
    return b.graph(out), out, rescale


def import_keras(
    path: Path, *, input_shape: Sequence[int] | None = None, check: bool = True
) -> ImportedModel:
    """Read ``path`` (``.keras`` or ``.h5``) and convert it; ``check`` compares with Keras
    when it is installed."""
    kf = read_h5(path) if path.suffix.lower() == ".h5" else read_keras(path)
    try:
        model = parse_model(kf.config, kf.keyed_by_class)
    except RecursionError:
        raise ModelFileError(f"{path.name}: the model's config is nested too deeply") from None
    except ModelFileError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ModelFileError(f"{path.name}: the model's config is malformed ({exc})") from None
    shape = choose_input_shape(model, input_shape)
    report = ImportReport(source=path.name)
    report.transformations.append(LAYOUT_NOTE)
    try:
        graph, out, rescale = convert(kf, model, shape, report)
    except ModelFileError as exc:
        if exc.report is None:  # the entries so far show where the conversion stopped
            raise ModelFileError(str(exc), report) from None
        raise
    check_memory(graph, shape, report)
    if rescale is not None:
        pre = _rescaling_preprocessing(rescale, shape)
    else:
        pre = Preprocessing(shape, colour="rgb" if shape[0] == 3 else "grey")
    pre = _class_names(pre, path, graph, report)
    if check:
        by_name = {layer.name: kf.weights.get(layer.weight_key, []) for layer in model.layers}
        reference = functools.partial(keras_outputs, kf.config, by_name)
        scale, offset = 1.0, 0.0
        if rescale is not None:
            scale = float(np.asarray(rescale.config.get("scale", 1.0)).reshape(-1)[0])
            offset = float(np.asarray(rescale.config.get("offset", 0.0)).reshape(-1)[0])
        result = self_check(
            graph,
            shape,
            reference,
            scale=scale,
            offset=offset,
            perm=out.perm,
            keras_rank=len(model.input_dims),
        )
        if isinstance(result, str):
            report.warnings.append(result)
        else:
            report.self_check = result
    return ImportedModel(graph, pre, report, path)


def _class_names(
    pre: Preprocessing, path: Path, graph: Graph, report: ImportReport
) -> Preprocessing:
    """Class names from a ``labels.txt`` beside the model when they fit its outputs."""
    names = labels_beside(path, report)
    if not names:
        return pre
    out = graph.output_shapes(pre.input_shape)[graph.output]
    classes = int(np.prod(out))
    if len(names) != classes:
        report.warnings.append(
            f"{len(names)} class names from labels.txt do not match the model's {classes} "
            "outputs: names not used"
        )
        return pre
    report.transformations.append(f"{len(names)} class names from labels.txt")
    return Preprocessing.from_dict({**pre.to_dict(), "class_names": list(names)})
