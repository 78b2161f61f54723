"""View ▸ Zoom: one factor that scales the window's fonts, the input grid's cells and the
feature maps together (for a projector), remembered between launches in QSettings.

The zoom owns no widgets: it sets the window's font (every panel without a font of its own
follows it) and calls the scalers it is given with ``(new, old)`` factors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

ZOOM_STEPS = (0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)
"""The zoom factors View ▸ Zoom in / out step through."""
ZOOM_KEY = "view/zoom"

Scaler = Callable[[float, float], None]


class PresentationZoom(QObject):
    """The window-wide zoom and its three actions (Ctrl+= / Ctrl+− / Ctrl+0)."""

    changed = Signal(float)

    def __init__(self, root: QWidget, scalers: Sequence[Scaler] = ()) -> None:
        super().__init__(root)
        self.root = root
        self.scalers = list(scalers)
        self.factor = 1.0
        self.persist = True
        self.base_point_size = root.font().pointSizeF()
        self.in_action = self._action("Zoom &in", ("Ctrl+=", "Ctrl++"), self.zoom_in)
        self.out_action = self._action("Zoom &out", ("Ctrl+-",), self.zoom_out)
        self.reset_action = self._action("&Reset zoom", ("Ctrl+0",), self.reset)

    def _action(self, text: str, keys: tuple[str, ...], slot: Callable[[], None]) -> QAction:
        a = QAction(text, self.root)
        a.setShortcuts([QKeySequence(k) for k in keys])
        a.setStatusTip("Scale fonts, grid cells and feature maps together (for a projector)")
        a.triggered.connect(slot)
        return a

    def add_to(self, menu: QMenu) -> None:
        """Put the three actions in ``menu`` (View ▸ Zoom)."""
        for a in (self.in_action, self.out_action, self.reset_action):
            menu.addAction(a)

    # ------------------------------------------------------------------ stepping
    def zoom_in(self) -> None:
        bigger = [z for z in ZOOM_STEPS if z > self.factor + 1e-9]
        if bigger:
            self.set_factor(bigger[0])

    def zoom_out(self) -> None:
        smaller = [z for z in ZOOM_STEPS if z < self.factor - 1e-9]
        if smaller:
            self.set_factor(smaller[-1])

    def reset(self) -> None:
        self.set_factor(1.0)

    def set_factor(self, factor: float) -> None:
        """Zoom to ``factor`` (clamped to :data:`ZOOM_STEPS`' range) and remember it."""
        factor = min(max(float(factor), ZOOM_STEPS[0]), ZOOM_STEPS[-1])
        old, self.factor = self.factor, factor
        font = self.root.font()
        font.setPointSizeF(self.base_point_size * factor)
        self.root.setFont(font)
        if factor != old:
            for scale in self.scalers:
                scale(factor, old)
        self.in_action.setEnabled(factor < ZOOM_STEPS[-1])
        self.out_action.setEnabled(factor > ZOOM_STEPS[0])
        if self.persist:
            QSettings().setValue(ZOOM_KEY, factor)
        self.changed.emit(factor)

    def restore(self) -> None:
        """The zoom of the last session (1 when none was saved or it is not a number)."""
        try:
            factor = float(QSettings().value(ZOOM_KEY, 1.0))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            factor = 1.0
        if factor != self.factor:
            self.set_factor(factor)
