"""Strict validation of explorer layers read from a project file. Qt-free.

Why strict: a project file may come from anyone, and every value in it reaches the layer
form, the engine and the undo stack. Each field of each layer kind is checked for its JSON
type (a boolean is ``true``/``false``, never ``"no"``; a whole number is never ``1.7``) and
for the range the layer form offers (:mod:`cnn_explorer.limits`), so what a file may hold is
exactly what the UI can show and edit: nothing is clamped or converted silently. Every
refusal is a :class:`ProjectError` whose message names the file, the layer, the field and
the allowed range.

The arrays a layer refers to are described as :class:`~cnn_explorer.engine.archive.ArraySpec`
(exact shapes where the config fixes them) so the archive reader checks them before
allocating, and :func:`~cnn_explorer.explorer.specs.document_bytes` estimates the memory a
document needs (input plus every feature map) so an oversized one is refused before anything
is computed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_explorer.engine.archive import ArraySpec, Dim
from cnn_explorer.engine.history import TrainingHistory
from cnn_explorer.explorer.specs import (
    ACTIVATIONS,
    BATCHNORM_LISTS,
    LAYER_KINDS,
    LayerSpec,
    document_bytes,
)
from cnn_explorer.limits import (
    MAX_DILATION,
    MAX_DOCUMENT_BYTES,
    MAX_EPOCHS,
    MAX_FILTERS,
    MAX_HISTORY_BATCHES,
    MAX_HISTORY_CAPTION,
    MAX_HISTORY_SNAPSHOT_VALUES,
    MAX_INPUT_SIDE,
    MAX_KERNEL,
    MAX_LAYERS,
    MAX_PADDING,
    MAX_POOL_PADDING,
    MAX_SLOPE,
    MAX_STRIDE,
    MIN_SLOPE,
    PADDING_MODES,
)

INPUT_SPEC = ArraySpec(
    ((1, 3), (1, MAX_INPUT_SIDE), (1, MAX_INPUT_SIDE)),
    "fiu",
    3 * MAX_INPUT_SIDE * MAX_INPUT_SIDE,
    "the input",
)
"""The explorer's input grid ``(C, H, W)`` (C must then be 1 or 3)."""

MAX_CONFUSION_CLASSES = 1024
"""Largest confusion matrix read when the file names no classes (it is then refused)."""

DEFAULT_SLOPE = 0.01
_MISSING = object()


class ProjectError(ValueError):
    """The file cannot be opened as a project; the message says why."""


@dataclass
class LayerPlan:
    """One validated layer entry, before its arrays are read.

    ``config`` holds exactly the fields of :data:`~cnn_explorer.explorer.specs.CONFIG_KEYS`
    for the kind (defaults filled in, unknown keys dropped); ``arrays`` maps ``"weight"`` /
    ``"bias"`` to ``(key in the archive, expected array)`` for a conv layer."""

    kind: str
    config: dict[str, Any]
    enabled: bool
    arrays: dict[str, tuple[str, ArraySpec]]


def plan_layers(entries: object, name: str) -> list[LayerPlan]:
    """Validate the ``layers`` list of ``project.json`` (at most :data:`MAX_LAYERS`)."""
    if not isinstance(entries, list):
        raise ProjectError(f"{name}: 'layers' must be a list.")
    if len(entries) > MAX_LAYERS:
        raise ProjectError(
            f"{name} has {len(entries)} layers; the explorer holds at most {MAX_LAYERS}."
        )
    return [plan_layer(e, name, i) for i, e in enumerate(entries)]


def plan_layer(entry: object, name: str, index: int) -> LayerPlan:
    """Validate one layer entry: ``{"kind", "config", "enabled"?, "weight"?, "bias"?}``."""
    where = f"{name}: layer {index + 1}"
    if not isinstance(entry, dict):
        raise ProjectError(f"{where} is not a layer description.")
    kind = entry.get("kind")
    if kind not in LAYER_KINDS:
        raise ProjectError(
            f"{where} has an unknown kind {_show(kind)} (expected {_choices(LAYER_KINDS)})."
        )
    cfg = entry.get("config")
    if not isinstance(cfg, dict):
        raise ProjectError(f"{where} has no config.")
    where = f"{where} ({kind})"
    enabled = _bool(entry, "enabled", where, True)
    if kind == "act":
        return LayerPlan(kind, _act_config(cfg, where), enabled, {})
    if kind in ("maxpool", "avgpool"):
        return LayerPlan(kind, _pool_config(cfg, where), enabled, {})
    if kind == "batchnorm":
        return LayerPlan(kind, _batchnorm_config(cfg, where), enabled, {})
    if kind == "dropout":
        return LayerPlan(kind, {"p": _fraction(cfg, "p", where)}, enabled, {})
    config = _conv_config(cfg, where)
    o, (kh, kw) = config["filters"], config["kernel"]
    weight = ArraySpec(
        (o, (1, MAX_FILTERS), kh, kw), "fiu", o * MAX_FILTERS * kh * kw, f"layer {index + 1} weight"
    )
    bias = ArraySpec((o,), "fiu", o, f"layer {index + 1} bias")
    arrays = {"weight": (_key(entry, "weight", where), weight)}
    arrays["bias"] = (_key(entry, "bias", where), bias)
    return LayerPlan(kind, config, enabled, arrays)


