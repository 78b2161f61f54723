"""State_dict import: built-in templates (torch-made fixtures and synthetic key sets), our
own PyTorch export coming back, and bad files refused with a clear message."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from export_cases import (
    EVERY_SHAPE,
    OPS_SHAPE,
    RESIDUAL_SHAPE,
    every_layer_network,
    graph_ops_graph,
    inputs,
    residual_graph,
)
from safetensors.numpy import save_file

from cnn_explorer.engine.graph import Graph
from cnn_explorer.interchange.model import ModelFileError, Preprocessing
from cnn_explorer.interchange.safetensors_import import (
    MAX_HEADER_BYTES,
    import_safetensors,
    import_state_dict,
    import_state_dict_file,
)
from cnn_explorer.interchange.state_dict_templates import Template, natural_sorted, templates
from cnn_explorer.interchange.torch_export import save_torch

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = FIXTURES / "state_dict_golden.npz"
TOL = 1e-5


def golden(stem: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(GOLDEN, allow_pickle=False) as data:
        return data[f"{stem}/input"], data[f"{stem}/output"]


# --------------------------------------------------------------------------------------
# templates on torch-made fixtures
# --------------------------------------------------------------------------------------


def test_lenet5_fixture_matches_torch() -> None:
    model = import_safetensors(FIXTURES / "lenet5.safetensors")
    x, expected = golden("lenet5")
    np.testing.assert_allclose(model.graph(x), expected, atol=TOL, rtol=TOL)
    assert model.preprocessing.input_shape == (1, 32, 32)
    assert model.preprocessing.colour == "grey"
    assert any("LeNet-5" in t for t in model.report.transformations)


def test_resnet18_fixture_matches_torch_and_reports_every_key() -> None:
    model = import_safetensors(FIXTURES / "resnet18_tiny.safetensors", input_shape=(3, 32, 32))
    x, expected = golden("resnet18_tiny")
    np.testing.assert_allclose(model.graph(x), expected, atol=TOL, rtol=TOL)
    assert any("ResNet-18" in t for t in model.report.transformations)
    entries = {e.node: e for e in model.report.entries}
    assert entries["layer2.0.downsample.1.weight"].status == "mapped"
    assert entries["layer2.0.downsample.1.weight"].detail.endswith("layer2.0.downsample.1.gamma")
    assert entries["bn1.num_batches_tracked"].status == "transformed"
    assert [e.node for e in model.report.entries] == natural_sorted(entries)
    assert model.preprocessing.mean == (0.485, 0.456, 0.406)


@pytest.mark.torch
def test_resnet18_pt_state_dict_loads_with_torch() -> None:
    pytest.importorskip("torch")
    model = import_state_dict_file(FIXTURES / "resnet18_tiny.pt", input_shape=(3, 32, 32))
    x, expected = golden("resnet18_tiny")
    np.testing.assert_allclose(model.graph(x), expected, atol=TOL, rtol=TOL)


def test_natural_order() -> None:
    keys = ["features.12.weight", "features.5.weight", "features.0.bias", "classifier.6.bias"]
    assert natural_sorted(keys) == [
        "classifier.6.bias",
        "features.0.bias",
        "features.5.weight",
        "features.12.weight",
    ]


# --------------------------------------------------------------------------------------
# templates on synthetic key sets (VGG and AlexNet are too big for fixture files)
# --------------------------------------------------------------------------------------


def synthetic_state_dict(
    template: Template, width: int = 4, hidden: int = 8, classes: int = 3, side: int = 224
) -> dict[str, np.ndarray]:
    """Random weights with the template's keys: every conv ``width`` channels, hidden
    linear layers ``hidden`` wide (the shapes a small torchvision model would have)."""
    rng = np.random.default_rng(0)
    shapes: dict[str, tuple[int, ...]] = {Graph.INPUT: (3, side, side)}
    last = [op.name for op in template.ops if op.kind == "linear"][-1]
    sd: dict[str, np.ndarray] = {}

    def put(key: str, shape: tuple[int, ...], positive: bool = False) -> None:
        a = rng.uniform(0.5, 2.0, shape) if positive else rng.standard_normal(shape) * 0.2
        sd[key] = a.astype(np.float32)

    for op in template.ops:
        c, *hw = shapes[op.inputs[0]]
        out: tuple[int, ...] = (c, *hw)
        if op.kind in ("conv", "max_pool"):
            k, s, p = op.args["kernel"], op.args["stride"], op.args["padding"]
            h, w = ((n + 2 * p - k) // s + 1 for n in hw)
            if op.kind == "conv":
                put(f"{op.name}.weight", (width, c, k, k))
                if op.args["bias"]:
                    put(f"{op.name}.bias", (width,))
                c = width
            out = (c, h, w)
        elif op.kind == "bn":
            for key in ("weight", "bias", "running_mean"):
                put(f"{op.name}.{key}", (c,))
            put(f"{op.name}.running_var", (c,), positive=True)
            sd[f"{op.name}.num_batches_tracked"] = np.array(3, np.int64)
        elif op.kind == "adaptive_avg":
            out = (c, *op.args["size"])
        elif op.kind == "flatten":
            out = (int(np.prod(out)),)
        elif op.kind == "linear":
            n_out = classes if op.name == last else hidden
            put(f"{op.name}.weight", (n_out, c))
            put(f"{op.name}.bias", (n_out,))
            out = (n_out,)
        shapes[op.name] = out
    return sd


@pytest.mark.parametrize("template", templates(), ids=lambda t: t.name)
def test_every_template_is_recognised_and_computes(template: Template) -> None:
    sd = synthetic_state_dict(template, side=32 if template.name == "LeNet-5" else 224)
    model = import_state_dict(sd, {}, Path("weights.safetensors"))
    assert any(template.name in t for t in model.report.transformations)
    shape = model.preprocessing.input_shape
    x = inputs(shape, 1)
    out = model.graph(x)
    assert out.shape == (1, 3) and np.isfinite(out).all()


def test_dataparallel_prefix_is_removed() -> None:
    sd = synthetic_state_dict(templates()[0], side=32)
    model = import_state_dict({f"module.{k}": v for k, v in sd.items()}, {}, Path("w.pt"))
    assert any("module." in t for t in model.report.transformations)


# --------------------------------------------------------------------------------------
# our own export comes back
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (every_layer_network, EVERY_SHAPE),
        (residual_graph, RESIDUAL_SHAPE),
        (graph_ops_graph, OPS_SHAPE),
    ],
)
def test_own_pytorch_export_round_trips(make: Any, shape: tuple[int, ...], tmp_path: Path) -> None:
    model = make()
    x = inputs(shape)
    expected = model(x)
    prep = Preprocessing(shape, "rgb" if shape[0] == 3 else "grey", mean=(0.5,), std=(0.25,))
    names = [f"class {i}" for i in range(expected.shape[1])]
    _, weights = save_torch(tmp_path / "m.py", model, shape, preprocessing=prep, class_names=names)
    back = import_safetensors(weights)
    np.testing.assert_allclose(back.graph(x), expected, atol=TOL, rtol=TOL)
    assert back.preprocessing.input_shape == shape
    assert back.preprocessing.mean == (0.5,)
    assert back.preprocessing.class_names == tuple(names)
    assert any("CNN Explorer export" in t for t in back.report.transformations)


# --------------------------------------------------------------------------------------
# bad files
# --------------------------------------------------------------------------------------


def test_unknown_keys_list_what_was_expected() -> None:
    sd = {"encoder.weight": np.zeros((4, 4), np.float32)}
    with pytest.raises(ModelFileError, match="match no built-in architecture") as info:
        import_state_dict(sd, {}, Path("x.safetensors"))
    assert "Closest is" in str(info.value) and "missing:" in str(info.value)


def test_shapes_that_disagree_are_refused() -> None:
    sd = synthetic_state_dict(templates()[0], side=32)
    sd["fc1.weight"] = np.zeros((120, 300), np.float32)
    with pytest.raises(ModelFileError, match="shapes disagree"):
        import_state_dict(sd, {}, Path("x.safetensors"))
    sd = synthetic_state_dict(templates()[0], side=32)
    sd["conv1.weight"] = np.zeros((6, 1, 3, 3), np.float32)
    with pytest.raises(ModelFileError, match="kernel there is 5×5"):
        import_state_dict(sd, {}, Path("x.safetensors"))


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    data = (FIXTURES / "lenet5.safetensors").read_bytes()
    for cut in (4, 200, len(data) - 10):
        bad = tmp_path / "cut.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="truncated"):
            import_safetensors(bad)


def raw_safetensors(path: Path, header: Any, data: bytes = b"", size: int | None = None) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if size is None else size) + text + data)
    return path


def test_huge_or_damaged_headers_are_refused(tmp_path: Path) -> None:
    huge = raw_safetensors(tmp_path / "h.safetensors", {}, size=MAX_HEADER_BYTES + 1)
    with pytest.raises(ModelFileError, match="header"):
        import_safetensors(huge)
    claim = {"w": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 16]}}
    with pytest.raises(ModelFileError, match="truncated or damaged"):
        import_safetensors(raw_safetensors(tmp_path / "c.safetensors", claim, bytes(16)))
    bf16 = {"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}
    with pytest.raises(ModelFileError, match="bfloat16"):
        import_safetensors(raw_safetensors(tmp_path / "b.safetensors", bf16, bytes(4)))
    (tmp_path / "j.safetensors").write_bytes(struct.pack("<Q", 5) + b"{nope")
    with pytest.raises(ModelFileError, match="not JSON"):
        import_safetensors(tmp_path / "j.safetensors")


def test_integer_weights_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "i.safetensors"
    save_file({"conv1.weight": np.zeros((6, 1, 5, 5), np.int32)}, str(path))
    with pytest.raises(ModelFileError, match="not weights"):
        import_safetensors(path)


class _Trap:
    """Unpickling this would create ``marker``: the test proves it never happens."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (self.marker,))


