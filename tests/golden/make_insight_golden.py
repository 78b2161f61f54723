"""Regenerate ``golden_insight.npz``: torch's saliency and Grad-CAM / Grad-CAM++ for a small
network on a 1-channel, non-square input, so ``tests/insight/test_insight_golden.py`` checks
the engine's versions on machines without torch.

Run (needs the optional torch oracle)::

    python tests/golden/make_insight_golden.py

Contents (float64, plain arrays): ``config`` (0-d string, JSON ``Network.to_dict()``),
``param/<key>`` the weights, ``x`` the ``(1, 10, 7)`` input; for each class ``k``:
``saliency/k`` torch's d logit_k / d x ``(1, 10, 7)``; for each layer ``L`` in
:data:`LAYERS` and method ``m`` in ``gradcam``/``gradcam++``: ``m/L/k/weights``,
``m/L/k/cam`` (the layer's resolution) and ``m/L/k/heatmap`` (``F.interpolate`` bilinear,
``align_corners=False``, to 10×7). The Grad-CAM++ weights are pytorch-grad-cam's formula.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = Path(__file__).resolve().parent / "golden_insight.npz"
LAYERS = (1, 2, 4)
SHAPE = (1, 10, 7)


def build():  # type: ignore[no-untyped-def]
    from cnn_explorer.engine.layers import Activation, Conv2D, MaxPool2D
    from cnn_explorer.engine.network import with_classifier_head

    rng = np.random.default_rng(20)
    convs = [
        Conv2D(1, 4, 3, padding=1, rng=rng),
        Activation("relu"),
        MaxPool2D(2),
        Conv2D(4, 6, 3, padding=1, rng=rng),
        Activation("relu"),
    ]
    net = with_classifier_head(convs, SHAPE, 3, 21).astype(np.float64)
    for _, p in net.parameters():
        p += 0.05 * rng.standard_normal(p.shape)
    return net, rng.random(SHAPE)


def main() -> int:
    import torch

    net, x = build()
    conv1, conv2, dense = net.layers[0], net.layers[3], net.layers[-1]
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(dense.params["weight"].shape[1], 3),
    ).double()
    with torch.no_grad():
        for mod, lay in ((model[0], conv1), (model[3], conv2), (model[6], dense)):
            mod.weight.copy_(torch.from_numpy(lay.params["weight"]))
            mod.bias.copy_(torch.from_numpy(lay.params["bias"]))
    out: dict[str, np.ndarray] = {
        "config": np.array(json.dumps(net.to_dict())),
        "x": x,
        **{f"param/{k}": v for k, v in net.state_arrays().items()},
    }
    for k in range(3):
        xt = torch.from_numpy(x[None]).requires_grad_(True)
        model(xt)[0, k].backward()
        out[f"saliency/{k}"] = xt.grad[0].numpy()
        for layer in LAYERS:
            features = model[: layer + 1](torch.from_numpy(x[None]))
            features.retain_grad()
            model[layer + 1 :](features)[0, k].backward()
            a, g = features.detach(), features.grad
            g2, g3 = g**2, g**3
            alpha = g2 / (2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g3 + 1e-7)
            alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
            for method, weights in (
                ("gradcam", g.mean(dim=(2, 3))),
                ("gradcam++", (torch.relu(g) * alpha).sum(dim=(2, 3))),
            ):
                cam = torch.relu((weights[:, :, None, None] * a).sum(dim=1, keepdim=True))
                up = torch.nn.functional.interpolate(
                    cam, size=SHAPE[1:], mode="bilinear", align_corners=False
                )
                key = f"{method}/{layer}/{k}"
                out[f"{key}/weights"] = weights[0].numpy()
                out[f"{key}/cam"] = cam[0, 0].numpy()
                out[f"{key}/heatmap"] = up[0, 0].numpy()
    np.savez(OUT, **out)
    print(f"wrote {OUT} ({len(out)} arrays)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
