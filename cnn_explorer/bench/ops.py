"""``python -m cnn_explorer.bench [--quick] [--repeat N] [--stat median|min] [--only TEXT]``.

Times the NumPy engine against torch on the CPU (``torch.set_num_threads(2)``), after
warm-up, and prints one row per case: engine ms, torch ms, ratio (engine ÷ torch), target
ratio and pass/fail. Without torch it prints engine times only and says torch is needed
for ratios (exit code 0 either way: this is a report, not a test).

Why torch runs in its own process: two libraries with spinning thread pools in one
process can slow each other down (once measured: the engine's conv 64×1×28² went from
0.56 to ~2 ms after torch had run, though this VM's own stall phases, below, make such
single observations unreliable). No user runs torch next to the app, so each library is
timed in its own process: this (parent) process never imports torch; one persistent
"spawn" child imports it, builds the same cases (same seeds, so the same data and initial
weights) and times its side when asked over a pipe. Both sides are still measured in the
same run, interleaved, and with the same malloc settings (:data:`WARM_HEAP`): a fresh
process's allocator maps and unmaps every large output, and the page faults made torch's
conv 1×3×256² 2.9 ms instead of 0.44 ms.

Why the care in timing: the engine recomputes every map on each edit and trains in the
GUI, so its speed is a feature. Both libraries run thread pools whose idle threads spin
for a while after a call, so the engine and torch are timed in separate blocks with a
short pause between them, alternating for 7 rounds. On a shared machine the load changes
from second to second, so the ratio is the median of the per-round ratios (each round's
two blocks ran under about the same load) and their range is printed as the spread; the
ms columns are the statistic (median by default) over all samples of a side. On this VM
2-thread calls also stall in phases lasting seconds, a call then taking a whole 4–16 ms
tick (measured with no torch anywhere; 1 BLAS thread did not stall). It hits the engine
most: OpenBLAS's workers sleep after 2^16 idle cycles (OPENBLAS_THREAD_TIMEOUT, set by
the app) and waking one costs a tick in such a phase, while torch's OpenMP threads spin
for about a millisecond. Large spreads and medians of 2–4 ms mean such a phase.

Extending: append a module-level function ``(quick, torch) -> Case | list[Case] | None``
to :data:`CASE_BUILDERS`, e.g. the UI's edit-to-repaint latency. It is called twice: here
with ``torch=None`` (build ``engine_fn`` only) and in the torch process with the torch
module (build ``torch_fn`` too, from the same seeded data). Rows are matched by name, so
names must be unique and must not depend on ``torch``; the list is pickled (by reference)
to the child, so builders cannot be lambdas or closures.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.metadata
import importlib.util
import multiprocessing
import os
import signal
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

# OPENBLAS_THREAD_TIMEOUT is set by cnn_explorer/__init__.py, which Python runs before this
# submodule and before NumPy loads: the bench gets exactly the setting the app gets (see
# there for why it matters: idle BLAS threads spinning ~0.1 s after every product). The
# torch child inherits the variable and imports this package too.
import numpy as np
from threadpoolctl import threadpool_info

from cnn_explorer.engine import conv2d, max_pool2d, relu

ROUNDS = 7
# glibc malloc settings for both sides: large blocks stay in the heap instead of being
# mapped and unmapped on every call. Without them a fresh torch process page-faults every
# new 4 MB output (conv 1×3×256² → 16: 2.9 ms instead of 0.44 ms, measured), which a
# long-running process whose heap has grown (like this one after the engine's cases)
# does not; each side gets the warm-heap speed.
WARM_HEAP = {
    "MALLOC_TOP_PAD_": str(64 << 20),
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(128 << 20),
}
_MALLOPT = {"MALLOC_TRIM_THRESHOLD_": -1, "MALLOC_TOP_PAD_": -2, "MALLOC_MMAP_THRESHOLD_": -3}
PAUSE_S = 0.02  # before each block: lets the other side's spinning threads go to sleep
WARMUP_CALLS = 3


@dataclass
class Case:
    """One benchmark row. ``torch_fn`` is None in the parent process (built without
    torch) and when a case has no torch counterpart."""

    name: str
    target: float | None  # maximal engine ÷ torch ratio; None = informational
    engine_fn: Callable[[], object]
    torch_fn: Callable[[], object] | None = None


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


# --------------------------------------------------------------------------- harness

CaseBuilder = Callable[[bool, Any], "list[Case] | Case | None"]
#: Module-level functions ``(quick, torch_module_or_None) -> Case | list[Case] | None``;
#: append yours to add rows (see the module docstring).
CASE_BUILDERS: list[CaseBuilder] = [_conv_cases, _train_case]


def build_cases(quick: bool, torch: Any | None, builders: list[CaseBuilder]) -> list[Case]:
    """Every case of ``builders``, flattened, in order."""
    cases: list[Case] = []
    for builder in builders:
        built = builder(quick, torch)
        cases += [] if built is None else built if isinstance(built, list) else [built]
    return cases


def _samples(fn: Callable[[], object], n: int) -> list[float]:
    """``n`` wall-clock timings of ``fn`` in milliseconds."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def _block(fn: Callable[[], object], n: int) -> list[float]:
    """One timed block: pause, one untimed call (wakes this library's threads after the
    other side ran), then ``n`` timed calls. The same code times both sides."""
    time.sleep(PAUSE_S)
    fn()
    return _samples(fn, n)


