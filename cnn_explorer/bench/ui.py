"""Edit-to-repaint latency of the explorer (``python -m cnn_explorer.bench.ui``).

For each scene the main window is shown (offscreen when there is no display), then ≥ 50
single-cell input edits are made the way the grid editor makes them. Each measurement runs
from the edit call until the recompute has been published *and* the feature-map view and
the input grid have repainted synchronously. Reports p50/p95/max per scene and the cold
start (process start → window shown) measured in a fresh interpreter.

Worst GUI-thread block: while a scene's edits run (warm-up edits included, then until the
results are final), a 1 ms precise timer beats on the GUI thread; the longest gap between
two beats is the longest the GUI thread went without getting back to its event loop
(an edit's synchronous work, publishing results, a repaint, a scene rebuild), to about
1 ms. In the real app input waits that long: ≤ 16 ms keeps up with a 60 Hz screen, and
beyond about 100 ms an app feels stuck. The timer sleeps between beats, so it costs the
compute thread almost nothing (a 0 ms timer would keep a core busy).

Opening block: the same timer beats while the scene's document replaces the worked example
(as opening a project does) until its maps are built, placed and painted; the longest gap
is reported as "open block". ``photo32`` (a 64×96 RGB photo, conv of 32 filters, ReLU,
max pool: ~100 tiles) is the project with many maps.

The ``max512`` scene is the largest the UI allows (a 512×512 input, one conv of 64 filters
15×15, padding "same"); its edits alternate "Random weights" on that conv (what the kernel
editor's button does) and a resize of the input (512² ↔ 500²), each rebuilding every map.

Animation step (rows ``anim_worked``, ``anim_mnist``): the sliding-window panel opened on
the first conv of the worked example and of the 28×28 scene, then ≥ 50 steps tap by tap
(every few steps one crosses to the next output cell, which goes through the document's
selection and so repaints the maps and the explanation too). Each is timed from the step
until its events are processed, the repaints Qt scheduled included.

Compare-mode edit (rows ``compare_worked``, ``compare_mnist``): compare mode entered on
the worked example and on the 28×28 scene, then ≥ 50 edits of a kernel weight of B's first
conv, each timed until B's results are published and the A | B | B − A view has repainted.

Targets (p95): worked example ≤ 16 ms; animation step ≤ 16 ms; compare-mode edit ≤ 16 ms;
28×28 conv(8)-ReLU-pool-conv(16)-ReLU-pool ≤ 16 ms; 256×256 RGB with 3 conv(8)+ReLU
≤ 16 ms; 512×512 with 32 maps of 512² ≤ 33 ms; cold start ≤ 1.5 s.
``max512`` and the blocks are reported without a target.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TARGETS_MS: dict[str, float | None] = {
    "worked": 16.0,
    "mnist": 16.0,
    "rgb256": 16.0,
    "big512": 33.0,
    "max512": None,
    "photo32": 16.0,
    "anim_worked": 16.0,
    "anim_mnist": 16.0,
    "compare_worked": 16.0,
    "compare_mnist": 16.0,
    "cold_start": 1500.0,
}
#: Animation rows → the scene whose first conv the sliding window animates.
ANIMATION_SCENES = {"anim_worked": "worked", "anim_mnist": "mnist"}
#: Compare-mode rows → the scene whose B (compare mode's edited copy) is edited.
COMPARE_SCENES = {"compare_worked": "worked", "compare_mnist": "mnist"}
#: Scenes whose edits are fixed (cycled in this order) instead of ``--edit``'s.
SCENE_EDITS = {"max512": ("weights", "resize")}
HEAVY_EDITS = 8  # at most this many edits (plus one warm-up) in the scenes of SCENE_EDITS
QUICK_EDITS = 5  # --quick: edits per scene (2 in the heavy ones)
HEARTBEAT_MS = 1


def _scenes() -> dict[str, Callable[[], tuple[np.ndarray, list]]]:
    from cnn_explorer.explorer import presets
    from cnn_explorer.explorer.specs import act_spec, conv_spec, pool_spec, worked_example_layers
    from cnn_explorer.limits import MAX_FILTERS, MAX_INPUT_SIDE, MAX_KERNEL

    rng = np.random.default_rng(0)

    def worked() -> tuple[np.ndarray, list]:
        return presets.WORKED_EXAMPLE[None], worked_example_layers()

    def mnist() -> tuple[np.ndarray, list]:
        x = rng.random((1, 28, 28), dtype=np.float32)
        return x, [
            conv_spec(1, 8, (3, 3), padding="same", seed=1),
            act_spec("relu"),
            pool_spec("maxpool", 2, 2),
            conv_spec(8, 16, (3, 3), padding="same", seed=2),
            act_spec("relu"),
            pool_spec("maxpool", 2, 2),
        ]

    def rgb256() -> tuple[np.ndarray, list]:
        x = rng.random((3, 256, 256), dtype=np.float32)
        return x, [
            conv_spec(3, 8, (3, 3), padding="same", seed=1),
            act_spec("relu"),
            conv_spec(8, 8, (3, 3), padding="same", seed=2),
            act_spec("relu"),
            conv_spec(8, 8, (3, 3), padding="same", seed=3),
            act_spec("relu"),
        ]

    def big512() -> tuple[np.ndarray, list]:
        x = rng.random((1, 512, 512), dtype=np.float32)
        return x, [conv_spec(1, 32, (3, 3), padding="same", seed=1)]

    def max512() -> tuple[np.ndarray, list]:
        side, k = MAX_INPUT_SIDE, MAX_KERNEL
        x = rng.random((1, side, side), dtype=np.float32)
        return x, [conv_spec(1, MAX_FILTERS, (k, k), padding="same", seed=1)]

    def photo32() -> tuple[np.ndarray, list]:
        x = rng.random((3, 64, 96), dtype=np.float32)
        return x, [
            conv_spec(3, 32, (3, 3), padding=1, seed=3),
            act_spec("relu"),
            pool_spec("maxpool", 2, 2),
        ]

    return {
        "worked": worked,
        "mnist": mnist,
        "rgb256": rgb256,
        "big512": big512,
        "max512": max512,
        "photo32": photo32,
    }


@dataclass
class SceneResult:
    """Latencies of the timed edits (ms) and the worst GUI-thread block (ms)."""

    times: list[float]
    worst_block_ms: float
    worst_during: str  # the edit (kind #index, 0 = first warm-up edit) or "settling"
    edits: list[str] = field(default_factory=list)  # the kinds of edit made
    open_block_ms: float = 0.0  # the worst block while the document opened


class Heartbeat:
    """A precise timer beating every :data:`HEARTBEAT_MS` on the GUI thread; ``worst_ms``
    is the longest gap between two beats (or between :meth:`start` and the first, the
    last and :meth:`stop`): how long the thread went without visiting its event loop.
    ``worst_during`` is what ``phase`` said when that gap ended."""

    def __init__(self, interval_ms: int = HEARTBEAT_MS) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.worst_ms = 0.0
        self.phase = ""
        self.worst_during = ""
        self._last = 0.0
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._beat)

    def start(self) -> None:
        self.worst_ms = 0.0
        self._last = time.perf_counter()
        self._timer.start()

    def _beat(self) -> None:
        now = time.perf_counter()
        gap = (now - self._last) * 1e3
        if gap > self.worst_ms:
            self.worst_ms, self.worst_during = gap, self.phase
        self._last = now

    def stop(self) -> float:
        self._beat()
        self._timer.stop()
        return self.worst_ms


def _edit(doc: Any, kind: str, i: int, rng: np.random.Generator) -> None:
    """Make one edit of ``kind`` the way the widgets make it."""
    from cnn_explorer.explorer import presets

    _, h, w = doc.input.shape
    if kind == "input":  # a grid cell
        r, c = int(rng.integers(h)), int(rng.integers(w))
        doc.set_cell(0, r, c, float(doc.input[0, r, c]) + 1.0)
    elif kind == "weight":  # a kernel weight of the first conv: everything downstream
        wv = float(doc.layers[0].weight[0, 0, 0, 0])
        doc.set_weight(0, 0, 0, 0, 0, wv + 0.125)
    elif kind == "weights":  # the kernel editor's "Random weights" on the first conv
        seed = 100 + i
        shape = doc.layers[0].weight.shape
        doc.set_weights(0, presets.random_kernel(shape, seed), f"Random weights (seed {seed})")
    elif kind == "resize":  # the grid editor's size spin boxes: 512² ↔ 500²
        side = 500 if h == 512 else 512
        doc.resize_input(side, side)
    else:
        raise ValueError(f"unknown edit {kind!r}")


# One long function on purpose: the window, the heartbeat and the edit loop share the
# timing state, and reading the measurement top to bottom is how it gets checked.
def measure_scene(
    name: str, edits: int = 60, full_repaint: bool = False, what: str = "input"
) -> SceneResult:
    """Latencies (ms) of ``edits`` edits in scene ``name`` and the worst GUI-thread block.

    ``what`` is "input" (a grid cell), "weight" (a kernel weight of the first conv
    layer, which recomputes every later map) or "compare" (compare mode on, the same
    weight edit made to B); scenes of :data:`SCENE_EDITS` cycle their own edits.
    ``full_repaint`` additionally forces a synchronous repaint of the whole visible map
    view and input grid (a pessimistic bound)."""
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from cnn_explorer.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    x, layers = _scenes()[name]()
    kinds = SCENE_EDITS.get(name, ("weight",) if what == "compare" else (what,))
    warmup = 1 if name in SCENE_EDITS else 3
    win = MainWindow(restore_state=False)
    win.resize(1440, 900)
    win.show()
    doc = win.doc
    app.processEvents()
    opening = Heartbeat()
    opening.start()
    doc.apply_document(x, layers)
    deadline = time.monotonic() + 30
    while not doc.settled and time.monotonic() < deadline:
        app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)
    for _ in range(20):  # work spread over later event-loop turns (tiles made in slices)
        app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 5)
    app.sendPostedEvents()
    app.processEvents()
    open_block = opening.stop()
    win.maps.relayout()
    app.processEvents()
    shown = win.maps.view
    if what == "compare":  # edits go to B; the compare view repaints
        win.compare.toggle_action.trigger()
        doc = win.compare.b
        shown = win.compare.view.view
        app.processEvents()
    rng = np.random.default_rng(1)
    times = []
    made = []
    painted = _PaintCounter()
    shown.viewport().installEventFilter(painted)
    wait = QEventLoop.ProcessEventsFlag.WaitForMoreEvents
    heartbeat = Heartbeat()
    heartbeat.start()
    for i in range(edits + warmup):
        kind = kinds[i % len(kinds)]
        heartbeat.phase = f"{kind} #{i}"
        gen = doc.model.generation
        t0 = time.perf_counter()
        _edit(doc, kind, i, rng)
        # Sleep in the event loop like the real app does (a busy-polling loop would steal
        # a core from the compute thread and inflate the numbers).
        while doc.results.generation <= gen or doc.model.pending:
            app.processEvents(wait)
        # Flush the repaints Qt scheduled (only the regions that changed are painted).
        app.sendPostedEvents()
        app.processEvents()
        if full_repaint:
            shown.viewport().repaint()
            win.grid.table.viewport().repaint()
        dt = (time.perf_counter() - t0) * 1000
        if i >= warmup:
            times.append(dt)
            made.append(kind)
    # the work an edit leaves for later (the exact recompute once edits pause) counts too
    heartbeat.phase = "settling"
    deadline = time.monotonic() + 30
    while not doc.settled and time.monotonic() < deadline:
        app.processEvents(wait, 50)
    app.sendPostedEvents()
    app.processEvents()
    worst = heartbeat.stop()
    if painted.count < edits:
        print(f"warning: {name}: the map view repainted {painted.count} times for {edits} edits")
    win.doc.undo_stack.setClean()
    win.close()
    return SceneResult(times, worst, heartbeat.worst_during, made, open_block)


def measure_animation(name: str, steps: int = 60) -> SceneResult:
    """Latencies (ms) of ``steps`` sliding-window steps (tap by tap) on the first conv of
    scene ``ANIMATION_SCENES[name]``, each until the panel has repainted."""
    from PySide6.QtWidgets import QApplication

    from cnn_explorer.explorer.explain import Selection
    from cnn_explorer.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    x, layers = _scenes()[ANIMATION_SCENES[name]]()
    win = MainWindow(restore_state=False)
    win.resize(1440, 900)
    win.show()
    doc = win.doc
    doc.apply_document(x, layers)
    doc.recompute_now()
    app.processEvents()
    win.show_sliding_window()
    doc.select_cell(Selection(1, 0, 0, 0))
    app.processEvents()
    view = win.sliding
    painted = _PaintCounter()
    view.canvas.viewport().installEventFilter(painted)
    heartbeat = Heartbeat()
    heartbeat.start()
    times: list[float] = []
    for i in range(steps + 3):
        heartbeat.phase = f"step #{i}"
        t0 = time.perf_counter()
        if not view.step_forward():
            doc.select_cell(Selection(1, 0, 0, 0))
        app.sendPostedEvents()  # the repaints Qt scheduled: only what changed is painted
        app.processEvents()
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1000)
    worst = heartbeat.stop()
    if painted.count < steps:
        print(f"warning: {name}: the panel repainted {painted.count} times for {steps} steps")
    doc.undo_stack.setClean()
    win.close()
    return SceneResult(times, worst, heartbeat.worst_during, ["step"] * len(times))


def _paint_counter_class() -> type:
    from PySide6.QtCore import QEvent, QObject

    class PaintCounter(QObject):
        """Counts paint events of the widget it filters (proof that a repaint happened)."""

        count = 0

        def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
            if ev.type() == QEvent.Type.Paint:
                self.count += 1
            return False

    return PaintCounter


def _PaintCounter() -> Any:
    return _paint_counter_class()()


def cold_start() -> float:
    """Seconds from process start to the window shown, in a fresh interpreter."""
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cnn_explorer", "--quit-after-show"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # Wall time of the whole process (interpreter start → window shown → exit): an upper
    # bound of what the user waits for.
    return time.perf_counter() - t0


def _edit_count(name: str, edits: int, quick: bool) -> int:
    if name in SCENE_EDITS:
        return 2 if quick else min(edits, HEAVY_EDITS)
    return QUICK_EDITS if quick else edits


# Long because it is the whole report: arguments, one row per scene (edits or animation
# steps), the cold start and the footnote, printed in the order they are read.
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--edits", type=int, default=60)
    p.add_argument("--scene", action="append", help="scene(s) to run (default: all)")
    p.add_argument("--full-repaint", action="store_true", help="force full synchronous repaints")
    p.add_argument(
        "--edit", choices=("input", "weight"), default="input", help="what each edit changes"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {QUICK_EDITS} edits per scene (2 in max512), no target verdicts",
    )
    args = p.parse_args(argv)
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    names = args.scene or [*_scenes(), *ANIMATION_SCENES, *COMPARE_SCENES]
    print(
        f"{'scene':<16}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'target':>9}  ok"
        f"{'worst block ms':>16}  {'during':<12}{'open block ms':>15}  edits"
    )
    ok_all = True
    for name in names:
        if name in ANIMATION_SCENES:
            r = measure_animation(name, QUICK_EDITS if args.quick else args.edits)
        elif name in COMPARE_SCENES:
            edits = QUICK_EDITS if args.quick else args.edits
            r = measure_scene(COMPARE_SCENES[name], edits, args.full_repaint, "compare")
        else:
            r = measure_scene(
                name, _edit_count(name, args.edits, args.quick), args.full_repaint, args.edit
            )
        t = np.array(r.times)
        p50, p95, mx = np.percentile(t, 50), np.percentile(t, 95), t.max()
        target = TARGETS_MS[name]
        verdict = "—"
        if target is not None and not args.quick:
            ok = bool(p95 <= target)
            ok_all &= ok
            verdict = "yes" if ok else "NO"
        shown = "—" if target is None else f"{target:.0f}"
        kinds = "/".join(dict.fromkeys(r.edits))
        print(
            f"{name:<16}{p50:9.1f}{p95:9.1f}{mx:9.1f}{shown:>9}  {verdict:<3}"
            f"{r.worst_block_ms:15.1f}  {r.worst_during:<12}{r.open_block_ms:15.1f}"
            f"  {len(r.times)} {kinds}",
            flush=True,
        )
    if not args.scene and args.edit == "input" and not args.full_repaint:
        cs = cold_start() * 1000
        target = TARGETS_MS["cold_start"]
        assert target is not None
        verdict = "—"
        if not args.quick:
            ok = cs <= target
            ok_all &= ok
            verdict = "yes" if ok else "NO"
        print(f"{'cold_start':<16}{cs:9.0f}{'':>9}{'':>9}{target:9.0f}  {verdict}")
    print(
        f"worst block = longest gap between beats of a {HEARTBEAT_MS} ms timer on the GUI "
        "thread during the scene's edits (warm-up included, #0 is the first) until its "
        "results were final ('settling': after the last edit); open block = the same "
        "while the scene's document opened"
    )
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
