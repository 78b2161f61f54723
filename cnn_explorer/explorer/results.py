"""What a recompute publishes (:class:`Results`) and the snapshot a recompute hands to
another thread (:class:`ForwardJob`). Qt-free."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnn_explorer.engine.errors import Stop
from cnn_explorer.engine.network import LayerStatus
from cnn_explorer.explorer import incremental
from cnn_explorer.explorer.blas import single_blas_thread
from cnn_explorer.explorer.specs import LayerSpec
from cnn_explorer.explorer.stats import MapStats


@dataclass
class Results:
    """One published forward pass.

    ``maps[0]`` is the input ``(C, H, W)``; ``maps[i + 1]`` the output of layer ``i``, for
    every layer up to (not including) the first invalid one; ``stats`` one per map;
    ``statuses`` one per layer. ``first`` is the index of the first map whose values may
    differ from the previous results; ``channels`` narrows that further: map ``m`` in it
    changed only in those channels (a kernel edit of one filter), so views can leave the
    other tiles as they are; ``windows`` narrows it in space: map ``m`` in it changed only
    inside the cells ``(row0, row1, col0, col1)`` (inclusive, every channel; empty when
    ``row0 > row1``) — an edit of a few input cells — so views recolour only those.
    ``path`` names how they were computed: ``"forward"`` (a plain forward pass from some
    layer on), ``"cells"`` or ``"filters"`` (a fast path). ``error`` is set when the
    network could not be computed.
    """

    maps: list[np.ndarray]
    statuses: list[LayerStatus]
    generation: int
    first: int = 0
    notes: list[str] = field(default_factory=list)
    stats: list[MapStats] = field(default_factory=list)
    channels: dict[int, frozenset[int]] = field(default_factory=dict)
    path: str = "forward"
    error: str | None = None
    windows: dict[int, incremental.Region] = field(default_factory=dict)


@dataclass
class ForwardJob:
    """A forward pass from layer ``first`` on snapshot data (specs copied, maps shared but
    never written): :meth:`run` touches nothing else, so any thread may call it."""

    generation: int
    specs: list[LayerSpec]
    statuses: list[LayerStatus]
    prev: list[np.ndarray]
    prev_stats: list[MapStats]
    first: int
    x: np.ndarray
    shown_first: int
    channels: dict[int, frozenset[int]]
    cost: int
    path: str = "forward"
    background: bool = False

    def run(self, stop: Stop = None) -> tuple[list[np.ndarray], list[MapStats]] | Exception:
        """The maps and statistics, or the exception that stopped the computation
        (:class:`~cnn_explorer.engine.errors.ForwardStopped` when ``stop``, polled before
        each layer, said to give up)."""
        try:
            with single_blas_thread():
                return incremental.forward(
                    self.specs, self.prev, self.prev_stats, self.first, self.x, stop
                )
        except Exception as exc:  # reported as a result, never a crash
            return exc
