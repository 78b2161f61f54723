"""Write an engine Network or Graph as PyTorch: a readable ``model.py`` (an
``nn.Sequential`` for a chain, an ``nn.Module`` with ``forward()`` for a graph) plus
``model.safetensors`` whose keys are exactly the generated module's ``state_dict`` keys, so
``model.load_state_dict(load_file(...), strict=True)`` just works.

No torch here: the code is text and the weights go through ``safetensors.numpy``. A student
opens the file, so each module gets a comment naming the engine layer it came from.

Where ``torch.nn`` has no single module for what the engine does, the layer becomes a
small sequence: asymmetric padding is a ``ZeroPad2d``/``ReflectionPad2d``/… before the
conv or pool, ceil-mode overhang that torch would count differently becomes explicit
padding, and a true convolution (``flip_kernel``) is exported with the flipped weights.

The safetensors header also carries the architecture (the exported nodes in the
``Graph.to_dict()`` format, see :data:`METADATA_ARCHITECTURE`) and which engine array each
key holds, so :mod:`cnn_explorer.interchange.safetensors_import` can rebuild the model.
"""

from __future__ import annotations

import json
import keyword
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save

from cnn_explorer.interchange.export_common import (
    INPUT,
    ExportError,
    ExportNode,
    ExportPlan,
    export_nodes,
    write_bytes_atomic,
)
from cnn_explorer.interchange.model import (
    METADATA_CLASS_NAMES,
    METADATA_PREPROCESSING,
    Preprocessing,
)
from cnn_explorer.interchange.torch_export_ops import HELPERS, TRANSLATORS, Piece, TorchModule

METADATA_ARCHITECTURE = "cnn_explorer.architecture"
"""safetensors metadata key: JSON ``{"graph": Graph.to_dict(), "input_shape": [C, H, W]}``."""

METADATA_KEYS = "cnn_explorer.keys"
"""safetensors metadata key: JSON ``{torch key: engine state key}`` (``"3.weight"``)."""


@dataclass
class TorchExport:
    """The generated ``model.py`` text, the tensors of ``model.safetensors`` keyed like
    the module's ``state_dict``, and the safetensors header metadata."""

    source: str
    tensors: dict[str, np.ndarray]
    metadata: dict[str, str]


# --------------------------------------------------------------------------------------
# Code generation
# --------------------------------------------------------------------------------------


_RESERVED = frozenset({"x", "self", "torch", "nn", "forward", "training", "input", "Model"})
"""Names the generated code already uses (``x`` is forward()'s input)."""


def _identifier(name: str, taken: set[str]) -> str:
    """A Python attribute name for a node: ``"layer1.0.conv1"`` → ``layer1_0_conv1``,
    ``"3"`` → ``layer3``; unique among ``taken``."""
    ident = re.sub(r"\W", "_", name).strip("_") or "node"
    if not ident[0].isalpha():
        ident = f"layer{ident}"
    base, k = ident, 1
    while ident in taken or ident in _RESERVED or keyword.iskeyword(ident):
        k += 1
        ident = f"{base}_{k}"
    taken.add(ident)
    return ident


def _pieces(plan: ExportPlan) -> list[Piece]:
    pieces = []
    for node in plan.nodes:
        translate = TRANSLATORS.get(node.layer.kind)
        if translate is None:
            raise ExportError(
                f"node {node.name!r} ({node.layer.describe()}) cannot be written as PyTorch: "
                f"layer kind {node.layer.kind!r} is not supported by the exporter"
            )
        pieces.append(translate(node, plan))
    return pieces


def _comment(node: ExportNode, plan: ExportPlan) -> str:
    shape = "×".join(str(s) for s in plan.shapes[node.name])
    return f"{node.layer.describe()} → {shape}"


