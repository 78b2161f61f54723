"""Optimizers with ``torch.optim`` semantics, updating parameters in place.

An optimizer holds only hyper-parameters and per-parameter state (momentum buffers, Adam
moments) keyed by the parameter's stable name (``"3.weight"``). :meth:`Optimizer.step`
takes the network each time, so freezing a layer or changing ``lr`` mid-run just works:
frozen and disabled layers are skipped, and ``opt.lr = 0.01`` applies from the next step.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np


class _HasTrainable(Protocol):
    def trainable_parameters(self) -> list[tuple[str, np.ndarray, np.ndarray]]: ...


class Optimizer:
    """Base class: :meth:`step` calls :meth:`update` for each trainable parameter."""

    def __init__(self, lr: float) -> None:
        if not lr >= 0.0:
            raise ValueError(f"learning rate must be ≥ 0, got {lr}")
        self.lr = float(lr)
        self.state: dict[str, dict[str, Any]] = {}

    def step(self, network: _HasTrainable) -> None:
        """Apply one update to every parameter of enabled, non-frozen layers."""
        for key, param, grad in network.trainable_parameters():
            self.update(key, param, grad)

    def step_params(self, items: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> None:
        """Same as :meth:`step` for explicit ``(key, param, grad)`` triples."""
        for key, param, grad in items:
            self.update(key, param, grad)

    def update(self, key: str, param: np.ndarray, grad: np.ndarray) -> None:
        """Update ``param`` in place from ``grad``; ``key`` names its state."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget all momentum/moment state (e.g. after the network changed shape)."""
        self.state.clear()

    def config(self) -> dict[str, Any]:
        """Hyper-parameters as a JSON-safe dict."""
        return {"lr": self.lr}


class SGD(Optimizer):
    """Stochastic gradient descent as ``torch.optim.SGD``.

    With ``g = grad + weight_decay·p``: the momentum buffer is ``b = g`` on the first step,
    then ``b = momentum·b + (1 − dampening)·g``; the step direction is ``b`` (or
    ``g + momentum·b`` with Nesterov); ``p ← p − lr·direction``.
    """

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        dampening: float = 0.0,
    ) -> None:
        super().__init__(lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening 0")
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.nesterov = bool(nesterov)
        self.dampening = float(dampening)

    def update(self, key: str, param: np.ndarray, grad: np.ndarray) -> None:
        g = grad
        if self.weight_decay:
            g = g + param.dtype.type(self.weight_decay) * param
        if self.momentum:
            buf = self.state.setdefault(key, {}).get("momentum_buffer")
            if buf is None:
                buf = np.array(g, dtype=param.dtype, copy=True)
                self.state[key]["momentum_buffer"] = buf
            else:
                buf *= param.dtype.type(self.momentum)
                buf += param.dtype.type(1.0 - self.dampening) * g
            g = g + param.dtype.type(self.momentum) * buf if self.nesterov else buf
        param -= param.dtype.type(self.lr) * g

    def config(self) -> dict[str, Any]:
        return {
            "kind": "sgd",
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "nesterov": self.nesterov,
            "dampening": self.dampening,
        }


class Adam(Optimizer):
    """Adam as ``torch.optim.Adam`` (L2 ``weight_decay`` added to the gradient, not AdamW).

    ``m = β₁m + (1−β₁)g``, ``v = β₂v + (1−β₂)g²``,
    ``p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + eps)``.
    """

    def __init__(
        self,
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)

    def update(self, key: str, param: np.ndarray, grad: np.ndarray) -> None:
        t = param.dtype.type
        b1, b2 = self.betas
        g = grad + t(self.weight_decay) * param if self.weight_decay else grad
        st = self.state.get(key)
        if st is None:
            st = {"step": 0, "exp_avg": np.zeros_like(param), "exp_avg_sq": np.zeros_like(param)}
            self.state[key] = st
        st["step"] += 1
        m, v = st["exp_avg"], st["exp_avg_sq"]
        m *= t(b1)
        m += t(1 - b1) * g
        v *= t(b2)
        v += t(1 - b2) * (g * g)
        step = st["step"]
        bias1 = 1 - b1**step
        bias2_sqrt = (1 - b2**step) ** 0.5
        denom = np.sqrt(v) / t(bias2_sqrt)
        denom += t(self.eps)
        param -= t(self.lr / bias1) * (m / denom)

    def config(self) -> dict[str, Any]:
        return {
            "kind": "adam",
            "lr": self.lr,
            "betas": list(self.betas),
            "eps": self.eps,
            "weight_decay": self.weight_decay,
        }


def optimizer_from_config(config: dict[str, Any]) -> Optimizer:
    """Rebuild an optimizer from :meth:`Optimizer.config` output."""
    cfg = dict(config)
    kind = cfg.pop("kind", "sgd")
    if kind == "sgd":
        return SGD(**cfg)
    if kind == "adam":
        cfg["betas"] = tuple(cfg.get("betas", (0.9, 0.999)))
        return Adam(**cfg)
    raise ValueError(f"unknown optimizer {kind!r}: use 'sgd' or 'adam'")


__all__ = ["SGD", "Adam", "Optimizer", "optimizer_from_config"]
