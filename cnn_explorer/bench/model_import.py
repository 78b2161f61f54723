"""``python -m cnn_explorer.bench.model_import``: bring a ResNet-18-size model in and out.

A torchvision-shaped ResNet-18 (11.7 M parameters, random weights, batch-norm statistics
randomised) is built in torch and written the two ways the README tells a PyTorch user
to: ``torch.onnx.export(..., dynamo=False)`` and ``safetensors.torch.save_file(
model.state_dict(), ...)``. Then, median of ``--repeats`` runs each:

- import time of each file (ONNX with and without the self-check against
  ``onnx.reference``; the state_dict matched to the built-in ResNet-18 template);
- export time back to ONNX and to PyTorch code + safetensors, and the largest difference
  of the re-imported ONNX from torch.

Forward-pass speed beside torch and onnxruntime, each in a process of its own, is
``python -m cnn_explorer.bench.models``. Needs torch (the test extra). Prints a table; no
targets.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _median_time(fn: Callable[[], Any], repeats: int, warm: bool = False) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls (after one untimed call when ``warm``)."""
    times, result = [], fn() if warm else None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def _resnet18() -> Any:
    import torch
    from torch import nn

    from cnn_explorer.bench.torch_resnet import ResNet

    torch.manual_seed(0)
    model = ResNet((2, 2, 2, 2), (64, 128, 256, 512), 1000)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cnn_explorer.bench.model_import")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    import torch
    from safetensors.torch import save_file

    from cnn_explorer.bench.timing import warm_heap
    from cnn_explorer.interchange.load import load_model
    from cnn_explorer.interchange.onnx_export import save_onnx
    from cnn_explorer.interchange.torch_export import save_torch

    warm_heap()
    torch.set_num_threads(1)  # only exports and the reference output here: nothing timed
    model = _resnet18()
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, st_path = Path(tmp) / "resnet18.onnx", Path(tmp) / "resnet18.safetensors"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (torch.from_numpy(x),), str(onnx_path), dynamo=False,
                input_names=["input"], dynamic_axes={"input": {0: "N"}},
            )  # fmt: skip
        save_file(model.state_dict(), str(st_path))
        t, _ = _median_time(lambda: load_model(onnx_path, self_check=False), args.repeats)
        rows.append(("import ONNX (no self-check)", t))
        t, imported = _median_time(lambda: load_model(onnx_path), 1)
        rows.append((f"import ONNX with self-check ({imported.report.self_check.message})", t))
        t, from_st = _median_time(lambda: load_model(st_path), args.repeats)
        rows.append(("import safetensors state_dict (ResNet-18 template)", t))
        graph = imported.graph
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        out = Path(tmp) / "back.onnx"
        pre = imported.preprocessing
        t, _ = _median_time(lambda: save_onnx(out, graph, pre.input_shape), args.repeats)
        rows.append(("export ONNX (opset 17)", t))
        py = Path(tmp) / "back.py"
        t, _ = _median_time(lambda: save_torch(py, graph, pre.input_shape), args.repeats)
        rows.append(("export PyTorch code + safetensors", t))
        back = load_model(out, self_check=False)
        diff_onnx = float(np.abs(back.graph(x) - want).max())
        diff_st = float(np.abs(from_st.graph(x) - want).max())
    params = graph.param_count()
    print(f"ResNet-18, {params / 1e6:.1f} M parameters, {len(graph.nodes)} engine layers")
    for name, seconds in rows:
        print(f"  {name:<72} {seconds * 1000:8.0f} ms")
    print(f"  re-imported export vs torch: max |diff| {diff_onnx:.1e}")
    print(f"  safetensors import vs torch:  max |diff| {diff_st:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
