"""CNN Explorer: see how a convolutional neural network works, one number at a time."""

import os

# OpenBLAS (NumPy's matrix products) keeps its worker threads busy-waiting for 2^28 CPU
# cycles (~0.1 s) after every product before they sleep. The engine alternates products
# with single-threaded NumPy work (padding, im2col, pooling, activations), and on a
# 2-core machine the spinning thread steals the core that work needs: training steps ran
# 1.5–8× slower (measured). 16 means 2^16 cycles (~25 µs). OpenBLAS reads the variable
# once, when NumPy loads it, so this must run before anything imports NumPy: importing
# this package first (``python -m cnn_explorer``, ``from cnn_explorer import ...``)
# guarantees that. A value the user already set is respected. Measured with the bundled
# scipy-openblas 0.3.31: a thread sleeping 50 ms after a 512² product burns 50 ms of CPU
# in its pool without the setting, 0.5 ms with it.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

__version__ = "0.1.0"
