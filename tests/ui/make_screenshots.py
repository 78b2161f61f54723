"""Render the README screenshots into resources/screenshots/ (run from the repo root):

    QT_QPA_PLATFORM=offscreen python tests/ui/make_screenshots.py

Every one is the app's own window (``cnn-explorer --screenshot``, or the window grabbed
in-process for the training tab):

1. worked_example_explained.png — a max-pool cell of the worked example clicked: receptive
   field lit, the arithmetic traced back through ReLU and the convolution (1440×900);
2. laptop_1280x800.png and desktop_1920x1080.png — the same on a laptop and a desktop screen;
3. image_edges.png — a drawn 48×48 image through Sobel x / Sobel y → ReLU → max pool;
4. photo_filters.png — a 64×96 colour photo (drawn here) through 32 random 3×3 filters,
   ReLU and max pool: the photo as itself with its channels, the 32 maps as an overview;
5. training.png — the training tab after a short run on the built-in shapes (1280×800);
6. lesson_step.png — the guided lesson's first step answered, on a 1280×800 screen;
7. model_tab.png — the ResNet-style ONNX fixture in the Model tab, an Add cell clicked;
8. model_filters.png — the same model's first conv: its filters as colour patches.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "resources", "screenshots")
sys.path.insert(0, ROOT)  # this checkout's cnn_explorer, not an installed one


def _run(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cnn_explorer", *args], cwd=ROOT, check=True)


def _shapes_image(path: str) -> None:
    """A 96×96 drawing with straight, curved and diagonal edges (no external data)."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPen

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


def _photo(path: str) -> None:
    """A 640×427 colour "photo" (sky, sun, hills, a house; no external data)."""
    from PySide6.QtCore import QPointF, QRectF
    from PySide6.QtGui import QBrush, QColor, QImage, QLinearGradient, QPainter, QPolygonF

    img = QImage(640, 427, QImage.Format.Format_RGB32)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    sky = QLinearGradient(0, 0, 0, 300)
    sky.setColorAt(0, QColor(40, 110, 200))
    sky.setColorAt(1, QColor(250, 200, 150))
    p.fillRect(0, 0, 640, 427, QBrush(sky))
    p.setBrush(QColor(255, 220, 60))
    p.drawEllipse(QPointF(480, 110), 55, 55)
    for color, top, amp in (((70, 140, 60), 250, 40), ((40, 100, 40), 300, 30)):
        hill = QPolygonF([QPointF(0, 427)])
        for x in range(0, 641, 20):
            hill.append(QPointF(x, top + amp * np.sin(x / 90.0 + top)))
        hill.append(QPointF(640, 427))
        p.setBrush(QColor(*color))
        p.drawPolygon(hill)
    p.setBrush(QColor(200, 60, 50))
    p.drawPolygon(QPolygonF([QPointF(120, 250), QPointF(200, 190), QPointF(280, 250)]))
    p.setBrush(QColor(235, 225, 200))
    p.drawRect(QRectF(135, 250, 130, 95))
    p.setBrush(QColor(90, 60, 40))
    p.drawRect(QRectF(185, 290, 30, 55))
    p.end()
    img.save(path)


def _training_tab(path: str) -> None:
    """The main window at 1280×800 on the training tab after a few epochs on the shapes."""
    from PySide6.QtWidgets import QApplication

    from cnn_explorer.ui.main_window import MainWindow

    app = QApplication.instance()
    win = MainWindow(restore_state=False)
    win.persist_settings = False
    win.resize(1280, 800)
    win.show()
    tab = win.show_training()
    tab.controls.epochs.setValue(int(os.environ.get("TRAINING_EPOCHS", "4")))
    tab.start()
    while tab.loader.is_running() or tab.worker.is_running():
        app.processEvents()
        time.sleep(0.01)
    for _ in range(5):
        app.processEvents()
    if not win.grab().save(path, "PNG"):
        raise SystemExit(f"could not write {path}")
    tab.shutdown()
    win.doc.undo_stack.setClean()
    win.close()


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="cnn-shots-")  # no user settings
    from PySide6.QtWidgets import QApplication

    _app = QApplication.instance() or QApplication(sys.argv)
    os.makedirs(OUT, exist_ok=True)
    select = ("--select", "3,0,0,1")
    _run("--screenshot", os.path.join(OUT, "worked_example_explained.png"), *select)
    for size, name in (("1280x800", "laptop_1280x800"), ("1920x1080", "desktop_1920x1080")):
        _run("--screenshot", os.path.join(OUT, f"{name}.png"), "--size", size, *select)
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

        photo = os.path.join(tmp, "photo.png")
        _photo(photo)
        x = imageio.load_image(photo, imageio.aspect_size(427, 640, 96), 3)
        layers = [conv_spec(3, 32, (3, 3), padding=1, seed=4), act_spec("relu"), pool_spec()]
        proj = os.path.join(tmp, "photo.cnnx")
        save_project(proj, x, layers)
        out = os.path.join(OUT, "photo_filters.png")
        _run(proj, "--screenshot", out, "--select", "1,5,30,40")
    _training_tab(os.path.join(OUT, "training.png"))
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
    print(f"wrote 9 screenshots to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
