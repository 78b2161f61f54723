"""One entry point for every model file: :func:`load_model` checks the path and picks the
reader by suffix. The GUI and the command line call only this."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cnn_explorer.interchange.files import check_model_file
from cnn_explorer.interchange.model import ImportedModel, ModelFileError

MODEL_SUFFIXES = (".onnx",)
"""Model files :func:`load_model` reads (any case)."""


def load_model(
    path: str | os.PathLike[str],
    *,
    input_shape: Sequence[int] | None = None,
    self_check: bool = True,
) -> ImportedModel:
    """Import the model file at ``path`` as an engine graph with its preprocessing and an
    import report.

    ``input_shape`` is the ``(C, H, W)`` to import at; needed when the model's height and
    width are not fixed, and otherwise must agree with them. ``self_check`` compares the
    imported graph with a reference run on one random input (plain NumPy: seconds for a
    big model). Raises :class:`ModelFileError` with one sentence for the user.
    """
    p = Path(path)
    check_model_file(p)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        from cnn_explorer.interchange.onnx_import import import_onnx

        return import_onnx(p, input_shape=input_shape, check=self_check)
    if suffix in (".safetensors", ".pt", ".pth", ".h5", ".keras"):
        raise ModelFileError(f"{p.name}: {suffix} models are not supported yet")
    raise ModelFileError(
        f"{p.name} is not a model file this app reads; choose one of: {', '.join(MODEL_SUFFIXES)}"
    )
