"""``cnn-explorer export MODEL --to OUT.onnx | OUT.py``: files written atomically, one-line
failures with exit status 2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from export_cases import DEFAULT_SHAPE, default_network, inputs
from onnx.reference import ReferenceEvaluator
from safetensors.numpy import load_file

from cnn_explorer.app import main as app_main
from cnn_explorer.engine.serialize import save_network
from cnn_explorer.interchange.export_cli import EXIT_BAD, EXIT_OK, main
from cnn_explorer.interchange.model import METADATA_CLASS_NAMES
from cnn_explorer.interchange.torch_export import METADATA_ARCHITECTURE

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def network_file(tmp_path: Path) -> Path:
    path = tmp_path / "net.npz"
    extra = {"input_shape": list(DEFAULT_SHAPE), "class_names": ["a", "b", "c"]}
    save_network(path, default_network(), extra)
    return path


def test_onnx_export_from_a_network_file(network_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    code, stdout, err = run([str(network_file), "--to", str(out)])
    assert code == EXIT_OK, err
    assert stdout.strip() == f"wrote {out}"
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta[METADATA_CLASS_NAMES]) == ["a", "b", "c"]
    x = inputs(DEFAULT_SHAPE, 2)
    got = ReferenceEvaluator(proto).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, default_network()(x), atol=1e-5, rtol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "net.npz"]


def test_pytorch_export_writes_code_and_weights(network_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.py"
    code, stdout, err = run([str(network_file), "--to", str(out)])
    assert code == EXIT_OK, err
    assert stdout.splitlines() == [f"wrote {out}", f"wrote {tmp_path / 'model.safetensors'}"]
    assert "nn.Sequential(" in out.read_text()
    assert set(load_file(str(tmp_path / "model.safetensors"))) == {
        "0.weight",
        "0.bias",
        "3.weight",
        "3.bias",
        "7.weight",
        "7.bias",
    }


def test_state_dict_input_through_the_app_entry_point(tmp_path: Path) -> None:
    out = tmp_path / "lenet.py"
    assert app_main(["export", str(FIXTURES / "lenet5.safetensors"), "--to", str(out)]) == 0
    from safetensors import safe_open

    with safe_open(str(out.with_suffix(".safetensors")), "np") as fh:
        meta = fh.metadata()
    arch = json.loads(meta[METADATA_ARCHITECTURE])
    assert arch["input_shape"] == [1, 32, 32]


def test_input_shape_needed_when_not_recorded(tmp_path: Path) -> None:
    path = tmp_path / "bare.npz"
    save_network(path, default_network())
    code, _, err = run([str(path), "--to", str(tmp_path / "m.onnx")])
    assert code == EXIT_BAD and "--input-shape" in err
    code, _, err = run([str(path), "--to", str(tmp_path / "m.onnx"), "--input-shape", "1,12,12"])
    assert code == EXIT_OK, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "out.txt"], "ending in .onnx or .py"),
        (["--to", "missing_dir/out.onnx"], "does not exist"),
        (["--to", "out.onnx", "--input-shape", "1,x"], "must be numbers"),
        (["--to", "out.onnx", "--input-shape", "1,30,30"], "does not compute on input"),
    ],
)
def test_bad_arguments_fail_with_one_line(
    network_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    args = [a if not a.startswith(("out", "missing")) else str(tmp_path / a) for a in args]
    code, stdout, err = run([str(network_file), *args])
    assert code == EXIT_BAD and stdout == ""
    assert message in err and err.count("\n") == 1


def test_unreadable_model_fails_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    code, _, err = run([str(bad), "--to", str(tmp_path / "m.onnx")])
    assert code == EXIT_BAD and err.startswith("cnn-explorer export: ")
    code, _, err = run([str(tmp_path / "absent.npz"), "--to", str(tmp_path / "m.onnx")])
    assert code == EXIT_BAD and "does not exist" in err
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_model_converts_to_pytorch(network_file: Path, tmp_path: Path) -> None:
    onnx_path = tmp_path / "model.onnx"
    assert run([str(network_file), "--to", str(onnx_path)])[0] == EXIT_OK
    out = tmp_path / "from_onnx.py"
    code, _, err = run([str(onnx_path), "--to", str(out)])
    assert code == EXIT_OK, err
    assert "def build_model()" in out.read_text()
