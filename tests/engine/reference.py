"""Naive, obviously-correct nested-loop versions of conv2d, pad2d and the pools.

Used only as test oracles for the fast engine code: every output cell is computed
straight from its textbook definition, one scalar at a time, in float64. Slow on
purpose: keep test inputs small. Conventions as the engine: ``x`` (N, C, H, W),
``weight`` (O, C, kh, kw), padding ``(top, bottom, left, right)``.
"""

from __future__ import annotations

import math

import numpy as np


def source_index(i: int, n: int, mode: str) -> int | None:
    """Input index a padded coordinate ``i`` (may be < 0 or ≥ n) reads, or None for zero."""
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return None
    if mode == "replicate":
        return 0 if i < 0 else n - 1
    if mode == "circular":
        return i % n
    if mode == "reflect":
        return -i if i < 0 else 2 * (n - 1) - i
    raise ValueError(mode)


def pad2d_naive(x: np.ndarray, pad: tuple[int, int, int, int], mode: str) -> np.ndarray:
    """Pad the last two axes of ``x`` (…, H, W) cell by cell."""
    t, b, left, r = pad
    h, w = x.shape[-2:]
    out = np.zeros((*x.shape[:-2], h + t + b, w + left + r), np.float64)
    for py in range(h + t + b):
        for px in range(w + left + r):
            sy = source_index(py - t, h, mode)
            sx = source_index(px - left, w, mode)
            if sy is not None and sx is not None:
                out[..., py, px] = x[..., sy, sx]
    return out


def conv2d_naive(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: tuple[int, int] = (1, 1),
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilation: tuple[int, int] = (1, 1),
    mode: str = "zeros",
    flip_kernel: bool = False,
) -> np.ndarray:
    """``out[n,o,y,x] = b[o] + Σ_{c,i,j} w[o,c,i,j] · xpad[n,c,y·sh+i·dh, x·sw+j·dw]``."""
    xp = pad2d_naive(np.asarray(x, np.float64), pad, mode)
    w = np.asarray(weight, np.float64)
    if flip_kernel:
        w = w[:, :, ::-1, ::-1]
    n, c, hp, wp = xp.shape
    o, _, kh, kw = w.shape
    sh, sw = stride
    dh, dw = dilation
    ho = (hp - dh * (kh - 1) - 1) // sh + 1
    wo = (wp - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, ho, wo))
    for ni in range(n):
        for oi in range(o):
            for y in range(ho):
                for xx in range(wo):
                    total = 0.0 if bias is None else float(bias[oi])
                    for ci in range(c):
                        for i in range(kh):
                            for j in range(kw):
                                total += (
                                    w[oi, ci, i, j] * xp[ni, ci, y * sh + i * dh, xx * sw + j * dw]
                                )
                    out[ni, oi, y, xx] = total
    return out


def pool_output_size(
    n: int, k: int, s: int, pad_before: int, pad_after: int, d: int, ceil_mode: bool
) -> int:
    """Torch's pooling output size, including the ceil_mode rule that the last window must
    start inside the input or the leading padding."""
    span = n + pad_before + pad_after - d * (k - 1) - 1
    out = (math.ceil(span / s) if ceil_mode else math.floor(span / s)) + 1
    if ceil_mode and (out - 1) * s >= n + pad_before:
        out -= 1
    return out