# --------------------------------------------------------------------------- torch process


def _worker_main(conn: Connection, quick: bool, builders: list[CaseBuilder]) -> None:
    """Body of the torch process: build the cases with torch, then serve requests
    ``(op, case name, n)`` until ``("stop", "", 0)`` or the parent goes away. Replies are
    ``("ok", payload)`` or ``("error", traceback text)``."""
    # Ctrl-C reaches the whole process group: the parent decides when this process ends
    # (stop request, closed pipe, terminate), so no KeyboardInterrupt traceback here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import torch

        torch.set_num_threads(2)
        fns = {c.name: c.torch_fn for c in build_cases(quick, torch, builders) if c.torch_fn}
        # plain str and int: torch.__version__ is a TorchVersion, and unpickling one
        # would import torch into the parent
        info = {"version": str(torch.__version__), "threads": int(torch.get_num_threads())}
        conn.send(("ok", {**info, "cases": list(fns)}))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            op, name, n = conn.recv()
            if op == "stop":
                return
            conn.send(_serve(fns, op, name, n))
        except (EOFError, OSError):
            return  # the parent is gone


def _serve(fns: dict[str, Any], op: str, name: str, n: int) -> tuple[str, Any]:
    """Warm up (``op == "warm"``) or time one block of the torch_fn named ``name``."""
    try:
        fn = fns[name]
        return "ok", _samples(fn, n) if op == "warm" else _block(fn, n)  # plain floats
    except Exception:
        return "error", traceback.format_exc()


class TorchWorkerError(RuntimeError):
    """The torch process died, hung or never started; ``str()`` says which."""


class TorchCaseError(RuntimeError):
    """A torch_fn raised in the torch process (the process itself is still usable)."""


