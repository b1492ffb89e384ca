"""The process that holds one pycaffe network (``python -m harness.backends.caffe.worker``).

Caffe reports a failed CHECK by aborting its process, so a network never lives in the harness's own
process: the parent (:mod:`harness.backends.caffe.backend`) talks to this worker over its stdin and
stdout with :mod:`harness.backends.caffe.protocol`, and reads Caffe's log (stderr) when it dies.

This module runs under the interpreter pycaffe was built for, which need not be the harness's: it
imports only the standard library, numpy, pycaffe, the protocol and the timer.

Requests (``op``) and replies:
- ``load``: prototxt, caffemodel, batch, device, input arrays -> blob shapes, parameter shapes, memory
- ``forward``: one forward pass
- ``timed``: a TimingProtocol's fields -> the Timing, measured here around forward passes
- ``blobs``: names -> those blobs' data (all blobs when names is null)
- ``close``: exit
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, BinaryIO

import numpy as np

from harness.backends.caffe.protocol import ChannelClosed, recv, send

FLOAT_BYTES = 4  # pycaffe is built with Dtype = float


class NetHolder:
    def __init__(self, caffe: Any) -> None:
        self.caffe = caffe
        self.net: Any = None
        self.output_name = ""

    def load(self, req: dict[str, Any], inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        caffe = self.caffe
        device = req["device"]
        if device == "cpu":
            caffe.set_mode_cpu()
        else:
            caffe.set_device(int(device.split(":", 1)[1]))
            caffe.set_mode_gpu()
        self.net = net = caffe.Net(req["prototxt"], caffe.TEST)
        for name, array in inputs.items():
            if name not in net.blobs:
                raise KeyError(f"the prototxt has no input blob '{name}' (blobs: {', '.join(net.inputs)})")
            net.blobs[name].reshape(*array.shape)
        net.reshape()
        if req.get("caffemodel"):
            net.copy_from(req["caffemodel"])  # Caffe CHECKs names/shapes: a mismatch aborts with an F-line
        for name, array in inputs.items():
            net.blobs[name].data[...] = array
        self.output_name = req.get("output") or net.outputs[0]
        blob_bytes = sum(b.count for b in net.blobs.values()) * FLOAT_BYTES
        param_bytes = sum(b.count for blobs in net.params.values() for b in blobs) * FLOAT_BYTES
        return {
            "blob_shapes": {name: list(b.shape) for name, b in net.blobs.items()},
            "param_shapes": {name: [list(b.shape) for b in blobs] for name, blobs in net.params.items()},
            "blob_bytes": blob_bytes,
            "param_bytes": param_bytes,
            "layer_types": {name: layer.type for name, layer in zip(net._layer_names, net.layers, strict=True)},
        }

    def forward(self) -> None:
        """One synchronised forward pass over all layers.

        ``_forward`` is Net::ForwardFromTo; reading the output blob's data afterwards copies it to
        the host (cudaMemcpy on the default stream), which waits for every kernel in GPU mode and
        costs nothing in CPU mode.
        """
        net = self.net
        net._forward(0, len(net.layers) - 1)
        _ = net.blobs[self.output_name].data

    def timed(self, fields: dict[str, Any]) -> dict[str, Any]:
        from harness.measure.timer import TimingProtocol

        return TimingProtocol(**fields).run(self.forward).to_dict()

    def blobs(self, names: list[str] | None) -> dict[str, np.ndarray]:
        chosen = list(self.net.blobs) if names is None else names
        return {name: np.array(self.net.blobs[name].data, dtype=np.float32) for name in chosen}


def serve(caffe: Any, requests: BinaryIO, replies: BinaryIO) -> None:
    holder = NetHolder(caffe)
    while True:
        try:
            req, arrays = recv(requests)
        except ChannelClosed:
            return
        op = req["op"]
        try:
            if op == "load":
                send(replies, {"ok": True, **holder.load(req, arrays)})
            elif op == "forward":
                holder.forward()
                send(replies, {"ok": True})
            elif op == "timed":
                send(replies, {"ok": True, "timing": holder.timed(req["protocol"])})
            elif op == "blobs":
                send(replies, {"ok": True}, holder.blobs(req.get("names")))
            elif op == "close":
                send(replies, {"ok": True})
                return
            else:
                send(replies, {"ok": False, "error": f"unknown request '{op}'"})
        except Exception as exc:  # a Python-level failure: reported, the worker stays usable
            send(replies, {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                           "traceback": traceback.format_exc()})


def probe() -> dict[str, Any]:
    """What the parent learns before choosing this interpreter: where pycaffe is and what it links."""
    import caffe

    return {"caffe_file": caffe.__file__, "caffe_version": getattr(caffe, "__version__", None),
            "python": sys.executable, "python_version": sys.version.split()[0], "numpy": np.__version__}


def main() -> int:
    # The protocol owns the original stdout; anything C++ code prints goes to stderr with Caffe's log.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        import caffe
    except Exception as exc:  # reported to the parent, which names the interpreter and CAFFE_ROOT
        send(replies, {"ok": False, "error": f"cannot import pycaffe: {type(exc).__name__}: {exc}"})
        return 1
    if "--probe" in sys.argv:
        send(replies, {"ok": True, **probe()})
        return 0
    send(replies, {"ok": True, "pid": os.getpid(), **probe()})
    serve(caffe, sys.stdin.buffer, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
