"""Keras import: every committed fixture gives Keras' numbers (committed beside it), the
report names each layer and the layout rewrites, the Keras-order flattening is undone in
the first Dense (checked by hand), and the self-check runs against Keras when it is
installed or says it was skipped."""

from __future__ import annotations

import importlib.util
import io
import json
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
    write_keras,
)

from cnn_explorer.engine import BatchNorm2D, Concat, Conv2D, Dense, Flatten
from cnn_explorer.interchange.cli import main as cli_main
from cnn_explorer.interchange.keras_import import collapse_notes
from cnn_explorer.interchange.keras_selfcheck import SKIPPED, keras_outputs, self_check
from cnn_explorer.interchange.load import MODEL_SUFFIXES, load_model
from cnn_explorer.interchange.model import (
    ImportedModel,
    InputShapeNeededError,
    ModelFileError,
    SelfCheck,
)

FIXTURE_FILES = {
    "keras_sequential": "keras_sequential.keras",
    "keras_functional": "keras_functional.keras",
    "keras_legacy": "keras_legacy.h5",
    "keras_zoo": "keras_zoo.keras",
}
HAS_KERAS = importlib.util.find_spec("keras") is not None


@pytest.fixture(scope="module")
def imported() -> dict[str, ImportedModel]:
    return {name: load_model(FIXTURES / file) for name, file in FIXTURE_FILES.items()}


