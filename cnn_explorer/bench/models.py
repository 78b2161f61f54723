"""``python -m cnn_explorer.bench.models [--quick] [--repeat N] [--stat median|min] [--only TEXT]``.

Whole-model forward passes, the size users open: a VGG-11 (a chain) and a ResNet-18 (a
graph) at 224×224, and ResNet-18 on the smaller images users also feed it. Each row gives
the engine's time beside torch's and onnxruntime's, measured in the same run, and their
ratios (engine ÷ torch, engine ÷ onnxruntime).

The models: the interchange's own templates
(:mod:`cnn_explorer.interchange.state_dict_templates`, the one definition of VGG and ResNet
in the codebase), filled with seeded random weights in torchvision's naming and sizes
(:func:`random_state_dict`) and built by the same ``build`` that opens a user's
state_dict. The engine runs ``Graph.forward``, which keeps *every* tensor, because the
explorer shows every map; the ``maps MB`` column is what those tensors hold (input
included). Torch runs the same template op by op with ``torch.nn.functional`` on the
engine's own state arrays, under ``inference_mode``; onnxruntime runs the file our
exporter writes (:func:`~cnn_explorer.interchange.onnx_export.to_onnx`; CPU provider,
default graph optimisations, 2 intra-op threads like torch). Before a row is timed, the
three outputs are compared on the same input: ``max |Δ|`` is the largest absolute
difference from the engine's output, and a row whose difference exceeds 1e-3 of the
output's largest magnitude says ``WRONG`` (a wrong model must not look fast).

Timing is :mod:`.ops`'s: every library in a process of its own (torch and onnxruntime are
never imported into this one), interleaved blocks in 7 rounds, ratios as the median of the
per-round ratios, the engine also timed with the OpenBLAS overrides unset when this
environment sets them ("unset" columns). Exit code 0 (a report) unless outputs disagree.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from cnn_explorer.bench.ops import kernels_line
from cnn_explorer.bench.process import (
    CaseProcess,
    EngineWorker,
    OrtWorker,
    TorchWorker,
    engine_worker,
    ort_worker,
    torch_worker,
)
from cnn_explorer.bench.timing import (
    LIBRARY_THREADS,
    ROUNDS,
    Case,
    CaseBuilder,
    SideCaseError,
    SideDownError,
    blas_overrides,
    blas_threads,
    build_cases,
    local_side,
    round_ratios,
    statistic,
    time_sides,
    torch_side,
    warm_heap,
)
from cnn_explorer.engine.graph import Graph
from cnn_explorer.interchange.state_dict_templates import BN_KEYS, Op, Template, build, resnet, vgg

AGREE_RTOL = 1e-3
"""Largest difference from the engine's output, relative to its largest magnitude."""

VGG_WIDTHS = (64, 128, 256, 512, 512)  # per stage (torchvision's VGG)
RESNET_WIDTHS = (64, 64, 128, 256, 512)  # the stem, then layer1…layer4
HIDDEN, CLASSES = 4096, 1000  # torchvision's classifier sizes
QUICK_SHRINK = 16  # --quick divides every width by this (tests: the machinery, not speed)


# --------------------------------------------------------------------------- models


def _vgg_width(op: Op, pools: int) -> int:
    return VGG_WIDTHS[pools]


def _resnet_width(op: Op, pools: int) -> int:
    stage = op.name.split(".")[0]
    return RESNET_WIDTHS[int(stage[5:]) if stage.startswith("layer") else 0]


