"""The dataset images that excite a filter most, and the patch of each that its strongest
cell sees (its receptive field in the input).

Why chunked: a forward pass keeps every intermediate map, so the dataset goes through in
chunks sized to :data:`CHUNK_BYTES`; only one max and its position per image are kept, so
memory stays bounded whatever the dataset's size. Ranking: highest maximum first, equal
maxima in dataset order; within an image the first maximal cell in row-major order (as
``argmax``); NaN ranks last.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnn_explorer.engine.network import Network
from cnn_explorer.insight.targets import (
    Cancel,
    InsightError,
    Progress,
    ProgressGen,
    as_batch,
    cancelled,
    forward_to,
)

CHUNK_BYTES = 64 << 20
"""Most bytes of maps one chunk of the dataset may produce."""

MAX_TOP = 64


@dataclass(frozen=True)
class TopPatch:
    """``index`` of the image in the dataset, the filter's maximum ``value`` on it, the
    ``cell (row, col)`` where it is reached in the layer's map, the receptive field's
    in-bounds ``box (top, bottom, left, right)`` (half-open) in the input, and ``patch``:
    the image cut to that box ``(C, bottom − top, right − left)``."""

    index: int
    value: float
    cell: tuple[int, int]
    box: tuple[int, int, int, int]
    patch: np.ndarray


def chunk_size(network: Network, input_shape: tuple[int, ...], layer: int) -> int:
    """Images per chunk so that the maps up to ``layer`` fit :data:`CHUNK_BYTES`."""
    shapes = network.output_shapes(input_shape)[: layer + 2]
    per_image = 2 * sum(int(np.prod(s)) for s in shapes) * 8  # maps + backward context
    return int(max(1, min(1024, CHUNK_BYTES // max(per_image, 1))))


def filter_maxima(
    network: Network,
    images: np.ndarray,
    layer: int,
    channel: int,
    cancel: Cancel = None,
    chunk: int | None = None,
) -> ProgressGen:
    """For each image of ``images (N, C, H, W)``, the maximum of channel ``channel`` of
    layer ``layer``'s output and the flat index of its first maximal cell. Yields progress
    per chunk; the last record's result is ``(maxima (N,) float64, argmax (N,) int)``."""
    n = len(images)
    if n == 0:
        raise InsightError("the dataset is empty")
    shape = tuple(int(s) for s in images.shape[1:])
    out_shape = network.output_shapes(shape)[layer + 1] if 0 <= layer < len(network) else ()
    if len(out_shape) != 3:
        raise InsightError(f"layer {layer + 1} does not output (channels, height, width) maps")
    if not 0 <= channel < out_shape[0]:
        raise InsightError(
            f"channel {channel} does not exist: layer {layer + 1} has {out_shape[0]}"
        )
    step = chunk or chunk_size(network, shape, layer)
    maxima = np.empty(n, np.float64)
    where = np.empty(n, np.intp)
    for start in range(0, n, step):
        if cancelled(cancel):
            return
        x = as_batch(network, images[start : start + step])
        m = forward_to(network, x, layer)[-1][:, channel].reshape(len(x), -1)
        m = np.where(np.isnan(m), -np.inf, m)
        where[start : start + len(x)] = m.argmax(axis=1)
        maxima[start : start + len(x)] = m.max(axis=1)
        done = min(n, start + step)
        yield Progress(done, n, f"{done}/{n} images")
    yield Progress(n, n, "done", result=(maxima, where))


def top_patches(
    network: Network,
    images: np.ndarray,
    layer: int,
    channel: int,
    k: int = 9,
    cancel: Cancel = None,
    chunk: int | None = None,
) -> ProgressGen:
    """The ``k`` images of ``images (N, C, H, W)`` whose channel ``channel`` of layer
    ``layer`` reaches the highest maximum, with the receptive-field patch of that cell
    (:meth:`Network.receptive_field`). The last record's result is a list of
    :class:`TopPatch`, best first."""
    if not 1 <= k <= MAX_TOP:
        raise InsightError(f"k must be 1 to {MAX_TOP}, not {k}")
    result = None
    for record in filter_maxima(network, images, layer, channel, cancel, chunk):
        if record.result is None:
            yield record
        else:
            result = record.result
    if result is None:
        return
    maxima, where = result
    order = np.argsort(-maxima, kind="stable")[:k]
    shape = tuple(int(s) for s in images.shape[1:])
    out_w = network.output_shapes(shape)[layer + 1][2]
    patches = []
    for i in order:
        row, col = divmod(int(where[i]), out_w)
        region = network.receptive_field(shape, layer, row, col, channel)[0]
        top, bottom = int(region.rows.min()), int(region.rows.max()) + 1
        left, right = int(region.cols.min()), int(region.cols.max()) + 1
        patch = np.array(images[i][:, top:bottom, left:right])
        patches.append(
            TopPatch(int(i), float(maxima[i]), (row, col), (top, bottom, left, right), patch)
        )
    yield Progress(len(images), len(images), f"top {len(patches)} images", result=patches)


__all__ = ["CHUNK_BYTES", "MAX_TOP", "TopPatch", "chunk_size", "filter_maxima", "top_patches"]
