"""Benchmarks against PyTorch (and the explorer's edit latency). Imported by nothing in the
app: ``python -m cnn_explorer.bench`` (engine ops), ``python -m cnn_explorer.bench.training``,
``python -m cnn_explorer.bench.ui``."""
