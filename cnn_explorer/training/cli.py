"""``cnn-explorer train DATA_DIR``: train the default CNN from a terminal.

DATA_DIR is an image folder (one subfolder per class, see :mod:`cnn_explorer.training.image_folder`)
or ``builtin:shapes`` for the built-in procedural dataset. Progress goes to stderr (a bar on
a terminal, one line per epoch otherwise); the last line on stdout is exactly
``validation accuracy: 0.9731``, so scripts can ``tail -1`` (``validation accuracy: none (no
validation images)`` when every class has a single image). Bad arguments, a bad DATA_DIR or
a ``--save`` path that cannot be written exit with status 2 and one line saying why, before
any training.

The defaults are chosen to train a small dataset well in well under a minute on two cores
(sklearn's 8×8 digits as PNG folders: ≥ 95 % validation accuracy, see
``python -m cnn_explorer.bench.training``): Adam, lr 0.01, batch 32, 12 epochs, images at
their native size when they all share one (else 28×28), colour detected automatically.

Loading, splitting, building and training go through the same
:class:`~cnn_explorer.training.session.TrainingSession` as the Training tab, so the GUI and
the terminal train identically. No Qt widgets: QtGui is only used (by the image-folder
loader) to decode files.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import IO, Any

import numpy as np

from cnn_explorer.limits import MAX_TRAINING_SIDE
from cnn_explorer.training.data import DataError, load_dataset
from cnn_explorer.training.model import save_model, save_path_problem
from cnn_explorer.training.session import Run, TrainingSession
from cnn_explorer.training.settings import (
    DEFAULT_BATCH,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_OPTIMIZER,
    DEFAULT_VAL_SPLIT,
    MAX_SEED,
    OPTIMIZERS,
    DatasetChoice,
    RunSettings,
    option_name,
)

EXIT_BAD_DATA = 2
EXIT_NONFINITE = 3
EXIT_SAVE_FAILED = 4
EXIT_INTERRUPTED = 130
NO_VALIDATION = "validation accuracy: none (no validation images)"


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
        help=f"resize to S×S, 1..{MAX_TRAINING_SIDE} (default: native size if all images "
        "agree, else 28)",
    )
    color = p.add_mutually_exclusive_group()
    color.add_argument("--grayscale", action="store_true", help="one channel (luminance)")
    color.add_argument("--rgb", action="store_true", help="three channels even for gray images")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help=f"split, initial weights and shuffling, 0..{MAX_SEED}",
    )
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help="learning rate")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULT_OPTIMIZER)
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty, ≥ 0")
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


def _settings(
    p: argparse.ArgumentParser, a: argparse.Namespace
) -> tuple[DatasetChoice, RunSettings]:
    """The session's settings from the options; any bad value is a usage error (exit 2)
    naming its option, and so is a ``--save`` path that cannot be written: both are found
    before loading and training, not after."""
    channels = 1 if a.grayscale else 3 if a.rgb else None
    choice = DatasetChoice(a.data_dir, a.image_size, channels)
    settings = RunSettings(
        optimizer=a.optimizer,
        lr=a.lr,
        batch_size=a.batch_size,
        epochs=a.epochs,
        weight_decay=a.weight_decay,
        seed=a.seed,
        augment=a.augment,
        val_split=a.val_split,
    )
    for name, why in [*settings.problems(), *choice.problems()]:
        p.error(f"{option_name(name)} {why}")
    if a.save:
        problem = save_path_problem(a.save)
        if problem:
            p.error(f"--save {a.save}: {problem}")
    return choice, settings


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
    4 the trained network could not be saved, 130 interrupted)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    choice, settings = _settings(parser, args)
    try:
        data, text = load_dataset(choice.source, choice.image_size, choice.channels)
    except DataError as exc:
        err.write(f"cnn-explorer train: {exc}\n")
        return EXIT_BAD_DATA
    err.write(text + "\n")
    session = TrainingSession()
    session.use_dataset(data, choice, text)
    run = session.start_run(settings)
    if run.note:
        err.write(f"note: {run.note}\n")
    err.write(
        f"training on {len(run.split.y_train)} images, validating on {len(run.split.y_val)}\n"
    )
    status = _train(run, err)
    if args.save and not _save(args.save, run, err):
        status = status or EXIT_SAVE_FAILED
    with np.errstate(all="ignore"):
        acc = run.validation_accuracy()
    out.write(NO_VALIDATION + "\n" if acc is None else f"validation accuracy: {acc:.4f}\n")
    out.flush()
    return status


def _train(run: Run, err: IO[str]) -> int:
    """Pump the run's events (no GUI copies) with a progress bar; the exit status."""
    bar = ProgressBar(err)
    status = 0
    events = run.events(extras=False)
    try:
        for event in events:
            rec = event.record
            run.last = rec
            if rec.kind == "batch":
                bar.batch(rec)
            if rec.epoch_end:
                bar.epoch(rec)
    except KeyboardInterrupt:
        events.close()
        err.write("\ninterrupted: reporting the weights trained so far\n")
        status = EXIT_INTERRUPTED
    if run.last is not None and run.last.error:
        err.write(f"stopped: {run.last.error}\n")
        status = EXIT_NONFINITE
    return status


def _save(path: str, run: Run, err: IO[str]) -> bool:
    """Write the run's network; False (after one line on ``err``) when it cannot. The
    error names ``path`` and the reason, never the hidden temporary file."""
    try:
        save_model(path, run.model())
    except OSError as exc:
        err.write(f"cnn-explorer train: could not save {path}: {exc.strerror or exc}\n")
        return False
    err.write(f"saved the trained network to {path}\n")
    return True


if __name__ == "__main__":
    raise SystemExit(main())
