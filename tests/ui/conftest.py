"""Fixtures for the UI tests: isolated QSettings, a window with a recording reporter."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import pytest
from PySide6.QtCore import QCoreApplication, QSettings

from cnn_explorer.ui.common.messages import RecordingReporter


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, qapp):
    """Every test gets its own QSettings store: never the user's settings."""
    QCoreApplication.setOrganizationName("CNN Explorer Tests")
    QCoreApplication.setApplicationName("cnn-explorer-tests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings")
    )
    QSettings().clear()
    yield
    QSettings().clear()


@pytest.fixture
def window(qtbot):
    """The main window on the worked example, shown, with dialogs recorded not shown."""
    from cnn_explorer.ui.main_window import MainWindow

    win = MainWindow(restore_state=False)
    win.reporter = RecordingReporter(win)
    qtbot.addWidget(win)
    win.resize(1440, 900)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.doc.undo_stack.setClean()
    win.close()
