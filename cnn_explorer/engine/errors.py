"""The one exception type the engine raises for a bad configuration, and the report for
non-finite numbers (which are allowed, never a crash, but must be visible to the user)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class ShapeError(ValueError):
    """A configuration the engine cannot compute: wrong ndim/dtype, a kernel larger than
    its (padded) input, a non-positive stride/kernel/dilation, a channel mismatch, an empty
    output. The message names the layer (when known), the numbers involved and a fix."""


class ForwardStopped(Exception):  # noqa: N818 (a signal, not an error)
    """A forward pass was asked to stop (its ``stop`` callable said so between two layers):
    a newer input superseded it, or the window is closing. Nothing was returned."""


Stop = Callable[[], bool] | None
"""Polled by a forward pass between two layers; True stops it with :class:`ForwardStopped`."""


def check_stop(stop: Stop) -> None:
    """Raise :class:`ForwardStopped` when ``stop`` says so (None never stops)."""
    if stop is not None and stop():
        raise ForwardStopped("the forward pass was stopped")


def nonfinite_report(name: str, array: np.ndarray) -> str | None:
    """Describe NaN/inf values in ``array`` in one sentence, or return ``None`` if all finite.

    NaN and inf are legal inputs (a user may type them); the engine computes through them
    and the UI shows this report instead of crashing.
    """
    if array.size == 0 or np.isfinite(array).all():
        return None
    n_nan = int(np.isnan(array).sum())
    n_inf = int(np.isinf(array).sum())
    parts = []
    if n_nan:
        parts.append(f"{n_nan} NaN")
    if n_inf:
        parts.append(f"{n_inf} infinite")
    return f"{name} contains {' and '.join(parts)} value{'s' if n_nan + n_inf > 1 else ''}"
