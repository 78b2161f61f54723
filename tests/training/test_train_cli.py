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
