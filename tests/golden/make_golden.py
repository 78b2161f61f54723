"""Regenerate the golden files: torch outputs and autograd gradients for every engine op.

Run (needs the optional torch oracle, see pyproject ``[project.optional-dependencies]``)::

    /work/venv/bin/python tests/golden/make_golden.py            # every file
    /work/venv/bin/python tests/golden/make_golden.py network    # only golden_network.npz

Why golden files: the torch parity test (``tests/engine/test_torch_parity.py``) must run on
machines without torch, so the oracle's answers are stored here once, in float64, for a
fixed seeded grid of configurations. Each ``.npz`` holds plain arrays only (no pickles):

- ``caseNNN/config``: a 0-d string array holding JSON ``{"op", "kwargs", "args", "grads",
  "note"}``. ``args`` names the positional inputs in order (a name without a stored array
  means ``None``, e.g. no bias); ``grads`` names the inputs the backward returns gradients
  for, in the order of the engine's ``F_backward`` result.
- ``caseNNN/<arg>``: each input array; ``caseNNN/out``: the forward output;
  ``caseNNN/grad_out``: the random upstream gradient; ``caseNNN/grad_<arg>``: torch's
  gradient of ``Σ out · grad_out`` with respect to that input.

``golden_network.npz`` holds whole networks instead (the engine's ``default_classifier`` and a
stack with stride/dilation/circular padding, avg pool, leaky ReLU and a dense head):
``caseNNN/config`` is JSON ``{"network": Network.to_dict(), "note"}``; ``caseNNN/x``,
``caseNNN/y`` a random batch and labels; ``caseNNN/param/<key>`` the seeded weights (float64,
engine keys such as ``"0.weight"``); ``caseNNN/loss`` torch's mean cross-entropy,
``caseNNN/logits``, ``caseNNN/grad/<key>`` and ``caseNNN/grad_input`` its autograd gradients.

Engine kwargs use the contract's spelling (padding ``(top, bottom, left, right)``,
``flip_kernel``, ``padding_mode``); this script translates them to torch calls.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (torch's own convention)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the engine, for the whole-network cases
SEED = 20240611
TORCH_PAD_MODE = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "replicate",
    "circular": "circular",
}

Case = dict[str, Any]


# --------------------------------------------------------------------------------------
# torch translations of the engine's ops
# --------------------------------------------------------------------------------------


def _pair(v: int | list[int] | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def pad4(padding: Any, kernel: tuple[int, int], dilation: Any) -> tuple[int, int, int, int]:
    """Engine padding spelling → ``(top, bottom, left, right)`` (torch 'same': extra at the end)."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        dh, dw = _pair(dilation)
        th, tw = dh * (kernel[0] - 1), dw * (kernel[1] - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    if isinstance(padding, list | tuple) and len(padding) == 4:
        return tuple(int(p) for p in padding)  # type: ignore[return-value]
    ph, pw = _pair(padding)
    return (ph, ph, pw, pw)


def torch_conv2d(x: Any, weight: Any, bias: Any = None, **kw: Any) -> Any:
    """conv2d with the engine's options, through torch: zeros padding uses conv2d's own
    padding when torch supports the spelling; anything else pads with ``F.pad`` first,
    exactly as ``nn.Conv2d`` does for non-zero padding modes."""
    stride, dilation = kw.get("stride", 1), kw.get("dilation", 1)
    padding, mode = kw.get("padding", 0), kw.get("padding_mode", "zeros")
    w = weight.flip(2, 3) if kw.get("flip_kernel", False) else weight
    native = mode == "zeros" and not (isinstance(padding, list) and len(padding) == 4)
    if native:
        pad = padding if isinstance(padding, str) else _pair(padding)
        return F.conv2d(x, w, bias, _pair(stride), pad, _pair(dilation))
    t, b, left, r = pad4(padding, tuple(weight.shape[2:]), dilation)
    xp = F.pad(x, (left, r, t, b), mode=TORCH_PAD_MODE[mode])
    return F.conv2d(xp, w, bias, _pair(stride), 0, _pair(dilation))


def torch_max_pool2d(x: Any, **kw: Any) -> Any:
    return F.max_pool2d(
        x,
        _pair(kw["kernel_size"]),
        None if kw.get("stride") is None else _pair(kw["stride"]),
        _pair(kw.get("padding", 0)),
        _pair(kw.get("dilation", 1)),
        ceil_mode=kw.get("ceil_mode", False),
    )


def torch_avg_pool2d(x: Any, **kw: Any) -> Any:
    return F.avg_pool2d(
        x,
        _pair(kw["kernel_size"]),
        None if kw.get("stride") is None else _pair(kw["stride"]),
        _pair(kw.get("padding", 0)),
        ceil_mode=kw.get("ceil_mode", False),
        count_include_pad=kw.get("count_include_pad", True),
    )


TORCH_ACTIVATIONS: dict[str, Callable[..., Any]] = {
    "relu": lambda x: F.relu(x),
    "leaky_relu": lambda x, negative_slope=0.01: F.leaky_relu(x, negative_slope),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "identity": lambda x: x * 1.0,
    "elu": lambda x, alpha=1.0: F.elu(x, alpha),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "softplus": lambda x, beta=1.0, threshold=20.0: F.softplus(x, beta, threshold),
}

TORCH_OPS: dict[str, Callable[..., Any]] = {
    "conv2d": torch_conv2d,
    "max_pool2d": torch_max_pool2d,
    "avg_pool2d": torch_avg_pool2d,
    "linear": lambda x, weight, bias=None: F.linear(x, weight, bias),
    "softmax": lambda x, dim=-1: F.softmax(x, dim),
    "log_softmax": lambda x, dim=-1: F.log_softmax(x, dim),
    "cross_entropy": lambda logits, target, reduction="mean": F.cross_entropy(
        logits, target, reduction=reduction
    ),
    **TORCH_ACTIVATIONS,
}


def run_torch(
    op: str,
    inputs: dict[str, np.ndarray | None],
    kwargs: dict[str, Any],
    args: list[str],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Forward and backward through torch in float64; returns out, grad_out and grad_<arg>."""
    tensors: dict[str, Any] = {}
    for name in args:
        value = inputs.get(name)
        if value is None:
            tensors[name] = None
        elif value.dtype.kind in "iu":
            tensors[name] = torch.tensor(value, dtype=torch.int64)
        else:
            tensors[name] = torch.tensor(value, dtype=torch.float64, requires_grad=True)
    out = TORCH_OPS[op](*(tensors[a] for a in args), **kwargs)
    if out.ndim == 0:
        grad_out = np.array(rng.uniform(0.5, 1.5))
    else:
        grad_out = rng.standard_normal(tuple(out.shape))
    out.backward(torch.tensor(grad_out, dtype=torch.float64))
    result = {"out": out.detach().numpy().copy(), "grad_out": grad_out}
    for name, t in tensors.items():
        if t is not None and t.requires_grad:
            result[f"grad_{name}"] = t.grad.numpy().copy()
    return result


def make_case(
    op: str,
    inputs: dict[str, np.ndarray | None],
    kwargs: dict[str, Any],
    rng: np.random.Generator,
    note: str = "",
) -> Case:
    """One golden case: the inputs, the torch results and the JSON config."""
    args = list(inputs)
    results = run_torch(op, inputs, kwargs, args, rng)
    grads = [a for a in args if inputs[a] is None or inputs[a].dtype.kind == "f"]
    config = {"op": op, "kwargs": kwargs, "args": args, "grads": grads, "note": note}
    arrays = {k: v for k, v in inputs.items() if v is not None}
    return {"config": config, "arrays": {**arrays, **results}}


# --------------------------------------------------------------------------------------
# the grids
# --------------------------------------------------------------------------------------


def conv_cases(rng: np.random.Generator) -> list[Case]:
    """conv2d: every padding spelling × every padding mode, plus stride/dilation/bias/flip/
    batch specials and the worked example."""
    paddings: list[Any] = [0, 1, [1, 2], [0, 1, 2, 1], [2, 0, 0, 1], "same", "valid"]
    # (x shape, weight shape, stride, dilation, bias, flip) cycled over the padding grid
    shapes = [
        ((2, 3, 7, 6), (4, 3, 3, 3), 1, 1, True, False),
        ((1, 2, 6, 7), (3, 2, 2, 3), [2, 1], 1, False, True),
        ((2, 1, 5, 5), (2, 1, 3, 2), 2, [1, 2], True, False),
        ((3, 2, 6, 5), (2, 2, 2, 2), 1, 2, True, True),
        ((2, 6, 5), (3, 2, 3, 1), [1, 3], 1, False, False),  # unbatched (C, H, W)
    ]
    cases: list[Case] = []
    i = 0
    for mode in TORCH_PAD_MODE:
        for padding in paddings:
            xs, ws, stride, dilation, with_bias, flip = shapes[i % len(shapes)]
            i += 1
            if padding == "same":
                stride = 1
            kwargs = {
                "stride": stride,
                "padding": padding,
                "dilation": dilation,
                "padding_mode": mode,
                "flip_kernel": flip,
            }
            inputs = {
                "x": rng.standard_normal(xs),
                "weight": rng.standard_normal(ws),
                "bias": rng.standard_normal(ws[0]) if with_bias else None,
            }
            cases.append(make_case("conv2d", inputs, kwargs, rng, f"grid {mode} {padding}"))
    specials: list[tuple[tuple[int, ...], tuple[int, ...], dict[str, Any], str]] = [
        ((2, 3, 7, 6), (2, 3, 5, 5), {}, "kernel 5x5 on 7x6"),
        ((1, 2, 9, 8), (3, 2, 3, 3), {"stride": 3, "dilation": 2}, "stride 3 dilation 2"),
        ((2, 3, 5, 7), (4, 3, 1, 1), {"stride": 2}, "1x1 stride 2"),
        ((2, 2, 4, 5), (3, 2, 4, 5), {}, "kernel = input (1x1 output)"),
        ((1, 1, 8, 8), (1, 1, 3, 3), {"dilation": [2, 3], "padding": [2, 3]}, "dilation pair"),
        ((3, 1, 6, 6), (2, 1, 4, 4), {"padding": "same", "dilation": 2}, "even kernel same"),
        ((1, 1, 7, 7), (1, 1, 3, 3), {"stride": 2, "padding": 1, "flip_kernel": True}, "flip"),
        ((2, 2, 5, 6), (2, 2, 3, 3), {"padding": 2, "padding_mode": "circular"}, "circular 2"),
        (
            (2, 2, 5, 6),
            (2, 2, 3, 3),
            {"padding": [4, 0, 0, 5], "padding_mode": "reflect"},
            "reflect max",
        ),
        (
            (1, 3, 5, 5),
            (2, 3, 3, 3),
            {"stride": [3, 2], "padding": [1, 0, 2, 1], "padding_mode": "replicate"},
            "replicate strided",
        ),
    ]
    for xs, ws, kwargs, note in specials:
        inputs = {
            "x": rng.standard_normal(xs),
            "weight": rng.standard_normal(ws),
            "bias": rng.standard_normal(ws[0]),
        }
        cases.append(make_case("conv2d", inputs, kwargs, rng, note))
    worked = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=np.float64)
    for kernel in ([[1, 1], [1, 1]], [[1, -1], [1, -1]]):
        inputs = {
            "x": worked[None, None],
            "weight": np.array(kernel, dtype=np.float64)[None, None],
            "bias": None,
        }
        cases.append(make_case("conv2d", inputs, {}, rng, "worked example"))
    return cases


def pool_cases(rng: np.random.Generator) -> list[Case]:
    """max_pool2d / avg_pool2d: stride (default, int, pair), padding, dilation (max),
    ceil_mode, count_include_pad (avg), unbatched, worked example."""
    common: list[tuple[tuple[int, ...], dict[str, Any]]] = [
        ((2, 3, 6, 6), {"kernel_size": 2}),
        ((2, 2, 7, 7), {"kernel_size": 3, "stride": 2}),
        ((1, 2, 6, 7), {"kernel_size": [2, 3], "stride": [1, 2]}),
        ((2, 1, 5, 5), {"kernel_size": 3, "stride": 1, "padding": 1}),
        ((1, 2, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
        ((2, 1, 5, 7), {"kernel_size": 2, "stride": 2, "ceil_mode": True}),
        (
            (1, 2, 8, 7),
            {"kernel_size": [3, 2], "stride": [2, 3], "padding": [1, 0], "ceil_mode": True},
        ),
        ((3, 5, 6), {"kernel_size": 2, "stride": 1}),  # unbatched
        ((1, 1, 6, 6), {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True}),
        ((1, 1, 5, 5), {"kernel_size": 5}),
    ]
    max_only: list[tuple[tuple[int, ...], dict[str, Any]]] = [
        ((1, 2, 7, 7), {"kernel_size": 2, "dilation": 2}),
        ((2, 1, 8, 7), {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": [2, 1]}),
        ((1, 1, 9, 9), {"kernel_size": 3, "stride": 3, "dilation": 2, "ceil_mode": True}),
    ]
    cases: list[Case] = []
    for shape, kwargs in common + max_only:
        inputs = {"x": rng.standard_normal(shape)}
        cases.append(make_case("max_pool2d", inputs, kwargs, rng))
    for shape, kwargs in common:
        for cip in (True, False):
            if not cip and not kwargs.get("padding") and not kwargs.get("ceil_mode"):
                continue  # count_include_pad only matters with padding or ceil_mode
            inputs = {"x": rng.standard_normal(shape)}
            cases.append(make_case("avg_pool2d", inputs, {**kwargs, "count_include_pad": cip}, rng))
    conv_out = np.array([[4, 2, 0], [2, 2, 2], [0, 2, 4]], dtype=np.float64)[None, None]
    for op in ("max_pool2d", "avg_pool2d"):
        kwargs = {"kernel_size": 2, "stride": 1}
        # ties in the worked example: torch sends the gradient to the first max in the window
        cases.append(make_case(op, {"x": conv_out}, kwargs, rng, "worked example"))
    return cases


def elementwise_cases(rng: np.random.Generator) -> list[Case]:
    """Every activation (incl. exact 0 and extreme values), linear, softmax, log_softmax,
    cross_entropy."""
    cases: list[Case] = []
    specials = np.array([0.0, -0.0, 1e-8, -1e-8, 25.0, -25.0, 19.99, 20.01, 700.0, -700.0])
    settings: dict[str, list[dict[str, float]]] = {
        "leaky_relu": [{}, {"negative_slope": 0.2}, {"negative_slope": 1.5}],
        "elu": [{}, {"alpha": 0.5}],
        "softplus": [{}, {"beta": 2.0}, {"beta": 0.5, "threshold": 3.0}],
    }
    for kind in TORCH_ACTIVATIONS:
        for kwargs in settings.get(kind, [{}]):
            x = rng.standard_normal((2, 3, 3, 4)) * 3.0
            x.reshape(-1)[: specials.size] = specials
            cases.append(make_case(kind, {"x": x}, kwargs, rng))
        cases.append(
            make_case(kind, {"x": rng.standard_normal(5)}, settings.get(kind, [{}])[0], rng, "1-D")
        )
    for xs, with_bias in (((4, 6), True), ((4, 6), False), ((6,), True), ((2, 3, 6), True)):
        inputs = {
            "x": rng.standard_normal(xs),
            "weight": rng.standard_normal((5, 6)),
            "bias": rng.standard_normal(5) if with_bias else None,
        }
        cases.append(make_case("linear", inputs, {}, rng))
    for op in ("softmax", "log_softmax"):
        for shape, dim, scale in (
            ((3, 5), -1, 1.0),
            ((3, 5), 0, 1.0),
            ((2, 3, 2, 2), 1, 2.0),
            ((4, 3), -1, 300.0),
            ((6,), 0, 1.0),
        ):
            inputs = {"x": rng.standard_normal(shape) * scale}
            cases.append(make_case(op, inputs, {"dim": dim}, rng))
    for shape, reduction, scale in (
        ((4, 5), "mean", 1.0),
        ((4, 5), "sum", 1.0),
        ((6, 3), "mean", 50.0),
        ((1, 10), "mean", 1.0),
    ):
        inputs = {
            "logits": rng.standard_normal(shape) * scale,
            "target": rng.integers(0, shape[1], size=shape[0]).astype(np.int64),
        }
        cases.append(make_case("cross_entropy", inputs, {"reduction": reduction}, rng))
    unbatched = {"logits": rng.standard_normal(4), "target": np.array(2, dtype=np.int64)}
    cases.append(make_case("cross_entropy", unbatched, {"reduction": "mean"}, rng, "unbatched"))
    return cases


def save(cases: list[Case], path: Path) -> None:
    """Write cases as ``caseNNN/<field>`` arrays into a compressed, pickle-free npz."""
    arrays: dict[str, np.ndarray] = {}
    for i, case in enumerate(cases):
        arrays[f"case{i:03d}/config"] = np.array(json.dumps(case["config"]))
        for name, value in case["arrays"].items():
            arr = np.asarray(value)
            assert arr.dtype != object
            arrays[f"case{i:03d}/{name}"] = arr
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    print(f"{path.name}: {len(cases)} cases, {path.stat().st_size / 1024:.1f} KiB")


def self_check() -> None:
    """Our padding translation must agree with nn.Conv2d for a non-zero mode and 'same'."""
    torch.manual_seed(0)
    for mode in ("reflect", "circular"):
        conv = torch.nn.Conv2d(
            2, 3, (4, 3), padding="same", dilation=(1, 2), padding_mode=mode
        ).double()
        x = torch.randn(1, 2, 7, 8, dtype=torch.float64)
        ours = torch_conv2d(
            x, conv.weight, conv.bias, padding="same", dilation=[1, 2], padding_mode=mode
        )
        assert torch.allclose(ours, conv(x)), mode
    assert math.isclose(float(F.softplus(torch.tensor(0.0, dtype=torch.float64))), math.log(2))


# --------------------------------------------------------------------------------------
# whole networks
# --------------------------------------------------------------------------------------


def torch_layer(x: Any, cfg: dict[str, Any], params: dict[str, Any]) -> Any:
    """One engine layer (its ``to_dict`` config and torch parameters) applied in torch."""
    kind = cfg["kind"]
    if kind == "conv":
        kw = {k: cfg[k] for k in ("stride", "padding", "dilation", "padding_mode", "flip_kernel")}
        return torch_conv2d(x, params["weight"], params.get("bias"), **kw)
    if kind in ("max_pool", "avg_pool"):
        kw = {k: cfg[k] for k in ("kernel_size", "stride", "padding", "ceil_mode")}
        if kind == "avg_pool":
            return torch_avg_pool2d(x, **kw)
        return torch_max_pool2d(x, dilation=cfg.get("dilation", 1), **kw)
    if kind == "activation":
        extra = {k: v for k, v in cfg.items() if k == "negative_slope"}
        return TORCH_ACTIVATIONS[cfg["activation"]](x, **extra)
    if kind == "flatten":
        return x.flatten(1)
    if kind == "dense":
        return F.linear(x, params["weight"], params.get("bias"))
    raise ValueError(f"no torch translation for layer kind {kind!r}")


def network_case(net: Any, x: np.ndarray, y: np.ndarray, note: str) -> Case:
    """Loss, logits and autograd gradients (every parameter and the input) of ``net``."""
    config = net.to_dict()
    weights = {k: np.asarray(v, np.float64) for k, v in net.parameters()}
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in weights.items()}
    tx = torch.tensor(x, requires_grad=True)
    h = tx
    for i, cfg in enumerate(config["layers"]):
        own = {k.split(".", 1)[1]: v for k, v in tparams.items() if k.split(".")[0] == str(i)}
        h = torch_layer(h, cfg, own)
    loss = F.cross_entropy(h, torch.tensor(y, dtype=torch.int64))
    loss.backward()
    arrays: dict[str, np.ndarray] = {"x": x, "y": y}
    arrays.update({f"param/{k}": v for k, v in weights.items()})
    arrays["loss"] = np.array(loss.item())
    arrays["logits"] = h.detach().numpy().copy()
    arrays.update({f"grad/{k}": t.grad.numpy().copy() for k, t in tparams.items()})
    arrays["grad_input"] = tx.grad.numpy().copy()
    return {"config": {"network": config, "note": note}, "arrays": arrays}


def network_cases(rng: np.random.Generator) -> list[Case]:
    """The default classifier, and a stack exercising stride, dilation, circular padding,
    average pooling, leaky ReLU and ceil-mode max pooling before a dense head."""
    from cnn_explorer.engine.layers import Activation, AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D
    from cnn_explorer.engine.network import Network, default_classifier

    cases = []
    net = default_classifier((1, 8, 8), 3, seed=7)
    x = rng.standard_normal((4, 1, 8, 8))
    cases.append(network_case(net, x, rng.integers(0, 3, 4), "default_classifier 1×8×8 → 3"))
    stack: list[Any] = [
        Conv2D(2, 3, 3, stride=2, dilation=2, padding=2, padding_mode="circular", rng=11),
        AvgPool2D(2, stride=1),
        Activation("leaky_relu", negative_slope=0.2),
        Conv2D(3, 4, (2, 3), padding=(1, 0, 1, 2), padding_mode="reflect", rng=12),
        Activation("tanh"),
        MaxPool2D(2, ceil_mode=True),
        Flatten(),
    ]
    features = Network(stack).output_shape((2, 11, 10))[0]
    other = Network([*stack, Dense(features, 4, rng=13)])
    x = rng.standard_normal((3, 2, 11, 10))
    cases.append(network_case(other, x, rng.integers(0, 4, 3), "strided/dilated/circular stack"))
    return cases


WRITERS: dict[str, tuple[str, Callable[[np.random.Generator], list[Case]]]] = {
    "conv": ("golden_conv.npz", conv_cases),
    "pool": ("golden_pool.npz", pool_cases),
    "elementwise": ("golden_elementwise.npz", elementwise_cases),
}


def main(names: list[str]) -> None:
    """Write the named files (default: all). The op files share one seeded generator, so
    they are always written together; the network file has its own seed."""
    torch.set_default_dtype(torch.float64)
    self_check()
    unknown = set(names) - {*WRITERS, "network"}
    if unknown:
        raise SystemExit(
            f"unknown golden files {sorted(unknown)}; choose from conv, pool, elementwise, network"
        )
    if not names or set(names) & set(WRITERS):
        rng = np.random.default_rng(SEED)
        for filename, cases in WRITERS.values():
            save(cases(rng), HERE / filename)
    if not names or "network" in names:
        save(network_cases(np.random.default_rng(SEED + 1)), HERE / "golden_network.npz")


if __name__ == "__main__":
    main(sys.argv[1:])
