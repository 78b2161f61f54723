"""Setters that leave a widget alone when it already shows the value.

``QSpinBox.setValue`` and ``setRange`` repaint the spin box, its line edit and (spin boxes
are not opaque) the parents behind them even when nothing changed. The layer form and the
kernel editor re-sync after every edit, so unguarded setters made each keystroke in the
kernel repaint ~30 widgets. Call these from ``sync`` methods instead.
"""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox

Spin = QSpinBox | QDoubleSpinBox


def set_value(spin: Spin, value: float) -> None:
    """``spin.setValue(value)`` unless it already shows ``value`` (as rounded to the
    box's decimals, which is what ``setValue`` would store)."""
    shown = round(value, spin.decimals()) if isinstance(spin, QDoubleSpinBox) else value
    if spin.value() != shown:
        spin.setValue(value)  # type: ignore[arg-type]


def set_range(spin: Spin, low: float, high: float) -> None:
    """``spin.setRange(low, high)`` unless that is already its range."""
    if (spin.minimum(), spin.maximum()) != (low, high):
        spin.setRange(low, high)  # type: ignore[arg-type]
