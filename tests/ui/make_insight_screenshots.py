"""Render the Insight tab's screenshots into resources/screenshots/ (from the repo root):

    QT_QPA_PLATFORM=offscreen python tests/ui/make_insight_screenshots.py

Trains the default network on the built-in shapes for a few epochs in the app's own
training tab, then runs methods in its Insight tab and grabs the 1280×800 window:
insight_gradcam.png (Grad-CAM over a validation image), insight_maximize.png (activation
maximisation of a second-layer filter) and insight_patches.png (top patches of a filter).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "resources", "screenshots")
sys.path.insert(0, ROOT)  # this checkout's cnn_explorer, not an installed one


def _wait(app, busy, timeout_s: float = 600) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while busy() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    for _ in range(5):
        app.processEvents()


def _choose(combo, data) -> None:  # type: ignore[no-untyped-def]
    combo.setCurrentIndex(combo.findData(data))


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="cnn-insight-shots-")
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    QCoreApplication.setOrganizationName("CNN Explorer Screenshots")
    from cnn_explorer.ui.main_window import MainWindow

    win = MainWindow(restore_state=False)
    win.resize(1280, 800)
    win.show()
    tab = win.show_training()
    tab.controls.epochs.setValue(int(os.environ.get("INSIGHT_EPOCHS", "4")))
    tab.start()
    _wait(app, lambda: tab.loader.is_running() or tab.worker.is_running())
    panel = tab.insight
    tab.results.tabs.setCurrentWidget(panel)
    c = panel.controls
    os.makedirs(OUT, exist_ok=True)
    shots = (
        ("insight_gradcam.png", "gradcam", None),
        ("insight_maximize.png", "maximize", 3),
        ("insight_patches.png", "patches", 3),
    )
    for name, method, filt in shots:
        _choose(c.method, method)
        c.image.setValue(5)
        if filt is not None:
            c.filter.setValue(filt)
            if method == "maximize":
                _choose(c.target, -2)
        panel.run()
        _wait(app, panel.worker.is_running)
        out = os.path.join(OUT, name)
        if not win.grab().save(out, "PNG"):
            print(f"could not write {out}", file=sys.stderr)
            return 1
        print(f"{out}: {panel.status.text()}")
    tab.shutdown()
    win.doc.undo_stack.setClean()
    win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