@pytest.mark.torch
def test_whole_pickled_module_is_refused_and_never_run(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    whole = tmp_path / "whole.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), whole)
    with pytest.raises(ModelFileError, match="whole pickled model") as info:
        import_state_dict_file(whole)
    text = str(info.value)
    assert 'torch.load("whole.pt", weights_only=False)' in text
    assert "whole.safetensors" in text and "whole.onnx" in text
    marker = tmp_path / "ran"
    trap = tmp_path / "trap.pt"
    torch.save({"w": _Trap(marker)}, trap)
    with pytest.raises(ModelFileError, match="whole pickled model"):
        import_state_dict_file(trap)
    assert not marker.exists()


def torch_vgg11_bn_and_alexnet() -> list[tuple[str, Any]]:
    """Tiny torchvision-layout VGG-11 with batch norm and AlexNet (same module names and
    order as torchvision's, 4-channel convs, 8-wide hidden layers, 3 classes)."""
    from torch import nn

    def vgg_features() -> nn.Sequential:
        layers: list[nn.Module] = []
        cin = 3
        for v in [4, "M", 4, "M", 4, 4, "M", 4, 4, "M", 4, 4, "M"]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.BatchNorm2d(int(v)), nn.ReLU()]
                cin = int(v)
        return nn.Sequential(*layers)

    def head(features: int, dropout_first: bool) -> nn.Sequential:
        if dropout_first:
            return nn.Sequential(
                nn.Dropout(), nn.Linear(features, 8), nn.ReLU(), nn.Dropout(),
                nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3),
            )  # fmt: skip
        return nn.Sequential(
            nn.Linear(features, 8), nn.ReLU(), nn.Dropout(),
            nn.Linear(8, 8), nn.ReLU(), nn.Dropout(), nn.Linear(8, 3),
        )  # fmt: skip

    class Net(nn.Module):
        def __init__(self, features: nn.Module, pool: int, dropout_first: bool) -> None:
            super().__init__()
            self.features = features
            self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
            self.classifier = head(4 * pool * pool, dropout_first)

        def forward(self, x: Any) -> Any:
            return self.classifier(self.avgpool(self.features(x)).flatten(1))

    alex = nn.Sequential(
        nn.Conv2d(3, 4, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(4, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
    )  # fmt: skip
    return [
        ("VGG-11 with batch norm", Net(vgg_features(), 7, dropout_first=False)),
        ("AlexNet", Net(alex, 6, dropout_first=True)),
    ]


@pytest.mark.torch
@pytest.mark.parametrize("index", [0, 1], ids=["vgg11_bn", "alexnet"])
def test_vgg_and_alexnet_templates_compute_like_torch(index: int, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file as save_torch_file

    torch.manual_seed(0)
    name, net = torch_vgg11_bn_and_alexnet()[index]
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    net.eval()
    path = tmp_path / "w.safetensors"
    save_torch_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    model = import_safetensors(path, input_shape=(3, 64, 64))  # adaptive pool enlarges
    assert any(name in t for t in model.report.transformations)
    x = inputs((3, 64, 64), 2)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.graph(x), expected, atol=TOL, rtol=TOL)


def test_input_size_whose_maps_would_not_fit_is_refused() -> None:
    resnet18 = next(t for t in templates() if t.name == "ResNet-18")
    sd = synthetic_state_dict(resnet18)  # global pooling: any input size computes
    with pytest.raises(ModelFileError, match="smaller input size"):
        import_state_dict(sd, {}, Path("x.safetensors"), input_shape=(3, 8000, 8000))
