"""2-D convolution and padding, forward and backward, in NumPy.

Semantics are those of ``torch.nn.functional.conv2d`` / ``nn.Conv2d``: a *cross-correlation*
(the kernel is not flipped; ``flip_kernel=True`` gives the textbook convolution), with
stride, dilation, any padding (numbers, ``"valid"``, ``"same"``) and the padding modes of
``nn.Conv2d`` (zeros, reflect, replicate, circular).

How it is fast (one path for every shape): the padded input is cut into *columns*
("im2col": one column per output pixel holding the ``C·kh·kw`` input values under the
kernel), then one matrix product ``weight (O, C·kh·kw) @ columns (C·kh·kw, Ho·Wo)`` gives
the output already in ``(O, Ho, Wo)`` layout. Three details matter on a CPU:

- The columns are built in *chunks* (a few images, or a band of output rows of one
  large image) sized to stay in cache between being written and being multiplied, instead
  of one huge temporary that makes the product wait on memory (4× faster on 1024² images).
- The bias rides along as one extra row of ones in the columns and one extra weight
  column, so it costs nothing instead of a full pass over the output; in the backward
  the same trick yields ``grad_bias`` from the ``grad_weight`` product.
- Scratch arrays are reused (:func:`cnn_explorer.engine._args.scratch`) and their rows
  padded so no leading dimension is a multiple of 4 KiB, which makes the BLAS product
  1.9× slower through cache-set aliasing (measured with 128² images, 16384 floats/row).
- Maps narrower than 128 use "wide" columns (:attr:`ConvGeometry.wide`): each kernel tap
  of an image becomes one long contiguous copy instead of one short copy per row (im2col
  5×, col2im 3.5× faster on a 64×8×14² batch; a conv's training step on 64–112-wide
  maps 10–25%).
- The weight gradient, a product summed over tens of thousands of columns, is computed
  in blocks where that is faster (:func:`_gram`).
- The input gradient is accumulated channel-major ``(C, N, Hp, Wp)``, the order of the
  column rows, and transposed once at the end (:func:`_col2im_add`).
- When training (``conv2d_forward(keep_columns=True)``) the forward's columns are kept
  for the backward if they fit in one chunk, instead of being built twice.

Measured and left out (engine speed issue; ``python -m cnn_explorer.bench.conv_knobs``
re-measures the two constants): splitting the column copy over two threads gains 0–15%
of the copy (it already runs at memcpy speed, ~14 GB/s here, and NumPy keeps the GIL on
rows shorter than a few hundred values); splitting the col2im adds gains nothing but on
one shape; splitting a product over two Python threads with one BLAS thread each gains
nothing either, and the BLAS thread count is the application's to set, not the engine's.

The naive nested-loop version lives in ``tests/engine/reference.py`` and is the oracle
the tests compare against.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
from numpy.lib.stride_tricks import as_strided

from cnn_explorer.engine._args import (
    IntOrPair,
    Padding4,
    PaddingSpec,
    Pair,
    as_float,
    as_float_array,
    as_pair,
    check_padding_mode,
    normalise_padding,
    restore_batch,
    result_dtype,
    scratch,
)
from cnn_explorer.engine.errors import ShapeError

# NaN and inf are legal data (reported, never errors): compute through them silently.
_COMPUTE_THROUGH = np.errstate(over="ignore", invalid="ignore")

# Bytes of im2col columns built at once: written, then read straight back by the product
# while still in the (32 MiB) L3 cache. Measured on a 2-core EPYC: 8 MiB is within 5% of
# the best for every benchmark shape; 1 MiB costs 12–80%, 2 MiB 3–56%, 4 MiB 0–40%,
# 16 MiB within ±10% (re-measured with bench.conv_knobs), a whole 40 MiB image 4×.
_CHUNK_BYTES = 8 * 1024 * 1024
# Output widths below this use "wide" columns (see ConvGeometry.wide). Measured (median
# of per-round ratios, 15–20 interleaved rounds, 2-core EPYC, both OpenBLAS kernels):
# wide columns make widths 64–112 0–10% faster forward and 10–25% forward + backward;
# at 128–192 the forward is 1–7% slower (the crop copy after the product, which plain
# single-image columns skip), at 256 22% slower. `python -m cnn_explorer.bench.conv_knobs`.
_WIDE_BELOW = 128
# Work (K·O·columns) per product when summing grad_weight over many columns; see _gram.
_GRAM_BLOCK_WORK = 600_000


# --------------------------------------------------------------------------- padding


def _check_pad_fits(h: int, w: int, pad: Padding4, mode: str) -> None:
    """Raise ShapeError where torch refuses: reflect needs pad < size, circular pad ≤ size.

    Reflect mirrors without repeating the edge, so it has only ``size - 1`` values to
    mirror; circular wraps around once at most; replicate needs a non-empty input.
    """
    t, b, left, r = pad
    for side, p, n, axis in (
        ("top", t, h, "rows"),
        ("bottom", b, h, "rows"),
        ("left", left, w, "columns"),
        ("right", r, w, "columns"),
    ):
        if p == 0:
            continue
        if mode == "reflect" and p >= n:
            raise ShapeError(
                f"reflect padding of {p} on the {side} needs an input with more than {p} "
                f"{axis}, got {n}: use padding ≤ {max(n - 1, 0)} or padding_mode "
                "'replicate' or 'zeros'"
            )
        if mode == "circular" and p > n:
            raise ShapeError(
                f"circular padding of {p} on the {side} wraps around more than once on an "
                f"input of {n} {axis}: use padding ≤ {n} or another padding_mode"
            )
        if mode == "replicate" and n == 0:
            raise ShapeError(f"replicate padding needs at least one of the input's {axis}")


def _fill_pad(out: np.ndarray, pad: Padding4, mode: str) -> None:
    """Fill the border of ``out`` (…, Hp, Wp) whose interior already holds the input.

    Columns first (interior rows only), then whole rows, so corners come out right for
    every mode (they are the 2-D composition of the two 1-D paddings, as in torch).
    """
    t, b, left, r = pad
    hp, wp = out.shape[-2:]
    h, w = hp - t - b, wp - left - r
    mid = out[..., t : t + h, :]
    if mode == "zeros":
        mid[..., :left] = 0
        mid[..., left + w :] = 0
        out[..., :t, :] = 0
        out[..., t + h :, :] = 0
        return
    if mode == "replicate":
        mid[..., :left] = mid[..., left : left + 1]
        mid[..., left + w :] = mid[..., left + w - 1 : left + w]
        out[..., :t, :] = out[..., t : t + 1, :]
        out[..., t + h :, :] = out[..., t + h - 1 : t + h, :]
    elif mode == "reflect":
        mid[..., :left] = mid[..., left + 1 : 2 * left + 1][..., ::-1]
        mid[..., left + w :] = mid[..., left + w - 1 - r : left + w - 1][..., ::-1]
        out[..., :t, :] = out[..., t + 1 : 2 * t + 1, :][..., ::-1, :]
        out[..., t + h :, :] = out[..., t + h - 1 - b : t + h - 1, :][..., ::-1, :]
    else:  # circular
        mid[..., :left] = mid[..., w : w + left]
        mid[..., left + w :] = mid[..., left : left + r]
        out[..., :t, :] = out[..., h : h + t, :]
        out[..., t + h :, :] = out[..., t : t + b, :]


def _pad_into(x: np.ndarray, pad: Padding4, mode: str, out: np.ndarray) -> np.ndarray:
    """Write ``x`` (…, H, W) padded by ``pad`` = (top, bottom, left, right) into ``out``."""
    t, _, left, _ = pad
    h, w = x.shape[-2:]
    out[..., t : t + h, left : left + w] = x
    _fill_pad(out, pad, mode)
    return out


def pad2d(x: object, padding: PaddingSpec, mode: str = "zeros") -> np.ndarray:
    """Pad the last two axes of ``x`` (…, H, W) → (…, H+top+bottom, W+left+right).

    ``padding`` is an int, ``(ph, pw)`` or ``(top, bottom, left, right)``; ``mode`` is
    ``"zeros"``, ``"reflect"`` (mirror without repeating the edge), ``"replicate"`` (repeat
    the edge) or ``"circular"`` (wrap around), exactly as ``nn.Conv2d(padding_mode=...)``.
    Returns a new array (same float dtype; ints/bools become float32).
    """
    check_padding_mode(mode)
    arr = np.asarray(x)
    if arr.ndim < 2:
        raise ShapeError(f"pad2d needs an array with at least 2 dimensions, got {arr.ndim}-D")
    arr = as_float(arr, "input", (arr.ndim,))
    pad = normalise_padding(padding)
    h, w = arr.shape[-2:]
    _check_pad_fits(h, w, pad, mode)
    t, b, left, r = pad
    out = np.empty((*arr.shape[:-2], h + t + b, w + left + r), arr.dtype)
    return _pad_into(arr, pad, mode, out)


def _source_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each padded position along one axis, the input index it copies (1-D, ints)."""
    i = np.arange(-before, n + after)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    if mode == "circular":
        return i % n
    i = np.abs(i)  # reflect: mirror at 0 ...
    return np.where(i > n - 1, 2 * (n - 1) - i, i)  # ... and at n - 1


