"""Regenerate the golden files: torch outputs and autograd gradients for every engine op.

Run (needs the optional torch oracle, see pyproject ``[project.optional-dependencies]``)::

    /work/venv/bin/python tests/golden/make_golden.py            # every file
    /work/venv/bin/python tests/golden/make_golden.py network    # only golden_network.npz
    /work/venv/bin/python tests/golden/make_golden.py graph      # only the two graph files

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

``golden_graph_ops.npz`` holds the layers graph networks added (grouped/depthwise conv,
asymmetric pool padding, ``count_include_pad``, Pad2D, global/adaptive average pooling,
PReLU, Clip, Softmax, Reshape), one layer per case: ``caseNNN/config`` is JSON
``{"layer": Layer.to_dict(), "note"}``; ``x``, ``param/<name>``, ``out``, ``grad_out``,
``grad_x`` and ``grad/<name>``. ``golden_graph.npz`` holds a ResNet-style and a
SqueezeNet-style ``Graph`` like ``golden_network.npz`` (``{"graph": Graph.to_dict(),
"note"}``, keys ``"<node>.<param>"``), in training mode (batch norm on batch statistics).

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
    groups = kw.get("groups", 1)
    native = mode == "zeros" and not (isinstance(padding, list) and len(padding) == 4)
    if native:
        pad = padding if isinstance(padding, str) else _pair(padding)
        return F.conv2d(x, w, bias, _pair(stride), pad, _pair(dilation), groups)
    t, b, left, r = pad4(padding, tuple(weight.shape[2:]), dilation)
    xp = F.pad(x, (left, r, t, b), mode=TORCH_PAD_MODE[mode])
    return F.conv2d(xp, w, bias, _pair(stride), 0, _pair(dilation), groups)


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
        return torch_conv2d(
            x, params["weight"], params.get("bias"), groups=cfg.get("groups", 1), **kw
        )
    if kind in ("max_pool", "avg_pool") and len(cfg["padding"]) == 4:
        return torch_asymmetric_pool(x, cfg)
    if kind in ("max_pool", "avg_pool"):
        kw = {k: cfg[k] for k in ("kernel_size", "stride", "padding", "ceil_mode")}
        if kind == "avg_pool":
            cip = cfg.get("count_include_pad", True)
            return torch_avg_pool2d(x, count_include_pad=cip, **kw)
        return torch_max_pool2d(x, dilation=cfg.get("dilation", 1), **kw)
    if kind in GRAPH_LAYERS:
        return GRAPH_LAYERS[kind](x, cfg, params)
    if kind == "activation":
        extra = {k: v for k, v in cfg.items() if k == "negative_slope"}
        return TORCH_ACTIVATIONS[cfg["activation"]](x, **extra)
    if kind == "flatten":
        return x.flatten(1)
    if kind == "dense":
        return F.linear(x, params["weight"], params.get("bias"))
    raise ValueError(f"no torch translation for layer kind {kind!r}")


def torch_asymmetric_pool(x: Any, cfg: dict[str, Any]) -> Any:
    """Pooling with (top, bottom, left, right) padding, which torch's pools lack: pad first
    (−∞ for max, zeros for average), then pool unpadded. Average without counting padding
    is the window sum over the window's count of real cells (a pooled mask of ones)."""
    t, b, left, r = cfg["padding"]
    k, s = _pair(cfg["kernel_size"]), _pair(cfg["stride"])
    ceil = cfg.get("ceil_mode", False)
    if cfg["kind"] == "max_pool":
        return F.max_pool2d(F.pad(x, (left, r, t, b), value=-math.inf), k, s, ceil_mode=ceil)
    total = F.avg_pool2d(F.pad(x, (left, r, t, b)), k, s, ceil_mode=ceil, divisor_override=1)
    if cfg.get("count_include_pad", True):
        ones = F.pad(torch.ones_like(x[:1, :1]), (left, r, t, b), value=1.0)
    else:
        ones = F.pad(torch.ones_like(x[:1, :1]), (left, r, t, b))
    return total / F.avg_pool2d(ones, k, s, ceil_mode=ceil, divisor_override=1)


