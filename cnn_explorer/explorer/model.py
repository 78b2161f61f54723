"""The explorer's state as a plain Python object: input, layer stack, selection, results.

:class:`Explorer` imports no Qt. Its ``apply_*`` methods are the only way the state changes:
each validates, stores and returns a :class:`Change` naming what changed, and marks what
must be recomputed. :meth:`Explorer.recompute` then brings :attr:`Explorer.results` up to
date from the first affected layer, taking a fast path where one applies (a few input
cells, one filter, a difference through the next conv; see :mod:`.incremental`). Fast paths
round differently from a plain forward pass, so each marks the maps it touched as inexact,
and :meth:`Explorer.refine` recomputes them plainly: once :attr:`Explorer.exact` is True,
every map equals ``Network.forward`` of the current state bit for bit (computed, like every
explorer computation, with one BLAS thread: see :mod:`.blas`).

Work too big for the caller's thread comes back from :meth:`Explorer.recompute` as a
:class:`ForwardJob`: a snapshot whose :meth:`ForwardJob.run` is pure, so it can run on any
thread; :meth:`Explorer.finish` publishes its result unless a newer edit made it stale.
The undoable intents that build edits from gestures are in :mod:`.edits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_explorer.engine.network import LayerStatus
from cnn_explorer.explorer import explain, incremental, presets
from cnn_explorer.explorer.blas import single_blas_thread
from cnn_explorer.explorer.explain import Selection
from cnn_explorer.explorer.results import ForwardJob, Results
from cnn_explorer.explorer.specs import (
    LayerSpec,
    build_network,
    check_input,
    conformed_layers,
    valid_prefix,
    validate,
    worked_example_layers,
)
from cnn_explorer.explorer.stats import MapStats, map_stats, stats_notes

Region = incremental.Region


@dataclass(frozen=True)
class Change:
    """What one edit changed.

    kind: ``"input"`` (values), ``"input_shape"``, ``"layer"`` (one layer's weights or
    config; ``index`` says which), ``"layers"`` (the stack's structure, from layer
    ``index`` on), ``"selection"`` (selected layer/filter/channel), ``"cell"`` (selected
    output cell), ``"document"`` (everything: a file was opened). ``region`` (rows/cols,
    inclusive) narrows an ``"input"`` change to the cells that changed, when known.
    """

    kind: str
    index: int = 0
    region: Region | None = None


class Explorer:
    """Input ``(C, H, W)`` + layer specs + selection, and their results. Qt-free."""

    def __init__(self, x: np.ndarray | None = None, layers: list[LayerSpec] | None = None) -> None:
        self._input = check_input(presets.WORKED_EXAMPLE if x is None else x)
        self._layers = worked_example_layers() if layers is None else list(layers)
        self.selected_layer = 0
        self.selected_filter = 0
        self.selected_in_channel = 0
        self.selected_input_channel = 0
        self.selection: Selection | None = None
        self._statuses = validate(self._layers, self._input.shape)
        self.results = Results(
            [self._input], list(self._statuses), 0, stats=[map_stats(self._input)]
        )
        self._generation = 0
        self._dirty_from: int | None = 0
        self._dirty_region: Region | str | None = "full"
        self._dirty_filters: tuple[int, frozenset[int]] | str | None = "full"
        self._input_dirty = True  # maps[0] must be redrawn only when the input changed
        self._unpublished_from: int | None = None  # first layer of a job still running
        self._inexact_from: int | None = None  # first layer whose output a fast path wrote
        self.jobs_in_flight = 0

    # ------------------------------------------------------------------ read access
    @property
    def input(self) -> np.ndarray:
        """The input ``(C, H, W)`` float32 (never mutated: edits replace it)."""
        return self._input

    @property
    def layers(self) -> list[LayerSpec]:
        """The layer specs (never mutate them: edits replace them)."""
        return self._layers

    @property
    def statuses(self) -> list[LayerStatus]:
        """One engine status per layer for the current input shape (shape or error)."""
        return self._statuses

    def in_shape(self, index: int) -> tuple[int, ...] | None:
        """Input shape of layer ``index``, or None if an earlier layer is invalid."""
        if index == 0:
            return tuple(self._input.shape)
        return self._statuses[index - 1].output_shape

    def param_count(self, index: int) -> int:
        return explain.layer_param_count(self._layers[index])

    def conformed(
        self, layers: list[LayerSpec], in_shape: tuple[int, ...] | None = None
    ) -> list[LayerSpec]:
        """``layers`` with conv weights matching the channels that reach them."""
        return conformed_layers(layers, in_shape or self._input.shape)

    def receptive_field(self, sel: Selection) -> list[Any]:
        """Regions (one per map 0..sel.map_index-1) that feed the selected cell."""
        return explain.receptive_regions(self._layers, self.results.maps, sel)

    def explain(self, sel: Selection) -> str:
        """The arithmetic of the selected cell with the current numbers."""
        return explain.explain_trace(self._layers, self.results.maps, sel)[0]

    def trace(self, sel: Selection) -> list[Selection]:
        """Cells the selected value came from one to one (earliest last)."""
        return explain.explain_trace(self._layers, self.results.maps, sel)[1]

    def plain_forward(self) -> list[np.ndarray]:
        """Every map of a plain forward pass of the current state, up to the first invalid
        layer, computed as the explorer computes (one BLAS thread): what :attr:`results`
        equal bit for bit once :attr:`exact`. The oracle of the tests and the soak run."""
        specs = self._layers[: valid_prefix(self._statuses)]
        with single_blas_thread(), np.errstate(all="ignore"):
            return [np.asarray(m) for m in build_network(specs).forward(self._input)]

    @property
    def generation(self) -> int:
        """Goes up with every edit: a job computed for an older generation is stale."""
        return self._generation

    @property
    def pending(self) -> bool:
        """True when an edit has not been computed yet."""
        return self._dirty_from is not None

    @property
    def exact(self) -> bool:
        """True when every published map is a plain forward pass's (nothing pending,
        nothing written by a fast path since)."""
        return self._dirty_from is None and self._inexact_from is None and not self.jobs_in_flight

    # ------------------------------------------------------------------ edits
    def apply_input(self, x: np.ndarray, region: Region | None = None) -> Change:
        """Replace the input ``(C, H, W)``; ``region`` (rows/cols, inclusive) says only
        those cells changed. A shape change revalidates the stack."""
        x = check_input(x)
        shape_changed = x.shape != self._input.shape
        self._input = x
        if shape_changed:
            self.selection = None
            self.selected_input_channel = min(self.selected_input_channel, x.shape[0] - 1)
            self._statuses = validate(self._layers, x.shape)
            self._mark_dirty(0, input_changed=True)
            return Change("input_shape")
        self._mark_dirty(0, region=region, input_changed=True)
        return Change("input", 0, region)

    def apply_layer(self, index: int, spec: LayerSpec) -> Change:
        """Replace one layer's spec. Only a change of weight or bias *values* takes the
        one-filter path; any other field (kind included) recomputes the layer in full."""
        old = self._layers[index]
        self._layers[index] = spec
        if old.same_computation(spec):
            self._mark_dirty(index, filters=(index, incremental.changed_filters(old, spec)))
        else:
            self._statuses = validate(self._layers, self._input.shape)
            self._clamp_selection()
            self._mark_dirty(index)
        return Change("layer", index)

    def apply_layers(
        self, layers: list[LayerSpec], first: int = 0, selected: int | None = None
    ) -> Change:
        """Replace the whole stack (structure edits); ``first`` = first layer affected."""
        self._layers = list(layers)
        if selected is not None:
            self.selected_layer = selected
        self._statuses = validate(self._layers, self._input.shape)
        self._clamp_selection()
        self.selection = None
        self._mark_dirty(first)
        return Change("layers", first)

    def apply_document(self, x: np.ndarray, layers: list[LayerSpec]) -> Change:
        """Replace everything (open a file, new document)."""
        self._input = check_input(x)
        self._layers = list(layers)
        self.selected_layer = self.selected_filter = 0
        self.selected_in_channel = self.selected_input_channel = 0
        self.selection = None
        self._statuses = validate(self._layers, self._input.shape)
        self._mark_dirty(0, input_changed=True)
        return Change("document")

    # ------------------------------------------------------------------ selection
    def select_layer(self, index: int, filt: int | None = None, in_ch: int | None = None) -> Change:
        """Select the layer (and filter / input channel) the kernel editor and form show."""
        self.selected_layer = index
        if filt is not None:
            self.selected_filter = filt
        if in_ch is not None:
            self.selected_in_channel = in_ch
        self._clamp_selection()
        return Change("selection", self.selected_layer)

    def select_input_channel(self, channel: int) -> Change:
        self.selected_input_channel = max(0, min(channel, self._input.shape[0] - 1))
        return Change("selection", self.selected_layer)

    def select_cell(self, sel: Selection | None) -> Change:
        """Select an output cell (its receptive field and explanation follow)."""
        self.selection = sel if sel is not None and self._valid_cell(sel) else None
        return Change("cell", -1 if self.selection is None else self.selection.map_index)

    def _valid_cell(self, sel: Selection) -> bool:
        maps = self.results.maps
        if not 0 <= sel.map_index < len(maps):
            return False
        c, h, w = maps[sel.map_index].shape
        return 0 <= sel.channel < c and 0 <= sel.row < h and 0 <= sel.col < w

    def _clamp_selection(self) -> None:
        self.selected_layer = max(0, min(self.selected_layer, len(self._layers) - 1))
        if not self._layers:
            return
        spec = self._layers[self.selected_layer]
        if spec.weight is not None:
            self.selected_filter = max(0, min(self.selected_filter, spec.weight.shape[0] - 1))
            self.selected_in_channel = max(
                0, min(self.selected_in_channel, spec.weight.shape[1] - 1)
            )

    # ------------------------------------------------------------------ recompute
    def _mark_dirty(
        self,
        first_layer: int,
        region: Region | None = None,
        filters: tuple[int, frozenset[int]] | None = None,
        input_changed: bool = False,
    ) -> None:
        """Recompute from layer ``first_layer`` (``maps[first_layer]`` is its input).
        ``region`` marks an edit of a few input cells, ``filters`` an edit of some filters'
        weights of one conv; several pending edits merge into what covers them all."""
        pending = self._dirty_from is not None
        self._input_dirty |= input_changed
        self._dirty_from = first_layer if not pending else min(self._dirty_from, first_layer)  # type: ignore[type-var]
        cur_f = self._dirty_filters
        if filters is None or (pending and cur_f is None) or cur_f == "full":
            self._dirty_filters = "full"
        elif isinstance(cur_f, tuple):
            same = cur_f[0] == filters[0]
            self._dirty_filters = (cur_f[0], cur_f[1] | filters[1]) if same else "full"
        else:
            self._dirty_filters = filters
        cur_r = self._dirty_region
        if region is None or first_layer != 0 or (pending and cur_r is None) or cur_r == "full":
            self._dirty_region = "full"
        elif isinstance(cur_r, tuple):
            self._dirty_region = (
                min(cur_r[0], region[0]),
                max(cur_r[1], region[1]),
                min(cur_r[2], region[2]),
                max(cur_r[3], region[3]),
            )
        else:
            self._dirty_region = region
        # A job already running computes the state before this edit: it is stale now.
        self._generation += 1

    def recompute(self, inline_cost: int | None = None) -> Results | ForwardJob | None:
        """Bring the results up to date with the pending edits.

        Returns the new :class:`Results` when computed here, ``None`` when nothing was
        pending, or a :class:`ForwardJob` when the remaining work is estimated above
        ``inline_cost`` multiply-adds (``None``: everything here): run it anywhere, then
        hand its result to :meth:`finish`."""
        if self._dirty_from is None:
            return None
        with single_blas_thread():
            return self._recompute(inline_cost)

    # The one long method of the model: it decides between the three fast paths and a
    # forward pass, and each branch needs the same snapshot of the state.
    def _recompute(self, inline_cost: int | None) -> Results | ForwardJob:
        first, region, filt = self._dirty_from, self._dirty_region, self._dirty_filters
        assert first is not None
        self._dirty_from = self._dirty_region = self._dirty_filters = None
        if self._unpublished_from is not None:  # a job in flight is stale: cover its work
            first, region, filt = min(first, self._unpublished_from), "full", "full"
        gen = self._generation
        statuses = list(self._statuses)
        n_valid = valid_prefix(statuses)
        specs = self._layers[:n_valid]
        prev, prev_stats = self.results.maps, self.results.stats
        first = min(first, len(prev) - 1, n_valid)
        shown = 0 if self._input_dirty else first + 1
        costs = incremental.forward_cost(
            specs, [s.output_shape for s in statuses], self._input.shape
        )
        can_patch = self._can_patch(n_valid)
        channels: dict[int, frozenset[int]] = {}
        try:
            if (
                isinstance(region, tuple)
                and can_patch
                and all(map(incremental.supports_cells, specs))
            ):
                maps, stats, windows = incremental.patch_cells(
                    specs, list(prev), list(prev_stats), self._input, region
                )
                self._mark_inexact(0)
                return self._publish(gen, maps, stats, 0, statuses, {}, "cells", windows)
            if isinstance(filt, tuple) and filt[0] == first < n_valid and can_patch:
                filters = sorted(filt[1])
                width = max(1, specs[first].config.get("filters", 1))
                if inline_cost is None or 2 * costs[first + 1] * len(filters) < inline_cost * width:
                    maps, stats, j, old_in = incremental.patch_filters(
                        specs, list(prev), list(prev_stats), first, filters
                    )
                    self._mark_inexact(first)
                    channels = {k: frozenset(filters) for k in range(first + 1, j + 1)}
                    if (
                        j < n_valid
                        and old_in is not None
                        and incremental.delta_through_conv(
                            specs[j], maps, stats, j, filters, old_in
                        )
                    ):
                        j += 1  # conv j is up to date (by difference): go on after it
                    if j >= n_valid:
                        return self._publish(gen, maps, stats, shown, statuses, channels, "filters")
                    prev, prev_stats, first = maps, stats, j
        except Exception as exc:  # an engine bug must not take the window down
            return self._publish_error(gen, exc, statuses)
        job = ForwardJob(
            gen,
            [s.copy() for s in specs],
            statuses,
            list(prev),
            list(prev_stats),
            first,
            self._input,
            shown,
            channels,
            sum(costs[first + 1 :]),
            "filters" if channels else "forward",
        )
        if inline_cost is None or job.cost < inline_cost:
            return self._finish(job, job.run())
        job.background = True
        self.jobs_in_flight += 1
        self._unpublished_from = first
        return job

    def finish(
        self, job: ForwardJob, result: tuple[list[np.ndarray], list[MapStats]] | Exception | None
    ) -> Results | None:
        """Publish a background job's result; None if a newer edit made it stale (a job
        skipped because it was stale before it started reports ``result=None``)."""
        if job.background:
            job.background = False
            self.jobs_in_flight -= 1
        if job.generation != self._generation:
            return None
        if result is None:  # not computed after all: its work is still to do
            self._mark_dirty(job.first)
            return None
        return self._finish(job, result)

    def _finish(
        self, job: ForwardJob, result: tuple[list[np.ndarray], list[MapStats]] | Exception
    ) -> Results:
        if isinstance(result, Exception):
            return self._publish_error(job.generation, result, job.statuses)
        if self._inexact_from is not None and job.first <= self._inexact_from:
            self._inexact_from = None  # recomputed from exact maps: a plain forward's now
        maps, stats = result
        return self._publish(
            job.generation, maps, stats, job.shown_first, job.statuses, job.channels, job.path
        )

    def refine(self, inline_cost: int | None = None) -> Results | ForwardJob | None:
        """Recompute plainly every map a fast path wrote (see :meth:`recompute` for the
        return value); does nothing while edits are pending or a job is running."""
        if self._inexact_from is None or self._dirty_from is not None or self.jobs_in_flight:
            return None
        self._mark_dirty(self._inexact_from)
        return self.recompute(inline_cost)

    @property
    def needs_refine(self) -> bool:
        """True when a fast path wrote maps that :meth:`refine` should recompute."""
        return self._inexact_from is not None

    def _mark_inexact(self, layer: int) -> None:
        cur = self._inexact_from
        self._inexact_from = layer if cur is None else min(cur, layer)

    def _can_patch(self, n_valid: int) -> bool:
        """Whether the last results can be patched in place: no job reads them, and they
        are the results of the current stack's shapes."""
        prev = self.results.maps
        if self.jobs_in_flight or self._unpublished_from is not None or len(prev) != n_valid + 1:
            return False
        if len(self.results.stats) != len(prev) or prev[0].shape != self._input.shape:
            return False
        return all(
            m.shape == s.output_shape for m, s in zip(prev[1:], self._statuses, strict=False)
        )

    def _publish(
        self,
        gen: int,
        maps: list[np.ndarray],
        stats: list[MapStats],
        first: int,
        statuses: list[LayerStatus],
        channels: dict[int, frozenset[int]],
        path: str = "forward",
        windows: dict[int, Region] | None = None,
    ) -> Results:
        self._unpublished_from = None
        self._input_dirty = False
        notes = stats_notes(stats)
        self.results = Results(
            maps, statuses, gen, first, notes, stats, channels, path, windows=windows or {}
        )
        if self.selection is not None and not self._valid_cell(self.selection):
            self.selection = None
        return self.results

    def _publish_error(self, gen: int, exc: Exception, statuses: list[LayerStatus]) -> Results:
        message = f"Could not compute the network: {exc}"
        self._unpublished_from = None
        self._input_dirty = False
        self._inexact_from = None
        self.results = Results(
            [self._input], statuses, gen, 0, [str(exc)], [map_stats(self._input)], error=message
        )
        self.selection = None
        return self.results
