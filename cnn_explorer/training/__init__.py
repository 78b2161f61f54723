"""Training: data loading, the Qt-free session, the worker thread and the CLI."""
