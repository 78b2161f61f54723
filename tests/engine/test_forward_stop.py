"""A forward pass polls its ``stop`` callable before every layer: a caller off the GUI
thread can give up within one layer's time (ForwardStopped), and a stop that never fires
changes nothing in the result."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_explorer.engine import ForwardStopped, layers
from cnn_explorer.engine.graph import Graph, Node
from cnn_explorer.engine.network import Network


def _layers() -> list[layers.Layer]:
    return [
        layers.Conv2D(2, 3, 3, padding=1, rng=0),
        layers.Activation("relu"),
        layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dense(3 * 3 * 3, 4, rng=1),
    ]


def _models() -> list[Network | Graph]:
    chain = _layers()
    nodes = [Node(f"n{i}", layer, ("input" if i == 0 else f"n{i - 1}",)) for i, layer in
             enumerate(_layers())]  # fmt: skip
    return [Network(chain), Graph(nodes)]


@pytest.mark.parametrize("kind", [0, 1])
def test_a_stop_is_polled_before_each_layer_and_stops_there(kind: int) -> None:
    model = _models()[kind]
    x = np.random.default_rng(0).normal(size=(1, 2, 6, 6)).astype(np.float32)
    polls: list[int] = []

    def never() -> bool:
        polls.append(1)
        return False

    plain = model.forward(x)
    watched = model.forward(x, stop=never)
    assert len(polls) == len(model.layers)
    values = plain.values() if isinstance(plain, dict) else plain
    others = watched.values() if isinstance(watched, dict) else watched
    for a, b in zip(values, others, strict=True):
        assert np.array_equal(a, b)
    for after in range(len(model.layers)):
        polls.clear()

        def at(n: int = after) -> bool:
            polls.append(1)
            return len(polls) > n

        with pytest.raises(ForwardStopped):
            model.forward(x, stop=at)
        assert len(polls) == after + 1  # no layer ran after the stop was seen
