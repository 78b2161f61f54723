"""When tiles are drawn: the values of a tile in view are shown at once, those of tiles
out of view when they scroll in; a tile's view box (1–3 ms to make) is made the first
time it is drawn, for at most :data:`~cnn_explorer.ui.common.turns.MAKE_BUDGET_S` per
event-loop turn and the rest on the next turns — so opening a project with ~100 maps
never blocks the GUI for long.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from PySide6.QtCore import QObject, QRectF, QTimer
from PySide6.QtWidgets import QScrollArea, QWidget

from cnn_explorer.ui.common.turns import MAKE_BUDGET_S
from cnn_explorer.ui.explorer.map_items import MapTile


def visible_scene_rect(view: QWidget, scroll: QScrollArea, zoom: float = 1.0) -> QRectF:
    """The part of the scene inside the scroll viewport (plus a margin); empty when the
    view is not on screen (tiles wait for it, or are brought up to date when read).

    The view has a fixed size with ``zoom`` pixels per scene unit (View ▸ Zoom), so the
    scroll bar values over the zoom are the scene coordinates of the viewport's corner."""
    if not view.isVisible():
        return QRectF()
    vp = scroll.viewport()
    x = scroll.horizontalScrollBar().value() / zoom
    y = scroll.verticalScrollBar().value() / zoom
    return QRectF(x - 32, y - 32, vp.width() / zoom + 64, vp.height() / zoom + 64)


class TileDrawer(QObject):
    """Shows pending tile values in view, making view boxes within a per-turn budget."""

    def __init__(
        self,
        in_view: Callable[[], QRectF],
        tiles: Callable[[], Iterable[MapTile]],
        draw: Callable[[MapTile], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._in_view, self._tiles, self._draw = in_view, tiles, draw
        self._spent = 0.0  # seconds spent making tiles in this event-loop turn
        self._new_turn = QTimer(self)
        self._new_turn.setSingleShot(True)
        self._new_turn.timeout.connect(self._reset)
        self._more = QTimer(self)  # the tiles in view that waited for a turn
        self._more.setSingleShot(True)
        self._more.timeout.connect(self.flush_visible)

    def flush_visible(self) -> None:
        """Show the latest values of the tiles in view that do not show them yet."""
        shown = self._in_view()
        for t in self._tiles():
            if t.pending is not None and shown.intersects(t.rect):
                self.show(t)

    def show(self, t: MapTile) -> None:
        """Show a tile in view now — unless its view box is still to be made and this
        turn's :data:`MAKE_BUDGET_S` is spent: then on a later turn."""
        if t.made:
            self._draw(t)
            return
        if self._spent >= MAKE_BUDGET_S:
            self._more.start(0)
            return
        if not self._new_turn.isActive():
            self._new_turn.start(0)
        t0 = time.perf_counter()
        self._draw(t)
        self._spent += time.perf_counter() - t0

    def spend_turn(self) -> None:
        """Make no more view boxes in this event-loop turn (it did enough already)."""
        self._spent = MAKE_BUDGET_S
        self._new_turn.start(0)

    def finish(self) -> None:
        """Draw every tile in view now, whatever it costs (screenshots)."""
        self._more.stop()
        shown = self._in_view()
        for t in self._tiles():
            if t.pending is not None and shown.intersects(t.rect):
                self._draw(t)

    def _reset(self) -> None:
        self._spent = 0.0
