"""Render the Model tab's Insight screenshot into resources/screenshots/ (from the repo root):

    QT_QPA_PLATFORM=offscreen python tests/ui/make_model_insight_screenshot.py [PHOTO]

Opens the ResNet-style ONNX fixture (tests/interchange/fixtures/resnet.onnx: random
weights, so the map shows the mechanics, not a trained model's judgement) in the app's
Model tab at a 96×96 input (it ends in a global average pool, so any size fits), loads
PHOTO (default: scikit-learn's sample flower.jpg, CC BY 2.0, when installed; else the
sample pattern), runs Grad-CAM of the top class at the default node in the Insight page
and grabs the 1280×800 window as model_insight.png.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import replace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "resources", "screenshots")
MODEL = os.path.join(ROOT, "tests", "interchange", "fixtures", "resnet.onnx")
sys.path.insert(0, ROOT)  # this checkout's cnn_explorer, not an installed one


def _wait(app, busy, timeout_s: float = 300) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while busy() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    for _ in range(5):
        app.processEvents()


def _photo() -> str | None:
    if len(sys.argv) > 1:
        return sys.argv[1]
    try:
        import sklearn.datasets
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images", "flower.jpg")
    return path if os.path.exists(path) else None


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="cnn-model-insight-shot-")
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    QCoreApplication.setOrganizationName("CNN Explorer Screenshots")
    from cnn_explorer.ui.common.messages import RecordingReporter
    from cnn_explorer.ui.main_window import MainWindow

    win = MainWindow(restore_state=False)
    win.persist_settings = False
    win.reporter = RecordingReporter(win)  # no dialogs: the import report is recorded
    win.resize(1280, 800)
    win.show()
    tab = win.model_tab
    if not win.open_path(MODEL):
        return 1
    _wait(app, lambda: tab.is_busy or tab.doc.view is None)
    model = tab.imported_model()
    assert model is not None
    tab.doc.set_preprocessing(replace(model.preprocessing, input_shape=(3, 96, 96)))
    _wait(app, lambda: tab.is_busy)
    photo = _photo()
    if photo is not None and tab.load_image(photo):
        _wait(app, lambda: tab.is_busy)
    tab.centre_tabs.setCurrentWidget(tab.insight)
    panel = tab.insight
    panel.choose(method="gradcam")
    panel.opacity.setValue(55)
    done: list[str] = []
    panel.finished.connect(done.append)
    panel.run()
    _wait(app, lambda: not done)
    if done != ["completed"]:
        print(f"Grad-CAM did not complete: {done} {panel.status.text()}", file=sys.stderr)
        return 1
    os.makedirs(OUT, exist_ok=True)
    out = os.path.join(OUT, "model_insight.png")
    if not win.grab().save(out, "PNG"):
        return 1
    print(f"wrote {out}")
    tab.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
