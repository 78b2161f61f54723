"""``cnn-explorer train``: the exact last line, non-zero one-line failures, --save."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.imageio import save_png
from cnn_explorer.training.cli import EXIT_BAD_DATA, EXIT_NONFINITE, main

ROOT = Path(__file__).resolve().parents[1]
LAST_LINE = re.compile(r"^validation accuracy: \d\.\d{4}$")


@pytest.fixture(scope="module")
def bars(make_bars: Callable[[int, int], Path]) -> Path:
    """8×8 PNGs: a vertical bar vs a horizontal bar at random places, 12 per class."""
    return make_bars(12, 0)


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_trains_and_ends_with_the_exact_line(bars: Path) -> None:
    code, out, err = run([str(bars), "--epochs", "3", "--batch-size", "8"])
    assert code == 0, err
    assert LAST_LINE.match(out.splitlines()[-1]) and out.endswith("\n")
    assert "epoch 3/3" in err and "2 classes" in err
    assert float(out.split(":")[1]) >= 0.5


def test_save_writes_a_loadable_network(bars: Path, tmp_path: Path) -> None:
    from cnn_explorer.engine.serialize import load_network

    path = tmp_path / "w.npz"
    code, _, err = run(
        [
            str(bars),
            "--epochs",
            "1",
            "--rgb",
            "--image-size",
            "6",
            "--optimizer",
            "sgd",
            "--augment",
            "--save",
            str(path),
        ]
    )
    assert code == 0 and "saved" in err
    net, extra = load_network(path)
    assert extra["class_names"] == ["horizontal", "vertical"]
    assert extra["input_shape"] == [3, 6, 6]
    assert net.output_shape((3, 6, 6)) == (2,)


def test_bad_data_dir_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cnn_explorer.training.cli", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == EXIT_BAD_DATA and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0]


@pytest.mark.parametrize(
    "setup, reason",
    [
        (lambda p: None, "is empty"),
        (
            lambda p: (
                (p / "only").mkdir()
                or save_png(np.zeros((4, 4), np.uint8), str(p / "only" / "a.png"))
            ),
            "one class",
        ),
    ],
)
def test_unusable_folders(tmp_path: Path, setup, reason: str) -> None:  # type: ignore[no-untyped-def]
    setup(tmp_path)
    code, out, err = run([str(tmp_path)])
    assert code == EXIT_BAD_DATA and out == ""
    assert len(err.strip().splitlines()) == 1 and reason in err


def test_bad_arguments_exit_2(bars: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(bars), "--val-split", "1.5"])
    assert exc.value.code == 2 and "--val-split" in capsys.readouterr().err


def test_builtin_shapes(tmp_path: Path) -> None:
    code, out, _ = run(
        [
            "builtin:shapes",
            "--epochs",
            "1",
            "--image-size",
            "8",
            "--val-split",
            "0.5",
            "--batch-size",
            "256",
        ]
    )
    assert code == 0 and LAST_LINE.match(out.splitlines()[-1])
    code, out, err = run(["builtin:nothing"])
    assert code == EXIT_BAD_DATA and "builtin:shapes" in err


def test_huge_learning_rate_stops_with_a_reason(bars: Path) -> None:
    code, out, err = run([str(bars), "--epochs", "3", "--optimizer", "sgd", "--lr", "1e30"])
    assert code == EXIT_NONFINITE
    assert "lower the learning rate" in err
    assert LAST_LINE.match(out.splitlines()[-1])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--seed", "-1"], "--seed must be between 0 and"),  # crashed with a traceback
        (["--weight-decay", "-0.5"], "--weight-decay must be a number ≥ 0"),  # was accepted
        (["--image-size", "300"], "--image-size must be between 1 and 256"),
        (["--lr", "nan"], "--lr must be a positive number"),
    ],
)
def test_bad_values_are_usage_errors(  # type: ignore[no-untyped-def]
    bars: Path, capsys, args: list[str], words: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(bars), *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and words in err and "Traceback" not in err


@pytest.mark.parametrize("where", ["missing folder", "a directory"])
def test_an_unwritable_save_path_is_refused_before_training(  # type: ignore[no-untyped-def]
    bars: Path, tmp_path: Path, capsys, where: str
) -> None:
    """It used to train first, then fail naming a hidden temp file, and still exit 0."""
    target = tmp_path / "nope" / "w.npz" if where == "missing folder" else tmp_path
    with pytest.raises(SystemExit) as exc:
        main([str(bars), "--epochs", "1", "--save", str(target)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"--save {target}" in err
    assert "training on" not in err and "epoch 1/1" not in err and ".tmp" not in err


def test_a_save_that_fails_after_training_exits_nonzero(  # type: ignore[no-untyped-def]
    bars: Path, tmp_path: Path, monkeypatch
) -> None:
    from cnn_explorer.training import cli

    def disk_full(path, model):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device", str(tmp_path / ".w.npz.x1y2.tmp"))

    monkeypatch.setattr(cli, "save_model", disk_full)
    target = tmp_path / "w.npz"
    code, out, err = run([str(bars), "--epochs", "1", "--save", str(target)])
    assert code == cli.EXIT_SAVE_FAILED and LAST_LINE.match(out.splitlines()[-1])
    assert f"could not save {target}: No space left on device" in err and ".tmp" not in err


def test_no_validation_images_is_said_not_scored(tmp_path: Path) -> None:
    for cls in ("a", "b"):  # one image per class: nothing can be held out
        (tmp_path / cls).mkdir()
        save_png(np.full((4, 4), 255 if cls == "a" else 0, np.uint8), str(tmp_path / cls / "x.png"))
    code, out, err = run([str(tmp_path), "--epochs", "1", "--val-split", "0.6"])
    assert code == 0, err
    assert out.splitlines()[-1] == "validation accuracy: none (no validation images)"
    assert "note: no validation images" in err and "training on 2 images" in err


def test_a_val_split_tiny_classes_cannot_follow_is_reported(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for k in range(3):
            save_png(rng.integers(0, 255, (4, 4), dtype=np.uint8), str(tmp_path / cls / f"{k}.png"))
    code, _, err = run([str(tmp_path), "--epochs", "1", "--val-split", "0.05"])
    assert code == 0 and "validating on 2 of 6 images (33%), not the 5% asked" in err
