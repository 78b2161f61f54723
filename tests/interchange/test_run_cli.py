"""``cnn-explorer run MODEL INPUT``: top classes for an image or a .npy batch, every map
saved with --out, and one line plus status 2 for any bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from onnx_helpers import FIXTURES, save, tiny_model

from cnn_explorer.app import main as app_main
from cnn_explorer.imageio import save_png
from cnn_explorer.interchange.cli import main
from cnn_explorer.interchange.load import load_model


def run(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    path = tmp_path / "batch.npy"
    np.save(path, np.load(FIXTURES / "vgg_bn.npz")["input"])
    return path


@pytest.fixture
def digit(tmp_path: Path) -> Path:
    img = np.zeros((40, 30), np.uint8)
    img[8:32, 12:18] = 255
    path = tmp_path / "digit.png"
    save_png(img, str(path))
    return path


def test_npy_batch_prints_top_classes_with_names(batch: Path) -> None:
    code, out, err = run(FIXTURES / "vgg_bn.onnx", batch, "--top", "3")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "image 0:" and lines[4] == "image 1:"
    assert len(lines) == 8
    want = np.load(FIXTURES / "vgg_bn.npz")["output"]
    names = ("cat", "dog", "bird", "fish", "frog")
    assert lines[1].split()[1] == names[int(np.argmax(want[0]))]
    assert lines[5].split()[1] == names[int(np.argmax(want[1]))]


def test_image_is_resized_and_preprocessed(digit: Path, tmp_path: Path) -> None:
    maps = tmp_path / "maps.npz"
    code, out, err = run(FIXTURES / "lenet5.onnx", digit, "--top", "2", "--out", maps)
    assert code == 0, err
    assert out.splitlines()[0].strip().startswith("1. class ")
    with np.load(maps, allow_pickle=False) as saved:
        assert saved["input"].shape == (1, 1, 32, 32)
        assert saved["input"].min() >= 0.0 and saved["input"].max() == pytest.approx(1.0)
        model = load_model(FIXTURES / "lenet5.onnx", self_check=False)
        np.testing.assert_allclose(saved["output"], model.graph(saved["input"]), rtol=1e-6)
        assert {n.name for n in model.graph.nodes} | {"input", "output"} == set(saved.files)


def test_out_saves_every_tensor_by_node_name(batch: Path, tmp_path: Path) -> None:
    maps = tmp_path / "maps.npz"
    code, out, _ = run(FIXTURES / "vgg_bn.onnx", batch, "--out", maps)
    assert code == 0
    assert f"to {maps}" in out.splitlines()[-1]
    with np.load(maps, allow_pickle=False) as saved:
        want = np.load(FIXTURES / "vgg_bn.npz")["output"]
        np.testing.assert_allclose(saved["output"], want, rtol=1e-5, atol=1e-5)
        assert saved["0/Conv"].shape == (2, 8, 32, 32)


def test_preprocessing_flags_override_the_model(digit: Path, tmp_path: Path) -> None:
    maps = tmp_path / "maps.npz"
    args = ("--scale", "1", "--mean", "100", "--std", "2", "--out", maps)
    code, _, err = run(FIXTURES / "lenet5.onnx", digit, *args)
    assert code == 0, err
    with np.load(maps) as saved:
        assert saved["input"].min() == pytest.approx(-50.0)
        assert saved["input"].max() == pytest.approx(77.5)


def test_dynamic_model_needs_size(digit: Path, tmp_path: Path) -> None:
    path = save(tiny_model(dims=("N", 1, "H", "W")), tmp_path / "dyn.onnx")
    code, _, err = run(path, digit)
    assert code == 2 and "--size" in err
    code, out, err = run(path, digit, "--size", "12x10", "--grey")
    assert code == 0, err
    assert out.startswith("output shape (1, 2, 12, 10)")


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--top", "0"), "--top"),
        (("--size", "big"), "HxW"),
        (("--size", "28x28"), "fixed at 32x32"),
        (("--size", "32x32"), None),
        (("--mean", "a,b"), "--mean"),
        (("--std", "0"), "std"),
        (("--out", "/nonexistent/dir/m.npz"), "does not exist"),
        (("--out", "maps.txt"), ".npz"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    digit: Path, extra: tuple[str, ...], needle: str | None
) -> None:
    code, _, err = run(FIXTURES / "lenet5.onnx", digit, *extra)
    if needle is None:
        assert code == 0
        return
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("cnn-explorer run: ")
    assert needle in err


def test_bad_inputs_exit_2_with_one_line(tmp_path: Path, digit: Path) -> None:
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 3), np.float32))
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((1, 1, 20, 20), np.float32))
    lying = tmp_path / "lying.npy"
    with lying.open("wb") as fh:
        header = {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(b"\0" * 64)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (tmp_path / "notes.md").write_text("hi")
    cases = [
        (tmp_path / "none.onnx", digit, "does not exist"),
        (FIXTURES / "lenet5.onnx", tmp_path / "none.png", "does not exist"),
        (FIXTURES / "lenet5.onnx", bad, "(N, C, H, W)"),
        (FIXTURES / "lenet5.onnx", objects, "objects.npy"),
        (FIXTURES / "lenet5.onnx", lying, "truncated or damaged"),
        (FIXTURES / "lenet5.onnx", wrong, "32"),
        (FIXTURES / "lenet5.onnx", broken, "broken.png"),
        (FIXTURES / "lenet5.onnx", tmp_path / "notes.txt", "neither an image"),
        (FIXTURES / "lenet5.npz", digit, "not a CNN Explorer network file"),
        (tmp_path / "notes.md", digit, "not a model file"),
    ]
    for model, src, needle in cases:
        code, out, err = run(model, src)
        assert code == 2, (model, src, out)
        assert err.count("\n") == 1 and err.startswith("cnn-explorer run: "), err
        assert needle in err, err


def test_rgb_flag_on_a_grey_model_is_refused(digit: Path) -> None:
    code, _, err = run(FIXTURES / "lenet5.onnx", digit, "--rgb")
    assert code == 2 and "3 channels" in err


def test_app_dispatches_run(batch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app_main(["run", str(FIXTURES / "vgg_bn.onnx"), str(batch), "--top", "1"]) == 0
    assert capsys.readouterr().out.startswith("image 0:")


def test_import_warnings_go_to_stderr(tmp_path: Path, digit: Path) -> None:
    w = np.full((2, 1, 3, 3), 0.1, np.float32)
    w[0, 0, 0, 0] = np.nan
    path = save(tiny_model(weight=w), tmp_path / "nan.onnx")
    code, out, err = run(path, digit, "--size", "6x6")
    assert code == 0
    assert err.startswith("cnn-explorer run: warning: the weights 'w' hold 1 NaN")
    assert out.startswith("output shape (1, 2, 6, 6)")
