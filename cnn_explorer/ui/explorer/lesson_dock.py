"""The Lesson panel: the guided lesson of :mod:`cnn_explorer.explorer.lesson`, one step at a
time, beside the explorer.

Going to a step sets the document up with the ``new_document`` intent (one undo step, so
the learner's own work is one Edit ▸ Undo away; none when the document already is the
step's, as when the app has just opened on the worked example); before replacing a
document the lesson did not make, it asks through ``confirm`` (the window's unsaved-work
question). The step's check runs after every change and result while the panel is shown,
and its feedback appears below the question.
Where the learner is and which steps they answered are kept in QSettings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer import lesson
from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.model import Change
from cnn_explorer.explorer.specs import LayerSpec

STEP_KEY = "lesson/step"
DONE_KEY = "lesson/done"
OFFERED_KEY = "lesson/offered"

INTRO = (
    "New here? This lesson walks through the primer's worked example in eight short "
    "steps: what a convolution computes, ReLU, pooling, an edge kernel, the output-size "
    "rule, weight sharing and strided convolutions. Each step sets the app up, says what "
    "to look at and asks you to do something; your document stays one Edit ▸ Undo away."
)
GOOD, BAD = "#176317", "#9a2a00"


def _label(text: str = "", *, bold: bool = False, name: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if bold:
        font = label.font()
        font.setBold(True)
        label.setFont(font)
    if name:
        label.setObjectName(name)
    return label


def _colour(w: QWidget, role: QPalette.ColorRole, colour: str) -> None:
    pal = w.palette()
    pal.setColor(role, QColor(colour))
    w.setPalette(pal)


class LessonPanel(QWidget):
    """Intro page (offered at first launch) and the step page with Back / Next."""

    closed = Signal()  # "Not now": the window hides the dock
    replaced = Signal()  # a step replaced the document (the window forgets its file path)

    def __init__(
        self,
        doc: Document,
        confirm: Callable[[str], bool] | None = None,
        steps: Sequence[lesson.Step] = lesson.STEPS,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.doc = doc
        self.steps = tuple(steps)
        self.confirm = confirm or (lambda _what: True)
        self.persist = True
        self.index = 0
        self.done: set[str] = set()
        self.feedback = lesson.WAITING
        self._owns_document = False  # the document is a lesson step's (no need to ask)
        self._applying = False
        self._build()
        self._load_progress()
        doc.changed.connect(self._on_changed)
        doc.results_ready.connect(lambda _r: self.evaluate())
        self._show_step()

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_intro())
        self.pages.addWidget(self._build_step_page())
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.pages)

    def _build_intro(self) -> QWidget:
        intro = QWidget()
        il = QVBoxLayout(intro)
        il.addWidget(_label("Learn with the lesson", bold=True))
        il.addWidget(_label(INTRO))
        row = QHBoxLayout()
        self.start_btn = QPushButton("Start the lesson")
        self.start_btn.clicked.connect(self.start)
        self.later_btn = QPushButton("Not now")
        self.later_btn.clicked.connect(self.closed.emit)
        row.addWidget(self.start_btn)
        row.addWidget(self.later_btn)
        row.addStretch(1)
        il.addLayout(row)
        il.addStretch(1)
        return intro

    def _build_step_page(self) -> QWidget:
        page = QWidget()
        self.step_combo = QComboBox()
        self.step_combo.activated.connect(self.go)
        self.title = _label(bold=True, name="lessonTitle")
        self.look = _label(name="lessonLook")
        self.question = _label(bold=True, name="lessonQuestion")
        self.live = _label(name="lessonLive")
        mono = QFont()  # only the family is set: the size follows View ▸ Zoom
        mono.setFamilies(["DejaVu Sans Mono", "monospace"])
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.live.setFont(mono)
        # Palettes, not style sheets: a widget with a style sheet stops following the
        # window's font, and View ▸ Zoom scales that font.
        self.live.setAutoFillBackground(True)
        self.live.setMargin(4)
        _colour(self.live, QPalette.ColorRole.Window, "#f4f4f8")
        self.answer = _label(name="lessonFeedback")
        self.back_btn = QPushButton("◀ Back")
        self.again_btn = QPushButton("Set up again")
        self.next_btn = QPushButton("Next ▶")
        self.back_btn.clicked.connect(lambda: self.go(self.index - 1))
        self.again_btn.clicked.connect(lambda: self.go(self.index))
        self.next_btn.clicked.connect(lambda: self.go(self.index + 1))
        tips = (
            (self.step_combo, "Jump to any step of the lesson (✓: answered)"),
            (self.back_btn, "Set up the previous step (your document stays in Edit ▸ Undo)"),
            (self.again_btn, "Set this step up again from the worked example"),
            (self.next_btn, "Set up the next step (your document stays in Edit ▸ Undo)"),
            (self.start_btn, "Set up the lesson where you left it (undoable)"),
            (self.later_btn, "Close the lesson; Help ▸ Lesson opens it again"),
        )
        for w, tip in tips:
            w.setToolTip(tip)
            w.setWhatsThis(f"<b>Lesson</b>: {tip}.")
        nav = QHBoxLayout()
        for b in (self.back_btn, self.again_btn, self.next_btn):
            nav.addWidget(b)
        text = QWidget()
        tl = QVBoxLayout(text)
        tl.setContentsMargins(0, 0, 0, 0)
        for w in (self.title, self.look, self.question, self.live, self.answer):
            tl.addWidget(w)
        tl.addStretch(1)
        scroll = QScrollArea()  # long feedback in a short dock scrolls, never overlaps
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(text)
        pl = QVBoxLayout(page)
        pl.addWidget(self.step_combo)
        pl.addWidget(scroll, 1)
        pl.addLayout(nav)
        return page

    # ------------------------------------------------------------------ progress
    def _load_progress(self) -> None:
        s = QSettings()
        self.index = lesson.step_index(str(s.value(STEP_KEY, "")), self.steps)
        done = s.value(DONE_KEY, [])
        names = [done] if isinstance(done, str) else list(done or [])  # type: ignore[call-overload]
        self.done = {n for n in names if any(st.key == n for st in self.steps)}

    def _save_progress(self) -> None:
        if not self.persist:
            return
        s = QSettings()
        s.setValue(STEP_KEY, self.steps[self.index].key)
        s.setValue(DONE_KEY, sorted(self.done))

    def show_intro(self) -> None:
        """The first-launch offer: what the lesson is, Start or Not now."""
        self.pages.setCurrentIndex(0)

    def show_steps(self) -> None:
        """The current step's page, without touching the document (Help ▸ Lesson)."""
        self.pages.setCurrentIndex(1)
        self._show_step()

    @property
    def step(self) -> lesson.Step:
        return self.steps[self.index]

    # ------------------------------------------------------------------ navigation
    def start(self) -> bool:
        """Set up the remembered step (the first one for a new learner)."""
        return self.go(self.index)

    def go(self, index: int) -> bool:
        """Set step ``index`` up as one undo step; False when the learner kept their work."""
        index = max(0, min(index, len(self.steps) - 1))
        step = self.steps[index]
        asks = not (self._owns_document or self.doc.undo_stack.isClean())
        if asks and not self.confirm(f"setting up the lesson step “{step.title}”"):
            return False
        x, layers = step.setup()
        if self._holds(x, layers):  # already set up (the app opens on the worked example)
            self.doc.select_cell(None)
        else:
            self._applying = True
            try:
                self.doc.new_document(x, layers, f"Lesson {index + 1}: {step.title}")
            finally:
                self._applying = False
            self.replaced.emit()
        self._owns_document = True
        self.index = index
        self.pages.setCurrentIndex(1)
        self._save_progress()
        self._show_step()
        return True

    def _holds(self, x: np.ndarray, layers: list[LayerSpec]) -> bool:
        """True when the document is exactly ``x`` and ``layers`` (no undo step needed)."""
        doc = self.doc
        if x.shape != doc.input.shape or not np.array_equal(x, doc.input):
            return False
        return len(layers) == len(doc.layers) and all(
            a.same_values(b) for a, b in zip(layers, doc.layers, strict=True)
        )

    def _on_changed(self, change: Change) -> None:
        if change.kind == "document" and not self._applying:
            self._owns_document = False  # a file, undo past the step, a trained network
        self.evaluate()

    # ------------------------------------------------------------------ model → view
    def _show_step(self) -> None:
        n = len(self.steps)
        self.step_combo.clear()
        for i, s in enumerate(self.steps):
            mark = " ✓" if s.key in self.done else ""
            self.step_combo.addItem(f"Step {i + 1} of {n}: {s.title}{mark}")
        self.step_combo.setCurrentIndex(self.index)
        step = self.step
        self.title.setText(step.title)
        self.look.setText(step.look)
        self.question.setText(step.question)
        self.back_btn.setEnabled(self.index > 0)
        self.next_btn.setEnabled(self.index < n - 1)
        self.feedback = lesson.WAITING
        self.evaluate(force=True)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.evaluate(force=True)  # edits made while the lesson was hidden

    def evaluate(self, force: bool = False) -> None:
        """Run the step's check (and live text) on the document as it is now; nothing
        while the panel is hidden (no cost to editing without the lesson)."""
        if not self.isVisible():
            return
        if not (self.doc.computed or force):
            return  # results are on their way: the check runs when they arrive
        step = self.step
        try:
            fb = step.check(self.doc.model)
            live = step.live(self.doc.model) if step.live else ""
        except Exception as exc:  # a check must never take the window down
            fb, live = lesson.Feedback(False, f"(could not check: {exc})"), ""
        self.live.setVisible(bool(live))
        if self.live.text() != live:
            self.live.setText(live)
        self.feedback = fb
        _colour(self.answer, QPalette.ColorRole.WindowText, GOOD if fb.ok else BAD)
        self.answer.setText(("✓ " if fb.ok else "") + fb.text)
        if fb.ok and step.key not in self.done:
            self.done.add(step.key)
            self._save_progress()
            self.step_combo.setItemText(self.index, self.step_combo.itemText(self.index) + " ✓")
