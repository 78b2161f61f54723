"""How the window talks to the user in dialogs, behind one object tests can replace.

Widgets never call QMessageBox directly: they go through a :class:`Reporter`, so tests
swap in :class:`RecordingReporter` and no dialog can ever block a test run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QMessageBox, QWidget

from cnn_explorer.limits import IMAGE_SUFFIXES

if TYPE_CHECKING:
    from cnn_explorer.interchange.model import ImportedModel, Preprocessing

ERROR_STYLE = "color: #b00020;"
"""Style sheet of a status line that reports an error (one red everywhere)."""
IMAGE_FILTER = "Images (" + " ".join(f"*{suffix}" for suffix in IMAGE_SUFFIXES) + ")"
"""The file-dialog filter for every image the app reads."""


@dataclass
class ImageOptions:
    """How to turn an image into the input grid."""

    rows: int
    cols: int
    channels: int


def parse_input_size(text: str) -> tuple[int, int, int] | None:
    """``"3×224×224"`` (or with ``x``, ``,`` or spaces) → ``(3, 224, 224)``; None if not
    three whole numbers ≥ 1."""
    parts = re.split(r"[×xX,\s]+", text.strip())
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    c, h, w = (int(p) for p in parts)
    return (c, h, w) if min(c, h, w) >= 1 else None


def save_question(before: str = "closing", note: str = "") -> str:
    """The question asked before unsaved work is replaced or closed, e.g. ``before`` =
    "opening p.cnnx"; ``note`` says what happens to the undo history."""
    text = f"The project has unsaved changes. Save them before {before}?"
    return f"{text}\n\n{note}" if note else text


class Reporter:
    """Real dialogs (the default)."""

    def __init__(self, parent: QWidget | None) -> None:
        self.parent = parent

    def error(self, title: str, text: str) -> None:
        QMessageBox.warning(self.parent, title, text)

    def info(self, title: str, text: str) -> None:
        QMessageBox.information(self.parent, title, text)

    def ask_save_changes(self, before: str = "closing", note: str = "") -> str:
        """ "save", "discard" or "cancel" (see :func:`save_question` for the text)."""
        b = QMessageBox.StandardButton
        choice = QMessageBox.question(
            self.parent,
            "Unsaved changes",
            save_question(before, note),
            b.Save | b.Discard | b.Cancel,
            b.Save,
        )
        return {b.Save: "save", b.Discard: "discard"}.get(choice, "cancel")

    def ask_yes_no(self, title: str, text: str) -> bool:
        """True when the user answers Yes to ``text``."""
        b = QMessageBox.StandardButton
        return QMessageBox.question(self.parent, title, text, b.Yes | b.No, b.Yes) == b.Yes

    def open_path(self, title: str, filters: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, title, "", filters)
        return path or None

    def save_path(self, title: str, filters: str, suggested: str = "") -> str | None:
        path, _ = QFileDialog.getSaveFileName(self.parent, title, suggested, filters)
        return path or None

    def folder_path(self, title: str) -> str | None:
        return QFileDialog.getExistingDirectory(self.parent, title) or None

    def image_options(
        self,
        src_w: int,
        src_h: int,
        default: ImageOptions,
        preview: np.ndarray | None = None,
    ) -> ImageOptions | None:
        """Ask for the grid size (aspect ratio kept by default; ``preview`` is the picture
        as ``(3, H, W)`` in [0, 1] at a small size, or None)."""
        from cnn_explorer.ui.common.image_size_dialog import ImageSizeDialog

        dlg = ImageSizeDialog(src_w, src_h, default, preview, self.parent)
        if dlg.exec() != QDialog.DialogCode.Accepted:
            return None
        return dlg.options()

    def input_size(self, reason: str, default: tuple[int, int, int]) -> tuple[int, int, int] | None:
        """Ask the size ``(C, H, W)`` to import a model at (``reason`` says why); None:
        Cancel."""
        text = "×".join(map(str, default))
        while True:
            text, ok = QInputDialog.getText(
                self.parent, "Input size", f"{reason}\n\nChannels × height × width:", text=text
            )
            if not ok:
                return None
            size = parse_input_size(text)
            if size is not None:
                return size

    def import_report(self, model: ImportedModel) -> Preprocessing | None:
        """Show what the import did and let the user adjust the preprocessing; the
        preprocessing to open the model with, or None (Cancel)."""
        from cnn_explorer.ui.common.import_report import ImportReportDialog

        dlg = ImportReportDialog(model, self.parent)
        if dlg.exec() != QDialog.DialogCode.Accepted:
            return None
        return dlg.preprocessing()


@dataclass
class RecordingReporter(Reporter):
    """Records every message and answers questions from preset values (tests)."""

    parent: QWidget | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)
    infos: list[tuple[str, str]] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    """Every save-changes question asked, as the user would read it."""
    save_answer: str = "discard"
    yes_answer: bool = True
    """The answer to every yes/no question (each is recorded in ``questions``)."""
    next_open: str | None = None
    next_save: str | None = None
    next_folder: str | None = None
    image_answer: ImageOptions | None = None
    image_defaults: list[ImageOptions] = field(default_factory=list)
    """The size offered for every image asked about (the dialog's starting values)."""
    reports: list[ImportedModel] = field(default_factory=list)
    """Every imported model whose report was shown."""
    import_answer: Preprocessing | None = None
    """The preprocessing to answer the import report with (None: the model's own)."""
    import_cancel: bool = False
    input_size_answer: tuple[int, int, int] | None = None
    """The answer to "which input size?" (None: Cancel); questions go to ``questions``."""

    def error(self, title: str, text: str) -> None:
        self.errors.append((title, text))

    def info(self, title: str, text: str) -> None:
        self.infos.append((title, text))

    def ask_save_changes(self, before: str = "closing", note: str = "") -> str:
        self.questions.append(save_question(before, note))
        return self.save_answer

    def ask_yes_no(self, title: str, text: str) -> bool:
        self.questions.append(text)
        return self.yes_answer

    def open_path(self, title: str, filters: str) -> str | None:
        return self.next_open

    def save_path(self, title: str, filters: str, suggested: str = "") -> str | None:
        return self.next_save

    def folder_path(self, title: str) -> str | None:
        return self.next_folder

    def image_options(
        self,
        src_w: int,
        src_h: int,
        default: ImageOptions,
        preview: np.ndarray | None = None,
    ) -> ImageOptions | None:
        self.image_defaults.append(default)
        return self.image_answer or default

    def import_report(self, model: ImportedModel) -> Preprocessing | None:
        self.reports.append(model)
        if self.import_cancel:
            return None
        return self.import_answer or model.preprocessing

    def input_size(self, reason: str, default: tuple[int, int, int]) -> tuple[int, int, int] | None:
        self.questions.append(reason)
        return self.input_size_answer
