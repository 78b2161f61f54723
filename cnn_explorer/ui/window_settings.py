"""What the main window remembers between launches (QSettings): its geometry and dock
layout, the colour scale, how the input is shown, and the feature-map view's tile size,
fitting and channel layout.

One place for the keys, so saving and restoring cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings

from cnn_explorer.ui.explorer.input_model import DISPLAY_MODES

if TYPE_CHECKING:
    from cnn_explorer.ui.main_window import MainWindow


def restore(window: MainWindow) -> None:
    """Apply the saved state to ``window`` (missing or foreign values are ignored)."""
    s = QSettings()
    geo = s.value("window/geometry")
    state = s.value("window/state")
    if geo is not None:
        window.restoreGeometry(geo)  # type: ignore[arg-type]
    if state is not None:
        window.restoreState(state)  # type: ignore[arg-type]
    mode = s.value("view/scale")
    if isinstance(mode, str):
        window.maps.set_scale_mode(mode)
    shown = s.value("view/input_display")
    if shown in DISPLAY_MODES:
        window.grid.set_display(str(shown))
    px = s.value("view/tile_px")
    if isinstance(px, int | str) and str(px).isdigit():
        window.maps.set_tile_size(int(px))
    fit = s.value("view/fit_width")
    if fit in ("0", "1"):
        window.maps.set_fit_width(fit == "1")
    channels = s.value("view/channels")
    if isinstance(channels, str):
        window.maps.set_channel_mode(channels)


def save(window: MainWindow) -> None:
    """Store ``window``'s state for the next launch."""
    s = QSettings()
    s.setValue("window/geometry", window.saveGeometry())
    s.setValue("window/state", window.saveState())
    s.setValue("view/scale", window.maps.scale_mode)
    s.setValue("view/input_display", window.grid.display)
    s.setValue("view/tile_px", window.maps.tile_px)
    s.setValue("view/fit_width", "1" if window.maps.fit_width else "0")
    s.setValue("view/channels", window.maps.channel_mode)
