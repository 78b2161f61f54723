"""The sliding window, animated and steppable: for the selected conv or pool layer, the
padded input with the window's products, the kernel as applied, the running sum and the
output map filling in, with play, pause, step, speed and granularity.

Which output cell is shown is the document's selected cell: stepping to another cell,
clicking one or pressing an arrow key calls :meth:`Document.select_cell`, and the view
follows the change event like every other view (so the receptive field and the
explanation follow too). The step *within* a cell is this view's own. An edit pauses the
animation and hides it until the new results are published; the view then rebuilds from
them (a stale animation never shows). The steps come from :mod:`cnn_explorer.explorer.sliding`.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QKeyEvent, QPainter, QTransform
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.model import Change
from cnn_explorer.explorer.results import Results
from cnn_explorer.explorer.sliding import NotSlidingError, SlidingWindow
from cnn_explorer.explorer.specs import build_layer
from cnn_explorer.ui.explorer.sliding_items import SlidingCanvas, SlidingScene
from cnn_explorer.ui.explorer.sliding_text import sum_html, titles

SPATIAL = ("conv", "maxpool", "avgpool")
EDITS = ("input", "input_shape", "layer", "layers", "document")
ARROWS = {
    Qt.Key.Key_Left: (0, -1),
    Qt.Key.Key_Right: (0, 1),
    Qt.Key.Key_Up: (-1, 0),
    Qt.Key.Key_Down: (1, 0),
}
SUM_WIDTH = 330
"""Pixels of the running-sum text beside the scene."""
MIN_ZOOM = 0.6
"""The scene shrinks to fit the panel, but never below this (numbers stay readable)."""


class SlidingWindowView(QWidget):
    """Animates the selected conv/pool layer's window over its padded input."""

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.sw: SlidingWindow | None = None
        self.layer_index: int | None = None
        self.per_cell = False
        self.in_channel = 0
        self.message = ""
        self._pending: tuple[tuple[int, int], int] | None = None
        self._prefer: int | None = None  # a layer chosen while hidden
        self._stale = True
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self._build_ui()
        self.set_speed(4)
        doc.changed.connect(self._on_changed)
        doc.results_ready.connect(self._on_results)
        self.rebuild()

    # ------------------------------------------------------------------ widgets
    def _build_ui(self) -> None:
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("The conv or pool layer whose window slides")
        self.layer_combo.activated.connect(self._layer_chosen)
        self.out_spin = QSpinBox()
        self.out_spin.setPrefix("output ch ")
        self.out_spin.setToolTip("Output channel (filter) being computed")
        self.out_spin.valueChanged.connect(self._out_channel_chosen)
        self.in_combo = QComboBox()
        self.in_combo.setToolTip("Input channel drawn (follows the tap being added)")
        self.in_combo.activated.connect(self._in_channel_chosen)
        self.back_btn = QPushButton("◀ Back")
        self.back_btn.setToolTip("One step back (Shift+Space)")
        self.back_btn.clicked.connect(self.step_back)
        self.play_btn = QPushButton("▶ Play")
        self.play_btn.setToolTip("Play or pause (Space)")
        self.play_btn.clicked.connect(self.toggle_play)
        self.step_btn = QPushButton("Step ▶")
        self.step_btn.setToolTip("One step forward (Enter)")
        self.step_btn.clicked.connect(self.step_forward)
        self.speed = QSlider(Qt.Orientation.Horizontal)
        self.speed.setRange(1, 30)
        self.speed.setFixedWidth(90)
        self.speed.setToolTip("Steps per second while playing")
        self.speed.valueChanged.connect(self.set_speed)
        self.speed_label = QLabel()
        self.granularity = QComboBox()
        self.granularity.addItems(["Tap by tap", "Cell by cell"])
        self.granularity.setToolTip(
            "Tap by tap: one product per step, then the bias and the result.\n"
            "Cell by cell: one whole output cell per step."
        )
        self.granularity.currentIndexChanged.connect(lambda i: self.set_per_cell(i == 1))
        for w in (self.layer_combo, self.out_spin, self.in_combo):
            bar.addWidget(w)
        bar.addSpacing(8)
        for w in (self.back_btn, self.play_btn, self.step_btn, self.granularity):
            bar.addWidget(w)
        bar.addWidget(QLabel("Speed"))
        bar.addWidget(self.speed)
        bar.addWidget(self.speed_label)
        bar.addStretch(1)
        self.scene = QGraphicsScene(self)
        self.items = SlidingScene(self.scene)
        self.canvas = SlidingCanvas(self.scene)
        self.canvas.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self.canvas.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        self.canvas.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.canvas.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.canvas.clicked.connect(self._clicked)
        self.canvas.key.connect(self._key)
        self.note = QLabel()
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.canvas)
        self.stack.addWidget(self.note)
        # a text browser, not a label: new text re-lays out only its own document (a
        # label's new text re-ran the panel's layout, most of a step's cost)
        self.sum_view = QTextBrowser()
        self.sum_view.setObjectName("slidingSum")
        self.sum_view.setFrameShape(QFrame.Shape.NoFrame)
        self.sum_view.setStyleSheet("background:#f4f4f8;")
        self.sum_view.setFixedWidth(SUM_WIDTH)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(2)
        lay.addLayout(bar)
        body = QHBoxLayout()
        body.setSpacing(4)
        body.addWidget(self.stack, 1)
        body.addWidget(self.sum_view)
        lay.addLayout(body, 1)

    # ------------------------------------------------------------------ state
    @property
    def sum_text(self) -> str:
        """The running sum as plain text (what the panel says beside the scene)."""
        return self.sum_view.toPlainText()

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    @property
    def position(self) -> tuple[int, int, tuple[int, int], int] | None:
        """``(layer, output channel, (row, col), step)`` on show, or None."""
        if self.sw is None or self.layer_index is None:
            return None
        return self.layer_index, self.sw.channel, self.sw.cell, self.sw.step

    def _spatial(self, i: int) -> bool:
        layers = self.doc.layers
        return (
            0 <= i < len(layers)
            and layers[i].enabled
            and layers[i].kind in SPATIAL
            and i + 1 < len(self.doc.results.maps)
        )

    def _selected_cell(self) -> tuple[int, int, tuple[int, int]] | None:
        """The document's selected cell as ``(layer, channel, cell)`` of a conv/pool
        output: the cell itself, or back through activations and disabled layers (same
        shape) to the conv or pool that made it; None for any other cell."""
        sel, layers = self.doc.selection, self.doc.layers
        if sel is None:
            return None
        i = sel.map_index - 1
        while 0 <= i < len(layers) and not self._spatial(i):
            if layers[i].enabled and layers[i].kind != "act":
                return None
            i -= 1
        return (i, sel.channel, (sel.row, sel.col)) if i >= 0 and self._spatial(i) else None

    def _target(self, prefer: int | None = None) -> tuple[int, int, tuple[int, int]] | None:
        """Layer, output channel and cell to show: ``prefer`` (a layer just chosen), else
        the selected cell's conv/pool, else the layer shown before, else the selected
        layer, else the first conv/pool."""
        picked = self._selected_cell()
        if prefer is not None and self._spatial(prefer):
            if picked is not None and picked[0] == prefer:
                return picked
            conv = self.doc.layers[prefer].kind == "conv"
            return prefer, self.doc.selected_filter if conv else 0, (0, 0)
        if picked is not None:
            return picked
        cell = self.sw.cell if self.sw is not None else (0, 0)
        ch = self.sw.channel if self.sw is not None else 0
        if self.layer_index is not None and self._spatial(self.layer_index):
            return self.layer_index, ch, cell
        spatial = [i for i in range(len(self.doc.layers)) if self._spatial(i)]
        if not spatial:
            return None
        i = self.doc.selected_layer if self._spatial(self.doc.selected_layer) else spatial[0]
        return i, self.doc.selected_filter if self.doc.layers[i].kind == "conv" else 0, (0, 0)

    # ------------------------------------------------------------------ building
    def rebuild(self, prefer: int | None = None) -> None:
        """Build the animation from the document's current results (or say why not);
        ``prefer`` is a conv/pool layer the user just chose."""
        self._pending = None
        if not self.doc.computed:
            return self._show_note("Recomputing…")
        target = self._target(prefer)
        self._fill_layer_combo()
        if target is None:
            self.sw, self.layer_index = None, None
            return self._show_note(
                "No convolution or pooling layer to animate: add one in Layers, "
                "or fix the first invalid layer."
            )
        i, ch, cell = target
        maps = self.doc.results.maps
        old = self.sw
        try:
            ch = max(0, min(ch, maps[i + 1].shape[0] - 1))
            sw = SlidingWindow(build_layer(self.doc.layers[i]), maps[i], maps[i + 1], ch)
            r, c = min(cell[0], sw.shape[0] - 1), min(cell[1], sw.shape[1] - 1)
            same = old is not None and self.layer_index == i and old.cell == (r, c)
            sw.jump(r, c, old.step if same and old is not None else (-1 if self.per_cell else 0))
        except (NotSlidingError, ValueError, IndexError) as exc:
            self.sw = None
            return self._show_note(f"Cannot animate layer {i + 1}: {exc}")
        self.sw, self.layer_index, self._stale = sw, i, False
        self._fill_layer_combo()
        self.items.build(sw)
        self._fit()
        with QSignalBlocker(self.out_spin):
            self.out_spin.setRange(0, sw.out.shape[0] - 1)
            self.out_spin.setValue(ch)
        with QSignalBlocker(self.in_combo):
            self.in_combo.clear()
            self.in_combo.addItems([f"input ch {c}" for c in range(sw.x.shape[0])])
        self.in_channel = min(self.in_channel, sw.x.shape[0] - 1)
        self.stack.setCurrentWidget(self.canvas)
        self.message = ""
        self._paint()

    def _fill_layer_combo(self) -> None:
        with QSignalBlocker(self.layer_combo):
            self.layer_combo.clear()
            for i, spec in enumerate(self.doc.layers):
                if self._spatial(i):
                    self.layer_combo.addItem(f"Layer {i + 1}: {spec.title}", i)
            at = self.layer_combo.findData(self.layer_index)
            if at >= 0:
                self.layer_combo.setCurrentIndex(at)

    def _show_note(self, text: str) -> None:
        self.pause()
        self._stale = True
        self.message = text
        self.note.setText(text)
        self.sum_view.clear()
        self.stack.setCurrentWidget(self.note)

    # ------------------------------------------------------------------ document events
    def _on_changed(self, change: Change) -> None:
        if change.kind in EDITS:
            self.sw = None  # never animate numbers the edit made stale
            self._show_note("Recomputing…")
        elif change.kind == "cell":
            self._follow_selection()
        elif change.kind == "selection":
            i = self.doc.selected_layer
            if self._spatial(i) and i != self.layer_index:
                if self.isVisible():
                    self.rebuild(prefer=i)
                else:  # shown later on the layer chosen now
                    self._prefer, self._stale = i, True

    def _on_results(self, _results: Results) -> None:
        if not self.isVisible():
            self._stale = True  # rebuilt when shown: hidden, it costs edits nothing
        elif self.doc.computed:
            self.rebuild()

    def _follow_selection(self) -> None:
        sel, sw, pending = self.doc.selection, self.sw, self._pending
        self._pending = None
        if not self.isVisible():
            self._stale = True
            return
        if sel is None or sw is None or self._stale:
            return
        picked = self._selected_cell()
        if picked is None:
            return
        if picked[0] != self.layer_index or picked[1] != sw.channel:
            self.rebuild()  # another conv/pool layer or output channel was selected
            return
        cell = picked[2]
        if pending is not None and pending[0] == cell:
            step = pending[1]
        elif cell == sw.cell:
            return
        else:
            step = -1 if self.per_cell else 0
        sw.jump(*cell, step)
        self._paint()

    # ------------------------------------------------------------------ gestures
    def _select(self, cell: tuple[int, int], step: int) -> None:
        """Ask the document to select output ``cell``; the view follows its change event
        and shows ``step`` of that cell."""
        assert self.sw is not None and self.layer_index is not None
        self._pending = (cell, step)
        self.doc.select_cell(Selection(self.layer_index + 1, self.sw.channel, *cell))

    def _move(self, forward: bool) -> bool:
        sw = self.sw
        if sw is None:
            return False
        cell, step = sw.cell, sw.step
        moved = sw.forward(self.per_cell) if forward else sw.back(self.per_cell)
        if not moved:
            return False
        new = (sw.cell, sw.step)
        if new[0] == cell:
            self._paint()
        else:  # another output cell: through the document, like a click
            sw.jump(*cell, step)
            self._select(*new)
        return True

    def step_forward(self) -> bool:
        """One step on (a tap or a cell, per the granularity); False at the end."""
        return self._move(True)

    def step_back(self) -> bool:
        return self._move(False)

    def jump_to(self, row: int, col: int) -> None:
        """Show output cell ``(row, col)`` (selects it in the document)."""
        if self.sw is not None and 0 <= row < self.sw.shape[0] and 0 <= col < self.sw.shape[1]:
            self._select((row, col), -1 if self.per_cell else 0)

    def move_cell(self, dr: int, dc: int) -> None:
        """Select the output cell ``(dr, dc)`` away from the current one (arrow keys)."""
        if self.sw is not None:
            r, c = self.sw.cell
            self.jump_to(
                max(0, min(r + dr, self.sw.shape[0] - 1)), max(0, min(c + dc, self.sw.shape[1] - 1))
            )

    def play(self) -> None:
        if self.sw is None:
            return
        if self.sw.at_end:  # play again from the first cell
            self._select((0, 0), 0)
        self.timer.start()
        self.play_btn.setText("⏸ Pause")

    def pause(self) -> None:
        self.timer.stop()
        self.play_btn.setText("▶ Play")

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    def set_speed(self, steps_per_second: int) -> None:
        with QSignalBlocker(self.speed):
            self.speed.setValue(steps_per_second)
        self.speed_label.setText(f"{steps_per_second}/s")
        self.timer.setInterval(max(1, round(1000 / steps_per_second)))

    def set_per_cell(self, on: bool) -> None:
        self.per_cell = bool(on)
        with QSignalBlocker(self.granularity):
            self.granularity.setCurrentIndex(1 if on else 0)
        if on and self.sw is not None:
            self.sw.jump(*self.sw.cell, -1)
            self._paint()

    def _tick(self) -> None:
        if not self.step_forward():
            self.pause()

    def _clicked(self, pos: object) -> None:
        cell = self.items.output_cell_at(pos)  # type: ignore[arg-type]
        if cell is not None:
            self.jump_to(*cell)

    def _key(self, event: QKeyEvent) -> None:
        key = Qt.Key(event.key())
        if key in ARROWS:
            self.move_cell(*ARROWS[key])
        elif key == Qt.Key.Key_Space:
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.step_back()
            else:
                self.toggle_play()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.step_forward()
        else:
            event.ignore()
            return
        event.accept()

    def _layer_chosen(self, index: int) -> None:
        i = self.layer_combo.itemData(index)
        if isinstance(i, int) and i != self.layer_index:
            self.rebuild(prefer=i)
            if self.sw is not None:
                self._select(self.sw.cell, self.sw.step)
            self.doc.select_layer(i)

    def _out_channel_chosen(self, ch: int) -> None:
        if self.sw is not None and self.layer_index is not None and ch != self.sw.channel:
            sel = Selection(self.layer_index + 1, ch, *self.sw.cell)
            self.doc.select_cell(sel)

    def _in_channel_chosen(self, index: int) -> None:
        self.in_channel = index
        self._paint(follow=False)

    # ------------------------------------------------------------------ painting
    def _paint(self, follow: bool = True) -> None:
        sw = self.sw
        if sw is None or self.layer_index is None:
            return
        anim = sw.animation()
        if follow and anim.phase(sw.step) == "tap":
            self.in_channel = anim.taps[sw.step].channel
        elif anim.kind != "conv":
            self.in_channel = sw.channel
        if self.in_combo.currentIndex() != self.in_channel:
            with QSignalBlocker(self.in_combo):
                self.in_combo.setCurrentIndex(self.in_channel)
        self.items.show(sw, self.in_channel, titles(sw, self.layer_index, self.in_channel))
        self.sum_view.setHtml(sum_html(sw, sw.step))
        self.canvas.ensureVisible(self.items.window_rect(), 8, 8)

    def _fit(self) -> None:
        """Zoom so the blocks fit the panel (not below :data:`MIN_ZOOM`, never above 1)."""
        rect, vp = self.scene.sceneRect(), self.canvas.viewport().size()
        if rect.isEmpty() or vp.isEmpty():
            return
        s = min(1.0, (vp.width() - 4) / rect.width(), (vp.height() - 4) / rect.height())
        s = max(MIN_ZOOM, s)
        if abs(self.canvas.transform().m11() - s) > 1e-3:
            self.canvas.setTransform(QTransform.fromScale(s, s))

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._fit()

    # ------------------------------------------------------------------ lifetime
    def hideEvent(self, event: object) -> None:
        self.pause()  # a closed or hidden panel never keeps stepping
        super().hideEvent(event)  # type: ignore[arg-type]

    def showEvent(self, event: object) -> None:
        super().showEvent(event)  # type: ignore[arg-type]
        if self.sw is None or self._stale:
            prefer, self._prefer = self._prefer, None
            self.rebuild(prefer)


def with_animate_button(panel: QWidget) -> tuple[QWidget, QPushButton]:
    """``panel`` (the explanation) with an "Animate the sliding window" button under it:
    the box to put in a dock and the button (the window connects it)."""
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(0)
    lay.addWidget(panel, 1)
    button = QPushButton("▶ Animate the sliding window")
    button.setToolTip("Watch the selected layer's window slide, tap by tap (Ctrl+Shift+A)")
    lay.addWidget(button)
    return box, button
