"""Every path that replaces the document asks about unsaved work first (Save / Discard /
Cancel); Cancel leaves everything as it was, and the question says when the undo history
will be cleared."""

from __future__ import annotations

import numpy as np
import pytest
from ui_helpers import drop_file, settle

from cnn_explorer.explorer import presets
from cnn_explorer.explorer.project import read_project, save_project
from cnn_explorer.explorer.specs import conv_spec


@pytest.fixture
def other_project(tmp_path):
    """A project that differs from the worked example (input all 7s, one conv layer)."""
    path = tmp_path / "other.cnnx"
    save_project(str(path), np.full((1, 5, 5), 7, np.float32), [conv_spec(1, 2, (3, 3), seed=1)])
    return str(path)


def _edit(qtbot, window) -> tuple[np.ndarray, int]:
    """One unsaved edit; returns the input and the undo count after it."""
    window.doc.set_cell(0, 0, 0, 9)
    settle(qtbot, window)
    assert window.isWindowModified()
    return window.doc.input.copy(), window.doc.undo_stack.count()


def _intact(window, x: np.ndarray, count: int) -> bool:
    stack = window.doc.undo_stack
    return (
        np.array_equal(window.doc.input, x)
        and stack.count() == count
        and not stack.isClean()
        and window.isWindowModified()
    )


def _open_recent(window, path: str) -> None:
    (action,) = [a for a in window.recent_menu.actions() if a.toolTip().endswith("other.cnnx")]
    action.trigger()


def _open_by_dialog(window, path: str) -> None:
    window.reporter.next_open = path
    window.open_dialog()


@pytest.mark.parametrize(
    "how",
    [
        lambda w, p: w.open_project(p),
        lambda w, p: w.open_path(p),
        _open_by_dialog,
        _open_recent,
        drop_file,
    ],
    ids=["open_project", "open_path", "File-Open", "Open-recent", "drop"],
)
def test_cancel_keeps_unsaved_work_when_opening_a_project(qtbot, window, other_project, how):
    window.files.add_recent(other_project)
    x, count = _edit(qtbot, window)
    window.reporter.save_answer = "cancel"
    how(window, other_project)
    settle(qtbot, window)
    assert len(window.reporter.questions) == 1
    assert "undo history" in window.reporter.questions[0]
    assert _intact(window, x, count)
    assert window.current_path is None


def test_discard_opens_the_project_with_a_clean_history(qtbot, window, other_project):
    _edit(qtbot, window)
    window.reporter.save_answer = "discard"
    assert window.open_project(other_project)
    settle(qtbot, window)
    assert np.all(window.doc.input == 7)
    assert window.doc.undo_stack.count() == 0 and window.doc.undo_stack.isClean()
    assert not window.isWindowModified() and window.current_path == other_project


def test_save_then_open(qtbot, window, other_project, tmp_path):
    x, _ = _edit(qtbot, window)
    window.reporter.save_answer = "save"
    window.reporter.next_save = str(tmp_path / "mine.cnnx")
    assert window.open_project(other_project)
    assert np.array_equal(read_project(str(tmp_path / "mine.cnnx")).input, x)
    assert np.all(window.doc.input == 7) and window.doc.undo_stack.isClean()


def test_save_dialog_cancelled_keeps_everything(qtbot, window, other_project):
    x, count = _edit(qtbot, window)
    window.reporter.save_answer = "save"
    window.reporter.next_save = None  # the user closes the save dialog
    assert not window.open_project(other_project)
    assert _intact(window, x, count)


def test_no_question_when_nothing_is_unsaved(qtbot, window, other_project):
    window.reporter.save_answer = "cancel"
    assert window.open_project(other_project)
    assert window.reporter.questions == []
    assert np.all(window.doc.input == 7)


def test_a_project_that_cannot_be_read_asks_nothing(qtbot, window, tmp_path):
    bad = tmp_path / "bad.cnnx"
    bad.write_bytes(b"not a zip")
    x, count = _edit(qtbot, window)
    window.reporter.save_answer = "discard"
    assert not window.open_project(str(bad))
    assert window.reporter.questions == [] and window.reporter.errors
    assert _intact(window, x, count)


def test_new_asks_and_starts_untitled_with_a_clean_history(qtbot, window, other_project):
    assert window.open_project(other_project)
    x, count = _edit(qtbot, window)
    window.reporter.save_answer = "cancel"
    window.new_worked_example()
    assert _intact(window, x, count) and window.current_path == other_project
    assert "undo history" in window.reporter.questions[-1]
    window.reporter.save_answer = "discard"
    window.new_worked_example()
    settle(qtbot, window)
    assert np.array_equal(window.doc.input[0], presets.WORKED_EXAMPLE)
    assert window.doc.undo_stack.count() == 0 and not window.isWindowModified()
    assert window.current_path is None, "Save must not overwrite the project just left"
    assert window.windowTitle().startswith("Worked example")


def test_open_in_explorer_asks_and_stays_undoable(qtbot, window, other_project):
    from cnn_explorer.engine import layers as eng

    assert window.open_project(other_project)
    x, count = _edit(qtbot, window)
    trained = [eng.Conv2D(1, 2, 3, padding=1, rng=0), eng.Activation("relu")]
    image = np.zeros((1, 8, 8), np.float32)
    window.reporter.save_answer = "cancel"
    window.open_trained(trained, image)
    assert _intact(window, x, count)
    question = window.reporter.questions[-1]
    assert "undo history" not in question and "undo" in question.lower()
    window.reporter.save_answer = "discard"
    window.open_trained(trained, image)
    settle(qtbot, window)
    assert window.doc.input.shape == (1, 8, 8)
    assert window.current_path is None, "Save must not overwrite the project just left"
    window.undo_action.trigger()
    settle(qtbot, window)
    assert np.array_equal(window.doc.input, x), "the replaced document is one undo away"


def test_opening_an_image_keeps_the_history_and_asks_nothing(qtbot, window, tmp_path):
    from cnn_explorer.imageio import save_png
    from cnn_explorer.ui.common.messages import ImageOptions

    path = tmp_path / "a.png"
    save_png(np.full((4, 4), 255, np.uint8), str(path))
    _, count = _edit(qtbot, window)
    window.reporter.save_answer = "cancel"
    assert window.load_image(str(path), ImageOptions(4, 4, 1))
    assert window.reporter.questions == []
    assert window.doc.undo_stack.count() == count + 1
