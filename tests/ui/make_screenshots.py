"""Render the README screenshots into resources/screenshots/ (run from the repo root):

    QT_QPA_PLATFORM=offscreen python tests/ui/make_screenshots.py

1. worked_example.png — the app as it opens;
2. worked_example_explained.png — a max-pool cell clicked: receptive field lit, the
   arithmetic traced back through ReLU and the convolution;
3. image_edges.png — a drawn 48×48 image through Sobel x / Sobel y → ReLU → max pool;
4. laptop_1280x800.png — the explained worked example on a 1280×800 laptop screen;
5. lesson_step.png — the guided lesson's first step answered, on a 1280×800 screen;
6. model_tab.png — the ResNet-style ONNX fixture in the Model tab, an Add cell clicked;
7. model_filters.png — the same model's first conv: its filters as colour patches.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "resources", "screenshots")


def _run(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cnn_explorer", *args], cwd=ROOT, check=True)


def _shapes_image(path: str) -> None:
    """A 96×96 drawing with straight, curved and diagonal edges (no external data)."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QBrush, QColor, QFont, QGuiApplication, QImage, QPainter, QPen

    _app = QGuiApplication.instance() or QGuiApplication([])
    img = QImage(96, 96, QImage.Format.Format_RGB32)
    img.fill(QColor(20, 20, 30))
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QBrush(QColor(235, 235, 235)))
    p.drawRect(8, 10, 30, 30)
    p.drawEllipse(QPointF(68, 26), 17, 17)
    p.setPen(QPen(QColor(235, 235, 235), 5))
    p.drawLine(10, 88, 44, 52)
    f = QFont()
    f.setPixelSize(30)
    f.setBold(True)
    p.setFont(f)
    p.drawText(50, 86, "7")
    p.end()
    img.save(path)


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    _run("--screenshot", os.path.join(OUT, "worked_example.png"))
    _run("--screenshot", os.path.join(OUT, "worked_example_explained.png"), "--select", "3,0,0,1")
    laptop = os.path.join(OUT, "laptop_1280x800.png")
    _run("--screenshot", laptop, "--size", "1280x800", "--select", "3,0,0,1")
    lesson = os.path.join(OUT, "lesson_step.png")
    _run("--screenshot", lesson, "--size", "1280x800", "--lesson", "1", "--select", "1,0,0,0")

    from cnn_explorer import imageio
    from cnn_explorer.explorer import presets
    from cnn_explorer.explorer.project import save_project
    from cnn_explorer.explorer.specs import act_spec, conv_spec, pool_spec

    with tempfile.TemporaryDirectory() as tmp:
        png = os.path.join(tmp, "shapes.png")
        _shapes_image(png)
        x = imageio.load_image(png, (48, 48), 1)
        w = np.stack([presets.kernel_preset("Sobel x"), presets.kernel_preset("Sobel y")])[:, None]
        layers = [
            conv_spec(1, 2, (3, 3), padding=1, weight=w, bias=False),
            act_spec("relu"),
            pool_spec("maxpool", 2, 2),
        ]
        proj = os.path.join(tmp, "edges.cnnx")
        save_project(proj, x, layers)
        _run(proj, "--screenshot", os.path.join(OUT, "image_edges.png"), "--select", "3,1,2,5")
    model = os.path.join(ROOT, "tests", "interchange", "fixtures", "resnet.onnx")
    _run(
        model,
        "--screenshot",
        os.path.join(OUT, "model_tab.png"),
        "--select-cell",
        "layer1/Add:4,12,12",
    )
    _run(
        model,
        "--screenshot",
        os.path.join(OUT, "model_filters.png"),
        "--select-cell",
        "stem/stem.0/Conv:2,10,10",
    )
    print(f"wrote 7 screenshots to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
