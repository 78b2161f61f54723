"""Edit-to-repaint latency of the explorer (``python -m cnn_explorer.bench.ui``).

For each scene the main window is shown (offscreen when there is no display), then ≥ 50
single-cell input edits are made the way the grid editor makes them. Each measurement runs
from the edit call until the recompute has been published *and* the feature-map view and
the input grid have repainted synchronously. Reports p50/p95/max per scene and the cold
start (process start → window shown) measured in a fresh interpreter.

Targets (p95): worked example ≤ 16 ms; 28×28 conv(8)-ReLU-pool-conv(16)-ReLU-pool ≤ 16 ms;
256×256 RGB with 3 conv(8)+ReLU ≤ 16 ms; 512×512 with 32 maps of 512² ≤ 33 ms; cold
start ≤ 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

TARGETS_MS = {"worked": 16.0, "mnist": 16.0, "rgb256": 16.0, "big512": 33.0, "cold_start": 1500.0}


def _scenes() -> dict[str, Callable[[], tuple[np.ndarray, list]]]:
    from cnn_explorer.explorer import presets
    from cnn_explorer.explorer.specs import act_spec, conv_spec, pool_spec, worked_example_layers

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

    return {"worked": worked, "mnist": mnist, "rgb256": rgb256, "big512": big512}


def measure_scene(
    name: str, edits: int = 60, full_repaint: bool = False, what: str = "input"
) -> list[float]:
    """Latencies (ms) of ``edits`` single-cell edits in scene ``name``.

    ``what`` is "input" (a grid cell) or "weight" (a kernel weight of the first conv
    layer, which recomputes every later map). ``full_repaint`` additionally forces a
    synchronous repaint of the whole visible feature-map view and input grid (a pessimistic
    bound)."""
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from cnn_explorer.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    x, layers = _scenes()[name]()
    win = MainWindow(restore_state=False)
    win.resize(1440, 900)
    win.show()
    doc = win.doc
    doc.apply_document(x, layers)
    doc.recompute_now()
    doc.wait_idle()
    app.processEvents()
    win.maps.relayout()
    app.processEvents()
    _, h, w = doc.input.shape
    rng = np.random.default_rng(1)
    times = []
    painted = _PaintCounter()
    win.maps.view.viewport().installEventFilter(painted)
    for i in range(edits + 3):
        r, c = int(rng.integers(h)), int(rng.integers(w))
        gen = doc.model.generation
        t0 = time.perf_counter()
        if what == "input":
            doc.set_cell(0, r, c, float(doc.input[0, r, c]) + 1.0)
        else:  # a kernel weight of the first conv: everything downstream recomputes
            wv = float(doc.layers[0].weight[0, 0, 0, 0])
            doc.set_weight(0, 0, 0, 0, 0, wv + 0.125)
        # Sleep in the event loop like the real app does (a busy-polling loop would steal
        # a core from the compute thread and inflate the numbers).
        while doc.results.generation <= gen or doc.model.pending:
            app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
        # Flush the repaints Qt scheduled (only the regions that changed are painted).
        app.sendPostedEvents()
        app.processEvents()
        if full_repaint:
            win.maps.view.viewport().repaint()
            win.grid.table.viewport().repaint()
        dt = (time.perf_counter() - t0) * 1000
        if i >= 3:  # warm-up
            times.append(dt)
    if painted.count < edits:
        print(f"warning: {name}: the map view repainted {painted.count} times for {edits} edits")
    doc.undo_stack.setClean()
    win.close()
    return times


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


def _PaintCounter() -> object:
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--edits", type=int, default=60)
    p.add_argument("--scene", action="append", help="scene(s) to run (default: all)")
    p.add_argument("--full-repaint", action="store_true", help="force full synchronous repaints")
    p.add_argument(
        "--edit", choices=("input", "weight"), default="input", help="what each edit changes"
    )
    args = p.parse_args(argv)
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    names = args.scene or list(_scenes())
    print(f"{'scene':<12}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'target':>9}  ok")
    ok_all = True
    for name in names:
        t = np.array(measure_scene(name, args.edits, args.full_repaint, args.edit))
        p50, p95, mx = np.percentile(t, 50), np.percentile(t, 95), t.max()
        ok = p95 <= TARGETS_MS[name]
        ok_all &= bool(ok)
        verdict = "yes" if ok else "NO"
        print(f"{name:<12}{p50:9.1f}{p95:9.1f}{mx:9.1f}{TARGETS_MS[name]:9.0f}  {verdict}")
    if not args.scene and args.edit == "input" and not args.full_repaint:
        cs = cold_start() * 1000
        ok = cs <= TARGETS_MS["cold_start"]
        ok_all &= ok
        verdict = "yes" if ok else "NO"
        target = TARGETS_MS["cold_start"]
        print(f"{'cold_start':<12}{cs:9.0f}{'':>9}{'':>9}{target:9.0f}  {verdict}")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
