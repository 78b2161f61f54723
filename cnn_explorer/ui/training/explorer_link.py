"""How the Training tab follows the explorer's layer stack without slowing its edits down.

Why: the tab previews the network "explorer's conv stack + classifier" would train (shapes,
parameter count, layers to freeze). Rebuilding that preview copies the whole stack (1–3 ms),
and the explorer announces every weight edit as a ``"layer"`` change, so following it
naively taxed every keystroke in the kernel editor. The preview depends only on the stack's
*structure*: the kinds, configs and weight shapes of the layers and the input's shape. So
:class:`ExplorerLink` keeps a cheap structural key per layer, ignores changes that leave the
keys alone (weight and bias values, input values, selections), and rebuilds only when the
structure changed, and only while the tab is visible; a hidden tab is marked stale and
rebuilt when next shown. The weights themselves are read when a run starts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

ExplorerSource = Callable[[], Sequence[Any] | None]
"""Returns engine copies of the explorer's valid layers (None when there are none)."""

STRUCTURAL_KINDS = ("layers", "document", "input_shape")
"""Change kinds that always alter the structure (a ``"layer"`` change may or may not)."""


class ExplorerDocument(Protocol):
    """What the link needs of the explorer's document: a ``changed(Change)`` signal, where
    ``Change`` has ``kind`` and ``index``, and the layer specs."""

    changed: Any
    layers: Sequence[Any]


def structure(spec: Any) -> tuple[Any, ...]:
    """A layer spec's structural key: kind, config, enabled, weight and bias shapes; equal
    keys mean only weight or bias *values* differ (cf. ``LayerSpec.same_computation``)."""
    weight, bias = spec.weight, spec.bias
    return (
        spec.kind,
        repr(spec.config),
        spec.enabled,
        None if weight is None else weight.shape,
        None if bias is None else bias.shape,
    )


class ExplorerLink(QObject):
    """Calls ``refresh()`` when the explorer's structure changed and ``owner`` is visible,
    or when ``owner`` is shown after such a change (:meth:`shown`). A QObject child of
    ``owner``, so the document's signal lets go of it when the owner is destroyed."""

    def __init__(self, owner: QWidget, refresh: Callable[[], None]) -> None:
        super().__init__(owner)
        self._owner = owner
        self._refresh = refresh
        self._source: ExplorerSource | None = None
        self._doc: ExplorerDocument | None = None
        self._keys: list[tuple[Any, ...]] = []
        self.stale = False

    def layers(self) -> list[Any] | None:
        """Fresh engine copies of the explorer's layers (None when there are none)."""
        layers = self._source() if self._source is not None else None
        return list(layers) if layers else None

    def use(self, source: ExplorerSource) -> None:
        """Read layers from ``source`` (not following a document); refresh now."""
        self._detach()
        self._source = source
        self.stale = False
        self._refresh()

    def follow(self, doc: ExplorerDocument, source: ExplorerSource) -> None:
        """Follow ``doc``'s changes; ``source`` builds its engine layers when needed."""
        self._detach()
        self._doc, self._source = doc, source
        self._keys = [structure(s) for s in doc.layers]
        doc.changed.connect(self._on_change)
        self._changed()

    def shown(self) -> None:
        """The owner became visible: refresh if a structural change came while hidden."""
        if self.stale:
            self.stale = False
            self._refresh()

    def _detach(self) -> None:
        if self._doc is not None:
            self._doc.changed.disconnect(self._on_change)
            self._doc = None

    def _on_change(self, change: Any) -> None:
        if self._doc is None:
            return
        if change.kind == "layer":
            specs, i = self._doc.layers, change.index
            if 0 <= i < len(specs) and i < len(self._keys):
                key = structure(specs[i])
                if key == self._keys[i]:
                    return  # weight or bias values only
                self._keys[i] = key
                self._changed()
                return
        elif change.kind not in STRUCTURAL_KINDS:
            return
        self._keys = [structure(s) for s in self._doc.layers]
        self._changed()

    def _changed(self) -> None:
        if self._owner.isVisible():
            self.stale = False
            self._refresh()
        else:
            self.stale = True
