"""Every size limit of the app, in one place.

The widgets offer exactly these ranges and the file validation (projects, weights, model
files) refuses anything outside them, so a value a file may hold is a value the UI can show
and edit. Pure constants: imported by every layer above the engine.
"""

from __future__ import annotations

MAX_INPUT_SIDE = 512
"""Largest height or width of the explorer's input grid (and of a loaded image)."""

MAX_TRAINING_SIDE = 256
"""Largest height or width of a training image (the dataset is held in memory N times)."""

MAX_FILTERS = 64
"""Most output channels of one conv layer in the explorer."""

MAX_KERNEL = 15
"""Largest kernel (or pool window) side in the explorer."""

MAX_STRIDE = 15
MAX_DILATION = 8
MAX_PADDING = 16
MAX_LAYERS = 32
"""Most layers in the explorer's stack."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
"""Image files the app reads (any case): File ▸ Open, drops, and dataset folders."""

MAX_POOL_PADDING = MAX_KERNEL // 2
"""Most padding of a pool layer (the engine allows at most half the window)."""

MIN_SLOPE = 0.0
MAX_SLOPE = 1.0
"""Range of the leaky ReLU's negative slope."""

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
"""How a conv layer pads its input (as ``nn.Conv2d``'s ``padding_mode``)."""

MAX_DOCUMENT_BYTES = 1 << 30
"""Most memory an explorer document may need: its input and every feature map, float32
(the explorer keeps them all to show them). A project needing more is refused when opened,
before anything is computed: a file may describe layers whose maps grow (padding) far past
what a laptop holds."""

MAX_EPOCHS = 1000
"""Most epochs of one training run (the Training tab's Epochs box)."""

MAX_HISTORY_BATCHES = 100_000
"""Most per-batch loss points a project keeps of a run's history (evenly thinned beyond)."""

MAX_HISTORY_SNAPSHOT_VALUES = 8 * 2**20
"""Most filter weights a project keeps over all the epoch snapshots of a run's history
(32 MB of float32; snapshots are evenly thinned beyond, the first and last kept)."""

MAX_HISTORY_CAPTION = 200
"""Longest caption of a filter snapshot or title of a filter layer in a project file."""

MAX_MODEL_BYTES = 1 << 30
"""Largest model file the app reads, counting its external weight files (ONNX ``.data``):
checked from the file sizes before anything is read, so a huge download is refused at once
instead of filling memory."""

MAX_ARCHIVE_MEMBERS = 64
"""Most files a model archive (a ``.keras`` zip) may hold: Keras writes three, plus
assets; a directory of thousands of tiny members is refused before anything is unpacked."""

MAX_CONFIG_BYTES = 16 << 20
"""Largest model architecture (a Keras ``config.json`` or ``model_config``) the app reads:
real ones are kilobytes."""
