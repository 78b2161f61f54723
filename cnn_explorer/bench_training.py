"""``python -m cnn_explorer.bench_training``: is training fast and good enough?

1. **Throughput**: images per second of one training step (forward, backward, optimizer
   update) of the default network, for the NumPy engine and for the identical network in
   PyTorch on the CPU (``torch.set_num_threads(2)``), measured in the same run on the same
   batches. Target: engine ≥ 0.67 × torch.
2. **Digits**: scikit-learn's bundled handwritten digits (``load_digits``: 1,797 8×8 images,
   10 classes, shipped inside the package, no download) are written as a PNG image folder
   and ``cnn-explorer train`` is run on it *with its default settings* in a subprocess.
   Target: validation accuracy ≥ 0.95 in < 60 s wall time.

scikit-learn and torch are only needed here (``pip install scikit-learn torch==2.13.0``);
each part is skipped with a note when its package is missing. Not a runtime dependency.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

TARGET_RATIO = 0.67
TARGET_ACCURACY = 0.95
TARGET_SECONDS = 60.0


# -- throughput ---------------------------------------------------------------------------


def engine_throughput(
    x: np.ndarray, y: np.ndarray, num_classes: int, batch: int, steps: int, seed: int = 0
) -> tuple[float, Any]:
    """Images/s of ``steps`` Adam steps on the default network; also return the network."""
    from cnn_explorer.engine.network import default_classifier
    from cnn_explorer.engine.optim import Adam

    net = default_classifier(x.shape[1:], num_classes, seed)
    opt = Adam(1e-3)
    batches = [(x[i : i + batch], y[i : i + batch]) for i in range(0, batch * steps, batch)]
    net.loss_and_grads(*batches[0])  # warm-up (scratch buffers, BLAS threads)
    opt.step(net)
    start = time.perf_counter()
    for xb, yb in batches:
        with np.errstate(all="ignore"):
            net.loss_and_grads(xb, yb)
        opt.step(net)
    return batch * steps / (time.perf_counter() - start), net


def torch_twin(net: Any) -> Any:
    """The same architecture in torch with the engine's initial weights copied in."""
    import torch
    from torch import nn

    from cnn_explorer.engine.layers import Activation, Conv2D, Dense, Flatten, MaxPool2D

    mods: list[Any] = []
    for layer in net.layers:
        if isinstance(layer, Conv2D):
            o, c, kh, kw = layer.weight.shape
            t, b, left, right = layer.padding4
            if (t, left) != (b, right):
                mods.append(nn.ZeroPad2d((left, right, t, b)))
                t = left = 0
            m = nn.Conv2d(
                c,
                o,
                (kh, kw),
                stride=layer.stride,
                padding=(t, left),
                dilation=layer.dilation,
                bias=layer.bias is not None,
            )
            m.weight.data = torch.from_numpy(layer.weight.copy())
            if layer.bias is not None:
                m.bias.data = torch.from_numpy(layer.bias.copy())
        elif isinstance(layer, MaxPool2D):
            m = nn.MaxPool2d(layer.kernel_size, layer.stride)
        elif isinstance(layer, Activation):
            m = nn.ReLU()
        elif isinstance(layer, Flatten):
            m = nn.Flatten()
        elif isinstance(layer, Dense):
            m = nn.Linear(layer.params["weight"].shape[1], layer.params["weight"].shape[0])
            m.weight.data = torch.from_numpy(layer.params["weight"].copy())
            m.bias.data = torch.from_numpy(layer.params["bias"].copy())
        else:
            raise TypeError(f"no torch twin for {layer!r}")
        mods.append(m)
    return nn.Sequential(*mods)


