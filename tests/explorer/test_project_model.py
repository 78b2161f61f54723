"""An imported model saved in a project (explorer/project_model.py with the importer's
metadata from interchange/saved_model.py): the round trip keeps the graph's outputs bit for
bit, the preprocessing and the import report; projects without the section open as before;
every damaged field is refused with one sentence (ProjectError for the graph and arrays,
ModelFileError for the metadata)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnn_explorer.explorer import presets
from cnn_explorer.explorer.project import ProjectError, read_project, save_project
from cnn_explorer.explorer.project_model import SavedModel
from cnn_explorer.explorer.specs import worked_example_layers
from cnn_explorer.interchange.load import load_model
from cnn_explorer.interchange.model import ModelFileError
from cnn_explorer.interchange.saved_model import imported_from_saved, saved_meta

FIXTURES = Path(__file__).resolve().parents[1] / "interchange" / "fixtures"


def _save(tmp_path: Path, name: str = "resnet") -> tuple[Path, Any]:
    model = load_model(FIXTURES / f"{name}.onnx")
    path = tmp_path / "p.cnnx"
    saved = SavedModel(model.graph, saved_meta(model))
    save_project(str(path), presets.WORKED_EXAMPLE[None], worked_example_layers(), model=saved)
    return path, model


@pytest.mark.parametrize("name", ["resnet", "squeezenet", "vgg_bn"])
def test_round_trip_keeps_outputs_preprocessing_and_report(tmp_path, name):
    path, model = _save(tmp_path, name)
    saved = read_project(str(path)).model
    assert saved is not None
    got = imported_from_saved(saved.graph, saved.meta)
    assert got.preprocessing == model.preprocessing
    assert got.report.text() == model.report.text()
    assert got.source.name == f"{name}.onnx"
    x = np.random.default_rng(0).normal(size=(2, *model.preprocessing.input_shape))
    x = x.astype(np.float32)
    assert np.array_equal(got.graph(x), model.graph(x))


def test_projects_without_a_model_open_as_before(tmp_path):
    path = tmp_path / "old.cnnx"
    save_project(str(path), presets.WORKED_EXAMPLE[None], worked_example_layers())
    project = read_project(str(path))
    assert project.model is None and len(project.layers) == len(worked_example_layers())


def _edit(path: Path, change) -> None:
    """Rewrite project.json (and optionally the arrays) of a saved project."""
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("project.json"))
        arrays = dict(np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False))
    change(meta, arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.json", json.dumps(meta))
        zf.writestr("arrays.npz", buf.getvalue())


def _set(key_path: list[Any], value: Any):
    def change(meta: dict, _arrays: dict) -> None:
        d = meta["model"]
        for k in key_path[:-1]:
            d = d[k]
        d[key_path[-1]] = value

    return change


def _nan(_meta: dict, arrays: dict) -> None:
    arrays["model/0"] = np.full_like(arrays["model/0"], np.nan)


def _drop(_meta: dict, arrays: dict) -> None:
    del arrays["model/1"]


def _reshape(_meta: dict, arrays: dict) -> None:
    arrays["model/0"] = np.zeros(7, np.float32)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (_set(["graph"], "conv"), "no graph description"),
        (_set(["graph", "nodes"], [{"layer": {"kind": "teleport"}}]), "cannot be rebuilt"),
        (_set(["arrays"], ["a", "b"]), "do not match"),
        (_set(["arrays"], [1, 2]), "do not match"),
        (_set(["meta"], [1]), "metadata"),
        (_drop, "lacks arrays"),
        (_reshape, "p.cnnx"),
    ],
)
def test_a_damaged_model_section_is_refused(tmp_path, change, words):
    path, _ = _save(tmp_path)
    _edit(path, change)
    with pytest.raises(ProjectError) as err:
        read_project(str(path))
    assert words in str(err.value) and "p.cnnx" in str(err.value)


@pytest.mark.parametrize(
    ("key_path", "value", "words"),
    [
        (["preprocessing", "colour"], "cmyk", "colour"),
        (["preprocessing", "input_shape"], [2, 24, 24], "3 channels"),
        (["preprocessing", "input_shape"], [3, 0, 5], "input shape"),
        (["preprocessing", "std"], [0.0], "std"),
        (["report"], None, "import report"),
        (["report", "entries"], [["a", "b", "teleported", ""]], "status"),
        (["report", "entries"], [["a", "b"]], "entry"),
        (["report", "warnings"], [3], "warnings"),
        (["report", "self_check"], {"passed": "yes"}, "self-check"),
        (["source"], ["x"], "source"),
    ],
)
def test_damaged_metadata_is_refused_by_the_importers_types(tmp_path, key_path, value, words):
    path, _ = _save(tmp_path)
    saved = read_project(str(path)).model
    assert saved is not None
    d = saved.meta
    for k in key_path[:-1]:
        d = d[k]
    d[key_path[-1]] = value
    with pytest.raises(ModelFileError) as err:
        imported_from_saved(saved.graph, saved.meta)
    assert words in str(err.value)
    with pytest.raises(ModelFileError):
        imported_from_saved(saved.graph, "nope")


def test_nan_weights_written_into_the_file_open_with_a_warning(tmp_path):
    """Issue 10: NaN/inf weights are shown, not fatal, also when reopening a project."""
    path, _ = _save(tmp_path)
    _edit(path, _nan)
    saved = read_project(str(path)).model
    assert saved is not None
    got = imported_from_saved(saved.graph, saved.meta)
    assert any(np.isnan(v).all() for v in got.graph.state_arrays().values())
    assert any("NaN or infinite" in w for w in got.report.warnings)
