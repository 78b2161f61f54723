"""The UI benchmark runs every scene, the largest one the UI allows included, and prints the
worst GUI-thread block of each (never asserts on timings: ``python -m cnn_explorer.bench.ui``
reports them)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cnn_explorer.bench import ui as bench_ui
from cnn_explorer.limits import MAX_FILTERS, MAX_INPUT_SIDE, MAX_KERNEL


def test_the_largest_scene_is_the_largest_the_ui_allows() -> None:
    x, layers = bench_ui._scenes()["max512"]()
    assert x.shape == (1, MAX_INPUT_SIDE, MAX_INPUT_SIDE)
    (conv,) = layers
    assert conv.weight is not None
    assert conv.weight.shape == (MAX_FILTERS, 1, MAX_KERNEL, MAX_KERNEL)
    assert bench_ui.SCENE_EDITS["max512"] == ("weights", "resize")


def test_the_heartbeat_sees_a_blocked_gui_thread(qapp: object) -> None:
    import time

    from PySide6.QtCore import QCoreApplication

    heartbeat = bench_ui.Heartbeat()
    heartbeat.start()
    heartbeat.phase = "blocked"
    time.sleep(0.05)  # the thread never visits its event loop meanwhile
    QCoreApplication.processEvents()
    heartbeat.phase = "idle"
    worst = heartbeat.stop()
    assert worst >= 50 and heartbeat.worst_during == "blocked"


@pytest.mark.slow
def test_quick_run_prints_every_scene_with_its_worst_block() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONWARNINGS": "error"}
    proc = subprocess.run(
        [sys.executable, "-m", "cnn_explorer.bench.ui", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr  # --quick gives no verdicts
    lines = proc.stdout.splitlines()
    header = lines[0].split()
    assert header[0] == "scene" and "p95" in header and "block" in header, lines[0]
    for name in bench_ui._scenes():
        (row,) = [line for line in lines if line.startswith(name + " ")]
        cells = row.split()
        p50, p95, worst = float(cells[1]), float(cells[2]), float(cells[6])
        assert 0 < p50 <= p95 and worst > 0, row
        edits = bench_ui.QUICK_EDITS if name not in bench_ui.SCENE_EDITS else 2
        assert cells[-2] == str(edits), row
    (big,) = [line for line in lines if line.startswith("max512 ")]
    assert big.split()[-1] == "resize/weights", big  # both edits were timed
    assert any(line.startswith("cold_start ") for line in lines), proc.stdout
    assert lines[-1].startswith("worst block = longest gap between beats"), lines[-1]
