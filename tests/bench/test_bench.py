"""The benchmark runs end to end and prints a complete table (never asserts on timings:
speed is reported by ``python -m cnn_explorer.bench``, not tested), times torch in its own
process without ever importing torch into this one, survives that process failing, and
times the engine with the OpenBLAS overrides unset when the environment sets them."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import sys
import textwrap
import threading
from functools import partial
from typing import Any

import numpy as np
import pytest

from cnn_explorer.bench import ops as bench
from cnn_explorer.bench import process, timing

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs torch for the torch process")


def _case_names(quick: bool) -> list[str]:
    return [case.name for case in bench.build_cases(quick, None, bench.CASE_BUILDERS)]


def _ratio_cell(line: str, name: str) -> str:
    """The ratio column of a printed row: engine ms, torch ms, ratio, min, …"""
    return line[len(name) :].split()[2]


def _unset_cells(line: str) -> list[str]:
    """The 'unset ms' and 'unset ratio' columns of a printed row (its last columns, but
    for the unset verdict, which only rows with a ratio and a target have)."""
    cells = line.split()
    return cells[-3:-1] if cells[-1] in ("pass", "FAIL") else cells[-2:]


def _without_overrides() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in timing.BLAS_OVERRIDES}


def _kernel_in(env: dict[str, str]) -> str:
    """The kernel a fresh interpreter's OpenBLAS picks in ``env``."""
    code = "from cnn_explorer.bench.timing import blas_kernel; print(blas_kernel())"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


#: An OpenBLAS core every CPU of this architecture runs (older than any it has).
OLD_CORE = {"x86_64": "Prescott", "AMD64": "Prescott", "aarch64": "ARMV8"}.get(platform.machine())


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
    assert "BLAS: " in lines[0] and "threads" in lines[0]
    if HAS_TORCH:
        version = importlib.metadata.version("torch").split("+")[0]
        assert f"torch {version}" in lines[0] and "own process" in lines[0], lines[0]
    assert lines[1].startswith("OpenBLAS kernel: ")
    header = lines[2].split()
    assert header[:1] == ["case"] and {"ratio", "spread", "target"} <= set(header)
    # this environment as it is: a second engine column only when it sets an override
    assert ("unset" in header) == bool(timing.blas_overrides()), lines[:3]
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
    assert not any(line.startswith("!!") for line in lines), proc.stdout
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


