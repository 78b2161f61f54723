"""``cnn-explorer run MODEL INPUT``: run an imported model on one image or a batch.

MODEL is any file :func:`~cnn_explorer.interchange.load.load_model` reads, or a project
(``.cnnx``: ``--part`` picks its trained network, imported model or explorer stack) when
the caller passes a project reader (``app`` does).

INPUT is an image (PNG, JPEG, BMP, GIF: resized to the model's input size and
preprocessed as the model's :class:`~cnn_explorer.interchange.model.Preprocessing` says,
each part overridable with ``--grey/--rgb/--bgr``, ``--scale``, ``--mean``, ``--std``) or
a ``.npy`` array ``(N, C, H, W)`` (or one ``(C, H, W)`` image) used as it is. ``--size
HxW`` chooses the input size of a model whose height and width are not fixed.

Prints the top ``--top`` classes per image for a classifier (with names when the model
carries them), otherwise the output's shape and range. ``--out MAPS.npz`` saves every
tensor keyed by node name (``input`` included) and the final output under ``output``,
atomically. Any bad argument or file exits with status 2 and one line saying why.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import IO

import numpy as np

from cnn_explorer.engine import save_npz_atomic
from cnn_explorer.interchange.files import check_regular_file, mb
from cnn_explorer.interchange.load import PROJECT_PARTS, ProjectReader, load_model
from cnn_explorer.interchange.model import (
    OUTPUT_KEY,
    ImportedModel,
    InputShapeNeededError,
    ModelFileError,
    Preprocessing,
)
from cnn_explorer.limits import IMAGE_SUFFIXES, MAX_DOCUMENT_BYTES

EXIT_BAD_INPUT = 2
PROG = "cnn-explorer run"


class RunError(ValueError):
    """A bad argument or input file: the message is the one line printed."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Run a model file (ONNX, Keras, safetensors, .pt, .npz) or a .cnnx project "
        "on an image or a .npy array and print its top "
        "classes; optionally save every intermediate map.",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="model file (.onnx, .keras, .h5, .safetensors, .pt, .pth, .npz) or project (.cnnx)",
    )
    p.add_argument(
        "--part",
        choices=PROJECT_PARTS,
        help="which network of a project: trained, model (imported) or explorer (the layer "
        "stack); default: the first it holds",
    )
    p.add_argument("input", metavar="INPUT", help="image (PNG, JPEG, BMP, GIF) or .npy array")
    p.add_argument("--top", type=int, default=5, metavar="K", help="classes to print (5)")
    p.add_argument("--out", metavar="MAPS.npz", help="save every tensor by node name")
    colour = p.add_mutually_exclusive_group()
    colour.add_argument("--grey", "--gray", action="store_true", help="feed one grey channel")
    colour.add_argument("--rgb", action="store_true", help="feed RGB")
    colour.add_argument("--bgr", action="store_true", help="feed BGR")
    p.add_argument("--size", metavar="HxW", help="input size for models without a fixed one")
    p.add_argument("--scale", type=float, help="pixel multiplier (1/255 → 0–1; 1 → 0–255)")
    p.add_argument("--mean", metavar="M[,M,M]", help="per-channel mean after scaling")
    p.add_argument("--std", metavar="S[,S,S]", help="per-channel std after scaling")
    return p


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise RunError(f"{flag} takes numbers separated by commas, not {text!r}") from None


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise RunError(f"--size takes HxW, e.g. 224x224, not {text!r}") from None
    if h < 1 or w < 1:
        raise RunError(f"--size must be positive, not {text!r}")
    return h, w


def _check_npy_header(path: Path, size: int) -> None:
    """Refuse a .npy whose header does not describe a numeric array filling exactly the
    rest of the file, before NumPy allocates what the header claims."""
    fmt = np.lib.format
    try:
        with path.open("rb") as fh:
            version = fmt.read_magic(fh)
            reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = reader(fh)
            data_bytes = size - fh.tell()
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise RunError(f"{path.name} is not a readable .npy array ({exc})") from None
    if dtype.hasobject or dtype.kind not in "fiub":
        raise RunError(f"{path.name} must hold a numeric array, not {dtype}")
    if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize != data_bytes:
        raise RunError(f"{path.name} is truncated or damaged: its header says {shape} {dtype}")


def _load_npy(path: Path) -> np.ndarray:
    size = check_regular_file(path, "the input file")
    if size > MAX_DOCUMENT_BYTES:
        raise RunError(f"{path.name} is {mb(size)}, more than the {mb(MAX_DOCUMENT_BYTES)} allowed")
    _check_npy_header(path, size)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise RunError(f"{path.name} is not a readable .npy array ({exc})") from None
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or 0 in arr.shape:
        raise RunError(f"{path.name} has shape {arr.shape}; it must be (N, C, H, W) or (C, H, W)")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _channels(args: argparse.Namespace) -> int | None:
    return 1 if args.grey else 3 if (args.rgb or args.bgr) else None


def _import(args: argparse.Namespace, npy: np.ndarray | None) -> ImportedModel:
    """The model at the size of the .npy array, or its own size, or ``--size`` when it
    has none (``--size`` must agree with a fixed size)."""
    size = _size(args.size) if args.size else None
    shape = tuple(npy.shape[1:]) if npy is not None else None
    how = {"self_check": False, "project_reader": args.project_reader, "part": args.part}
    try:
        model = load_model(args.model, input_shape=shape, **how)
    except InputShapeNeededError:
        if size is None:
            raise RunError("the model's input size is not fixed: give it with --size HxW") from None
        return load_model(args.model, input_shape=(_channels(args) or 3, *size), **how)
    fixed = model.preprocessing.input_shape[1:]
    if size is not None and size != fixed:
        raise RunError(
            f"the model's input is fixed at {fixed[0]}x{fixed[1]}, not --size {args.size}"
        )
    return model


