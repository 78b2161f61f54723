"""Preprocessing turns a picture into a model's input and survives a JSON round trip; the
import report reads as text."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnn_explorer.interchange.model import (
    ImportReport,
    ModelFileError,
    Preprocessing,
    ReportEntry,
    SelfCheck,
)
from cnn_explorer.interchange.onnx_meta import parse_class_names


def test_json_round_trip() -> None:
    pre = Preprocessing((3, 4, 5), "bgr", 1.0, (1.0, 2.0, 3.0), (0.5,), ("a", "b"))
    again = Preprocessing.from_json(json.dumps(json.loads(pre.to_json())))
    assert again == pre


def test_rgb_scale_mean_std() -> None:
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 255, 0, 51
    pre = Preprocessing((3, 2, 3), "rgb", 1 / 255, (0.5, 0.0, 0.0), (0.5, 1.0, 0.1))
    x = pre.apply(img)
    assert x.shape == (1, 3, 2, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], [1.0, 0.0, 2.0], rtol=1e-6)


def test_bgr_reverses_channels() -> None:
    img = np.zeros((1, 1, 3), np.uint8)
    img[0, 0] = (10, 20, 30)
    x = Preprocessing((3, 1, 1), "bgr", 1.0).apply(img)
    assert x[0, :, 0, 0].tolist() == [30.0, 20.0, 10.0]


def test_grey_from_colour_and_copied_into_every_channel() -> None:
    img = np.full((2, 2, 3), 100, np.uint8)
    assert Preprocessing((1, 2, 2), "grey", 1.0).apply(img)[0, 0, 0, 0] == pytest.approx(100.0)
    x = Preprocessing((2, 2, 2), "grey", 1.0).apply(img[..., 0])
    assert x.shape == (1, 2, 2, 2) and np.all(x == 100.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_shape": (3, 4)},
        {"input_shape": (3, 4, 4), "colour": "hsv"},
        {"input_shape": (1, 4, 4), "colour": "rgb"},
        {"input_shape": (3, 4, 4), "std": (0.0,)},
        {"input_shape": (3, 4, 4), "mean": (1.0, 2.0)},
        {"input_shape": (3, 4, 4), "scale": float("nan")},
    ],
)
def test_bad_preprocessing_is_refused(kwargs: dict) -> None:
    with pytest.raises(ModelFileError):
        Preprocessing(**kwargs)


@pytest.mark.parametrize(
    "text", ["not json", "[1, 2]", '{"colour": "rgb"}', '{"input_shape": "x"}']
)
def test_bad_json_is_refused(text: str) -> None:
    with pytest.raises(ModelFileError):
        Preprocessing.from_json(text)


def test_image_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ModelFileError, match="expects 4×4"):
        Preprocessing((3, 4, 4)).apply(np.zeros((3, 3, 3), np.uint8))


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('["cat", "dog"]', ("cat", "dog")),
        ("cat, dog", ("cat", "dog")),
        ("cat\ndog\n\n", ("cat", "dog")),
        ('{"1": "dog", "0": "cat"}', ("cat", "dog")),
        ("", ()),
    ],
)
def test_class_names_are_parsed(text: str, names: tuple[str, ...]) -> None:
    assert parse_class_names(text) == names


def test_report_text() -> None:
    report = ImportReport(
        "m.onnx",
        [ReportEntry("c", "Conv", "mapped", "Conv2D"), ReportEntry("d", "Dropout", "transformed")],
        ["Pad folded"],
        ["NaN weights"],
        SelfCheck("onnx.reference", 2e-6, 1e-4, True, "matches the reference to 2e-06"),
    )
    text = report.text()
    assert "2 nodes: 1 mapped, 1 transformed, 0 unsupported" in text
    assert "[mapped] c (Conv) — Conv2D" in text
    assert "Transformations:\n  - Pad folded" in text and "Warnings:\n  - NaN weights" in text
    assert text.endswith("passed: matches the reference to 2e-06")
