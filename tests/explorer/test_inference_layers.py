"""BatchNorm and Dropout in the explorer, as in inference: a trained network with them
opens fully ("Open in explorer" used to stop at the first of them), its maps equal the
engine network's forward pass in inference mode bit for bit, a cell's arithmetic shows the
running statistics, and projects keep them (and refuse damaged ones)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.engine.layers import (
    Activation,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
)
from cnn_explorer.engine.network import Network
from cnn_explorer.explorer import edits
from cnn_explorer.explorer.explain import Selection, explain_trace, size_formula
from cnn_explorer.explorer.model import Explorer
from cnn_explorer.explorer.project import ProjectError, load_project, save_project
from cnn_explorer.explorer.specs import specs_from_engine


def trained_network() -> Network:
    """conv → BN (learned statistics) → ReLU → Dropout → max pool → Flatten → Dense."""
    rng = np.random.default_rng(4)
    bn = BatchNorm2D(3)
    bn.params["gamma"][...] = [1.5, -0.5, 0.75]
    bn.params["beta"][...] = [0.1, 0.2, -0.3]
    bn.buffers["running_mean"][...] = [0.25, -0.125, 0.5]
    bn.buffers["running_var"][...] = [2.0, 0.5, 1.25]
    return Network(
        [
            Conv2D(1, 3, 3, padding=1, rng=rng),
            bn,
            Activation("relu"),
            Dropout(0.4),
            MaxPool2D(2),
            Flatten(),
            Dense(27, 2, rng=rng),
        ]
    )


def explorer_of(net: Network, x: np.ndarray) -> Explorer:
    specs, note = specs_from_engine(net.layers)
    assert [s.kind for s in specs] == ["conv", "batchnorm", "act", "dropout", "maxpool"]
    assert "from layer 6 (flatten)" in note
    model = Explorer()
    for step in edits.new_document(model, x, specs, "open trained"):
        step.redo(model)
    model.recompute()
    model.refine()
    return model


X = np.random.default_rng(5).normal(size=(1, 7, 6)).astype(np.float32)


def test_a_network_with_batchnorm_and_dropout_opens_fully_and_matches_inference() -> None:
    net = trained_network()
    model = explorer_of(net, X)
    expected = net.forward(X[None], training=False)[:6]
    maps = model.results.maps
    assert len(maps) == 6
    for got, want in zip(maps, expected, strict=True):
        np.testing.assert_array_equal(got, want[0])
    np.testing.assert_array_equal(maps[4], maps[3])  # dropout: the identity
    titles = [s.title for s in model.layers]
    assert titles[1] == "BatchNorm (3 channels, inference)"
    assert titles[3] == "Dropout 0.4 (identity in inference)"


def test_editing_a_conv_before_batchnorm_keeps_the_maps_exact() -> None:
    net = trained_network()
    model = explorer_of(net, X)
    for step in edits.set_weight(model, 0, 1, 0, 1, 1, 2.5):
        step.redo(model)
    model.recompute()
    net.layers[0].params["weight"][1, 0, 1, 1] = 2.5
    expected = net.forward(X[None], training=False)
    for got, want in zip(model.results.maps, expected, strict=False):
        np.testing.assert_allclose(got, want[0], rtol=1e-6, atol=1e-6)
    model.refine()
    for got, want in zip(model.results.maps, expected, strict=False):
        np.testing.assert_array_equal(got, want[0])


def test_a_batchnorm_cell_explains_its_statistics_and_traces_back() -> None:
    model = explorer_of(trained_network(), X)
    maps = model.results.maps
    text, trace = explain_trace(model.layers, maps, Selection(2, 2, 3, 4))
    assert "(x − 0.5) / √(1.25 + 1e-05)" in text
    assert trace and trace[0] == Selection(1, 2, 3, 4)  # on to the conv's cell
    text, trace = explain_trace(model.layers, maps, Selection(4, 0, 1, 1))
    assert text.startswith("layer 4 Dropout") and trace[0] == Selection(3, 0, 1, 1)
    assert size_formula(model.layers[1], (3, 7, 6)) == "elementwise: shape unchanged"


def test_projects_keep_batchnorm_and_dropout(tmp_path: Path) -> None:
    model = explorer_of(trained_network(), X)
    path = str(tmp_path / "bn.cnnx")
    save_project(path, X, model.layers)
    x, layers = load_project(path)
    np.testing.assert_array_equal(x, X)
    assert all(a.same_values(b) for a, b in zip(layers, model.layers, strict=True))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(var=[1.0, -1.0, 1.0]), "cannot be negative"),
        (lambda c: c.update(mean=[0.0]), "one value per channel"),
        (lambda c: c.update(gamma="1, 2, 3"), "list of 1 to"),
        (lambda c: c.update(eps=0), "eps must be"),
    ],
)
def test_a_damaged_batchnorm_is_refused_with_the_field_named(
    tmp_path: Path, change: object, message: str
) -> None:
    model = explorer_of(trained_network(), X)
    path = tmp_path / "bad.cnnx"
    save_project(str(path), X, model.layers)
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("project.json"))
        arrays = zf.read("arrays.npz")
    change(meta["layers"][1]["config"])  # type: ignore[operator]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("project.json", json.dumps(meta))
        zf.writestr("arrays.npz", arrays)
    path.write_bytes(buf.getvalue())
    with pytest.raises(ProjectError, match=message):
        load_project(str(path))


def test_a_dropout_probability_out_of_range_is_refused(tmp_path: Path) -> None:
    model = explorer_of(trained_network(), X)
    path = tmp_path / "bad.cnnx"
    save_project(str(path), X, model.layers)
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("project.json"))
        arrays = zf.read("arrays.npz")
    meta["layers"][3]["config"]["p"] = 1.0
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.json", json.dumps(meta))
        zf.writestr("arrays.npz", arrays)
    with pytest.raises(ProjectError, match=r"layer 4 \(dropout\): p must be"):
        load_project(str(path))
