"""The Keras import's numerical self-check: when the optional ``keras`` package is
installed, the model is rebuilt in Keras and both run on the same seeded random input.

The reference is built from the config this importer has already checked (every layer
class is one it maps, so no Lambda or custom class is left, and every ``module`` in it
names a Keras module), with ``safe_mode=True``, and its weights are set from the arrays
read here: Keras never opens the file and nothing from it runs. Without Keras the check is
skipped and the report says so.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from cnn_explorer.engine.graph import Graph
from cnn_explorer.interchange.model import SelfCheck

SELF_CHECK_SEED = 0
SELF_CHECK_REFERENCE = "Keras"
SKIPPED = "keras not installed: self-check against the Keras reference skipped"


def _foreign_module(value: Any) -> str | None:
    """The first ``module`` in the config that is not part of Keras."""
    if isinstance(value, dict):
        module = value.get("module")
        if isinstance(module, str) and module.split(".")[0] != "keras":
            return module
        for v in value.values():
            found = _foreign_module(v)
            if found:
                return found
    elif isinstance(value, list):
        for v in value:
            found = _foreign_module(v)
            if found:
                return found
    return None


def _with_modules(config: dict[str, Any]) -> dict[str, Any]:
    """A legacy ``.h5`` config with the ``module`` keys Keras 3 needs to find its classes
    (the top level is a Keras model, every layer a Keras layer: already checked)."""
    inner = dict(config.get("config") or {})
    layers = inner.get("layers")
    if isinstance(layers, list):
        inner["layers"] = [
            {"module": "keras.layers", **e} if isinstance(e, dict) else e for e in layers
        ]
    return {"module": "keras", **config, "config": inner}


def _keras() -> Any | None:
    """The optional Keras package (the only place the app imports it; see pyproject.toml's
    interchange-pure contract), or None when it is not installed or does not load."""
    try:
        import keras  # type: ignore[import-not-found,unused-ignore]
    except Exception:  # any failure of an optional package means "absent"
        return None
    return keras


def keras_outputs(
    config: dict[str, Any], weights: dict[str, list[np.ndarray]], x_nhwc: np.ndarray
) -> np.ndarray | str:
    """The Keras model's output for ``x_nhwc``, or a sentence saying why there is none.
    ``weights`` are keyed by layer name."""
    with warnings.catch_warnings():  # Keras' own deprecation chatter is not the user's
        warnings.simplefilter("ignore")
        keras = _keras()
        if keras is None:
            return SKIPPED
        foreign = _foreign_module(config)
        if foreign:
            return f"the config names the module {foreign!r}; the Keras reference was not built"
        try:
            model = keras.saving.deserialize_keras_object(_with_modules(config), safe_mode=True)
            for layer in model.layers:
                if weights.get(layer.name):
                    layer.set_weights(weights[layer.name])
            out = model(x_nhwc, training=False)
            return np.asarray(keras.ops.convert_to_numpy(out), np.float64)
        except Exception as exc:  # Keras' own errors, shown in the report
            return f"the Keras reference could not be run ({type(exc).__name__}: {exc})"


def self_check(
    graph: Graph,
    input_shape: tuple[int, int, int],
    reference: Any,
    *,
    scale: float = 1.0,
    offset: float = 0.0,
    perm: np.ndarray | None = None,
    keras_rank: int = 4,
) -> SelfCheck | str:
    """Compare ``graph`` with ``reference(x_nhwc)`` (:func:`keras_outputs` bound to the
    model) on one seeded random input. ``scale``/``offset``: a leading Rescaling the import
    moved into the preprocessing (the graph gets ``x·scale + offset``); ``perm``: the
    order of the graph's flat output in Keras' order; ``keras_rank`` 3: the Keras model
    takes ``(N, H, W)``. A string means skipped."""
    rng = np.random.default_rng(SELF_CHECK_SEED)
    x = rng.standard_normal((1, *input_shape)).astype(np.float32)
    x_keras = x.transpose(0, 2, 3, 1)
    want_raw = reference(np.ascontiguousarray(x_keras[..., 0] if keras_rank == 3 else x_keras))
    if isinstance(want_raw, str):
        return want_raw
    with np.errstate(all="ignore"):
        got = np.asarray(graph(x * np.float32(scale) + np.float32(offset)), np.float64)
    want = want_raw.transpose(0, 3, 1, 2) if want_raw.ndim == 4 else want_raw
    if perm is not None and want.ndim == 2:
        want = want[:, perm]
    ref = SELF_CHECK_REFERENCE
    if want.shape != got.shape:
        return SelfCheck(
            ref, math.inf, 0.0, False, f"the output has shape {got.shape}, Keras {want.shape}"
        )
    finite = np.isfinite(want)
    scale_out = float(np.max(np.abs(want[finite]))) if finite.any() else 1.0
    tol = 1e-4 * max(1.0, scale_out)
    if not np.array_equal(finite, np.isfinite(got)):
        return SelfCheck(
            ref, math.inf, tol, False, "NaN or inf appear in different places than in Keras"
        )
    diff = float(np.max(np.abs(want[finite] - got[finite]))) if finite.any() else 0.0
    if diff <= tol:
        return SelfCheck(ref, diff, tol, True, f"matches the Keras reference to {diff:.1g}")
    return SelfCheck(
        ref, diff, tol, False, f"differs from Keras by up to {diff:.3g} (tolerance {tol:.1g})"
    )
