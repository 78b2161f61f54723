"""The training benchmark builds identical engine and torch twins (same data, same initial
weights), trains on each call, and prints a complete report; it never asserts on timings
(speed is reported by ``python -m cnn_explorer.bench.training``, not tested)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from cnn_explorer.bench import process, timing
from cnn_explorer.bench import training as bench_training

HAS_TORCH = importlib.util.find_spec("torch") is not None


def _weights(case: timing.Case) -> list[np.ndarray]:
    trainer = case.engine_fn
    assert isinstance(trainer, bench_training.EngineTrainer)
    return [p.copy() for layer in trainer.net.layers for p in layer.params.values()]


def test_without_torch_the_case_is_engine_only_and_each_call_trains() -> None:
    case = bench_training.throughput_case(True, None)
    assert case.name == bench_training.CASE_NAME and case.torch_fn is None
    before = _weights(case)
    losses = case.engine_fn()
    assert isinstance(losses, list) and len(losses) == bench_training.QUICK_STEPS
    assert all(np.isfinite(loss) for loss in losses)
    after = _weights(case)
    assert len(after) == len(before) > 0
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    # the next call goes on with the next batches and the trained weights
    assert case.engine_fn() != losses
    full = bench_training.throughput_case(False, None).engine_fn()
    assert isinstance(full, list) and len(full) == bench_training.STEPS


def test_batches_are_consecutive_and_full() -> None:
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    y = np.arange(10)
    batches = bench_training._batches(x, y, 4)
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert all(b[0].shape == (4, 1, 1, 1) for b in batches)


@pytest.mark.torch
def test_engine_and_torch_twins_start_with_the_same_loss_on_the_same_batch() -> None:
    """The parent builds the engine side, the torch process its own case: both from the
    same seeded data and weights, else the ratio would compare different work."""
    torch = pytest.importorskip("torch")
    plain = bench_training.throughput_case(True, None)
    twins = bench_training.throughput_case(True, torch)
    assert twins.name == plain.name and twins.torch_fn is not None
    ours, same, theirs = plain.engine_fn(), twins.engine_fn(), twins.torch_fn()
    assert isinstance(ours, list) and isinstance(theirs, list)
    np.testing.assert_array_equal(same, ours)  # deterministic: the same data and weights
    np.testing.assert_allclose(theirs[0], ours[0], rtol=1e-5)  # before any update
    assert len(theirs) == len(ours) == bench_training.QUICK_STEPS


def test_a_torch_process_that_cannot_start_leaves_the_engine_numbers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # a lambda cannot be pickled to the child: start fails before any process exists
    with process.TorchWorker(quick=True, builders=[lambda quick, torch: None]) as worker:
        assert worker.error is not None
        assert bench_training.report_throughput(quick=True, worker=worker) is True
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("training throughput, default network")
    engine = [line for line in lines if line.strip().startswith("engine (NumPy")]
    assert len(engine) == 1 and float(engine[0].split()[-1]) > 0
    (torch_line,) = [line for line in lines if line.strip().startswith("torch")]
    assert "no numbers" in torch_line and "did not start" in torch_line
    assert not any(line.strip().startswith("ratio") for line in lines)


@pytest.mark.slow
def test_quick_run_prints_the_report_and_exits_by_the_verdict() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cnn_explorer.bench.training", "--skip-digits", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "error"},
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("training throughput, default network, 28×28 shapes, batch 32")
    assert f"{bench_training.QUICK_ROUNDS} alternating rounds" in lines[0]
    assert "malloc: " in lines[0]
    assert lines[1].strip().startswith("engine (NumPy") and float(lines[1].split()[-1]) > 0
    assert not any(line.startswith("!!") for line in lines), proc.stdout
    if not HAS_TORCH:
        assert "torch not installed" in lines[2] and proc.returncode == 0
        return
    assert lines[2].strip().startswith("torch ") and "own process, 2 threads" in lines[2]
    assert float(lines[2].split()[-1]) > 0
    ratio = lines[3]
    assert ratio.strip().startswith("ratio engine/torch: ") and "per-round ratios" in ratio
    assert "range " in ratio and "target ≥ 0.67: " in ratio, ratio
    met = ratio.endswith("met)") and not ratio.endswith("NOT met)")
    assert proc.returncode == (0 if met else 1), proc.stdout
    assert len(lines) == 4, proc.stdout  # digits skipped