GRAPH_LAYERS: dict[str, Callable[[Any, dict[str, Any], dict[str, Any]], Any]] = {
    "pad": lambda x, c, p: F.pad(
        x,
        (c["padding"][2], c["padding"][3], c["padding"][0], c["padding"][1]),
        mode=TORCH_PAD_MODE[c["mode"]],
        **({"value": c["value"]} if c["mode"] == "zeros" else {}),
    ),
    "global_avg_pool": lambda x, c, p: F.adaptive_avg_pool2d(x, 1),
    "adaptive_avg_pool": lambda x, c, p: F.adaptive_avg_pool2d(x, tuple(c["output_size"])),
    "prelu": lambda x, c, p: F.prelu(x, p["weight"]),
    "clip": lambda x, c, p: torch.clamp(x, c["min"], c["max"]),
    "softmax": lambda x, c, p: F.softmax(x, c["axis"]),
    "reshape": lambda x, c, p: x.reshape(x.shape[0], *c["shape"]),
    "batch_norm": lambda x, c, p: F.batch_norm(
        x,
        p["running_mean"].detach().clone(),
        p["running_var"].detach().clone(),
        p["gamma"],
        p["beta"],
        training=c.get("training", False),
        momentum=c["momentum"],
        eps=c["eps"],
    ),
}
"""torch versions of the layers graph networks add (``to_dict`` config, torch params)."""


def torch_merge(kind: str, xs: list[Any], cfg: dict[str, Any]) -> Any:
    """Add, Mul, Concat in torch."""
    if kind == "concat":
        return torch.cat(xs, cfg["axis"])
    out = xs[0]
    for x in xs[1:]:
        out = out + x if kind == "add" else out * x
    return out


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


# --------------------------------------------------------------------------------------
# graph networks: new layers one by one, and whole graphs
# --------------------------------------------------------------------------------------


def layer_case(layer: Any, x: np.ndarray, rng: np.random.Generator, note: str = "") -> Case:
    """Torch's output and gradients (input, every parameter) of one engine layer.

    ``caseNNN/config`` is ``{"layer": layer.to_dict(), "note"}``; arrays ``x``,
    ``param/<name>`` (float64 state: parameters and buffers), ``out``, ``grad_out``,
    ``grad_x``, ``grad/<name>`` (parameters only)."""
    cfg = layer.to_dict()
    state = {k: np.asarray(v, np.float64) for k, v in layer.state_arrays().items()}
    tparams = {k: torch.tensor(v, requires_grad=k in layer.params) for k, v in state.items()}
    tx = torch.tensor(x, requires_grad=True)
    out = torch_layer(tx, cfg, tparams)
    grad_out = rng.standard_normal(tuple(out.shape))
    out.backward(torch.tensor(grad_out))
    arrays: dict[str, np.ndarray] = {"x": x, "out": out.detach().numpy().copy()}
    arrays.update({f"param/{k}": v for k, v in state.items()})
    arrays["grad_out"] = grad_out
    arrays["grad_x"] = tx.grad.numpy().copy()
    arrays.update(
        {f"grad/{k}": t.grad.numpy().copy() for k, t in tparams.items() if t.requires_grad}
    )
    return {"config": {"layer": cfg, "note": note}, "arrays": arrays}


