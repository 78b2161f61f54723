"""Class names that come with a model: parsed from a metadata value (JSON list, JSON
object keyed by index, or comma/newline separated text) or read from a ``labels.txt``
beside the model file. Shared by every importer."""

from __future__ import annotations

import json
from pathlib import Path

from cnn_explorer.interchange.files import check_regular_file, read_range
from cnn_explorer.interchange.model import ImportReport, ModelFileError

LABELS_FILE = "labels.txt"
"""Class names, one a line, read from beside a model that does not carry its own."""

MAX_LABELS_BYTES = 1 << 20
"""Largest ``labels.txt`` read (a million bytes is ~50,000 class names)."""


def parse_class_names(text: str) -> tuple[str, ...]:
    """Class names from a JSON list, or from newline- or comma-separated text."""
    text = text.strip()
    if not text:
        return ()
    if text.startswith("["):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, list):
            return tuple(str(v) for v in data)
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):  # {"0": "cat", "1": "dog"}: ordered by index
            try:
                return tuple(str(v) for _, v in sorted(data.items(), key=lambda kv: int(kv[0])))
            except ValueError:
                pass
    sep = "\n" if "\n" in text else ","
    return tuple(part.strip() for part in text.split(sep) if part.strip())


def labels_beside(path: Path, report: ImportReport) -> tuple[str, ...]:
    """Class names from a ``labels.txt`` beside ``path`` (a problem reading it is a
    warning in ``report``, never fatal)."""
    labels = path.parent / LABELS_FILE
    if not labels.exists() and not labels.is_symlink():
        return ()
    try:
        size = check_regular_file(labels, "the class names file")
        if size > MAX_LABELS_BYTES:
            raise ModelFileError(f"{LABELS_FILE} is larger than {MAX_LABELS_BYTES} bytes")
        text = read_range(labels).decode("utf-8")
    except (ModelFileError, UnicodeDecodeError) as exc:
        report.warnings.append(f"{LABELS_FILE} beside the model was not read: {exc}")
        return ()
    return parse_class_names(text.replace("\r\n", "\n"))
