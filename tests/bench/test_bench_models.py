"""The whole-model benchmark builds VGG-11 and ResNet-18 from the interchange's templates,
gives torch and onnxruntime the engine's very weights (each in its own process, never
imported into this one), checks that the three outputs agree and prints a complete table.
It never asserts on timings: speed is reported by ``python -m cnn_explorer.bench.models``,
not tested."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cnn_explorer.bench import models, process, timing
from cnn_explorer.interchange.state_dict_templates import match, resnet, vgg

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_ORT = importlib.util.find_spec("onnxruntime") is not None


def _quick_cases(torch: object = None) -> list[timing.Case]:
    return timing.build_cases(True, torch, models.MODEL_BUILDERS)


def _cells(line: str, name: str) -> list[str]:
    """A printed row's cells after the case name: engine, torch, ort, ÷torch, ÷ort, …"""
    return line[len(name) :].split()


def test_random_weights_have_torchvision_keys_and_sizes() -> None:
    """The templates' own key sets (so ``match`` recognises them as a user's file would
    be) and torchvision's shapes at full width."""
    state = models.random_state_dict(resnet(18), models._resnet_width)
    assert match(state).name == "ResNet-18"
    assert state["conv1.weight"].shape == (64, 3, 7, 7)
    assert state["layer4.1.conv2.weight"].shape == (512, 512, 3, 3)
    assert state["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert state["fc.weight"].shape == (1000, 512)
    narrow = models.random_state_dict(vgg(11, False), models._vgg_width, shrink=16)
    assert match(narrow).name == "VGG-11"
    assert narrow["features.0.weight"].shape == (4, 3, 3, 3)
    assert narrow["classifier.0.weight"].shape == (256, 32 * 7 * 7)
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in narrow.values())


def test_cases_are_the_same_in_every_process_and_compute_finite_outputs() -> None:
    first, again = _quick_cases(), _quick_cases()
    names = [c.name for c in first]
    assert len(names) == 2 and len(set(names)) == 2
    assert names[0].startswith("VGG-11 forward") and names[1].startswith("ResNet-18 forward")
    for a, b in zip(first, again, strict=True):
        assert a.torch_fn is None and a.ort_factory is not None
        out = np.asarray(a.engine_fn())
        np.testing.assert_array_equal(out, np.asarray(b.engine_fn()))  # seeded
        assert out.ndim == 2 and out.shape[0] == 1 and np.isfinite(out).all()
        assert np.abs(out).max() > 0
    full = [c.name for c in timing.build_cases(False, None, [models.resnet18_cases])]
    assert "ResNet-18 forward 1×3×224²" in full


def test_engine_only_run_reports_times_and_the_memory_of_every_map() -> None:
    rows = models.run(quick=True, repeat=3, only="ResNet-18")
    (row,) = rows
    assert row["engine_ms"] > 0 and row["maps_mb"] > 0 and row["weights_mb"] > 0
    assert row["torch_ms"] is None and row["ort_ms"] is None and row["torch_ratio"] is None
    assert row["agree"] is None  # nothing to compare with
    assert models.format_row(row).startswith(row["case"])


@pytest.mark.torch
def test_torch_runs_the_same_model_on_the_engines_weights() -> None:
    torch = pytest.importorskip("torch")
    plain = {c.name: c for c in _quick_cases()}
    for case in _quick_cases(torch):
        assert case.torch_fn is not None
        ours = np.asarray(plain[case.name].engine_fn())
        theirs = np.asarray(case.torch_fn().numpy())
        np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-4 * np.abs(ours).max())


def test_onnxruntime_runs_our_export_of_the_same_model() -> None:
    pytest.importorskip("onnxruntime")
    for case in _quick_cases():
        assert case.ort_factory is not None
        ours = np.asarray(case.engine_fn())
        theirs = process.plain_array(case.ort_factory()())
        np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-4 * np.abs(ours).max())


@pytest.mark.slow
def test_quick_models_bench_prints_every_row_with_agreeing_outputs() -> None:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    proc = subprocess.run(
        [sys.executable, "-m", "cnn_explorer.bench.models", "--quick", "--repeat", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    lines = proc.stdout.splitlines()
    assert lines[1].startswith("onnxruntime " if HAS_ORT else "onnxruntime not installed")
    assert lines[2].startswith("OpenBLAS kernel: ")
    header = lines[3].split()
    assert header[:4] == ["case", "engine", "ms", "torch"]
    assert ("u÷torch" in header) == bool(timing.blas_overrides()), lines[3]
    for case in _quick_cases():
        (row,) = [line for line in lines if line.startswith(case.name + " ")]
        cells = _cells(row, case.name)
        assert float(cells[0]) > 0
        assert (cells[3] != "—") == HAS_TORCH and (cells[4] != "—") == HAS_ORT, row
        if HAS_TORCH or HAS_ORT:
            assert cells[-1] == "ok", row
        if timing.blas_overrides():
            assert float(cells[5]) > 0, row  # the engine with the overrides unset
    assert not any(line.startswith("!!") for line in lines), proc.stdout


@pytest.mark.slow
def test_the_models_bench_never_imports_torch_or_onnxruntime_here() -> None:
    code = textwrap.dedent(
        """
        import sys
        from contextlib import ExitStack
        from cnn_explorer.bench import models, process
        with ExitStack() as stack:
            builders = models.MODEL_BUILDERS
            workers = models.Workers(
                stack.enter_context(process.torch_worker(True, builders)),
                stack.enter_context(process.ort_worker(True, builders)),
            )
            rows = models.run(quick=True, repeat=3, only="ResNet", workers=workers)
        print("COMPARED", rows[0]["torch_diff"] is not None, rows[0]["ort_diff"] is not None)
        print("IMPORTED", "torch" in sys.modules, "onnxruntime" in sys.modules)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTED False False" in proc.stdout, proc.stdout
    assert f"COMPARED {HAS_TORCH} {HAS_ORT}" in proc.stdout, proc.stdout


def test_without_onnxruntime_its_columns_are_empty(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(process, "ort_installed", lambda: False)
    monkeypatch.setattr(process, "torch_installed", lambda: False)
    assert models.main(["--quick", "--repeat", "3", "--only", "ResNet", "--as-is"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "torch not installed" in lines[0]
    assert lines[1].startswith("onnxruntime not installed")
    (name,) = [c.name for c in _quick_cases() if c.name.startswith("ResNet")]
    (row,) = [line for line in lines if line.startswith(name + " ")]
    cells = _cells(row, name)
    assert float(cells[0]) > 0 and cells[1:5] == ["—"] * 4, row
