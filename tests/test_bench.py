"""The benchmark runs end to end and prints a complete table (never asserts on timings:
speed is reported by ``python -m cnn_explorer.bench``, not tested)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from cnn_explorer import bench

HAS_TORCH = importlib.util.find_spec("torch") is not None


def _case_names(quick: bool) -> list[str]:
    names = []
    for builder in bench.CASE_BUILDERS:
        built = builder(quick)
        cases = [] if built is None else built if isinstance(built, list) else [built]
        names += [case.name for case in cases]
    return names


def _ratio_cell(line: str, name: str) -> str:
    """The ratio column of a printed row: engine ms, torch ms, ratio, min, …"""
    return line[len(name) :].split()[2]


@pytest.mark.slow
def test_quick_bench_prints_every_case_with_a_ratio_column() -> None:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    proc = subprocess.run(
        [sys.executable, "-m", "cnn_explorer.bench", "--quick", "--repeat", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "OPENBLAS_THREAD_TIMEOUT=" in lines[0]  # what the app sets (cnn_explorer/__init__)
    header = lines[1].split()
    assert header[:1] == ["case"] and {"ratio", "spread", "target"} <= set(header)
    names = _case_names(quick=True)
    assert any(n.startswith("conv ") for n in names) and any("train step" in n for n in names)
    for name in names:
        rows = [line for line in lines if line.startswith(name + " ")]
        assert len(rows) == 1, f"no row for {name!r} in:\n{proc.stdout}"
        cell = _ratio_cell(rows[0], name)
        if HAS_TORCH:
            assert float(cell) > 0
        else:
            assert cell == "—"
    summary = lines[-1]
    assert "within target" in summary if HAS_TORCH else "torch is not installed" in summary


def test_run_in_process_filters_cases_and_returns_rows() -> None:
    rows = bench.run(quick=True, repeat=3, only="64×1×28²")
    names = [row["case"] for row in rows]
    assert names == [n for n in _case_names(quick=True) if "64×1×28²" in n]
    assert len(names) == 2  # conv alone and conv → ReLU → pool
    for row in rows:
        assert row["engine_ms"] > 0
        assert (row["ratio"] is not None) == HAS_TORCH
        assert (row["ratio_spread"] is not None) == HAS_TORCH
