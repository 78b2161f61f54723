"""One BLAS thread for every explorer computation, scoped and re-entrant.

The explorer's convolutions are small matrix products (≤ a few dozen rows). OpenBLAS splits
them over all cores and its threads spin-wait for each other; when any other thread needs a
core at the same time (the GUI thread painting while a worker computes, another process) a
2 ms product then takes 8–70 ms. One BLAS thread is steadier (a 2-thread product is ~40%
faster only on an idle machine). It also fixes the numbers: a product split over two
threads rounds differently from one (measured: up to 4e-5 on a 12→17 channel 5×5 conv), so
the explorer's maps are the same whatever the machine's thread count, and "a plain forward
pass" (the oracle of the tests) means one computed inside :func:`single_blas_thread`.

Measured also: after the GUI thread had used two BLAS threads, OpenBLAS 0.3.31 sometimes
ignored a later limit of one (get_num_threads kept answering 2), so the explorer never
leaves the limit off. It also takes a limit only from the main thread: set on a pool thread
it left that thread's products on 2 threads (rounding unlike a plain forward with
``OPENBLAS_CORETYPE=Haswell``), so the explorer's document holds the limit on the GUI thread
while its jobs run. The limit is scoped (restored afterwards) so the training worker keeps
its own setting. threadpoolctl finds the BLAS numpy really loaded (OpenBLAS, MKL, BLIS,
Accelerate) on every platform.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import Any

from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_depth = 0
_limit: Any = None


@functools.cache
def blas_controller() -> ThreadpoolController:
    """The process's thread-pool controller (made once: it inspects loaded libraries)."""
    return ThreadpoolController()


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the block with one BLAS thread.

    Re-entrant and thread-safe: the previous thread counts come back when the outermost
    block in any thread ends."""
    global _depth, _limit
    with _lock:
        if _depth == 0:
            _limit = blas_controller().limit(limits=1, user_api="blas")
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _limit.restore_original_limits()
                _limit = None
