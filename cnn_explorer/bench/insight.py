"""``python -m cnn_explorer.bench.insight``: are the Insight methods fast, and does Grad-CAM
look at the shape?

1. **Speed** (default network, one 28×28 image): median time of a saliency map and of a
   Grad-CAM map (targets < 50 ms each), and of 200 steps of activation maximisation
   (target < 5 s).
2. **Localisation**: the default network is trained (Adam 0.01, batch 32, seed 0) on the
   built-in shapes for ``--epochs`` epochs; then, for every validation image, the fraction
   of the Grad-CAM heatmap's mass (predicted class, at the chosen layer) that falls on the
   drawn figure: its strokes with the inside filled (flood fill of the background from
   the border) and widened by one pixel. Printed beside the mask's share of the image,
   which is what a heatmap spread evenly would score. Target: ≥ 0.7 at the first layer.

Exit code 1 when a measured target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from cnn_explorer.engine.network import Network, default_classifier
from cnn_explorer.engine.optim import Adam
from cnn_explorer.engine.training import stratified_split, train
from cnn_explorer.insight.gradcam import grad_cam
from cnn_explorer.insight.maximize import MaximizeSettings, maximize
from cnn_explorer.insight.saliency import input_gradient
from cnn_explorer.insight.targets import Target, run
from cnn_explorer.training.shapes import load_shapes

INK = 0.35
"""A pixel brighter than this is ink (strokes are 0.7–1.0, the noise's std is 0.06)."""


def _dilate(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def figure_mask(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: the figure of a shapes image ``(H, W)``, inside filled, +1 px."""
    ink = image > INK
    outside = np.zeros_like(ink)
    outside[[0, -1], :] = ~ink[[0, -1], :]
    outside[:, [0, -1]] |= ~ink[:, [0, -1]]
    while True:
        grown = _dilate(outside) & ~ink
        if np.array_equal(grown, outside):
            break
        outside = grown
    return _dilate(~outside)


def _median_ms(f: Callable[[], object], n: int = 30) -> float:
    f()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def speed() -> list[tuple[str, float, float]]:
    """``(what, measured, target)`` rows."""
    net = default_classifier((1, 28, 28), 6, 0)
    x = np.random.default_rng(0).random((1, 28, 28)).astype(np.float32)
    target = Target.class_score(net, 1)
    sal = _median_ms(lambda: input_gradient(net, x, target))
    cam = _median_ms(lambda: grad_cam(net, x, 4, target))
    t = time.perf_counter()
    run(maximize(net, (1, 28, 28), Target(4, 3, reduce="mean"), MaximizeSettings(steps=200)))
    am = time.perf_counter() - t
    return [
        ("saliency, ms", sal, 50.0),
        ("Grad-CAM, ms", cam, 50.0),
        ("activation maximisation 200 steps, s", am, 5.0),
    ]


def trained(epochs: int) -> tuple[Network, np.ndarray, np.ndarray]:
    data = load_shapes()
    tr, va = stratified_split(data.labels, 0.2, 0)
    net = default_classifier((1, 28, 28), len(data.class_names), 0)
    for _ in train(
        net,
        data.images[tr],
        data.labels[tr],
        epochs=epochs,
        batch_size=32,
        optimizer=Adam(0.01),
        seed=0,
    ):
        pass
    return net, data.images[va], data.labels[va]


def localisation(
    net: Network, images: np.ndarray, layer: int, plus: bool = False
) -> tuple[float, float, np.ndarray]:
    """``(mean mass on the figure, mean share of the image the figure covers, mass on the
    figure per image (N,))``."""
    inside, share = [], []
    for x in images:
        k = int(np.argmax(net(x[None])[0]))
        heat = grad_cam(net, x, layer, Target.class_score(net, k), plus).heatmap
        mask = figure_mask(x[0])
        total = heat.sum()
        inside.append(heat[mask].sum() / total if total > 0 else 0.0)
        share.append(mask.mean())
    return float(np.mean(inside)), float(np.mean(share)), np.asarray(inside)


def per_class(mass: np.ndarray, labels: np.ndarray, names: list[str]) -> str:
    """``"circle 0.74, square 0.93, …"``: the mean mass on the figure per true class (a
    low mean is one class's story, not the whole set's: see the README)."""
    return ", ".join(
        f"{name} {float(mass[labels == k].mean()):.2f}"
        for k, name in enumerate(names)
        if (labels == k).any()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn_explorer.bench.insight")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args(argv)
    ok = True
    for what, got, target in speed():
        good = got < target
        ok &= good
        print(f"{what:40s} {got:8.2f}  (target < {target:g}) {'ok' if good else 'MISSED'}")
    if not args.skip_training:
        net, images, labels = trained(args.epochs)
        names = load_shapes().class_names
        acc = float((net.predict(images) == labels).mean())
        print(f"validation accuracy after {args.epochs} epochs: {acc:.3f}")
        for plus in (False, True):
            method = "Grad-CAM++" if plus else "Grad-CAM"
            for layer, name in ((1, "conv 1 + ReLU (28×28)"), (4, "conv 2 + ReLU (14×14)")):
                mass, share, each = localisation(net, images, layer, plus)
                line = f"{method} mass on the figure, {name}: {mass:.3f} (figure: {share:.3f})"
                if layer == 1 and not plus:
                    ok &= mass >= 0.7
                    line += " target ≥ 0.7" + (" ok" if mass >= 0.7 else " MISSED")
                print(f"{line}\n    per class: {per_class(each, labels, list(names))}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
