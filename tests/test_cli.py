"""The command line: ``--screenshot`` renders a real PNG headless; FILE arguments open."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from cnn_explorer.explorer import presets
from cnn_explorer.explorer.specs import conv_spec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _png(path):
    from PySide6.QtGui import QImage

    img = QImage(str(path))
    assert not img.isNull()
    return img


def _not_blank(img) -> bool:
    from PySide6.QtGui import QImage

    small = img.convertToFormat(QImage.Format.Format_RGB888).scaled(64, 40)
    ptr = small.constBits()
    arr = np.frombuffer(ptr, np.uint8, count=small.bytesPerLine() * small.height())
    return len(np.unique(arr)) > 20 and arr.std() > 10


def test_screenshot_default(tmp_path, qapp, run_app):
    out = tmp_path / "shot.png"
    res = run_app("--screenshot", str(out))
    assert res.returncode == 0, res.stderr
    img = _png(out)
    assert (img.width(), img.height()) == (1440, 900)
    assert _not_blank(img)


def test_screenshot_with_project_and_selection(tmp_path, qapp, run_app):
    from cnn_explorer.explorer.project import save_project

    proj = tmp_path / "edge.cnnx"
    w = presets.EDGE_KERNEL[None, None]
    save_project(str(proj), presets.vertical_edge(6, 6)[None], [conv_spec(1, 1, (2, 2), weight=w)])
    out = tmp_path / "p.png"
    res = run_app(str(proj), "--screenshot", str(out), "--size", "1280x800", "--select", "1,0,0,2")
    assert res.returncode == 0, res.stderr
    img = _png(out)
    assert (img.width(), img.height()) == (1280, 800)


def test_screenshot_with_image_file(tmp_path, qapp, run_app):
    from cnn_explorer.imageio import save_png

    src = tmp_path / "img.png"
    save_png((np.indices((30, 30)).sum(0) % 2 * 255).astype(np.uint8), str(src))
    out = tmp_path / "i.png"
    res = run_app(str(src), "--image-size", "16x16", "--screenshot", str(out))
    assert res.returncode == 0, res.stderr
    assert _png(out).width() == 1440


@pytest.mark.parametrize("content", [b"garbage"])
def test_bad_file_argument_reports_and_exits_nonzero(tmp_path, content, qapp, run_app):
    bad = tmp_path / "bad.cnnx"
    bad.write_bytes(content)
    out = tmp_path / "b.png"
    res = run_app(str(bad), "--screenshot", str(out))
    assert res.returncode == 2
    assert "not a readable project" in res.stderr
    assert out.exists()  # the window still renders, on the worked example


def test_help(run_app):
    res = run_app("--help")
    assert res.returncode == 0 and "--screenshot" in res.stdout


def test_train_subcommand_is_routed_to_the_headless_trainer(run_app):
    result = run_app(
        "train", "builtin:shapes", "--epochs", "1", "--image-size", "8", "--batch-size", "256"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("validation accuracy: 0.")
    bad = run_app("train", os.path.join(ROOT, "no-such-folder"))
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "does not exist" in bad.stderr


def test_screenshot_of_a_photo_keeps_its_aspect_ratio(tmp_path, qapp, run_app):
    from cnn_explorer.imageio import save_png

    src = tmp_path / "wide.png"
    rgb = np.zeros((427, 640, 3), np.uint8)
    rgb[..., 0] = np.arange(640) * 255 // 639
    save_png(rgb, str(src))
    out = tmp_path / "w.png"
    res = run_app(str(src), "--screenshot", str(out))
    assert res.returncode == 0, res.stderr
    found = re.search(r"Loaded wide\.png as (\d+)×(\d+)×(\d+)", res.stderr)
    assert found, res.stderr
    rows, cols, channels = (int(v) for v in found.groups())
    assert cols == 64 and channels == 3  # the long side at the default; colour kept
    assert abs(rows / cols - 427 / 640) <= 0.5 / rows  # not squashed to 64×64