@pytest.mark.slow
def test_benchmarking_never_imports_torch_into_this_process() -> None:
    """torch slows NumPy's OpenBLAS ~3× once it ran in the same process: the whole point
    of the torch process. (A torch object in a reply would import torch on unpickling.)"""
    code = textwrap.dedent(
        """
        import sys
        from cnn_explorer.bench import ops as bench
        rows = bench.run(quick=True, repeat=3, only="64×1×28²")
        print("RATIOS", [row["ratio"] is not None for row in rows])
        print("TORCH_IMPORTED", "torch" in sys.modules)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "TORCH_IMPORTED False" in proc.stdout, proc.stdout
    assert f"RATIOS {[HAS_TORCH, HAS_TORCH]}" in proc.stdout, proc.stdout  # torch did run


def test_builders_without_torch_build_engine_only_cases_with_unique_names() -> None:
    for quick in (True, False):
        cases = bench.build_cases(quick, None, bench.CASE_BUILDERS)
        assert cases and all(case.torch_fn is None for case in cases)
        names = [case.name for case in cases]
        assert len(set(names)) == len(names), names  # the torch process matches by name
    assert len(_case_names(quick=True)) < len(_case_names(quick=False))  # quick skips 1024²


@pytest.mark.torch
def test_torch_twins_compute_the_same_thing_on_the_same_data() -> None:
    """Each process builds its own cases: the seeded data must be identical, and each
    torch_fn must compute what its engine_fn computes (else the ratio compares apples
    with pears)."""
    torch = pytest.importorskip("torch")
    plain = {c.name: c for c in bench.build_cases(True, None, bench.CASE_BUILDERS)}
    twins = {c.name: c for c in bench.build_cases(True, torch, bench.CASE_BUILDERS)}
    assert plain.keys() == twins.keys()
    assert all(case.torch_fn is not None for case in twins.values())
    for name, case in twins.items():
        assert case.torch_fn is not None
        ours, same_data, theirs = plain[name].engine_fn(), case.engine_fn(), case.torch_fn()
        # (the train step returns the loss before its update: the twins start equal)
        np.testing.assert_allclose(same_data, ours, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(
            np.asarray(theirs.detach().numpy()), ours, rtol=1e-4, atol=1e-4, err_msg=name
        )


def test_header_names_versions_and_blas_threads_without_torch() -> None:
    line = bench.header("median", 15, None)
    assert f"numpy {np.__version__}" in line and "torch not installed" in line
    assert "OPENBLAS_THREAD_TIMEOUT=" in line and "threads" in line


def test_without_torch_the_cli_prints_engine_times_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(process, "torch_installed", lambda: False)
    name = "conv 64×1×28² → 8@5×5"
    assert bench.main(["--quick", "--repeat", "3", "--only", name, "--as-is"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "torch not installed" in lines[0] and "OPENBLAS_THREAD_TIMEOUT=" in lines[0]
    (row,) = [line for line in lines if line.startswith(name + " ")]
    assert _ratio_cell(row, name) == "—"
    assert "torch is not installed" in lines[-1]


def test_a_worker_that_cannot_start_leaves_the_engine_numbers() -> None:
    # a lambda cannot be pickled to the child: start fails before any process exists
    with process.TorchWorker(quick=True, builders=[lambda quick, torch: None]) as worker:
        assert worker.error is not None and "did not start" in worker.error
        assert not worker.alive and not worker.has("anything")
        assert "unavailable" in bench.header("median", 15, worker)
        rows = bench.run(quick=True, repeat=3, only="64×1×28² → 8@5×5", worker=worker)
    assert rows and all(row["engine_ms"] > 0 and row["torch_ms"] is None for row in rows)


# --------------------------------------------------------------------------- failing torch
# Builders must be module-level functions: they are pickled by reference to the child.


def _noop() -> None:
    return None


def _raise() -> None:
    raise ValueError("torch_fn broke")


def _hang() -> None:
    threading.Event().wait()


def _failing_builder(quick: bool, torch: Any | None) -> list[timing.Case]:
    """raises (case error) → ok → dies (process exits with code 3) → after."""
    fns = {"raises": _raise, "ok": _noop, "dies": partial(os._exit, 3), "after": _noop}
    return [
        timing.Case(f"test {name}", 2.0, _noop, fn if torch is not None else None)
        for name, fn in fns.items()
    ]


def _hanging_builder(quick: bool, torch: Any | None) -> timing.Case:
    return timing.Case("test hangs", None, _noop, _hang if torch is not None else None)


def _broken_builder(quick: bool, torch: Any | None) -> timing.Case:
    if torch is not None:
        raise RuntimeError("builder broke in the torch process")
    return timing.Case("test broken", None, _noop)


@needs_torch
@pytest.mark.slow
def test_torch_failures_are_reported_and_engine_numbers_kept(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    builders: list[timing.CaseBuilder] = [_failing_builder]
    with process.TorchWorker(quick=True, builders=builders) as worker:
        assert worker.error is None and worker.alive
        assert worker.case_names == ["test raises", "test ok", "test dies", "test after"]
        run = bench.run(quick=True, repeat=3, worker=worker, unset=False, builders=builders)
        rows = {row["case"]: row for row in run}
        assert worker.error is not None and "exit code 3" in worker.error
        assert not worker.alive  # ended as soon as it was found dead
    out = capsys.readouterr().out
    assert "torch failed while timing 'test raises': ValueError: torch_fn broke" in out
    assert "torch process died while timing 'test dies' (exit code 3)" in out
    assert "torch columns are empty from here on" in out
    assert list(rows) == ["test raises", "test ok", "test dies", "test after"]
    assert all(row["engine_ms"] > 0 for row in rows.values())
    assert rows["test ok"]["ratio"] is not None  # a failing case does not stop the process
    assert all(rows[n]["ratio"] is None for n in ("test raises", "test dies", "test after"))


@needs_torch
@pytest.mark.slow
def test_a_hung_torch_process_times_out_and_is_ended(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with process.TorchWorker(quick=True, builders=[_hanging_builder], timeout=1.0) as worker:
        assert worker.has("test hangs")
        engine, torch = timing.time_case(_hanging_builder(True, None), 3, worker=worker)
        assert not worker.alive
    assert len(engine) == timing.ROUNDS and torch == []
    assert "did not answer within 1 s" in capsys.readouterr().out


@needs_torch
@pytest.mark.slow
def test_a_builder_failing_in_the_torch_process_disables_torch_only() -> None:
    with process.TorchWorker(quick=True, builders=[_broken_builder]) as worker:
        assert worker.error is not None and "failed while starting" in worker.error
        assert "builder broke in the torch process" in worker.error
        assert not worker.alive and worker.case_names == []


def _environment_builder(quick: bool, torch: Any | None) -> timing.Case:
    """Names its case after the malloc setting the process it runs in was started with."""
    value = os.environ.get("MALLOC_TOP_PAD_", "unset")
    return timing.Case(f"env {value}", None, _noop, _noop if torch is not None else None)


@needs_torch
@pytest.mark.slow
def test_the_torch_process_starts_with_the_warm_heap_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fresh torch process would page-fault every new output (a 7× slower conv):
    both sides get the same malloc settings, and this process's environment is left as
    it was."""
    monkeypatch.delenv("MALLOC_TOP_PAD_", raising=False)
    with process.TorchWorker(quick=True, builders=[_environment_builder]) as worker:
        assert worker.case_names == [f"env {timing.WARM_HEAP['MALLOC_TOP_PAD_']}"]
    assert "MALLOC_TOP_PAD_" not in os.environ
    if sys.platform.startswith("linux"):
        assert timing.warm_heap()  # and the same settings here, through mallopt


# --------------------------------------------------------------------------- OpenBLAS overrides


def _blas_env_builder(quick: bool, torch: Any | None) -> timing.Case:
    """Names its case after the OpenBLAS overrides of the process it runs in."""
    values = [os.environ.get(k, "unset") for k in timing.BLAS_OVERRIDES]
    return timing.Case(f"blas {' '.join(values)}", None, _noop)


def test_the_engine_process_runs_without_the_openblas_overrides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine as a user's machine runs it: a fresh process whose OpenBLAS picked its
    kernel with neither variable set; this process's environment is left as it was."""
    if OLD_CORE is None:
        pytest.skip(f"no known old OpenBLAS core for {platform.machine()}")
    monkeypatch.setenv("OPENBLAS_CORETYPE", OLD_CORE)
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "262144")
    with process.EngineWorker(quick=True, builders=[_blas_env_builder]) as worker:
        assert worker.error is None, worker.error
        assert worker.case_names == ["blas unset unset"]
        assert worker.kernel == _kernel_in(_without_overrides())
        assert worker.blas is not None and "threads" in worker.blas
    assert os.environ["OPENBLAS_CORETYPE"] == OLD_CORE
    assert os.environ["OPENBLAS_L2_SIZE"] == "262144"


