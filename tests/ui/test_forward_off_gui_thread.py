"""Forward passes of big models leave the GUI thread: "Try an image" of the training tab
and the Model tab's maps are computed on a pool while a busy bar shows, the result on
screen is exactly a plain forward's, a newer picture stops and drops the older one, and
closing stops a running forward at its next layer.

The networks here are small test doubles whose forward waits at a gate the test opens:
while it is shut, the GUI thread must carry on (it would hang if the forward ran on it)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QTimer

from cnn_explorer.engine import layers
from cnn_explorer.engine.errors import ForwardStopped
from cnn_explorer.engine.graph import Graph, Node
from cnn_explorer.engine.network import Network
from cnn_explorer.explorer.graph_document import GraphDocument
from cnn_explorer.interchange.model import Preprocessing
from cnn_explorer.training.prediction import predict
from cnn_explorer.ui.training.prediction_panel import PredictionPanel

GATE_S = 20.0  # a shut gate that is never opened fails the test instead of hanging it


class Gate:
    """What the gated forwards share: the gate, the threads they ran on, how they ended."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.started = threading.Event()
        self.threads: list[int] = []
        self.endings: list[str] = []

    def run(self, forward: Any, stop: Any) -> Any:
        """Wait until the gate opens or the caller asks the forward to stop, then run it."""
        self.threads.append(threading.get_ident())
        self.started.set()
        for _ in range(int(GATE_S / 0.005)):
            if self.open.wait(0.005) or (stop is not None and stop()):
                break
        else:
            raise AssertionError("the gate was never opened")
        try:
            out = forward(stop)
        except ForwardStopped:
            self.endings.append("stopped")
            raise
        self.endings.append("completed")
        return out


class GatedNetwork(Network):
    def __init__(self, layer_list: list[layers.Layer], gate: Gate) -> None:
        super().__init__(layer_list)
        self.gate = gate

    def copy(self) -> GatedNetwork:
        return GatedNetwork(Network.copy(self).layers, self.gate)

    def forward(self, x: np.ndarray, training: bool = False, *, stop: Any = None) -> Any:
        return self.gate.run(lambda s: Network.forward(self, x, training, stop=s), stop)


class GatedGraph(Graph):
    def __init__(self, nodes: list[Node], gate: Gate) -> None:
        super().__init__(nodes)
        self.gate = gate

    def forward(self, x: np.ndarray, training: bool = False, *, stop: Any = None) -> Any:
        return self.gate.run(lambda s: Graph.forward(self, x, training, stop=s), stop)


def _layers() -> list[layers.Layer]:
    return [
        layers.Conv2D(1, 4, 3, padding=1, rng=0),
        layers.Activation("relu"),
        layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dense(4 * 4 * 4, 3, rng=1),
    ]


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(7).normal(size=(n, 1, 8, 8)).astype(np.float32)


def _event_loop_runs(qtbot: Any) -> None:
    """The GUI thread is free: a timer queued now fires (it never would if the forward
    held the thread)."""
    fired: list[bool] = []
    QTimer.singleShot(0, lambda: fired.append(True))
    qtbot.waitUntil(lambda: bool(fired), timeout=int(GATE_S * 1000))


@pytest.fixture
def panel(qtbot):
    p = PredictionPanel()
    qtbot.addWidget(p)
    p.async_cost = 0  # every forward counts as big: it goes to the pool
    yield p
    p.shutdown()


def test_try_an_image_classifies_off_the_gui_thread_exactly_as_a_plain_forward(qtbot, panel):
    gate = Gate()
    net = GatedNetwork(_layers(), gate)
    panel.set_network(net, ["a", "b", "c"])
    image = _images(1)[0]
    panel.show_image(image, "my image")  # returns with the gate shut: not on this thread
    assert panel.is_busy and not panel.busy.isHidden()
    assert "classifying" in panel.result.text()
    assert gate.started.wait(GATE_S)
    assert gate.threads[0] != threading.get_ident()
    _event_loop_runs(qtbot)  # while the forward waits at its gate
    gate.open.set()
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=int(GATE_S * 1000))
    want = predict(Network(net.layers), image)
    assert np.array_equal(panel.probabilities, want.probabilities)
    assert panel.busy.isHidden() and "my image: predicted" in panel.result.text()


def test_a_newer_image_stops_and_drops_the_older_one(qtbot, panel):
    gate = Gate()
    net = GatedNetwork(_layers(), gate)
    panel.set_network(net, ["a", "b", "c"])
    first, second = _images(2)
    panel.show_image(first, "first")
    assert gate.started.wait(GATE_S)
    panel.show_image(second, "second")
    gate.open.set()
    qtbot.waitUntil(lambda: not panel.is_busy, timeout=int(GATE_S * 1000))
    assert gate.endings == ["stopped", "completed"]
    want = predict(Network(net.layers), second)
    assert np.array_equal(panel.probabilities, want.probabilities)
    assert "second: predicted" in panel.result.text()