def torch_throughput(model: Any, x: np.ndarray, y: np.ndarray, batch: int, steps: int) -> float:
    import torch

    torch.set_num_threads(2)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xs = torch.from_numpy(x)
    ys = torch.from_numpy(y)

    def step(i: int) -> None:
        opt.zero_grad()
        loss_fn(model(xs[i : i + batch]), ys[i : i + batch]).backward()
        opt.step()

    step(0)
    start = time.perf_counter()
    for i in range(0, batch * steps, batch):
        step(i)
    return batch * steps / (time.perf_counter() - start)


def bench_throughput(batch: int = 32, steps: int = 40, repeats: int = 3) -> dict[str, float]:
    """Best-of-``repeats`` images/s for engine and torch on the 28×28 shapes set."""
    from cnn_explorer.datasets.shapes import load_shapes

    data = load_shapes()
    x, y = data.images[: batch * steps], data.labels[: batch * steps]
    result: dict[str, float] = {}
    eng, net = 0.0, None
    for r in range(repeats):
        rate, net = engine_throughput(x, y, data.num_classes, batch, steps, seed=r)
        eng = max(eng, rate)
    result["engine"] = eng
    try:
        import torch  # noqa: F401
    except ImportError:
        return result
    result["torch"] = max(
        torch_throughput(torch_twin(net), x, y, batch, steps) for _ in range(repeats)
    )
    return result


# -- digits -------------------------------------------------------------------------------


def export_digits(root: Path) -> int:
    """Write sklearn's 8×8 digits as ``root/<digit>/<i>.png`` grayscale PNGs; return N."""
    from sklearn.datasets import load_digits

    from cnn_explorer.imageio import save_png

    digits = load_digits()
    images = np.round(digits.images / 16.0 * 255.0).astype(np.uint8)
    for i, (img, label) in enumerate(zip(images, digits.target, strict=True)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        save_png(img, str(folder / f"{i:04d}.png"))
    return len(images)


def bench_digits(extra_args: list[str] | None = None) -> dict[str, Any]:
    """Run ``python -m cnn_explorer.train_cli <digits folder>`` with default settings."""
    with tempfile.TemporaryDirectory() as tmp:
        n = export_digits(Path(tmp))
        cmd = [sys.executable, "-m", "cnn_explorer.train_cli", tmp, *(extra_args or [])]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_env())
        seconds = time.perf_counter() - start
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    acc = float(last.split(":")[1]) if last.startswith("validation accuracy:") else float("nan")
    return {
        "images": n,
        "accuracy": acc,
        "seconds": seconds,
        "returncode": proc.returncode,
        "stderr": proc.stderr,
    }


def _env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="show the train command's log")
    args = parser.parse_args(argv)
    ok = True
    if not args.skip_throughput:
        r = bench_throughput()
        print("training throughput, default network, 28×28 shapes, batch 32 (images/s):")
        print(f"  engine (NumPy): {r['engine']:8.0f}")
        if "torch" in r:
            ratio = r["engine"] / r["torch"]
            met = ratio >= TARGET_RATIO
            ok &= met
            print(f"  torch (CPU, 2 threads): {r['torch']:8.0f}")
            print(
                f"  ratio engine/torch: {ratio:.2f} (target ≥ {TARGET_RATIO}: "
                f"{'met' if met else 'NOT met'})"
            )
        else:
            print("  torch not installed: no comparison (pip install torch==2.13.0)")
    if not args.skip_digits:
        try:
            d = bench_digits()
        except ImportError:
            print("digits: scikit-learn not installed (pip install scikit-learn)")
        else:
            met = d["accuracy"] >= TARGET_ACCURACY and d["seconds"] < TARGET_SECONDS
            ok &= met
            if args.verbose or d["returncode"]:
                print(d["stderr"], end="")
            print(
                f"digits ({d['images']} 8×8 images, 10 classes), `cnn-explorer train` "
                f"defaults: validation accuracy {d['accuracy']:.4f} in {d['seconds']:.1f} s "
                f"(target ≥ {TARGET_ACCURACY} in < {TARGET_SECONDS:.0f} s: "
                f"{'met' if met else 'NOT met'})"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