# Long because it is a table: one line per layer configuration worth pinning down.
def graph_layer_cases(rng: np.random.Generator) -> list[Case]:
    """Grouped/depthwise conv, asymmetric pool padding, count_include_pad, Pad2D in every
    mode, global and adaptive average pooling (non-divisible sizes), PReLU, Clip, Softmax,
    Reshape."""
    from cnn_explorer.engine import (
        AdaptiveAvgPool2D,
        AvgPool2D,
        Clip,
        Conv2D,
        GlobalAvgPool2D,
        MaxPool2D,
        Pad2D,
        PReLU,
        Reshape,
        Softmax,
    )

    def seeded(layer: Any) -> Any:
        for v in layer.params.values():
            v[...] = rng.standard_normal(v.shape)
        return layer.astype(np.float64)

    f64 = np.float64
    specs: list[tuple[Any, tuple[int, ...], str]] = [
        (Conv2D(4, 4, 3, padding=1, groups=4, dtype=f64), (2, 4, 6, 5), "depthwise"),
        (Conv2D(3, 6, 3, stride=2, padding=(0, 1, 1, 0), groups=3, dtype=f64), (2, 3, 7, 6),
         "depthwise x2 asymmetric"),
        (Conv2D(4, 6, (3, 2), dilation=2, padding=2, groups=2, padding_mode="reflect",
                dtype=f64), (2, 4, 7, 7), "groups 2 reflect dilated"),
        (Conv2D(6, 3, 1, groups=3, bias=False, dtype=f64), (1, 6, 4, 4), "grouped 1x1 no bias"),
        (Conv2D(2, 2, 3, padding=1, groups=2, flip_kernel=True, padding_mode="circular",
                dtype=f64), (2, 2, 5, 5), "depthwise flipped circular"),
        (Conv2D(3, 4, 3, padding=(1, 0, 2, 1), dtype=f64), (2, 3, 6, 6), "asymmetric conv"),
        (MaxPool2D(3, 2, (0, 1, 1, 1)), (2, 3, 7, 6), "max asymmetric"),
        (MaxPool2D(2, 2, (1, 0, 0, 1)), (1, 2, 5, 5), "max asymmetric 2x2"),
        (AvgPool2D(3, 2, (1, 0, 1, 1)), (2, 2, 7, 6), "avg asymmetric counting pad"),
        (AvgPool2D(3, 2, (1, 0, 1, 1), count_include_pad=False), (2, 2, 7, 6),
         "avg asymmetric not counting pad"),
        (AvgPool2D(3, 2, 1, ceil_mode=True, count_include_pad=False), (1, 3, 6, 7),
         "avg ceil not counting pad"),
        (Pad2D((1, 2, 0, 3)), (2, 2, 4, 5), "pad zeros"),
        (Pad2D((1, 0, 2, 1), value=-1.5), (1, 2, 4, 5), "pad value"),
        (Pad2D((2, 1, 3, 0), "reflect"), (2, 2, 4, 5), "pad reflect"),
        (Pad2D((1, 2, 2, 1), "replicate"), (2, 2, 3, 4), "pad replicate"),
        (Pad2D((3, 1, 0, 4), "circular"), (1, 2, 4, 5), "pad circular"),
        (GlobalAvgPool2D(), (2, 3, 5, 4), "global average"),
        (AdaptiveAvgPool2D((3, 2)), (2, 2, 7, 5), "adaptive 7x5 to 3x2"),
        (AdaptiveAvgPool2D((4, 5)), (1, 2, 6, 7), "adaptive 6x7 to 4x5"),
        (AdaptiveAvgPool2D((5, 3)), (1, 1, 5, 3), "adaptive identity"),
        (AdaptiveAvgPool2D((2, 2)), (2, 2, 6, 4), "adaptive divisible"),
        (seeded(PReLU(1)), (2, 3, 4, 4), "prelu shared"),
        (seeded(PReLU(3)), (2, 3, 4, 4), "prelu per channel"),
        (seeded(PReLU(5)), (4, 5), "prelu vectors"),
        (Clip(0.0, 6.0), (2, 3, 4, 4), "relu6"),
        (Clip(-0.5, None), (2, 3, 4, 4), "clip min only"),
        (Clip(None, 0.25), (3, 7), "clip max only"),
        (Softmax(1), (3, 6), "softmax classes"),
        (Softmax(1), (2, 4, 3, 3), "softmax channels"),
        (Softmax(-1), (2, 2, 3, 4), "softmax last axis"),
        (Reshape((-1,)), (2, 3, 2, 2), "reshape flat"),
        (Reshape((4, 3, -1)), (2, 3, 2, 4), "reshape 3-D"),
    ]  # fmt: skip
    cases = []
    for layer, shape, note in specs:
        if layer.params and note.startswith(("depthwise", "groups", "grouped", "asymmetric conv")):
            seeded(layer)
        scale = 4.0 if note.startswith(("relu6", "clip")) else 1.0
        cases.append(layer_case(layer, rng.standard_normal(shape) * scale, rng, note))
    return cases


