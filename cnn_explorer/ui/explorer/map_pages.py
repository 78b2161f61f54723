"""What the feature-map panel shows: the maps, the line plots of a 1-row input, or a note
while the maps of a new document or input size are computed.

Opening a big document computes its first forward on the thread pool (see
:data:`~cnn_explorer.explorer.document.OPEN_INLINE_COST`); until it is done the maps
published before have other shapes (another document's), so the panel says it is
computing instead of showing them. It follows the document's signals only.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStackedWidget, QWidget

from cnn_explorer.explorer.document import Document
from cnn_explorer.ui.explorer.row_maps import RowMapsView

COMPUTING_TEXT = "Computing the feature maps…"


class MapPages(QStackedWidget):
    """The scrolled maps, the 1-row line plots, or :data:`COMPUTING_TEXT`."""

    def __init__(self, doc: Document, maps: QWidget, rows: RowMapsView) -> None:
        super().__init__()
        self.doc, self.maps, self.rows = doc, maps, rows
        self.note = QLabel(COMPUTING_TEXT)
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setStyleSheet("QLabel { background: white; color: #555; }")
        for page in (maps, rows, self.note):
            self.addWidget(page)
        rows.applies_changed.connect(self.update_page)
        doc.busy_changed.connect(self._busy)
        self.update_page()

    @property
    def computing(self) -> bool:
        """True while the note is shown instead of the maps."""
        return self.currentWidget() is self.note

    def _busy(self, busy: bool) -> None:
        # Only to the note: the maps come back once the view has drawn the new results
        # (the job ending, before they are published, would show the old maps again).
        if busy and self.doc.computing_maps:
            self.update_page()

    def update_page(self, *_: object) -> None:
        """Show the page the document's state calls for (the view calls it after drawing
        new results; any signal's value is ignored)."""
        if self.doc.computing_maps:
            page: QWidget = self.note
        else:
            page = self.rows if self.rows.applies else self.maps
        if self.currentWidget() is not page:
            self.setCurrentWidget(page)
