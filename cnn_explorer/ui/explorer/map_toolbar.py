"""The controls above the feature maps: colour scale, numbers, how channels are laid out,
the tile size (slider, or fit to the width) and the hovered value; and the texts the
view puts on its sections (titles, notes for layers without a map).

Two rows so that everything stays reachable in the ~470 px the maps get on a 1280-px
laptop screen. The widgets only report; the view decides what a change means.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer.results import Results
from cnn_explorer.explorer.specs import LayerSpec
from cnn_explorer.ui.explorer.map_items import NUMBERS_MAX
from cnn_explorer.ui.explorer.map_layout import (
    OVERVIEW_CHANNELS,
    TILE_PX_DEFAULT,
    TILE_PX_MAX,
    TILE_PX_MIN,
)

SCALE_MODES = ("Per layer", "Per map", "Global")
CHANNEL_MODES = ("Auto", "All large", "Overview")
"""Auto: an overview for maps of more than :data:`OVERVIEW_CHANNELS` channels."""

HOVER_HINT = "Hover a map to read values; click a cell to explain it."


class ElidedLabel(QLabel):
    """A label that shows as much of its text as fits (ending in "…") instead of being
    cut off or widening the toolbar; the full text is its tooltip."""

    def paintEvent(self, ev: object) -> None:
        painter = QPainter(self)
        text = self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideRight, self.contentsRect().width()
        )
        painter.drawText(self.contentsRect(), int(self.alignment()), text)

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)


class MapToolbar(QWidget):
    """Row 1: colour scale, numbers, channel layout. Row 2: tile size, fit, hovered value."""

    # Long because it is a list: every control with its tooltip, then the two rows.
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.scale_combo = QComboBox()
        self.scale_combo.addItems(SCALE_MODES)
        self.scale_combo.setToolTip(
            "Per layer: all channels of a layer share one colour bar.\n"
            "Per map: each channel uses its own range (its caption shows it).\n"
            "Global: one range for every map."
        )
        self.numbers_check = QCheckBox("Numbers")
        self.numbers_check.setChecked(True)
        self.numbers_check.setToolTip(
            f"Draw values in maps up to {NUMBERS_MAX}×{NUMBERS_MAX}, where they fit"
        )
        self.channels_combo = QComboBox()
        self.channels_combo.addItems(CHANNEL_MODES)
        self.channels_combo.setToolTip(
            f"Auto: layers with more than {OVERVIEW_CHANNELS} channels as an overview.\n"
            "Overview: small tiles; click one to enlarge it (and select the cell).\n"
            "All large: every channel at the tile size."
        )
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(TILE_PX_MIN, TILE_PX_MAX)
        self.size_slider.setSingleStep(8)
        self.size_slider.setPageStep(32)
        self.size_slider.setValue(TILE_PX_DEFAULT)
        self.size_slider.setMinimumWidth(70)
        self.size_slider.setToolTip("Tile size: the drawn width of maps from 16×16 up")
        self.size_label = QLabel()
        self.size_label.setMinimumWidth(self.size_label.fontMetrics().horizontalAdvance("≈000 px"))
        self.size_label.setToolTip("Drawn size of the largest tiles")
        self.fit_check = QCheckBox("Fit width")
        self.fit_check.setChecked(True)
        self.fit_check.setToolTip(
            "Adjust the tile size a little so that rows of tiles end at the right edge"
        )
        self.hover_label = ElidedLabel(HOVER_HINT)
        self.hover_label.setObjectName("hoverLabel")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hover_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.hover_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(QLabel("Scale:"))
        top.addWidget(self.scale_combo)
        top.addSpacing(6)
        top.addWidget(self.numbers_check)
        top.addSpacing(6)
        top.addWidget(QLabel("Channels:"))
        top.addWidget(self.channels_combo)
        top.addStretch(1)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(QLabel("Tiles:"))
        bottom.addWidget(self.size_slider, 1)
        bottom.addWidget(self.size_label)
        bottom.addWidget(self.fit_check)
        bottom.addWidget(self.hover_label, 2)
        self._top = top
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 2)
        lay.setSpacing(2)
        lay.addLayout(top)
        lay.addLayout(bottom)

    def add_button(self, action: QAction) -> QToolButton:
        """A button for ``action`` at the right end of the first row (e.g. Compare)."""
        btn = QToolButton()
        btn.setDefaultAction(action)
        btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self._top.addWidget(btn)
        return btn

    def show_size(self, px: float) -> None:
        """Show the drawn size of the largest tiles (≈ when fitting moved it)."""
        approx = "≈" if round(px) != self.size_slider.value() else ""
        self.size_label.setText(f"{approx}{round(px)} px")


def set_combo(combo: QComboBox, text: str) -> None:
    """Show ``text`` in ``combo`` without emitting its change signal."""
    if combo.currentText() != text:
        combo.blockSignals(True)
        combo.setCurrentText(text)
        combo.blockSignals(False)


def map_titles(layers: Sequence[LayerSpec], res: Results) -> list[str]:
    """A header per map: "Input · 3×64×96", "Layer 1: Conv2D 3→32, 3×3 → 32×64×96"."""
    titles = []
    for m, x in enumerate(res.maps):
        c, h, w = x.shape
        if m == 0:
            titles.append(f"Input · {c}×{h}×{w}")
            continue
        spec = layers[m - 1] if m - 1 < len(layers) else None
        name = spec.title if spec is not None else "?"
        off = "  (disabled: passes input)" if spec is not None and not spec.enabled else ""
        titles.append(f"Layer {m}: {name} → {c}×{h}×{w}{off}")
    return titles


def missing_notes(layers: Sequence[LayerSpec], res: Results) -> list[tuple[str, bool]]:
    """One line ``(text, is_error)`` per layer without a map (the invalid one on)."""
    notes = []
    for i, st in enumerate(res.statuses):
        if i + 1 >= len(res.maps):
            spec = layers[i] if i < len(layers) else None
            msg = st.error or "not computed"
            title = spec.title if spec else "?"
            notes.append((f"Layer {i + 1}: {title}  —  {msg}", msg != "no input"))
    return notes


def has_cell(maps: list[np.ndarray], where: tuple[int, int, int, int]) -> bool:
    """True when ``(map, channel, row, col)`` is a cell of ``maps`` (hover texts; channel
    −1 is the picture of a 3-channel map)."""
    m, ch, r, c = where
    if not 0 <= m < len(maps):
        return False
    n, h, w = maps[m].shape
    if ch == -1:  # a 3-channel map's picture (map_composite.COMPOSITE)
        return n == 3 and 0 <= r < h and 0 <= c < w
    return 0 <= ch < n and 0 <= r < h and 0 <= c < w


def hover_text(maps: list[np.ndarray], where: tuple[int, int, int, int]) -> str:
    """What the hover label says for ``(map, channel, row, col)`` (a cell of ``maps``):
    its value, or the three values of a 3-channel map's picture (channel −1)."""
    m, ch, r, c = where
    name = "input" if m == 0 else f"layer {m}"
    if ch == -1:
        vals = " · ".join(
            f"{n} {float(v):.6g}" for n, v in zip("RGB", maps[m][:3, r, c], strict=True)
        )
        return f"{name}[:,{r},{c}] = {vals}"
    return f"{name}[{ch},{r},{c}] = {float(maps[m][ch, r, c]):.6g}"
