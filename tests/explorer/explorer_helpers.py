"""Helpers for the explorer model's tests: apply intents with an undo history, and compare
the results with the oracle (``Explorer.plain_forward``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnn_explorer.explorer import edits
from cnn_explorer.explorer.model import Explorer


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


def assert_close_to_fresh(model: Explorer, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    fresh = model.plain_forward()
    maps = model.results.maps
    assert len(maps) == len(fresh)
    for i, (a, b) in enumerate(zip(maps, fresh, strict=True)):
        assert a.shape == b.shape, i
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"map {i}")


def assert_exactly_fresh(model: Explorer) -> None:
    fresh = model.plain_forward()
    maps = model.results.maps
    assert len(maps) == len(fresh)
    for i, (a, b) in enumerate(zip(maps, fresh, strict=True)):
        assert a.dtype == b.dtype and a.shape == b.shape, i
        assert np.array_equal(a, b, equal_nan=True), (
            f"map {i} differs by {np.nanmax(np.abs(a - b))}"
        )