def _sequential(
    plan: ExportPlan, pieces: list[Piece], tensors: dict[str, np.ndarray], keys: dict[str, str]
) -> list[str]:
    """``build_model()`` returning one ``nn.Sequential``: a chain whose every layer is a
    module (positional keys ``"4.weight"``)."""
    lines = ["def build_model() -> nn.Sequential:", "    return nn.Sequential("]
    index = 0
    for node, piece in zip(plan.nodes, pieces, strict=True):
        lines.append(f"        # node {node.name}: {_comment(node, plan)}")
        for mod in piece.modules:
            lines.append(f"        {mod.code},  # [{index}]")
            _collect(str(index), mod, tensors, keys)
            index += 1
    lines.append("    )")
    return lines


def _collect(
    prefix: str, mod: TorchModule, tensors: dict[str, np.ndarray], keys: dict[str, str]
) -> None:
    for pname, arr in mod.arrays.items():
        tensors[f"{prefix}.{pname}"] = arr
        src = mod.sources.get(pname)
        if src is not None:
            keys[f"{prefix}.{pname}"] = src


# The whole class text is laid out here at once: splitting __init__ and forward into
# separate passes would walk the nodes twice and keep two name tables in step.
def _module_class(
    plan: ExportPlan, pieces: list[Piece], tensors: dict[str, np.ndarray], keys: dict[str, str]
) -> list[str]:
    """``class Model(nn.Module)`` with one attribute per node and a ``forward()``."""
    init = [
        "class Model(nn.Module):",
        '    """The exported graph: one attribute per node, wired in forward()."""',
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
    ]
    fwd = ["    def forward(self, x: torch.Tensor) -> torch.Tensor:"]
    taken: set[str] = set()
    var = {INPUT: "x"}
    for node, piece in zip(plan.nodes, pieces, strict=True):
        ident = _identifier(node.name, taken)
        args = [var[i] for i in node.inputs]
        fwd.append(f"        # {node.name}: {_comment(node, plan)}")
        if piece.modules:
            if len(piece.modules) == 1:
                init.append(f"        self.{ident} = {piece.modules[0].code}")
                _collect(ident, piece.modules[0], tensors, keys)
            else:
                init.append(f"        self.{ident} = nn.Sequential(")
                for j, mod in enumerate(piece.modules):
                    init.append(f"            {mod.code},")
                    _collect(f"{ident}.{j}", mod, tensors, keys)
                init.append("        )")
            fwd.append(f"        {ident} = self.{ident}({', '.join(args)})")
        else:
            assert piece.expr is not None
            fwd.append(f"        {ident} = {piece.expr.format(*args)}")
        var[node.name] = ident
    fwd.append(f"        return {var[plan.output]}")
    return [*init, "", *fwd, "", "", "def build_model() -> Model:", "    return Model()"]


def _header(plan: ExportPlan, meta: dict[str, str], names: list[str], filename: str) -> list[str]:
    c_h_w = plan.shapes[INPUT]
    stem = Path(filename).stem
    doc = [
        '"""A model exported by CNN Explorer.',
        "",
        f"Input: a batch of shape (N, {', '.join(str(s) for s in c_h_w)}); "
        f"output: (N, {', '.join(str(s) for s in plan.shapes[plan.output])}).",
        "",
        "Load the weights saved beside this file and run it:",
        "",
        "    import torch",
        "    from safetensors.torch import load_file",
        f"    from {stem} import build_model",
        "",
        "    model = build_model()",
        f'    model.load_state_dict(load_file("{stem}.safetensors"), strict=True)',
        "    model.eval()  # batch norm uses its running statistics, dropout is off",
        f"    logits = model(torch.zeros(1, {', '.join(str(s) for s in c_h_w)}))",
        '"""',
        "",
        "import torch",
        "from torch import nn",
        "",
        f"INPUT_SHAPE = {tuple(int(s) for s in c_h_w)!r}  # one image, without the batch axis",
        f"CLASS_NAMES = {names!r}",
    ]
    if METADATA_PREPROCESSING in meta:
        prep = json.loads(meta[METADATA_PREPROCESSING])
        doc.append(
            "# Preprocessing: pixels × scale, then (value − mean) / std per channel: "
            f"scale={prep['scale']!r}, mean={prep['mean']!r}, std={prep['std']!r}, "
            f"colour={prep['colour']!r}"
        )
    return [*doc, "", ""]


