"""The dialog shown after a model file was imported: what became of every node, the
transformations and warnings, the self-check, and the preprocessing, editable before the
model is opened (input size, colour order, value scale, mean/std, class names).

Open returns the edited :class:`Preprocessing`; Cancel opens nothing.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer.graph_view_model import checked_shapes
from cnn_explorer.interchange.model import ImportedModel, ModelFileError, Preprocessing
from cnn_explorer.limits import MAX_INPUT_SIDE

STATUS_COLOURS = {"mapped": "#1b6e20", "transformed": "#8a5a00", "unsupported": "#b00020"}
SCALES = (("0–1 (pixel ÷ 255)", 1 / 255), ("0–255 (pixel as is)", 1.0))
MAX_LABELS_BYTES = 2_000_000
"""A labels file larger than this is refused (a class list is a few kilobytes)."""


def read_labels(path: Path) -> list[str]:
    """Class names from a text file, one per line (blank lines skipped); ValueError with
    a sentence when it cannot be used."""
    if path.stat().st_size > MAX_LABELS_BYTES:
        raise ValueError(f"{path.name} is too large for a list of class names")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} is not a UTF-8 text file") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _numbers(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise ModelFileError(
            f"mean and std must be numbers separated by commas, not {text!r}"
        ) from None


class ImportReportDialog(QDialog):
    """The import report and the preprocessing form."""

    def __init__(self, model: ImportedModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.setWindowTitle(f"Import report — {model.source.name}")
        self.resize(900, 640)
        split = QSplitter()
        split.addWidget(self._report_view())
        split.addWidget(self._form())
        split.setSizes([560, 340])
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addWidget(self.problem)
        lay.addWidget(self.buttons)
        self._validate()

    # ------------------------------------------------------------------ report
    def _report_view(self) -> QWidget:
        rep = self.model.report
        counts = {s: sum(e.status == s for e in rep.entries) for s in STATUS_COLOURS}
        head = QLabel(
            f"<b>{html.escape(rep.source)}</b>: {len(rep.entries)} nodes — "
            + ", ".join(
                f"<span style='color:{STATUS_COLOURS[s]}'>{n} {s}</span>" for s, n in counts.items()
            )
            + f"<br>{len(self.model.graph.nodes)} engine layers"
        )
        self.entries = QTreeWidget()
        self.entries.setHeaderLabels(["Status", "Node", "Op", "Detail"])
        self.entries.setRootIsDecorated(False)
        self.entries.setAlternatingRowColors(True)
        for e in rep.entries:
            item = QTreeWidgetItem([e.status, e.node, e.op, e.detail])
            item.setForeground(0, QBrush(QColor(STATUS_COLOURS.get(e.status, "#000"))))
            item.setToolTip(3, e.detail)
            self.entries.addTopLevelItem(item)
        for col, width in enumerate((86, 180, 90)):
            self.entries.setColumnWidth(col, width)
        notes = QTextBrowser()
        notes.setHtml(self._notes_html())
        notes.setMaximumHeight(170)
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(head)
        lay.addWidget(self.entries, 1)
        lay.addWidget(notes)
        return box

    def _notes_html(self) -> str:
        rep = self.model.report
        parts = []
        check = rep.self_check
        if check is not None:
            colour = "#1b6e20" if check.passed else "#b00020"
            verdict = "✔ Self-check" if check.passed else "✘ Self-check FAILED"
            parts.append(
                f"<p style='color:{colour}'><b>{verdict}</b> against "
                f"{html.escape(check.reference)}: {html.escape(check.message)}</p>"
            )
        else:
            parts.append("<p style='color:#666'>No self-check was run.</p>")
        for title, items, colour in (
            ("Warnings", rep.warnings, "#b00020"),
            ("Transformations", rep.transformations, "#444"),
        ):
            if items:
                lis = "".join(f"<li>{html.escape(t)}</li>" for t in items)
                parts.append(f"<p style='color:{colour}'><b>{title}</b></p><ul>{lis}</ul>")
        return "".join(parts)

    # ------------------------------------------------------------------ preprocessing
    def _form(self) -> QWidget:
        pre = self.model.preprocessing
        c, h, w = pre.input_shape
        self.rows = QSpinBox(minimum=1, maximum=MAX_INPUT_SIDE, value=h)
        self.cols = QSpinBox(minimum=1, maximum=MAX_INPUT_SIDE, value=w)
        size = QHBoxLayout()
        size.addWidget(self.rows)
        size.addWidget(QLabel("×"))
        size.addWidget(self.cols)
        size.addWidget(QLabel(f"× {c} channel{'s' if c != 1 else ''}"))
        self.colour = QComboBox()
        for key, text in (("grey", "Grey"), ("rgb", "RGB"), ("bgr", "BGR")):
            if key == "grey" or c == 3:
                self.colour.addItem(text, key)
        self.colour.setCurrentIndex(max(0, self.colour.findData(pre.colour)))
        self.scale = QComboBox()
        for text, value in SCALES:
            self.scale.addItem(text, value)
        self.scale.setCurrentIndex(0 if abs(pre.scale - 1 / 255) < 1e-9 else 1)
        if all(abs(pre.scale - v) > 1e-9 for _, v in SCALES):
            self.scale.addItem(f"× {pre.scale:g}", pre.scale)
            self.scale.setCurrentIndex(2)
        self.mean = QLineEdit(", ".join(f"{v:g}" for v in pre.mean))
        self.std = QLineEdit(", ".join(f"{v:g}" for v in pre.std))
        self.names = QPlainTextEdit("\n".join(pre.class_names))
        self.names.setPlaceholderText("One class name per line (or load labels.txt)")
        labels = QPushButton("Load labels.txt…")
        labels.clicked.connect(self._load_labels)
        self.problem = QLabel("")
        self.problem.setStyleSheet("color: #b00020")
        self.problem.setWordWrap(True)
        for widget in (self.rows, self.cols):
            widget.valueChanged.connect(self._validate)
        for combo in (self.colour, self.scale):
            combo.currentIndexChanged.connect(self._validate)
        for line in (self.mean, self.std):
            line.textChanged.connect(self._validate)
        box = QWidget()
        form = QFormLayout(box)
        form.addRow(QLabel("<b>Preprocessing</b> (saved with the project)"))
        form.addRow("Input size", size)
        form.addRow("Colour", self.colour)
        form.addRow("Pixel values", self.scale)
        form.addRow("Mean", self.mean)
        form.addRow("Std", self.std)
        form.addRow(QLabel("x = (pixel · scale − mean) / std, per channel"))
        form.addRow("Class names", labels)
        form.addRow(self.names)
        return box

    def _load_labels(self) -> None:
        start = str(self.model.source.parent)
        path, _ = QFileDialog.getOpenFileName(self, "Class names", start, "Text (*.txt);;All (*)")
        if path:
            self.load_labels(Path(path))

    def load_labels(self, path: Path) -> None:
        """Put the class names of a labels file into the form (errors shown inline)."""
        try:
            self.names.setPlainText("\n".join(read_labels(path)))
        except (OSError, ValueError) as exc:
            self.problem.setText(str(exc))

    def preprocessing(self) -> Preprocessing:
        """The form's preprocessing; ModelFileError with the reason when it is invalid."""
        c = self.model.preprocessing.input_shape[0]
        names = [n.strip() for n in self.names.toPlainText().splitlines() if n.strip()]
        return Preprocessing(
            (c, self.rows.value(), self.cols.value()),
            str(self.colour.currentData()),
            float(self.scale.currentData()),
            tuple(_numbers(self.mean.text()) or [0.0]),
            tuple(_numbers(self.std.text()) or [1.0]),
            tuple(names),
        )

    def _validate(self) -> None:
        try:
            pre = self.preprocessing()
            checked_shapes(self.model.graph, pre.input_shape)
        except ValueError as exc:  # ModelFileError and the engine's ShapeError
            self.problem.setText(str(exc))
            self.buttons.button(QDialogButtonBox.StandardButton.Open).setEnabled(False)
            return
        self.problem.setText("")
        self.buttons.button(QDialogButtonBox.StandardButton.Open).setEnabled(True)
