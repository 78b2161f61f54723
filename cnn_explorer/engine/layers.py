"""Layer objects: the stackable units the explorer shows, edits, trains and saves.

Each layer wraps one functional op (``conv.py``, ``pool.py``, ``activations.py``,
``linear.py``) and adds what a *network* needs around it: parameters and their gradients,
shape inference with messages a learner can act on, the sliding-window geometry for the
receptive-field view, a one-cell explanation, a short label, and a JSON-safe config.

Shapes: a *map* is ``(C, H, W)`` for one image or ``(N, C, H, W)`` for a batch; a *vector*
(after Flatten/Dense) is ``(F,)`` or ``(N, F)``. ``output_shape`` works on per-image shapes
(no batch axis). Layer numbers in messages count from 1, as the UI shows them.

Common interface (see :class:`Layer`): ``kind``, ``name``, ``enabled`` (a disabled layer
passes its input through unchanged), ``trainable``/``frozen`` (the optimizer skips frozen
layers), ``params``/``grads``/``buffers`` dicts, ``output_shape``, ``forward``, ``backward``
(accumulates into ``grads``), ``zero_grad``, ``window``, ``explain``, ``describe``,
``to_dict``/``from_dict``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from cnn_explorer.engine import activations as _act
from cnn_explorer.engine import conv as _conv
from cnn_explorer.engine import grouped as _grouped
from cnn_explorer.engine import linear as _linear
from cnn_explorer.engine import pool as _pool
from cnn_explorer.engine._args import as_pair, check_padding_mode, normalise_padding
from cnn_explorer.engine.errors import ShapeError
from cnn_explorer.engine.geometry import (
    ElementwiseExplanation,
    Explanation,
    Window,
    effective_kernel,
    explain_avg_pool_cell,
    explain_conv_cell,
    explain_elementwise_cell,
    explain_max_pool_cell,
    fmt_number,
)

Shape = tuple[int, ...]
RngLike = np.random.Generator | int | None

INITS = ("he", "xavier", "zeros")


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def as_rng(rng: RngLike) -> np.random.Generator:
    """A Generator from a Generator, a seed, or None (seed 0: runs stay reproducible)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def init_weight(
    shape: Shape, fan_in: int, fan_out: int, init: str, rng: np.random.Generator, dtype: Any
) -> np.ndarray:
    """Seeded initial weights.

    ``"he"``: normal with std ``√(2/fan_in)`` — keeps the activation variance steady through
    ReLUs (He et al. 2015). ``"xavier"``: uniform in ``±√(6/(fan_in+fan_out))`` — for layers
    not followed by a ReLU (the classifier head). ``"zeros"``: all zero (hand-set kernels).
    """
    if init == "he":
        w = rng.standard_normal(shape) * math.sqrt(2.0 / max(fan_in, 1))
    elif init == "xavier":
        limit = math.sqrt(6.0 / max(fan_in + fan_out, 1))
        w = rng.uniform(-limit, limit, size=shape)
    elif init == "zeros":
        w = np.zeros(shape)
    else:
        raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
    return np.ascontiguousarray(w, dtype=dtype)


def _dims(shape: Sequence[int]) -> str:
    return "×".join(str(int(s)) for s in shape)


def _pair_txt(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}×{p[1]}"


def _is_map_batch(x: np.ndarray) -> bool:
    return x.ndim == 4


# --------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------