def _stored_config(node: ExportNode) -> dict[str, Any]:
    """The layer's config as the file stores it: a true convolution's weights are saved
    flipped (torch has only cross-correlation), so it comes back as a plain convolution
    that computes the same."""
    config = node.layer.to_dict()
    if config.get("flip_kernel"):
        config["flip_kernel"] = False
    return config


def _metadata(
    plan: ExportPlan,
    preprocessing: Preprocessing | None,
    class_names: Sequence[str] | None,
    keys: dict[str, str],
) -> tuple[dict[str, str], list[str]]:
    names = [str(n) for n in (class_names or (preprocessing.class_names if preprocessing else ()))]
    graph = {
        "nodes": [
            {"name": n.name, "inputs": list(n.inputs), "layer": _stored_config(n)}
            for n in plan.nodes
        ],
        "output": plan.output,
    }
    arch = {"graph": graph, "input_shape": list(plan.shapes[INPUT])}
    meta = {
        "format": "pt",
        METADATA_ARCHITECTURE: json.dumps(arch, allow_nan=False),
        METADATA_KEYS: json.dumps(keys),
    }
    if preprocessing is not None:
        meta[METADATA_PREPROCESSING] = preprocessing.to_json()
    if names:
        meta[METADATA_CLASS_NAMES] = json.dumps(names)
    return meta, names


def to_torch(
    model: Any,
    input_shape: Sequence[int],
    *,
    preprocessing: Preprocessing | None = None,
    class_names: Sequence[str] | None = None,
    filename: str = "model.py",
) -> TorchExport:
    """The PyTorch source and weights of ``model`` (an engine Network or Graph) for the
    per-image ``input_shape``. ``filename`` only shapes the usage note in the docstring.

    Raises :class:`ExportError` naming the first layer that ``torch.nn`` cannot express.
    """
    plan = export_nodes(model, input_shape)
    pieces = _pieces(plan)
    tensors: dict[str, np.ndarray] = {}
    keys: dict[str, str] = {}
    if plan.is_chain and all(p.modules for p in pieces):
        body = _sequential(plan, pieces, tensors, keys)
    else:
        body = _module_class(plan, pieces, tensors, keys)
    meta, names = _metadata(plan, preprocessing, class_names, keys)
    helpers = sorted({h for p in pieces for h in p.helpers})
    extra = [line for h in helpers for line in (*HELPERS[h].splitlines(), "", "")]
    source = "\n".join([*_header(plan, meta, names, filename), *extra, *body]) + "\n"
    return TorchExport(source, tensors, meta)


def save_torch(
    path: str | os.PathLike[str],
    model: Any,
    input_shape: Sequence[int],
    *,
    preprocessing: Preprocessing | None = None,
    class_names: Sequence[str] | None = None,
) -> tuple[Path, Path]:
    """Write ``path`` (``…/model.py``) and ``…/model.safetensors`` beside it, each
    atomically; returns both paths."""
    py = Path(path)
    if py.suffix != ".py":
        raise ExportError(f"a PyTorch export is written as a .py file, not {py.name!r}")
    out = to_torch(
        model, input_shape, preprocessing=preprocessing, class_names=class_names, filename=py.name
    )
    weights = py.with_suffix(".safetensors")
    write_bytes_atomic(weights, save(out.tensors, metadata=out.metadata))
    write_bytes_atomic(py, out.source.encode("utf-8"))
    return py, weights


__all__ = [
    "METADATA_ARCHITECTURE",
    "METADATA_KEYS",
    "TRANSLATORS",
    "TorchExport",
    "save_torch",
    "to_torch",
]
