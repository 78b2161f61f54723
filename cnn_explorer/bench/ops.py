"""``python -m cnn_explorer.bench [--quick] [--repeat N] [--stat median|min] [--only TEXT]``.

Times the NumPy engine against torch on the CPU (``torch.set_num_threads(2)``), after
warm-up, and prints one row per case: engine ms, torch ms, ratio (engine ÷ torch), target
ratio and pass/fail. Without torch it prints engine times only and says torch is needed
for ratios (exit code 0 either way: this is a report, not a test).

What a user's machine runs: a machine may set ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE``
(:data:`~.timing.BLAS_OVERRIDES`), forcing older OpenBLAS kernels than its CPU has. When
this environment sets either, the engine is also timed in a process of its own with both
unset (:class:`~.process.EngineWorker`), in the same rounds, and each row gets a second
engine time and ratio ("unset" columns); the line under the header names the kernel
OpenBLAS picked in each (threadpoolctl's ``architecture``). ``--as-is`` skips that run.

Why torch runs in its own process: two libraries with spinning thread pools in one
process can slow each other down (once measured: the engine's conv 64×1×28² went from
0.56 to ~2 ms after torch had run, though this VM's own stall phases, below, make such
single observations unreliable). No user runs torch next to the app, so each library is
timed in its own process (:mod:`.process`): this one never imports torch. All sides are
measured in the same run, interleaved, with the same malloc settings (``WARM_HEAP``): a
fresh process's allocator maps and unmaps every large output, and the page faults made
torch's conv 1×3×256² 2.9 ms instead of 0.44 ms.

Why the care in timing (:mod:`.timing`): the engine recomputes every map on each edit and
trains in the GUI, so its speed is a feature. Both libraries run thread pools whose idle
threads spin for a while after a call, so the sides are timed in separate blocks with a
short pause between them, alternating for 7 rounds. On a shared machine the load changes
from second to second, so the ratio is the median of the per-round ratios (each round's
blocks ran under about the same load) and their range is printed as the spread; the ms
columns are the statistic (median by default) over all samples of a side. On this VM
2-thread calls also stall in phases lasting seconds, a call then taking a whole 4–16 ms
tick (measured with no torch anywhere; 1 BLAS thread did not stall). It hits the engine
most: OpenBLAS's workers sleep after 2^16 idle cycles (OPENBLAS_THREAD_TIMEOUT, set by
the app) and waking one costs a tick in such a phase, while torch's OpenMP threads spin
for about a millisecond. Large spreads and medians of 2–4 ms mean such a phase.

Extending: append a module-level function ``(quick, torch) -> Case | list[Case] | None``
to :data:`CASE_BUILDERS`, e.g. the UI's edit-to-repaint latency. It is called in every
process: here and in the engine process with ``torch=None`` (build ``engine_fn`` only) and
in the torch process with the torch module (build ``torch_fn`` too, from the same seeded
data). Rows are matched by name, so names must be unique and must not depend on
``torch``; the list is pickled (by reference) to the children, so builders cannot be
lambdas or closures.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import statistics
import sys
from contextlib import ExitStack
from functools import partial
from typing import Any

# OPENBLAS_THREAD_TIMEOUT is set by cnn_explorer/__init__.py, which Python runs before this
# submodule and before NumPy loads: the bench gets exactly the setting the app gets (see
# there for why it matters: idle BLAS threads spinning ~0.1 s after every product). The
# child processes inherit the variable and import this package too.
import numpy as np

from cnn_explorer.bench.process import (
    CaseProcess,
    EngineWorker,
    TorchWorker,
    engine_worker,
    torch_worker,
)
from cnn_explorer.bench.timing import (
    BLAS_OVERRIDES,
    ROUNDS,
    Case,
    CaseBuilder,
    blas_kernel,
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
from cnn_explorer.engine import conv2d, max_pool2d, relu

# --------------------------------------------------------------------------- conv cases

#: The decided target for plain convolution (engine speed issue, "The decision"): pure
#: NumPy im2col stays within 2× torch's direct convolution; 1.5× is the stretch.
PLAIN_CONV_TARGET = 2.0

# (name, input shape (N, C, H, W), weight shape (O, C, kh, kw), padding, target ratio)
CONV_SHAPES: list[tuple[str, tuple[int, ...], tuple[int, ...], int, float]] = [
    ("1×3×256² → 16@3×3 p1", (1, 3, 256, 256), (16, 3, 3, 3), 1, PLAIN_CONV_TARGET),
    ("1×16×128² → 32@3×3 p1", (1, 16, 128, 128), (32, 16, 3, 3), 1, PLAIN_CONV_TARGET),
    ("64×1×28² → 8@5×5", (64, 1, 28, 28), (8, 1, 5, 5), 0, PLAIN_CONV_TARGET),
    ("1×1×1024² → 1@3×3 p1", (1, 1, 1024, 1024), (1, 1, 3, 3), 1, 0.3),
]
PIPELINE_TARGET = 1.0
TRAIN_TARGET = 1.5


def _conv_relu_pool(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int) -> np.ndarray:
    return max_pool2d(relu(conv2d(x, w, b, padding=pad)), 2)


def _torch_conv(torch: Any, x: Any, w: Any, b: Any, pad: int, pipeline: bool) -> Any:
    f = torch.nn.functional
    with torch.no_grad():
        out = f.conv2d(x, w, b, padding=pad)
        return f.max_pool2d(f.relu(out), 2) if pipeline else out


def _conv_cases(quick: bool, torch: Any | None) -> list[Case]:
    """conv2d alone, then conv → ReLU → 2×2 max pool, for each shape of CONV_SHAPES."""
    rng = np.random.default_rng(0)
    conv_rows, pipe_rows = [], []
    for name, xs, ws, pad, target in CONV_SHAPES:
        if quick and xs[-1] >= 1024:
            continue
        x = rng.standard_normal(xs, dtype=np.float32)
        w = rng.standard_normal(ws, dtype=np.float32)
        b = rng.standard_normal(ws[0], dtype=np.float32)

        eng = partial(conv2d, x, w, b, padding=pad)
        eng_pipe = partial(_conv_relu_pool, x, w, b, pad)
        tconv = tpipe = None
        if torch is not None:
            xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))
            tconv = partial(_torch_conv, torch, xt, wt, bt, pad, False)
            tpipe = partial(_torch_conv, torch, xt, wt, bt, pad, True)
        conv_rows.append(Case(f"conv {name}", target, eng, tconv))
        pipe_rows.append(Case(f"conv+relu+pool {name}", PIPELINE_TARGET, eng_pipe, tpipe))
    return conv_rows + pipe_rows


# --------------------------------------------------------------------------- training step


def _engine_network(seed: int = 0) -> Any:
    """conv(1→8,3,p1)-ReLU-maxpool2-conv(8→16,3,p1)-ReLU-maxpool2-flatten-dense(784→10)."""
    from cnn_explorer.engine.layers import Activation, Conv2D, Dense, Flatten, MaxPool2D
    from cnn_explorer.engine.network import Network

    rng = np.random.default_rng(seed)
    return Network(
        [
            Conv2D(1, 8, 3, padding=1, rng=rng),
            Activation("relu"),
            MaxPool2D(2),
            Conv2D(8, 16, 3, padding=1, rng=rng),
            Activation("relu"),
            MaxPool2D(2),
            Flatten(),
            Dense(16 * 7 * 7, 10, rng=rng),
        ]
    )


def _torch_twin(torch: Any, net: Any) -> Any:
    """The same network in torch, starting from the engine's weights."""
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 7 * 7, 10),
    )
    with torch.no_grad():
        for ours, theirs in zip(
            [net[0], net[3], net[7]], [model[0], model[3], model[7]], strict=True
        ):
            theirs.weight.copy_(torch.from_numpy(ours.params["weight"]))
            theirs.bias.copy_(torch.from_numpy(ours.params["bias"]))
    return model


