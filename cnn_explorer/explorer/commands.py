"""Undo commands: every edit of the document goes through one of these.

Each command stores the old and new state of the part it changes (input array, one layer
spec, or the whole stack) so undo/redo are exact. Commands that describe a gesture already
shown live (a paint stroke) pass ``applied=True`` so the first ``redo`` does not redo work.
Consecutive edits of the same weight table merge into one undo step via ``mergeWith``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QUndoCommand

from cnn_explorer.explorer.document import Document, LayerSpec

MERGE_LAYER = 1001


class SetInputCommand(QUndoCommand):
    """Replace the input ``(C, H, W)`` (cell edit, stroke, fill, preset, image, resize)."""

    def __init__(
        self,
        doc: Document,
        old: np.ndarray,
        new: np.ndarray,
        text: str,
        applied: bool = False,
        region: tuple[int, int, int, int] | None = None,
    ) -> None:
        super().__init__(text)
        self.doc, self.old, self.new = doc, old, new
        self.region = region if old.shape == new.shape else None
        self._skip = applied

    def redo(self) -> None:
        if self._skip:
            self._skip = False
            return
        self.doc.apply_input(self.new, self.region)

    def undo(self) -> None:
        self.doc.apply_input(self.old, self.region)


class SetLayerCommand(QUndoCommand):
    """Replace one layer's spec. ``merge_key`` (e.g. "weight:2") makes a burst of edits of
    the same thing one undo step."""

    def __init__(
        self,
        doc: Document,
        index: int,
        old: LayerSpec,
        new: LayerSpec,
        text: str,
        merge_key: str | None = None,
    ) -> None:
        super().__init__(text)
        self.doc, self.index, self.old, self.new = doc, index, old, new
        self.merge_key = merge_key

    def id(self) -> int:
        return MERGE_LAYER if self.merge_key else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetLayerCommand):
            return False
        if other.merge_key != self.merge_key or other.index != self.index:
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.doc.apply_layer(self.index, self.new.copy())

    def undo(self) -> None:
        self.doc.apply_layer(self.index, self.old.copy())


class SetLayersCommand(QUndoCommand):
    """Replace the whole stack (add, remove, duplicate, reorder, channel conform)."""

    def __init__(
        self,
        doc: Document,
        old: list[LayerSpec],
        new: list[LayerSpec],
        text: str,
        first: int = 0,
        select_after: int | None = None,
    ) -> None:
        super().__init__(text)
        self.doc, self.old, self.new, self.first = doc, old, new, first
        self.select_after = select_after
        self.select_before = doc.selected_layer

    def redo(self) -> None:
        self.doc.apply_layers([s.copy() for s in self.new], self.first, self.select_after)

    def undo(self) -> None:
        self.doc.apply_layers([s.copy() for s in self.old], self.first, self.select_before)


class SetDocumentCommand(QUndoCommand):
    """Replace input and layers together (preset project, open without clearing undo)."""

    def __init__(
        self,
        doc: Document,
        old: tuple[np.ndarray, list[LayerSpec]],
        new: tuple[np.ndarray, list[LayerSpec]],
        text: str,
    ) -> None:
        super().__init__(text)
        self.doc, self.old, self.new = doc, old, new

    def redo(self) -> None:
        self.doc.apply_document(self.new[0], [s.copy() for s in self.new[1]])

    def undo(self) -> None:
        self.doc.apply_document(self.old[0], [s.copy() for s in self.old[1]])
