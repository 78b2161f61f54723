"""``python -m cnn_explorer.bench.conv_knobs [--rounds N] [--only TEXT]``: are the
convolution's tuning constants right on this machine?

The im2col convolution (:mod:`cnn_explorer.engine.conv`) has two size constants chosen by
measurement: how many bytes of columns are built before each matrix product
(``_CHUNK_BYTES``: written, then read back while still in cache) and below which output
width "wide" columns are used (``_WIDE_BELOW``: one long copy per kernel tap instead of
one per row, paid for by a crop after the product). Both depend on the cache sizes and
memory bandwidth of the machine, so this benchmark re-measures them instead of trusting
the numbers in the source.

For each shape it times the engine's forward (``conv2d``) and forward + backward (a
training step's conv) with each candidate value, then prints each candidate's time
relative to the value the source uses: the median over rounds of the per-round ratio
(all candidates of a round run back to back, each a block of calls after one untimed
call, so load changes on a shared machine hit them alike). Below 1.00 means the candidate
is faster. The engine's results do not depend on these constants beyond the rounding of
the matrix products (the tests run with several chunk sizes).

No torch needed; exit code 0 (a report, not a test).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from cnn_explorer.engine import conv as conv_module
from cnn_explorer.engine.conv import conv2d, conv2d_backward, conv2d_forward

#: (name, input (N, C, H, W), weight (O, C, kh, kw), padding): the engine benchmark's plain
#: conv shapes, the default network's training layers, and widths around the wide limit.
SHAPES: list[tuple[str, tuple[int, ...], tuple[int, ...], int]] = [
    ("1×3×256² → 16@3×3", (1, 3, 256, 256), (16, 3, 3, 3), 1),
    ("1×16×128² → 32@3×3", (1, 16, 128, 128), (32, 16, 3, 3), 1),
    ("64×1×28² → 8@5×5", (64, 1, 28, 28), (8, 1, 5, 5), 0),
    ("64×1×28² → 8@3×3", (64, 1, 28, 28), (8, 1, 3, 3), 1),
    ("64×8×14² → 16@3×3", (64, 8, 14, 14), (16, 8, 3, 3), 1),
    ("8×8×64² → 16@3×3", (8, 8, 64, 64), (16, 8, 3, 3), 1),
    ("4×16×96² → 16@3×3", (4, 16, 96, 96), (16, 16, 3, 3), 1),
    ("1×32×112² → 32@3×3", (1, 32, 112, 112), (32, 32, 3, 3), 1),
    ("2×4×192² → 8@3×3", (2, 4, 192, 192), (8, 4, 3, 3), 1),
    ("1×64×56² → 64@3×3", (1, 64, 56, 56), (64, 64, 3, 3), 1),
]

#: Candidate values per constant; the source's own value is always included and is the
#: reference (ratio 1.00).
KNOBS: dict[str, list[int]] = {
    "_CHUNK_BYTES": [1 << 20, 2 << 20, 4 << 20, 8 << 20, 16 << 20],
    "_WIDE_BELOW": [0, 64, 128, 256, 1 << 30],
}
CALLS_PER_BLOCK = 5


@contextmanager
def _knob(name: str, value: int) -> Iterator[None]:
    """The engine's constant ``name`` set to ``value`` for the block."""
    old = getattr(conv_module, name)
    setattr(conv_module, name, value)
    try:
        yield
    finally:
        setattr(conv_module, name, old)


def _block(fn: Callable[[], object]) -> float:
    """Median ms of :data:`CALLS_PER_BLOCK` calls after one untimed call."""
    fn()
    times = []
    for _ in range(CALLS_PER_BLOCK):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def compare(
    fn: Callable[[], object], name: str, values: list[int], rounds: int
) -> dict[int, tuple[float, float]]:
    """Per candidate value: (median ms, median per-round ratio to the source's value)."""
    reference = getattr(conv_module, name)
    values = [reference] + [v for v in values if v != reference]
    blocks: dict[int, list[float]] = {v: [] for v in values}
    for _ in range(rounds):
        for value in values:
            with _knob(name, value):
                blocks[value].append(_block(fn))
    ref = blocks[reference]
    return {
        v: (statistics.median(b), statistics.median(x / r for x, r in zip(b, ref, strict=True)))
        for v, b in blocks.items()
    }


def _label(name: str, value: int) -> str:
    if name == "_CHUNK_BYTES":
        return f"{value >> 20} MiB"
    return {0: "never", 1 << 30: "always"}.get(value, f"< {value}")


def _cases(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], pad: int
) -> dict[str, Callable[[], object]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32)
    b = rng.standard_normal(w_shape[0], dtype=np.float32)
    out = conv2d(x, w, b, padding=pad)
    grad = rng.standard_normal(out.shape, dtype=np.float32)

    def train() -> object:
        _, ctx = conv2d_forward(x, w, b, padding=pad, keep_columns=True)
        return conv2d_backward(grad, ctx)

    return {"forward": lambda: conv2d(x, w, b, padding=pad), "fwd+bwd": train}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_explorer.bench.conv_knobs",
        description="Re-measure the convolution's chunk size and wide-column limit.",
    )
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (15)")
    parser.add_argument("--only", metavar="TEXT", help="only shapes whose name contains TEXT")
    args = parser.parse_args(argv)
    print(
        f"ratio = candidate ÷ the source's value, median of {args.rounds} interleaved rounds "
        f"of {CALLS_PER_BLOCK} calls (< 1.00: the candidate is faster); ms = median block",
        flush=True,
    )
    for name, values in KNOBS.items():
        current = _label(name, getattr(conv_module, name))
        print(f"\n{name} (source: {current})", flush=True)
        for shape_name, xs, ws, pad in SHAPES:
            if args.only and args.only not in shape_name:
                continue
            for kind, fn in _cases(xs, ws, pad).items():
                got = compare(fn, name, values, args.rounds)
                cells = "  ".join(
                    f"{_label(name, v)}: {ms:6.2f} ms {r:4.2f}" for v, (ms, r) in got.items()
                )
                print(f"  {shape_name:<20} {kind:<8} {cells}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
