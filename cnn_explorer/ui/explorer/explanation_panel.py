"""Shows the arithmetic of the selected output cell with the real numbers, its receptive
field in the input, and per-map statistics. Text comes from the engine's geometry
(``explain_cell`` / ``format_explanation`` / ``receptive_field``) via the document."""

from __future__ import annotations

import html

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QTextBrowser, QToolButton, QVBoxLayout, QWidget

from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.model import Change
from cnn_explorer.explorer.results import Results
from cnn_explorer.explorer.transcript import transcript
from cnn_explorer.ui.common import colors

PLACEHOLDER = (
    "<p style='color:#666'>Click any cell of a feature map to see how it was computed: "
    "the multiply-adds of a convolution with your numbers, the window and winner of a "
    "max pool, the activation step — and its receptive field lights up in every earlier map.</p>"
)


class ExplanationPanel(QWidget):
    """Read-only rich text view of the selected cell's computation."""

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)
        self.browser.setObjectName("explanation")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.browser)
        copy_row = QHBoxLayout()
        copy_row.addStretch(1)
        self.copy_buttons: dict[str, QToolButton] = {}
        for style, text in (("plain", "Copy as text"), ("latex", "Copy as LaTeX")):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(
                f"Copy the arithmetic {text[5:]}, each product labelled with its input and "
                "weight (x[0,1]·w[0,1]) and then with the numbers"
            )
            b.clicked.connect(lambda _c=False, st=style: self.copy(st))
            copy_row.addWidget(b)
            self.copy_buttons[style] = b
        lay.addLayout(copy_row)
        self.plain_text = ""
        doc.changed.connect(self._on_changed)
        doc.results_ready.connect(self._on_results)
        self.refresh()

    def _on_changed(self, change: Change) -> None:
        if change.kind in ("cell", "document", "layers"):
            self.refresh()

    def _on_results(self, _res: Results) -> None:
        if self.doc.selection is not None:
            self.refresh()

    def refresh(self) -> None:
        sel = self.doc.selection
        maps = self.doc.results.maps
        notes = self.doc.results.notes
        for b in self.copy_buttons.values():
            b.setEnabled(sel is not None and sel.map_index < len(maps))
        note_html = "".join(f"<p style='color:#a33'>⚠ {html.escape(n)}</p>" for n in notes if n)
        if sel is None or sel.map_index >= len(maps):
            self.plain_text = ""
            self.browser.setHtml(PLACEHOLDER + note_html)
            return
        try:
            text = self.doc.model.explain(sel)
            regions = self.doc.model.receptive_field(sel)
        except Exception as exc:  # never let an explanation crash the window
            text, regions = f"(could not explain this cell: {exc})", []
        name = "the input" if sel.map_index == 0 else f"layer {sel.map_index}"
        value = float(maps[sel.map_index][sel.channel, sel.row, sel.col])
        parts = [
            f"<h3 style='margin:2px 0'>Cell [{sel.channel}, {sel.row}, {sel.col}] of {name} = "
            f"{html.escape(colors.fmt(value, 6))}</h3>",
            "<p style='font-family: DejaVu Sans Mono, monospace; "
            "white-space: pre-wrap; background:#f4f4f8'>"
            + html.escape(text).replace("\n", "<br>")
            + "</p>",
        ]
        if regions:
            r0 = regions[0]
            rr, cr = r0.row_range, r0.col_range
            if rr and cr:
                parts.append(
                    f"<p><b>Receptive field in the input:</b> rows {rr[0]}–{rr[1]}, "
                    f"columns {cr[0]}–{cr[1]} ({r0.size} cell{'s' if r0.size != 1 else ''}"
                    " per channel"
                    + (f", {len(r0.padding_cells)} padding cells" if r0.padding_cells else "")
                    + "), highlighted in every earlier map.</p>"
                )
        a = maps[sel.map_index][sel.channel]
        lo, hi = colors.finite_range(a)
        zeros = float((a == 0).mean()) if a.size else 0.0
        mean = float(a.mean()) if a.size else 0.0
        parts.append(
            f"<p style='color:#444'>This map: min {colors.fmt(lo)}, max {colors.fmt(hi)}, "
            f"mean {colors.fmt(mean)}, zeros {zeros:.0%}</p>"
        )
        self.plain_text = text
        self.browser.setHtml("".join(parts) + note_html)

    def transcript(self, style: str = "plain") -> str:
        """The selected cell's arithmetic with labelled products ("" with no selection)."""
        sel, maps = self.doc.selection, self.doc.results.maps
        if sel is None or sel.map_index >= len(maps):
            return ""
        return transcript(self.doc.layers, maps, sel, style)

    def copy(self, style: str = "plain") -> str:
        """Put :meth:`transcript` on the clipboard; returns what was copied."""
        text = self.transcript(style)
        if text:
            QGuiApplication.clipboard().setText(text)
        return text