def _train_case(quick: bool, torch: Any | None) -> Case:
    """One SGD step (forward, backward, update) on a batch of 64 random 28² images. Both
    steps return the loss before the update (the twins start equal: tests compare them)."""
    from cnn_explorer.engine.optim import SGD

    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    net = _engine_network()
    opt = SGD(lr=0.01)

    def eng() -> object:
        with np.errstate(all="ignore"):
            loss, _ = net.loss_and_grads(x, y)
        opt.step(net)
        return loss

    tstep = None
    if torch is not None:
        model = _torch_twin(torch, net)
        topt = torch.optim.SGD(model.parameters(), lr=0.01)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def tstep() -> object:
            topt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt), yt)
            loss.backward()
            topt.step()
            return loss

    return Case("train step conv-relu-pool ×2 + dense, batch 64×28²", TRAIN_TARGET, eng, tstep)


# --------------------------------------------------------------------------- run

#: Module-level functions ``(quick, torch_module_or_None) -> Case | list[Case] | None``;
#: append yours to add rows (see the module docstring).
CASE_BUILDERS: list[CaseBuilder] = [_conv_cases, _train_case]


def run(
    quick: bool = False,
    repeat: int = 15,
    stat: str = "median",
    only: str | None = None,
    worker: TorchWorker | None = None,
    unset: EngineWorker | bool | None = None,
    builders: list[CaseBuilder] | None = None,
) -> list[dict[str, Any]]:
    """Time every case of ``builders`` (:data:`CASE_BUILDERS`) whose name contains
    ``only``, if given; returns the rows (also printed). Torch runs in ``worker``;
    without one, a worker is started for this call when torch is installed. ``unset`` is
    the engine process without the OpenBLAS overrides, or whether to start one (None:
    when this environment sets an override). Processes started here are shut down again.
    Like any "spawn" user, a script calling this needs an ``if __name__ == "__main__":``
    guard: the children re-import it."""
    builders = CASE_BUILDERS if builders is None else builders
    with ExitStack() as stack:
        if worker is None:
            worker = stack.enter_context(torch_worker(quick, builders))
        if unset is None or isinstance(unset, bool):
            start = bool(blas_overrides()) if unset is None else unset
            unset = stack.enter_context(engine_worker(quick, builders, start))
        rows = []
        for case in build_cases(quick, None, builders):
            if only is not None and only not in case.name:
                continue
            sides = [
                local_side(case.engine_fn),
                torch_side(case, worker),
                None if unset is None else unset.side(case.name),
            ]
            eng, tor, eng_unset = time_sides(sides, max(3, repeat // 3) if quick else repeat)
            rows.append(_row(case, eng, tor, eng_unset, stat=stat, unset=unset is not None))
            _print_row(rows[-1])
        return rows


def _row(
    case: Case,
    eng_blocks: list[list[float]],
    tor_blocks: list[list[float]],
    unset_blocks: list[list[float]] | None = None,
    stat: str = "median",
    unset: bool = False,
) -> dict[str, Any]:
    eng = [v for block in eng_blocks for v in block]
    tor = [v for block in tor_blocks for v in block]
    per_round = round_ratios(eng_blocks, tor_blocks, stat)
    ratio = statistics.median(per_round) if per_round else None
    row = {
        "case": case.name,
        "engine_ms": statistic(eng, stat),
        "torch_ms": statistic(tor, stat) if tor else None,
        "ratio": ratio,
        "best_ratio": min(eng) / min(tor) if tor else None,
        "target": case.target,
        "pass": None if ratio is None or case.target is None else ratio <= case.target,
        "engine_range_ms": (min(eng), max(eng)),
        "ratio_spread": (min(per_round), max(per_round)) if per_round else None,
        "unset": unset,  # whether the engine was also timed with the overrides unset
        "unset_engine_ms": None,
        "unset_ratio": None,
        "unset_pass": None,
    }
    if unset_blocks:
        unset_ratios = round_ratios(unset_blocks, tor_blocks, stat)
        u_ratio = statistics.median(unset_ratios) if unset_ratios else None
        row["unset_engine_ms"] = statistic([v for b in unset_blocks for v in b], stat)
        row["unset_ratio"] = u_ratio
        row["unset_pass"] = (
            None if u_ratio is None or case.target is None else (u_ratio <= case.target)
        )
    return row


def _num(v: float | None, fmt: str) -> str:
    width = int(fmt.split(".")[0])
    return f"{'—':>{width}}" if v is None else format(v, fmt)


def _print_row(row: dict[str, Any]) -> None:
    verdict = {True: "pass", False: "FAIL", None: ""}[row["pass"]]
    target = "" if row["target"] is None else f"≤ {row['target']:.2f}"
    lo_hi = row.get("ratio_spread")
    spread = "—" if lo_hi is None else f"{lo_hi[0]:.2f}–{lo_hi[1]:.2f}"
    unset = ""
    if row.get("unset"):
        u_verdict = {True: "pass", False: "FAIL", None: ""}[row["unset_pass"]]
        unset = (
            f" {_num(row['unset_engine_ms'], '9.3f')} {_num(row['unset_ratio'], '11.2f')}"
            f" {u_verdict:>5}"
        )
    print(
        f"{row['case']:<54} {_num(row['engine_ms'], '9.3f')} {_num(row['torch_ms'], '9.3f')} "
        f"{_num(row['ratio'], '7.2f')} {_num(row['best_ratio'], '7.2f')} {spread:>11} "
        f"{target:>7} {verdict:>5}{unset}",
        flush=True,
    )


def table_header(unset: bool) -> str:
    """The column names (``unset ms``/``unset ratio``: the engine with the overrides unset)."""
    extra = f" {'unset ms':>9} {'unset ratio':>11} {'':>5}" if unset else ""
    return (
        f"{'case':<54} {'engine ms':>9} {'torch ms':>9} {'ratio':>7} {'min':>7} "
        f"{'spread':>11} {'target':>7} {'':>5}{extra}"
    )


# --------------------------------------------------------------------------- report


def _torch_label(worker: TorchWorker | None) -> str:
    if worker is None:
        return "not installed"
    if worker.error is None:
        return f"{worker.version} (own process, {worker.threads} threads)"
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return f"{version} (unavailable: {worker.error})"


def header(stat: str, repeat: int, worker: TorchWorker | None, heap: bool = False) -> str:
    """The first printed line: versions, thread counts and how the numbers were made."""
    return (
        f"numpy {np.__version__} (BLAS: {blas_threads()}); torch {_torch_label(worker)}; "
        f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')}; "
        f"malloc: {'warm heap, all sides' if heap else 'as is'}; "
        f"{stat} of {repeat} timed calls per side in {ROUNDS} alternating rounds; ratio = "
        "median of per-round ratios, spread = their range; 'min' = ratio of fastest calls"
    )


def kernels_line(unset: CaseProcess | None) -> str:
    """Which kernels OpenBLAS picked with the environment as it is and, when the engine
    was also timed without the overrides, there."""
    overrides = blas_overrides()
    names = " and ".join(BLAS_OVERRIDES)
    as_is = f"OpenBLAS kernel: {blas_kernel()}"
    if not overrides:
        return f"{as_is}, OpenBLAS's own choice ({names} are not set)"
    set_ = ", ".join(f"{k}={v}" for k, v in overrides.items())
    as_is += f" as is ({set_})"
    if unset is None:
        return f"{as_is}; not timed with them unset (--as-is)"
    if unset.error is not None:
        return f"{as_is}; with them unset: unavailable ({unset.error})"
    return (
        f"{as_is}; {unset.kernel} with {names} unset ('unset' columns: the engine in a "
        "process of its own, same rounds)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_explorer.bench",
        description="Time the NumPy engine against torch (CPU, 2 threads, own process).",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats, skip 1024² cases")
    parser.add_argument("--repeat", type=int, default=15, help="timed calls per side (15)")
    parser.add_argument("--stat", choices=("median", "min"), default="median")
    parser.add_argument("--only", metavar="TEXT", help="only cases whose name contains TEXT")
    parser.add_argument(
        "--as-is",
        action="store_true",
        help=f"do not also time the engine with {' and '.join(BLAS_OVERRIDES)} unset",
    )
    args = parser.parse_args(argv)
    heap = warm_heap()
    start_unset = bool(blas_overrides()) and not args.as_is
    builders = CASE_BUILDERS
    with (
        torch_worker(args.quick, builders) as worker,
        engine_worker(args.quick, builders, start_unset) as unset,
    ):
        print(header(args.stat, args.repeat, worker, heap), flush=True)
        print(kernels_line(unset), flush=True)
        print(table_header(unset is not None), flush=True)
        rows = run(args.quick, args.repeat, args.stat, args.only, worker, unset or False)
    if worker is None:
        print("torch is not installed: install torch==2.13.0 (CPU) to get the ratios.")
    elif worker.error is not None:
        print(f"torch unavailable ({worker.error}): engine times only where torch is '—'.")
    elif not rows:
        print("no cases")
    else:
        met = sum(r["pass"] is not False for r in rows)
        summary = f"{met}/{len(rows)} within target"
        if unset is not None and unset.error is None:
            met_unset = sum(r["unset_pass"] is not False for r in rows)
            summary += f" ({met_unset}/{len(rows)} with the OpenBLAS overrides unset)"
        print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