class Layer:
    """Base class. Subclasses implement the ``_``-prefixed hooks; the public methods add the
    ``enabled`` pass-through and the layer position in error messages."""

    kind: ClassVar[str] = "layer"
    needs_batch_axis: ClassVar[bool] = False
    """True for layers whose meaning depends on where the batch axis is (merges, softmax,
    reshape): a Graph always runs them on batches (a single image as a batch of one)."""

    def __init__(
        self, *, name: str | None = None, enabled: bool = True, trainable: bool = True
    ) -> None:
        self.name: str = name or self.kind
        self.enabled: bool = enabled
        self.trainable: bool = trainable
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self._ctx: Any = None

    # -- flags -------------------------------------------------------------------------
    @property
    def frozen(self) -> bool:
        """True when the optimizer must leave this layer's parameters alone."""
        return not self.trainable

    @frozen.setter
    def frozen(self, value: bool) -> None:
        self.trainable = not value

    # -- shapes ------------------------------------------------------------------------
    def label(self, index: int | None = None) -> str:
        """``"layer 3 (conv 3×3, 8→16)"`` for messages; without index just the details."""
        details = self._label_details()
        return details if index is None else f"layer {index + 1} ({details})"

    def _label_details(self) -> str:
        return self.describe()

    def output_shape(self, input_shape: Sequence[int], index: int | None = None) -> Shape:
        """Per-image output shape for a per-image ``input_shape`` such as ``(C, H, W)``.

        Raises :class:`ShapeError` naming the layer (``index`` is its 0-based position,
        shown 1-based), the numbers and a fix. A disabled layer returns its input shape.
        """
        shape = tuple(int(s) for s in input_shape)
        if not self.enabled:
            return shape
        return self._output_shape(shape, index)

    def _output_shape(self, shape: Shape, index: int | None) -> Shape:
        return shape

    def _need_map(self, shape: Shape, index: int | None) -> None:
        if len(shape) != 3:
            got = f"a vector of {_dims(shape)} values" if len(shape) == 1 else _dims(shape)
            raise ShapeError(
                f"{self.label(index)} needs a (channels, height, width) map but its input is "
                f"{got}: move it before the Flatten/Dense layers"
            )

    # -- compute -----------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Output for ``x`` (one image ``(C, H, W)`` or a batch ``(N, C, H, W)``; vectors
        ``(F,)``/``(N, F)`` for Dense). Saves what :meth:`backward` needs. ``training``
        switches Dropout/BatchNorm to their training behaviour."""
        if not self.enabled:
            self._ctx = None
            return x
        out, self._ctx = self._forward(x, training)
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Gradient w.r.t. the last forward's input; parameter gradients are *added* to
        ``grads`` (call :meth:`zero_grad` between steps)."""
        if not self.enabled:
            return grad
        if self._ctx is None:
            raise RuntimeError(f"{self.label()}: backward() called before forward()")
        return self._backward(grad, self._ctx)

    def backward_params(self, grad: np.ndarray) -> None:
        """Like :meth:`backward` but only the parameter gradients are wanted.

        The first trainable layer of a network being trained has nobody to pass an input
        gradient to; :class:`Conv2D` then skips that product and its col2im (1.6 → 0.35 ms
        for a 1→8 channel 3×3 conv on 64×28² images, measured). Other layers just run
        :meth:`backward` and drop the result."""
        self.backward(grad)

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        raise NotImplementedError

    def _accumulate(self, name: str, g: np.ndarray | None) -> None:
        if g is None or name not in self.grads:
            return
        acc = self.grads[name]
        if g.dtype != acc.dtype:
            g = g.astype(acc.dtype)
        acc += g

    def zero_grad(self) -> None:
        """Reset every gradient to 0 in place (arrays keep their identity)."""
        for g in self.grads.values():
            g.fill(0)

    # -- geometry / explanation --------------------------------------------------------
    def window(self) -> Window | None:
        """Sliding-window geometry (conv/pool) or None (elementwise, flatten, dense, disabled)."""
        return self._window() if self.enabled else None

    def _window(self) -> Window | None:
        return None

    def window_for(self, input_shape: Sequence[int]) -> Window | None:
        """:meth:`window` for a per-image ``input_shape``; layers whose window depends on
        the input size (global/adaptive pooling) override this."""
        return self.window()

    def explain(self, x: np.ndarray, row: int, col: int, channel: int = 0) -> Explanation:
        """Arithmetic of output cell ``[channel, row, col]`` given this layer's input ``x``
        for one image (``(C, H, W)``; ``(F,)`` for vectors, where ``col`` is the index)."""
        if not self.enabled:
            idx = (channel, row, col) if x.ndim == 3 else (col,)
            return ElementwiseExplanation(
                "disabled",
                idx,
                "identity",
                float(x[idx]),
                float(x[idx]),
                "layer disabled: passes its input",
            )
        return self._explain(np.asarray(x), row, col, channel)

    def _explain(self, x: np.ndarray, row: int, col: int, channel: int) -> Explanation:
        idx = (channel, row, col) if x.ndim == 3 else (col,)
        return explain_elementwise_cell(self.kind, lambda v: v, x, idx, kind=self.kind)

    # -- description / config ----------------------------------------------------------
    def describe(self) -> str:
        """Short label for the UI, e.g. ``"Conv 3×3, 1→8, stride 1"``."""
        return self.kind

    def param_count(self) -> int:
        """Number of trainable numbers in this layer."""
        return int(sum(p.size for p in self.params.values()))

    def config(self) -> dict[str, Any]:
        """Constructor arguments specific to this kind (JSON-safe)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe config: ``kind``, ``name``, ``enabled``, ``trainable`` + :meth:`config`.
        Arrays are not included: see :meth:`state_arrays`."""
        return {
            "kind": self.kind,
            "name": self.name,
            "enabled": self.enabled,
            "trainable": self.trainable,
            **self.config(),
        }

    @classmethod
    def from_dict(
        cls, config: Mapping[str, Any], params: Mapping[str, np.ndarray] | None = None
    ) -> Layer:
        """Rebuild a layer from :meth:`to_dict` output; ``params`` (and buffers, same dict)
        replace the initial values. ``Layer.from_dict`` dispatches on ``config["kind"]``."""
        if cls is Layer:
            return layer_from_dict(config, params)
        cfg = dict(config)
        kind = cfg.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ValueError(f"config is for a {kind!r} layer, not {cls.kind!r}")
        flags = {k: cfg.pop(k) for k in ("name", "enabled", "trainable") if k in cfg}
        layer = cls(**cfg, **flags)
        if params:
            layer.load_arrays(params)
        return layer

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Parameters and buffers (BatchNorm running stats) by name: what a file stores."""
        return {**self.params, **self.buffers}

    def load_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Copy saved values into ``params``/``buffers`` (shapes must match exactly).

        Values are written in place (array identity kept) when the float dtype matches; a
        float64 value for a float32 parameter replaces the array (and its gradient) so a
        float64 network survives a copy or a file round trip.
        """
        for key, value in arrays.items():
            store = self.params if key in self.params else self.buffers
            target = store.get(key)
            if target is None:
                raise ValueError(f"{self.label()} has no parameter {key!r}")
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(
                    f"{self.label()}: {key} has shape {value.shape}, expected {target.shape}"
                )
            if value.dtype.kind == "f" and value.dtype != target.dtype:
                store[key] = np.array(value, copy=True)
                if key in self.grads:
                    self.grads[key] = np.zeros_like(store[key])
            else:
                target[...] = value

    def astype(self, dtype: Any) -> Layer:
        """Convert parameters, gradients and buffers to ``dtype`` in place (float64 for
        gradient checks); returns self."""
        for d in (self.params, self.grads, self.buffers):
            for k in d:
                d[k] = d[k].astype(dtype)
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


