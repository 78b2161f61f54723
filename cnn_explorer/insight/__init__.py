"""What a trained network looks for: saliency, Grad-CAM, activation maximisation, the
dataset patches that excite a filter, and dataset-level statistics (dead units, NaN/inf).

Qt-free and NumPy only (it imports the engine and nothing above it), so every method is
tested with plain pytest and the training tab only runs the generators these modules
provide on a worker thread. Every function works on the network it is given and leaves
the layers' last-forward context and parameter gradients changed: pass a copy when another
thread may use the same network (:meth:`Network.copy`).
"""
