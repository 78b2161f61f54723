"""Bad Keras files are refused with one clear sentence (ModelFileError) before anything
large is unpacked or allocated, and nothing in them is ever run: Lambda and custom layers
are refused by name with the list of supported layers."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from keras_helpers import (
    FIXTURES,
    call,
    flatten_dense_model,
    layer,
    sequential,
    weights_h5,
    write_keras,
)

from cnn_explorer.interchange.keras_layers_tensor import SUPPORTED_LAYERS
from cnn_explorer.interchange.load import load_model
from cnn_explorer.interchange.model import ModelFileError
from cnn_explorer.limits import MAX_ARCHIVE_MEMBERS, MAX_CONFIG_BYTES


def _one_sentence(err: pytest.ExceptionInfo[ModelFileError]) -> str:
    msg = str(err.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def _tiny(tmp_path: Path, name: str = "tiny.keras") -> Path:
    config, kernel = flatten_dense_model(2, 2, 1)
    return write_keras(tmp_path / name, config, {"dense": [kernel]})


def test_hand_made_tiny_model_imports(tmp_path: Path) -> None:
    assert load_model(_tiny(tmp_path)).graph(np.ones((1, 1, 2, 2), np.float32)).shape == (1, 1)


def test_lambda_is_refused_by_name() -> None:
    with pytest.raises(ModelFileError) as info:
        load_model(FIXTURES / "keras_lambda.keras")
    msg = _one_sentence(info)
    assert "'double_it' (Lambda)" in msg and "Python code" in msg
    assert "Supported: " + ", ".join(SUPPORTED_LAYERS) in msg
    assert info.value.report is not None
    assert [(e.node, e.status) for e in info.value.report.entries] == [("double_it", "unsupported")]


def test_custom_layers_are_all_named(tmp_path: Path) -> None:
    config = sequential(
        [layer("MyBlock", "block_a"), layer("Flatten", "f"), layer("Conv2DTranspose", "up")],
        (4, 4, 1),
    )
    config["config"]["layers"][1]["module"] = "my_project.layers"
    with pytest.raises(ModelFileError) as info:
        load_model(write_keras(tmp_path / "custom.keras", config))
    msg = _one_sentence(info)
    assert "'block_a' (MyBlock)" in msg and "'up' (Conv2DTranspose)" in msg
    assert "custom or unsupported" in msg and "Supported: Activation" in msg


def test_channels_first_is_refused_clearly(tmp_path: Path) -> None:
    config = sequential(
        [layer("Conv2D", "c", filters=1, kernel_size=[1, 1], data_format="channels_first")],
        (1, 4, 4),
    )
    path = write_keras(tmp_path / "cf.keras", config, {"conv2d": [np.ones((1, 1, 1, 1)), [0.0]]})
    with pytest.raises(ModelFileError, match=r"'c' .*channels_first.*channels_last"):
        load_model(path)


def test_exact_gelu_is_refused(tmp_path: Path) -> None:
    config = sequential([layer("Activation", "act", activation="gelu")], (2, 2, 1))
    with pytest.raises(ModelFileError, match="exact \\(erf\\) GELU"):
        load_model(write_keras(tmp_path / "gelu.keras", config))


def test_weights_that_do_not_fit_the_config(tmp_path: Path) -> None:
    config, _ = flatten_dense_model(2, 2, 1)
    path = write_keras(tmp_path / "bad.keras", config, {"dense": [np.ones((5, 1))]})
    with pytest.raises(
        ModelFileError, match=r"'fc' \(Dense\) has weights of shapes \[\(5, 1\)\]"
    ) as info:
        load_model(path)
    report = info.value.report
    assert report is not None and [e.node for e in report.entries] == ["flat"]


def test_two_inputs_are_refused(tmp_path: Path) -> None:
    a = layer("InputLayer", "a", [], batch_shape=[None, 2, 2, 1])
    b = layer("InputLayer", "b", [], batch_shape=[None, 2, 2, 1])
    add = layer("Add", "s", call("a", "b"))
    config = {
        "module": "keras",
        "class_name": "Functional",
        "config": {
            "name": "two",
            "layers": [a, b, add],
            "input_layers": [["a", 0, 0], ["b", 0, 0]],
            "output_layers": [["s", 0, 0]],
        },
    }
    with pytest.raises(ModelFileError, match="2 inputs"):
        load_model(write_keras(tmp_path / "two.keras", config))


def test_subclassed_model_is_refused(tmp_path: Path) -> None:
    config = {"module": "my_code", "class_name": "MyNet", "config": {"units": 3}}
    with pytest.raises(ModelFileError, match=r"'MyNet'.*subclassed"):
        load_model(write_keras(tmp_path / "sub.keras", config))


# -- the archive ------------------------------------------------------------------------------
def test_missing_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError) as info:
        load_model(write_keras(tmp_path / "noconf.keras", None))
    assert "noconf.keras has no config.json" in _one_sentence(info)


def test_missing_weights_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "noweights.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(flatten_dense_model(2, 2, 1)[0]))
    with pytest.raises(ModelFileError, match=r"has no model.weights.h5"):
        load_model(path)


@pytest.mark.parametrize("fixture", ["keras_sequential.keras", "keras_legacy.h5"])
def test_truncated_file(tmp_path: Path, fixture: str) -> None:
    data = (FIXTURES / fixture).read_bytes()
    path = tmp_path / f"cut{Path(fixture).suffix}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert path.name in _one_sentence(info)


@pytest.mark.parametrize("content", [b"", b"hello, I am text\n", bytes(range(256)) * 4])
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_not_a_keras_file(tmp_path: Path, content: bytes, suffix: str) -> None:
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(content)
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert path.name in _one_sentence(info)


def test_zip_bomb_is_refused_from_the_directory(tmp_path: Path) -> None:
    config, kernel = flatten_dense_model(2, 2, 1)
    path = write_keras(
        tmp_path / "bomb.keras", config, {"dense": [kernel]}, [("assets/pad.bin", b"")]
    )
    # replace the weights with 60 MB of zeros that deflate to ~60 KB
    bomb = tmp_path / "bomb2.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        dst.writestr("config.json", src.read("config.json"))
        dst.writestr("model.weights.h5", bytes(60_000_000))
    with pytest.raises(ModelFileError) as info:
        load_model(bomb)
    assert "zip bomb" in _one_sentence(info)


def test_oversized_member_is_refused_before_unpacking(tmp_path: Path) -> None:
    path = tmp_path / "huge.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", b" " * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert "config.json would unpack to" in _one_sentence(info)


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    extra = [(f"assets/{i}.txt", b"x") for i in range(MAX_ARCHIVE_MEMBERS)]
    config, kernel = flatten_dense_model(2, 2, 1)
    path = write_keras(tmp_path / "many.keras", config, {"dense": [kernel]}, extra)
    with pytest.raises(ModelFileError, match=f"more than the {MAX_ARCHIVE_MEMBERS}"):
        load_model(path)


@pytest.mark.parametrize("name", ["../evil.json", "/etc/passwd", "a\\..\\b"])
def test_unsafe_member_names_are_refused(tmp_path: Path, name: str) -> None:
    config, kernel = flatten_dense_model(2, 2, 1)
    path = write_keras(tmp_path / "trick.keras", config, {"dense": [kernel]}, [(name, b"x")])
    with pytest.raises(ModelFileError, match="unsafe name"):
        load_model(path)


# -- HDF5 -------------------------------------------------------------------------------------
def _legacy(path: Path, *, link: str | None = None, with_config: bool = True) -> Path:
    config, kernel = flatten_dense_model(2, 2, 1)
    with h5py.File(path, "w") as f:
        if with_config:
            f.attrs["model_config"] = json.dumps(config)
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = ["flat", "fc"]
        g.create_group("flat").attrs["weight_names"] = []
        fc = g.create_group("fc")
        fc.attrs["weight_names"] = ["fc/kernel:0"]
        if link is None:
            fc["fc/kernel:0"] = kernel
        else:
            fc.create_group("fc")
            fc["fc"]["kernel:0"] = h5py.ExternalLink(link, "/kernel")
    return path


def test_hand_made_legacy_h5_imports(tmp_path: Path) -> None:
    model = load_model(_legacy(tmp_path / "ok.h5"))
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    np.testing.assert_allclose(model.graph(x), [[0 * 0 + 1 * 1 + 2 * 2 + 3 * 3]])


def test_weights_only_h5_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="weights only"):
        load_model(_legacy(tmp_path / "w.h5", with_config=False))


def test_external_link_in_h5_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "secret.h5"
    with h5py.File(other, "w") as f:
        f["kernel"] = np.ones((4, 1), np.float32)
    with pytest.raises(ModelFileError, match=r"links .* elsewhere"):
        load_model(_legacy(tmp_path / "linked.h5", link=str(other)))


def test_non_float_weights_are_refused(tmp_path: Path) -> None:
    config, _ = flatten_dense_model(2, 2, 1)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f["layers/dense/vars/0"] = np.array([[b"a"], [b"b"], [b"c"], [b"d"]])
    path = tmp_path / "strings.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", buf.getvalue())
    with pytest.raises(ModelFileError, match="not numbers"):
        load_model(path)


def test_nan_weights_warn(tmp_path: Path) -> None:
    config, kernel = flatten_dense_model(2, 2, 1)
    kernel[1] = np.nan
    model = load_model(write_keras(tmp_path / "nan.keras", config, {"dense": [kernel]}))
    assert any("NaN" in w and "'fc'" in w for w in model.report.warnings)


def test_deeply_nested_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", "[" * 200_000 + "]" * 200_000)
        z.writestr("model.weights.h5", b"")
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert "deep.keras" in _one_sentence(info)


def test_deeply_nested_layer_call_never_crashes(tmp_path: Path) -> None:
    """A call record nested ~990 deep (as deep as JSON parsing allows) either imports or is
    refused with a sentence; it never overflows the stack unhandled."""
    tensor = json.dumps(
        {"class_name": "__keras_tensor__", "config": {"keras_history": ["img", 0, 0]}}
    )
    depth = 990
    call_json = '{"args": ' + "[" * depth + tensor + "]" * depth + ', "kwargs": {}}'
    inp = json.dumps(layer("InputLayer", "img", [], batch_shape=[None, 2, 2, 1]))
    act = json.dumps(layer("ReLU", "r", []))[: -len("[]}")] + "[" + call_json + "]}"
    text = (
        '{"module": "keras", "class_name": "Functional", "config": {"name": "f", '
        f'"layers": [{inp}, {act}], "input_layers": ["img", 0, 0], '
        '"output_layers": ["r", 0, 0]}}'
    )
    path = tmp_path / "nest.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", text)
        z.writestr("model.weights.h5", weights_h5({}))
    try:
        load_model(path)
    except ModelFileError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("filters", "many"),
        ("kernel_size", [3, 3, 3]),
        ("kernel_size", [3, "x"]),
        ("strides", [0, 0]),
        ("padding", "causal"),
        ("groups", "2"),
        ("activation", {"class_name": "MyAct", "module": "evil"}),
        ("activation", "hard_swish"),
        ("dilation_rate", -1),
    ],
)
def test_malformed_layer_config_gets_a_sentence(tmp_path: Path, key: str, value: object) -> None:
    conv = layer("Conv2D", "c", filters=2, kernel_size=[1, 1])
    conv["config"][key] = value
    config = sequential([conv], (3, 3, 1))
    weights = {"conv2d": [np.ones((1, 1, 1, 2)), np.zeros(2)]}
    with pytest.raises(ModelFileError) as info:
        load_model(write_keras(tmp_path / "m.keras", config, weights))
    assert "'c'" in _one_sentence(info)


@pytest.mark.parametrize(
    "history", [["img", "zero", 0], ["img", 0], "img", ["nobody", 0, 0], ["img", 5, 0]]
)
def test_malformed_layer_call_gets_a_sentence(tmp_path: Path, history: object) -> None:
    inp = layer("InputLayer", "img", [], batch_shape=[None, 2, 2, 1])
    tensor = {"class_name": "__keras_tensor__", "config": {"keras_history": history}}
    act = layer("ReLU", "r", [{"args": [tensor], "kwargs": {}}])
    config = {
        "module": "keras",
        "class_name": "Functional",
        "config": {
            "name": "f",
            "layers": [inp, act],
            "input_layers": ["img", 0, 0],
            "output_layers": ["r", 0, 0],
        },
    }
    with pytest.raises(ModelFileError) as info:
        load_model(write_keras(tmp_path / "m.keras", config))
    _one_sentence(info)


@pytest.mark.parametrize("fixture", ["keras_legacy.h5", "keras_sequential.keras"])
def test_random_byte_damage_never_crashes(tmp_path: Path, fixture: str) -> None:
    """Bytes overwritten anywhere: the file imports or is refused with a sentence (HDF5's
    own errors on a damaged file included)."""
    data = (FIXTURES / fixture).read_bytes()
    path = tmp_path / f"damaged{Path(fixture).suffix}"
    for seed in range(25):
        rng = np.random.default_rng(seed)
        damaged = bytearray(data)
        for pos in rng.integers(0, len(damaged), 8):
            damaged[pos] = int(rng.integers(0, 256))
        path.write_bytes(bytes(damaged))
        try:
            load_model(path, self_check=False)
        except ModelFileError as exc:
            assert "\n" not in str(exc)
