"""Live: models PyTorch exports today (TorchScript exporter, several opsets) import and
give torch's numbers. Marked ``torch``; skipped without it (the committed fixtures cover
CI)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.interchange.load import load_model

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")
nn = torch.nn


class Flatten(nn.Module):
    """``x.view(x.size(0), -1)``: exported as Shape, Gather, Unsqueeze, Concat, Reshape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.size(0), -1)


class SqueezeExcite(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, 2, 1), nn.ReLU(), nn.Conv2d(2, c, 1), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class MeanHead(nn.Module):
    """``x.mean((2, 3))``: ReduceMean without keepdims."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3))


class Residual(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


def mobilenet_block() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 8, 3, 1, 1, groups=8), nn.BatchNorm2d(8), nn.ReLU6(),
        SqueezeExcite(8), nn.Conv2d(8, 16, 1), MeanHead(), nn.Linear(16, 4), nn.Softmax(1),
    )  # fmt: skip


def pads_and_pools() -> nn.Module:
    return nn.Sequential(
        nn.ReflectionPad2d((1, 2, 0, 1)), nn.Conv2d(3, 4, 3, dilation=(1, 2)), nn.ELU(),
        nn.ReplicationPad2d(1), nn.MaxPool2d(2, ceil_mode=True),
        nn.ConstantPad2d((0, 1, 1, 0), 0.5),
        nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False), nn.PReLU(),
        nn.Conv2d(4, 4, (1, 3), stride=(2, 1)), nn.LeakyReLU(0.2), nn.Hardtanh(), Flatten(),
        nn.Dropout(), nn.Linear(4 * 2 * 3, 5),
    )  # fmt: skip


def residual_concat() -> nn.Module:
    body = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.Tanh())
    return nn.Sequential(
        Residual(body), nn.Conv2d(3, 6, 3, padding="same"), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(6, 3),
    )  # fmt: skip


MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int]]] = {
    "mobilenet_block": (mobilenet_block, (3, 16, 16)),
    "pads_and_pools": (pads_and_pools, (3, 13, 11)),
    "residual_concat": (residual_concat, (3, 10, 10)),
}


def export(model: nn.Module, shape: tuple[int, ...], path: Path, opset: int, dynamic: bool) -> None:
    buf = io.BytesIO()
    kwargs = {"dynamic_axes": {"image": {0: "N"}}} if dynamic else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated
        torch.onnx.export(
            model, (torch.zeros(1, *shape),), buf, dynamo=False, opset_version=opset,
            input_names=["image"], **kwargs,
        )  # fmt: skip
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("dynamic", [True, False], ids=["dynamic_batch", "batch_1"])
@pytest.mark.parametrize("opset", [11, 13, 17])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_torch_export_imports_with_torch_numbers(
    name: str, opset: int, dynamic: bool, tmp_path: Path
) -> None:
    make, shape = MODELS[name]
    torch.manual_seed(opset)
    model = make().eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / f"{name}.onnx"
    export(model, shape, path, opset, dynamic)
    imported = load_model(path)
    check = imported.report.self_check
    assert check is not None and check.passed, check
    x = torch.rand(3, *shape)
    with torch.no_grad():
        want = model(x).numpy()
    got = imported.graph(x.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


SPELLED_OUT = {
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),  # nine nodes before opset 20
    "softplus": lambda: nn.Softplus(beta=2.0),  # Mul, Softplus, Div
}


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("kind", sorted(SPELLED_OUT))
def test_torch_spelled_out_activation_imports_as_one(kind: str, opset: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), SPELLED_OUT[kind]()).eval()
    path = tmp_path / "act.onnx"
    export(model, (1, 6, 6), path, opset, dynamic=True)
    imported = load_model(path)
    kinds = [n.layer.to_dict().get("activation", n.layer.kind) for n in imported.graph.nodes]
    assert kinds == ["conv", kind]
    x = torch.rand(2, 1, 6, 6)
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(imported.graph(x.numpy()), want, rtol=1e-4, atol=1e-5)