# --------------------------------------------------------------------------------------
# Conv2D
# --------------------------------------------------------------------------------------


class Conv2D(Layer):
    """2-D convolution (cross-correlation, like ``nn.Conv2d``; ``flip_kernel=True`` for the
    textbook convolution). Weight ``(out_channels, in_channels / groups, kh, kw)``, bias
    ``(out_channels,)``. Input ``(N, C, H, W)`` or ``(C, H, W)``.

    ``groups > 1`` splits the channels into groups that do not see each other
    (``groups == in_channels``: depthwise, as in MobileNet); see :mod:`grouped`.
    ``groups == 1`` runs the ordinary convolution, untouched."""

    kind = "conv"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        padding: int | str | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        padding_mode: str = "zeros",
        bias: bool = True,
        flip_kernel: bool = False,
        groups: int = 1,
        *,
        init: str = "he",
        rng: RngLike = None,
        dtype: Any = np.float32,
        name: str | None = None,
        enabled: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, enabled=enabled, trainable=trainable)
        self.in_channels = int(as_pair(in_channels, "in_channels")[0])
        self.out_channels = int(as_pair(out_channels, "out_channels")[0])
        self.kernel_size = as_pair(kernel_size, "kernel size")
        self.stride = as_pair(stride, "stride")
        self.dilation = as_pair(dilation, "dilation")
        self.padding = padding if isinstance(padding, str) else normalise_padding(padding)
        self.padding4 = normalise_padding(padding, self.kernel_size, self.dilation, self.stride)
        self.padding_mode = check_padding_mode(padding_mode)
        self.use_bias = bool(bias)
        self.flip_kernel = bool(flip_kernel)
        self.groups = _grouped.check_groups(self.in_channels, self.out_channels, groups)
        self.init = init
        kh, kw = self.kernel_size
        cin, cout = self.in_channels // self.groups, self.out_channels // self.groups
        fan_in, fan_out = cin * kh * kw, cout * kh * kw
        shape = (self.out_channels, cin, kh, kw)
        self.params["weight"] = init_weight(shape, fan_in, fan_out, init, as_rng(rng), dtype)
        if self.use_bias:
            self.params["bias"] = np.zeros(self.out_channels, dtype=dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    @property
    def weight(self) -> np.ndarray:
        """``(out_channels, in_channels / groups, kh, kw)``."""
        return self.params["weight"]

    @property
    def bias(self) -> np.ndarray | None:
        """``(out_channels,)`` or None."""
        return self.params.get("bias")

    def describe(self) -> str:
        text = (
            f"Conv {_dims(self.kernel_size)}, {self.in_channels}→{self.out_channels}, "
            f"stride {_pair_txt(self.stride)}"
        )
        text += self._groups_text()
        t, b, left, r = self.padding4
        if (t, b, left, r) != (0, 0, 0, 0):
            pad = str(t) if t == b == left == r else _dims(self.padding4)
            text += f", pad {pad}" + (
                "" if self.padding_mode == "zeros" else f" {self.padding_mode}"
            )
        if self.dilation != (1, 1):
            text += f", dilation {_pair_txt(self.dilation)}"
        return text

    def _groups_text(self) -> str:
        if self.groups == 1:
            return ""
        if self.groups == self.in_channels:
            return ", depthwise"
        return f", groups {self.groups}"

    def _label_details(self) -> str:
        text = f"conv {_dims(self.kernel_size)}, {self.in_channels}→{self.out_channels}"
        text += self._groups_text()
        if self.dilation != (1, 1):
            eff = (
                effective_kernel(self.kernel_size[0], self.dilation[0]),
                effective_kernel(self.kernel_size[1], self.dilation[1]),
            )
            text += f", dilation {_pair_txt(self.dilation)} → effective {_dims(eff)}"
        return text

    def _window(self) -> Window:
        return Window(
            self.kernel_size,
            self.stride,
            self.dilation,
            self.padding4,
            False,
            True,
            self.padding_mode,
            None if self.groups == 1 else (self.groups, self.in_channels, self.out_channels),
        )

    def _output_shape(self, shape: Shape, index: int | None) -> Shape:
        self._need_map(shape, index)
        c, h, w = shape
        if c != self.in_channels:
            raise ShapeError(
                f"{self.label(index)} expects {self.in_channels} input channel"
                f"{'s' if self.in_channels != 1 else ''} but its input has {c}: "
                f"set in_channels to {c}"
            )
        _check_padding_mode_fits(self.label(index), self.padding_mode, self.padding4, h, w)
        oh, ow = _window_output(self.label(index), self._window(), h, w)
        return (self.out_channels, oh, ow)

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        if self.groups != 1:
            return _grouped.grouped_conv2d_forward(
                x,
                self.params["weight"],
                self.params.get("bias"),
                self.stride,
                self.padding4,
                self.dilation,
                self.groups,
                self.padding_mode,
                self.flip_kernel,
            )
        return _conv.conv2d_forward(
            x,
            self.params["weight"],
            self.params.get("bias"),
            self.stride,
            self.padding4,
            self.dilation,
            self.padding_mode,
            self.flip_kernel,
            keep_columns=training,  # training: a backward follows, reuse the columns
        )

    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        if self.groups != 1:
            gx, gw, gb = _grouped.grouped_conv2d_backward(grad, ctx)
        else:
            gx, gw, gb = _conv.conv2d_backward(grad, ctx)
        self._accumulate("weight", gw)
        self._accumulate("bias", gb)
        return gx

    def backward_params(self, grad: np.ndarray) -> None:
        """Weight and bias gradients only (``conv2d_backward(need_input_grad=False)``)."""
        if self.groups != 1:
            self.backward(grad)
            return
        if not self.enabled:
            return
        if self._ctx is None:
            raise RuntimeError(f"{self.label()}: backward() called before forward()")
        _, gw, gb = _conv.conv2d_backward(grad, self._ctx, need_input_grad=False)
        self._accumulate("weight", gw)
        self._accumulate("bias", gb)

    def _explain(self, x: np.ndarray, row: int, col: int, channel: int) -> Explanation:
        w = self.params["weight"]
        if self.flip_kernel:
            w = w[:, :, ::-1, ::-1]
        bias = self.params.get("bias")
        if self.groups == 1:
            return explain_conv_cell(x, w, bias, self._window(), row, col, channel)
        # Output channel `channel` belongs to group k and sums only over that group's
        # input channels: explain that slice, then number the terms' channels as in x.
        cin = self.in_channels // self.groups
        k = channel // (self.out_channels // self.groups)
        part = explain_conv_cell(
            x[k * cin : (k + 1) * cin],
            w,
            bias,
            self._window(),
            row,
            col,
            channel,
            channel_offset=k * cin,
        )
        return replace(part, show_channel=True)

    def config(self) -> dict[str, Any]:
        pad = self.padding if isinstance(self.padding, str) else list(self.padding4)
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": pad,
            "dilation": list(self.dilation),
            "padding_mode": self.padding_mode,
            "bias": self.use_bias,
            "flip_kernel": self.flip_kernel,
            **({"groups": self.groups} if self.groups != 1 else {}),
            "init": self.init,
        }


