"""``cnn-explorer train DATA_DIR``: train the default CNN from a terminal.

DATA_DIR is an image folder (one subfolder per class, see :mod:`cnn_explorer.training.image_folder`)
or ``builtin:shapes`` for the built-in procedural dataset. Progress goes to stderr (a bar on
a terminal, one line per epoch otherwise); the last line on stdout is exactly
``validation accuracy: 0.9731``, so scripts can ``tail -1``. A bad DATA_DIR exits with
status 2 and one line saying why.

The defaults are chosen to train a small dataset well in well under a minute on two cores
(sklearn's 8×8 digits as PNG folders: ≥ 95 % validation accuracy, see
``python -m cnn_explorer.bench.training``): Adam, lr 0.01, batch 32, 12 epochs, images at
their native size when they all share one (else 28×28), colour detected automatically.

The helpers here (:func:`load_data`, :func:`split`, :func:`make_optimizer`) are shared with
the Training tab so the GUI and the terminal train identically. No Qt widgets: QtGui is only
used (by the image-folder loader) to decode files.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

DEFAULT_EPOCHS = 12
DEFAULT_LR = 0.01
DEFAULT_BATCH = 32
DEFAULT_VAL_SPLIT = 0.2
DEFAULT_OPTIMIZER = "adam"
EXIT_BAD_DATA = 2
EXIT_NONFINITE = 3
EXIT_INTERRUPTED = 130


class DataError(ValueError):
    """DATA_DIR cannot be used; the message is one line for the user."""


@dataclass
class Split:
    """Train/validation arrays: ``x_*`` ``(N, C, H, W)`` float32, ``y_*`` ``(N,)`` int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def load_data(
    spec: str,
    image_size: int | None = None,
    channels: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Any, str]:
    """``(LabeledImages, summary text)`` for a folder path or ``builtin:NAME``.

    ``channels`` None = automatic (gray if every pixel is gray). Raises :class:`DataError`
    with the loader's one-sentence reason.
    """
    from cnn_explorer.training.data import is_builtin, load_builtin
    from cnn_explorer.training.image_folder import ImageFolderError, load_image_folder

    try:
        if is_builtin(spec):
            data = load_builtin(spec, image_size, channels or 1)
            counts = ", ".join(f"{k}: {v}" for k, v in data.counts().items())
            _, h, w = data.input_shape
            return data, f"{len(data)} images in {data.num_classes} classes, {h}×{w}\n  {counts}"
        data, summary = load_image_folder(spec, image_size, channels, progress=progress)
    except (ImageFolderError, ValueError, OSError) as exc:
        raise DataError(str(exc).splitlines()[0]) from exc
    return data, summary.text()


def split(data: Any, val_fraction: float, seed: int) -> Split:
    """Stratified, seeded split (every class appears in validation when it has ≥ 2 images)."""
    from cnn_explorer.engine.training import stratified_split

    tr, va = stratified_split(data.labels, val_fraction, seed)
    return Split(data.images[tr], data.labels[tr], data.images[va], data.labels[va])


def make_optimizer(kind: str, lr: float, weight_decay: float = 0.0, momentum: float = 0.9) -> Any:
    """``"adam"`` or ``"sgd"`` (with momentum), as the engine's optimizers."""
    from cnn_explorer.engine.optim import SGD, Adam

    if kind == "adam":
        return Adam(lr, weight_decay=weight_decay)
    if kind == "sgd":
        return SGD(lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {kind!r}: choose adam or sgd")


def augmenter(image_side: int) -> Any:
    """Random shifts of about 1/14 of the side (2 px at 28), the engine's ShiftAugment."""
    from cnn_explorer.engine.training import ShiftAugment

    return ShiftAugment(max_shift=max(1, round(image_side / 14)))


def train_split(network: Any, parts: Split, **train_kwargs: Any) -> Generator[Any, None, None]:
    """The engine's ``train`` generator on ``parts``, validating on its ``x_val``/``y_val``;
    ``train_kwargs`` go to ``train`` unchanged."""
    from cnn_explorer.engine.training import train

    return train(
        network,
        parts.x_train,
        parts.y_train,
        x_val=parts.x_val,
        y_val=parts.y_val,
        **train_kwargs,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cnn-explorer train",
        description="Train the default small CNN on an image folder (one subfolder per "
        "class) or on the built-in dataset (DATA_DIR = builtin:shapes).",
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="image folder, or builtin:shapes")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="passes over the data")
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        metavar="S",
        help="resize to S×S (default: native size if all images agree, else 28)",
    )
    color = p.add_mutually_exclusive_group()
    color.add_argument("--grayscale", action="store_true", help="one channel (luminance)")
    color.add_argument("--rgb", action="store_true", help="three channels even for gray images")
    p.add_argument("--seed", type=int, default=0, help="split, initial weights and shuffling")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help="learning rate")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default=DEFAULT_OPTIMIZER)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--augment", action="store_true", help="random shifts of the images")
    p.add_argument(
        "--val-split",
        type=float,
        default=DEFAULT_VAL_SPLIT,
        metavar="F",
        help="fraction held out for validation, 0 < F < 1",
    )
    p.add_argument("--save", metavar="WEIGHTS.npz", help="save the trained network (no pickle)")
    return p


