"""The types every importer and exporter shares: what a model file became
(:class:`ImportedModel`), how to turn a picture into its input (:class:`Preprocessing`),
and what the import did to get there (:class:`ImportReport`).

Metadata keys (ONNX ``metadata_props``; the exporter writes the same keys, the importer
reads them):

- :data:`METADATA_PREPROCESSING` ``"cnn_explorer.preprocessing"``: JSON of
  :meth:`Preprocessing.to_dict` (input shape, colour, scale, mean, std, class names).
- :data:`METADATA_CLASS_NAMES` ``"class_names"``: the class names, a JSON list of strings
  (the importer also accepts comma- or newline-separated text, and the key ``"labels"``).

Qt-free; imports NumPy and the engine only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from cnn_explorer.engine.graph import Graph

METADATA_PREPROCESSING = "cnn_explorer.preprocessing"
"""ONNX metadata key holding :meth:`Preprocessing.to_dict` as JSON."""

METADATA_CLASS_NAMES = "class_names"
"""ONNX metadata key holding the class names as a JSON list of strings."""

METADATA_CLASS_NAME_KEYS = (METADATA_CLASS_NAMES, "labels", "classes")
"""Keys the importer looks for class names under (first found wins)."""

OUTPUT_KEY = "output"
"""Reserved node name: ``cnn-explorer run --out`` saves the final output under this key
beside the node names (importers never name a node ``"output"`` or ``"input"``)."""

COLOURS = ("grey", "rgb", "bgr")
"""Channel orders a model may expect: one grey channel, or three in RGB or BGR order."""


class ModelFileError(ValueError):
    """A model file could not be imported: ``str(err)`` is one clear sentence for the user
    (what is wrong and, where it helps, what would work). ``report`` is the import report
    so far when the failure came from converting the model (e.g. unsupported operators)."""

    def __init__(self, message: str, report: ImportReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class InputShapeNeededError(ModelFileError):
    """The model's input height/width (or channels) are not fixed: the caller must choose
    an input size ``(C, H, W)`` and import again with it."""


def _floats(values: Any, what: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in (values if isinstance(values, list | tuple) else [values]))
    except (TypeError, ValueError):
        raise ModelFileError(f"the preprocessing {what} must be numbers, not {values!r}") from None
    if not out or not all(math.isfinite(v) for v in out):
        raise ModelFileError(f"the preprocessing {what} must be finite numbers, not {values!r}")
    return out


@dataclass
class Preprocessing:
    """How a picture becomes the model's input: colour order, value scale, per-channel
    normalisation ``(x * scale - mean) / std``, and the class names of its outputs.

    Saved with projects and in exported ONNX metadata (:meth:`to_dict` is JSON-safe).
    """

    input_shape: tuple[int, int, int]
    """``(C, H, W)`` the model expects."""
    colour: str = "rgb"
    """``"grey"`` | ``"rgb"`` | ``"bgr"``."""
    scale: float = 1 / 255
    """Pixel value multiplier: 1/255 for inputs in 0–1, 1.0 for 0–255."""
    mean: tuple[float, ...] = (0.0,)
    """Per channel (or one value for all), subtracted after scaling."""
    std: tuple[float, ...] = (1.0,)
    """Per channel (or one value for all), divided by after subtracting the mean."""
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        shape = tuple(int(v) for v in self.input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ModelFileError(f"the input shape must be (C, H, W), not {self.input_shape!r}")
        self.input_shape = (shape[0], shape[1], shape[2])
        if self.colour not in COLOURS:
            raise ModelFileError(f"colour must be one of {', '.join(COLOURS)}, not {self.colour!r}")
        self.scale = _floats(self.scale, "scale")[0]
        self.mean = _floats(self.mean, "mean")
        self.std = _floats(self.std, "std")
        if any(s == 0 for s in self.std):
            raise ModelFileError("the preprocessing std must not be zero")
        c = shape[0]
        if self.colour != "grey" and c != 3:
            raise ModelFileError(
                f"{self.colour.upper()} gives 3 channels but the model takes {c}: use grey"
            )
        for name, vals in (("mean", self.mean), ("std", self.std)):
            if len(vals) not in (1, c):
                raise ModelFileError(
                    f"the preprocessing {name} has {len(vals)} values for {c} channels"
                )
        self.class_names = tuple(str(n) for n in self.class_names)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """uint8 ``(H, W)`` or ``(H, W, 3)`` (RGB, already resized) -> ``(1, C, H, W)``
        float32 as the model expects it."""
        img = np.asarray(image)
        if img.ndim == 2:
            img = img[:, :, None]
        if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
            raise ModelFileError(f"an image must be (H, W) or (H, W, 3), not {image.shape}")
        pixels = img[:, :, :3].astype(np.float32).transpose(2, 0, 1)[None]
        return self._normalise(pixels)

    def apply_batch(self, images: np.ndarray) -> np.ndarray:
        """Images as the app's loaders give them, ``(N, 1|3, H, W)`` float in [0, 1] (RGB),
        -> ``(N, C, H, W)`` float32 as the model expects them: the same maths as
        :meth:`apply` on the 0–255 pixels (training on an image folder uses this)."""
        x = np.asarray(images, np.float32)
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ModelFileError(f"images must be (N, 1|3, H, W), not {x.shape}")
        return self._normalise(x * np.float32(255.0))

    def _normalise(self, pixels: np.ndarray) -> np.ndarray:
        """``(N, 1|3, H, W)`` float32 RGB pixels in 0–255 -> ``(N, C, H, W)`` model input:
        colour order, scale, mean and std (the one place this maths lives)."""
        c, h, w = self.input_shape
        if pixels.shape[2:] != (h, w):
            raise ModelFileError(
                f"the image is {pixels.shape[2]}×{pixels.shape[3]} but the model expects {h}×{w}"
            )
        if self.colour == "grey":
            if pixels.shape[1] == 3:
                grey = np.einsum("nchw,c->nhw", pixels, np.array([0.299, 0.587, 0.114], np.float32))
            else:
                grey = pixels[:, 0]
            x = np.repeat(grey[:, None], c, axis=1)
        else:
            x = np.repeat(pixels, 3, axis=1) if pixels.shape[1] == 1 else pixels
            if self.colour == "bgr":
                x = x[:, ::-1]
        mean = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        out = (x * np.float32(self.scale) - mean) / std
        return np.ascontiguousarray(out, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (lists, floats, strings)."""
        return {
            "input_shape": list(self.input_shape),
            "colour": self.colour,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "class_names": list(self.class_names),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Preprocessing:
        """Inverse of :meth:`to_dict`; ModelFileError for anything malformed."""
        if not isinstance(data, dict) or "input_shape" not in data:
            raise ModelFileError("the preprocessing record must be an object with an input_shape")
        try:
            shape = tuple(int(v) for v in data["input_shape"])
        except (TypeError, ValueError):
            raise ModelFileError(f"bad input_shape {data['input_shape']!r}") from None
        names = data.get("class_names", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ModelFileError("class_names must be a list of strings")
        colour = data.get("colour", "rgb")
        if not isinstance(colour, str):
            raise ModelFileError(f"bad colour {colour!r}")
        return cls(
            input_shape=shape,  # type: ignore[arg-type]  # length checked in __post_init__
            colour=colour,
            scale=data.get("scale", 1 / 255),
            mean=data.get("mean", [0.0]),
            std=data.get("std", [1.0]),
            class_names=tuple(names),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Preprocessing:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ModelFileError(f"the preprocessing record is not valid JSON ({exc})") from None
        return cls.from_dict(data)


REPORT_STATUSES = ("mapped", "transformed", "unsupported")


@dataclass
class ReportEntry:
    """What became of one node of the source model."""

    node: str
    op: str
    status: str
    """``"mapped"`` (one engine layer), ``"transformed"`` (folded, merged, dropped or
    rewritten), or ``"unsupported"``."""
    detail: str = ""


@dataclass
class SelfCheck:
    """The imported graph run next to a reference on the same seeded random input."""

    reference: str
    """What it was compared with, e.g. ``"onnx.reference"``."""
    max_abs_diff: float
    tolerance: float
    passed: bool
    message: str
    """e.g. ``"matches the reference to 2e-06"``."""


@dataclass
class ImportReport:
    """Everything the import did, for the user to read: one entry per source node, the
    rewrites applied, warnings (e.g. NaN weights), and the numerical self-check."""

    source: str
    entries: list[ReportEntry] = field(default_factory=list)
    transformations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    self_check: SelfCheck | None = None

    def text(self) -> str:
        """Plain-text report, one line per entry."""
        lines = [f"Imported {self.source}"]
        counts = {s: sum(e.status == s for e in self.entries) for s in REPORT_STATUSES}
        lines.append(
            f"{len(self.entries)} nodes: {counts['mapped']} mapped, "
            f"{counts['transformed']} transformed, {counts['unsupported']} unsupported"
        )
        for e in self.entries:
            detail = f" — {e.detail}" if e.detail else ""
            lines.append(f"  [{e.status}] {e.node} ({e.op}){detail}")
        if self.transformations:
            lines.append("Transformations:")
            lines.extend(f"  - {t}" for t in self.transformations)
        if self.warnings:
            lines.append("Warnings:")
            lines.extend(f"  - {w}" for w in self.warnings)
        if self.self_check is not None:
            verdict = "passed" if self.self_check.passed else "FAILED"
            lines.append(
                f"Self-check ({self.self_check.reference}) {verdict}: {self.self_check.message}"
            )
        return "\n".join(lines)


@dataclass
class ImportedModel:
    """A model file turned into an engine graph, with how to feed it and how it went."""

    graph: Graph
    preprocessing: Preprocessing
    report: ImportReport
    source: Path


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3``… when taken; the name chosen joins ``taken``.
    Importers name each engine node after its layer in the file, and files may repeat
    names (or use ours, such as ``input``)."""
    name, i = base, 1
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name
