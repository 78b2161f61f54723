"""``python -m cnn_explorer.bench [--quick] [--repeat N] [--stat median|min]``.

Times the NumPy engine against torch on the CPU (``torch.set_num_threads(2)``) in the same
process, after warm-up, and prints one row per case: engine ms, torch ms, ratio
(engine ÷ torch), target ratio and pass/fail. Without torch it prints engine times only
and says torch is needed for ratios (exit code 0 either way: this is a report, not a test).

Why the care in timing: the engine recomputes every map on each edit and trains in the
GUI, so its speed is a feature. Both libraries run thread pools whose idle threads spin
for a while after a call, so the engine and torch are timed in separate blocks with a
short pause between them, alternating for 7 rounds. On a shared machine the load changes
from second to second, so the ratio is the median of the per-round ratios (each round's
two blocks ran under about the same load) and their range is printed as the spread; the
ms columns are the statistic (median by default) over all samples of a side.

Extending: append a function returning a :class:`Case` (or ``None`` to skip) to
:data:`CASE_BUILDERS`, e.g. the UI's edit-to-repaint latency. Builders get ``quick``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

# OPENBLAS_THREAD_TIMEOUT is set by cnn_explorer/__init__.py, which Python runs before this
# submodule and before NumPy loads: the bench gets exactly the setting the app gets (see
# there for why it matters: idle BLAS threads spinning ~0.1 s after every product).
import numpy as np

from cnn_explorer.engine import conv2d, max_pool2d, relu


@dataclass
class Case:
    """One benchmark row. ``torch_fn`` is None when torch is missing (or not comparable)."""

    name: str
    target: float | None  # maximal engine ÷ torch ratio; None = informational
    engine_fn: Callable[[], object]
    torch_fn: Callable[[], object] | None = None


def _torch() -> Any | None:
    """The torch module limited to 2 threads, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    return torch


# --------------------------------------------------------------------------- conv cases

# (name, input shape (N, C, H, W), weight shape (O, C, kh, kw), padding, target ratio)
CONV_SHAPES: list[tuple[str, tuple[int, ...], tuple[int, ...], int, float]] = [
    ("1×3×256² → 16@3×3 p1", (1, 3, 256, 256), (16, 3, 3, 3), 1, 1.5),
    ("1×16×128² → 32@3×3 p1", (1, 16, 128, 128), (32, 16, 3, 3), 1, 1.5),
    ("64×1×28² → 8@5×5", (64, 1, 28, 28), (8, 1, 5, 5), 0, 1.5),
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


def _conv_cases(quick: bool) -> list[Case]:
    """conv2d alone, then conv → ReLU → 2×2 max pool, for each shape of CONV_SHAPES."""
    torch = _torch()
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


def _train_case(quick: bool) -> Case:
    """One SGD step (forward, backward, update) on a batch of 64 random 28² images."""
    from cnn_explorer.engine.optim import SGD

    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    net = _engine_network()
    opt = SGD(lr=0.01)

    def eng() -> object:
        with np.errstate(all="ignore"):
            net.loss_and_grads(x, y)
        opt.step(net)
        return None

    tstep = None
    torch = _torch()
    if torch is not None:
        model = _torch_twin(torch, net)
        topt = torch.optim.SGD(model.parameters(), lr=0.01)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def tstep() -> object:
            topt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt), yt)
            loss.backward()
            topt.step()
            return None

    return Case("train step conv-relu-pool ×2 + dense, batch 64×28²", TRAIN_TARGET, eng, tstep)


# --------------------------------------------------------------------------- harness

CaseBuilder = Callable[[bool], "list[Case] | Case | None"]
#: Functions ``(quick) -> Case | list[Case] | None``; append yours to add rows.
CASE_BUILDERS: list[CaseBuilder] = [_conv_cases, _train_case]