def _check_padding_mode_fits(
    label: str, mode: str, pad: tuple[int, int, int, int], h: int, w: int
) -> None:
    """Reflect padding mirrors *inside* the map, so it needs ``pad < size`` (circular
    ``pad ≤ size``), as in torch."""
    if mode not in ("reflect", "circular"):
        return
    t, b, left, r = pad
    for p, n, axis in ((max(t, b), h, "height"), (max(left, r), w, "width")):
        limit_ok = p < n if mode == "reflect" else p <= n
        if not limit_ok:
            need = "smaller than" if mode == "reflect" else "at most"
            raise ShapeError(
                f"{label}: {mode} padding {p} must be {need} the input {axis} {n}: "
                f"use padding ≤ {n - 1 if mode == 'reflect' else n} or padding_mode 'zeros'"
            )


def _window_output(label: str, win: Window, h: int, w: int) -> tuple[int, int]:
    """Output ``(H', W')`` or a ShapeError saying by how much the window does not fit."""
    t, b, left, r = win.padding
    eh, ew = win.effective_kernel
    ph, pw = h + t + b, w + left + r
    if eh > ph or ew > pw:
        need = max(math.ceil((eh - h) / 2), math.ceil((ew - w) / 2), 0)
        raise ShapeError(
            f"{label} is larger than its padded input {ph}×{pw}: add padding ≥ {need} or "
            f"use a smaller kernel" + (" or dilation" if win.dilation != (1, 1) else "")
        )
    oh, ow = win.output_hw(h, w)
    if oh <= 0 or ow <= 0:
        raise ShapeError(
            f"{label} gives an empty {oh}×{ow} output from {h}×{w}: "
            "use a smaller kernel or stride, or more padding"
        )
    return oh, ow


