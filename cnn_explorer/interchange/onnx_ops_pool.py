"""ONNX pooling converters: MaxPool, AveragePool and the global pools.

Exporters write pooling the engine (and torch) does in one layer as a ``Pad`` and a pool,
or with more trailing padding than half the window (a ceil-mode overhang spelled out in
floor mode, since ONNX has one ``count_include_pad`` switch for all pads and
``onnx.reference`` reads uneven MaxPool pads wrongly). These converters read those
spellings back as the one engine pool they are, checking that the windows are the same:
``-inf`` padding in front of a MaxPool joins its padding; zero padding in front of an
AveragePool that leaves out only a trailing overhang is ``count_include_pad`` in ceil
mode; trailing padding beyond half the window becomes ceil mode. Anything else keeps its
Pad as a layer of its own.
"""

from __future__ import annotations

from cnn_explorer.engine import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from cnn_explorer.engine.geometry import conv_output_size
from cnn_explorer.interchange.model import ModelFileError
from cnn_explorer.interchange.onnx_graph import Builder, OnnxNode, Ref
from cnn_explorer.interchange.onnx_ops import Pads4, make, need_map, pair, spatial_pads


def _pool_geometry(n: OnnxNode, x: Ref) -> tuple[tuple[int, int], tuple[int, int], Pads4]:
    _, h, w = need_map(n, x)
    kernel = pair(n, "kernel_shape", 1)
    stride = pair(n, "strides", 1)
    if pair(n, "dilations", 1) != (1, 1):
        raise ModelFileError(f"node {n.label!r} ({n.op}) uses dilation, which this app does not")
    return kernel, stride, spatial_pads(n, (h, w), kernel, stride, (1, 1))