def test_closing_mid_run_stops_the_forward_at_its_next_layer(qtbot, panel):
    gate = Gate()
    panel.set_network(GatedNetwork(_layers(), gate), ["a", "b", "c"])
    panel.show_image(_images(1)[0], "image")
    assert gate.started.wait(GATE_S)
    assert panel.shutdown()  # the gate stays shut: only the stop lets the forward go on
    qtbot.wait(10)  # its result (dropped) reaches the event loop
    assert gate.endings == ["stopped"]
    assert not panel.is_busy and panel.probabilities.size == 0


def _pictures(panel: PredictionPanel) -> list[bytes]:
    """Every picture and bar length on show, in a stable order."""
    items = panel.view.scene().items()
    shown = [i.image.tobytes() for i in items if isinstance(i, pg.ImageItem)]
    shown += [i.opts["width"].tobytes() for i in items if isinstance(i, pg.BarGraphItem)]
    return sorted(shown)


def test_the_next_image_shows_what_a_fresh_panel_shows(qtbot, panel):
    """The pictures of a second image are swapped into the plot items of the first:
    they must be those a panel drawing that image from scratch shows."""
    net = Network(_layers())
    panel.set_network(net, ["a", "b", "c"])
    panel.select_filter(0, 2)
    first, second = _images(2)
    for image in (first, second):
        panel.show_image(image)
        qtbot.waitUntil(lambda: not panel.is_busy, timeout=int(GATE_S * 1000))
    fresh = PredictionPanel()
    qtbot.addWidget(fresh)
    fresh.set_network(net, ["a", "b", "c"])
    fresh.select_filter(0, 2)
    fresh.show_image(second)
    # a new layout's plot items are made over event-loop turns (see prediction_view)
    qtbot.waitUntil(lambda: not fresh.is_busy, timeout=int(GATE_S * 1000))
    assert _pictures(panel) == _pictures(fresh) and len(_pictures(fresh)) == 4
    assert np.array_equal(panel.selected_map, fresh.selected_map)


def test_a_small_network_is_classified_at_once(qtbot):
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    net = Network(_layers())
    panel.set_network(net, ["a", "b", "c"])
    image = _images(1)[0]
    panel.show_image(image)  # classified before it returns (its plot items may still
    # be in the making over the next event-loop turns: see prediction_view)
    assert np.array_equal(panel.probabilities, predict(net, image).probabilities)
    assert "predicted" in panel.result.text()


# ----------------------------------------------------------------------------- Model tab
@dataclass
class _Model:
    graph: Graph
    preprocessing: Preprocessing
    source: Path = Path("gated.onnx")


def _graph(gate: Gate) -> GatedGraph:
    nodes = [Node(f"n{i}", layer, ("input" if i == 0 else f"n{i - 1}",)) for i, layer in
             enumerate(_layers())]  # fmt: skip
    return GatedGraph(nodes, gate)


def _pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (8, 8), dtype=np.uint8)


def test_model_tab_pictures_in_quick_succession_stop_the_older_forwards(qtbot):
    doc = GraphDocument()
    gate = Gate()
    pre = Preprocessing((1, 8, 8), colour="grey")
    doc.set_model(_Model(_graph(gate), pre))  # the sample picture's forward starts
    assert gate.started.wait(GATE_S)
    doc.set_image(_pixels(1), "one")
    doc.set_image(_pixels(2), "two")
    assert doc.busy and not doc.ready
    _event_loop_runs(qtbot)
    failures: list[str] = []
    doc.failed.connect(failures.append)
    gate.open.set()
    qtbot.waitUntil(lambda: doc.ready and not doc.busy, timeout=int(GATE_S * 1000))
    assert gate.endings == ["stopped", "stopped", "completed"] and failures == []
    vm = doc.view
    assert vm is not None and vm.input_name == "two"
    plain = Graph.forward(vm.graph, pre.apply(_pixels(2)))
    for name, tensor in plain.items():
        assert np.array_equal(vm.tensor(name), tensor[0])
    assert gate.threads and threading.get_ident() not in gate.threads
    doc.shutdown()


def test_model_tab_closing_mid_run_stops_the_forward(qtbot):
    doc = GraphDocument()
    gate = Gate()
    doc.set_model(_Model(_graph(gate), Preprocessing((1, 8, 8), colour="grey")))
    assert gate.started.wait(GATE_S)
    doc.shutdown()  # the gate stays shut: only the stop lets the forward go on
    qtbot.wait(10)
    assert gate.endings == ["stopped"] and not doc.ready