def _pad2d_backward(grad: np.ndarray, padding: PaddingSpec, mode: str) -> np.ndarray:
    """Gradient of :func:`pad2d`: (…, Hp, Wp) → (…, H, W) (undecorated implementation).

    Every padded cell is a copy of some input cell, so its gradient is added back onto
    that cell ("folded"); zeros padding simply drops the border. Loops over border rows and
    columns only (a few numpy calls each), never over pixels.
    """
    check_padding_mode(mode)
    t, b, left, r = normalise_padding(padding)
    hp, wp = grad.shape[-2:]
    h, w = hp - t - b, wp - left - r
    cols = grad[..., :, left : left + w].copy()  # (…, Hp, W)
    if mode != "zeros":
        src = _source_index(w, left, r, mode)
        for c in [*range(left), *range(left + w, wp)]:
            cols[..., :, src[c]] += grad[..., :, c]
    out = cols[..., t : t + h, :].copy()  # (…, H, W)
    if mode != "zeros":
        src = _source_index(h, t, b, mode)
        for row in [*range(t), *range(t + h, hp)]:
            out[..., src[row], :] += cols[..., row, :]
    return out


@_COMPUTE_THROUGH
def pad2d_backward(grad: np.ndarray, padding: PaddingSpec, mode: str = "zeros") -> np.ndarray:
    """Gradient of :func:`pad2d`: (…, Hp, Wp) → (…, H, W).

    Every padded cell is a copy of some input cell, so its gradient is added back onto
    that cell ("folded"); zeros padding simply drops the border.
    """
    return _pad2d_backward(np.asarray(grad), padding, mode)


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class ConvGeometry:
    """All the sizes of one convolution, checked once.

    Input ``(n, c, h, w)``, kernel ``(out_channels, c, *kernel)``, output
    ``(n, out_channels, out_h, out_w)`` with ``out = ⌊(in + pads − d·(k−1) − 1) / s⌋ + 1``.
    """

    n: int
    c: int
    h: int
    w: int
    out_channels: int
    kernel: Pair
    stride: Pair
    dilation: Pair
    padding: Padding4
    out_h: int
    out_w: int

    @property
    def padded_shape(self) -> tuple[int, int, int, int]:
        """Shape of the padded input ``(N, C, H + top + bottom, W + left + right)``."""
        t, b, left, r = self.padding
        return (self.n, self.c, self.h + t + b, self.w + left + r)

    @property
    def k(self) -> int:
        """Rows of an im2col column: ``C · kh · kw`` (one per kernel weight)."""
        return self.c * self.kernel[0] * self.kernel[1]

    @property
    def wide(self) -> bool:
        """Compute every output row over the full padded width, then crop.

        For narrow maps (a 14-pixel row) NumPy's strided copies spend their time starting
        rows, not copying. With stride 1 along W, output column ``x`` of tap ``(i, j)``
        reads padded column ``x + j·d``, so over the *padded* width a whole tap of an
        image is one contiguous run (rows continue into the next row) and im2col/col2im
        become a few long copies. The ``(kw − 1)·d`` extra columns per row are discarded.
        """
        return self.stride[1] == 1 and self.out_w < _WIDE_BELOW

    @property
    def col_w(self) -> int:
        """Columns per output row in the im2col layout: padded width if wide, else Wo."""
        return self.padded_shape[3] if self.wide else self.out_w


