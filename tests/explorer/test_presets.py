"""Kernel presets: the editor names the preset a kernel equals, within float32 noise."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_explorer.explorer.presets import (
    INPUT_PRESETS,
    KERNEL_PRESETS,
    NO_PRESET,
    input_preset_plane,
    matching_input_preset,
    matching_kernel_preset,
)


@pytest.mark.parametrize("name", list(KERNEL_PRESETS))
def test_every_preset_is_recognised_by_name(name: str) -> None:
    kernel = KERNEL_PRESETS[name].copy()
    assert matching_kernel_preset(kernel) == name
    assert matching_kernel_preset(kernel * np.float32(1 + 1e-7)) == name  # float32 noise


def test_a_changed_weight_other_shape_or_nan_matches_nothing() -> None:
    sobel = KERNEL_PRESETS["Sobel x"].copy()
    sobel[1, 1] += 1e-3
    assert matching_kernel_preset(sobel) == NO_PRESET
    assert matching_kernel_preset(np.zeros((4, 6), np.float32)) == NO_PRESET
    nan = KERNEL_PRESETS["Laplacian"].copy()
    nan[0, 0] = np.nan
    assert matching_kernel_preset(nan) == NO_PRESET


@pytest.mark.parametrize("name", list(INPUT_PRESETS))
@pytest.mark.parametrize("size", [(8, 8), (9, 31), (64, 40)])
def test_every_input_preset_is_zeros_and_ones_and_recognised(name: str, size) -> None:
    """matching_input_preset rules a grid out by a value other than 0 or 1."""
    plane = input_preset_plane(name, *size)
    assert set(np.unique(plane).tolist()) <= {0.0, 1.0}
    assert matching_input_preset(np.stack([plane] * 3)) == name
    other = plane.copy()
    other[-1, -1] = 0.5
    assert matching_input_preset(other[None]) == NO_PRESET
