"""Grouped and depthwise 2-D convolution, forward and backward (``nn.Conv2d(groups=g)``).

With ``groups = g`` the ``C`` input channels and ``O`` output channels are split into
``g`` equal groups; output group ``k`` sees only input group ``k``. The weight is
``(O, C/g, kh, kw)``. MobileNet's *depthwise* convolution is the extreme case ``g = C``:
every channel is filtered on its own.

Two paths, both exactly torch's arithmetic:

- depthwise (``C/g = 1``): one multiply-add per kernel tap over the whole batch and all
  channels at once (``kh·kw`` whole-array NumPy calls). im2col would build a matrix product
  of inner size 1 per group, i.e. one tiny BLAS call per channel.
- general groups: the ordinary :func:`~cnn_explorer.engine.conv.conv2d_forward` per group
  (each group is a normal convolution of ``C/g`` channels), outputs concatenated.

``groups = 1`` never comes here: the layer calls :mod:`conv` directly, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_explorer.engine._args import (
    IntOrPair,
    PaddingSpec,
    as_float,
    as_float_array,
    check_padding_mode,
    restore_batch,
    result_dtype,
)
from cnn_explorer.engine.conv import (
    ConvGeometry,
    conv2d_backward,
    conv2d_forward,
    conv_geometry,
    pad2d,
    pad2d_backward,
)
from cnn_explorer.engine.errors import ShapeError

# NaN and inf are legal data (reported, never errors): compute through them silently.
_COMPUTE_THROUGH = np.errstate(over="ignore", invalid="ignore")


def check_groups(in_channels: int, out_channels: int, groups: int) -> int:
    """``groups`` as an int that divides both channel counts, else ShapeError with a fix."""
    if isinstance(groups, bool) or not isinstance(groups, int | np.integer) or groups < 1:
        raise ShapeError(f"groups must be a whole number ≥ 1, got {groups!r}")
    g = int(groups)
    for what, n in (("in_channels", in_channels), ("out_channels", out_channels)):
        if n % g:
            raise ShapeError(
                f"groups {g} must divide {what} {n}: use a number of groups that divides "
                f"both {in_channels} and {out_channels}"
            )
    return g


@dataclass(frozen=True)
class GroupedConvContext:
    """What :func:`grouped_conv2d_backward` needs. Opaque.

    Depthwise: the padded input ``(N, C, Hp, Wp)``, the (flipped) weight and geometry.
    General: one :class:`~cnn_explorer.engine.conv.Conv2dContext` per group."""

    groups: int
    depthwise: bool
    unbatched: bool
    has_bias: bool
    flip_kernel: bool
    padding_mode: str
    padding: tuple[int, int, int, int]
    geometry: ConvGeometry
    padded_input: np.ndarray | None = None
    weight: np.ndarray | None = None
    group_contexts: tuple[Any, ...] = ()


def _prepare(
    x: object,
    weight: object,
    bias: object,
    stride: IntOrPair,
    padding: PaddingSpec,
    dilation: IntOrPair,
    groups: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, ConvGeometry, bool]:
    x4, unbatched = as_float_array(x, "input")
    w = as_float(weight, "weight", (4,))
    b = None if bias is None else as_float(bias, "bias", (1,))
    o, cg = w.shape[0], w.shape[1]
    c = x4.shape[1]
    check_groups(c, o, groups)
    if c != cg * groups:
        raise ShapeError(
            f"input has {c} channels but the weight {tuple(w.shape)} with groups {groups} "
            f"expects {cg * groups}: give the kernel {c // groups} input channels per group"
        )
    if b is not None and b.shape[0] != o:
        raise ShapeError(f"bias has {b.shape[0]} values but the conv has {o} output channels")
    per_group = conv_geometry((x4.shape[0], cg, *x4.shape[2:]), w.shape, stride, padding, dilation)
    return x4, w, b, per_group, unbatched


def _tap(xp: np.ndarray, g: ConvGeometry, i: int, j: int) -> np.ndarray:
    """View ``(N, C, Ho, Wo)`` of the padded input under kernel tap ``(i, j)``."""
    (sh, sw), (dh, dw) = g.stride, g.dilation
    r0, c0 = i * dh, j * dw
    return xp[:, :, r0 : r0 + sh * (g.out_h - 1) + 1 : sh, c0 : c0 + sw * (g.out_w - 1) + 1 : sw]


# Long because it holds both paths (depthwise taps, per-group convs) side by side, so
# their shared checks and context are written once.
@_COMPUTE_THROUGH
def grouped_conv2d_forward(
    x: object,
    weight: object,
    bias: object = None,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    flip_kernel: bool = False,
) -> tuple[np.ndarray, GroupedConvContext]:
    """Grouped convolution ``x (N, C, H, W)`` (or ``(C, H, W)``) with ``weight
    (O, C/groups, kh, kw)`` → ``(N, O, Ho, Wo)``, and the context for the backward.

    Same options and output size as :func:`~cnn_explorer.engine.conv.conv2d_forward`.
    """
    check_padding_mode(padding_mode)
    x4, w, b, g, unbatched = _prepare(x, weight, bias, stride, padding, dilation, groups)
    dtype = result_dtype(x4, w, b)
    o, cg = w.shape[0], w.shape[1]
    common: dict[str, Any] = {
        "groups": groups,
        "unbatched": unbatched,
        "has_bias": b is not None,
        "flip_kernel": flip_kernel,
        "padding_mode": padding_mode,
        "padding": g.padding,
        "geometry": g,
    }
    if cg == 1:  # depthwise: per-tap multiply-adds over all channels at once
        wk = (w[:, :, ::-1, ::-1] if flip_kernel else w).astype(dtype)
        xp = pad2d(x4.astype(dtype, copy=False), g.padding, padding_mode)
        m = o // groups
        src = np.repeat(xp, m, axis=1) if m > 1 else xp  # output channel k·m+j reads k
        out = np.zeros((g.n, o, g.out_h, g.out_w), dtype)
        kh, kw = g.kernel
        for i in range(kh):
            for j in range(kw):
                out += _tap(src, g, i, j) * wk[None, :, 0, i, j, None, None]
        if b is not None:
            out += b.astype(dtype)[None, :, None, None]
        ctx = GroupedConvContext(**common, depthwise=True, padded_input=src, weight=wk)
        return restore_batch(out, unbatched), ctx
    og = o // groups
    outs, ctxs = [], []
    for k in range(groups):
        out_k, ctx_k = conv2d_forward(
            x4[:, k * cg : (k + 1) * cg],
            w[k * og : (k + 1) * og],
            None if b is None else b[k * og : (k + 1) * og],
            g.stride,
            g.padding,
            g.dilation,
            padding_mode,
            flip_kernel,
        )
        outs.append(out_k)
        ctxs.append(ctx_k)
    out = np.concatenate(outs, axis=1)
    ctx = GroupedConvContext(**common, depthwise=False, group_contexts=tuple(ctxs))
    return restore_batch(out, unbatched), ctx


def grouped_conv2d(
    x: object,
    weight: object,
    bias: object = None,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    flip_kernel: bool = False,
) -> np.ndarray:
    """:func:`grouped_conv2d_forward` without the context (inference)."""
    out, _ = grouped_conv2d_forward(
        x, weight, bias, stride, padding, dilation, groups, padding_mode, flip_kernel
    )
    return out


@_COMPUTE_THROUGH
def grouped_conv2d_backward(
    grad_out: object, ctx: GroupedConvContext
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(grad_input, grad_weight, grad_bias)`` of :func:`grouped_conv2d_forward` for
    ``grad_out`` shaped like its output (``grad_bias`` None without a bias)."""
    g = ctx.geometry
    go = np.asarray(grad_out)
    if ctx.unbatched and go.ndim == 3:
        go = go[np.newaxis]
    if not ctx.depthwise:
        o = go.shape[1]
        og = o // ctx.groups
        gxs, gws, gbs = [], [], []  # per group
        for k, ctx_k in enumerate(ctx.group_contexts):
            gx, gw, gb = conv2d_backward(go[:, k * og : (k + 1) * og], ctx_k)
            gxs.append(gx)
            gws.append(gw)
            if gb is not None:
                gbs.append(gb)
        grad_b = np.concatenate(gbs) if ctx.has_bias else None
        return (
            restore_batch(np.concatenate(gxs, axis=1), ctx.unbatched),
            np.concatenate(gws, axis=0),
            grad_b,
        )
    src, wk = ctx.padded_input, ctx.weight
    assert src is not None and wk is not None
    expected = (g.n, wk.shape[0], g.out_h, g.out_w)
    if go.shape != expected:
        raise ShapeError(f"grad_out must have the output's shape {expected}, got {go.shape}")
    go = go.astype(src.dtype, copy=False)
    kh, kw = g.kernel
    grad_src = np.zeros_like(src)
    grad_w = np.zeros_like(wk)
    for i in range(kh):
        for j in range(kw):
            grad_w[:, 0, i, j] = np.einsum("nchw,nchw->c", go, _tap(src, g, i, j))
            _tap(grad_src, g, i, j)[...] += go * wk[None, :, 0, i, j, None, None]
    o = wk.shape[0]
    m = o // ctx.groups
    if m > 1:  # the input channel was repeated for m output channels: add them back
        grad_src = grad_src.reshape(g.n, ctx.groups, m, *grad_src.shape[2:]).sum(axis=2)
    grad_x = pad2d_backward(grad_src, ctx.padding, ctx.padding_mode)
    if ctx.flip_kernel:
        grad_w = grad_w[:, :, ::-1, ::-1]
    grad_b = go.sum(axis=(0, 2, 3)) if ctx.has_bias else None
    return restore_batch(grad_x, ctx.unbatched), np.ascontiguousarray(grad_w), grad_b


__all__ = [
    "GroupedConvContext",
    "check_groups",
    "grouped_conv2d",
    "grouped_conv2d_backward",
    "grouped_conv2d_forward",
]
