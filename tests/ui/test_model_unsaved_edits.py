"""Preprocessing edits made in the Model tab's "Import report…" dialog are unsaved work:
the title shows it, closing asks first, saving the project clears it; opening another
model over such edits asks before replacing them (Cancel keeps everything)."""

from __future__ import annotations

from pathlib import Path

from cnn_explorer.interchange.model import Preprocessing

FIXTURES = Path(__file__).resolve().parents[1] / "interchange" / "fixtures"
EDITED = Preprocessing((3, 24, 24), "rgb", 1 / 255, (0.5,), (0.25,))


def _open(qtbot, window, path: Path) -> None:
    tab = window.model_tab
    assert window.open_path(str(path))
    tab.wait()
    qtbot.waitUntil(lambda: tab.doc.ready, timeout=30_000)


def _project_with_edit(qtbot, window, tmp_path: Path) -> Path:
    """A project saved with resnet, reopened, then its preprocessing edited (unsaved)."""
    _open(qtbot, window, FIXTURES / "resnet.onnx")
    path = tmp_path / "p.cnnx"
    assert window.save_to(str(path)) and not window.isWindowModified()
    assert window.open_project(str(path))
    tab = window.model_tab
    qtbot.waitUntil(lambda: tab.doc.ready, timeout=30_000)
    assert not window.isWindowModified()
    window.reporter.import_answer = EDITED
    tab.show_report()
    assert tab.doc.view.preprocessing == EDITED
    return path


def test_an_edited_preprocessing_asks_before_closing_and_saving_clears_it(qtbot, window, tmp_path):
    path = _project_with_edit(qtbot, window, tmp_path)
    assert window.isWindowModified() and window.model_tab.has_unsaved_edits
    window.reporter.save_answer = "cancel"
    window.close()
    assert window.isVisible()  # the question was asked and Cancel kept the window
    assert window.reporter.questions[-1].endswith("before closing?")
    asked = len(window.reporter.questions)
    assert window.save_to(str(path))
    assert not window.isWindowModified() and not window.model_tab.has_unsaved_edits
    assert window.files.confirm("closing") and len(window.reporter.questions) == asked
    window.reporter.import_answer = None
    assert window.open_project(str(path))  # the edit is in the file
    qtbot.waitUntil(lambda: window.model_tab.doc.ready, timeout=30_000)
    assert window.model_tab.doc.view.preprocessing == EDITED


def test_opening_a_model_over_unsaved_edits_asks_first(qtbot, window, tmp_path):
    _project_with_edit(qtbot, window, tmp_path)
    tab = window.model_tab
    before = tab.doc.view
    window.reporter.save_answer = "cancel"
    reports = len(window.reporter.reports)
    assert window.open_path(str(FIXTURES / "squeezenet.onnx"))
    tab.wait()
    qtbot.waitUntil(lambda: "squeezenet.onnx was not opened" in window.last_status)
    assert window.reporter.questions[-1].endswith("before opening squeezenet.onnx?")
    assert tab.doc.view is before and tab.has_unsaved_edits and window.isWindowModified()
    assert len(window.reporter.reports) == reports  # no import dialog after Cancel
    window.reporter.save_answer = "discard"
    window.reporter.import_answer = None
    _open(qtbot, window, FIXTURES / "squeezenet.onnx")
    assert "squeezenet" in tab.title.text()
    assert not tab.has_unsaved_edits and not window.isWindowModified()


def test_a_new_model_without_edits_opens_without_a_question(qtbot, window):
    _open(qtbot, window, FIXTURES / "resnet.onnx")
    _open(qtbot, window, FIXTURES / "squeezenet.onnx")
    assert window.reporter.questions == [] and not window.isWindowModified()