def max_pool2d_naive(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilation: tuple[int, int] = (1, 1),
    ceil_mode: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Max over each window's in-bounds taps → ``(out, argmax)``.

    ``argmax`` holds the flat input index ``y·W + x`` torch's kernel picks: the first
    in-bounds tap, replaced by any later tap that is strictly greater or NaN; −1 for a
    window with no input cell at all (possible with dilation), whose output is −∞.
    """
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    t, b, left, r = pad
    ho = pool_output_size(h, kh, sh, t, b, dh, ceil_mode)
    wo = pool_output_size(w, kw, sw, left, r, dw, ceil_mode)
    out = np.zeros((n, c, ho, wo))
    arg = np.zeros((n, c, ho, wo), np.int64)
    for ni in range(n):
        for ci in range(c):
            for y in range(ho):
                for xx in range(wo):
                    best, best_i = -np.inf, -1
                    for i in range(kh):
                        for j in range(kw):
                            iy, ix = y * sh - t + i * dh, xx * sw - left + j * dw
                            if not (0 <= iy < h and 0 <= ix < w):
                                continue
                            v = x[ni, ci, iy, ix]
                            if best_i < 0 or v > best or math.isnan(v):
                                best, best_i = v, iy * w + ix
                    out[ni, ci, y, xx], arg[ni, ci, y, xx] = best, best_i
    return out, arg


def max_pool2d_backward_naive(
    grad: np.ndarray, arg: np.ndarray, input_shape: tuple[int, ...]
) -> np.ndarray:
    """Route each output gradient to its argmax input cell (summing where windows share it)."""
    n, c, h, w = input_shape
    gx = np.zeros((n, c, h * w))
    for ni in range(n):
        for ci in range(c):
            for g, a in zip(grad[ni, ci].ravel(), arg[ni, ci].ravel(), strict=True):
                if a >= 0:  # a window without input cells has nowhere to send its gradient
                    gx[ni, ci, a] += g
    return gx.reshape(input_shape)


def avg_pool2d_naive(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Mean over each window, with torch's divisor.

    The window is first clipped to the padded input (a ceil_mode window hanging past the
    bottom/right padding loses those cells); ``count_include_pad`` divides by that clipped
    size, otherwise by the number of real input cells in it.
    """
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    t, b, left, r = pad
    ho = pool_output_size(h, kh, sh, t, b, 1, ceil_mode)
    wo = pool_output_size(w, kw, sw, left, r, 1, ceil_mode)
    out = np.zeros((n, c, ho, wo))
    for ni in range(n):
        for ci in range(c):
            for y in range(ho):
                for xx in range(wo):
                    y0, x0 = y * sh - t, xx * sw - left
                    y1, x1 = min(y0 + kh, h + b), min(x0 + kw, w + r)
                    size_with_pad = (y1 - y0) * (x1 - x0)
                    total, real = 0.0, 0
                    for iy in range(max(y0, 0), min(y1, h)):
                        for ix in range(max(x0, 0), min(x1, w)):
                            total += x[ni, ci, iy, ix]
                            real += 1
                    out[ni, ci, y, xx] = total / (size_with_pad if count_include_pad else real)
    return out


def conv2d_weight_grad_naive(
    x: np.ndarray,
    grad_out: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int] = (1, 1),
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilation: tuple[int, int] = (1, 1),
    mode: str = "zeros",
) -> np.ndarray:
    """``dL/dw[o,c,i,j] = Σ_{n,y,x} g[n,o,y,x] · xpad[n,c,y·sh+i·dh, x·sw+j·dw]`` (cross-
    correlation, no flip). Only cells inside a window take part: an inf elsewhere in the
    input must not turn a weight gradient into NaN."""
    xp = pad2d_naive(np.asarray(x, np.float64), pad, mode)
    n, c = xp.shape[:2]
    o, ho, wo = grad_out.shape[1:]
    kh, kw = kernel
    gw = np.zeros((o, c, kh, kw))
    for oi in range(o):
        for ci in range(c):
            for i in range(kh):
                for j in range(kw):
                    total = 0.0
                    for ni in range(n):
                        for y in range(ho):
                            for xx in range(wo):
                                v = xp[
                                    ni,
                                    ci,
                                    y * stride[0] + i * dilation[0],
                                    xx * stride[1] + j * dilation[1],
                                ]
                                total += grad_out[ni, oi, y, xx] * v
                    gw[oi, ci, i, j] = total
    return gw
