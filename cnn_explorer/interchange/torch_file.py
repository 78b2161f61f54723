"""Read a PyTorch ``.pt``/``.pth`` state_dict — the only module of the app that imports
torch, and only when torch is installed.

A ``.pt`` file is a pickle, and unpickling can run any code the file names. So it is read
with ``torch.load(weights_only=True)`` only: torch's restricted unpickler that builds
tensors and plain containers and refuses everything else. A whole pickled model
(``torch.save(model)``) is refused with the three lines that convert it to safetensors or
ONNX where the user trusts the file; it is never loaded with ``weights_only=False``.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cnn_explorer.interchange.files import check_model_file
from cnn_explorer.interchange.model import ModelFileError

CONTAINER_KEYS = ("state_dict", "model_state_dict", "model")
"""Checkpoints often wrap the state_dict: ``{"state_dict": {...}, "epoch": 3}``."""


def whole_module_message(path: Path) -> str:
    """Why a pickled model is refused, and the three lines that convert it."""
    stem = path.stem
    return (
        f"{path.name} holds a whole pickled model, not just its weights. Loading it would run "
        "code from the file, so it is refused. Where you trust the file, convert it with:\n"
        "    import torch, safetensors.torch\n"
        f'    model = torch.load("{path.name}", weights_only=False).eval()\n'
        f'    safetensors.torch.save_file(model.state_dict(), "{stem}.safetensors")'
        f'  # or: torch.onnx.export(model, torch.zeros(1, 3, 224, 224), "{stem}.onnx")'
    )


def _unwrap(obj: Any, label: str) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        for key in CONTAINER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                return inner
        return obj
    raise ModelFileError(f"{label} holds a {type(obj).__name__}, not a state_dict of weights")


def load_torch_state_dict(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a ``.pt``/``.pth`` state_dict as NumPy arrays (bfloat16 becomes
    float32). ModelFileError when torch is missing, for a whole pickled model, or for a
    file that is not a state_dict."""
    label = path.name
    check_model_file(path)
    try:
        import torch
    except ImportError:
        raise ModelFileError(
            f"{label}: reading .pt/.pth files needs PyTorch (pip install torch); or save the "
            "weights as .safetensors, which this app reads without it"
        ) from None
    try:
        obj = torch.load(str(path), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        raise ModelFileError(whole_module_message(path)) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError) as exc:
        raise ModelFileError(f"{label} cannot be read as a PyTorch file ({exc})") from None
    tensors: dict[str, np.ndarray] = {}
    for key, value in _unwrap(obj, label).items():
        if not isinstance(value, torch.Tensor):
            raise ModelFileError(
                f"{label}: {key!r} is a {type(value).__name__}, not a tensor; "
                "save model.state_dict() instead"
            )
        t = value.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        tensors[str(key)] = t.numpy().copy()
    return tensors


__all__ = ["load_torch_state_dict", "whole_module_message"]
