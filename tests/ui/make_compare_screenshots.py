"""Render compare mode's screenshots into resources/screenshots/ (from the repo root):

    QT_QPA_PLATFORM=offscreen python tests/ui/make_compare_screenshots.py

The worked example as A; B is the primer's exercise (the signed kernel ``[[1, −1], [1, −1]]``
in place of the all-ones one), a cell of the last layer selected in both. Writes
compare_mode.png (1440×900, the app's default size) and compare_laptop_1280x800.png.
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "resources", "screenshots")
sys.path.insert(0, ROOT)  # this checkout's cnn_explorer, not an installed one

SHOTS = (("compare_mode.png", 1440, 900), ("compare_laptop_1280x800.png", 1280, 800))


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="cnn-compare-shots-")
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    QCoreApplication.setOrganizationName("CNN Explorer Screenshots")
    from cnn_explorer.explorer.explain import Selection
    from cnn_explorer.ui.main_window import MainWindow

    os.makedirs(OUT, exist_ok=True)
    for name, w, h in SHOTS:
        win = MainWindow(restore_state=False)
        win.persist_settings = False
        win.resize(w, h)
        win.show()
        app.processEvents()
        win.compare.toggle_action.trigger()
        b = win.compare.b
        assert b is not None
        signed = np.array([[1, -1], [1, -1]], np.float32)
        b.set_kernel(0, 0, 0, signed, "Kernel: [[1, −1], [1, −1]]")
        b.recompute_now()
        sel = Selection(3, 0, 0, 0)
        win.doc.select_cell(sel)
        b.select_cell(sel)
        for _ in range(10):
            app.processEvents()
        bar = win.compare.view.scroll.verticalScrollBar()
        bar.setValue(bar.maximum())  # the layers (the input is in its dock on the left)
        for _ in range(5):
            app.processEvents()
        win.grab().save(os.path.join(OUT, name))
        win.doc.undo_stack.setClean()
        win.close()
    print(f"wrote {len(SHOTS)} screenshots to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