class TorchWorker:
    """The persistent torch process of one benchmark run (a context manager).

    After :meth:`start`, ``error`` is None and ``version``/``threads``/``case_names`` are
    known, or ``error`` says why torch is unavailable. Once the process dies or does not
    answer within ``timeout`` seconds, ``error`` is set, the process is ended, and every
    further request raises :class:`TorchWorkerError` at once.
    """

    def __init__(
        self,
        quick: bool,
        builders: list[CaseBuilder] | None = None,
        timeout: float = 120.0,
        start_timeout: float = 300.0,
    ) -> None:
        self.quick = quick
        self.builders = list(CASE_BUILDERS if builders is None else builders)
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.error: str | None = None
        self.version: str | None = None
        self.threads: int | None = None
        self.case_names: list[str] = []
        self._proc: Any = None
        self._conn: Connection | None = None

    def __enter__(self) -> TorchWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        self._conn = ours
        self._proc = ctx.Process(
            target=_worker_main,
            args=(theirs, self.quick, self.builders),
            name="cnn-explorer-bench-torch",
            daemon=True,  # never outlives this process, whatever happens here
        )
        try:
            with _environment(WARM_HEAP):  # glibc reads these when the child starts
                self._proc.start()
        except Exception as exc:  # e.g. a builder that cannot be pickled
            self._fail(f"torch process did not start: {exc!r}")
            return
        finally:
            theirs.close()  # only the child holds it now: its death reads as EOF here
        try:
            info = self._receive(self.start_timeout, "starting")
        except (TorchWorkerError, TorchCaseError) as exc:
            self._fail(str(exc))
            return
        self.version, self.threads = info["version"], info["threads"]
        self.case_names = list(info["cases"])

    @property
    def alive(self) -> bool:
        """Whether the torch process is running (False once it is shut down)."""
        return self._proc is not None and self._proc.is_alive()

    def has(self, name: str) -> bool:
        return self.error is None and name in self.case_names

    def warm_up(self, name: str) -> None:
        self._request("warm", name, WARMUP_CALLS)

    def block(self, name: str, n: int) -> list[float]:
        return list(self._request("block", name, n))

    def close(self, graceful: bool = True) -> None:
        """Ask the process to stop (when ``graceful``); terminate, then kill it if it
        does not. Safe to call more than once."""
        proc, self._proc = self._proc, None
        if graceful and proc is not None and proc.is_alive() and self._conn is not None:
            with suppress(OSError):
                self._conn.send(("stop", "", 0))
            proc.join(5)
        if proc is not None:
            for end in (proc.terminate, proc.kill):
                if proc.is_alive():
                    end()
                    proc.join(5)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _request(self, op: str, name: str, n: int) -> Any:
        if self.error is not None or self._conn is None:
            raise TorchWorkerError(self.error or "torch process not started")
        try:
            self._conn.send((op, name, n))
        except OSError as exc:
            self._fail(f"torch process unreachable: {exc!r}")
            raise TorchWorkerError(self.error) from exc
        try:
            return self._receive(self.timeout, f"timing {name!r}")
        except TorchWorkerError as exc:
            self._fail(str(exc))
            raise

    def _receive(self, timeout: float, doing: str) -> Any:
        """The next reply's payload, polling so that a dead or hung child cannot block us."""
        assert self._conn is not None and self._proc is not None
        deadline = time.monotonic() + timeout
        while not self._conn.poll(0.2):
            if not self._proc.is_alive() and not self._conn.poll(0):
                raise self._died(doing)
            if time.monotonic() > deadline:
                raise TorchWorkerError(
                    f"torch process did not answer within {timeout:g} s ({doing})"
                )
        try:
            status, payload = self._conn.recv()
        except (EOFError, OSError):
            raise self._died(doing) from None
        if status != "ok":
            last = payload.strip().splitlines()[-1] if payload.strip() else "?"
            if doing == "starting":
                raise TorchWorkerError(f"torch process failed while starting: {last}")
            raise TorchCaseError(f"torch failed while {doing}: {last}")
        return payload

    def _died(self, doing: str) -> TorchWorkerError:
        self._proc.join(1)
        code = self._proc.exitcode
        return TorchWorkerError(f"torch process died while {doing} (exit code {code})")

    def _fail(self, message: str) -> None:
        """Remember why torch is unavailable and end the process without waiting for it:
        it is dead, hung or failed already."""
        self.error = message
        self.close(graceful=False)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` added (keys the user set are kept) for the block."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def warm_heap() -> bool:
    """Give this process the :data:`WARM_HEAP` malloc settings (glibc ``mallopt``; the
    environment variables are only read at process start). False where there is no glibc
    (macOS, Windows, musl): the bench then runs with the platform's allocator as is."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    values = {k: int(os.environ.get(k, v)) for k, v in WARM_HEAP.items()}
    return all(mallopt(_MALLOPT[k], v) == 1 for k, v in values.items())


def torch_installed() -> bool:
    """Whether torch can be imported, without importing it (this process never does)."""
    return importlib.util.find_spec("torch") is not None


@contextmanager
def torch_worker(quick: bool) -> Iterator[TorchWorker | None]:
    """A started :class:`TorchWorker`, or None without torch; always shut down after."""
    if not torch_installed():
        yield None
        return
    with TorchWorker(quick) as worker:
        yield worker


# --------------------------------------------------------------------------- timing


#: One side of a case: (warm up, timed block of n calls -> samples in ms).
Side = tuple[Callable[[], object], Callable[[int], list[float]]]


def _local_side(fn: Callable[[], object]) -> Side:
    return partial(_samples, fn, WARMUP_CALLS), partial(_block, fn)


def _torch_side(case: Case, worker: TorchWorker | None) -> Side | None:
    """Torch's side of ``case``: in the torch process when it has the case, else in this
    process when the case carries a torch_fn (only cases built with torch do), else None."""
    if worker is not None and worker.has(case.name):
        return partial(worker.warm_up, case.name), partial(worker.block, case.name)
    return None if case.torch_fn is None else _local_side(case.torch_fn)


def _torch_call(call: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    """``(True, call(*args))``, or ``(False, None)`` with the reason printed when torch
    failed: the engine's numbers are still wanted."""
    try:
        return True, call(*args)
    except TorchWorkerError as exc:
        print(f"!! {exc}; torch columns are empty from here on", flush=True)
    except TorchCaseError as exc:
        print(f"!! {exc}; no torch time for this case", flush=True)
    return False, None


def time_case(
    case: Case, repeat: int, rounds: int = ROUNDS, worker: TorchWorker | None = None
) -> tuple[list[list[float]], list[list[float]]]:
    """Warm both sides up, then alternate blocks of ``≈ repeat / rounds`` calls, ``rounds``
    times: ``(engine blocks, torch blocks)`` of samples in ms. Torch's blocks are timed in
    ``worker``'s process; they are empty without torch or when torch failed during the
    case (the reason is printed, the engine's rounds go on).

    The pause before each block lets the other library's spinning worker threads go to
    sleep so they do not steal the cores. Many short rounds put the two sides of a round
    under the same machine load, which is what makes per-round ratios comparable.
    """
    warm_engine, engine_block = _local_side(case.engine_fn)
    torch_side = _torch_side(case, worker)
    engine_blocks: list[list[float]] = []
    torch_blocks: list[list[float]] = []
    warm_engine()
    if torch_side is not None and not _torch_call(torch_side[0])[0]:
        torch_side = None
    per_round = max(1, -(-repeat // rounds))
    for _ in range(rounds):
        engine_blocks.append(engine_block(per_round))
        if torch_side is not None:
            ok, samples = _torch_call(torch_side[1], per_round)
            if ok:
                torch_blocks.append(samples)
            else:
                torch_side = None
    return engine_blocks, (torch_blocks if torch_side is not None else [])


def _stat(samples: list[float], how: str) -> float:
    return min(samples) if how == "min" else statistics.median(samples)


def run(
    quick: bool = False,
    repeat: int = 15,
    stat: str = "median",
    only: str | None = None,
    worker: TorchWorker | None = None,
) -> list[dict[str, Any]]:
    """Time every case (whose name contains ``only``, if given); returns the rows (also
    printed). Torch runs in ``worker``; without one, a worker is started for this call
    when torch is installed (and always shut down again). Like any "spawn" user, a script
    calling this needs an ``if __name__ == "__main__":`` guard: the child re-imports it."""
    if worker is None:
        with torch_worker(quick) as own:
            return _run(quick, repeat, stat, only, own)
    return _run(quick, repeat, stat, only, worker)


def _run(
    quick: bool, repeat: int, stat: str, only: str | None, worker: TorchWorker | None
) -> list[dict[str, Any]]:
    rows = []
    for case in build_cases(quick, None, CASE_BUILDERS):
        if only is not None and only not in case.name:
            continue
        eng_blocks, tor_blocks = time_case(
            case, max(3, repeat // 3) if quick else repeat, worker=worker
        )
        rows.append(_row(case, eng_blocks, tor_blocks, stat))
        _print_row(rows[-1])
    return rows


def _row(
    case: Case, eng_blocks: list[list[float]], tor_blocks: list[list[float]], stat: str
) -> dict[str, Any]:
    eng = [v for block in eng_blocks for v in block]
    tor = [v for block in tor_blocks for v in block]
    # ratio: median over rounds of (engine ÷ torch within the round), robust to the
    # machine's load changing between rounds; spread: lowest and highest of those
    pairs = zip(eng_blocks, tor_blocks, strict=False)  # no torch blocks without torch
    per_round = [_stat(a, stat) / _stat(b, stat) for a, b in pairs]
    ratio = statistics.median(per_round) if per_round else None
    return {
        "case": case.name,
        "engine_ms": _stat(eng, stat),
        "torch_ms": _stat(tor, stat) if tor else None,
        "ratio": ratio,
        "best_ratio": min(eng) / min(tor) if tor else None,
        "target": case.target,
        "pass": None if ratio is None or case.target is None else ratio <= case.target,
        "engine_range_ms": (min(eng), max(eng)),
        "ratio_spread": (min(per_round), max(per_round)) if per_round else None,
    }


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


# --------------------------------------------------------------------------- CLI


def blas_threads() -> str:
    """The engine's BLAS library and thread count, e.g. ``openblas 2 threads``."""
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not blas:
        return "no BLAS found"
    return ", ".join(f"{i['internal_api']} {i['num_threads']} threads" for i in blas)


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
        f"malloc: {'warm heap, both sides' if heap else 'as is'}; "
        f"{stat} of {repeat} timed calls per side in {ROUNDS} alternating rounds; ratio = "
        "median of per-round ratios, spread = their range; 'min' = ratio of fastest calls"
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
    args = parser.parse_args(argv)
    heap = warm_heap()
    with torch_worker(args.quick) as worker:
        print(header(args.stat, args.repeat, worker, heap), flush=True)
        print(
            f"{'case':<54} {'engine ms':>9} {'torch ms':>9} {'ratio':>7} {'min':>7} "
            f"{'spread':>11} {'target':>7} {'':>5}",
            flush=True,
        )
        rows = run(args.quick, args.repeat, args.stat, args.only, worker=worker)
    if worker is None:
        print("torch is not installed: install torch==2.13.0 (CPU) to get the ratios.")
    elif worker.error is not None:
        print(f"torch unavailable ({worker.error}): engine times only where torch is '—'.")
    else:
        failed = [r["case"] for r in rows if r["pass"] is False]
        print(f"{len(rows) - len(failed)}/{len(rows)} within target" if rows else "no cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