@pytest.mark.slow
def test_run_can_time_the_engine_with_the_overrides_unset() -> None:
    rows = bench.run(quick=True, repeat=3, only="conv 64×1×28² → 8@5×5", unset=True)
    assert [row["case"] for row in rows] == ["conv 64×1×28² → 8@5×5"]
    (row,) = rows
    assert row["unset"] and row["unset_engine_ms"] > 0
    assert (row["unset_ratio"] is not None) == HAS_TORCH


@pytest.mark.slow
def test_quick_bench_with_an_override_prints_both_ratios_and_both_kernels() -> None:
    if OLD_CORE is None:
        pytest.skip(f"no known old OpenBLAS core for {platform.machine()}")
    forced = {**_without_overrides(), "OPENBLAS_CORETYPE": OLD_CORE}
    only = "64×1×28²"
    proc = subprocess.run(
        [sys.executable, "-m", "cnn_explorer.bench", "--quick", "--repeat", "3", "--only", only],
        capture_output=True,
        text=True,
        timeout=300,
        env={**forced, "PYTHONWARNINGS": "error"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    as_is, unset = _kernel_in(forced), _kernel_in(_without_overrides())
    kernels = lines[1]
    assert kernels.startswith(f"OpenBLAS kernel: {as_is} as is (OPENBLAS_CORETYPE={OLD_CORE})")
    assert f"; {unset} with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset" in kernels, kernels
    header = lines[2].split()
    assert header[:1] == ["case"] and header.count("ratio") == 2 and "unset" in header
    names = [n for n in _case_names(quick=True) if only in n]
    assert len(names) == 2
    for name in names:
        (row,) = [line for line in lines if line.startswith(name + " ")]
        unset_ms, unset_ratio = _unset_cells(row)
        assert float(unset_ms) > 0, row
        if HAS_TORCH:
            assert float(_ratio_cell(row, name)) > 0 and float(unset_ratio) > 0, row
        else:
            assert unset_ratio == "—", row
    assert not any(line.startswith("!!") for line in lines), proc.stdout
    if HAS_TORCH:
        assert lines[-1].endswith("with the OpenBLAS overrides unset)"), lines[-1]
