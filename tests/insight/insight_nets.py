"""Small networks for the insight tests (deterministic from a seed)."""

from __future__ import annotations

import numpy as np

from cnn_explorer.engine.layers import Activation, Conv2D, Dense, Flatten, MaxPool2D
from cnn_explorer.engine.network import Network


def smooth_net(seed: int = 0, channels: int = 2, size: tuple[int, int] = (6, 5)) -> Network:
    """conv 3×3 (pad 1) → tanh → max pool 2 → conv 3×3 (pad 1) → tanh → flatten → dense(3),
    float64: smooth almost everywhere, for finite-difference checks."""
    rng = np.random.default_rng(seed)
    h, w = size[0] // 2, size[1] // 2
    net = Network(
        [
            Conv2D(channels, 3, 3, padding=1, rng=rng, dtype=np.float64),
            Activation("tanh"),
            MaxPool2D(2),
            Conv2D(3, 4, 3, padding=1, rng=rng, dtype=np.float64),
            Activation("tanh"),
            Flatten(),
            Dense(4 * h * w, 3, rng=rng, dtype=np.float64),
        ]
    )
    for _, p in net.parameters():
        p += 0.1 * rng.standard_normal(p.shape)
    return net


def relu_net(seed: int = 0, bias: bool = True, channels: int = 1) -> Network:
    """conv(→4, 3×3, pad 1) → ReLU → max pool 2 → conv(4→6, 3×3, pad 1) → ReLU → flatten →
    dense(→3), float64, for 8×8 inputs."""
    rng = np.random.default_rng(seed)
    return Network(
        [
            Conv2D(channels, 4, 3, padding=1, bias=bias, rng=rng, dtype=np.float64),
            Activation("relu"),
            MaxPool2D(2),
            Conv2D(4, 6, 3, padding=1, bias=bias, rng=rng, dtype=np.float64),
            Activation("relu"),
            Flatten(),
            Dense(6 * 4 * 4, 3, bias=bias, rng=rng, dtype=np.float64),
        ]
    )
