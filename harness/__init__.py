"""harness: a Caffe-faithful benchmark harness for compact CNNs."""

__version__ = "0.1.0"