# One branch per op kind, like the template builder it feeds.
def random_state_dict(
    template: Template,
    width: Callable[[Op, int], int],
    in_channels: int = 3,
    shrink: int = 1,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Seeded random weights for ``template`` in torchvision's key naming: each conv's
    output channels are ``width(op, max pools before it) // shrink``, hidden linears have
    ``HIDDEN // shrink`` outputs and the last one ``CLASSES // shrink``. He-scaled, with
    batch-norm statistics near 0 and 1, so activations stay in range through the depth
    (the outputs are compared between the libraries)."""
    rng = np.random.default_rng(seed)
    linears = [op.name for op in template.ops if op.kind == "linear"]
    features: dict[str, int] = {Graph.INPUT: in_channels}  # channels, or values per image
    out: dict[str, np.ndarray] = {}
    pools = 0

    def normal(shape: tuple[int, ...], std: float) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def near_one(n: int) -> np.ndarray:
        return rng.uniform(0.8, 1.2, n).astype(np.float32)

    for op in template.ops:
        c = features[op.inputs[0]]
        n = op.name
        if op.kind == "conv":
            o, k = max(1, width(op, pools) // shrink), op.args["kernel"]
            out[f"{n}.weight"] = normal((o, c, k, k), (2.0 / (c * k * k)) ** 0.5)
            if op.args["bias"]:
                out[f"{n}.bias"] = normal((o,), 0.05)
            c = o
        elif op.kind == "bn":
            stats = {"weight": near_one(c), "bias": normal((c,), 0.05)}
            stats |= {"running_mean": normal((c,), 0.05), "running_var": near_one(c)}
            out |= {f"{n}.{key}": stats[key] for key in BN_KEYS}
        elif op.kind == "linear":
            o = max(1, (CLASSES if n == linears[-1] else HIDDEN) // shrink)
            out[f"{n}.weight"] = normal((o, c), (2.0 / c) ** 0.5)
            out[f"{n}.bias"] = normal((o,), 0.05)
            c = o
        elif op.kind == "max_pool":
            pools += 1
        elif op.kind == "adaptive_avg":
            c *= int(np.prod(op.args["size"]))  # what the flatten after it hands on
        features[n] = c
    return out


def torch_weights(graph: Graph, mapping: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The engine's own state arrays under the torch keys they were loaded from."""
    state = graph.state_arrays()
    return {torch_key: state[engine_key] for torch_key, engine_key in mapping.items()}


# One branch per op kind: the template, spelled in torch.nn.functional.
def _torch_forward(torch: Any, template: Template, weights: dict[str, Any], x: Any) -> Any:
    """The template's forward pass in torch, op by op (eval mode), freeing each tensor
    after its last reader as a torch model does."""
    f = torch.nn.functional
    tensors = {Graph.INPUT: x}
    last_use = {i: k for k, op in enumerate(template.ops) for i in op.inputs}
    with torch.inference_mode():
        for k, op in enumerate(template.ops):
            h, n, a = tensors[op.inputs[0]], op.name, op.args
            if op.kind == "conv":
                w, b = weights[f"{n}.weight"], weights.get(f"{n}.bias")
                h = f.conv2d(h, w, b, a["stride"], a["padding"])
            elif op.kind == "bn":
                w = [weights[f"{n}.{k}"] for k in BN_KEYS]
                h = f.batch_norm(h, w[2], w[3], w[0], w[1], training=False, eps=1e-5)
            elif op.kind == "linear":
                h = f.linear(h, weights[f"{n}.weight"], weights[f"{n}.bias"])
            elif op.kind == "relu":
                h = f.relu(h)
            elif op.kind == "max_pool":
                h = f.max_pool2d(h, a["kernel"], a["stride"], a["padding"])
            elif op.kind == "adaptive_avg":
                h = f.adaptive_avg_pool2d(h, a["size"])
            elif op.kind == "flatten":
                h = torch.flatten(h, 1)
            elif op.kind == "add":
                h = h + tensors[op.inputs[1]]
            elif op.kind != "dropout":  # dropout: identity in eval mode
                raise ValueError(f"no torch spelling for op kind {op.kind!r}")
            tensors[n] = h
            for i in op.inputs:  # like a torch model: intermediates go when last read
                if last_use[i] == k:
                    tensors.pop(i)
    return h


def _ort_factory(graph: Graph, x: np.ndarray) -> Callable[[], object]:
    """onnxruntime running our exporter's file of ``graph`` on ``x`` (called only in the
    onnxruntime process: it imports onnxruntime)."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    from cnn_explorer.interchange.onnx_export import to_onnx

    proto = to_onnx(graph, x.shape[1:])
    options = ort.SessionOptions()
    options.intra_op_num_threads = LIBRARY_THREADS
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return partial(session.run, None, {session.get_inputs()[0].name: x})


@dataclass
class ModelCase(Case):
    """A whole-model row: ``maps`` runs the engine's forward and returns every tensor,
    ``weights_bytes`` is the model's parameter and buffer size."""

    maps: Callable[[], dict[str, np.ndarray]] | None = None
    weights_bytes: int = 0


def _engine_output(graph: Graph, x: np.ndarray) -> np.ndarray:
    """The explorer's forward (every tensor kept until it returns), then the output."""
    return graph.forward(x)[graph.output]


def _model_cases(
    quick: bool,
    torch: Any | None,
    name: str,
    template: Template,
    width: Callable[[Op, int], int],
    sizes: list[tuple[int, int]],
) -> list[Case]:
    """One row per ``(batch, side)`` of ``sizes`` for the template with seeded weights."""
    shrink = QUICK_SHRINK if quick else 1
    state = random_state_dict(template, width, shrink=shrink)
    note = f" (widths ÷{shrink})" if quick else ""
    cases: list[Case] = []
    for k, (batch, side) in enumerate(sizes):
        graph, mapping = build(template, state, (3, side, side))
        x = np.random.default_rng(100 + k).standard_normal((batch, 3, side, side), np.float32)
        tfn = None
        if torch is not None:
            weights = {key: torch.from_numpy(v) for key, v in torch_weights(graph, mapping).items()}
            tfn = partial(_torch_forward, torch, template, weights, torch.from_numpy(x))
        cases.append(
            ModelCase(
                f"{name} forward {batch}×3×{side}²{note}",
                None,
                partial(_engine_output, graph, x),
                tfn,
                partial(_ort_factory, graph, x),
                maps=partial(graph.forward, x),
                weights_bytes=sum(v.nbytes for v in graph.state_arrays().values()),
            )
        )
    return cases


def vgg11_cases(quick: bool, torch: Any | None) -> list[Case]:
    """VGG-11 (no batch norm), a chain: 1×3×224² (quick: 1×3×64²)."""
    return _model_cases(
        quick, torch, "VGG-11", vgg(11, False), _vgg_width, [(1, 64 if quick else 224)]
    )


def resnet18_cases(quick: bool, torch: Any | None) -> list[Case]:
    """ResNet-18, a graph: 1×3×224², and the small images users also feed it (quick:
    1×3×32² only)."""
    sizes = [(1, 32)] if quick else [(1, 224), (1, 64), (8, 64)]
    return _model_cases(quick, torch, "ResNet-18", resnet(18), _resnet_width, sizes)


#: The rows of this benchmark (module-level builders, see :mod:`.ops`).
MODEL_BUILDERS: list[CaseBuilder] = [vgg11_cases, resnet18_cases]


# --------------------------------------------------------------------------- run


@dataclass
class Workers:
    """The processes of the other sides (None: not installed, or not wanted)."""

    torch: TorchWorker | None = None
    ort: OrtWorker | None = None
    unset: EngineWorker | None = None


def _other_output(worker: CaseProcess | None, name: str) -> np.ndarray | None:
    """Case ``name``'s output in ``worker``'s process (None when it has none; why is
    printed)."""
    if worker is None or not worker.has(name):
        return None
    try:
        return np.asarray(worker.output(name))
    except (SideCaseError, SideDownError) as exc:
        print(f"!! {exc}; no {worker.label} output to compare", flush=True)
        return None


def agreement(case: Case, workers: Workers) -> dict[str, Any]:
    """Each other library's largest absolute difference from the engine's output on the
    same input (``inf`` for another shape), and whether all are within
    :data:`AGREE_RTOL` of the output's largest magnitude (None: nothing to compare)."""
    ours = np.asarray(case.engine_fn())
    scale = float(np.max(np.abs(ours))) if ours.size else 0.0
    found: dict[str, Any] = {"scale": scale}
    for key, worker in (("torch", workers.torch), ("ort", workers.ort)):
        theirs = _other_output(worker, case.name)
        diff = None
        if theirs is not None:
            same = theirs.shape == ours.shape
            diff = float(np.max(np.abs(theirs - ours))) if same else float("inf")
        found[f"{key}_diff"] = diff
    diffs = [d for d in (found["torch_diff"], found["ort_diff"]) if d is not None]
    found["agree"] = all(d <= AGREE_RTOL * max(scale, 1e-12) for d in diffs) if diffs else None
    return found


def _median_ratio(num: list[list[float]], den: list[list[float]], stat: str) -> float | None:
    ratios = round_ratios(num, den, stat)
    return statistics.median(ratios) if ratios else None


def _flat(blocks: list[list[float]], stat: str) -> float | None:
    samples = [v for block in blocks for v in block]
    return statistic(samples, stat) if samples else None


def run(
    quick: bool = False,
    repeat: int = 14,
    stat: str = "median",
    only: str | None = None,
    workers: Workers | None = None,
    builders: list[CaseBuilder] | None = None,
) -> list[dict[str, Any]]:
    """Check and time every case of ``builders`` (:data:`MODEL_BUILDERS`) whose name
    contains ``only``; returns the rows (also printed). ``workers`` are the other sides'
    processes, started by the caller (:func:`main`); without them only the engine runs.
    Like any "spawn" user, a script calling this needs an ``if __name__ == "__main__":``
    guard."""
    workers = workers or Workers()
    rows = []
    for case in build_cases(quick, None, builders or MODEL_BUILDERS):
        if only is not None and only not in case.name:
            continue
        maps = case.maps() if isinstance(case, ModelCase) and case.maps else {}
        row: dict[str, Any] = {
            "case": case.name,
            "maps_mb": sum(v.nbytes for v in maps.values()) / 2**20,
            "weights_mb": getattr(case, "weights_bytes", 0) / 2**20,
            **agreement(case, workers),
        }
        del maps
        sides = [
            local_side(case.engine_fn),
            torch_side(case, workers.torch),
            None if workers.ort is None else workers.ort.side(case.name),
            None if workers.unset is None else workers.unset.side(case.name),
        ]
        eng, tor, ort, unset = time_sides(sides, max(3, repeat // 3) if quick else repeat)
        row |= {
            "engine_ms": _flat(eng, stat),
            "torch_ms": _flat(tor, stat),
            "ort_ms": _flat(ort, stat),
            "torch_ratio": _median_ratio(eng, tor, stat),
            "ort_ratio": _median_ratio(eng, ort, stat),
            "torch_spread": _spread(round_ratios(eng, tor, stat)),
            "unset": workers.unset is not None,
            "unset_engine_ms": _flat(unset, stat),
            "unset_torch_ratio": _median_ratio(unset, tor, stat),
            "unset_ort_ratio": _median_ratio(unset, ort, stat),
        }
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def _spread(ratios: list[float]) -> tuple[float, float] | None:
    return (min(ratios), max(ratios)) if ratios else None


# --------------------------------------------------------------------------- report

NAME_WIDTH = 40


def _num(v: float | None, width: int, fmt: str) -> str:
    return f"{'—':>{width}}" if v is None else f"{format(v, fmt):>{width}}"


def table_header(unset: bool) -> str:
    """Column names; ``÷torch``/``÷ort``: engine time ÷ theirs (median of per-round
    ratios); the ``unset`` columns: the engine with the OpenBLAS overrides unset."""
    extra = f" {'unset ms':>9} {'u÷torch':>7} {'u÷ort':>6}" if unset else ""
    return (
        f"{'case':<{NAME_WIDTH}} {'engine ms':>9} {'torch ms':>9} {'ort ms':>9} "
        f"{'÷torch':>6} {'÷ort':>6}{extra} {'maps MB':>8} {'wts MB':>7} {'max|Δ| torch':>12} "
        f"{'max|Δ| ort':>10} {'':>5}"
    )


def format_row(row: dict[str, Any]) -> str:
    verdict = {True: "ok", False: "WRONG", None: ""}[row["agree"]]
    unset = ""
    if row["unset"]:
        unset = (
            f" {_num(row['unset_engine_ms'], 9, '.1f')}"
            f" {_num(row['unset_torch_ratio'], 7, '.2f')}"
            f" {_num(row['unset_ort_ratio'], 6, '.2f')}"
        )
    return (
        f"{row['case']:<{NAME_WIDTH}} {_num(row['engine_ms'], 9, '.1f')}"
        f" {_num(row['torch_ms'], 9, '.1f')} {_num(row['ort_ms'], 9, '.1f')}"
        f" {_num(row['torch_ratio'], 6, '.2f')} {_num(row['ort_ratio'], 6, '.2f')}{unset}"
        f" {_num(row['maps_mb'], 8, '.1f')} {_num(row['weights_mb'], 7, '.1f')}"
        f" {_num(row['torch_diff'], 12, '.1e')}"
        f" {_num(row['ort_diff'], 10, '.1e')} {verdict:>5}"
    )


def header(stat: str, repeat: int, worker: TorchWorker | None, heap: bool) -> str:
    """The first printed line: versions, threads and how the numbers were made."""
    if worker is None:
        torch = "not installed (its columns are '—')"
    elif worker.error is not None:
        torch = f"unavailable ({worker.error})"
    else:
        torch = f"{worker.version} (own process, {worker.threads} threads)"
    return (
        f"numpy {np.__version__} (BLAS: {blas_threads()}); torch {torch}; "
        f"malloc: {'warm heap, all sides' if heap else 'as is'}; {stat} of ≈{repeat} timed "
        f"calls per side in {ROUNDS} alternating rounds; ratios = median of per-round ratios"
    )


def ort_line(worker: OrtWorker | None) -> str:
    """What the onnxruntime column is (or why it is empty)."""
    if worker is None:
        return "onnxruntime not installed: its columns are '—' (pip install onnxruntime)"
    if worker.error is not None:
        return f"onnxruntime unavailable ({worker.error}): its columns are '—'"
    return (
        f"onnxruntime {worker.version} (own process, {worker.threads} intra-op threads, CPU "
        "provider) runs the model as cnn_explorer's ONNX exporter writes it; torch runs the "
        "same template with torch.nn.functional on the engine's weights"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_explorer.bench.models",
        description="Whole-model forward passes: the engine beside torch and onnxruntime.",
    )
    parser.add_argument("--quick", action="store_true", help="narrow models on small images")
    parser.add_argument("--repeat", type=int, default=14, help="timed calls per side (14)")
    parser.add_argument("--stat", choices=("median", "min"), default="median")
    parser.add_argument("--only", metavar="TEXT", help="only rows whose name contains TEXT")
    parser.add_argument(
        "--as-is",
        action="store_true",
        help="do not also time the engine with the OpenBLAS overrides unset",
    )
    args = parser.parse_args(argv)
    heap = warm_heap()
    builders = MODEL_BUILDERS
    start_unset = bool(blas_overrides()) and not args.as_is
    with ExitStack() as stack:
        workers = Workers(
            stack.enter_context(torch_worker(args.quick, builders)),
            stack.enter_context(ort_worker(args.quick, builders)),
            stack.enter_context(engine_worker(args.quick, builders, start_unset)),
        )
        print(header(args.stat, args.repeat, workers.torch, heap), flush=True)
        print(ort_line(workers.ort), flush=True)
        print(kernels_line(workers.unset), flush=True)
        print(table_header(workers.unset is not None), flush=True)
        rows = run(args.quick, args.repeat, args.stat, args.only, workers, builders)
    print(
        "engine: Graph.forward keeping every tensor (the explorer shows every map); "
        "'maps MB' = the bytes of those tensors, input included ('wts MB': of the weights); "
        f"max|Δ| = largest difference from the engine's output ('ok': ≤ {AGREE_RTOL:g} of "
        "its largest magnitude)"
    )
    wrong = [row["case"] for row in rows if row["agree"] is False]
    if wrong:
        print(f"outputs disagree for: {', '.join(wrong)}")
    return 1 if wrong else 0


if __name__ == "__main__":  # the workers re-import this module: run only here
    sys.exit(main())
