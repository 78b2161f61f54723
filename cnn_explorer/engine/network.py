"""A network is a list of layers whose forward pass returns *every* map.

Showing the intermediate maps is the product, so :meth:`Network.forward` returns the list
``maps`` with ``maps[0]`` the input and ``maps[i + 1]`` the output of layer ``i``; the UI
edits one layer and calls :meth:`Network.forward_from` to recompute only from there.
:meth:`Network.validate` reports per-layer shapes or the engine's message without
computing anything, and :meth:`Network.receptive_field` / :meth:`Network.explain_cell`
answer "where does this cell come from" through the whole stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnn_explorer.engine.errors import ShapeError, Stop, check_stop, nonfinite_report
from cnn_explorer.engine.geometry import (
    Explanation,
    Region,
    Window,
    propagate_back,
)
from cnn_explorer.engine.layers import (
    Activation,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxPool2D,
    as_rng,
    layer_from_dict,
)

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerStatus:
    """Result of validating one layer for a given input shape.

    ``output_shape`` is the per-image output shape when valid, else None; ``error`` is the
    engine's message (a ShapeError text) or ``"no input"`` for layers after the first error.
    """

    index: int
    label: str
    input_shape: Shape | None
    output_shape: Shape | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when this layer can compute."""
        return self.error is None

    @property
    def message(self) -> str:
        """``"1×28×28 → 8×28×28"`` when valid, else the error."""
        if self.error is not None:
            return self.error
        assert self.input_shape is not None and self.output_shape is not None
        return f"{'×'.join(map(str, self.input_shape))} → {'×'.join(map(str, self.output_shape))}"


NO_INPUT = "no input"


