"""Fixtures shared by the training tests (command line and Training tab)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.imageio import save_png


@pytest.fixture(scope="session")
def make_bars(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int, int], Path]:
    """``make_bars(per_class, seed)`` -> a tiny image folder: 8×8 grayscale PNGs of one
    horizontal or one vertical bar at a random row/column, in ``horizontal/`` and
    ``vertical/``. Each module picks its own count and seed (its assertions depend on them)."""

    def make(per_class: int, seed: int) -> Path:
        root = tmp_path_factory.mktemp("bars")
        rng = np.random.default_rng(seed)
        for name in ("horizontal", "vertical"):
            (root / name).mkdir()
            for k in range(per_class):
                img = np.zeros((8, 8), np.uint8)
                pos = rng.integers(1, 7)
                if name == "vertical":
                    img[:, pos] = 255
                else:
                    img[pos, :] = 255
                save_png(img, str(root / name / f"{k}.png"))
        return root

    return make
