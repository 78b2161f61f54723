"""How long the GUI thread may spend per event-loop turn making plot items.

Making a pyqtgraph view box, label or plot takes 1–5 ms; a view with dozens of them is made
a few per turn (the rest on the next turns), so the GUI never blocks for long while it grows.
"""

from __future__ import annotations

MAKE_BUDGET_S = 0.012
"""Time (s) an event-loop turn may spend making plot items; more waits a turn. With the
repaint that follows, a turn then stays near one 60 Hz frame (25 ms made opening the
~100-map photo32 scene block the GUI thread for 38–39 ms, 12 ms for 24–26 ms)."""