# --------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------


class _Pool2D(Layer):
    """Shared geometry of max and average pooling (no parameters, per channel).

    ``padding`` is an int, ``(ph, pw)`` or ``(top, bottom, left, right)`` (ONNX models pad
    asymmetrically); the attribute keeps the ``(ph, pw)`` pair when the padding is
    symmetric and the 4-tuple otherwise; :attr:`padding4` is always the 4-tuple."""

    title: ClassVar[str] = "Pool"

    def __init__(
        self,
        kernel_size: int | Sequence[int] = 2,
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        ceil_mode: bool = False,
        *,
        name: str | None = None,
        enabled: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, enabled=enabled, trainable=trainable)
        self.kernel_size = as_pair(kernel_size, "kernel size")
        self.stride = self.kernel_size if stride is None else as_pair(stride, "stride")
        self.padding: tuple[int, ...]
        if isinstance(padding, Sequence | np.ndarray) and len(padding) == 4:
            t, b, left, r = normalise_padding(padding)
            self.padding = (t, left) if (t, left) == (b, r) else (t, b, left, r)
        else:
            self.padding = as_pair(padding, "padding", minimum=0)
        self.ceil_mode = bool(ceil_mode)
        self.dilation = (1, 1)

    @property
    def padding4(self) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)``."""
        if len(self.padding) == 4:
            t, b, left, r = self.padding
            return (t, b, left, r)
        ph, pw = self.padding
        return (ph, ph, pw, pw)

    def describe(self) -> str:
        text = f"{self.title} {_dims(self.kernel_size)}, stride {_pair_txt(self.stride)}"
        if len(self.padding) == 4:
            text += f", pad {_dims(self.padding)}"
        elif self.padding != (0, 0):
            ph, pw = self.padding
            text += f", pad {_pair_txt((ph, pw))}"
        if self.ceil_mode:
            text += ", ceil"
        return text

    def _label_details(self) -> str:
        return f"{self.title.lower()} {_dims(self.kernel_size)}, stride {_pair_txt(self.stride)}"

    def _window(self) -> Window:
        return Window(
            self.kernel_size,
            self.stride,
            self.dilation,
            self.padding4,
            self.ceil_mode,
            False,
            "zeros",
        )

    def _output_shape(self, shape: Shape, index: int | None) -> Shape:
        self._need_map(shape, index)
        c, h, w = shape
        kh, kw = self.kernel_size
        for p, k in zip(self.padding4, (kh, kh, kw, kw), strict=True):
            if 2 * p > k:
                raise ShapeError(
                    f"{self.label(index)}: padding {p} is more than half the kernel {k}, so "
                    f"some windows would see only padding: use padding ≤ {k // 2}"
                )
        oh, ow = _window_output(self.label(index), self._window(), h, w)
        return (c, oh, ow)

    def config(self) -> dict[str, Any]:
        return {
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "ceil_mode": self.ceil_mode,
        }


class MaxPool2D(_Pool2D):
    """Max pooling per channel (``nn.MaxPool2d``); stride defaults to the kernel size.
    Padding cells count as −∞, so they never win."""

    kind = "max_pool"
    title = "MaxPool"

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        return _pool.max_pool2d_forward(
            x, self.kernel_size, self.stride, self.padding4, 1, self.ceil_mode
        )

    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        return _pool.max_pool2d_backward(grad, ctx)

    def _explain(self, x: np.ndarray, row: int, col: int, channel: int) -> Explanation:
        return explain_max_pool_cell(x, self._window(), row, col, channel)


class AvgPool2D(_Pool2D):
    """Average pooling per channel (``nn.AvgPool2d``). ``count_include_pad`` (torch's
    default True) divides by the window size including padding cells; False divides by
    the number of real input cells in the window (ONNX's default)."""

    kind = "avg_pool"
    title = "AvgPool"

    def __init__(
        self,
        kernel_size: int | Sequence[int] = 2,
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        *,
        name: str | None = None,
        enabled: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__(
            kernel_size, stride, padding, ceil_mode, name=name, enabled=enabled, trainable=trainable
        )
        self.count_include_pad = bool(count_include_pad)

    def describe(self) -> str:
        text = super().describe()
        return text if self.count_include_pad else text + ", padding not counted"

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        if not self.count_include_pad:
            cfg["count_include_pad"] = False
        return cfg

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        return _pool.avg_pool2d_forward(
            x, self.kernel_size, self.stride, self.padding4, self.ceil_mode, self.count_include_pad
        )

    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        return _pool.avg_pool2d_backward(grad, ctx)

    def _explain(self, x: np.ndarray, row: int, col: int, channel: int) -> Explanation:
        return explain_avg_pool_cell(x, self._window(), row, col, channel, self.count_include_pad)


# --------------------------------------------------------------------------------------
# Activation
# --------------------------------------------------------------------------------------


class Activation(Layer):
    """Elementwise nonlinearity by name (a key of ``activations.ACTIVATIONS``: ``"relu"``,
    ``"leaky_relu"``, ``"sigmoid"``, ``"tanh"``, ``"identity"``, …). ``settings`` are the
    function's keyword arguments, e.g. ``negative_slope=0.1``. Any input shape."""

    kind = "activation"

    def __init__(
        self,
        activation: str = "relu",
        *,
        name: str | None = None,
        enabled: bool = True,
        trainable: bool = True,
        **settings: float,
    ) -> None:
        if activation not in _act.ACTIVATIONS:
            raise ShapeError(
                f"unknown activation {activation!r}: choose one of {', '.join(_act.ACTIVATIONS)}"
            )
        super().__init__(name=name or activation, enabled=enabled, trainable=trainable)
        self.activation = activation
        self.settings = {k: float(v) for k, v in settings.items()}

    def describe(self) -> str:
        text = _act.ACTIVATION_LABELS.get(self.activation, self.activation)
        if self.settings:
            text += " (" + ", ".join(f"{k}={fmt_number(v)}" for k, v in self.settings.items())
            text += ")"
        return text

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        fwd = _act.ACTIVATIONS[self.activation].forward
        return fwd(x, **self.settings)

    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        return _act.ACTIVATIONS[self.activation].backward(grad, ctx)

    def _explain(self, x: np.ndarray, row: int, col: int, channel: int) -> Explanation:
        idx = (channel, row, col) if x.ndim == 3 else (col,)
        fn = _act.ACTIVATION_FUNCTIONS[self.activation]
        formula = _act.describe_activation(self.activation, float(x[idx]), **self.settings)
        return explain_elementwise_cell(
            self.activation, lambda v: fn(v, **self.settings), x, idx, "activation", formula
        )

    def config(self) -> dict[str, Any]:
        return {"activation": self.activation, **self.settings}


# --------------------------------------------------------------------------------------
# Flatten, Dense
# --------------------------------------------------------------------------------------


class Flatten(Layer):
    """``(C, H, W)`` → ``(C·H·W,)`` in C order (channel, row, column), like ``nn.Flatten``.
    Vectors pass through. Batches ``(N, C, H, W)`` → ``(N, C·H·W)``."""

    kind = "flatten"

    def describe(self) -> str:
        return "Flatten"

    def _output_shape(self, shape: Shape, index: int | None) -> Shape:
        return (int(np.prod(shape)),)

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        if x.ndim in (1, 2):
            return x, ("identity",)
        start = 1 if _is_map_batch(x) else 0
        return _linear.flatten_forward(x, start)

    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        if ctx == ("identity",):
            return grad
        (shape,) = ctx
        if (
            isinstance(grad, np.ndarray)
            and grad.dtype in (np.float32, np.float64)
            and grad.size == math.prod(shape)
        ):
            return grad.reshape(shape)  # the usual case: skip the checks (~20 µs a batch)
        return _linear.flatten_backward(grad, ctx)

    def _explain(self, x: np.ndarray, row: int, col: int, channel: int) -> Explanation:
        if x.ndim == 1:
            return explain_elementwise_cell("flatten", lambda v: v, x, (col,), "flatten")
        c, h, w = np.unravel_index(col, x.shape)
        expl = explain_elementwise_cell(
            "flatten",
            lambda v: v,
            x,
            (int(c), int(h), int(w)),
            "flatten",
            f"out[{col}] = in[{c},{h},{w}]",
        )
        return expl


class Dense(Layer):
    """Fully connected layer ``y = x Wᵀ + b`` (``nn.Linear``): weight ``(out, in)``.
    Input ``(in,)`` or ``(N, in)``."""

    kind = "dense"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        init: str = "xavier",
        rng: RngLike = None,
        dtype: Any = np.float32,
        name: str | None = None,
        enabled: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, enabled=enabled, trainable=trainable)
        self.in_features = int(as_pair(in_features, "in_features")[0])
        self.out_features = int(as_pair(out_features, "out_features")[0])
        self.use_bias = bool(bias)
        self.init = init
        shape = (self.out_features, self.in_features)
        self.params["weight"] = init_weight(
            shape, self.in_features, self.out_features, init, as_rng(rng), dtype
        )
        if self.use_bias:
            self.params["bias"] = np.zeros(self.out_features, dtype=dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def describe(self) -> str:
        return f"Dense {self.in_features}→{self.out_features}"

    def _label_details(self) -> str:
        return f"dense {self.in_features}→{self.out_features}"

    def _output_shape(self, shape: Shape, index: int | None) -> Shape:
        if len(shape) != 1:
            raise ShapeError(
                f"{self.label(index)} needs a flat vector but its input is a {_dims(shape)} "
                f"map: add a Flatten layer before it"
            )
        if shape[0] != self.in_features:
            raise ShapeError(
                f"{self.label(index)} expects {self.in_features} inputs but receives "
                f"{shape[0]}: set in_features to {shape[0]}"
            )
        return (self.out_features,)

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        return _linear.linear_forward(x, self.params["weight"], self.params.get("bias"))

    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        gx, gw, gb = _linear.linear_backward(grad, ctx)
        self._accumulate("weight", gw)
        self._accumulate("bias", gb)
        return gx

    def _explain(self, x: np.ndarray, row: int, col: int, channel: int) -> Explanation:
        from cnn_explorer.engine.geometry import TermTable, WeightedSumExplanation

        # One row of the weight against the whole input: O(in_features), as arrays (a
        # VGG unit has 25,088 terms; each becomes a Term only when it is read).
        v = np.asarray(x).reshape(-1).astype(np.float64)
        w = np.asarray(self.params["weight"][col], np.float64)
        i = np.arange(v.size)
        zeros = np.zeros(v.size, np.int64)
        with np.errstate(all="ignore"):  # inf·0 and inf − inf are NaN, said in the text
            product = v * w
            total = float(np.sum(product, dtype=np.float64))
        terms = TermTable(
            channel=zeros,
            row=zeros,
            col=i,
            value=v,
            weight=w,
            product=product,
            is_padding=np.zeros(v.size, bool),
            kernel_i=zeros,
            kernel_j=i,
        )
        b = None if "bias" not in self.params else float(self.params["bias"][col])
        return WeightedSumExplanation("dense", (col,), terms, b, total + (b or 0.0), True)

    def config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.use_bias,
            "init": self.init,
        }


# --------------------------------------------------------------------------------------
# BatchNorm2D, Dropout
# --------------------------------------------------------------------------------------


class BatchNorm2D(Layer):
    """Per-channel batch normalisation (``nn.BatchNorm2d``): training uses the batch's mean
    and (biased) variance and updates running stats with the unbiased variance; inference
    uses the running stats, and so does a frozen layer (``trainable=False``) in training:
    freezing it for fine-tuning keeps it exactly as it was. ``gamma``/``beta`` are
    ``(C,)``."""

    kind = "batch_norm"

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        *,
        dtype: Any = np.float32,
        name: str | None = None,
        enabled: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, enabled=enabled, trainable=trainable)
        self.num_features = int(as_pair(num_features, "num_features")[0])
        self.eps, self.momentum = float(eps), float(momentum)
        c = self.num_features
        self.params = {"gamma": np.ones(c, dtype=dtype), "beta": np.zeros(c, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.buffers = {
            "running_mean": np.zeros(c, dtype=dtype),
            "running_var": np.ones(c, dtype=dtype),
        }

    def describe(self) -> str:
        return f"BatchNorm {self.num_features}"

    def _output_shape(self, shape: Shape, index: int | None) -> Shape:
        self._need_map(shape, index)
        if shape[0] != self.num_features:
            raise ShapeError(
                f"{self.label(index)} expects {self.num_features} channels but its "
                f"input has {shape[0]}: set num_features to {shape[0]}"
            )
        return shape

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        xb = x if x.ndim == 4 else x[None]
        gamma, beta = self.params["gamma"], self.params["beta"]
        training = training and self.trainable  # frozen: keeps its statistics (fine-tuning)
        with np.errstate(all="ignore"):
            if training:
                mean = xb.mean(axis=(0, 2, 3))
                var = xb.var(axis=(0, 2, 3))
                n = xb.size // xb.shape[1]
                m = self.momentum
                rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
                rm *= 1 - m
                rm += m * mean.astype(rm.dtype)
                rv *= 1 - m
                rv += m * (var * n / max(n - 1, 1)).astype(rv.dtype)
            else:
                mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            inv = 1.0 / np.sqrt(var + self.eps)
            xhat = (xb - mean[None, :, None, None]) * inv[None, :, None, None]
            out = xhat * gamma[None, :, None, None] + beta[None, :, None, None]
        out = out.astype(np.result_type(x.dtype, gamma.dtype), copy=False)
        return (out if x.ndim == 4 else out[0]), (xhat, inv, training, x.ndim)

    def _backward(self, grad: np.ndarray, ctx: Any) -> np.ndarray:
        xhat, inv, training, ndim = ctx
        g = grad if ndim == 4 else grad[None]
        gamma = self.params["gamma"][None, :, None, None]
        self._accumulate("gamma", (g * xhat).sum(axis=(0, 2, 3)))
        self._accumulate("beta", g.sum(axis=(0, 2, 3)))
        gxhat = g * gamma
        if training:
            mean_g = gxhat.mean(axis=(0, 2, 3), keepdims=True)
            mean_gx = (gxhat * xhat).mean(axis=(0, 2, 3), keepdims=True)
            gx = (gxhat - mean_g - xhat * mean_gx) * inv[None, :, None, None]
        else:
            gx = gxhat * inv[None, :, None, None]
        return gx if ndim == 4 else gx[0]

    def _explain(self, x: np.ndarray, row: int, col: int, channel: int) -> Explanation:
        mu = float(self.buffers["running_mean"][channel])
        var = float(self.buffers["running_var"][channel])
        g, b = float(self.params["gamma"][channel]), float(self.params["beta"][channel])

        def f(v: np.ndarray) -> np.ndarray:
            return (v - mu) / np.sqrt(var + self.eps) * g + b

        formula = (
            f"(x − {fmt_number(mu)}) / √({fmt_number(var)} + {fmt_number(self.eps)})"
            f" · {fmt_number(g)} + {fmt_number(b)}"
        )
        return explain_elementwise_cell("batchnorm", f, x, (channel, row, col), self.kind, formula)

    def config(self) -> dict[str, Any]:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum}


class Dropout(Layer):
    """Inverted dropout (``nn.Dropout``): in training each value is zeroed with probability
    ``p`` and the rest scaled by ``1/(1−p)``; at inference it is the identity. The mask comes
    from the layer's own seeded generator (:meth:`reseed` makes runs repeatable)."""

    kind = "dropout"

    def __init__(
        self,
        p: float = 0.5,
        *,
        seed: int = 0,
        name: str | None = None,
        enabled: bool = True,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, enabled=enabled, trainable=trainable)
        if not 0.0 <= float(p) < 1.0:
            raise ShapeError(f"dropout probability must be in [0, 1), got {p}: use e.g. 0.5")
        self.p = float(p)
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)

    def reseed(self, seed: int) -> None:
        """Restart the mask generator (the training loop calls this for reproducibility)."""
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)

    def describe(self) -> str:
        return f"Dropout {fmt_number(self.p)}"

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        if not training or self.p == 0.0:
            return x, None
        keep = (self.rng.random(x.shape) >= self.p).astype(x.dtype) / (1.0 - self.p)
        keep = keep.astype(x.dtype, copy=False)
        return x * keep, keep

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if not self.enabled or self._ctx is None:
            return grad
        return grad * self._ctx

    def config(self) -> dict[str, Any]:
        return {"p": self.p, "seed": self.seed}


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------

