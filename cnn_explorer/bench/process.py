"""Benchmark sides that run in a process of their own.

:class:`TorchWorker`: torch. Two libraries with spinning thread pools in one process slow
each other down, and no user runs torch next to the app, so this (parent) process never
imports torch: one persistent "spawn" child imports it, builds the same cases (same seeds,
so the same data and initial weights) and times its side when asked over a pipe.

:class:`EngineWorker`: the engine with :data:`~.timing.BLAS_OVERRIDES` removed from its
environment. Some machines set ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` and so force
older OpenBLAS kernels than their CPU has; OpenBLAS reads them once, when NumPy loads it,
so the engine as a user's machine runs it needs a fresh process without them.

:class:`OrtWorker`: onnxruntime (for the whole-model rows of :mod:`.models`), for the same
reason as torch: a spinning thread pool of its own, never imported into this process. It
times what each case's ``ort_factory`` returns, built in that process.

Every child starts with the warm-heap malloc settings (:data:`~.timing.WARM_HEAP`) and is
ended when the run ends, dies, or does not answer in time.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import signal
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, Self

from cnn_explorer.bench.timing import (
    BLAS_OVERRIDES,
    LIBRARY_THREADS,
    WARM_HEAP,
    WARMUP_CALLS,
    CaseBuilder,
    Side,
    SideCaseError,
    SideDownError,
    blas_kernel,
    blas_threads,
    block,
    build_cases,
    environment,
    samples,
)


def _worker_main(conn: Connection, quick: bool, builders: list[CaseBuilder], kind: str) -> None:
    """Body of a side's process: build the cases (with torch when ``kind == "torch"``;
    the onnxruntime functions when ``kind == "ort"``), then serve requests
    ``(op, case name, n)`` until ``("stop", "", 0)`` or the parent goes away. Replies are
    ``("ok", payload)`` or ``("error", traceback text)``."""
    # Ctrl-C reaches the whole process group: the parent decides when this process ends
    # (stop request, closed pipe, terminate), so no KeyboardInterrupt traceback here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if kind == "torch":
            import torch

            torch.set_num_threads(LIBRARY_THREADS)
            cases = build_cases(quick, torch, builders)
            fns = {c.name: c.torch_fn for c in cases if c.torch_fn is not None}
            # plain str and int: torch.__version__ is a TorchVersion, and unpickling one
            # would import torch into the parent
            info = {"version": str(torch.__version__), "threads": int(torch.get_num_threads())}
        elif kind == "ort":
            import onnxruntime  # type: ignore[import-untyped]

            cases = build_cases(quick, None, builders)
            fns = {c.name: c.ort_factory() for c in cases if c.ort_factory is not None}
            info = {"version": str(onnxruntime.__version__), "threads": LIBRARY_THREADS}
        else:
            import numpy as np

            fns = {c.name: c.engine_fn for c in build_cases(quick, None, builders)}
            info = {"version": np.__version__, "blas": blas_threads()}
        info["kernel"] = blas_kernel()
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
    """Warm up (``op == "warm"``), time one block of (``"block"``) or return the result of
    one call to (``"output"``) the function named ``name``."""
    try:
        fn = fns[name]
        if op == "output":
            return "ok", plain_array(fn())
        return "ok", samples(fn, n) if op == "warm" else block(fn, n)  # plain floats
    except Exception:
        return "error", traceback.format_exc()


def plain_array(out: Any) -> Any:
    """A NumPy copy of a case function's result: a torch tensor (unpickling one would
    import torch into the parent), the first of onnxruntime's list of outputs, or an
    array."""
    import numpy as np

    if isinstance(out, list | tuple):
        out = out[0]
    if hasattr(out, "detach"):
        out = out.detach().numpy()
    return np.array(out)


class CaseProcess:
    """The persistent process of one side for one benchmark run (a context manager).

    After :meth:`start`, ``error`` is None and ``version``/``kernel``/``case_names`` are
    known, or ``error`` says why the side is unavailable. Once the process dies or does
    not answer within ``timeout`` seconds, ``error`` is set, the process is ended, and
    every further request raises :class:`~.timing.SideDownError` at once.
    """

    kind = "engine"
    label = "engine"
    unset: tuple[str, ...] = ()

    def __init__(
        self,
        quick: bool,
        builders: list[CaseBuilder],
        timeout: float = 120.0,
        start_timeout: float = 300.0,
    ) -> None:
        self.quick = quick
        self.builders = list(builders)
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.error: str | None = None
        self.info: dict[str, Any] = {}
        self.case_names: list[str] = []
        self._proc: Any = None
        self._conn: Connection | None = None

    @property
    def version(self) -> str | None:
        return self.info.get("version")

    @property
    def kernel(self) -> str | None:
        """The BLAS kernels NumPy uses in the process (threadpoolctl's ``architecture``)."""
        return self.info.get("kernel")

    def __enter__(self) -> Self:
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
            args=(theirs, self.quick, self.builders, self.kind),
            name=f"cnn-explorer-bench-{self.kind}",
            daemon=True,  # never outlives this process, whatever happens here
        )
        try:
            # glibc and OpenBLAS read these when the child starts
            with environment(WARM_HEAP, remove=self.unset):
                self._proc.start()
        except Exception as exc:  # e.g. a builder that cannot be pickled
            self._fail(f"{self.label} process did not start: {exc!r}")
            return
        finally:
            theirs.close()  # only the child holds it now: its death reads as EOF here
        try:
            info = self._receive(self.start_timeout, "starting")
        except (SideDownError, SideCaseError) as exc:
            self._fail(str(exc))
            return
        self.case_names = list(info.pop("cases"))
        self.info = info

    @property
    def alive(self) -> bool:
        """Whether the process is running (False once it is shut down)."""
        return self._proc is not None and self._proc.is_alive()

    def has(self, name: str) -> bool:
        return self.error is None and name in self.case_names

    def warm_up(self, name: str) -> None:
        self._request("warm", name, WARMUP_CALLS)

    def block(self, name: str, n: int) -> list[float]:
        return list(self._request("block", name, n))

    def output(self, name: str) -> Any:
        """The result of one call to case ``name`` in this process, as a NumPy array."""
        return self._request("output", name, 0)

    def side(self, name: str) -> Side | None:
        """Case ``name`` timed in this process, or None when it does not have it."""
        if not self.has(name):
            return None
        return Side(self.label, partial(self.warm_up, name), partial(self.block, name))

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
            raise SideDownError(self.error or f"{self.label} process not started")
        try:
            self._conn.send((op, name, n))
        except OSError as exc:
            self._fail(f"{self.label} process unreachable: {exc!r}")
            raise SideDownError(self.error) from exc
        try:
            return self._receive(self.timeout, f"timing {name!r}")
        except SideDownError as exc:
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
                raise SideDownError(
                    f"{self.label} process did not answer within {timeout:g} s ({doing})"
                )
        try:
            status, payload = self._conn.recv()
        except (EOFError, OSError):
            raise self._died(doing) from None
        if status != "ok":
            last = payload.strip().splitlines()[-1] if payload.strip() else "?"
            if doing == "starting":
                raise SideDownError(f"{self.label} process failed while starting: {last}")
            raise SideCaseError(f"{self.label} failed while {doing}: {last}")
        return payload

    def _died(self, doing: str) -> SideDownError:
        self._proc.join(1)
        code = self._proc.exitcode
        return SideDownError(f"{self.label} process died while {doing} (exit code {code})")

    def _fail(self, message: str) -> None:
        """Remember why the side is unavailable and end the process without waiting for
        it: it is dead, hung or failed already."""
        self.error = message
        self.close(graceful=False)


