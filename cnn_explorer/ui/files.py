"""Projects on disk: open, save, new, the recent-files menu, and the question asked before
unsaved work is replaced.

Every path that replaces the whole document goes through :meth:`ProjectFiles.confirm`
(Save / Discard / Cancel); Cancel, a failed save or a closed save dialog leave everything
as it was. Opening a project or starting anew clears the undo history (the question says
so); the undo stack's clean state follows every save and open. The Model tab's
preprocessing edits are not undo steps: they count as unsaved work through
``model_modified`` until the next save.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QMenu

from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.graph_view_model import checked_shapes
from cnn_explorer.explorer.project import SUFFIX, Project, ProjectError, read_project, save_project
from cnn_explorer.explorer.project_model import SavedModel
from cnn_explorer.explorer.specs import LayerSpec
from cnn_explorer.interchange.model import ImportedModel
from cnn_explorer.interchange.saved_model import imported_from_saved, saved_meta
from cnn_explorer.ui.common.messages import Reporter

if TYPE_CHECKING:
    from cnn_explorer.ui.model.tab import ModelTab

PROJECT_FILTER = f"CNN Explorer project (*{SUFFIX})"
MAX_RECENT = 8
CLEARS_HISTORY = "Discarded changes cannot be brought back: this clears the undo history."


class ProjectFiles(QObject):
    """The document's file: its path, saving, opening, starting anew, recent files."""

    status = Signal(str, bool)  # (text, is_error) for the status bar
    name_changed = Signal()  # the file (or untitled name) shown in the title changed
    open_requested = Signal(str)  # a recent file was chosen (the window opens it by kind)
    trained_loaded = Signal(object, str)  # (TrainedState, file name) of an opened project
    model_loaded = Signal(object, str)  # (ImportedModel, file name) of an opened project
    saved = Signal()  # the project was written: everything in it is saved

    def __init__(
        self, doc: Document, reporter: Reporter, recent_menu: QMenu, parent: QObject | None
    ) -> None:
        super().__init__(parent)
        self.doc = doc
        self.reporter = reporter
        self.recent_menu = recent_menu
        self.current_path: str | None = None
        self.untitled = "Worked example"
        self.persist_settings = True  # headless runs (screenshots) leave QSettings alone
        self.trained_state: Callable[[], Any] = lambda: None
        """Returns the training tab's network to save with the project (None: no tab)."""
        self.model_state: Callable[[], Any] = lambda: None
        """Returns the Model tab's imported model to save with the project (None: none)."""
        self.model_modified: Callable[[], bool] = lambda: False
        """True while the Model tab's model has edits the project file does not hold."""
        self._model: ImportedModel | None = None
        self.rebuild_recent()

    @property
    def name(self) -> str:
        """What the title shows: the file name, or the untitled document's name."""
        return os.path.basename(self.current_path) if self.current_path else self.untitled

    def follow_model(self, tab: ModelTab) -> None:
        """Save the Model tab's model with the project and show an opened project's; its
        unsaved preprocessing edits count as unsaved work (the close and open questions,
        the title's mark), and opening another model over them asks first."""
        self.model_state = tab.imported_model
        self.model_modified = lambda: tab.has_unsaved_edits
        self.model_loaded.connect(lambda model, _name: tab.set_model(model))
        self.saved.connect(tab.mark_saved)
        tab.loader.may_replace = lambda name: (
            not tab.has_unsaved_edits or self.confirm(f"opening {name}")
        )

    # ------------------------------------------------------------------ unsaved work
    def is_modified(self) -> bool:
        """Unsaved work: explorer edits since the clean undo position, or Model tab edits."""
        return not self.doc.undo_stack.isClean() or self.model_modified()

    def confirm(self, before: str, note: str = "") -> bool:
        """True when the document may be replaced (or closed): nothing is unsaved, or the
        user saved it or chose to discard it. ``before`` completes "Save them before …?"."""
        if not self.is_modified():
            return True
        answer = self.reporter.ask_save_changes(before, note)
        if answer == "save":
            return self.save()
        return answer == "discard"

    def forget_path(self, untitled: str) -> None:
        """The document is no longer the file's (it was replaced undoably): Save asks for
        a new path, and no undo position counts as saved any more."""
        self.current_path = None
        self.untitled = untitled
        self.doc.undo_stack.resetClean()
        self.name_changed.emit()

    # ------------------------------------------------------------------ open / new
    def open_project(self, path: str) -> bool:
        """Open a project, after asking about unsaved work. A file that cannot be read is
        reported before anything is asked, and changes nothing."""
        name = os.path.basename(path)
        project = self._read(path)
        if project is None:
            return False
        stamp = _stamp(path)
        if not self.confirm(f"opening {name}", CLEARS_HISTORY):
            return False
        if _stamp(path) != stamp:  # just saved over the very file being opened
            project = self._read(path)
            if project is None:
                return False
        self._replace(project.input, project.layers)
        self.current_path = path
        self.add_recent(path)
        self.name_changed.emit()
        self.status.emit(f"Opened {name}", False)
        if project.trained is not None:  # a project without one leaves the tab as it is
            self.trained_loaded.emit(project.trained, name)
        if self._model is not None:  # likewise for the Model tab
            self.model_loaded.emit(self._model, name)
        return True

    def start_new(self, x: np.ndarray, layers: list[LayerSpec], untitled: str) -> bool:
        """Replace the document with an untitled one, after asking about unsaved work."""
        if not self.confirm(f"starting a new {untitled.lower()}", CLEARS_HISTORY):
            return False
        self._replace(x, layers)
        self.current_path = None
        self.untitled = untitled
        self.name_changed.emit()
        self.status.emit(f"New {untitled.lower()}", False)
        return True

    def _read(self, path: str) -> Project | None:
        if os.path.isdir(path):
            self._open_failed(f"{os.path.basename(path)} is a folder, not a project file.")
            return None
        try:
            project = read_project(path)
            self._model = None if project.model is None else _imported(project.model, path)
        except (ProjectError, OSError) as exc:
            self._open_failed(str(exc))
            return None
        return project

    def _open_failed(self, text: str) -> None:
        self.reporter.error("Cannot open project", text)
        self.status.emit(text, True)

    def _replace(self, x: np.ndarray, layers: list[LayerSpec]) -> None:
        self.doc.apply_document(x, layers)
        self.doc.undo_stack.clear()  # also marks the (empty) stack clean

    # ------------------------------------------------------------------ save
    def save(self) -> bool:
        if not self.current_path:
            return self.save_as()
        return self.save_to(self.current_path)

    def save_as(self) -> bool:
        suggested = self.current_path or f"untitled{SUFFIX}"
        path = self.reporter.save_path("Save project", PROJECT_FILTER, suggested)
        if not path:
            return False
        if not path.lower().endswith(SUFFIX):
            path += SUFFIX
        return self.save_to(path)

    def save_to(self, path: str) -> bool:
        try:
            model = self.model_state()
            saved = None if model is None else SavedModel(model.graph, saved_meta(model))
            save_project(path, self.doc.input, self.doc.layers, self.trained_state(), model=saved)
        except (OSError, ValueError) as exc:  # ValueError: data that cannot be stored
            self.reporter.error("Cannot save", f"Could not write {path}: {exc}")
            return False
        self.current_path = path
        self.doc.undo_stack.setClean()
        self.saved.emit()
        self.add_recent(path)
        self.name_changed.emit()
        self.status.emit(f"Saved {os.path.basename(path)}", False)
        return True

    # ------------------------------------------------------------------ recent files
    def recent(self) -> list[str]:
        v = QSettings().value("recentFiles", [])
        if isinstance(v, str):
            return [v]
        return [str(p) for p in v] if isinstance(v, list) else []

    def add_recent(self, path: str) -> None:
        if not self.persist_settings:
            return
        path = os.path.abspath(path)
        items = [p for p in self.recent() if p != path]
        QSettings().setValue("recentFiles", [path, *items][:MAX_RECENT])
        self.rebuild_recent()

    def rebuild_recent(self) -> None:
        self.recent_menu.clear()
        items = self.recent()
        for p in items:
            action = self.recent_menu.addAction(os.path.basename(p))
            action.setToolTip(p)
            action.triggered.connect(lambda _c=False, path=p: self.open_requested.emit(path))
        self.recent_menu.setEnabled(bool(items))


def _stamp(path: str) -> tuple[int, int, int] | None:
    """Identity, modification time and size of a file (None if it cannot be read); saving
    replaces the file atomically, so a save over it changes the identity."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _imported(saved: SavedModel, path: str) -> ImportedModel:
    """The imported model a project holds, its metadata validated by the importer's types
    and its maps' memory checked (ProjectError: the project is not opened)."""
    try:
        model = imported_from_saved(saved.graph, saved.meta)
        checked_shapes(model.graph, model.preprocessing.input_shape)
    except ValueError as exc:  # ModelFileError, the engine's ShapeError, the memory rule
        name = os.path.basename(path)
        raise ProjectError(f"{name}: the imported model cannot be used: {exc}.") from None
    return model
