"""Which values, colour levels and statistics each tile is given after a recompute.

The view calls :func:`push_values` with the new results; every tile whose picture or
caption would change gets a *pending* update (shown at once when on screen, else when it
scrolls into view), and each shared colour bar gets its levels. Tiles whose channel did
not change and whose levels stay are left alone: one filter's edit recolours one channel.
"""

from __future__ import annotations

from collections.abc import Callable

from cnn_explorer.explorer.incremental import Region
from cnn_explorer.explorer.results import Results
from cnn_explorer.explorer.stats import MapStats, map_stats
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.explorer.map_caption import TileStats
from cnn_explorer.ui.explorer.map_composite import CompositeTile
from cnn_explorer.ui.explorer.map_items import MapGroup, MapTile

Levels = tuple[tuple[float, float], bool]
"""``((low, high), signed)`` colour levels."""


def stats_of(res: Results, m: int) -> MapStats:
    """Map ``m``'s statistics (the incremental ones when the results carry them)."""
    return res.stats[m] if len(res.stats) == len(res.maps) else map_stats(res.maps[m])


def set_pending(
    t: MapTile,
    res: Results,
    st: MapStats,
    scale: tuple[str, Levels],
    title: str,
    only: frozenset[int] | None = None,
    window: Region | None = None,
) -> None:
    """Give ``t`` its channel's current values to show under ``scale`` = ``(mode, the
    shared levels)`` (unless nothing it shows changed: its channel is not in ``only`` and
    its levels stay). ``window``: the values changed only in those cells (when the tile
    shows the last values with the same levels, only they are recoloured)."""
    c = t.channel
    lo, hi = float(st.mins[c]), float(st.maxs[c])
    own = scale[0] == "Per map"
    lv, sg = colors.levels_for(lo, hi) if own else scale[1]
    unchanged = only is not None and c not in only and t.pending is None
    if unchanged and (lv, sg) == (t.levels, t.signed):
        return
    same = t.pending is None and (lv, sg) == (t.levels, t.signed)
    t.pending_window = window if same else None
    t.pending = (res.maps[t.map_index][c], lv, sg, TileStats.of(st, c), own, title)


def push_values(
    groups: list[MapGroup],
    res: Results,
    mode: str,
    titles: list[str],
    show: Callable[[MapTile], None],
    first: int = 0,
    channels: dict[int, frozenset[int]] | None = None,
) -> None:
    """Give the tiles of maps ``first`` on their new values under the scale ``mode``
    (``show`` is called with each tile that got some, to show it if on screen). A tile
    whose channel is not in ``channels[map]`` (unchanged data) is left alone unless its
    levels changed."""
    stats = [stats_of(res, m) for m in range(len(res.maps))]
    global_range = None
    if mode == "Global":
        ranges = [st.range() for st in stats]
        global_range = (min(r[0] for r in ranges), max(r[1] for r in ranges))
    for g in groups:
        m = g.map_index
        if m < first or m >= len(res.maps):
            continue
        # Shared scales end on nice numbers: the colour bar reads well, and a small edit
        # rarely moves it (which would recolour every tile of the layer).
        levels, signed = colors.nice_levels(*(global_range or stats[m].range()))
        only = (channels or {}).get(m)
        title = titles[m] if m < len(titles) else ""
        for t in g.all_tiles():
            if isinstance(t, CompositeTile):
                t.offer(res, stats[m], title, only)
            else:
                scale = (mode, (levels, signed))
                set_pending(t, res, stats[m], scale, title, only, res.windows.get(m))
            if t.pending is not None:
                show(t)
        g.levels, g.signed = levels, signed
        if g.cbar is not None:
            g.cbar.set_scale(levels, signed)