class TorchWorker(CaseProcess):
    """Torch's side (``torch.set_num_threads(2)``); ``threads`` is torch's thread count."""

    kind = "torch"
    label = "torch"

    @property
    def threads(self) -> int | None:
        return self.info.get("threads")


class OrtWorker(CaseProcess):
    """onnxruntime's side (CPU provider, :data:`~.timing.LIBRARY_THREADS` intra-op
    threads, set by each case's ``ort_factory``)."""

    kind = "ort"
    label = "onnxruntime"

    @property
    def threads(self) -> int | None:
        return self.info.get("threads")


class EngineWorker(CaseProcess):
    """The engine's side with :data:`~.timing.BLAS_OVERRIDES` unset in its environment;
    ``blas`` names its BLAS and thread count."""

    label = "engine (OpenBLAS overrides unset)"
    unset = BLAS_OVERRIDES

    @property
    def blas(self) -> str | None:
        return self.info.get("blas")


def torch_installed() -> bool:
    """Whether torch can be imported, without importing it (this process never does)."""
    return importlib.util.find_spec("torch") is not None


@contextmanager
def torch_worker(quick: bool, builders: list[CaseBuilder]) -> Iterator[TorchWorker | None]:
    """A started :class:`TorchWorker`, or None without torch; always shut down after."""
    if not torch_installed():
        yield None
        return
    with TorchWorker(quick, builders) as worker:
        yield worker


def ort_installed() -> bool:
    """Whether onnxruntime can be imported, without importing it here."""
    return importlib.util.find_spec("onnxruntime") is not None


@contextmanager
def ort_worker(quick: bool, builders: list[CaseBuilder]) -> Iterator[OrtWorker | None]:
    """A started :class:`OrtWorker`, or None without onnxruntime; always shut down after."""
    if not ort_installed():
        yield None
        return
    with OrtWorker(quick, builders) as worker:
        yield worker


@contextmanager
def engine_worker(
    quick: bool, builders: list[CaseBuilder], start: bool
) -> Iterator[EngineWorker | None]:
    """A started :class:`EngineWorker` when ``start``, else None; always shut down after."""
    if not start:
        yield None
        return
    with EngineWorker(quick, builders) as worker:
        yield worker
