"""One property test over every kind of edit the explorer has.

Random sequences of every intent in ``edits.INTENTS`` (input cells, blocks, paint strokes,
resizes, channel changes, every config field of every layer kind, kinds, add / remove /
duplicate / move / enable / disable, weights, biases, kernel presets, new documents) mixed
with undo and redo. After each step the maps equal a fresh forward pass within 1e-5; after
``refine()`` they equal it bit for bit. The generators are checked against the model's own
lists (``INTENTS``, ``LAYER_KINDS``, ``CONFIG_KEYS``), so a new kind of edit that is not
generated here fails a test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from explorer_helpers import History, assert_close_to_fresh, assert_exactly_fresh

from cnn_explorer.explorer import edits, presets
from cnn_explorer.explorer.model import Explorer
from cnn_explorer.explorer.specs import (
    ACTIVATIONS,
    CONFIG_KEYS,
    LAYER_KINDS,
    act_spec,
    batchnorm_spec,
    conv_spec,
    dropout_spec,
    pool_spec,
)

Rng = np.random.Generator
MAX_LAYERS = 6
MAX_SIDE = 12


def _pair(rng: Rng, lo: int, hi: int) -> list[int]:
    return [int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))]


def _value(rng: Rng) -> float:
    if rng.random() < 0.02:
        return float("nan")
    return float(np.round(rng.normal() * 2, 2))


# A value generator for every config field of every layer kind.
FIELDS: dict[str, dict[str, Callable[[Rng], Any]]] = {
    "conv": {
        "filters": lambda r: int(r.integers(1, 5)),
        "kernel": lambda r: _pair(r, 1, 4),
        "stride": lambda r: _pair(r, 1, 3),
        "padding": lambda r: [0, 1, 2, "same", "valid"][int(r.integers(5))],
        "padding_mode": lambda r: ["zeros", "reflect", "replicate", "circular"][int(r.integers(4))],
        "dilation": lambda r: _pair(r, 1, 2),
        "bias": lambda r: bool(r.integers(2)),
        "flip": lambda r: bool(r.integers(2)),
    },
    "act": {
        "fn": lambda r: sorted(ACTIVATIONS)[int(r.integers(len(ACTIVATIONS)))],
        "slope": lambda r: float(np.round(r.random(), 2)),
    },
    "maxpool": {
        "size": lambda r: _pair(r, 1, 3),
        "stride": lambda r: _pair(r, 1, 3),
        "padding": lambda r: int(r.integers(0, 2)),
    },
}
FIELDS["avgpool"] = FIELDS["maxpool"]


def _per_channel(rng: Rng, lo: float, hi: float) -> list[float]:
    """One value per channel for 1 to 3 channels (another count than the layer's input
    makes the layer invalid: that is an edit too)."""
    return [float(np.round(rng.uniform(lo, hi), 3)) for _ in range(int(rng.integers(1, 4)))]


FIELDS["batchnorm"] = {
    "eps": lambda r: [1e-5, 1e-3, 0.5][int(r.integers(3))],
    "gamma": lambda r: _per_channel(r, -2, 2),
    "beta": lambda r: _per_channel(r, -1, 1),
    "mean": lambda r: _per_channel(r, -1, 1),
    "var": lambda r: _per_channel(r, 0, 3),
}
FIELDS["dropout"] = {"p": lambda r: float(np.round(r.random() * 0.9, 2))}


def _batchnorm(rng: Rng, channels: int) -> Any:
    return batchnorm_spec(
        *(rng.uniform(lo, hi, channels).round(3) for lo, hi in ((-2, 2), (-1, 1), (-1, 1), (0, 3)))
    )


def _random_spec(m: Explorer, rng: Rng) -> Any:
    kind = LAYER_KINDS[int(rng.integers(len(LAYER_KINDS)))]
    if kind == "conv":
        k = _pair(rng, 1, 3)
        return conv_spec(
            m.input.shape[0],
            int(rng.integers(1, 4)),
            (k[0], k[1]),
            padding=int(rng.integers(0, 2)),
            seed=int(rng.integers(99)),
        )
    if kind == "act":
        return act_spec(FIELDS["act"]["fn"](rng), 0.1)
    if kind == "batchnorm":  # mostly the input's channel count (a conv may change it)
        return _batchnorm(rng, m.input.shape[0] if rng.random() < 0.7 else int(rng.integers(1, 4)))
    if kind == "dropout":
        return dropout_spec(FIELDS["dropout"]["p"](rng))
    return pool_spec(kind, int(rng.integers(1, 3)), int(rng.integers(1, 3)))


def _layer(m: Explorer, rng: Rng, kinds: tuple[str, ...] = LAYER_KINDS) -> int | None:
    choices = [i for i, s in enumerate(m.layers) if s.kind in kinds]
    return None if not choices else int(rng.choice(choices))


def _conv_cell(m: Explorer, rng: Rng) -> tuple[int, int, int, int, int] | None:
    i = _layer(m, rng, ("conv",))
    if i is None:
        return None
    o, c, kh, kw = m.layers[i].weight.shape
    return (
        i,
        int(rng.integers(o)),
        int(rng.integers(c)),
        int(rng.integers(kh)),
        int(rng.integers(kw)),
    )


def _cell(m: Explorer, rng: Rng) -> tuple[int, int, int]:
    c, h, w = m.input.shape
    return int(rng.integers(c)), int(rng.integers(h)), int(rng.integers(w))


def _update_config(m: Explorer, rng: Rng) -> list[Any]:
    i = _layer(m, rng)
    if i is None:
        return []
    kind = m.layers[i].kind
    key = sorted(FIELDS[kind])[int(rng.integers(len(FIELDS[kind])))]
    return edits.update_config(m, i, **{key: FIELDS[kind][key](rng)})


def _set_kernel(m: Explorer, rng: Rng) -> list[Any]:
    at = _conv_cell(m, rng)
    if at is None:
        return []
    name = sorted(presets.KERNEL_PRESETS)[int(rng.integers(len(presets.KERNEL_PRESETS)))]
    return edits.set_kernel(m, at[0], at[1], at[2], presets.kernel_preset(name), name)


def _paint(m: Explorer, rng: Rng) -> list[Any]:
    stroke = edits.Stroke(m.input)
    for _ in range(int(rng.integers(1, 4))):
        ch, r, c = _cell(m, rng)
        stroke.paint(m, ch, [(r, c), (r, c + 1)], _value(rng))
        m.recompute()  # each mouse move computes live
    step = stroke.finish(m)
    return [] if step is None else [step]


GENERATORS: dict[str, Callable[[Explorer, Rng], list[Any]]] = {
    "set_input": lambda m, r: edits.set_input(m, r.normal(size=m.input.shape).astype(np.float32)),
    "set_cell": lambda m, r: edits.set_cell(m, *_cell(m, r), _value(r)),
    "set_block": lambda m, r: edits.set_block(
        m, *_cell(m, r), r.normal(size=(2, 3)).astype(np.float32)
    ),
    "resize_input": lambda m, r: edits.resize_input(
        m, int(r.integers(1, MAX_SIDE + 1)), int(r.integers(1, MAX_SIDE + 1))
    ),
    "set_channels": lambda m, r: edits.set_channels(m, 4 - m.input.shape[0]),
    "set_layer": lambda m, r: (
        []
        if not m.layers
        else edits.set_layer(m, int(r.integers(len(m.layers))), _random_spec(m, r), "replace")
    ),
    "update_config": _update_config,
    "set_kind": lambda m, r: (
        []
        if (i := _layer(m, r, ("maxpool", "avgpool"))) is None
        else edits.set_kind(m, i, "avgpool" if m.layers[i].kind == "maxpool" else "maxpool")
    ),
    "set_enabled": lambda m, r: (
        [] if (i := _layer(m, r)) is None else edits.set_enabled(m, i, not m.layers[i].enabled)
    ),
    "set_kernel": _set_kernel,
    "set_weight": lambda m, r: (
        [] if (at := _conv_cell(m, r)) is None else edits.set_weight(m, *at, _value(r))
    ),
    "set_bias": lambda m, r: (
        [] if (at := _conv_cell(m, r)) is None else edits.set_bias(m, at[0], at[1], _value(r))
    ),
    "set_weights": lambda m, r: (
        []
        if (i := _layer(m, r, ("conv",))) is None
        else edits.set_weights(
            m, i, presets.random_kernel(m.layers[i].weight.shape, int(r.integers(99))), "random"
        )
    ),
    "add_layer": lambda m, r: (
        []
        if len(m.layers) >= MAX_LAYERS
        else edits.add_layer(m, _random_spec(m, r), int(r.integers(len(m.layers) + 1)))
    ),
    "remove_layer": lambda m, r: (
        [] if not m.layers else edits.remove_layer(m, int(r.integers(len(m.layers))))
    ),
    "duplicate_layer": lambda m, r: (
        []
        if not m.layers or len(m.layers) >= MAX_LAYERS
        else edits.duplicate_layer(m, int(r.integers(len(m.layers))))
    ),
    "move_layer": lambda m, r: (
        []
        if not m.layers
        else edits.move_layer(m, int(r.integers(len(m.layers))), int(r.integers(len(m.layers))))
    ),
    "new_document": lambda m, r: edits.new_document(
        m,
        r.random((1, 6, 7)).astype(np.float32),
        [conv_spec(1, 2, (3, 3), padding=1, seed=3), act_spec("relu"), pool_spec("maxpool", 2, 2)],
        "new",
    ),
}
ACTIONS = [*sorted(GENERATORS), "paint", "undo", "redo"]


def test_every_intent_of_the_model_is_generated() -> None:
    assert set(GENERATORS) == set(edits.INTENTS)


def test_every_config_field_of_every_layer_kind_is_generated() -> None:
    assert set(FIELDS) == set(LAYER_KINDS)
    for kind, keys in CONFIG_KEYS.items():
        assert set(FIELDS[kind]) == set(keys), kind


@pytest.mark.parametrize("seed", range(4))
def test_random_edit_sequences_always_match_a_fresh_forward(seed: int) -> None:
    rng = np.random.default_rng(seed)
    model = Explorer()
    model.recompute()
    history = History(model)
    seen: set[str] = set()
    for _step in range(150):
        action = ACTIONS[int(rng.integers(len(ACTIONS)))]
        if action == "undo":
            history.undo()
        elif action == "redo":
            history.redo()
        elif action == "paint":
            history.push(_paint(model, rng))
        else:
            history.push(GENERATORS[action](model, rng))
        seen.add(action)
        model.recompute()
        assert_close_to_fresh(model)
        if rng.random() < 0.25:  # the edits pause
            model.refine()
            assert model.exact
            assert_exactly_fresh(model)
    model.refine()
    assert_exactly_fresh(model)
    assert seen == set(ACTIONS)