def _preprocessing(args: argparse.Namespace, pre: Preprocessing) -> Preprocessing:
    changes: dict[str, object] = {}
    if args.grey or args.rgb or args.bgr:
        changes["colour"] = "grey" if args.grey else "rgb" if args.rgb else "bgr"
    if args.scale is not None:
        changes["scale"] = args.scale
    if args.mean is not None:
        changes["mean"] = _floats(args.mean, "--mean")
    if args.std is not None:
        changes["std"] = _floats(args.std, "--std")
    try:
        return dataclasses.replace(pre, **changes)  # type: ignore[arg-type]
    except ModelFileError as exc:
        raise RunError(str(exc)) from None


def _image_input(path: Path, pre: Preprocessing) -> np.ndarray:
    from cnn_explorer.imageio import ImageLoadError, decode_image  # QtGui: only when needed

    _, h, w = pre.input_shape
    channels = 1 if pre.colour == "grey" else 3  # the app's own grey conversion
    try:
        decoded, _ = decode_image(path, (h, w), channels)
    except ImageLoadError as exc:
        raise RunError(str(exc)) from None
    pixels = np.clip(np.rint(decoded.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
    try:
        return pre.apply(pixels)
    except ModelFileError as exc:
        raise RunError(str(exc)) from None


def _probabilities(scores: np.ndarray) -> np.ndarray:
    """``(N, K)`` scores as probabilities: used as they are when each row already is a
    distribution (the model ends in Softmax), else softmax-ed."""
    rows_sum = scores.sum(axis=1)
    if np.all(scores >= 0) and np.allclose(rows_sum, 1.0, atol=1e-4):
        return scores
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _print_result(out: IO[str], y: np.ndarray, names: tuple[str, ...], top: int) -> None:
    per_image = y.shape[1:]
    if len(per_image) == 1 or (len(per_image) == 3 and per_image[1:] == (1, 1)):
        scores = y.reshape(len(y), -1).astype(np.float64)
        probs = _probabilities(scores)
        k = min(top, scores.shape[1])
        for i, row in enumerate(probs):
            out.write(f"image {i}:\n" if len(y) > 1 else "")
            for rank, c in enumerate(np.argsort(-row, kind="stable")[:k], start=1):
                label = names[c] if c < len(names) else f"class {c}"
                out.write(f"{rank:>3}. {label:<24} {row[c]:.4f}  (score {scores[i, c]:.4g})\n")
        return
    out.write(
        f"output shape {y.shape}, min {float(np.nanmin(y)):.4g}, max {float(np.nanmax(y)):.4g}, "
        f"mean {float(np.nanmean(y)):.4g}\n"
    )


def _check_out(path: str) -> Path:
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise RunError(f"{p} is a folder: give a file name such as {p / 'maps.npz'}")
    if not parent.is_dir():
        raise RunError(f"the folder {parent} does not exist")
    if p.suffix.lower() != ".npz":
        raise RunError(f"--out must name a .npz file, not {p.name}")
    return p


def run(args: argparse.Namespace, out: IO[str], err: IO[str]) -> None:
    if args.top < 1:
        raise RunError("--top must be 1 or more")
    out_path = _check_out(args.out) if args.out else None
    src = Path(args.input)
    suffix = src.suffix.lower()
    if suffix != ".npy" and suffix not in IMAGE_SUFFIXES:
        raise RunError(f"{src.name} is neither an image ({', '.join(IMAGE_SUFFIXES)}) nor .npy")
    npy = _load_npy(src) if suffix == ".npy" else None
    if npy is None:
        check_regular_file(src, "the input file")
    model = _import(args, npy)
    for warning in model.report.warnings:
        err.write(f"{PROG}: warning: {warning}\n")
    pre = _preprocessing(args, model.preprocessing)
    x = npy if npy is not None else _image_input(src, pre)
    shapes = model.graph.output_shapes(model.preprocessing.input_shape).values()
    need = 4 * len(x) * sum(int(np.prod(s)) for s in shapes)
    if need > MAX_DOCUMENT_BYTES:
        raise RunError(f"{len(x)} inputs need about {mb(need)} of maps; run fewer at once")
    with np.errstate(all="ignore"):
        tensors = model.graph.forward(x)
    y = tensors[model.graph.output]
    _print_result(out, y, pre.class_names, args.top)
    if out_path is not None:
        arrays = {**tensors, OUTPUT_KEY: y}
        try:
            save_npz_atomic(out_path, arrays)
        except OSError as exc:
            raise RunError(f"could not write {out_path}: {exc.strerror or exc}") from None
        out.write(f"saved {len(arrays)} tensors to {out_path}\n")


def main(
    argv: list[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    project_reader: ProjectReader | None = None,
) -> int:
    """Run the command; 0 on success, 2 with one line on stderr for any bad input.
    ``project_reader`` opens ``.cnnx`` projects (see :mod:`..load`)."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = build_parser().parse_args(argv)
    args.project_reader = project_reader
    try:
        run(args, out, err)
    except (RunError, ModelFileError) as exc:
        err.write(f"{PROG}: {exc}\n")
        return EXIT_BAD_INPUT
    out.flush()
    return 0