def graph_case(graph: Any, x: np.ndarray, y: np.ndarray, note: str) -> Case:
    """Loss, logits and autograd gradients of a graph (training mode: batch norm uses the
    batch statistics, as ``Graph.loss_and_grads`` does)."""
    config = graph.to_dict()
    state = {k: np.asarray(v, np.float64) for k, v in graph.state_arrays().items()}
    trainable = {k for k, _ in graph.parameters()}
    tparams = {k: torch.tensor(v, requires_grad=k in trainable) for k, v in state.items()}
    tx = torch.tensor(x, requires_grad=True)
    tensors: dict[str, Any] = {"input": tx}
    for node in config["nodes"]:
        cfg = dict(node["layer"])
        prefix = node["name"] + "."
        own = {k[len(prefix) :]: v for k, v in tparams.items() if k.startswith(prefix)}
        xs = [tensors[i] for i in node["inputs"]]
        if cfg["kind"] in ("add", "mul", "concat"):
            tensors[node["name"]] = torch_merge(cfg["kind"], xs, cfg)
        else:
            cfg["training"] = True
            tensors[node["name"]] = torch_layer(xs[0], cfg, own)
    logits = tensors[config["output"]]
    loss = F.cross_entropy(logits, torch.tensor(y, dtype=torch.int64))
    loss.backward()
    arrays: dict[str, np.ndarray] = {"x": x, "y": y}
    arrays.update({f"param/{k}": v for k, v in state.items()})
    arrays["loss"] = np.array(loss.item())
    arrays["logits"] = logits.detach().numpy().copy()
    arrays.update(
        {f"grad/{k}": t.grad.numpy().copy() for k, t in tparams.items() if t.requires_grad}
    )
    arrays["grad_input"] = tx.grad.numpy().copy()
    return {"config": {"graph": config, "note": note}, "arrays": arrays}


def resnet_graph(rng: np.random.Generator) -> Any:
    """A small ResNet: stem conv–BN–ReLU–maxpool, a basic block with an identity skip, a
    strided block with a 1×1 projection skip, global average pooling and a linear head."""
    from cnn_explorer.engine import (
        Activation,
        Add,
        BatchNorm2D,
        Conv2D,
        Dense,
        Flatten,
        GlobalAvgPool2D,
        Graph,
        MaxPool2D,
        Node,
    )  # fmt: skip

    def conv(cin: int, cout: int, k: int, **kw: Any) -> Any:
        return Conv2D(cin, cout, k, bias=False, rng=rng, dtype=np.float64, **kw)

    def bn(c: int) -> Any:
        layer = BatchNorm2D(c, dtype=np.float64)
        layer.params["gamma"][...] = rng.uniform(0.5, 1.5, c)
        layer.params["beta"][...] = rng.standard_normal(c) * 0.1
        return layer

    return Graph(
        [
            Node("conv1", conv(3, 4, 3, stride=2, padding=1), ("input",)),
            Node("bn1", bn(4), ("conv1",)),
            Node("relu1", Activation("relu"), ("bn1",)),
            Node("pool", MaxPool2D(3, 2, 1), ("relu1",)),
            Node("b1.conv1", conv(4, 4, 3, padding=1), ("pool",)),
            Node("b1.bn1", bn(4), ("b1.conv1",)),
            Node("b1.relu", Activation("relu"), ("b1.bn1",)),
            Node("b1.conv2", conv(4, 4, 3, padding=1), ("b1.relu",)),
            Node("b1.bn2", bn(4), ("b1.conv2",)),
            Node("b1.add", Add(), ("b1.bn2", "pool")),
            Node("b1.out", Activation("relu"), ("b1.add",)),
            Node("b2.conv1", conv(4, 6, 3, stride=2, padding=1), ("b1.out",)),
            Node("b2.bn1", bn(6), ("b2.conv1",)),
            Node("b2.relu", Activation("relu"), ("b2.bn1",)),
            Node("b2.conv2", conv(6, 6, 3, padding=1), ("b2.relu",)),
            Node("b2.bn2", bn(6), ("b2.conv2",)),
            Node("b2.down", conv(4, 6, 1, stride=2), ("b1.out",)),
            Node("b2.down_bn", bn(6), ("b2.down",)),
            Node("b2.add", Add(), ("b2.bn2", "b2.down_bn")),
            Node("b2.out", Activation("relu"), ("b2.add",)),
            Node("gap", GlobalAvgPool2D(), ("b2.out",)),
            Node("flat", Flatten(), ("gap",)),
            Node("fc", Dense(6, 3, rng=rng, dtype=np.float64), ("flat",)),
        ]
    )


