"""Fixtures shared across the suite: image folders for the training tests, and garbage
collection kept on the GUI thread for every test that runs Qt."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
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


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def run_app() -> Callable[..., subprocess.CompletedProcess]:
    """``run_app(*args, timeout=120)`` runs ``python -m cnn_explorer ARGS`` as a user would
    on a machine without a display: no DISPLAY, no QT_QPA_PLATFORM (the app must pick the
    offscreen platform itself), settings in a scratch folder."""

    def run(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env.pop("QT_QPA_PLATFORM", None)
        env["XDG_CONFIG_HOME"] = os.path.join(os.environ.get("TMPDIR", "/tmp"), "cnn-cli-test")
        return subprocess.run(
            [sys.executable, "-m", "cnn_explorer", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture(autouse=True)
def collect_garbage_in_the_gui_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """For a test that runs Qt: no automatic garbage collection while it runs (a worker
    thread collecting a cycle that holds Qt objects deadlocks against the GUI thread; the
    app's main window does the same), a collection on a GUI-thread timer instead, and the
    test's garbage collected here before collection is switched back on."""
    if "qapp" not in request.fixturenames:
        yield
        return
    from pyqtgraph.util.garbage_collector import GarbageCollector

    gc.collect()
    collector = GarbageCollector(interval=0.5)
    try:
        yield
    finally:
        collector.timer.stop()
        gc.collect()
        gc.enable()


TINY_PREPROCESSING = {
    "input_shape": [3, 8, 8],
    "colour": "rgb",
    "scale": 1 / 255,
    "mean": [0.5],
    "std": [0.25],
    "class_names": ["horizontal", "vertical"],
}


def _tiny_residual(classes: int = 2, softmax: bool = False):  # type: ignore[no-untyped-def]
    """stem conv → BN → ReLU → conv, added back to the ReLU's output → ReLU → global
    average → Flatten → Dense "fc" (→ Softmax): ResNet's smallest block, on 3×8×8."""
    from cnn_explorer.engine.extra_layers import GlobalAvgPool2D, Softmax
    from cnn_explorer.engine.graph import Graph, Node
    from cnn_explorer.engine.layers import Activation, BatchNorm2D, Conv2D, Dense, Flatten
    from cnn_explorer.engine.merge import Add

    rng = np.random.default_rng(0)
    nodes = [
        Node("stem", Conv2D(3, 4, 3, padding=1, rng=rng), ("input",)),
        Node("bn", BatchNorm2D(4), ("stem",)),
        Node("relu", Activation("relu"), ("bn",)),
        Node("conv", Conv2D(4, 4, 3, padding=1, rng=rng), ("relu",)),
        Node("add", Add(), ("relu", "conv")),
        Node("relu2", Activation("relu"), ("add",)),
        Node("pool", GlobalAvgPool2D(), ("relu2",)),
        Node("flat", Flatten(), ("pool",)),
        Node("fc", Dense(4, classes, rng=rng), ("flat",)),
    ]
    if softmax:
        nodes.append(Node("prob", Softmax(), ("fc",)))
    graph = Graph(nodes)
    bn = graph.node("bn").layer
    bn.buffers["running_mean"][...] = [0.1, -0.2, 0.3, 0.0]
    bn.buffers["running_var"][...] = [1.5, 0.5, 2.0, 1.0]
    return graph


@pytest.fixture
def tiny_residual() -> Callable[..., object]:
    """``tiny_residual(classes=2, softmax=False)`` -> a small residual engine Graph with a
    BatchNorm (set running statistics) and a Dense classifier node "fc", for fine-tuning
    and export tests; its preprocessing record is the ``tiny_preprocessing`` fixture."""
    return _tiny_residual


@pytest.fixture
def tiny_preprocessing() -> dict:
    """The ``Preprocessing.to_dict()`` record of ``tiny_residual`` (RGB 8×8, mean 0.5,
    std 0.25, classes horizontal/vertical like ``make_bars``)."""
    return dict(TINY_PREPROCESSING)