class Predictor:
    """Batched prediction for anything called as ``model(x) -> output`` (a Network or a
    Graph): the same three methods, written once."""

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def predict_logits(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Outputs for a batch ``(N, ...)``, computed ``batch_size`` at a time."""
        outs = [self(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0,))

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Predicted class per sample ``(N,)`` (argmax of the logits)."""
        return np.argmax(self.predict_logits(x, batch_size), axis=-1)

    def predict_proba(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities ``(N, K)`` (softmax of the logits)."""
        from cnn_explorer.engine import losses as _losses

        return _losses.softmax(self.predict_logits(x, batch_size), -1)


class Network(Predictor):
    """An ordered stack of :class:`~cnn_explorer.engine.layers.Layer` objects."""

    def __init__(self, layers: Iterable[Layer] = ()) -> None:
        self.layers: list[Layer] = list(layers)

    # -- container ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def __repr__(self) -> str:
        return "Network([" + ", ".join(layer.describe() for layer in self.layers) + "])"

    # -- shapes ------------------------------------------------------------------------
    def validate(self, input_shape: Sequence[int]) -> list[LayerStatus]:
        """One :class:`LayerStatus` per layer for a per-image ``input_shape`` (``(C, H, W)``).

        Never raises for a bad configuration: the first invalid layer carries the
        ShapeError message, every later layer says ``"no input"``.
        """
        statuses: list[LayerStatus] = []
        shape: Shape | None = tuple(int(s) for s in input_shape)
        for i, layer in enumerate(self.layers):
            label = layer.describe()
            if shape is None:
                statuses.append(LayerStatus(i, label, None, None, NO_INPUT))
                continue
            try:
                out: Shape | None = layer.output_shape(shape, i)
                statuses.append(LayerStatus(i, label, shape, out))
            except ShapeError as exc:
                statuses.append(LayerStatus(i, label, shape, None, str(exc)))
                out = None
            shape = out
        return statuses

    def output_shapes(self, input_shape: Sequence[int]) -> list[Shape]:
        """Per-image shape of every map, input first; raises the first ShapeError."""
        shapes: list[Shape] = [tuple(int(s) for s in input_shape)]
        for i, layer in enumerate(self.layers):
            shapes.append(layer.output_shape(shapes[-1], i))
        return shapes

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        """Per-image shape of the last map; raises the first ShapeError."""
        return self.output_shapes(input_shape)[-1]

    # -- compute -----------------------------------------------------------------------
    def forward(
        self, x: np.ndarray, training: bool = False, *, stop: Stop = None
    ) -> list[np.ndarray]:
        """Every map for ``x`` (``(C, H, W)`` or ``(N, C, H, W)``): ``maps[0]`` is ``x``,
        ``maps[i + 1]`` is layer ``i``'s output. NaN/inf are computed through (see
        :meth:`nonfinite_reports`). Raises ShapeError (with the layer position) when a
        layer cannot compute; ``stop`` is polled before each layer (ForwardStopped)."""
        return self.forward_from(0, [np.asarray(x)], training, stop=stop)

    def forward_from(
        self, k: int, maps: Sequence[np.ndarray], training: bool = False, *, stop: Stop = None
    ) -> list[np.ndarray]:
        """Recompute layers ``k..`` reusing ``maps[:k + 1]`` (``maps[k]`` is layer ``k``'s
        input). Returns a new full list; ``maps`` itself is not modified."""
        if not 0 <= k <= len(self.layers) or len(maps) < k + 1:
            raise IndexError(f"forward_from({k}) needs maps[0..{k}], got {len(maps)} maps")
        out = list(maps[: k + 1])
        for i in range(k, len(self.layers)):
            check_stop(stop)
            out.append(self._run(i, out[-1], training))
        return out

    def _run(self, i: int, x: np.ndarray, training: bool) -> np.ndarray:
        try:
            return self.layers[i].forward(x, training)
        except ShapeError as exc:
            # The op's own message lacks the layer position; prefer the layer's message.
            shape = x.shape[1:] if x.ndim in (2, 4) and self._batched(x, i) else x.shape
            try:
                self.layers[i].output_shape(shape, i)
            except ShapeError as better:
                raise better from exc
            raise ShapeError(f"{self.layers[i].label(i)}: {exc}") from exc

    def _batched(self, x: np.ndarray, i: int) -> bool:
        spatial = isinstance(self.layers[i], Conv2D | MaxPool2D) or x.ndim == 4
        return x.ndim == 4 if spatial else x.ndim == 2

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Just the last map."""
        for i in range(len(self.layers)):
            x = self._run(i, x, training)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Backpropagate ``grad_out`` (shape of the last map) through every layer, adding
        parameter gradients into each layer's ``grads``; returns the gradient w.r.t. the
        input (a saliency map)."""
        grad = grad_out
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def zero_grad(self) -> None:
        """Reset all parameter gradients to 0 in place."""
        for layer in self.layers:
            layer.zero_grad()

    # -- parameters --------------------------------------------------------------------
    def parameters(self) -> list[tuple[str, np.ndarray]]:
        """``("3.weight", array)`` pairs in a stable order (layer, then name)."""
        return [
            (f"{i}.{k}", v) for i, layer in enumerate(self.layers) for k, v in layer.params.items()
        ]

    def gradients(self) -> list[tuple[str, np.ndarray]]:
        """Gradients matching :meth:`parameters` one to one."""
        return [
            (f"{i}.{k}", layer.grads[k])
            for i, layer in enumerate(self.layers)
            for k in layer.params
        ]

    def trainable_parameters(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """``(key, param, grad)`` for enabled, non-frozen layers: what an optimizer updates."""
        return [
            (f"{i}.{k}", v, layer.grads[k])
            for i, layer in enumerate(self.layers)
            if layer.trainable and layer.enabled
            for k, v in layer.params.items()
        ]

    def param_count(self) -> int:
        """Total number of parameters."""
        return sum(layer.param_count() for layer in self.layers)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer as ``{"3.weight": array}`` (live arrays, not copies)."""
        return {
            f"{i}.{k}": v
            for i, layer in enumerate(self.layers)
            for k, v in layer.state_arrays().items()
        }

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Copy values from :meth:`state_arrays`-style keys into the layers (in place)."""
        per_layer: dict[int, dict[str, np.ndarray]] = {}
        for key, value in arrays.items():
            idx, _, name = key.partition(".")
            per_layer.setdefault(int(idx), {})[name] = value
        for i, arrs in per_layer.items():
            self.layers[i].load_arrays(arrs)

    def astype(self, dtype: Any) -> Network:
        """Convert every layer's arrays to ``dtype`` in place (float64 for gradient checks)."""
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def copy(self) -> Network:
        """Deep copy (configs and arrays, dtype kept)."""
        return Network([_copy_layer(layer) for layer in self.layers])

    # -- data --------------------------------------------------------------------------
    def nonfinite_reports(self, maps: Sequence[np.ndarray]) -> list[str]:
        """One sentence per map containing NaN/inf (``"layer 2 output contains 3 NaN
        values"``); empty when everything is finite."""
        reports = []
        for i, m in enumerate(maps):
            name = (
                "the input"
                if i == 0
                else (
                    f"layer {i} ({self.layers[i - 1].describe()}) output"
                    if i - 1 < len(self.layers)
                    else f"map {i}"
                )
            )
            text = nonfinite_report(name, np.asarray(m))
            if text:
                reports.append(text)
        return reports

    def loss_and_grads(
        self, x: np.ndarray, y: np.ndarray, training: bool = True
    ) -> tuple[float, np.ndarray]:
        """Mean cross-entropy of ``x (N, C, H, W)`` against integer labels ``y (N,)``.

        Zeroes the gradients, runs forward (in training mode) and backward, so afterwards
        every layer's ``grads`` hold d loss / d param. Returns ``(loss, logits)``.
        """
        from cnn_explorer.engine import losses as _losses

        self.zero_grad()
        order = self._training_order()
        logits = np.asarray(x)
        for i in order:
            logits = self._run(i, logits, training)
        loss, ctx = _losses.cross_entropy_forward(logits, y)
        self._backward_params(_losses.cross_entropy_backward(1.0, ctx), order)
        return float(loss), logits

    def _training_order(self) -> list[int]:
        """Layer indices in the order :meth:`loss_and_grads` runs them.

        ReLU then max pooling gives exactly the same numbers as max pooling then ReLU
        (ReLU is non-decreasing, so it commutes with max; the gradient reaches the same
        winner, or is zero either way when the window's maximum is ≤ 0), and the latter
        applies the ReLU to a quarter of the values (2×2 pool): ~0.1 ms of a 3.5 ms
        batch-32 step of the default network. Only the loss and parameter gradients are
        produced in training, so the swapped maps are never seen.
        """
        order = list(range(len(self.layers)))
        i = 0
        while i + 1 < len(order):
            a, b = self.layers[order[i]], self.layers[order[i + 1]]
            if (
                isinstance(a, Activation)
                and a.activation == "relu"
                and a.enabled
                and isinstance(b, MaxPool2D)
                and b.enabled
            ):
                order[i], order[i + 1] = order[i + 1], order[i]
                i += 2
            else:
                i += 1
        return order

    def _backward_params(self, grad_out: np.ndarray, order: Sequence[int] | None = None) -> None:
        """:meth:`backward` for training: stop at the first layer with parameters.

        Nothing uses the gradient w.r.t. the input when training, so layers before the
        first one with parameters are skipped and that layer computes its parameter
        gradients only (:meth:`Layer.backward_params`; for a first Conv2D that saves the
        ``Wᵀ @ G`` product and col2im, ~10% of a small CNN's training step). ``order`` is
        the order the forward ran the layers in (:meth:`_training_order`).
        """
        layers = [self.layers[i] for i in (range(len(self.layers)) if order is None else order)]
        first = next(
            (i for i, layer in enumerate(layers) if layer.enabled and layer.grads),
            len(layers),
        )
        grad = grad_out
        for layer in reversed(layers[first + 1 :]):
            grad = layer.backward(grad)
        if first < len(layers):
            layers[first].backward_params(grad)

    # -- geometry ----------------------------------------------------------------------
    def windows(self) -> list[Window | None]:
        """Each layer's :class:`Window` (None for elementwise/flat layers)."""
        return [layer.window() for layer in self.layers]

    def receptive_field(
        self,
        input_shape: Sequence[int],
        layer_index: int,
        row: int,
        col: int,
        channel: int | None = None,
    ) -> list[Region]:
        """Which cells of maps ``0 .. layer_index`` output cell ``[channel, row, col]`` of
        layer ``layer_index`` depends on (one :class:`Region` per map, input first).

        For a vector output (after Flatten/Dense) use ``row=0`` and ``col`` = the index;
        vector maps have shape ``(1, F)`` in their region. A Dense output depends on every
        cell of its input; a Flatten output on exactly one cell.
        """
        shapes = self.output_shapes(input_shape)[: layer_index + 2]
        out_shape = shapes[layer_index + 1]
        _check_cell(out_shape, row, col, channel, layer_index)
        rows, cols = np.array([row]), np.array([col])
        chans = None if channel is None or len(out_shape) == 1 else np.array([channel])
        regions: list[Region] = []
        i = layer_index
        while i >= 0:
            layer, in_shape = self.layers[i], shapes[i]
            if len(in_shape) == 3 and len(shapes[i + 1]) == 3:
                j = i
                while j >= 0 and len(shapes[j]) == 3 and len(shapes[j + 1]) == 3:
                    j -= 1
                stack = [self.layers[k].window_for(shapes[k]) for k in range(j + 1, i + 1)]
                sizes = [(s[1], s[2]) for s in shapes[j + 1 : i + 2]]
                block = propagate_back(stack, sizes, rows, cols, chans)
                regions = [*_renumber(block, j + 1), *regions]
                rows, cols, chans = block[0].rows, block[0].cols, block[0].channels
                i = j
                continue
            rows, cols, chans, region = _back_flat(layer, in_shape, i, rows, cols, chans)
            regions.insert(0, region)
            i -= 1
        return regions

    def explain_cell(
        self,
        maps: Sequence[np.ndarray],
        layer_index: int,
        row: int,
        col: int,
        channel: int = 0,
        sample: int | None = None,
    ) -> Explanation:
        """Arithmetic of output cell ``[channel, row, col]`` of layer ``layer_index``.

        ``maps`` is what :meth:`forward` returned; for batched maps pass ``sample``.
        Vector outputs use ``col`` as the index.
        """
        x = np.asarray(maps[layer_index])
        if sample is not None:
            x = x[sample]
        return self.layers[layer_index].explain(x, row, col, channel)

    # -- config ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe ``{"layers": [layer.to_dict(), ...]}`` (arrays: :meth:`state_arrays`)."""
        return {"layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(
        cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
    ) -> Network:
        """Rebuild from :meth:`to_dict` output and optional :meth:`state_arrays` values."""
        net = cls(layer_from_dict(c) for c in config["layers"])
        if arrays:
            net.load_state_arrays(arrays)
        return net


def _check_cell(shape: Shape, row: int, col: int, channel: int | None, index: int) -> None:
    if len(shape) == 1:
        ok = row == 0 and 0 <= col < shape[0]
    else:
        ok = (
            0 <= row < shape[1]
            and 0 <= col < shape[2]
            and (channel is None or 0 <= channel < shape[0])
        )
    if not ok:
        raise IndexError(
            f"cell ({channel}, {row}, {col}) is outside the "
            f"{'×'.join(map(str, shape))} output of layer {index + 1}"
        )


def _renumber(block: list[Region], offset: int) -> list[Region]:
    return [
        Region(
            r.map_index + offset,
            r.shape,
            r.rows,
            r.cols,
            r.touched_rows,
            r.touched_cols,
            r.channels,
        )
        for r in block
    ]


def _back_flat(
    layer: Layer,
    in_shape: Shape,
    i: int,
    rows: np.ndarray,
    cols: np.ndarray,
    chans: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Region]:
    """Dependencies through a layer whose output is a vector (Flatten, Dense, or an
    elementwise layer on a vector). Returns the new (rows, cols, channels) and the Region
    of map ``i`` (vectors are ``(1, F)``)."""
    hw = (in_shape[1], in_shape[2]) if len(in_shape) == 3 else (1, in_shape[0])
    everything = np.arange(hw[0]), np.arange(hw[1])
    if isinstance(layer, Dense) and layer.enabled:
        return *everything, None, Region(i, hw, *everything)
    if len(in_shape) == 1:  # elementwise on a vector, or a pass-through
        return rows, cols, None, Region(i, hw, rows, cols)
    # Flatten of a (C, H, W) map: one flat index is one cell; "all" stays all.
    if cols.size > 1:
        return *everything, None, Region(i, hw, *everything)
    c, r, q = (np.array([int(v)]) for v in np.unravel_index(int(cols[0]), in_shape))
    return r, q, c, Region(i, hw, r, q, channels=c)


# --------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------


def default_classifier(input_shape: Sequence[int], num_classes: int, seed: int = 0) -> Network:
    """The standard small CNN: conv(→8, 3×3, pad 1)–ReLU–maxpool 2–conv(8→16, 3×3, pad 1)–
    ReLU–maxpool 2–flatten–dense(→classes). He init for convs, Xavier for the head."""
    c = int(input_shape[0])
    rng = as_rng(seed)
    convs: list[Layer] = [
        Conv2D(c, 8, 3, padding=1, rng=rng),
        Activation("relu"),
        MaxPool2D(2),
        Conv2D(8, 16, 3, padding=1, rng=rng),
        Activation("relu"),
        MaxPool2D(2),
    ]
    return with_classifier_head(convs, input_shape, num_classes, rng)


def with_classifier_head(
    conv_layers: Sequence[Layer],
    input_shape: Sequence[int],
    num_classes: int,
    seed: int | np.random.Generator = 0,
    copy: bool = True,
) -> Network:
    """``conv_layers`` + Flatten + Dense(→num_classes), the Dense sized from the stack's
    output for ``input_shape`` (Xavier init from ``seed``).

    By default the conv layers are deep-copied: training then runs in another thread
    without racing the explorer's own forward passes on the same layer objects (each layer
    keeps its last forward context for backward). Copy trained weights back with
    ``layer.load_arrays(trained.state_arrays())``. Raises ShapeError if the stack is invalid
    for ``input_shape``.
    """
    layers = [_copy_layer(layer) for layer in conv_layers] if copy else list(conv_layers)
    out = Network(layers).output_shape(input_shape)
    features = int(np.prod(out))
    head: list[Layer] = [] if len(out) == 1 else [Flatten()]
    head.append(Dense(features, int(num_classes), rng=as_rng(seed), init="xavier"))
    return Network([*layers, *head])


def _copy_layer(layer: Layer) -> Layer:
    return layer_from_dict(layer.to_dict(), layer.state_arrays())


__all__ = [
    "NO_INPUT",
    "LayerStatus",
    "Network",
    "default_classifier",
    "with_classifier_head",
]
