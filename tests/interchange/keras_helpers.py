"""Helpers for the Keras import tests: hand-made ``.keras`` and ``.h5`` files written with
h5py + zipfile + json in Keras 3's layout (no Keras needed), for the cases the committed
fixtures (``fixtures/make_keras_fixtures.py``) do not cover."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def layer(cls: str, name: str, inbound: list[Any] | None = None, **config: Any) -> dict[str, Any]:
    """One layer entry of a model config (``inbound``: Keras 3 call records)."""
    entry: dict[str, Any] = {
        "module": "keras.layers",
        "class_name": cls,
        "config": {"name": name, **config},
        "name": name,
    }
    if inbound is not None:
        entry["inbound_nodes"] = inbound
    return entry


def call(*sources: str) -> list[dict[str, Any]]:
    """Keras 3's ``inbound_nodes`` for one call on the outputs of ``sources``."""
    tensors = [
        {"class_name": "__keras_tensor__", "config": {"keras_history": [s, 0, 0]}} for s in sources
    ]
    return [{"args": [tensors if len(tensors) > 1 else tensors[0]], "kwargs": {}}]


def sequential(layers: Sequence[dict[str, Any]], input_shape: Sequence[int | None]) -> dict:
    """A Sequential config whose input is ``(None, *input_shape)`` (H, W, C)."""
    first = layer("InputLayer", "input_layer", batch_shape=[None, *input_shape])
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "hand_made", "layers": [first, *layers]},
    }


def weights_h5(weights: dict[str, list[np.ndarray]]) -> bytes:
    """A Keras 3 ``model.weights.h5``: ``layers/<key>/vars/<i>``."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_group("layers")
        for key, arrays in weights.items():
            group = f.create_group(f"layers/{key}/vars")
            for i, a in enumerate(arrays):
                group[str(i)] = np.asarray(a, np.float32)
    return buf.getvalue()


def write_keras(
    path: Path,
    config: dict[str, Any] | None,
    weights: dict[str, list[np.ndarray]] | None = None,
    extra: Iterable[tuple[str, bytes]] = (),
) -> Path:
    """A ``.keras`` zip with ``config.json`` (left out when None), metadata and weights,
    plus any ``extra`` members."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        if config is not None:
            z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights_h5(weights or {}))
        for name, data in extra:
            z.writestr(name, data)
    return path


def flatten_dense_model(h: int, w: int, c: int) -> tuple[dict[str, Any], np.ndarray]:
    """``Input(h, w, c) → Flatten → Dense(1, no bias)`` whose kernel row ``j`` is ``j``:
    its output is ``Σ j · x_keras_flat[j]`` over Keras' (H, W, C) flattening."""
    config = sequential(
        [layer("Flatten", "flat"), layer("Dense", "fc", units=1, use_bias=False)], (h, w, c)
    )
    kernel = np.arange(h * w * c, dtype=np.float32).reshape(-1, 1)
    return config, kernel