def _graph_input(model: ImportedModel, x: np.ndarray) -> np.ndarray:
    """What the graph reads for the Keras model's input ``x``: ``x`` itself, or after the
    leading Rescaling the import moved into the preprocessing."""
    moved = any(e.op == "Rescaling" and "preprocessing" in e.detail for e in model.report.entries)
    if not moved:
        return x
    pre = model.preprocessing
    mean = np.asarray(pre.mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(pre.std, np.float32).reshape(-1, 1, 1)
    return ((x * np.float32(pre.scale) - mean) / std).astype(np.float32)


def test_keras_suffixes_are_registered() -> None:
    assert ".keras" in MODEL_SUFFIXES and ".h5" in MODEL_SUFFIXES


@pytest.mark.parametrize("file", [*FIXTURE_FILES.values(), "keras_lambda.keras"])
def test_fixture_is_small(file: str) -> None:
    assert (FIXTURES / file).stat().st_size < 300_000


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture_matches_keras_outputs(name: str, imported: dict) -> None:
    model = imported[name]
    data = np.load(FIXTURES / f"{name}.npz", allow_pickle=False)
    got = model.graph(_graph_input(model, data["input"]))
    want = data["output"]
    want = want.transpose(0, 3, 1, 2) if want.ndim == 4 else want
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_self_check_runs_or_says_keras_is_missing(name: str, imported: dict) -> None:
    report = imported[name].report
    if HAS_KERAS:
        assert report.self_check is not None and report.self_check.passed, report.self_check
    else:
        assert report.self_check is None
        assert SKIPPED in report.warnings
        assert SKIPPED == "keras not installed: self-check against the Keras reference skipped"


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_report_has_an_entry_per_layer(name: str, imported: dict) -> None:
    report = imported[name].report
    assert all(e.status in ("mapped", "transformed") for e in report.entries)
    assert len(report.entries) >= 6
    assert "(H, W, C) to (C, H, W)" in report.text()


def test_sequential_report_lists_padding_and_dense_permutation(imported: dict) -> None:
    model = imported["keras_sequential"]
    text = "\n".join(model.report.transformations)
    assert "conv: 'same' padding with stride 2 padded asymmetrically (0, 1, 0, 1)" in text
    assert "classifier: Dense rows permuted from Keras' (H, W, C)" in text
    conv = next(n.layer for n in model.graph.nodes if isinstance(n.layer, Conv2D))
    assert conv.padding4 == (0, 1, 0, 1) and conv.stride == (2, 2)
    bn = next(n.layer for n in model.graph.nodes if isinstance(n.layer, BatchNorm2D))
    assert bn.eps == pytest.approx(1e-2)  # epsilon from the config, not the engine default
    assert model.preprocessing.input_shape == (3, 12, 12)


def test_functional_graph_and_rescaling_preprocessing(imported: dict) -> None:
    model = imported["keras_functional"]
    pre = model.preprocessing
    assert pre.scale == pytest.approx(1 / 127.5) and pre.mean == (1.0,) and pre.std == (1.0,)
    assert not model.graph.is_chain()
    layers = [n.layer for n in model.graph.nodes]
    assert any(isinstance(layer, Concat) for layer in layers)
    depthwise = [la for la in layers if isinstance(la, Conv2D) and la.groups > 1]
    assert {(la.in_channels, la.out_channels, la.groups) for la in depthwise} == {
        (8, 16, 8),  # DepthwiseConv2D, multiplier 2
        (8, 8, 8),  # SeparableConv2D's depthwise half
    }
    text = "\n".join(model.report.transformations)
    for note in (
        "became the preprocessing",
        "relu6 as Clip(0, 6)",
        "depthwise 3×3 and a pointwise",
    ):
        assert note in text


def test_legacy_h5_reads_layer_named_weights(imported: dict) -> None:
    model = imported["keras_legacy"]
    text = model.report.text()
    assert "stride 1 padded asymmetrically (0, 1, 0, 1)" in text
    conv = [n.layer for n in model.graph.nodes if isinstance(n.layer, Conv2D)]
    assert not conv[0].use_bias and conv[1].groups == 2


def test_flatten_then_dense_is_permuted_from_hwc(tmp_path: Path) -> None:
    """Hand-made: Keras flattens (H, W, C); the engine (C, H, W). The Dense after Flatten
    must give Keras' number, computed here from the definition."""
    h, w, c = 2, 3, 2
    config, kernel = flatten_dense_model(h, w, c)
    path = write_keras(tmp_path / "perm.keras", config, {"dense": [kernel]})
    model = load_model(path)
    x_hwc = np.random.default_rng(0).standard_normal((1, h, w, c)).astype(np.float32)
    want = x_hwc.reshape(1, -1) @ kernel
    got = model.graph(np.ascontiguousarray(x_hwc.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    dense = next(n.layer for n in model.graph.nodes if isinstance(n.layer, Dense))
    # engine input i = (ch, row, col) reads Keras row row*W*C + col*C + ch
    expect = [r * w * c + q * c + ch for ch in range(c) for r in range(h) for q in range(w)]
    assert dense.params["weight"][0].tolist() == expect
    assert any("Dense rows permuted" in t for t in model.report.transformations)


def test_one_channel_flatten_needs_no_permutation(tmp_path: Path) -> None:
    config, kernel = flatten_dense_model(3, 2, 1)
    model = load_model(write_keras(tmp_path / "one.keras", config, {"dense": [kernel]}))
    assert not any("permuted" in t for t in model.report.transformations)
    assert any(isinstance(n.layer, Flatten) for n in model.graph.nodes)


def test_dynamic_input_size_needs_a_choice(tmp_path: Path) -> None:
    config = sequential(
        [layer("Conv2D", "c", filters=2, kernel_size=[1, 1]), layer("GlobalAveragePooling2D", "g")],
        (None, None, 3),
    )
    weights = {"conv2d": [np.ones((1, 1, 3, 2)), np.zeros(2)]}
    path = write_keras(tmp_path / "dyn.keras", config, weights)
    with pytest.raises(InputShapeNeededError, match="not fixed"):
        load_model(path)
    model = load_model(path, input_shape=(3, 5, 7))
    out = model.graph(np.ones((1, 3, 5, 7), np.float32))
    np.testing.assert_allclose(out, [[3.0, 3.0]])


def test_functional_hand_made_shared_layer_called_twice(tmp_path: Path) -> None:
    """A layer called twice shares its weights: two engine nodes, same numbers."""
    inp = layer("InputLayer", "img", [], batch_shape=[None, 4, 4, 1])
    conv = layer("Conv2D", "shared", call("img"), filters=1, kernel_size=[1, 1], use_bias=False)
    conv["inbound_nodes"] += [{"args": [_tensor("shared", 0)], "kwargs": {}}]
    add = layer(
        "Add", "sum", [{"args": [[_tensor("shared", 0), _tensor("shared", 1)]], "kwargs": {}}]
    )
    config = {
        "module": "keras",
        "class_name": "Functional",
        "config": {
            "name": "f",
            "layers": [inp, conv, add],
            "input_layers": ["img", 0, 0],
            "output_layers": ["sum", 0, 0],
        },
    }
    path = write_keras(tmp_path / "shared.keras", config, {"conv2d": [np.full((1, 1, 1, 1), 2.0)]})
    model = load_model(path)
    x = np.ones((1, 1, 4, 4), np.float32)
    np.testing.assert_allclose(model.graph(x), 2 * x + 4 * x)  # 2x + 2(2x)


def _tensor(name: str, node: int) -> dict:
    return {"class_name": "__keras_tensor__", "config": {"keras_history": [name, node, 0]}}


def _keras2_h5(path: Path) -> Path:
    """A tf.keras 2 style ``.h5``: a "Model" config with list-style inbound nodes, ``alpha``
    for LeakyReLU, BatchNormalization axis as a list, and ``name:0`` weight names."""
    rng = np.random.default_rng(3)

    def k2(cls: str, name: str, inbound: list, **config: object) -> dict:
        return {
            "class_name": cls,
            "name": name,
            "config": {"name": name, **config},
            "inbound_nodes": inbound,
        }

    layers = [
        k2("InputLayer", "input_1", [], batch_input_shape=[None, 5, 5, 2]),
        k2("Conv2D", "conv2d", [[["input_1", 0, 0, {}]]], filters=3, kernel_size=[3, 3],
           strides=[2, 2], padding="same", activation="linear", use_bias=True),
        k2("BatchNormalization", "bn", [[["conv2d", 0, 0, {}]]], axis=[3], epsilon=0.01),
        k2("LeakyReLU", "leaky", [[["bn", 0, 0, {}]]], alpha=0.2),
        k2("Flatten", "flatten", [[["leaky", 0, 0, {}]]]),
        k2("Dense", "out", [[["flatten", 0, 0, {}]]], units=2, activation="linear"),
    ]  # fmt: skip
    config = {
        "class_name": "Model",
        "config": {
            "name": "model",
            "layers": layers,
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["out", 0, 0]],
        },
    }
    weights = {
        "conv2d": {"kernel:0": rng.standard_normal((3, 3, 2, 3)), "bias:0": rng.standard_normal(3)},
        "bn": {
            "gamma:0": rng.uniform(0.5, 2, 3),
            "beta:0": rng.standard_normal(3),
            "moving_mean:0": rng.standard_normal(3),
            "moving_variance:0": rng.uniform(0.5, 2, 3),
        },
        "out": {"kernel:0": rng.standard_normal((27, 2)), "bias:0": rng.standard_normal(2)},
    }
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["keras_version"] = b"2.13.1"
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [la["name"].encode() for la in layers]
        for la in layers:
            sub = g.create_group(la["name"])
            names = list(weights.get(la["name"], {}))
            sub.attrs["weight_names"] = [f"{la['name']}/{n}".encode() for n in names]
            for n in names:
                sub[f"{la['name']}/{n}"] = weights[la["name"]][n].astype(np.float32)
    return path


def _keras2_reference(path: Path, x_hwc: np.ndarray) -> np.ndarray:
    """The same model computed in NHWC from the definitions (TF 'same': pad 1 after)."""
    with h5py.File(path) as f:
        w = {k: f["model_weights"][k] for k in ("conv2d", "bn", "out")}
        kernel, bias = w["conv2d"]["conv2d/kernel:0"][()], w["conv2d"]["conv2d/bias:0"][()]
        bn = {
            n: w["bn"][f"bn/{n}:0"][()] for n in ("gamma", "beta", "moving_mean", "moving_variance")
        }
        dk, db = w["out"]["out/kernel:0"][()], w["out"]["out/bias:0"][()]
    padded = np.pad(x_hwc, ((0, 0), (1, 1), (1, 1), (0, 0)))  # 5 → out 3: total pad 2 = (1, 1)
    y = np.zeros((x_hwc.shape[0], 3, 3, 3), np.float64)
    for i in range(3):
        for j in range(3):
            patch = padded[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3, :]
            y[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, kernel) + bias
    y = (y - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + 0.01) * bn["gamma"] + bn["beta"]
    y = np.where(y > 0, y, 0.2 * y)
    return y.reshape(y.shape[0], -1) @ dk + db


def test_keras2_style_h5_matches_a_hand_computation(tmp_path: Path) -> None:
    path = _keras2_h5(tmp_path / "k2.h5")
    model = load_model(path)
    x_hwc = np.random.default_rng(4).standard_normal((2, 5, 5, 2)).astype(np.float32)
    got = model.graph(np.ascontiguousarray(x_hwc.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(got, _keras2_reference(path, x_hwc), rtol=1e-4, atol=1e-5)
    assert any("Dense rows permuted" in t for t in model.report.transformations)


def test_run_cli_reads_a_keras_model(tmp_path: Path) -> None:
    batch = tmp_path / "batch.npy"
    np.save(batch, np.load(FIXTURES / "keras_sequential.npz")["input"])
    maps = tmp_path / "maps.npz"
    out, err = io.StringIO(), io.StringIO()
    code = cli_main(
        [str(FIXTURES / "keras_sequential.keras"), str(batch), "--top", "2", "--out", str(maps)],
        stdout=out,
        stderr=err,
    )
    assert code == 0, err.getvalue()
    saved = np.load(maps)
    want = np.load(FIXTURES / "keras_sequential.npz")["output"]
    np.testing.assert_allclose(saved["output"], want, atol=1e-5)
    assert "conv" in saved.files and "classifier" in saved.files


def test_repeated_notes_are_collapsed() -> None:
    notes = [f"b{i}: silu as x · sigmoid(x)" for i in range(5)] + ["c: relu6 as Clip(0, 6)"]
    assert collapse_notes(notes) == [
        "silu as x · sigmoid(x): 5 layers (b0, b1, b2, …)",
        "c: relu6 as Clip(0, 6)",
    ]
    assert collapse_notes(notes[:3]) == notes[:3]


def test_input_without_channel_axis_reads_as_one_channel(tmp_path: Path) -> None:
    """MNIST-tutorial style: Input((H, W)) → ReLU → Flatten → Dense."""
    config = sequential(
        [
            layer("ReLU", "act"),
            layer("Flatten", "flat"),
            layer("Dense", "fc", units=2, use_bias=False),
        ],
        (3, 4),
    )
    kernel = np.random.default_rng(1).standard_normal((12, 2)).astype(np.float32)
    model = load_model(write_keras(tmp_path / "mlp.keras", config, {"dense": [kernel]}))
    assert model.preprocessing.input_shape == (1, 3, 4)
    x = np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32)
    got = model.graph(x[:, None])
    np.testing.assert_allclose(got, np.maximum(x, 0).reshape(2, -1) @ kernel, rtol=1e-5)


def test_layer_on_the_last_axis_of_an_input_without_channels_is_refused(tmp_path: Path) -> None:
    config = sequential([layer("Dense", "fc", units=2)], (3, 4))
    path = write_keras(tmp_path / "d.keras", config, {"dense": [np.ones((4, 2)), np.zeros(2)]})
    with pytest.raises(ModelFileError, match=r"'fc' \(Dense\) works on the model's \(H, W\) input"):
        load_model(path)


def test_self_check_compares_with_a_reference_on_nhwc_input(tmp_path: Path) -> None:
    h, w, c = 2, 3, 2
    config, kernel = flatten_dense_model(h, w, c)
    path = write_keras(tmp_path / "sc.keras", config, {"dense": [kernel]})
    graph = load_model(path, self_check=False).graph

    def reference(x_nhwc: np.ndarray) -> np.ndarray:
        assert x_nhwc.shape == (1, h, w, c)
        return (x_nhwc.reshape(1, -1) @ kernel).astype(np.float64)

    good = self_check(graph, (c, h, w), reference)
    assert isinstance(good, SelfCheck) and good.passed and good.reference == "Keras"
    assert good.message.startswith("matches the Keras reference to")
    bad = self_check(graph, (c, h, w), lambda x: reference(x) + 1.0)
    assert isinstance(bad, SelfCheck) and not bad.passed
    assert bad.message.startswith("differs from Keras by up to 1")
    assert self_check(graph, (c, h, w), lambda x: "no reference") == "no reference"


@pytest.mark.skipif(HAS_KERAS, reason="keras is installed")
def test_keras_outputs_without_keras_says_skipped() -> None:
    assert keras_outputs({"class_name": "Sequential"}, {}, np.zeros((1, 2, 2, 1))) == SKIPPED


def test_keras2_sequential_without_input_layer(tmp_path: Path) -> None:
    """Old Sequential configs give the input shape on the first layer."""
    flat = {"name": "flat", "batch_input_shape": [None, 2, 2, 1]}
    layers = [
        {"class_name": "Flatten", "config": flat},
        {"class_name": "Dense", "config": {"name": "fc", "units": 1, "use_bias": False}},
    ]
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}
    path = tmp_path / "k2seq.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [b"flat", b"fc"]
        g.create_group("flat").attrs["weight_names"] = []
        g.create_group("fc").attrs["weight_names"] = [b"fc/kernel:0"]
        g["fc"]["fc/kernel:0"] = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)
    model = load_model(path)
    assert model.preprocessing.input_shape == (1, 2, 2)
    x = np.array([[[[1.0, 0.0], [0.0, 1.0]]]], np.float32)
    np.testing.assert_allclose(model.graph(x), [[1.0 + 4.0]])
