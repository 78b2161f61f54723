"""The one undo command: it wraps an edit of :mod:`.edits` for Qt's undo stack.

Every edit stores the old and new state of the part it changes, so undo/redo are exact.
Consecutive edits with the same merge key (dragging a bias spin box, setting the rows and
then the columns of a resize) become one undo step through ``QUndoCommand.mergeWith``; a
merged resize that comes back to the size it started from leaves no step at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QUndoCommand

from cnn_explorer.explorer.edits import Edit, InputEdit, LayerEdit

if TYPE_CHECKING:
    from cnn_explorer.explorer.document import Document

MERGE_ID = 1001


class EditCommand(QUndoCommand):
    """Applies one edit to the document's model (redo) or reverts it (undo)."""

    def __init__(self, doc: Document, edit: Edit) -> None:
        super().__init__(edit.text)
        self.doc, self.edit = doc, edit

    def id(self) -> int:
        mergeable = isinstance(self.edit, LayerEdit | InputEdit) and self.edit.merge_key
        return MERGE_ID if mergeable else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        edit = self.edit
        if not (isinstance(other, EditCommand) and isinstance(edit, LayerEdit | InputEdit)):
            return False
        if not edit.merge(other.edit):
            return False
        self.setText(edit.text)
        if isinstance(edit, InputEdit) and edit.is_noop:
            self.setObsolete(True)
        return True

    def redo(self) -> None:
        self.doc.apply(self.edit)

    def undo(self) -> None:
        self.doc.apply(self.edit, undo=True)
