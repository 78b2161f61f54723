"""How the benchmarks time things: cases, sides, interleaved rounds, the warm heap.

A *case* is one benchmark row: an engine function and, when built with torch, its torch
twin. A *side* is one way of running a case (the engine here, torch in its process, the
engine in a process with another environment); :func:`time_sides` warms every side up and
then alternates blocks of calls between them for :data:`ROUNDS` rounds, so that each
round's blocks ran under about the same machine load (see :mod:`cnn_explorer.bench.ops`
for why). The same :func:`block` code times every side, in whichever process it runs.
"""

from __future__ import annotations

import ctypes
import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from threadpoolctl import threadpool_info

ROUNDS = 7
# glibc malloc settings for every side: large blocks stay in the heap instead of being
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

#: Variables with which a machine can force OpenBLAS onto older kernels than its CPU
#: supports (read once, when NumPy loads OpenBLAS): the engine-op benchmark also times
#: the engine with them unset, in a process of its own.
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


#: Threads torch and onnxruntime get in their processes (the engine's OpenBLAS uses both
#: cores of the machines this was written for; the same count keeps the ratios fair).
LIBRARY_THREADS = 2


@dataclass
class Case:
    """One benchmark row. ``torch_fn`` is None in the parent process (built without
    torch) and when a case has no torch counterpart. ``ort_factory``, when given, is
    called only in the onnxruntime process (it imports onnxruntime) and returns the
    function that process times."""

    name: str
    target: float | None  # maximal engine ÷ torch ratio; None = informational
    engine_fn: Callable[[], object]
    torch_fn: Callable[[], object] | None = None
    ort_factory: Callable[[], Callable[[], object]] | None = None


#: ``(quick, torch module or None) -> Case | list[Case] | None``, a module-level function
#: (builders are pickled by reference to the processes that run the other sides).
CaseBuilder = Callable[[bool, Any], "list[Case] | Case | None"]


def build_cases(quick: bool, torch: Any | None, builders: Iterable[CaseBuilder]) -> list[Case]:
    """Every case of ``builders``, flattened, in order."""
    cases: list[Case] = []
    for builder in builders:
        built = builder(quick, torch)
        cases += [] if built is None else built if isinstance(built, list) else [built]
    return cases


def samples(fn: Callable[[], object], n: int) -> list[float]:
    """``n`` wall-clock timings of ``fn`` in milliseconds."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def block(fn: Callable[[], object], n: int) -> list[float]:
    """One timed block: pause, one untimed call (wakes this library's threads after the
    other side ran), then ``n`` timed calls. The same code times every side."""
    time.sleep(PAUSE_S)
    fn()
    return samples(fn, n)


def statistic(samples: list[float], how: str) -> float:
    """The ``how`` (``"min"`` or ``"median"``) of ``samples``."""
    return min(samples) if how == "min" else statistics.median(samples)


def round_ratios(
    num_blocks: list[list[float]], den_blocks: list[list[float]], how: str
) -> list[float]:
    """Per round, one side's statistic ÷ the other's: robust to the machine's load
    changing between rounds (rounds where either side has no block are left out)."""
    pairs = zip(num_blocks, den_blocks, strict=False)  # e.g. no torch blocks without torch
    return [statistic(a, how) / statistic(b, how) for a, b in pairs]


# --------------------------------------------------------------------------- sides


class SideDownError(RuntimeError):
    """A side's process died, hung or never started; ``str()`` says which. Its columns
    stay empty from then on."""


class SideCaseError(RuntimeError):
    """A case raised in a side's process (the process itself is still usable)."""


@dataclass
class Side:
    """One way of running a case: ``warm()`` once, then ``block(n)`` → n samples in ms."""

    label: str
    warm: Callable[[], object]
    block: Callable[[int], list[float]]


def local_side(fn: Callable[[], object], label: str = "engine") -> Side:
    """``fn`` timed in this process."""
    return Side(label, partial(samples, fn, WARMUP_CALLS), partial(block, fn))


class Worker(Protocol):
    """What :func:`time_case` needs of a process that runs the torch side."""

    def side(self, name: str) -> Side | None: ...


