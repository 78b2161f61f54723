"""A graph network: layers wired as a directed acyclic graph, not just a chain.

Real models branch and join (ResNet adds a block's input to its output, SqueezeNet and
Inception concatenate parallel convs), so an imported model is a :class:`Graph` of
:class:`Node` objects. Each node names its output tensor and the tensors it reads
(``Graph.INPUT`` or other nodes). Like :class:`~cnn_explorer.engine.network.Network`,
:meth:`Graph.forward` returns *every* tensor (the explorer shows them), and
:meth:`Graph.forward_from` recomputes only what an edit changed.

Backward walks the nodes in reverse topological order; where a tensor feeds several
nodes (a ResNet stem feeds a conv and an Add) the gradients arriving from each consumer
are *added*, and a :class:`~cnn_explorer.engine.merge.Concat` splits its gradient back into
its inputs' parts.

A chain (each node reads the previous one) is the special case a Network already is:
:meth:`Graph.from_network` / :meth:`Graph.to_network` convert, and a chain Graph computes
with exactly the same calls as the Network, so outputs and gradients are bit-identical.

Batches: tensors are ``(N, C, H, W)`` maps or ``(N, F)`` vectors. A single image
``(C, H, W)`` (or vector ``(F,)``) is accepted too; a graph with a layer that needs to
know where the batch axis is (``Layer.needs_batch_axis``: merges, softmax, reshape) then
runs it as a batch of one and returns every tensor without the batch axis again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from cnn_explorer.engine.errors import ShapeError, Stop, check_stop, nonfinite_report
from cnn_explorer.engine.layers import Layer, layer_from_dict
from cnn_explorer.engine.merge import MergeLayer
from cnn_explorer.engine.network import Network, Predictor

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Node:
    """One layer of a graph: ``name`` (unique; also names its output tensor), the
    ``layer`` (a single-input Layer or a MergeLayer) and the names of the tensors it
    reads, in order (``Graph.INPUT`` or other nodes' names)."""

    name: str
    layer: Layer
    inputs: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.inputs, str):
            object.__setattr__(self, "inputs", (self.inputs,))
        else:
            object.__setattr__(self, "inputs", tuple(self.inputs))