def _ceil_tail(size: int, k: int, s: int, before: int, after: int) -> int | None:
    """A trailing pad ``≤ k // 2`` (the most the engine's pools take) that, in ceil mode,
    gives the same windows as floor mode with ``after``: the starts depend only on
    ``before``, so the same count means the same windows; the overhang is never counted
    (max: it never wins; average: it is left out of the divisor, as uncounted padding
    is). None when there is none."""
    want = conv_output_size(size, k, s, (before, after))
    for tail in range(min(after, k // 2), -1, -1):
        if conv_output_size(size, k, s, (before, tail), ceil_mode=True) == want:
            return tail
    return None


def _fit_pads(
    x: Ref, kernel: tuple[int, int], stride: tuple[int, int], pads: Pads4
) -> tuple[Pads4, bool] | None:
    """``(pads, ceil_mode)`` for padding the engine refuses (more than half the kernel at
    the bottom or right, as exporters write a ceil-mode overhang): the same windows with a
    smaller trailing pad in ceil mode; None when that cannot be done."""
    _, h, w = x.shape
    t, bo, left, r = pads
    if t > kernel[0] // 2 or left > kernel[1] // 2:
        return None
    tails = (
        _ceil_tail(h, kernel[0], stride[0], t, bo),
        _ceil_tail(w, kernel[1], stride[1], left, r),
    )
    if tails[0] is None or tails[1] is None:
        return None
    return (t, tails[0], left, tails[1]), True


def _waiting_pad(b: Builder, n: OnnxNode) -> tuple[Ref, Pads4, OnnxNode] | None:
    """``(its input, its padding, the Pad node)`` of a Pad kept for pool ``n``, or None."""
    pending = b.pending_pads.get(n.inputs[0])
    if pending is None or str(n.attr("auto_pad", "NOTSET")) != "NOTSET":
        return None
    return pending[0], pending[1], pending[4]


def _take_pad(b: Builder, n: OnnxNode, pnode: OnnxNode, pads: Pads4) -> None:
    """The Pad kept for pool ``n`` is now part of the pool's padding ``pads``."""
    del b.pending_pads[n.inputs[0]]
    b.transformed(
        pnode,
        f"folded into the padding of {n.op} {n.label!r}",
        f"Pad {pnode.label!r} folded into {n.op} {n.label!r} (padding {pads})",
    )


def _engine_pads(
    x: Ref, kernel: tuple[int, int], stride: tuple[int, int], pads: Pads4
) -> tuple[Pads4, bool] | None:
    """``(pads, ceil_mode)`` the engine's pools take for uncounted padding ``pads`` (floor
    mode): as they are, or with a trailing overhang as ceil mode; None when neither."""
    if max(pads[:2]) <= kernel[0] // 2 and max(pads[2:]) <= kernel[1] // 2:
        return pads, False
    return _fit_pads(x, kernel, stride, pads)


def max_pool(b: Builder, n: OnnxNode) -> None:
    """A ``-inf`` Pad in front (how exporters write uneven or ceil-mode padding) joins the
    pool's own padding; padding beyond half the kernel becomes ceil mode."""
    if len(n.outputs) > 1 and b.uses[n.outputs[1]]:
        raise ModelFileError(f"node {n.label!r} (MaxPool) returns indices, which this app does not")
    ceil = bool(n.attr("ceil_mode", 0))
    waiting = _waiting_pad(b, n)
    if waiting is not None and not ceil:
        x, pre, pnode = waiting
        kernel, stride, pads = _pool_geometry(n, x)
        total = (pads[0] + pre[0], pads[1] + pre[1], pads[2] + pre[2], pads[3] + pre[3])
        fitted = _engine_pads(x, kernel, stride, total)
        if fitted is not None:
            _take_pad(b, n, pnode, fitted[0])
            pads, ceil = fitted
        else:
            x = b.ref(n)  # the Pad stays a layer of its own
            kernel, stride, pads = _pool_geometry(n, x)
    else:
        x = b.ref(n)
        kernel, stride, pads = _pool_geometry(n, x)
        fitted = None if ceil else _engine_pads(x, kernel, stride, pads)
        if fitted is not None:
            pads, ceil = fitted
    b.emit(n, make(n, MaxPool2D, kernel, stride, pads, ceil), [x])
    b.entry(n, "mapped", f"MaxPool2D {kernel[0]}×{kernel[1]}" + (", ceil" if ceil else ""))


def _counted_with_tail(x: Ref, kernel: tuple[int, int], stride: tuple[int, int], pre: Pads4,
                       own: Pads4) -> bool:  # fmt: skip
    """True when zero padding ``pre`` (counted) followed by a pool whose own padding
    ``own`` (uncounted) is only a trailing overhang is torch's ``count_include_pad`` pool
    in ceil mode: the same windows, the overhang left out of the divisor."""
    _, h, w = x.shape
    t, bo, left, r = pre
    return (
        own[0] == 0
        and own[2] == 0
        and max(pre[:2]) <= kernel[0] // 2
        and max(pre[2:]) <= kernel[1] // 2
        and conv_output_size(h, kernel[0], stride[0], (t, bo + own[1]))
        == conv_output_size(h, kernel[0], stride[0], (t, bo), ceil_mode=True)
        and conv_output_size(w, kernel[1], stride[1], (left, r + own[3]))
        == conv_output_size(w, kernel[1], stride[1], (left, r), ceil_mode=True)
    )


def avg_pool(b: Builder, n: OnnxNode) -> None:
    """Uncounted padding beyond half the kernel becomes ceil mode; a zero Pad in front
    whose uncounted overhang is exactly a ceil-mode tail (how exporters write torch's
    ``count_include_pad`` with ``ceil_mode``) becomes counted padding in ceil mode."""
    include = bool(n.attr("count_include_pad", 0))
    ceil = bool(n.attr("ceil_mode", 0))
    waiting = None if include or ceil else _waiting_pad(b, n)
    if waiting is not None:
        x, pre, pnode = waiting
        kernel, stride, own = _pool_geometry(n, x)
        if _counted_with_tail(x, kernel, stride, pre, own):
            _take_pad(b, n, pnode, pre)
            pads, include, ceil = pre, True, own[1] + own[3] > 0
        else:
            x = b.ref(n)  # the Pad stays a layer of its own
            kernel, stride, pads = _pool_geometry(n, x)
    else:
        x = b.ref(n)
        kernel, stride, pads = _pool_geometry(n, x)
        fitted = None if include or ceil else _engine_pads(x, kernel, stride, pads)
        if fitted is not None:
            pads, ceil = fitted
    layer = make(n, AvgPool2D, kernel, stride, pads, ceil, count_include_pad=include)
    b.emit(n, layer, [x])
    b.entry(n, "mapped", f"AvgPool2D {kernel[0]}×{kernel[1]}" + (", ceil" if ceil else ""))


def global_avg_pool(b: Builder, n: OnnxNode) -> None:
    x = b.ref(n)
    need_map(n, x)
    b.emit(n, GlobalAvgPool2D(), [x])
    b.entry(n, "mapped", "GlobalAvgPool2D")


def global_max_pool(b: Builder, n: OnnxNode) -> None:
    x = b.ref(n)
    _, h, w = need_map(n, x)
    b.emit(n, make(n, MaxPool2D, (h, w), (h, w)), [x])
    b.entry(n, "mapped", f"MaxPool2D {h}×{w} (the whole map)")
