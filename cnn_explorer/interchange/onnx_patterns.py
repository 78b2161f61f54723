"""Recognise multi-node ONNX spellings of one engine layer before conversion, so that a
model this app exported re-imports layer for layer.

Opset 17 has no circular padding and no tanh-approximated GELU, so the exporter spells
them out (:mod:`onnx_export_ops`); torch does the same for GELU. Matched exactly, each
spelling is rewritten here into the one ONNX node that says it (``Pad`` with
``mode="wrap"``, ``Gelu`` with ``approximate="tanh"``, ``Softplus`` with this importer's
own ``beta`` and ``threshold`` attributes), which the converters then map to
one engine layer (a circular pad in front of a Conv folds into its ``padding_mode``).
Anything that only looks similar is left as it is and converted node by node (or
refused, naming the op).

The rewritten nodes are never evaluated: the self-check still runs the original file.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from cnn_explorer.interchange.model import ReportEntry

GELU_CUBE = 0.044715
GELU_SCALE = math.sqrt(2.0 / math.pi)
_TO_END = 1 << 30
"""A Slice ``end`` at least this large reads to the end of the axis."""


@dataclass
class Rewritten:
    """The node list to convert, and what the rewrites did (for the import report)."""

    nodes: list[onnx.NodeProto]
    entries: list[ReportEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Graph:
    """Producers, consumers and constant values of an ONNX node list."""

    def __init__(
        self, nodes: list[onnx.NodeProto], consts: Mapping[str, np.ndarray], outputs: set[str]
    ):
        self.nodes = nodes
        self.outputs = outputs
        self.consts: dict[str, np.ndarray] = dict(consts)
        for n in nodes:
            if n.op_type == "Constant" and n.output:
                for a in n.attribute:
                    if a.name == "value":
                        self.consts[n.output[0]] = numpy_helper.to_array(a.t)
                    elif a.name in ("value_float", "value_int"):
                        self.consts[n.output[0]] = np.asarray(helper.get_attribute_value(a))
        self.producer = {o: n for n in nodes for o in n.output if o}
        self.uses: Counter[str] = Counter(outputs)
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in nodes:
            for i in n.input:
                if i:
                    self.uses[i] += 1
                    self.consumers.setdefault(i, []).append(n)

    def made_by(self, name: str, op: str) -> onnx.NodeProto | None:
        """The node of type ``op`` making ``name``, when only one node reads it."""
        node = self.producer.get(name)
        if node is None or node.op_type != op or self.uses[name] != 1:
            return None
        return node

    def ints(self, name: str) -> list[int] | None:
        v = self.consts.get(name)
        return None if v is None or v.dtype.kind not in "iu" else [int(a) for a in v.ravel()]

    def scalar(self, name: str, want: float) -> bool:
        v = self.consts.get(name)
        return (
            v is not None and v.size == 1 and math.isclose(float(v.ravel()[0]), want, rel_tol=1e-6)
        )


def _attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


# -- circular padding: Slice + Concat --------------------------------------------------------


def _wrap_slice(g: _Graph, name: str, x: str, axis: int, top: bool) -> int:
    """The rows/columns the Slice making ``name`` wraps round (0 if it is not one):
    ``x[-k:]`` along ``axis`` for the top, ``x[:k]`` for the bottom."""
    s = g.made_by(name, "Slice")
    if s is None or len(s.input) < 4 or s.input[0] != x:
        return 0
    starts, ends, axes = g.ints(s.input[1]), g.ints(s.input[2]), g.ints(s.input[3])
    steps = g.ints(s.input[4]) if len(s.input) > 4 and s.input[4] else [1]
    if None in (starts, ends, axes, steps) or [len(v or []) for v in (starts, ends, axes)] != [
        1,
        1,
        1,
    ]:
        return 0
    assert starts and ends and axes
    if steps != [1] or axes[0] % 4 != axis:
        return 0
    if top:
        return -starts[0] if starts[0] < 0 and ends[0] >= _TO_END else 0
    return ends[0] if starts[0] == 0 and ends[0] > 0 else 0


def _circular_concat(g: _Graph, c: onnx.NodeProto) -> tuple[str, list[int]] | None:
    """``(x, ONNX pads)`` when Concat ``c`` is ``[x[-k:], x, x[:m]]`` along H or W."""
    axis = int(_attr(c, "axis", 1)) % 4  # type: ignore[call-overload]
    ins = list(c.input)
    if axis not in (2, 3) or len(ins) not in (2, 3):
        return None
    for x_at in (1,) if len(ins) == 3 else (0, 1):
        x = ins[x_at]
        before = _wrap_slice(g, ins[0], x, axis, True) if x_at == 1 else 0
        after = _wrap_slice(g, ins[x_at + 1], x, axis, False) if x_at + 1 < len(ins) else 0
        if (x_at == 1 and not before) or (x_at + 1 < len(ins) and not after):
            continue
        pads = [0] * 8
        pads[axis], pads[axis + 4] = before, after
        return x, pads
    return None


def _pad_node(name: str, x: str, out: str, pads: list[int]) -> list[onnx.NodeProto]:
    value = numpy_helper.from_array(np.asarray(pads, np.int64), f"{name}/pads")
    return [
        helper.make_node("Constant", [], [f"{name}/pads"], name=f"{name}/pads", value=value),
        helper.make_node("Pad", [x, f"{name}/pads"], [out], name=name, mode="wrap"),
    ]


def _rewrite_circular(
    nodes: list[onnx.NodeProto], g: _Graph, out: Rewritten
) -> list[onnx.NodeProto]:
    """Each wrap-round Concat becomes one ``Pad(mode="wrap")``; a rows pad feeding only a
    columns pad, and a pad feeding only an Identity, merge into one."""
    gone: set[int] = set()
    pads_of: dict[str, tuple[str, list[int], onnx.NodeProto]] = {}
    for c in nodes:
        if c.op_type != "Concat":
            continue
        found = _circular_concat(g, c)
        if found is None:
            continue
        x, pads = found
        for i in c.input:
            if i != x:
                gone.add(id(g.producer[i]))
                out.entries.append(ReportEntry(g.producer[i].name, "Slice", "transformed", ""))
        # merge with a wrap pad that only feeds this one (rows, then columns)
        if x in pads_of and _only_reader(g, x, c):
            x0, p0, first = pads_of.pop(x)
            gone.add(id(first))
            x, pads = x0, [a + b for a, b in zip(p0, pads, strict=True)]
        pads_of[c.output[0]] = (x, pads, c)
    if not pads_of:
        return nodes
    result: list[onnx.NodeProto] = []
    for n in nodes:
        if id(n) in gone:
            continue
        key = n.output[0] if n.output else ""
        if key in pads_of:
            x, pads, _ = pads_of[key]
            name, target = n.name or key, key
            ident = g.consumers.get(key, [])
            if len(ident) == 1 and ident[0].op_type == "Identity" and g.uses[key] == 1:
                name, target = ident[0].name or ident[0].output[0], ident[0].output[0]
                gone.add(id(ident[0]))
            result.extend(_pad_node(name, x, target, pads))
            out.notes.append(
                f"{name}: Slice and Concat nodes that wrap rows and columns round read as "
                f"circular padding {_engine_pads(pads)}"
            )
        elif id(n) not in gone:
            result.append(n)
    for e in out.entries:
        e.detail = e.detail or "part of circular padding (Slice + Concat → Pad2D circular)"
    return [n for n in result if id(n) not in gone]


def _only_reader(g: _Graph, name: str, node: onnx.NodeProto) -> bool:
    """True when ``node`` (and the Slices it is built from) are all that read ``name``."""
    readers = g.consumers.get(name, [])
    ours = all(r is node or (r.op_type == "Slice" and r.output[0] in node.input) for r in readers)
    return ours and g.uses[name] == len(readers)


def _engine_pads(pads: list[int]) -> tuple[int, int, int, int]:
    return (pads[2], pads[6], pads[3], pads[7])


# -- GELU with the tanh approximation --------------------------------------------------------


def _operands(g: _Graph, node: onnx.NodeProto | None, op: str) -> list[str] | None:
    return list(node.input) if node is not None and node.op_type == op else None


def _split_const(g: _Graph, ins: list[str] | None, want: float) -> str | None:
    """The non-constant operand of a binary node whose other operand is ``want``."""
    if ins is None or len(ins) != 2:
        return None
    for k in (0, 1):
        if g.scalar(ins[k], want) and ins[1 - k] not in g.consts:
            return ins[1 - k]
    return None


def _is_cube(g: _Graph, name: str, x: str) -> bool:
    ins = _operands(g, g.made_by(name, "Mul"), "Mul")
    if ins is None or x not in ins:
        return False
    other = ins[1] if ins[0] == x else ins[0]
    sq = _operands(g, g.made_by(other, "Mul"), "Mul")
    return sq == [x, x]


def _product_leaves(g: _Graph, name: str, stop: set[str], inner: list[onnx.NodeProto]) -> list[str]:
    node = g.producer.get(name)
    if name in stop or node is None or node.op_type != "Mul" or g.uses[name] != 1:
        return [name]
    inner.append(node)
    return [leaf for i in node.input for leaf in _product_leaves(g, i, stop, inner)]


def _gelu_at(
    g: _Graph, t: onnx.NodeProto
) -> tuple[str, onnx.NodeProto, list[onnx.NodeProto]] | None:
    """``(x, final node, all pattern nodes)`` when Tanh ``t`` is the heart of
    ``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``."""
    arg_node = g.made_by(t.input[0], "Mul")
    inner = _split_const(g, _operands(g, arg_node, "Mul"), GELU_SCALE)
    add_node = g.made_by(inner, "Add") if inner else None
    ins = _operands(g, add_node, "Add")
    if ins is None or arg_node is None or add_node is None:
        return None
    for k in (0, 1):
        x, cx3 = ins[k], ins[1 - k]
        cube_mul = g.made_by(cx3, "Mul")
        x3 = _split_const(g, _operands(g, cube_mul, "Mul"), GELU_CUBE)
        if cube_mul is None or x3 is None or not _is_cube(g, x3, x):
            continue
        one_t_readers = g.consumers.get(t.output[0], [])
        if len(one_t_readers) != 1 or g.uses[t.output[0]] != 1:
            return None
        one_node = one_t_readers[0]
        if _split_const(g, _operands(g, one_node, "Add"), 1.0) != t.output[0]:
            return None
        # climb the Mul tree above (1 + tanh) until its factors are {x, 0.5, 1 + tanh}
        node = _single_reader(g, one_node.output[0], "Mul")
        for _ in range(3):
            if node is None:
                return None
            tree: list[onnx.NodeProto] = []
            leaves = _product_leaves(g, node.output[0], {x, one_node.output[0]}, tree)
            tree = [n for n in tree if n is not node]
            halves = [v for v in leaves if g.scalar(v, 0.5)]
            rest = sorted(v for v in leaves if not g.scalar(v, 0.5))
            if len(halves) == 1 and rest == sorted([x, one_node.output[0]]):
                x3_node = g.producer[x3]
                sq_node = g.producer[next(i for i in x3_node.input if i != x)]
                parts = [sq_node, x3_node, cube_mul, add_node, arg_node, t, one_node, *tree, node]
                return x, node, parts
            node = _single_reader(g, node.output[0], "Mul")
        return None
    return None


def _single_reader(g: _Graph, name: str, op: str) -> onnx.NodeProto | None:
    readers = g.consumers.get(name, [])
    if len(readers) != 1 or g.uses[name] != 1 or readers[0].op_type != op:
        return None
    return readers[0]


def _rewrite_gelu(nodes: list[onnx.NodeProto], g: _Graph, out: Rewritten) -> list[onnx.NodeProto]:
    gone: dict[int, onnx.NodeProto] = {}
    for t in nodes:
        if t.op_type != "Tanh" or id(t) in gone:
            continue
        found = _gelu_at(g, t)
        if found is None:
            continue
        x, final, parts = found
        if any(id(p) in gone for p in parts):
            continue
        name = final.name or final.output[0]
        gelu = helper.make_node("Gelu", [x], [final.output[0]], name=name, approximate="tanh")
        for p in parts:
            gone[id(p)] = gelu
            if p is not final:
                out.entries.append(
                    ReportEntry(p.name or p.output[0], p.op_type, "transformed", "part of GELU")
                )
        out.notes.append(
            f"{name}: {len(parts)} nodes computing 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) "
            "read as one GELU (tanh) activation"
        )
    result = []
    for n in nodes:
        if id(n) not in gone:
            result.append(n)
        elif gone[id(n)].output[0] == n.output[0]:
            result.append(gone[id(n)])
    return result


# -- Softplus with beta and threshold -----------------------------------------------------------


def _scalar_of(g: _Graph, name: str) -> float | None:
    v = g.consts.get(name)
    return float(v.ravel()[0]) if v is not None and v.size == 1 and v.dtype.kind == "f" else None


def _softplus_at(g: _Graph, sp: onnx.NodeProto) -> tuple[str, float, float, list[onnx.NodeProto]]:
    """``(x, beta, threshold, pattern nodes with the final one last)`` around ``sp``:
    ``Softplus(β·x)/β``, and ``Where(β·x > threshold, x, …)`` (torch's rule), each part
    optional. A plain Softplus gives ``(x, 1, 20, [sp])``."""
    bx = sp.input[0]
    x, beta, parts = bx, 1.0, [sp]
    mul = g.producer.get(bx)
    if mul is not None and mul.op_type == "Mul" and len(mul.input) == 2:
        k = next((i for i in (0, 1) if _scalar_of(g, mul.input[i]) is not None), None)
        readers = {r.op_type for r in g.consumers.get(bx, [])}
        if k is not None and readers <= {"Softplus", "Greater"} and bx not in g.outputs:
            beta, x = _scalar_of(g, mul.input[k]) or 1.0, mul.input[1 - k]
            parts.insert(0, mul)
    out = sp.output[0]
    div = _single_reader(g, out, "Div")
    if beta != 1.0:
        if div is None or div.input[0] != out or _scalar_of(g, div.input[1]) != beta:
            x, beta, parts = bx, 1.0, [sp]  # a Mul before a plain Softplus: not β
        else:
            parts.append(div)
            out = div.output[0]
    where = _single_reader(g, out, "Where")
    if where is not None and list(where.input[1:]) == [x, out]:
        greater = g.made_by(where.input[0], "Greater")
        thr = None if greater is None else _scalar_of(g, greater.input[1])
        only_ours = parts[0].op_type != "Mul" or g.uses[bx] == 2  # Softplus and Greater
        if greater is not None and greater.input[0] == bx and thr is not None and only_ours:
            return x, beta, thr, [*parts, greater, where]
    if parts[0].op_type == "Mul" and g.uses[bx] != 1:
        return bx, 1.0, 20.0, [sp]  # β·x read by something else
    return x, beta, 20.0, parts


def _rewrite_softplus(
    nodes: list[onnx.NodeProto], g: _Graph, out: Rewritten
) -> list[onnx.NodeProto]:
    """``Softplus(β·x)/β`` (torch's and our export of β ≠ 1) and our ``Where`` for a
    threshold below 20 become one ``Softplus`` carrying ``beta`` and ``threshold`` (an
    attribute pair only this importer reads)."""
    replaced: dict[int, onnx.NodeProto | None] = {}
    for sp in nodes:
        if sp.op_type != "Softplus" or id(sp) in replaced:
            continue
        x, beta, thr, parts = _softplus_at(g, sp)
        if len(parts) == 1:
            continue
        final = parts[-1]
        name = final.name or final.output[0]
        node = helper.make_node(
            "Softplus", [x], [final.output[0]], name=name, beta=beta, threshold=thr
        )
        for p in parts:
            replaced[id(p)] = node if p is final else None
            if p is not final:
                out.entries.append(
                    ReportEntry(p.name or p.output[0], p.op_type, "transformed", "part of Softplus")
                )
        out.notes.append(
            f"{name}: {len(parts)} nodes read as one Softplus (beta {beta:g}, threshold {thr:g})"
        )
    result = []
    for n in nodes:
        if id(n) not in replaced:
            result.append(n)
        elif replaced[id(n)] is not None:
            result.append(replaced[id(n)])  # type: ignore[arg-type]
    return result


def rewrite(
    nodes: Iterable[onnx.NodeProto], consts: Mapping[str, np.ndarray], outputs: Iterable[str]
) -> Rewritten:
    """``nodes`` with the known multi-node spellings rewritten (topological order kept)."""
    out = Rewritten(list(nodes))
    for step in (_rewrite_circular, _rewrite_gelu, _rewrite_softplus):
        g = _Graph(out.nodes, consts, set(outputs))
        out.nodes = step(out.nodes, g, out)
    return out
