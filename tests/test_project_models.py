"""``cnn-explorer run`` and ``export`` take a project (``.cnnx``): its trained network, its
imported model or its explorer layer stack (``--part``), through the app's entry point
(``project_models`` joins the project reader to the interchange command lines)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.app import main as app_main
from cnn_explorer.engine.network import default_classifier
from cnn_explorer.explorer import presets
from cnn_explorer.explorer.project import TrainedState, save_project
from cnn_explorer.explorer.project_model import SavedModel
from cnn_explorer.explorer.specs import build_network, worked_example_layers
from cnn_explorer.interchange.load import load_model
from cnn_explorer.interchange.model import ModelFileError
from cnn_explorer.interchange.saved_model import saved_meta
from cnn_explorer.project_models import read_project_model

FIXTURES = Path(__file__).resolve().parent / "interchange" / "fixtures"
X = presets.WORKED_EXAMPLE[None]


def _trained() -> TrainedState:
    net = default_classifier((1, 12, 12), 3, seed=0)
    return TrainedState(net, ["zero", "one", "two"], (1, 12, 12))


@pytest.fixture
def full(tmp_path: Path) -> Path:
    """A project with all three parts."""
    imported = load_model(FIXTURES / "lenet5.onnx")
    path = tmp_path / "full.cnnx"
    saved = SavedModel(imported.graph, saved_meta(imported))
    save_project(str(path), X, worked_example_layers(), _trained(), saved)
    return path


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    """A project with the explorer stack only."""
    path = tmp_path / "plain.cnnx"
    save_project(str(path), X, worked_example_layers())
    return path


def test_each_part_reads_as_a_model(full: Path) -> None:
    trained = read_project_model(full)  # the default: the first part held
    assert trained.preprocessing.class_names == ("zero", "one", "two")
    x = np.random.default_rng(0).random((2, 1, 12, 12), dtype=np.float32)
    np.testing.assert_array_equal(trained.graph(x), _trained().network(x))
    model = read_project_model(full, part="model")
    lenet = load_model(FIXTURES / "lenet5.onnx")
    assert model.preprocessing == lenet.preprocessing
    assert model.report.self_check == lenet.report.self_check
    explorer = read_project_model(full, part="explorer")
    assert explorer.preprocessing.input_shape == X.shape
    want = build_network(worked_example_layers())(X[None])
    np.testing.assert_array_equal(explorer.graph(X[None]), want)
    assert "explorer layer stack" in explorer.report.transformations[0]


def test_a_missing_part_names_what_the_project_holds(plain: Path) -> None:
    with pytest.raises(ModelFileError, match=r"no trained network; it holds: explorer"):
        read_project_model(plain, part="trained")
    with pytest.raises(ModelFileError, match="takes inputs of shape"):
        read_project_model(plain, input_shape=(3, 9, 9))


def test_run_a_project_through_the_app(full: Path, tmp_path: Path, capsys) -> None:
    batch = tmp_path / "x.npy"
    np.save(batch, np.zeros((1, 1, 12, 12), np.float32))
    assert app_main(["run", str(full), str(batch), "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].split()[1] in ("zero", "one", "two")


def test_run_the_explorer_stack_saves_its_maps(plain: Path, tmp_path: Path, capsys) -> None:
    batch = tmp_path / "x.npy"
    np.save(batch, X[None])
    maps = tmp_path / "maps.npz"
    assert app_main(["run", str(plain), str(batch), "--out", str(maps)]) == 0
    with np.load(maps, allow_pickle=False) as saved:
        want = build_network(worked_example_layers())(X[None])
        np.testing.assert_array_equal(saved["output"], want)
    assert "output shape" in capsys.readouterr().out


@pytest.mark.parametrize("part", ["trained", "model", "explorer"])
def test_export_each_part_to_onnx_and_back(full: Path, part: str, tmp_path: Path) -> None:
    out = tmp_path / f"{part}.onnx"
    assert app_main(["export", str(full), "--part", part, "--to", str(out)]) == 0
    src = read_project_model(full, part=part)
    back = load_model(out)
    x = np.random.default_rng(1).random((2, *src.preprocessing.input_shape), dtype=np.float32)
    np.testing.assert_allclose(back.graph(x), src.graph(x), rtol=1e-5, atol=1e-5)
    assert back.preprocessing.class_names == src.preprocessing.class_names


def test_part_of_a_model_file_and_a_bad_project_fail_with_one_line(tmp_path: Path, capsys) -> None:
    batch = tmp_path / "x.npy"
    np.save(batch, np.zeros((1, 1, 32, 32), np.float32))
    assert app_main(["run", str(FIXTURES / "lenet5.onnx"), str(batch), "--part", "model"]) == 2
    assert "only be chosen of a project" in capsys.readouterr().err
    bad = tmp_path / "bad.cnnx"
    bad.write_bytes(b"not a zip")
    assert app_main(["export", str(bad), "--to", str(tmp_path / "o.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.cnnx" in err


def test_without_a_project_reader_a_project_is_refused(plain: Path) -> None:
    with pytest.raises(ModelFileError, match="is a project"):
        load_model(plain)


def test_a_fine_tuned_graph_runs_as_the_trained_network(tmp_path: Path) -> None:
    """A model fine-tuned in the Training tab is a graph, not a chain."""
    resnet = load_model(FIXTURES / "resnet.onnx", self_check=False)
    path = tmp_path / "tuned.cnnx"
    state = TrainedState(resnet.graph, ["a", "b", "c", "d"], (3, 24, 24))
    save_project(str(path), X, worked_example_layers(), state)
    tuned = read_project_model(path)
    x = np.random.default_rng(2).random((2, 3, 24, 24), dtype=np.float32)
    np.testing.assert_array_equal(tuned.graph(x), resnet.graph(x))
    assert tuned.preprocessing.class_names == ("a", "b", "c", "d")
