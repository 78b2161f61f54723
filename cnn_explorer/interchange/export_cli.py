"""``cnn-explorer export MODEL --to OUT.onnx | OUT.py``: write a model for other tools.

MODEL is any model :func:`cnn_explorer.interchange.load.load_model` reads: a network file
saved by the app or ``cnn-explorer train --save`` (``.npz``), ONNX, Keras, a state_dict
(``.safetensors``, and ``.pt``/``.pth`` when torch is installed), or a project (``.cnnx``,
``--part`` trained | model | explorer) when the caller passes a project reader.
``--to OUT.onnx`` writes ONNX (opset 17); ``--to OUT.py`` writes PyTorch source and
``OUT.safetensors`` beside it. Files are replaced only once fully written.

The input shape comes from the model file when it records one, else from
``--input-shape C,H,W``. Exit status 0 on success; 2 with one line on stderr for a bad
argument, an unreadable model or a layer the format cannot express.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import IO, Any

from cnn_explorer.engine.archive import FileFormatError
from cnn_explorer.interchange.export_common import ExportError
from cnn_explorer.interchange.load import PROJECT_PARTS, ProjectReader, load_model
from cnn_explorer.interchange.model import InputShapeNeededError, ModelFileError, Preprocessing

EXIT_OK = 0
EXIT_BAD = 2
FORMATS = (".onnx", ".py")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cnn-explorer export",
        description="Export a network as ONNX (OUT.onnx) or as PyTorch code plus weights "
        "(OUT.py and OUT.safetensors).",
    )
    p.add_argument("model", metavar="MODEL", help="model file or project (.cnnx)")
    p.add_argument(
        "--part",
        choices=PROJECT_PARTS,
        help="which network of a project: trained, model (imported) or explorer (the layer "
        "stack); default: the first it holds",
    )
    p.add_argument("--to", required=True, metavar="OUT", help="OUT.onnx or OUT.py")
    p.add_argument(
        "--input-shape",
        metavar="C,H,W",
        help="input size of one image, when the model file does not record it",
    )
    return p


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise ExportError(f"--input-shape {text!r} must be numbers like 3,32,32") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ExportError(f"--input-shape {text!r} must be three positive numbers C,H,W")
    return shape


def load_for_export(
    path: Path,
    input_shape: tuple[int, ...] | None,
    project_reader: ProjectReader | None = None,
    part: str | None = None,
) -> tuple[Any, tuple[int, ...], Preprocessing, list[str]]:
    """``(graph, input_shape, preprocessing, class_names)`` from any model file
    :func:`~cnn_explorer.interchange.load.load_model` reads."""
    try:
        imported = load_model(
            path, input_shape=input_shape, project_reader=project_reader, part=part
        )
    except InputShapeNeededError:
        raise ExportError(
            f"{path} does not record its input size: add --input-shape C,H,W"
        ) from None
    prep = imported.preprocessing
    return imported.graph, input_shape or prep.input_shape, prep, list(prep.class_names)


def main(
    argv: list[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    project_reader: ProjectReader | None = None,
) -> int:
    """Run the export; returns the exit status. ``project_reader`` opens ``.cnnx``
    projects (see :mod:`..load`)."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    target = Path(args.to)
    try:
        if target.suffix.lower() not in FORMATS:
            raise ExportError(f"--to {args.to}: choose a name ending in .onnx or .py")
        if not target.parent.is_dir():
            raise ExportError(f"--to {args.to}: the folder {target.parent} does not exist")
        model, shape, prep, names = load_for_export(
            Path(args.model), _shape(args.input_shape), project_reader, args.part
        )
        if target.suffix.lower() == ".onnx":
            from cnn_explorer.interchange.onnx_export import save_onnx

            save_onnx(target, model, shape, preprocessing=prep, class_names=names)
            written = [target]
        else:
            from cnn_explorer.interchange.torch_export import save_torch

            written = list(save_torch(target, model, shape, preprocessing=prep, class_names=names))
    except (ExportError, ModelFileError, FileFormatError, OSError) as exc:
        print(f"cnn-explorer export: {exc}", file=err)
        return EXIT_BAD
    for path in written:
        print(f"wrote {path}", file=out)
    return EXIT_OK


__all__ = ["EXIT_BAD", "EXIT_OK", "build_parser", "load_for_export", "main"]
