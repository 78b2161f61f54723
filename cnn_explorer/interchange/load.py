"""One entry point for every model file: :func:`load_model` checks the path and picks the
reader by suffix. The GUI and the command line call only this.

A project (``.cnnx``) is read by ``explorer.project``, which this package must not import
(independent siblings): the caller that can see both (``cnn_explorer.project_models``,
passed in by ``app``) hands :func:`load_model` a :data:`ProjectReader`."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from cnn_explorer.engine.graph import Graph
from cnn_explorer.engine.serialize import FileFormatError
from cnn_explorer.engine.serialize import load_model as load_network_file
from cnn_explorer.interchange.files import check_model_file
from cnn_explorer.interchange.model import (
    ImportedModel,
    ImportReport,
    InputShapeNeededError,
    ModelFileError,
    Preprocessing,
)

MODEL_SUFFIXES = (".onnx", ".keras", ".h5", ".safetensors", ".pt", ".pth", ".npz")
"""Model files :func:`load_model` reads (any case)."""

PROJECT_SUFFIX = ".cnnx"
PROJECT_PARTS = ("trained", "model", "explorer")
"""The networks a project can hold: the Training tab's trained network, the Model tab's
imported model, the Explorer's layer stack."""

ProjectReader = Callable[[Path, "Sequence[int] | None", "str | None"], ImportedModel]
"""``(path, input_shape, part) -> ImportedModel``: one part of a project (``part`` None:
the first of :data:`PROJECT_PARTS` the project holds)."""


def load_model(
    path: str | os.PathLike[str],
    *,
    input_shape: Sequence[int] | None = None,
    self_check: bool = True,
    project_reader: ProjectReader | None = None,
    part: str | None = None,
) -> ImportedModel:
    """Import the model file at ``path`` as an engine graph with its preprocessing and an
    import report.

    ``input_shape`` is the ``(C, H, W)`` to import at; needed when the model's height and
    width are not fixed, and otherwise must agree with them. ``self_check`` compares the
    imported graph with a reference run on one random input (plain NumPy: seconds for a
    big model). ``part`` picks a network of a project (one of :data:`PROJECT_PARTS`), read
    by ``project_reader``. Raises :class:`ModelFileError` with one sentence for the user.
    """
    p = Path(path)
    check_model_file(p)
    suffix = p.suffix.lower()
    if part is not None and suffix != PROJECT_SUFFIX:
        raise ModelFileError(f"a part ({part}) can only be chosen of a project ({PROJECT_SUFFIX})")
    if suffix == PROJECT_SUFFIX:
        if project_reader is None:
            raise ModelFileError(
                f"{p.name} is a project: open it as a project, not as a model file"
            )
        if part is not None and part not in PROJECT_PARTS:
            choices = ", ".join(PROJECT_PARTS)
            raise ModelFileError(f"the part must be one of {choices}, not {part!r}")
        return project_reader(p, input_shape, part)
    if suffix == ".onnx":
        from cnn_explorer.interchange.onnx_import import import_onnx

        return import_onnx(p, input_shape=input_shape, check=self_check)
    if suffix in (".keras", ".h5"):
        from cnn_explorer.interchange.keras_import import import_keras

        return import_keras(p, input_shape=input_shape, check=self_check)
    if suffix in (".safetensors", ".pt", ".pth"):
        from cnn_explorer.interchange.safetensors_import import import_state_dict_file

        return import_state_dict_file(p, input_shape=_shape3(input_shape))
    if suffix == ".npz":
        return _load_network_file(p, input_shape)
    raise ModelFileError(
        f"{p.name} is not a model file this app reads; choose one of: {', '.join(MODEL_SUFFIXES)}"
    )


def _shape3(shape: Sequence[int] | None) -> tuple[int, ...] | None:
    return None if shape is None else tuple(int(v) for v in shape)


def _load_network_file(path: Path, input_shape: Sequence[int] | None) -> ImportedModel:
    """A network or graph saved by this app (``cnn-explorer train --save``, Save weights):
    nothing to translate, so the report says so and there is no self-check."""
    try:
        net, extra = load_network_file(path)
    except FileFormatError as exc:
        raise ModelFileError(str(exc)) from None
    graph = net if isinstance(net, Graph) else Graph.from_network(net)
    recorded = extra.get("input_shape")
    shape = _shape3(input_shape) or (tuple(int(v) for v in recorded) if recorded else None)
    if shape is None or len(shape) != 3:
        raise InputShapeNeededError(
            f"{path.name} does not record its input size: give it as (channels, height, width)"
        )
    prep = Preprocessing(
        input_shape=(shape[0], shape[1], shape[2]),
        colour="grey" if shape[0] == 1 else "rgb",
        class_names=tuple(str(n) for n in extra.get("class_names") or ()),
    )
    report = ImportReport(source=path.name)
    report.transformations.append("a CNN Explorer network file: read as saved, nothing translated")
    return ImportedModel(graph=graph, preprocessing=prep, report=report, source=path)