def check_document_size(input_shape: Sequence[int], specs: Sequence[LayerSpec], name: str) -> None:
    """Refuse a document needing more than :data:`MAX_DOCUMENT_BYTES`, with the numbers."""
    need = document_bytes(input_shape, specs)
    if need > MAX_DOCUMENT_BYTES:
        raise ProjectError(
            f"{name} would need {need / 2**20:,.0f} MB for its feature maps, more than the "
            f"{MAX_DOCUMENT_BYTES / 2**20:,.0f} MB the explorer allows: refusing to open it."
        )


# --------------------------------------------------------------------------- per kind
def _conv_config(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    padding = _required(cfg, "padding", where)
    if padding not in ("same", "valid") and not _in_range(padding, 0, MAX_PADDING):
        raise ProjectError(
            f"{where}: padding must be a whole number from 0 to {MAX_PADDING}, or "
            f'"same" or "valid", not {_show(padding)}.'
        )
    mode = cfg.get("padding_mode", "zeros")
    if mode not in PADDING_MODES:
        raise ProjectError(
            f"{where}: padding_mode must be {_choices(PADDING_MODES)}, not {_show(mode)}."
        )
    return {
        "filters": _int(cfg, "filters", 1, MAX_FILTERS, where),
        "kernel": _pair(cfg, "kernel", 1, MAX_KERNEL, where),
        "stride": _pair(cfg, "stride", 1, MAX_STRIDE, where),
        "padding": padding,
        "padding_mode": mode,
        "dilation": _pair(cfg, "dilation", 1, MAX_DILATION, where),
        "bias": _bool(cfg, "bias", where, True),
        "flip": _bool(cfg, "flip", where, False),
    }


def _act_config(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    fn = cfg.get("fn")
    if fn not in ACTIVATIONS:
        raise ProjectError(
            f"{where}: unknown activation {_show(fn)} (expected {_choices(tuple(ACTIVATIONS))})."
        )
    slope = cfg.get("slope", DEFAULT_SLOPE)
    number = isinstance(slope, int | float) and not isinstance(slope, bool)
    if not number or not math.isfinite(slope) or not MIN_SLOPE <= slope <= MAX_SLOPE:
        raise ProjectError(
            f"{where}: slope must be a number from {MIN_SLOPE:g} to {MAX_SLOPE:g}, "
            f"not {_show(slope)}."
        )
    return {"fn": fn, "slope": float(slope)}


def _pool_config(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    return {
        "size": _pair(cfg, "size", 1, MAX_KERNEL, where),
        "stride": _pair(cfg, "stride", 1, MAX_STRIDE, where),
        "padding": _int(cfg, "padding", 0, MAX_POOL_PADDING, where),
    }


def _batchnorm_config(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    """eps in (0, 1]; gamma, beta, mean and var: one number per channel each (1 to
    :data:`MAX_FILTERS`, the same count), var never negative."""
    eps = cfg.get("eps", 1e-5)
    if not _is_number(eps) or not math.isfinite(eps) or not 0 < eps <= 1:
        raise ProjectError(
            f"{where}: eps must be a number above 0 and at most 1, not {_show(eps)}."
        )
    out: dict[str, Any] = {"eps": float(eps)}
    for key in BATCHNORM_LISTS:
        values = _required(cfg, key, where)
        if (
            not isinstance(values, list)
            or not 1 <= len(values) <= MAX_FILTERS
            or not all(_is_number(v) for v in values)
        ):
            raise ProjectError(
                f"{where}: {key} must be a list of 1 to {MAX_FILTERS} numbers (one per channel)."
            )
        out[key] = [float(v) for v in values]
    if len({len(out[k]) for k in BATCHNORM_LISTS}) != 1:
        raise ProjectError(f"{where}: gamma, beta, mean and var must have one value per channel.")
    if any(v < 0 for v in out["var"]):
        raise ProjectError(f"{where}: a variance (var) cannot be negative.")
    return out


def _fraction(cfg: dict[str, Any], key: str, where: str) -> float:
    """A number in [0, 1)."""
    value = cfg.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 1:
        raise ProjectError(f"{where}: {key} must be a number from 0 up to (not including) 1.")
    return float(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------- training history
HISTORY_PREFIX = "trained/history/"
"""Where a trained network's training history keeps its arrays in ``arrays.npz``:
``batches`` ``(2, n)`` (positions in epochs, losses), ``epochs`` ``(5, E)`` (the fields of
:data:`~cnn_explorer.engine.history.EpochRow`, NaN for none), ``confusion`` ``(K, K)``
integers, and ``snapshot<i>.<j>`` the weight of conv layer ``j`` in snapshot ``i``."""


def history_key(part: str) -> str:
    """The archive key of one history array (``"batches"``, ``"snapshot3.0"`` …)."""
    return HISTORY_PREFIX + part


@dataclass
class HistoryPlan:
    """The ``history`` entry of a trained network after its JSON was validated: snapshot
    captions, filter-layer titles, and every array to read (key → what it must be)."""

    captions: list[str]
    titles: list[str]
    specs: dict[str, ArraySpec]
    confusion: bool


def plan_history(
    entry: object, conv_shapes: Sequence[tuple[int, ...]], classes: int | None, name: str
) -> HistoryPlan | None:
    """Validate the optional ``history`` entry of the trained section (None when absent):
    ``{"batches": n, "epochs": E, "confusion": bool, "filter_layers": [one title per conv
    layer of the trained network, or none without snapshots], "snapshots": [captions]}``.
    Each snapshot holds exactly the trained network's conv weight shapes, so every array's
    shape is known here."""
    if entry is None:
        return None
    what = "the training history"  # the archive reader puts the file name before it
    where = f"{name}: {what}"
    if not isinstance(entry, dict):
        raise ProjectError(f"{where} is damaged (not a description).")
    batches = _int(entry, "batches", 0, MAX_HISTORY_BATCHES, where)
    epochs = _int(entry, "epochs", 0, MAX_EPOCHS, where)
    confusion = _bool(entry, "confusion", where, False)
    captions = _texts(entry, "snapshots", 0, MAX_EPOCHS + 2, where)
    convs = len(conv_shapes)  # every snapshot holds every conv layer (none without snapshots)
    titles = _texts(entry, "filter_layers", convs if captions else 0, convs, where)
    values = len(captions) * sum(math.prod(s) for s in conv_shapes)
    if values > MAX_HISTORY_SNAPSHOT_VALUES:
        raise ProjectError(
            f"{where} holds {values:,} filter weights, more than the "
            f"{MAX_HISTORY_SNAPSHOT_VALUES:,} a project may keep."
        )
    specs = {
        history_key("batches"): ArraySpec(
            (2, batches), "f", max(1, 2 * batches), f"{what}'s loss curve"
        ),
        history_key("epochs"): ArraySpec(
            (5, epochs), "f", max(1, 5 * epochs), f"{what}'s epoch table"
        ),
    }
    if confusion:
        k: Dim = classes if classes else (1, MAX_CONFUSION_CLASSES)
        specs[history_key("confusion")] = ArraySpec(
            (k, k), "iu", (classes or MAX_CONFUSION_CLASSES) ** 2, f"{what}'s confusion matrix"
        )
    for i in range(len(captions)):
        for j, shape in enumerate(conv_shapes):
            specs[history_key(f"snapshot{i}.{j}")] = ArraySpec(
                tuple(shape),
                "f",
                max(1, math.prod(shape)),
                f"{what}'s snapshot {i + 1} of {titles[j]}",
            )
    return HistoryPlan(captions, titles, specs, confusion)


def history_from_arrays(
    plan: HistoryPlan, arrays: dict[str, np.ndarray], classes: int, name: str
) -> TrainingHistory:
    """The history the checked arrays describe, or ProjectError naming what is wrong
    (the invariants of :mod:`cnn_explorer.engine.history`)."""
    where = f"{name}: the training history"
    x, loss = arrays[history_key("batches")].astype(np.float64)
    table = arrays[history_key("epochs")].astype(np.float64)
    number = table[0]
    last = float(number[-1]) if number.size else 0.0
    with np.errstate(invalid="ignore"):
        if not (np.isfinite(x).all() and np.isfinite(loss).all() and (loss >= 0).all()):
            raise ProjectError(f"{where} has batch losses that are not numbers ≥ 0.")
        if (x < 0).any() or (np.diff(x) < 0).any() or (x > last + 1).any():
            raise ProjectError(f"{where} has batch positions out of order or past its epochs.")
        whole = np.isfinite(number).all() and (number == np.round(number)).all()
        if not whole or (number < 1).any() or (np.diff(number) <= 0).any() or last > MAX_EPOCHS:
            raise ProjectError(
                f"{where}'s epoch numbers must be whole numbers from 1 to {MAX_EPOCHS}, increasing."
            )
        losses, accuracies = table[[1, 3]], table[[2, 4]]
        if (~np.isnan(losses) & ~(losses >= 0) | np.isinf(losses)).any():
            raise ProjectError(f"{where} has epoch losses that are not numbers ≥ 0.")
        if (~np.isnan(accuracies) & ~((accuracies >= 0) & (accuracies <= 1))).any():
            raise ProjectError(f"{where} has accuracies outside 0 to 1.")
    matrix = None
    if plan.confusion:
        matrix = arrays[history_key("confusion")].astype(np.int64)
        if matrix.shape != (classes, classes) or (matrix < 0).any() or matrix.sum() > 2**53:
            raise ProjectError(
                f"{where}'s confusion matrix is not {classes}×{classes} counts ≥ 0 "
                "(one row and column per class)."
            )
    snapshots = []
    for i, caption in enumerate(plan.captions):
        layers = []
        for j, title in enumerate(plan.titles):
            weight = arrays[history_key(f"snapshot{i}.{j}")].astype(np.float32)
            if not np.isfinite(weight).all():
                raise ProjectError(f"{where}'s snapshot {i + 1} of {title} is not finite.")
            layers.append((title, weight))
        snapshots.append((caption, layers))
    rows = [(int(r[0]), *(float(v) for v in r[1:])) for r in table.T]
    return TrainingHistory(x.tolist(), loss.tolist(), rows, snapshots, matrix)  # type: ignore[arg-type]


def _texts(entry: dict[str, Any], key: str, least: int, most: int, where: str) -> list[str]:
    """A list of ``least..most`` strings of at most :data:`MAX_HISTORY_CAPTION` characters."""
    value = entry.get(key, [])
    if not (
        isinstance(value, list)
        and least <= len(value) <= most
        and all(isinstance(v, str) and len(v) <= MAX_HISTORY_CAPTION for v in value)
    ):
        count = str(least) if least == most else f"{least} to {most}"
        raise ProjectError(
            f"{where}: {key} must be a list of {count} texts of at most "
            f"{MAX_HISTORY_CAPTION} characters, not {_show(value)}."
        )
    return list(value)


# --------------------------------------------------------------------------- fields
def _required(cfg: dict[str, Any], key: str, where: str) -> Any:
    value = cfg.get(key, _MISSING)
    if value is _MISSING:
        raise ProjectError(f"{where}: {key} is missing.")
    return value


def _in_range(value: object, lo: int, hi: int) -> bool:
    """A real JSON integer (not a bool, not 1.7, not 2.0) within ``lo..hi``."""
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _int(cfg: dict[str, Any], key: str, lo: int, hi: int, where: str) -> int:
    value = _required(cfg, key, where)
    if not _in_range(value, lo, hi):
        raise ProjectError(
            f"{where}: {key} must be a whole number from {lo} to {hi}, not {_show(value)}."
        )
    return int(value)


def _pair(cfg: dict[str, Any], key: str, lo: int, hi: int, where: str) -> list[int]:
    value = _required(cfg, key, where)
    if not (
        isinstance(value, list) and len(value) == 2 and all(_in_range(v, lo, hi) for v in value)
    ):
        raise ProjectError(
            f"{where}: {key} must be two whole numbers from {lo} to {hi} (like [{lo}, {lo}]), "
            f"not {_show(value)}."
        )
    return [int(value[0]), int(value[1])]


def _bool(cfg: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise ProjectError(f"{where}: {key} must be true or false, not {_show(value)}.")
    return value


def _key(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ProjectError(f"{where}: the array for its {key} is missing.")
    return value


def _show(value: object) -> str:
    """A value for a message, cut short (a file may hold a megabyte-long list)."""
    text = "nothing" if value is None else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _choices(options: Sequence[str]) -> str:
    quoted = [f'"{o}"' for o in options]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


__all__ = [
    "HISTORY_PREFIX",
    "INPUT_SPEC",
    "HistoryPlan",
    "LayerPlan",
    "ProjectError",
    "check_document_size",
    "history_from_arrays",
    "history_key",
    "plan_history",
    "plan_layer",
    "plan_layers",
]