def _call(side: Side, fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    """``(True, fn(*args))``, or ``(False, None)`` with the reason printed when the side
    failed: the other sides' numbers are still wanted."""
    try:
        return True, fn(*args)
    except SideDownError as exc:
        print(f"!! {exc}; {side.label} columns are empty from here on", flush=True)
    except SideCaseError as exc:
        print(f"!! {exc}; no {side.label} time for this case", flush=True)
    return False, None


def time_sides(
    sides: list[Side | None], repeat: int, rounds: int = ROUNDS
) -> list[list[list[float]]]:
    """Warm every side up, then alternate blocks of ``≈ repeat / rounds`` calls between
    them, ``rounds`` times: per side, its blocks of samples in ms. A side that is None,
    or that failed during the case (the reason is printed), has no blocks; the others'
    rounds go on.

    The pause before each block lets the other library's spinning worker threads go to
    sleep so they do not steal the cores. Many short rounds put the sides of a round
    under the same machine load, which is what makes per-round ratios comparable.
    """
    live = list(sides)
    for i, side in enumerate(live):
        if side is not None and not _call(side, side.warm)[0]:
            live[i] = None
    blocks: list[list[list[float]]] = [[] for _ in sides]
    per_round = max(1, -(-repeat // rounds))
    for _ in range(rounds):
        for i, side in enumerate(live):
            if side is None:
                continue
            ok, got = _call(side, side.block, per_round)
            if ok:
                blocks[i].append(got)
            else:
                live[i] = None
    return [b if side is not None else [] for b, side in zip(blocks, live, strict=True)]


def torch_side(case: Case, worker: Worker | None) -> Side | None:
    """Torch's side of ``case``: in the torch process when it has the case, else in this
    process when the case carries a torch_fn (only cases built with torch do), else None."""
    side = None if worker is None else worker.side(case.name)
    if side is not None:
        return side
    return None if case.torch_fn is None else local_side(case.torch_fn, "torch")


def time_case(
    case: Case, repeat: int, rounds: int = ROUNDS, worker: Worker | None = None
) -> tuple[list[list[float]], list[list[float]]]:
    """``(engine blocks, torch blocks)`` of :func:`time_sides` for the engine in this
    process and torch in ``worker``'s (torch's are empty without torch or when torch
    failed during the case)."""
    engine, torch = time_sides(
        [local_side(case.engine_fn), torch_side(case, worker)], repeat, rounds
    )
    return engine, torch


# --------------------------------------------------------------------------- environment


@contextmanager
def environment(add: dict[str, str], remove: Iterable[str] = ()) -> Iterator[None]:
    """``os.environ`` with ``add`` added (keys the user set are kept) and ``remove``
    removed, for the block (a process started in it inherits exactly that)."""
    added = {k: v for k, v in add.items() if k not in os.environ}
    removed = {k: os.environ.pop(k) for k in remove if k in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)
        os.environ.update(removed)


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


def blas_overrides() -> dict[str, str]:
    """The :data:`BLAS_OVERRIDES` this process's environment sets."""
    return {k: os.environ[k] for k in BLAS_OVERRIDES if k in os.environ}


def _blas() -> list[dict[str, Any]]:
    import numpy  # noqa: F401  (loads NumPy's BLAS, if nothing has yet)

    return [i for i in threadpool_info() if i.get("user_api") == "blas"]


def blas_threads() -> str:
    """The engine's BLAS library and thread count, e.g. ``openblas 2 threads``."""
    blas = _blas()
    if not blas:
        return "no BLAS found"
    return ", ".join(f"{i['internal_api']} {i['num_threads']} threads" for i in blas)


def blas_kernel() -> str:
    """The kernels NumPy's BLAS uses in this process (threadpoolctl's ``architecture``:
    OpenBLAS's name for the CPU it targets, e.g. ``Haswell``), or ``?``."""
    kernels = [str(i.get("architecture") or "?") for i in _blas()]
    return ", ".join(kernels) if kernels else "no BLAS found"
