"""Every engine op, forward and backward, against PyTorch.

Two layers:

1. Golden files (``tests/golden/*.npz``, made by ``tests/golden/make_golden.py`` with torch):
   a fixed grid of configurations with torch's float64 outputs and autograd gradients.
   Runs everywhere, without torch, at tight float64 tolerances.
2. Live, hypothesis-driven parity (marker ``torch``, skipped when torch is missing): random
   configurations and data through both engines, float32 and float64.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import cnn_explorer.engine as engine
from cnn_explorer.engine.activations import ACTIVATIONS

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"
GOLDEN_FILES = ("golden_conv.npz", "golden_pool.npz", "golden_elementwise.npz")
ALL_OPS = {
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "linear",
    "softmax",
    "log_softmax",
    "cross_entropy",
    *ACTIVATIONS,
}
TOL = {np.float64: {"rtol": 1e-10, "atol": 1e-12}, np.float32: {"rtol": 2e-5, "atol": 2e-5}}


def engine_op(op: str) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """``(F_forward, F_backward, F)`` of an engine op by name."""
    return (
        getattr(engine, f"{op}_forward"),
        getattr(engine, f"{op}_backward"),
        getattr(engine, op),
    )


def as_tuple(grads: Any) -> tuple[Any, ...]:
    """Backwards return one array or a tuple; make it a tuple."""
    return tuple(grads) if isinstance(grads, tuple | list) else (grads,)


def assert_close(
    actual: Any, expected: np.ndarray, what: str, rtol: float = 1e-10, atol: float = 1e-12
) -> None:
    """Same shape, and values equal within ``tol`` (NaN equal to NaN)."""
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


# --------------------------------------------------------------------------------------
# 1. golden files
# --------------------------------------------------------------------------------------


def load_golden() -> list[Any]:
    """All golden cases as pytest params ``(config, arrays)`` with readable ids."""
    params: list[Any] = []
    for name in GOLDEN_FILES:
        path = GOLDEN_DIR / name
        if not path.exists():
            continue
        grouped: dict[str, dict[str, np.ndarray]] = {}
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                case, field = key.split("/", 1)
                grouped.setdefault(case, {})[field] = data[key]
        for case, arrays in sorted(grouped.items()):
            config = json.loads(str(arrays.pop("config")))
            note = f":{config['note']}" if config.get("note") else ""
            case_id = f"{path.stem}:{case}:{config['op']}{note}".replace(" ", "_")
            params.append(pytest.param(config, arrays, id=case_id))
    return params


GOLDEN = load_golden()


def test_golden_files_present_small_and_cover_every_op() -> None:
    sizes = [(GOLDEN_DIR / name).stat().st_size for name in GOLDEN_FILES]
    assert sum(sizes) < 2 * 1024 * 1024
    ops = {p.values[0]["op"] for p in GOLDEN}
    assert ops >= ALL_OPS, f"no golden cases for {sorted(ALL_OPS - ops)}"


def engine_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """JSON lists back to tuples (the contract's spelling of pairs and padding4)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in config["kwargs"].items()}


@pytest.mark.parametrize(("config", "arrays"), GOLDEN)
def test_golden_forward_backward(config: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    forward, backward, plain = engine_op(config["op"])
    args = [arrays.get(a) for a in config["args"]]
    saved = [None if a is None else a.copy() for a in args]
    kwargs = engine_kwargs(config)
    tol = TOL[np.float64]

    out, ctx = forward(*args, **kwargs)
    assert_close(out, arrays["out"], "forward", **tol)
    if isinstance(out, np.ndarray):
        assert out.dtype == np.float64
    assert_close(plain(*args, **kwargs), arrays["out"], "inference F(...)", **tol)

    grad_out: Any = arrays["grad_out"]
    grads = as_tuple(backward(float(grad_out) if grad_out.ndim == 0 else grad_out, ctx))
    assert len(grads) == len(config["grads"]), f"backward returned {len(grads)} gradients"
    for name, grad in zip(config["grads"], grads, strict=True):
        key = f"grad_{name}"
        if key not in arrays:
            assert grad is None, f"{key} should be None (no {name} given)"
        else:
            assert_close(grad, arrays[key], key, **tol)
    for before, after in zip(saved, args, strict=True):
        if before is not None:
            np.testing.assert_array_equal(after, before, err_msg="op modified its input")


# --------------------------------------------------------------------------------------
# 2. live parity with torch (hypothesis)
# --------------------------------------------------------------------------------------

# more examples for a deeper one-off search: CNN_EXPLORER_PARITY_EXAMPLES=500 pytest ...
LIVE = settings(
    max_examples=int(os.environ.get("CNN_EXPLORER_PARITY_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DTYPES = st.sampled_from([np.float32, np.float64])


@pytest.fixture(scope="module")
def oracle() -> ModuleType:
    """``tests/golden/make_golden.py`` as a module: its torch translations of every op."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    path = GOLDEN_DIR / "make_golden.py"
    spec = importlib.util.spec_from_file_location("make_golden", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_golden", module)
    spec.loader.exec_module(module)
    return module


def torch_run(
    oracle: ModuleType,
    op: str,
    args: list[np.ndarray | None],
    kwargs: dict[str, Any],
    grad_out: Any,
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Torch forward and the gradient of ``Σ out · grad_out`` w.r.t. each float input."""
    import torch

    tensors: list[Any] = []
    for a in args:
        if a is None:
            tensors.append(None)
        elif a.dtype.kind in "iu":
            tensors.append(torch.tensor(a, dtype=torch.int64))
        else:
            tensors.append(torch.tensor(a, requires_grad=True))
    json_kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    with warnings.catch_warnings():  # torch's own performance hints are not our business
        warnings.simplefilter("ignore", UserWarning)
        out = oracle.TORCH_OPS[op](*tensors, **json_kwargs)
    out.backward(torch.as_tensor(np.asarray(grad_out, dtype=a_dtype(args))))
    grads = [None if t is None or not t.requires_grad else t.grad.numpy() for t in tensors]
    return out.detach().numpy(), grads


def a_dtype(args: list[np.ndarray | None]) -> np.dtype:
    """The float dtype of the first float input (the dtype the op computes in)."""
    return next(a.dtype for a in args if a is not None and a.dtype.kind == "f")


def check_live(
    oracle: ModuleType, op: str, args: list[np.ndarray | None], kwargs: dict[str, Any], seed: int
) -> None:
    """Run ``op`` in the engine and in torch; compare output, dtype and every gradient."""
    dtype = a_dtype(args)
    tol = TOL[dtype.type]
    forward, backward, _ = engine_op(op)
    out, ctx = forward(*args, **kwargs)
    rng = np.random.default_rng(seed)
    if isinstance(out, float):
        grad_out: Any = float(rng.uniform(0.5, 1.5))
    else:
        assert out.dtype == dtype
        grad_out = rng.standard_normal(out.shape).astype(dtype)
    t_out, t_grads = torch_run(oracle, op, args, kwargs, grad_out)
    assert_close(out, t_out.astype(np.float64) if isinstance(out, float) else t_out, op, **tol)
    grads = as_tuple(backward(grad_out, ctx))
    for i, (mine, theirs) in enumerate(zip(grads, t_grads, strict=False)):
        if theirs is None:
            assert mine is None
            continue
        assert mine.dtype == dtype
        assert_close(mine, theirs, f"{op} grad of input {i}", **tol)


def std_data(seed: int, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """Standard normal data: continuous, so no ties in max pooling."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


ACT_SETTINGS: dict[str, st.SearchStrategy[dict[str, float]]] = {
    "leaky_relu": st.fixed_dictionaries(
        {"negative_slope": st.sampled_from([0.01, 0.2, 0.0, 1.5, -0.3])}
    ),
    "elu": st.fixed_dictionaries({"alpha": st.sampled_from([1.0, 0.5, 2.0])}),
    "softplus": st.fixed_dictionaries(
        {"beta": st.sampled_from([1.0, 2.0, 0.5]), "threshold": st.sampled_from([20.0, 2.0])}
    ),
}


@pytest.mark.torch
@pytest.mark.parametrize("kind", sorted(ACTIVATIONS))
@LIVE
@given(data=st.data(), dtype=DTYPES)
def test_live_activations(oracle: ModuleType, kind: str, data: st.DataObject, dtype: type) -> None:
    x = data.draw(
        hnp.arrays(
            dtype,
            hnp.array_shapes(min_dims=1, max_dims=4, max_side=4),
            elements=st.floats(-12, 12, width=32),
        )
    )
    kwargs = data.draw(ACT_SETTINGS.get(kind, st.just({})))
    check_live(oracle, kind, [x], kwargs, seed=1)


@pytest.mark.torch
@LIVE
@given(
    n=st.integers(1, 4),
    fin=st.integers(1, 6),
    fout=st.integers(1, 5),
    bias=st.booleans(),
    dtype=DTYPES,
    seed=st.integers(0, 2**16),
)
def test_live_linear(
    oracle: ModuleType, n: int, fin: int, fout: int, bias: bool, dtype: type, seed: int
) -> None:
    args = [
        std_data(seed, (n, fin), dtype),
        std_data(seed + 1, (fout, fin), dtype),
        std_data(seed + 2, (fout,), dtype) if bias else None,
    ]
    check_live(oracle, "linear", args, {}, seed)


@pytest.mark.torch
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@LIVE
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
    data=st.data(),
    scale=st.sampled_from([1.0, 30.0]),
    dtype=DTYPES,
    seed=st.integers(0, 2**16),
)
def test_live_softmax(
    oracle: ModuleType,
    op: str,
    shape: tuple[int, ...],
    data: st.DataObject,
    scale: float,
    dtype: type,
    seed: int,
) -> None:
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x: np.ndarray = (std_data(seed, shape, np.float64) * scale).astype(dtype)
    check_live(oracle, op, [x], {"dim": dim}, seed)


@pytest.mark.torch
@LIVE
@given(
    n=st.integers(1, 5),
    k=st.integers(1, 6),
    reduction=st.sampled_from(["mean", "sum"]),
    scale=st.sampled_from([1.0, 20.0]),
    dtype=DTYPES,
    seed=st.integers(0, 2**16),
)
def test_live_cross_entropy(
    oracle: ModuleType, n: int, k: int, reduction: str, scale: float, dtype: type, seed: int
) -> None:
    logits: np.ndarray = (std_data(seed, (n, k), np.float64) * scale).astype(dtype)
    target = np.random.default_rng(seed).integers(0, k, size=n)
    check_live(oracle, "cross_entropy", [logits, target], {"reduction": reduction}, seed)


@st.composite
def conv_configs(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]:
    """A valid conv2d configuration: (x shape, weight shape, engine kwargs)."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    spelling = draw(st.sampled_from(["int", "pair", "four", "same", "valid"]))
    stride = (1, 1) if spelling == "same" else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding: Any
    if spelling == "int":
        padding = draw(st.integers(0, 2))
        pads = (padding,) * 4
    elif spelling == "pair":
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        pads = (padding[0], padding[0], padding[1], padding[1])
    elif spelling == "four":
        padding = tuple(draw(st.integers(0, 2)) for _ in range(4))
        pads = padding
    else:
        padding = spelling
        th, tw = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
        pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2) if spelling == "same" else (0,) * 4
    eff_h, eff_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    # big enough for the kernel, and for reflect (pad < size) / circular (pad ≤ size)
    h = max(eff_h - pads[0] - pads[1], max(pads[:2]) + 1) + draw(st.integers(0, 3))
    w = max(eff_w - pads[2] - pads[3], max(pads[2:]) + 1) + draw(st.integers(0, 3))
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x_shape = (c, h, w) if draw(st.booleans()) and n == 1 else (n, c, h, w)
    kwargs = {
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "padding_mode": mode,
        "flip_kernel": draw(st.booleans()),
    }
    return x_shape, (o, c, kh, kw), kwargs


@pytest.mark.torch
@LIVE
@given(config=conv_configs(), bias=st.booleans(), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_live_conv2d(
    oracle: ModuleType,
    config: tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]],
    bias: bool,
    dtype: type,
    seed: int,
) -> None:
    x_shape, w_shape, kwargs = config
    args = [
        std_data(seed, x_shape, dtype),
        std_data(seed + 1, w_shape, dtype),
        std_data(seed + 2, (w_shape[0],), dtype) if bias else None,
    ]
    check_live(oracle, "conv2d", args, kwargs, seed)


def every_window_touches_input(n: int, k: int, s: int, p: int, d: int, ceil: bool) -> bool:
    """True if every pooling window along an axis covers at least one real (non-padding) cell.

    With dilation a max-pool window can hop over the input and see only padding; torch then
    returns an out-of-range argmax index and its backward corrupts the heap (segfault seen
    with torch 2.13: x (1, 1, 1, 1), kernel (2, 1), stride (1, 2), padding (1, 0),
    dilation (2, 1)), so the live test keeps to windows torch handles.
    """
    num = n + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= n + p:  # torch: the last window must start inside
        out -= 1
    return all(any(0 <= i * s - p + j * d < n for j in range(k)) for i in range(out))


@st.composite
def pool_configs(draw: st.DrawFn, op: str) -> tuple[tuple[int, ...], dict[str, Any]]:
    """A configuration torch accepts: padding ≤ kernel/2, input ≥ effective kernel."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    kwargs: dict[str, Any] = {
        "kernel_size": (kh, kw),
        "stride": stride,
        "padding": (ph, pw),
        "ceil_mode": draw(st.booleans()),
    }
    dh = dw = 1
    if op == "max_pool2d":
        dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        kwargs["dilation"] = (dh, dw)
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
    h = max(dh * (kh - 1) + 1 - 2 * ph, 1) + draw(st.integers(0, 4))
    w = max(dw * (kw - 1) + 1 - 2 * pw, 1) + draw(st.integers(0, 4))
    sh, sw = stride or (kh, kw)
    ceil = kwargs["ceil_mode"]
    assume(every_window_touches_input(h, kh, sh, ph, dh, ceil))
    assume(every_window_touches_input(w, kw, sw, pw, dw, ceil))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    x_shape = (c, h, w) if draw(st.booleans()) and n == 1 else (n, c, h, w)
    return x_shape, kwargs


@pytest.mark.torch
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@LIVE
@given(data=st.data(), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_live_pool(
    oracle: ModuleType, op: str, data: st.DataObject, dtype: type, seed: int
) -> None:
    x_shape, kwargs = data.draw(pool_configs(op))
    check_live(oracle, op, [std_data(seed, x_shape, dtype)], kwargs, seed)
