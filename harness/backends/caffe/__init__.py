"""BVLC Caffe through pycaffe, each network in its own worker process (see backend.py)."""
