"""Fixtures for the model import tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from onnx_helpers import save, tiny_model


@pytest.fixture
def tiny_path(tmp_path: Path) -> Path:
    """A tiny valid model (Conv 1→2, Relu) in its own folder."""
    return save(tiny_model(), tmp_path / "tiny.onnx")
