"""Bring your own model: import ONNX, Keras and safetensors files into engine networks and
export networks as ONNX and PyTorch code, with a report and a numerical self-check.

Qt-free. Never unpickles and never runs code from a file (see ``pyproject.toml``'s
``interchange-pure`` contract).
"""