def _samples(fn: Callable[[], object], n: int) -> list[float]:
    """``n`` wall-clock timings of ``fn`` in milliseconds."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def time_case(
    case: Case, repeat: int, rounds: int = 7
) -> tuple[list[list[float]], list[list[float]]]:
    """Warm both sides up, then alternate blocks of ``≈ repeat / rounds`` calls, ``rounds``
    times: ``(engine blocks, torch blocks)`` of samples in ms (torch's empty without it).

    The pause before each block lets the other library's spinning worker threads go to
    sleep so they do not steal the cores. Many short rounds put the two sides of a round
    under the same machine load, which is what makes per-round ratios comparable.
    """
    sides = [case.engine_fn] + ([case.torch_fn] if case.torch_fn is not None else [])
    results: list[list[list[float]]] = [[] for _ in sides]
    for fn in sides:
        _samples(fn, 3)
    per_round = max(1, -(-repeat // rounds))
    for _ in range(rounds):
        for fn, blocks in zip(sides, results, strict=True):
            time.sleep(0.02)
            fn()  # untimed: wakes this library's threads after the other one ran
            blocks.append(_samples(fn, per_round))
    return results[0], (results[1] if len(results) > 1 else [])


def _stat(samples: list[float], how: str) -> float:
    return min(samples) if how == "min" else statistics.median(samples)


def run(
    quick: bool = False, repeat: int = 15, stat: str = "median", only: str | None = None
) -> list[dict[str, Any]]:
    """Time every case (whose name contains ``only``, if given); returns the rows (also
    printed by :func:`main`)."""
    rows = []
    for builder in CASE_BUILDERS:
        built = builder(quick)
        cases = [] if built is None else built if isinstance(built, list) else [built]
        for case in cases:
            if only is not None and only not in case.name:
                continue
            eng_blocks, tor_blocks = time_case(case, max(3, repeat // 3) if quick else repeat)
            eng = [v for block in eng_blocks for v in block]
            tor = [v for block in tor_blocks for v in block]
            e = _stat(eng, stat)
            t = _stat(tor, stat) if tor else None
            # ratio: median over rounds of (engine ÷ torch within the round), robust to the
            # machine's load changing between rounds; spread: lowest and highest of those
            pairs = zip(eng_blocks, tor_blocks, strict=False)  # no torch blocks without torch
            per_round = [_stat(a, stat) / _stat(b, stat) for a, b in pairs]
            ratio = statistics.median(per_round) if per_round else None
            ok = None if ratio is None or case.target is None else ratio <= case.target
            rows.append(
                {
                    "case": case.name,
                    "engine_ms": e,
                    "torch_ms": t,
                    "ratio": ratio,
                    "best_ratio": min(eng) / min(tor) if tor else None,
                    "target": case.target,
                    "pass": ok,
                    "engine_range_ms": (min(eng), max(eng)),
                    "ratio_spread": (min(per_round), max(per_round)) if per_round else None,
                }
            )
            _print_row(rows[-1])
    return rows


def _print_row(row: dict[str, Any]) -> None:
    def num(v: float | None, fmt: str) -> str:
        width = int(fmt.split(".")[0])
        return f"{'—':>{width}}" if v is None else format(v, fmt)

    verdict = {True: "pass", False: "FAIL", None: ""}[row["pass"]]
    target = "" if row["target"] is None else f"≤ {row['target']:.2f}"
    lo_hi = row.get("ratio_spread")
    spread = "—" if lo_hi is None else f"{lo_hi[0]:.2f}–{lo_hi[1]:.2f}"
    print(
        f"{row['case']:<54} {num(row['engine_ms'], '9.3f')} {num(row['torch_ms'], '9.3f')} "
        f"{num(row['ratio'], '7.2f')} {num(row['best_ratio'], '7.2f')} {spread:>11} "
        f"{target:>7} {verdict:>5}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_explorer.bench",
        description="Time the NumPy engine against torch (CPU, 2 threads).",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats, skip 1024² cases")
    parser.add_argument("--repeat", type=int, default=15, help="timed calls per side (15)")
    parser.add_argument("--stat", choices=("median", "min"), default="median")
    parser.add_argument("--only", metavar="TEXT", help="only cases whose name contains TEXT")
    args = parser.parse_args(argv)
    torch = _torch()
    print(
        f"numpy {np.__version__}; torch {torch.__version__ if torch else 'not installed'}; "
        f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')}; "
        f"{args.stat} of {args.repeat} timed calls per side in 7 alternating rounds; ratio = "
        "median of per-round ratios, spread = their range; 'min' = ratio of fastest calls"
    )
    print(
        f"{'case':<54} {'engine ms':>9} {'torch ms':>9} {'ratio':>7} {'min':>7} {'spread':>11} "
        f"{'target':>7} {'':>5}"
    )
    rows = run(args.quick, args.repeat, args.stat, args.only)
    if torch is None:
        print("torch is not installed: install torch==2.13.0 (CPU) to get the ratios.")
    else:
        failed = [r["case"] for r in rows if r["pass"] is False]
        print(f"{len(rows) - len(failed)}/{len(rows)} within target" if rows else "no cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