LAYER_TYPES: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (Conv2D, MaxPool2D, AvgPool2D, Activation, Flatten, Dense, BatchNorm2D, Dropout)
}
"""Layer class by ``kind`` (the ``"kind"`` field of :meth:`Layer.to_dict`)."""


def layer_from_dict(
    config: Mapping[str, Any], params: Mapping[str, np.ndarray] | None = None
) -> Layer:
    """Rebuild any layer from its :meth:`Layer.to_dict` config (+ optional arrays)."""
    # The layers of merge.py and extra_layers.py subclass Layer, so they import this
    # module and register their kinds in LAYER_TYPES when imported; importing them here
    # (a no-op once loaded) makes every kind known without a circular import at load time.
    from cnn_explorer.engine import extra_layers, merge  # noqa: F401

    kind = config.get("kind")
    if kind not in LAYER_TYPES:
        raise ValueError(f"unknown layer kind {kind!r}: expected one of {', '.join(LAYER_TYPES)}")
    return LAYER_TYPES[str(kind)].from_dict(config, params)


__all__ = [
    "INITS",
    "LAYER_TYPES",
    "Activation",
    "AvgPool2D",
    "BatchNorm2D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Layer",
    "MaxPool2D",
    "as_rng",
    "init_weight",
    "layer_from_dict",
]
