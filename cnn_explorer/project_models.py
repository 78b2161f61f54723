"""A project file (``.cnnx``) as a model for ``cnn-explorer run`` and ``export``: one of
the networks it holds, as an :class:`~cnn_explorer.interchange.model.ImportedModel`.

Why a module of its own at the top: the command lines live in ``interchange`` and project
files in ``explorer``, two packages that must not import each other. Only a module above
both may join them; ``app`` (the composition root) passes :func:`read_project_model` to
:func:`~cnn_explorer.interchange.load.load_model` as its ``project_reader``. Qt-free.

Which network: ``part`` ``"trained"`` (the Training tab's classifier), ``"model"`` (the
Model tab's imported model, with its own preprocessing and import report) or
``"explorer"`` (the Explorer's layer stack, at the size of the project's input); without
``part``, the first of these the project holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cnn_explorer.engine.graph import Graph
from cnn_explorer.explorer.project import Project, ProjectError, read_project
from cnn_explorer.explorer.specs import build_network
from cnn_explorer.interchange.load import PROJECT_PARTS
from cnn_explorer.interchange.model import (
    ImportedModel,
    ImportReport,
    InputShapeNeededError,
    ModelFileError,
    Preprocessing,
)
from cnn_explorer.interchange.saved_model import imported_from_saved


def available_parts(project: Project) -> list[str]:
    """The parts of :data:`PROJECT_PARTS` that ``project`` holds, in that order."""
    held = {"trained": project.trained is not None, "model": project.model is not None}
    return [p for p in PROJECT_PARTS if held.get(p, True)]


def read_project_model(
    path: Path, input_shape: Sequence[int] | None = None, part: str | None = None
) -> ImportedModel:
    """One network of the project at ``path``; ModelFileError names what is missing."""
    try:
        project = read_project(str(path))
    except ProjectError as exc:
        raise ModelFileError(str(exc).rstrip(".")) from None
    parts = available_parts(project)
    chosen = part or parts[0]
    if chosen not in parts:
        raise ModelFileError(
            f"{path.name} holds no {_TITLES[chosen]}; it holds: "
            + ", ".join(f"{p} ({_TITLES[p]})" for p in parts)
        )
    if chosen == "model":
        assert project.model is not None
        model = imported_from_saved(project.model.graph, project.model.meta)
        model.source = path
    elif chosen == "trained":
        assert project.trained is not None
        t = project.trained
        shape = t.input_shape or (tuple(int(v) for v in input_shape) if input_shape else None)
        if shape is None:
            raise InputShapeNeededError(
                f"{path.name}: the trained network does not record its input size"
            )
        net = t.network if isinstance(t.network, Graph) else Graph.from_network(t.network)
        model = _model(path, net, shape, tuple(t.class_names))
    else:
        stack = Graph.from_network(build_network(project.layers))
        model = _model(path, stack, tuple(project.input.shape), ())
    given = tuple(int(v) for v in input_shape) if input_shape else None
    if given is not None and given != model.preprocessing.input_shape:
        raise ModelFileError(
            f"the project's {_TITLES[chosen]} takes inputs of shape "
            f"{model.preprocessing.input_shape}, not {given}"
        )
    model.report.transformations.insert(0, f"the project's {_TITLES[chosen]}")
    return model


_TITLES = {
    "trained": "trained network",
    "model": "imported model",
    "explorer": "explorer layer stack",
}


def _model(path: Path, graph: Graph, shape: Sequence[int], names: tuple[str, ...]) -> ImportedModel:
    c, h, w = (int(v) for v in shape)
    try:
        graph.output_shapes((c, h, w))
    except ValueError as exc:  # the engine's ShapeError
        raise ModelFileError(f"{path.name}: the network does not fit its input: {exc}") from None
    prep = Preprocessing((c, h, w), colour="grey" if c == 1 else "rgb", class_names=names)
    report = ImportReport(source=path.name)
    report.transformations.append("a CNN Explorer project: read as saved, nothing translated")
    return ImportedModel(graph=graph, preprocessing=prep, report=report, source=path)


__all__ = ["available_parts", "read_project_model"]
