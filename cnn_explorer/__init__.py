"""CNN Explorer: see how a convolutional neural network works, one number at a time."""

__version__ = "0.1.0"