def squeezenet_graph(rng: np.random.Generator) -> Any:
    """A small SqueezeNet: conv–ReLU–ceil-mode maxpool, two fire modules (squeeze 1×1,
    expand 1×1 and 3×3 concatenated), dropout-free 1×1 classifier conv, ReLU, adaptive
    average pooling to 1×1 and a reshape to the logits; plus a depthwise conv, PReLU and
    ReLU6 in the second fire module to exercise the new ops together."""
    from cnn_explorer.engine import (
        Activation,
        AdaptiveAvgPool2D,
        Clip,
        Concat,
        Conv2D,
        Graph,
        MaxPool2D,
        Node,
        PReLU,
        Reshape,
    )  # fmt: skip

    def conv(cin: int, cout: int, k: int, **kw: Any) -> Any:
        layer = Conv2D(cin, cout, k, rng=rng, dtype=np.float64, **kw)
        layer.params["bias"][...] = rng.standard_normal(cout) * 0.1
        return layer

    prelu = PReLU(3, dtype=np.float64)
    prelu.params["weight"][...] = rng.uniform(-0.5, 0.5, 3)
    return Graph(
        [
            Node("conv1", conv(3, 6, 3, stride=2), ("input",)),
            Node("relu1", Activation("relu"), ("conv1",)),
            Node("pool1", MaxPool2D(3, 2, ceil_mode=True), ("relu1",)),
            Node("f1.squeeze", conv(6, 3, 1), ("pool1",)),
            Node("f1.squeeze_act", Activation("relu"), ("f1.squeeze",)),
            Node("f1.expand1", conv(3, 4, 1), ("f1.squeeze_act",)),
            Node("f1.expand1_act", Activation("relu"), ("f1.expand1",)),
            Node("f1.expand3", conv(3, 4, 3, padding=1), ("f1.squeeze_act",)),
            Node("f1.expand3_act", Activation("relu"), ("f1.expand3",)),
            Node("f1.cat", Concat(), ("f1.expand1_act", "f1.expand3_act")),
            Node("pool2", MaxPool2D(3, 2, ceil_mode=True), ("f1.cat",)),
            Node("f2.squeeze", conv(8, 3, 1), ("pool2",)),
            Node("f2.squeeze_act", prelu, ("f2.squeeze",)),
            Node("f2.expand1", conv(3, 4, 1), ("f2.squeeze_act",)),
            Node("f2.expand1_act", Clip(0.0, 6.0), ("f2.expand1",)),
            Node("f2.dw", conv(3, 3, 3, padding=1, groups=3), ("f2.squeeze_act",)),
            Node("f2.pw", conv(3, 4, 1), ("f2.dw",)),
            Node("f2.expand3_act", Clip(0.0, 6.0), ("f2.pw",)),
            Node("f2.cat", Concat(), ("f2.expand1_act", "f2.expand3_act")),
            Node("classifier", conv(8, 3, 1), ("f2.cat",)),
            Node("classifier_act", Activation("relu"), ("classifier",)),
            Node("avg", AdaptiveAvgPool2D(1), ("classifier_act",)),
            Node("logits", Reshape((-1,)), ("avg",)),
        ]
    )


def graph_cases(rng: np.random.Generator) -> list[Case]:
    """A ResNet-style graph (fan-out, Add, batch norm, projection skip) and a
    SqueezeNet-style one (Concat, ceil-mode pooling, depthwise conv, PReLU, ReLU6)."""
    resnet = resnet_graph(rng)
    x = rng.standard_normal((4, 3, 16, 16))
    cases = [graph_case(resnet, x, rng.integers(0, 3, 4), "resnet-style")]
    squeeze = squeezenet_graph(rng)
    x = rng.standard_normal((3, 3, 23, 23))
    cases.append(graph_case(squeeze, x, rng.integers(0, 3, 3), "squeezenet-style"))
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
    unknown = set(names) - {*WRITERS, "network", "graph"}
    if unknown:
        raise SystemExit(
            f"unknown golden files {sorted(unknown)}; choose from conv, pool, elementwise, "
            "network, graph"
        )
    if not names or set(names) & set(WRITERS):
        rng = np.random.default_rng(SEED)
        for filename, cases in WRITERS.values():
            save(cases(rng), HERE / filename)
    if not names or "network" in names:
        save(network_cases(np.random.default_rng(SEED + 1)), HERE / "golden_network.npz")
    if not names or "graph" in names:
        # the graph layers and graphs: own seeds, so the older files never change
        save(graph_layer_cases(np.random.default_rng(SEED + 2)), HERE / "golden_graph_ops.npz")
        save(graph_cases(np.random.default_rng(SEED + 3)), HERE / "golden_graph.npz")


if __name__ == "__main__":
    main(sys.argv[1:])
