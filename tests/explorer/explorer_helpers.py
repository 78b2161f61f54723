"""Helpers for the explorer model's tests: apply intents with an undo history, and the
oracle (a plain forward pass of the current state)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnn_explorer.explorer import edits
from cnn_explorer.explorer.blas import single_blas_thread
from cnn_explorer.explorer.model import Explorer
from cnn_explorer.explorer.specs import build_network, valid_prefix


class History:
    """A minimal undo stack over edits (what QUndoStack does for the app)."""

    def __init__(self, model: Explorer) -> None:
        self.model = model
        self.done: list[list[Any]] = []
        self.undone: list[list[Any]] = []

    def do(self, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        steps = edits.INTENTS[name](self.model, *args, **kwargs)
        self.push(steps)
        return steps

    def push(self, steps: list[Any]) -> None:
        for step in steps:
            step.redo(self.model)
        if steps:
            self.done.append(steps)
            self.undone.clear()

    def undo(self) -> bool:
        if not self.done:
            return False
        steps = self.done.pop()
        for step in reversed(steps):
            step.undo(self.model)
        self.undone.append(steps)
        return True

    def redo(self) -> bool:
        if not self.undone:
            return False
        steps = self.undone.pop()
        for step in steps:
            step.redo(self.model)
        self.done.append(steps)
        return True


def fresh_forward(model: Explorer) -> list[np.ndarray]:
    """Every map of a plain forward pass of the model's current state, computed the way the
    explorer computes (one BLAS thread), up to the first invalid layer."""
    specs = model.layers[: valid_prefix(model.statuses)]
    with single_blas_thread(), np.errstate(all="ignore"):
        return [np.asarray(m) for m in build_network(specs).forward(model.input)]


def assert_close_to_fresh(model: Explorer, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    fresh = fresh_forward(model)
    maps = model.results.maps
    assert len(maps) == len(fresh)
    for i, (a, b) in enumerate(zip(maps, fresh, strict=True)):
        assert a.shape == b.shape, i
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"map {i}")


def assert_exactly_fresh(model: Explorer) -> None:
    fresh = fresh_forward(model)
    maps = model.results.maps
    assert len(maps) == len(fresh)
    for i, (a, b) in enumerate(zip(maps, fresh, strict=True)):
        assert a.dtype == b.dtype and a.shape == b.shape, i
        assert np.array_equal(a, b, equal_nan=True), (
            f"map {i} differs by {np.nanmax(np.abs(a - b))}"
        )