def _check_args(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    if a.epochs < 1:
        p.error("--epochs must be at least 1")
    if a.batch_size < 1:
        p.error("--batch-size must be at least 1")
    if not (math.isfinite(a.lr) and a.lr > 0):
        p.error("--lr must be a positive number")
    if not 0 < a.val_split < 1:
        p.error("--val-split must be between 0 and 1 (exclusive)")
    if a.image_size is not None and not 1 <= a.image_size <= 256:
        p.error("--image-size must be between 1 and 256")


class ProgressBar:
    """A one-line bar redrawn with ``\\r`` on a terminal; one line per epoch otherwise."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last = 0.0

    def batch(self, rec: Any) -> None:
        if not self.tty or time.monotonic() - self._last < 0.1:
            return
        self._last = time.monotonic()
        frac = rec.fraction
        bar = "#" * round(24 * frac)
        eta = rec.elapsed / frac * (1 - frac) if frac > 0 else 0.0
        self.stream.write(
            f"\r[{bar:<24}] epoch {rec.epoch}/{rec.epochs} batch {rec.batch}/"
            f"{rec.batches_per_epoch} loss {rec.loss:.4f} ETA {eta:4.0f}s "
        )
        self.stream.flush()

    def epoch(self, rec: Any) -> None:
        val = (
            ""
            if rec.val_accuracy is None
            else (f", val loss {rec.val_loss:.4f} acc {rec.val_accuracy:.4f}")
        )
        start, pad = ("\r", " " * 12) if self.tty else ("", "")
        self.stream.write(
            f"{start}epoch {rec.epoch}/{rec.epochs}: train loss {rec.train_loss:.4f} "
            f"acc {rec.train_accuracy:.4f}{val} ({rec.elapsed:.1f} s){pad}\n"
        )
        self.stream.flush()


def main(
    argv: list[str] | None = None, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    """Run the command; returns the exit status (0 ok, 2 bad data/arguments, 3 NaN loss,
    130 interrupted)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    channels = 1 if args.grayscale else 3 if args.rgb else None
    try:
        data, text = load_data(args.data_dir, args.image_size, channels)
    except DataError as exc:
        err.write(f"cnn-explorer train: {exc}\n")
        return EXIT_BAD_DATA
    err.write(text + "\n")
    return _train(args, data, out, err)


def _train(args: argparse.Namespace, data: Any, out: IO[str], err: IO[str]) -> int:
    from cnn_explorer.engine.network import default_classifier
    from cnn_explorer.engine.training import evaluate

    parts = split(data, args.val_split, args.seed)
    net = default_classifier(data.input_shape, data.num_classes, args.seed)
    opt = make_optimizer(args.optimizer, args.lr, args.weight_decay)
    aug = augmenter(data.input_shape[-1]) if args.augment else None
    err.write(f"training on {len(parts.y_train)} images, validating on {len(parts.y_val)}\n")
    bar = ProgressBar(err)
    status, last = 0, None
    gen = train_split(
        net,
        parts,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=opt,
        seed=args.seed,
        augment=aug,
    )
    try:
        for rec in gen:
            last = rec
            if rec.kind == "batch":
                bar.batch(rec)
            if rec.epoch_end:
                bar.epoch(rec)
    except KeyboardInterrupt:
        gen.close()
        err.write("\ninterrupted: reporting the weights trained so far\n")
        status = EXIT_INTERRUPTED
    if last is not None and last.error:
        err.write(f"stopped: {last.error}\n")
        status = EXIT_NONFINITE
    with np.errstate(all="ignore"):
        _, val_acc = evaluate(net, parts.x_val, parts.y_val)
    if args.save:
        _save(args.save, net, data, err)
    out.write(f"validation accuracy: {val_acc:.4f}\n")
    out.flush()
    return status


def _save(path: str, net: Any, data: Any, err: IO[str]) -> None:
    from cnn_explorer.engine.serialize import save_network

    extra = {
        "class_names": list(data.class_names),
        "input_shape": list(data.input_shape),
        "source": data.source,
    }
    try:
        save_network(path, net, extra)
    except OSError as exc:
        err.write(f"could not save {path}: {exc}\n")
    else:
        err.write(f"saved the trained network to {path}\n")


if __name__ == "__main__":
    raise SystemExit(main())
