"""Bad model files are refused with one clear sentence (ModelFileError), before anything
large is read or allocated; bad but usable weights only warn."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx_helpers import FIXTURES, save, tiny_model

from cnn_explorer.interchange.load import load_model
from cnn_explorer.interchange.model import InputShapeNeededError, ModelFileError
from cnn_explorer.interchange.onnx_import import SUPPORTED_OPS


def test_tiny_model_imports(tiny_path: Path) -> None:
    model = load_model(tiny_path)
    assert model.report.self_check is not None and model.report.self_check.passed


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope.onnx")


def test_folder(tmp_path: Path) -> None:
    (tmp_path / "x.onnx").mkdir()
    with pytest.raises(ModelFileError, match="not a regular file"):
        load_model(tmp_path / "x.onnx")


def test_symlinked_model_file(tiny_path: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.onnx"
    link.symlink_to(tiny_path)
    with pytest.raises(ModelFileError, match="symbolic link"):
        load_model(link)


def test_truncated_file(tmp_path: Path) -> None:
    data = (FIXTURES / "lenet5.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"cut\.onnx"):
        load_model(path)


@pytest.mark.parametrize("content", [b"", b"hello, I am text\n", bytes(range(256)) * 4])
def test_not_onnx(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=r"junk\.onnx"):
        load_model(path)


def test_other_suffixes_go_to_their_reader_or_are_named(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"{}")
    with pytest.raises(ModelFileError, match=r"weights\.safetensors"):
        load_model(path)
    other = tmp_path / "notes.txt"
    other.write_text("hi")
    with pytest.raises(ModelFileError, match=r"\.onnx"):
        load_model(other)


def test_unsupported_op_names_op_node_and_supported_list(tmp_path: Path) -> None:
    extra = [
        helper.make_node("Erf", ["relu"], ["erf"], name="my_erf"),
        helper.make_node("Relu", ["erf"], ["out"], name="after"),
    ]
    path = save(tiny_model(extra=extra), tmp_path / "erf.onnx")
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    msg = str(info.value)
    assert "Erf" in msg and "'my_erf'" in msg
    assert "Supported: " + ", ".join(SUPPORTED_OPS) in msg
    assert "Conv" in SUPPORTED_OPS and "Erf" not in SUPPORTED_OPS
    report = info.value.report
    assert report is not None
    assert [(e.node, e.op, e.status) for e in report.entries] == [("my_erf", "Erf", "unsupported")]


def test_operator_from_another_domain_is_unsupported(tmp_path: Path) -> None:
    extra = [helper.make_node("Relu", ["relu"], ["out"], name="custom", domain="com.example")]
    model = tiny_model(extra=extra)
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    path = tmp_path / "custom.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelFileError, match=r"com\.example\.Relu \(node 'custom'\)"):
        load_model(path)


def test_old_opset_is_refused(tmp_path: Path) -> None:
    path = save(tiny_model(opset=10), tmp_path / "old.onnx")
    with pytest.raises(ModelFileError, match="opset 10"):
        load_model(path)


def _external(tmp_path: Path, location: str, *, data: bytes | None = None) -> Path:
    """The tiny model with its conv weights stored in ``location``."""
    model = tiny_model()
    w = model.graph.initializer[0]
    raw = numpy_helper.to_array(w).tobytes()
    w.ClearField("float_data")
    w.ClearField("raw_data")
    w.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(raw)))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    target = tmp_path / location if "/" not in location else None
    if target is not None and data is not False:
        target.write_bytes(raw if data is None else data)
    return save(model, tmp_path / "ext.onnx")


def test_external_weights_beside_the_model_are_read(tmp_path: Path) -> None:
    model = load_model(_external(tmp_path, "ext.onnx.data"))
    assert "weights read from ext.onnx.data" in model.report.transformations
    assert model.report.self_check is not None and model.report.self_check.passed


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/w.bin"])
def test_external_weights_outside_the_folder_are_refused(tmp_path: Path, location: str) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 72)
    with pytest.raises(ModelFileError, match="model's own folder"):
        load_model(_external(folder, location))


def test_symlinked_weight_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    path = _external(folder, "w.bin")
    real = tmp_path / "real.bin"
    os.replace(folder / "w.bin", real)
    (folder / "w.bin").symlink_to(real)
    with pytest.raises(ModelFileError, match="symbolic link"):
        load_model(path)


def test_short_weight_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="past the end"):
        load_model(_external(tmp_path, "w.bin", data=b"\0" * 10))


def test_missing_weight_file_is_refused(tmp_path: Path) -> None:
    path = _external(tmp_path, "w.bin")
    (tmp_path / "w.bin").unlink()
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(path)


def test_nan_and_inf_weights_warn_but_import(tmp_path: Path) -> None:
    w = np.full((2, 1, 3, 3), 0.1, np.float32)
    w[0, 0, 0, 0], w[1, 0, 1, 1] = np.nan, np.inf
    path = save(tiny_model(weight=w), tmp_path / "nan.onnx")
    model = load_model(path)
    assert any("2 NaN or infinite values" in msg for msg in model.report.warnings)
    assert "Warnings:" in model.report.text()


def test_dynamic_size_needs_an_input_shape(tmp_path: Path) -> None:
    path = save(tiny_model(dims=("N", 1, "H", "W")), tmp_path / "dyn.onnx")
    with pytest.raises(InputShapeNeededError, match="not fixed"):
        load_model(path)
    model = load_model(path, input_shape=(1, 9, 7))
    assert model.preprocessing.input_shape == (1, 9, 7)
    assert model.graph.output_shapes((1, 9, 7))[model.graph.output] == (2, 9, 7)


def test_input_shape_must_agree_with_fixed_dims(tiny_path: Path) -> None:
    with pytest.raises(ModelFileError, match="6 height, not 5"):
        load_model(tiny_path, input_shape=(1, 5, 6))


def test_too_large_memory_estimate_is_refused_before_running(tmp_path: Path) -> None:
    path = save(tiny_model(dims=("N", 1, "H", "W")), tmp_path / "dyn.onnx")
    with pytest.raises(ModelFileError, match=r"about [\d.]+ MB, more than") as info:
        load_model(path, input_shape=(1, 12_000, 12_000))
    assert "smaller input size" in str(info.value)


def test_runtime_weights_are_refused(tmp_path: Path) -> None:
    extra = [helper.make_node("Conv", ["relu", "relu"], ["out"], name="dyn_conv")]
    path = save(tiny_model(extra=extra), tmp_path / "dyn_w.onnx")
    with pytest.raises(ModelFileError, match=r"'dyn_conv'.*computes its filters at run time"):
        load_model(path)


def test_two_inputs_are_refused(tmp_path: Path) -> None:
    model = tiny_model()
    model.graph.input.append(
        helper.make_tensor_value_info("other", onnx.TensorProto.FLOAT, ["N", 1, 6, 6])
    )
    path = save(model, tmp_path / "two.onnx")
    with pytest.raises(ModelFileError, match="2 inputs"):
        load_model(path)


def test_class_names_from_labels_txt(tmp_path: Path) -> None:
    path = tmp_path / "lenet5.onnx"
    path.write_bytes((FIXTURES / "lenet5.onnx").read_bytes())
    (tmp_path / "labels.txt").write_text("\n".join(f"digit {i}" for i in range(10)) + "\n")
    model = load_model(path, self_check=False)
    assert model.preprocessing.class_names == tuple(f"digit {i}" for i in range(10))
    (tmp_path / "labels.txt").write_text("a,b,c")
    model = load_model(path, self_check=False)
    assert model.preprocessing.class_names == ()
    assert any("3 class names from labels.txt" in w for w in model.report.warnings)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("name", ["resnet", "opset11_softmax", "opset18_reducemean"])
def test_corrupted_bytes_never_crash(tmp_path: Path, name: str, seed: int) -> None:
    """Random byte damage anywhere in a real model: it imports (the damage hit weight
    values) or is refused with ModelFileError, never another exception."""
    rng = np.random.default_rng(seed)
    data = bytearray((FIXTURES / f"{name}.onnx").read_bytes())
    for pos in rng.integers(0, len(data), size=int(rng.integers(1, 6))):
        data[pos] = int(rng.integers(0, 256))
    path = tmp_path / "damaged.onnx"
    path.write_bytes(bytes(data))
    try:
        load_model(path)
    except ModelFileError as exc:
        assert str(exc)
