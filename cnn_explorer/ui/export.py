"""Writing feature maps to files: one map as PNG (colour-mapped, upscaled), CSV or .npy,
or every map of the network into a folder.

:func:`write_map` and :func:`write_all` do the writing; :class:`MapExporter` asks where,
reports failures through the reporter and tells the status bar what was written.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

from cnn_explorer import imageio
from cnn_explorer.explorer.document import Document
from cnn_explorer.ui.common.messages import Reporter

PNG_SIDE = 256
"""Exported PNGs are upscaled by a whole factor to about this many pixels."""


def write_map(path: str, values: np.ndarray, rgb: Callable[[], np.ndarray]) -> None:
    """Write one ``(H, W)`` map, the format chosen by suffix (``.csv``, ``.npy``, else PNG
    of the colours ``rgb()`` returns, each cell a block of pixels)."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csv":
        np.savetxt(path, values, delimiter=",", fmt="%.9g")
    elif ext == ".npy":
        np.save(path, values, allow_pickle=False)
    else:
        colours = rgb()
        k = max(1, PNG_SIDE // max(colours.shape[:2]))
        imageio.save_png(np.kron(colours, np.ones((k, k, 1), np.uint8)), path)


def write_all(
    folder: str,
    maps: list[np.ndarray],
    write_one: Callable[[str, int, int], bool],
) -> int:
    """A PNG and a CSV per channel (through ``write_one(path, map, channel)``, which
    reports its own failure and returns False) and one ``maps.npz``. Returns the number of
    channels written; stops at the first failure."""
    n = 0
    for m, x in enumerate(maps):
        for c in range(x.shape[0]):
            base = os.path.join(folder, f"map{m}_ch{c}")
            if not (write_one(base + ".png", m, c) and write_one(base + ".csv", m, c)):
                return n
            n += 1
    arrays = {f"map{m}": x for m, x in enumerate(maps)}
    np.savez(os.path.join(folder, "maps.npz"), allow_pickle=False, **arrays)
    return n


class MapExporter(QObject):
    """File ▸ Export: the selected map (or the last one) or every map."""

    status = Signal(str, bool)  # (text, is_error) for the status bar

    def __init__(
        self,
        doc: Document,
        reporter: Reporter,
        colours: Callable[[int, int], np.ndarray],
        parent: QObject | None = None,
    ) -> None:
        """``colours(map, channel)`` is the map's ``(H, W, 3)`` rendering as displayed."""
        super().__init__(parent)
        self.doc = doc
        self.reporter = reporter
        self.colours = colours

    def selected_map(self) -> tuple[int, int]:
        """``(map, channel)`` of the selected cell, else the last map's first channel."""
        sel = self.doc.selection
        if sel is None:
            return len(self.doc.results.maps) - 1, 0
        return sel.map_index, sel.channel

    def export_selected_dialog(self, fmt: str) -> None:
        m, c = self.selected_map()
        path = self.reporter.save_path(
            f"Export map {m} channel {c}", f"{fmt.upper()} (*.{fmt})", f"map{m}_ch{c}.{fmt}"
        )
        if path:
            self.export_map(path, m, c)

    def export_map(self, path: str, map_index: int, channel: int) -> bool:
        """Write one map as PNG (colour-mapped, upscaled), CSV or .npy (by suffix)."""
        try:
            values = self.doc.results.maps[map_index][channel]
            write_map(path, values, lambda: self.colours(map_index, channel))
        except (OSError, IndexError, ValueError) as exc:
            self.reporter.error("Export failed", str(exc))
            return False
        self.status.emit(f"Exported {os.path.basename(path)}", False)
        return True

    def export_all_dialog(self) -> None:
        folder = self.reporter.folder_path("Export all maps to folder")
        if folder:
            self.export_all(folder)

    def export_all(self, folder: str) -> int:
        """PNG + CSV per channel and one ``maps.npz``; returns the number of maps written."""
        maps = self.doc.results.maps
        n = write_all(folder, maps, self.export_map)
        if n == sum(x.shape[0] for x in maps):
            self.status.emit(f"Exported {n} maps to {folder}", False)
        return n