class Graph(Predictor):
    """A directed acyclic graph of layers with one input tensor and one output tensor."""

    INPUT: ClassVar[str] = "input"

    def __init__(self, nodes: Iterable[Node], output: str | None = None) -> None:
        """Check the wiring and order the nodes topologically.

        Raises ValueError naming the node for a duplicate or reserved name, an unknown
        input, a wrong number of inputs, a layer object used twice, or a cycle. The given
        order is kept when it is already valid; ``output`` defaults to the last node.
        """
        given = list(nodes)
        _check_nodes(given)
        self.nodes: list[Node] = _topological(given)
        self._by_name: dict[str, Node] = {n.name: n for n in self.nodes}
        if output is None:
            output = given[-1].name if given else self.INPUT
        if output != self.INPUT and output not in self._by_name:
            raise ValueError(f"the output {output!r} is not a node of the graph")
        self.output: str = output
        self._consumers: dict[str, list[str]] = {self.INPUT: []}
        for n in self.nodes:
            self._consumers[n.name] = []
        for n in self.nodes:
            for i in n.inputs:
                if n.name not in self._consumers[i]:
                    self._consumers[i].append(n.name)
        self._lifted = False  # the last forward added a batch axis (see module notes)
        self._batched = True  # the last forward's tensors have a batch axis
        self._input_like: tuple[Shape, np.dtype] | None = None

    # -- structure -----------------------------------------------------------------------
    def node(self, name: str) -> Node:
        """The node called ``name`` (KeyError with the known names otherwise)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no node named {name!r} (nodes: {', '.join(self._by_name)})") from None

    def consumers(self, name: str) -> list[str]:
        """Names of the nodes that read tensor ``name``, in topological order."""
        if name not in self._consumers:
            raise KeyError(f"no tensor named {name!r}")
        return list(self._consumers[name])

    def is_chain(self) -> bool:
        """True when every node reads exactly the previous node (the first reads the
        input), no node is a merge layer and the output is the last node: a Network."""
        prev = self.INPUT
        for n in self.nodes:
            if isinstance(n.layer, MergeLayer) or n.inputs != (prev,):
                return False
            prev = n.name
        return self.output == prev

    @property
    def layers(self) -> list[Layer]:
        """The layers in topological order (as ``Network.layers``)."""
        return [n.layer for n in self.nodes]

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __repr__(self) -> str:
        parts = [f"{n.name}={n.layer.describe()}({', '.join(n.inputs)})" for n in self.nodes]
        return f"Graph([{'; '.join(parts)}], output={self.output!r})"

    # -- shapes ----------------------------------------------------------------------------
    def output_shapes(self, input_shape: Sequence[int]) -> dict[str, Shape]:
        """Per-image shape of every tensor (``"input"`` first, then nodes in topological
        order) for a per-image ``input_shape`` such as ``(C, H, W)``. Raises the first
        ShapeError, its message starting with the node's name."""
        shapes: dict[str, Shape] = {self.INPUT: tuple(int(s) for s in input_shape)}
        for n in self.nodes:
            ins = [shapes[i] for i in n.inputs]
            try:
                if isinstance(n.layer, MergeLayer):
                    shapes[n.name] = n.layer.output_shape_many(ins)
                else:
                    shapes[n.name] = n.layer.output_shape(ins[0])
            except ShapeError as exc:
                raise ShapeError(f"node {n.name!r}: {exc}") from None
        return shapes

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        """Per-image shape of the output tensor; raises the first ShapeError."""
        return self.output_shapes(input_shape)[self.output]

    # -- forward ---------------------------------------------------------------------------
    def forward(
        self, x: np.ndarray, training: bool = False, *, stop: Stop = None
    ) -> dict[str, np.ndarray]:
        """Every tensor for ``x``: ``{"input": x, <node name>: output, ...}`` in topological
        order. NaN/inf are computed through (see :meth:`nonfinite_reports`). Raises
        ShapeError naming the node that cannot compute; ``stop`` is polled before each
        node (ForwardStopped when it says so: a caller off the GUI thread can give up
        within one layer's time)."""
        x = np.asarray(x)
        return self._forward_nodes({self.INPUT: x}, set(self._by_name), training, stop)

    def forward_from(
        self, name: str, tensors: Mapping[str, np.ndarray], training: bool = False
    ) -> dict[str, np.ndarray]:
        """Recompute node ``name`` and everything downstream of it, reusing the other
        tensors of ``tensors`` (what :meth:`forward` returned; not modified). ``name`` may
        be ``"input"`` to recompute everything from a new ``tensors["input"]``."""
        if name != self.INPUT:
            self.node(name)
        stale = self._downstream(name)
        missing = [t for t in [self.INPUT, *self._by_name] if t not in stale and t not in tensors]
        if missing:
            raise KeyError(f"forward_from({name!r}) needs the tensors {missing}")
        keep = {t: np.asarray(tensors[t]) for t in [self.INPUT, *self._by_name] if t not in stale}
        return self._forward_nodes(keep, stale, training)

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Just the output tensor (intermediate tensors are dropped as soon as no later node
        reads them)."""
        x = np.asarray(x)
        lift = self._should_lift(x)
        self._note_input(x, lift)
        tensors = {self.INPUT: x[np.newaxis] if lift else x}
        last_use = self._last_uses()
        for k, n in enumerate(self.nodes):
            tensors[n.name] = self._run(n, tensors, training)
            for i in n.inputs:
                if last_use[i] == k and i != self.output:
                    tensors.pop(i, None)
        out = tensors[self.output]
        return out[0] if lift else out

    def _should_lift(self, x: np.ndarray) -> bool:
        return x.ndim in (1, 3) and any(n.layer.needs_batch_axis for n in self.nodes)

    def _note_input(self, x: np.ndarray, lift: bool) -> None:
        self._lifted = lift
        self._batched = lift or x.ndim not in (1, 3)  # every tensor has a batch axis
        self._input_like = (tuple(x.shape), x.dtype)

    def _forward_nodes(
        self, known: dict[str, np.ndarray], todo: set[str], training: bool, stop: Stop = None
    ) -> dict[str, np.ndarray]:
        """Run the nodes in ``todo`` (topological order) given the ``known`` tensors."""
        x = known[self.INPUT]
        lift = self._should_lift(x)
        self._note_input(x, lift)
        tensors = {k: (v[np.newaxis] if lift else v) for k, v in known.items()}
        for n in self.nodes:
            if n.name in todo:
                check_stop(stop)
                tensors[n.name] = self._run(n, tensors, training)
        order = [self.INPUT, *self._by_name]
        return {k: (tensors[k][0] if lift else tensors[k]) for k in order}

    def _run(self, n: Node, tensors: Mapping[str, np.ndarray], training: bool) -> np.ndarray:
        xs = [tensors[i] for i in n.inputs]
        try:
            if isinstance(n.layer, MergeLayer):
                return n.layer.forward_many(xs, training)
            return n.layer.forward(xs[0], training)
        except ShapeError as exc:
            # Prefer the layer's shape message (it names the numbers and a fix).
            batched = [x.shape[1:] if self._batched else x.shape for x in xs]
            try:
                if isinstance(n.layer, MergeLayer):
                    n.layer.output_shape_many(batched)
                else:
                    n.layer.output_shape(batched[0])
            except ShapeError as better:
                raise ShapeError(f"node {n.name!r}: {better}") from exc
            raise ShapeError(f"node {n.name!r} ({n.layer.describe()}): {exc}") from exc

    def _downstream(self, name: str) -> set[str]:
        """``name`` (unless it is the input) and every node that depends on it."""
        found = {name}
        for n in self.nodes:
            if any(i in found for i in n.inputs):
                found.add(n.name)
        found.discard(self.INPUT)
        return found

    def _last_uses(self) -> dict[str, int]:
        """For each tensor, the position of the last node that reads it."""
        last: dict[str, int] = {}
        for k, n in enumerate(self.nodes):
            for i in n.inputs:
                last[i] = k
        return last

    # -- backward --------------------------------------------------------------------------
    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Backpropagate ``grad_out`` (shaped like the output tensor) through every node of
        the last forward, adding parameter gradients into each layer's ``grads``; returns
        the gradient w.r.t. the input (zeros if the output does not depend on it)."""
        grad = np.asarray(grad_out)
        if self._lifted:
            grad = grad[np.newaxis]
        grads = self._backward(grad, need_input=True)
        g = grads.get(self.INPUT)
        if g is None:
            assert self._input_like is not None, "backward() called before forward()"
            shape, dtype = self._input_like
            return np.zeros(shape, dtype)
        return g[0] if self._lifted else g

    def backward_to(
        self, grad: np.ndarray, wrt: str = INPUT, start: str | None = None
    ) -> np.ndarray:
        """The gradient w.r.t. tensor ``wrt`` (a node name or ``"input"``) of
        ``sum(grad · tensor start)`` after :meth:`forward`: ``grad`` is shaped like tensor
        ``start`` (default the output) and flows back only through the nodes between the
        two, fan-out gradients added as in :meth:`backward` (whose parameter gradients it
        also accumulates). Why: Grad-CAM needs d(score)/d(a conv's output) and saliency of
        an inner unit needs d(unit)/d(input), neither of which starts at the output.
        Zeros shaped like ``wrt`` when ``start`` does not depend on it."""
        start = self.output if start is None else start
        for name in (start, wrt):
            if name != self.INPUT:
                self.node(name)
        g = np.asarray(grad)
        if self._lifted:
            g = g[np.newaxis]
        got = self._backward(g, need_input=wrt == self.INPUT, start=start, stop=wrt).get(wrt)
        if got is None:
            assert self._input_like is not None, "backward_to() called before forward()"
            x_shape, dtype = self._input_like
            own_batch = self._batched and not self._lifted
            per_image = x_shape[1:] if own_batch else x_shape
            shape = x_shape if wrt == self.INPUT else self.output_shapes(per_image)[wrt]
            if own_batch and wrt != self.INPUT:
                shape = (x_shape[0], *shape)
            return np.zeros(shape, dtype)
        return got[0] if self._lifted else got

    def _backward(
        self,
        grad_out: np.ndarray,
        need_input: bool,
        start: str | None = None,
        stop: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Reverse pass from tensor ``start`` (default the output); returns the gradients
        that reached the inputs of the graph, or ``{stop: gradient}`` as soon as the
        gradient of tensor ``stop`` is complete (all its consumers are done).

        Only gradients someone needs are computed: a node's input gradient is skipped when
        nothing upstream of that input has parameters (and ``need_input`` is False), and a
        node with parameters but no such input computes its parameter gradients only
        (:meth:`Layer.backward_params`), as :meth:`Network.loss_and_grads` does.
        """
        wants: dict[str, bool] = {self.INPUT: need_input}
        for n in self.nodes:
            own = n.layer.enabled and bool(n.layer.grads)
            wants[n.name] = own or n.name == stop or any(wants[i] for i in n.inputs)
        pending: dict[str, np.ndarray] = {self.output if start is None else start: grad_out}
        for n in reversed(self.nodes):
            if n.name == stop:
                return {stop: pending[stop]} if stop in pending else {}
            g = pending.pop(n.name, None)
            if g is None or not wants[n.name]:
                continue
            if not any(wants[i] for i in n.inputs):
                n.layer.backward_params(g)  # parameters only: nobody needs the rest
                continue
            if isinstance(n.layer, MergeLayer):
                input_grads = n.layer.backward_many(g)
            else:
                input_grads = [n.layer.backward(g)]
            for i, gi in zip(n.inputs, input_grads, strict=True):
                if not wants[i]:
                    continue
                if i in pending:  # fan-out: this tensor feeds several nodes
                    pending[i] = pending[i] + gi
                else:
                    pending[i] = gi
        return pending

    def zero_grad(self) -> None:
        """Reset all parameter gradients to 0 in place."""
        for n in self.nodes:
            n.layer.zero_grad()

    # -- parameters --------------------------------------------------------------------------
    def parameters(self) -> list[tuple[str, np.ndarray]]:
        """``("conv1.weight", array)`` pairs in a stable order (node, then name)."""
        return [(f"{n.name}.{k}", v) for n in self.nodes for k, v in n.layer.params.items()]

    def gradients(self) -> list[tuple[str, np.ndarray]]:
        """Gradients matching :meth:`parameters` one to one."""
        return [(f"{n.name}.{k}", n.layer.grads[k]) for n in self.nodes for k in n.layer.params]

    def trainable_parameters(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """``(key, param, grad)`` for enabled, non-frozen layers: what an optimizer updates."""
        return [
            (f"{n.name}.{k}", v, n.layer.grads[k])
            for n in self.nodes
            if n.layer.trainable and n.layer.enabled
            for k, v in n.layer.params.items()
        ]

    def param_count(self) -> int:
        """Total number of parameters."""
        return sum(n.layer.param_count() for n in self.nodes)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer as ``{"conv1.weight": array}`` (live arrays)."""
        return {f"{n.name}.{k}": v for n in self.nodes for k, v in n.layer.state_arrays().items()}

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Copy values from :meth:`state_arrays`-style keys into the layers (in place).

        The key is split at its *last* dot, so node names may contain dots
        (``"layer1.0.conv1.weight"``); parameter names never do."""
        per_node: dict[str, dict[str, np.ndarray]] = {}
        for key, value in arrays.items():
            name, dot, param = key.rpartition(".")
            if not dot or name not in self._by_name:
                raise ValueError(f"array {key!r} does not belong to any node of the graph")
            per_node.setdefault(name, {})[param] = value
        for name, arrs in per_node.items():
            self._by_name[name].layer.load_arrays(arrs)

    def astype(self, dtype: Any) -> Graph:
        """Convert every layer's arrays to ``dtype`` in place (float64 for gradient checks)."""
        for n in self.nodes:
            n.layer.astype(dtype)
        return self

    def copy(self) -> Graph:
        """Deep copy (configs and arrays, dtype kept)."""
        nodes = [
            Node(n.name, layer_from_dict(n.layer.to_dict(), n.layer.state_arrays()), n.inputs)
            for n in self.nodes
        ]
        return Graph(nodes, self.output)

    # -- data ------------------------------------------------------------------------------
    def nonfinite_reports(self, tensors: Mapping[str, np.ndarray]) -> list[str]:
        """One sentence per tensor containing NaN/inf (``"node 'conv1' (Conv 3×3, …)
        output contains 3 NaN values"``); empty when everything is finite."""
        reports = []
        for name, value in tensors.items():
            if name == self.INPUT:
                what = "the input"
            elif name in self._by_name:
                what = f"node {name!r} ({self._by_name[name].layer.describe()}) output"
            else:
                what = f"tensor {name!r}"
            text = nonfinite_report(what, np.asarray(value))
            if text:
                reports.append(text)
        return reports

    def loss_and_grads(
        self, x: np.ndarray, y: np.ndarray, training: bool = True
    ) -> tuple[float, np.ndarray]:
        """Mean cross-entropy of ``x (N, C, H, W)`` against integer labels ``y (N,)``.

        Zeroes the gradients, runs forward (in training mode) and backward, so afterwards
        every layer's ``grads`` hold d loss / d param. Returns ``(loss, logits)``. A chain
        runs exactly as the equivalent :class:`Network` (same numbers, same speed).
        """
        if self.is_chain():
            return Network(self.layers).loss_and_grads(x, y, training)
        from cnn_explorer.engine import losses as _losses

        self.zero_grad()
        xa = np.asarray(x)
        self._note_input(xa, False)
        self._batched = True
        logits = self._call_batched(xa, training)
        loss, ctx = _losses.cross_entropy_forward(logits, y)
        self._backward(_losses.cross_entropy_backward(1.0, ctx), need_input=False)
        return float(loss), logits

    def _call_batched(self, x: np.ndarray, training: bool) -> np.ndarray:
        tensors = {self.INPUT: x}
        last_use = self._last_uses()
        for k, n in enumerate(self.nodes):
            tensors[n.name] = self._run(n, tensors, training)
            for i in n.inputs:
                if last_use[i] == k and i != self.output:
                    tensors.pop(i, None)
        return tensors[self.output]

    # -- config ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe ``{"nodes": [{"name", "inputs", "layer"}], "output"}`` (arrays:
        :meth:`state_arrays`)."""
        return {
            "nodes": [
                {"name": n.name, "inputs": list(n.inputs), "layer": n.layer.to_dict()}
                for n in self.nodes
            ],
            "output": self.output,
        }

    @classmethod
    def from_dict(
        cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
    ) -> Graph:
        """Rebuild from :meth:`to_dict` output and optional :meth:`state_arrays` values.
        A malformed description raises ValueError (or the layer's own error)."""
        items = config.get("nodes")
        if not isinstance(items, list):
            raise ValueError("a graph description needs a list of nodes")
        nodes = []
        for k, item in enumerate(items):
            if not isinstance(item, Mapping) or not {"name", "inputs", "layer"} <= set(item):
                raise ValueError(f"node {k + 1} of the graph needs a name, inputs and a layer")
            inputs = item["inputs"]
            if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
                raise ValueError(f"node {item['name']!r}: inputs must be a list of names")
            nodes.append(Node(str(item["name"]), layer_from_dict(item["layer"]), tuple(inputs)))
        output = config.get("output")
        graph = cls(nodes, None if output is None else str(output))
        if arrays:
            graph.load_state_arrays(arrays)
        return graph

    @classmethod
    def from_network(cls, net: Network) -> Graph:
        """The chain of ``net`` as a graph sharing its layer objects; node names ``"0"``,
        ``"1"``, … so the state keys are those of ``Network.state_arrays``."""
        nodes = [
            Node(str(i), layer, (cls.INPUT if i == 0 else str(i - 1),))
            for i, layer in enumerate(net.layers)
        ]
        return cls(nodes)

    def to_network(self) -> Network | None:
        """The chain as a Network sharing the layer objects, or None if not a chain. (Its
        state keys are ``"0.weight"``, …, whatever the node names.)"""
        return Network(self.layers) if self.is_chain() else None


# ------------------------------------------------------------------------------------------
# Checks and ordering
# ------------------------------------------------------------------------------------------


def _check_nodes(nodes: list[Node]) -> None:
    """Names unique and not reserved, inputs known, input counts right, layers distinct."""
    names: set[str] = set()
    for n in nodes:
        if not isinstance(n, Node):
            raise ValueError(f"graph nodes must be Node objects, got {type(n).__name__}")
        if not isinstance(n.name, str) or not n.name:
            raise ValueError(f"node names must be non-empty strings, got {n.name!r}")
        if n.name == Graph.INPUT:
            raise ValueError(f"{Graph.INPUT!r} names the graph's input: rename that node")
        if n.name in names:
            raise ValueError(f"two nodes are named {n.name!r}: node names must be unique")
        names.add(n.name)
    layer_ids: dict[int, str] = {}
    for n in nodes:
        if not isinstance(n.layer, Layer):
            raise ValueError(f"node {n.name!r} has no engine layer ({type(n.layer).__name__})")
        if id(n.layer) in layer_ids:
            raise ValueError(
                f"nodes {layer_ids[id(n.layer)]!r} and {n.name!r} share one layer object: "
                "give each node its own layer (a layer keeps its last forward for backward)"
            )
        layer_ids[id(n.layer)] = n.name
        for i in n.inputs:
            if i != Graph.INPUT and i not in names:
                raise ValueError(
                    f"node {n.name!r} reads {i!r}, which is neither {Graph.INPUT!r} nor a node"
                )
        if isinstance(n.layer, MergeLayer):
            if not n.inputs:
                raise ValueError(f"node {n.name!r} ({n.layer.describe()}) needs inputs")
        elif len(n.inputs) != 1:
            raise ValueError(
                f"node {n.name!r} ({n.layer.describe()}) takes one input, got "
                f"{len(n.inputs)}: use a merge layer (Add, Mul, Concat) to combine tensors"
            )


def _topological(nodes: list[Node]) -> list[Node]:
    """The nodes in an order where every node comes after its inputs: the given order if
    it already is one, else repeatedly the first node (in the given order) that is ready.
    Raises ValueError naming the nodes of a cycle."""
    seen = {Graph.INPUT}
    for n in nodes:
        if not all(i in seen for i in n.inputs):
            break
        seen.add(n.name)
    else:
        return list(nodes)
    done = {Graph.INPUT}
    left = list(nodes)
    order: list[Node] = []
    while left:
        ready = next((n for n in left if all(i in done for i in n.inputs)), None)
        if ready is None:
            raise ValueError(_cycle_message(left))
        order.append(ready)
        done.add(ready.name)
        left.remove(ready)
    return order


def _cycle_message(left: list[Node]) -> str:
    """Follow unresolved inputs from the first waiting node until a name repeats."""
    by_name = {n.name: n for n in left}
    path = [left[0].name]
    while True:
        nxt = next(i for i in by_name[path[-1]].inputs if i in by_name)
        if nxt in path:
            cycle = [*path[path.index(nxt) :], nxt]
            return (
                f"node {nxt!r} is part of a cycle ({' reads '.join(map(repr, cycle))}): a "
                "network must be acyclic, so remove one of these connections"
            )
        path.append(nxt)


__all__ = ["Graph", "Node"]
