"""Render the sliding-window screenshot into resources/screenshots/ (from the repo root):

    QT_QPA_PLATFORM=offscreen python tests/ui/make_sliding_screenshots.py

sliding_window.png — the app at 1280×800 with the sliding window mid-step: a Sobel-like
3×3 kernel (bias 0.5) with reflect padding over a 5×5 input, the window on the right-hand
padding column. Made by the app itself (``--screenshot … --select … --animate STEPS``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "resources", "screenshots")
sys.path.insert(0, ROOT)  # this checkout's cnn_explorer, not an installed one


def main() -> int:
    from cnn_explorer.explorer.project import save_project
    from cnn_explorer.explorer.specs import act_spec, conv_spec, pool_spec

    x = np.zeros((1, 5, 5), np.float32)
    x[0, :, 3:] = 1.0
    x[0, 1:4, 1] = 0.5
    w = np.array([[[[1, 0, -1], [2, 0, -2], [1, 0, -1]]]], np.float32)
    conv = conv_spec(1, 1, (3, 3), padding=1, padding_mode="reflect", weight=w)
    conv.bias = np.array([0.5], np.float32)
    os.makedirs(OUT, exist_ok=True)
    out = os.path.join(OUT, "sliding_window.png")
    with tempfile.TemporaryDirectory() as tmp:
        proj = os.path.join(tmp, "sliding.cnnx")
        save_project(proj, x, [conv, act_spec("relu"), pool_spec("maxpool", 2, 2)])
        shot = ("--screenshot", out, "--size", "1280x800", "--select", "1,0,2,4")
        cmd = [sys.executable, "-m", "cnn_explorer", proj, *shot, "--animate", "5"]
        subprocess.run(cmd, cwd=ROOT, check=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