def _too_small_message(
    axis: str, size: int, pads: tuple[int, int], kernel: int, dilation: int
) -> str:
    eff = dilation * (kernel - 1) + 1
    padded = size + pads[0] + pads[1]
    need = -(-(eff - size) // 2)  # per-side padding that would make it fit
    kernel_text = f"kernel {kernel}" + (
        f" with dilation {dilation} (effective {eff})" if dilation > 1 else ""
    )
    return (
        f"{kernel_text} is larger than the padded input {padded} ({axis}: {size} + padding "
        f"{pads[0]} + {pads[1]}): use padding ≥ {need} or a smaller kernel"
        + (" or dilation" if dilation > 1 else "")
    )


def conv_geometry(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
) -> ConvGeometry:
    """Validate a convolution's shapes and return its :class:`ConvGeometry`.

    ``x_shape`` is ``(N, C, H, W)``, ``w_shape`` ``(O, C, kh, kw)``. Raises ShapeError for a
    channel mismatch, a non-positive kernel/stride/dilation or a kernel larger than the
    padded input (which is also the only way to get an empty output).
    """
    n, c, h, w = x_shape
    o, wc, kh, kw = w_shape
    if kh < 1 or kw < 1:
        raise ShapeError(f"kernel size must be ≥ 1, got {kh}×{kw}: use a kernel of at least 1×1")
    if wc != c:
        raise ShapeError(
            f"input has {c} channel{'s' if c != 1 else ''} but the kernel expects {wc} "
            f"(weight shape {tuple(w_shape)}): give the kernel {c} input channel"
            f"{'s' if c != 1 else ''} or change the input"
        )
    stride_p = as_pair(stride, "stride")
    dil = as_pair(dilation, "dilation")
    pad = normalise_padding(padding, (kh, kw), dil, stride_p)
    outs = []
    for axis, size, pads, k, d, s in (
        ("height", h, pad[:2], kh, dil[0], stride_p[0]),
        ("width", w, pad[2:], kw, dil[1], stride_p[1]),
    ):
        span = size + pads[0] + pads[1] - d * (k - 1)
        if span < 1:
            raise ShapeError(_too_small_message(axis, size, pads, k, d))
        outs.append((span - 1) // s + 1)
    return ConvGeometry(n, c, h, w, o, (kh, kw), stride_p, dil, pad, outs[0], outs[1])


# --------------------------------------------------------------------------- im2col


def _chunks(g: ConvGeometry, rows_k: int, itemsize: int) -> Iterator[tuple[int, int, int, int]]:
    """Split the work into ``(n0, n1, r0, r1)`` = images n0..n1, output rows r0..r1.

    Several whole images per chunk when an image's columns are small (the product then
    runs batched), bands of output rows of one image when they are large (so a chunk's
    columns stay cache-resident). ``rows_k`` is the number of column rows (K or K+1).
    """
    per_row = rows_k * g.col_w * itemsize
    rows = max(1, _CHUNK_BYTES // max(per_row, 1))
    if rows >= g.out_h:
        images = max(1, rows // g.out_h)
        for n0 in range(0, g.n, images):
            yield n0, min(g.n, n0 + images), 0, g.out_h
    else:
        for n0 in range(g.n):
            for r0 in range(0, g.out_h, rows):
                yield n0, n0 + 1, r0, min(g.out_h, r0 + rows)


def _leading_dim(length: int) -> int:
    """Row length for a column buffer: pad rows that are a multiple of 64 floats.

    BLAS reads the columns row by row; rows 2^k floats apart map to the same cache sets
    and the product slows down ~2× (measured at 16384 floats), so a small gap is added.
    """
    return length + 16 if length % 64 == 0 else length


def _im2col(
    xp: np.ndarray,
    g: ConvGeometry,
    chunk: tuple[int, int, int, int],
    with_ones: bool,
    keep: bool = False,
) -> np.ndarray:
    """Columns of a chunk: a ``(K [+1], n·rows·Wc)`` scratch view, ``K = C·kh·kw``.

    Row ``c·kh·kw + i·kw + j`` holds input tap ``(c, i, j)`` for every output pixel of the
    chunk's ``n`` images (image-major), matching ``weight.reshape(O, K)``, so the whole
    chunk is one matrix product however many images it holds; an optional last row of
    ones carries the bias. Built by one strided copy from a sliding-window view of ``xp``.
    Scratch memory, unless ``keep`` (a new array the caller may hold on to).
    """
    n0, n1, r0, r1 = chunk
    n, rows = n1 - n0, r1 - r0
    kh, kw = g.kernel
    sh, sw = g.stride
    dh, dw = g.dilation
    wc = g.col_w
    length = n * rows * wc
    k1 = g.k + with_ones
    ld = _leading_dim(length)
    buf = np.empty((k1, ld), xp.dtype) if keep else scratch("conv_cols", (k1, ld), xp.dtype)
    it = xp.dtype.itemsize
    dest = as_strided(
        buf,
        shape=(g.c, kh, kw, n, rows, wc),
        strides=(kh * kw * ld * it, kw * ld * it, ld * it, rows * wc * it, wc * it, it),
    )
    sub = xp[n0:n1, :, r0 * sh :, :]
    s_n, s_c, s_h, s_w = sub.strides
    taps = as_strided(  # wide rows run past the row end: _pad_input leaves room for that
        sub,
        shape=(g.c, kh, kw, n, rows, wc),
        strides=(s_c, dh * s_h, dw * s_w, s_n, sh * s_h, sw * s_w),
        writeable=False,
    )
    np.copyto(dest, taps)
    if with_ones:
        buf[g.k, :length] = 1
    return buf[:, :length]


def _gram(cols: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """``cols @ gradᵀ``: ``(K1, L) × (O, L) → (K1, O)``, the weight gradient of a chunk.

    A product with a long inner dimension and a tiny result (a 10×8 gradient summed over
    50 000 columns) is up to 4× faster in blocks of columns that OpenBLAS keeps on one
    thread than in one call it splits across threads (measured); big results are left
    to a single call. The ``cols @ gradᵀ`` orientation itself is 1.8× faster than
    ``grad @ colsᵀ`` here.
    """
    k1, length = cols.shape
    step = _GRAM_BLOCK_WORK // max(k1 * grad.shape[0], 1)
    if step >= length or step < 1024:
        return cols @ grad.T
    out = np.zeros((k1, grad.shape[0]), cols.dtype)
    for i in range(0, length, step):
        out += cols[:, i : i + step] @ grad[:, i : i + step].T
    return out


def _col2im_add(
    gcols: np.ndarray, g: ConvGeometry, chunk: tuple[int, int, int, int], gxp_c: np.ndarray
) -> None:
    """Adjoint of :func:`_im2col`: add column gradients ``(K, n·rows·Wc)`` into ``gxp_c``.

    ``gxp_c`` is the padded-input gradient in *channel-major* layout ``(C, N, Hp, Wp)``
    (see :func:`_grad_canvas`): the column rows come channel-major too, so both sides of
    each add walk memory in the same order (1.2× faster than adding into ``(N, C, …)``).
    One strided add per kernel tap ``(i, j)``; taps of overlapping windows accumulate.
    Wide columns write past row ends too (zeros, as their gradient columns are zero), so
    ``gxp_c`` needs the same spare row as the padded input.
    """
    n0, n1, r0, r1 = chunk
    kh, kw = g.kernel
    sh, sw = g.stride
    dh, dw = g.dilation
    rows, wc = r1 - r0, g.col_w
    g6 = gcols.reshape(g.c, kh, kw, n1 - n0, rows, wc)
    for i in range(kh):
        for j in range(kw):
            sub = gxp_c[:, n0:n1, r0 * sh + i * dh :, j * dw :]
            s_c, s_n, s_h, s_w = sub.strides
            view = as_strided(
                sub, shape=(g.c, n1 - n0, rows, wc), strides=(s_c, s_n, sh * s_h, sw * s_w)
            )
            view += g6[:, i, j]


def _grad_canvas(g: ConvGeometry, dtype: np.dtype) -> np.ndarray:
    """Zeroed scratch ``(C, N, Hp, Wp)`` for the padded input's gradient, channel-major
    (:func:`_col2im_add`), with the spare zero row per plane that wide columns need."""
    n, c, hp, wp = g.padded_shape
    buf = scratch("conv_gxp", (c, n, hp + g.wide, wp), dtype)
    buf.fill(0)
    return buf[:, :, :hp]


def _input_grad(gxp_c: np.ndarray, g: ConvGeometry, mode: str) -> np.ndarray:
    """``(C, N, Hp, Wp)`` padded-input gradient → a new ``(N, C, H, W)`` input gradient.

    Zeros padding just drops the border (one transposing copy); other modes fold the
    border back onto the cells it copied (:func:`_pad2d_backward`) first.
    """
    t, _, left, _ = g.padding
    if mode == "zeros" or not any(g.padding):
        inner = gxp_c[:, :, t : t + g.h, left : left + g.w]
    else:
        inner = _pad2d_backward(gxp_c, g.padding, mode)
    out = np.empty((g.n, g.c, g.h, g.w), gxp_c.dtype)
    out[...] = inner.transpose(1, 0, 2, 3)
    return out


# --------------------------------------------------------------------------- conv2d


@dataclass(frozen=True)
class Conv2dContext:
    """What :func:`conv2d_backward` needs: the padded input ``(N, C, Hp, Wp)``, the weight
    matrix used forward ``(O, K [+1 bias column])`` (already flipped for ``flip_kernel``),
    the configuration, and the forward's im2col ``columns`` when it kept them (see
    :func:`conv2d_forward`). Treat as opaque.

    Without padding, ``padded_input`` *is* the caller's input array (no copy, as torch
    saves tensors): do not modify it in place before calling the backward."""

    padded_input: np.ndarray
    weight_matrix: np.ndarray
    geometry: ConvGeometry
    padding_mode: str
    flip_kernel: bool
    has_bias: bool
    unbatched: bool
    columns: np.ndarray | None = None


def _weight_matrix(weight: np.ndarray, bias: np.ndarray | None, flip: bool) -> np.ndarray:
    """``(O, C, kh, kw)`` [+ bias (O,)] → ``(O, K)`` or ``(O, K + 1)`` (bias as last column)."""
    o = weight.shape[0]
    k = weight[0].size
    w = weight[:, :, ::-1, ::-1] if flip else weight
    wm = np.empty((o, k + (bias is not None)), weight.dtype)
    wm[:, :k] = w.reshape(o, k)
    if bias is not None:
        wm[:, k] = bias
    return wm


def _prepare(
    x: object,
    weight: object,
    bias: object,
    stride: IntOrPair,
    padding: PaddingSpec,
    dilation: IntOrPair,
    padding_mode: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, ConvGeometry, bool]:
    """Validate and convert everything; returns ``(x4, weight, bias, geometry, unbatched)``
    with x, weight and bias in one common float dtype."""
    check_padding_mode(padding_mode)
    x4, unbatched = as_float_array(x, "input")
    w = as_float(weight, "kernel weight", (4,))
    b = None
    if bias is not None:
        b = as_float(bias, "bias", (1,))
        if b.shape != (w.shape[0],):
            raise ShapeError(
                f"bias must have one value per output channel ({w.shape[0]}), got shape "
                f"{b.shape}: give {w.shape[0]} bias values"
            )
    g = conv_geometry(x4.shape, w.shape, stride, padding, dilation)
    _check_pad_fits(g.h, g.w, g.padding, padding_mode)
    dtype = result_dtype(x4, w, b)
    x4, w = x4.astype(dtype, copy=False), w.astype(dtype, copy=False)
    b = None if b is None else b.astype(dtype, copy=False)
    return x4, w, b, g, unbatched


def _padded_buffer(g: ConvGeometry, dtype: np.dtype, name: str | None) -> np.ndarray:
    """An ``(N, C, Hp, Wp)`` array (scratch ``name``, or new when None) for the padded
    input. For wide columns it is a view of a buffer with one spare zero row per plane,
    because wide taps read up to ``(kw − 1)·d`` cells past the last row."""
    n, c, hp, wp = g.padded_shape
    shape = (n, c, hp + g.wide, wp)
    buf = np.empty(shape, dtype) if name is None else scratch(name, shape, dtype)
    if g.wide:
        buf[:, :, hp:] = 0
    return buf[:, :, :hp]


def _pad_input(x4: np.ndarray, g: ConvGeometry, mode: str, reuse: bool) -> np.ndarray:
    """The padded input; a scratch buffer when ``reuse`` (inference), else a new array.
    Without padding (and wide columns) it is ``x4`` itself, no copy."""
    if not any(g.padding) and not g.wide:
        return x4
    out = _padded_buffer(g, x4.dtype, "conv_xp" if reuse else None)
    return _pad_into(x4, g.padding, mode, out)


def _forward(
    xp: np.ndarray, wm: np.ndarray, g: ConvGeometry, has_bias: bool, keep_columns: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """``out = wm @ columns`` chunk by chunk: ``((N, O, Ho, Wo), kept columns or None)``.

    A narrow one-image chunk is written straight into the result; otherwise the product
    comes out as ``(O, n, rows, Wc)`` and is cropped/transposed into place (one copy, much
    cheaper than ``n`` small matrix products). With ``keep_columns`` and a single chunk
    (columns ≤ ``_CHUNK_BYTES``, so the memory kept is bounded) the columns are built in a
    new array and returned for the backward to reuse.
    """
    o = g.out_channels
    out = np.empty((g.n, o, g.out_h, g.out_w), xp.dtype)
    out3 = out.reshape(g.n, o, g.out_h * g.out_w)
    wo = g.out_w
    chunks = list(_chunks(g, wm.shape[1], xp.dtype.itemsize))
    keep = keep_columns and len(chunks) == 1
    for chunk in chunks:
        cols = _im2col(xp, g, chunk, has_bias, keep)
        n0, n1, r0, r1 = chunk
        if n1 - n0 == 1 and not g.wide:
            np.matmul(wm, cols, out=out3[n0, :, r0 * wo : r1 * wo])
        else:
            tmp = scratch("conv_out", (o, n1 - n0, r1 - r0, g.col_w), xp.dtype)
            np.matmul(wm, cols, out=tmp.reshape(o, -1))
            out[n0:n1, :, r0:r1] = tmp[..., :wo].transpose(1, 0, 2, 3)
    return out, (cols if keep else None)


@_COMPUTE_THROUGH
def conv2d(
    x: object,
    weight: object,
    bias: object = None,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    padding_mode: str = "zeros",
    flip_kernel: bool = False,
) -> np.ndarray:
    """2-D cross-correlation like ``torch.nn.functional.conv2d`` (inference only).

    Shapes: ``x`` (N, C, H, W) or (C, H, W); ``weight`` (O, C, kh, kw); ``bias`` (O,) or
    None → (N, O, Ho, Wo) or (O, Ho, Wo), ``Ho = ⌊(H + top + bottom − d·(kh−1) − 1)/s⌋ + 1``.
    ``out[n, o, y, x] = bias[o] + Σ_{c,i,j} w[o, c, i, j] · xpad[n, c, y·s + i·d, x·s + j·d]``.
    ``padding``: int, (ph, pw), (top, bottom, left, right), "valid" or "same" (torch rules);
    ``padding_mode``: zeros | reflect | replicate | circular; ``flip_kernel=True`` rotates
    the kernel by 180° (true convolution). Raises ShapeError for impossible configurations.
    """
    x4, w, b, g, unbatched = _prepare(x, weight, bias, stride, padding, dilation, padding_mode)
    xp = _pad_input(x4, g, padding_mode, reuse=True)
    out, _ = _forward(xp, _weight_matrix(w, b, flip_kernel), g, b is not None)
    return restore_batch(out, unbatched)


@_COMPUTE_THROUGH
def conv2d_forward(
    x: object,
    weight: object,
    bias: object = None,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    padding_mode: str = "zeros",
    flip_kernel: bool = False,
    *,
    keep_columns: bool = False,
) -> tuple[np.ndarray, Conv2dContext]:
    """:func:`conv2d` that also returns the context :func:`conv2d_backward` needs.

    The context keeps a reference to the padded input. ``keep_columns=True`` (training,
    where a backward surely follows) also keeps the im2col columns when they fit in one
    chunk (≤ 8 MiB), so the backward does not rebuild them (saves ~10% of a small
    layer's backward); otherwise they are rebuilt, as they are ~``kh·kw``× the input.
    """
    x4, w, b, g, unbatched = _prepare(x, weight, bias, stride, padding, dilation, padding_mode)
    xp = _pad_input(x4, g, padding_mode, reuse=False)
    wm = _weight_matrix(w, b, flip_kernel)
    out, cols = _forward(xp, wm, g, b is not None, keep_columns)
    ctx = Conv2dContext(xp, wm, g, padding_mode, flip_kernel, b is not None, unbatched, cols)
    return restore_batch(out, unbatched), ctx


@overload
def conv2d_backward(
    grad_out: object, ctx: Conv2dContext, need_input_grad: Literal[True] = ...
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]: ...
@overload
def conv2d_backward(
    grad_out: object, ctx: Conv2dContext, need_input_grad: bool
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]: ...
@_COMPUTE_THROUGH
def conv2d_backward(
    grad_out: object, ctx: Conv2dContext, need_input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv2d_forward` given ``grad_out`` shaped like its output.

    Returns ``(grad_input, grad_weight, grad_bias)`` shaped like ``x``, ``weight`` and
    ``bias`` (``None`` when there was no bias). ``need_input_grad=False`` skips (and
    returns ``None`` for) ``grad_input``: the first layer of a network being trained
    does not need it, and it is a third of the backward's work. Per chunk of columns ``X``:
    ``grad_W += G @ Xᵀ`` (the bias column of ``X`` is ones, giving ``grad_bias = Σ G``)
    and ``grad_X = Wᵀ @ G``, which col2im adds back onto the padded input; padded cells
    are then folded back onto the input cells they copied (reflect/replicate/circular).
    """
    g = ctx.geometry
    xp, wm = ctx.padded_input, ctx.weight_matrix
    go = np.asarray(grad_out)
    expected = (g.n, g.out_channels, g.out_h, g.out_w)
    if ctx.unbatched and go.shape == expected[1:]:
        go = go[np.newaxis]
    if go.shape != expected:
        raise ShapeError(f"grad_out must have the output's shape {expected}, got {go.shape}")
    go = go.astype(xp.dtype, copy=False)
    go3 = go.reshape(g.n, g.out_channels, g.out_h * g.out_w)
    k, k1, wo = g.k, wm.shape[1], g.out_w
    w_t = np.ascontiguousarray(wm[:, :k].T)  # (K, O)
    grad_wm = np.zeros((k1, g.out_channels), xp.dtype)  # transposed: see _gram
    # Wide columns read cells outside the windows, where the gradient is 0; 0·inf = NaN
    # would leak into grad_weight, so such columns are zeroed when the input is not finite.
    clean_cols = g.wide and not np.isfinite(xp).all()
    gxp_c = _grad_canvas(g, xp.dtype) if need_input_grad else xp
    for chunk in _chunks(g, k1, xp.dtype.itemsize):
        n0, n1, r0, r1 = chunk
        # (K1, n·rows·Wc); kept columns exist only when there is a single chunk
        cols = ctx.columns if ctx.columns is not None else _im2col(xp, g, chunk, ctx.has_bias)
        if n1 - n0 == 1 and not g.wide:
            gch = go3[n0, :, r0 * wo : r1 * wo]  # (O, L)
        else:  # same image-major order as cols; zero gradient on the wide extra columns
            buf = scratch("conv_gout", (g.out_channels, n1 - n0, r1 - r0, g.col_w), xp.dtype)
            buf[..., :wo] = go[n0:n1, :, r0:r1].transpose(1, 0, 2, 3)
            buf[..., wo:] = 0
            gch = buf.reshape(g.out_channels, -1)
            if clean_cols:
                cols.reshape(k1, n1 - n0, r1 - r0, g.col_w)[..., wo:] = 0
        grad_wm += _gram(cols, gch)
        if need_input_grad:
            gcols = scratch("conv_gcols", (k, gch.shape[1]), xp.dtype)
            np.matmul(w_t, gch, out=gcols)
            _col2im_add(gcols, g, chunk, gxp_c)
    grad_x = None
    if need_input_grad:
        grad_x = restore_batch(_input_grad(gxp_c, g, ctx.padding_mode), ctx.unbatched)
    kh, kw = g.kernel
    grad_w = grad_wm[:k].T.reshape(g.out_channels, g.c, kh, kw)
    if ctx.flip_kernel:
        grad_w = grad_w[:, :, ::-1, ::-1]
    grad_b = grad_wm[k].copy() if ctx.has_bias else None
    return grad_x, np.ascontiguousarray(grad_w), grad_b


__all__ = [
    "Conv2dContext",
    "ConvGeometry",
    "conv2d",
    "conv2d_backward",
    "conv2d_forward",
    "conv_geometry",
    "pad2d",
    "pad2d_backward",
]
