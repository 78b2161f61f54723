"""A project saved with an imported model whose weights hold NaN/inf reopens exactly as
saved: the same tensors (NaN where it was) and the same "NaN or infinite" warning in the
import report (issue 10: such weights are shown, not fatal). The app's own network files
keep refusing non-finite weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx_helpers import save, tiny_model

from cnn_explorer.engine.archive import FileFormatError
from cnn_explorer.engine.serialize import load_state
from cnn_explorer.explorer import presets
from cnn_explorer.explorer.project import read_project, save_project
from cnn_explorer.explorer.project_model import SavedModel
from cnn_explorer.explorer.specs import worked_example_layers
from cnn_explorer.interchange.load import load_model
from cnn_explorer.interchange.saved_model import imported_from_saved, saved_meta


def test_project_with_nonfinite_imported_weights_reopens_as_saved(tmp_path: Path) -> None:
    w = np.full((2, 1, 3, 3), 0.1, np.float32)
    w[0, 0, 0, 0], w[1, 0, 1, 1] = np.nan, np.inf
    model = load_model(save(tiny_model(weight=w), tmp_path / "nan.onnx"))
    path = tmp_path / "p.cnnx"
    saved = SavedModel(model.graph, saved_meta(model))
    save_project(str(path), presets.WORKED_EXAMPLE[None], worked_example_layers(), model=saved)

    project = read_project(str(path))
    assert project.model is not None
    got = imported_from_saved(project.model.graph, project.model.meta)
    before, after = model.graph.state_arrays(), got.graph.state_arrays()
    assert sorted(before) == sorted(after)
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value)  # NaN compares equal to NaN here
    assert any(np.isnan(v).any() for v in after.values())
    assert any(np.isposinf(v).any() for v in after.values())
    assert any("2 NaN or infinite values" in m for m in got.report.warnings)
    assert got.report.text() == model.report.text()


def test_engine_refuses_nonfinite_weights_unless_allowed(tmp_path: Path) -> None:
    """The app's own network and project readers call load_state without the flag."""
    graph = load_model(save(tiny_model(), tmp_path / "tiny.onnx")).graph
    arrays = {k: v.copy() for k, v in graph.state_arrays().items()}
    key = sorted(arrays)[0]
    arrays[key].flat[0] = np.nan
    with pytest.raises(FileFormatError, match="not finite"):
        load_state(graph, arrays, "the file")
    load_state(graph, arrays, "the file", allow_nonfinite=True)
    assert np.isnan(graph.state_arrays()[key].flat[0])
