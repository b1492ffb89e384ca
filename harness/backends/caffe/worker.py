"""The process that holds one pycaffe network (``python -m harness.backends.caffe.worker``).

Caffe reports a failed CHECK by aborting its process, so a network never lives in the harness's own
process: the parent (:mod:`harness.backends.caffe.backend`) talks to this worker over its stdin and
stdout with :mod:`harness.backends.caffe.protocol`, and reads Caffe's log (stderr) when it dies.

This module runs under the interpreter pycaffe was built for, which need not be the harness's: it
imports only the standard library, numpy, pycaffe, the protocol and the timer.

The same :class:`NetHolder` also serves in-process, inside the per-configuration worker
(:mod:`harness.worker`, which runs under this interpreter for Caffe): there that whole process is
the sacrificial one.

Requests (``op``) and replies:
- ``load``: prototxt, caffemodel, batch, device, engine, input arrays -> blob shapes, parameter shapes,
  memory, the engine rewrite
- ``forward``: one forward pass
- ``timed``: a TimingProtocol's fields -> the Timing, measured here around forward passes
- ``layer_pass``: one forward pass layer by layer -> each layer's seconds (``harness layers``)
- ``blobs``: names -> those blobs' data (all blobs when names is null)
- ``close``: exit
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from harness.backends.caffe.protocol import ChannelClosed, recv, send

FLOAT_BYTES = 4  # pycaffe is built with Dtype = float
#: layer type -> its parameter that carries an ``engine`` (CAFFE or CUDNN) in BVLC's caffe.proto; these are
#: the types layer_factory.cpp builds with cuDNN when the engine is DEFAULT in a cuDNN build
ENGINE_PARAMS = {"Convolution": "convolution_param", "Pooling": "pooling_param", "ReLU": "relu_param",
                 "Sigmoid": "sigmoid_param", "Softmax": "softmax_param", "TanH": "tanh_param", "LRN": "lrn_param",
                 "SPP": "spp_param"}


def rewrite_engine(prototxt: str, engine: str) -> tuple[str, int]:
    """A copy of ``prototxt`` with ``engine`` set on every layer that has an engine parameter, parsed
    and written by Caffe's own protobuf classes (so the copy means to Caffe exactly what the original
    does, but for the engine); (path of the copy, number of layers changed).

    Why: a cuDNN build picks the CUDNN engine for DEFAULT even in CPU mode, where it aborts; and the
    ``caffe`` mode on a GPU measures Caffe's own im2col+GEMM kernels, as in the paper's kernel study."""
    import tempfile

    from caffe.proto import caffe_pb2
    from google.protobuf import text_format

    net = caffe_pb2.NetParameter()
    with open(prototxt, encoding="utf-8") as fh:
        try:
            text_format.Merge(fh.read(), net)
        except text_format.ParseError as exc:  # what Caffe's own reader would refuse too
            raise ValueError(f"{prototxt}:{exc} (BVLC Caffe's caffe.proto refuses it)") from None
    value = getattr(caffe_pb2.ConvolutionParameter, engine)  # the Engine enum is the same in every parameter
    changed = 0
    v1_names = {t.upper(): param for t, param in ENGINE_PARAMS.items()}  # V1 files name types by enum
    typed = [(layer, ENGINE_PARAMS.get(layer.type)) for layer in net.layer]
    typed += [(layer, v1_names.get(caffe_pb2.V1LayerParameter.LayerType.Name(layer.type))) for layer in net.layers]
    for layer, param in typed:
        if param is not None:
            getattr(layer, param).engine = value
            changed += 1
    with tempfile.NamedTemporaryFile("w", suffix=f"-engine-{engine.lower()}.prototxt", delete=False,
                                     encoding="utf-8") as out:
        out.write(text_format.MessageToString(net))
    return out.name, changed


def cuda_synchronizer() -> Callable[[], None]:
    """``cudaDeviceSynchronize`` of the CUDA runtime this process has loaded (a GPU build of Caffe links
    it; pycaffe exposes no synchronisation of its own), found among the process's mapped libraries."""
    import ctypes

    with open("/proc/self/maps", encoding="utf-8") as fh:
        runtimes = sorted({line.split()[-1] for line in fh if "/libcudart" in line})
    if not runtimes:
        raise RuntimeError("no CUDA runtime is loaded in this process: cannot synchronise Caffe's GPU work")
    synchronize = ctypes.CDLL(runtimes[0]).cudaDeviceSynchronize

    def checked() -> None:
        status = synchronize()
        if status != 0:
            raise RuntimeError(f"cudaDeviceSynchronize failed with CUDA error {status}")
    return checked


class NetHolder:
    def __init__(self, caffe: Any) -> None:
        self.caffe = caffe
        self.net: Any = None
        self.output_name = ""
        self.device = "cpu"
        self._sync: Callable[[], None] | None = None  # a GPU's, at the first layer-by-layer pass

    def load(self, req: dict[str, Any], inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        caffe = self.caffe
        self.device = device = req["device"]
        if device == "cpu":
            caffe.set_mode_cpu()
        else:
            caffe.set_device(int(device.split(":", 1)[1]))
            caffe.set_mode_gpu()
        prototxt, rewritten = req["prototxt"], 0
        if req.get("engine"):
            prototxt, rewritten = rewrite_engine(prototxt, req["engine"])
        try:
            self.net = net = caffe.Net(prototxt, caffe.TEST)
        finally:
            if req.get("engine"):
                os.unlink(prototxt)
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
            "engine_rewritten_layers": rewritten,
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

    def layer_pass(self) -> list[float]:
        """One forward pass layer by layer, each layer's Forward alone (``Net::ForwardFromTo(i, i)``) timed
        with ``perf_counter``, as ``caffe time`` times each layer; on a GPU each layer ends with a device
        synchronisation, so that its time holds its kernels. Seconds per layer of ``net.layers``."""
        net, clock = self.net, time.perf_counter
        if self.device != "cpu" and self._sync is None:
            self._sync = cuda_synchronizer()
        sync = self._sync
        times = []
        for i in range(len(net.layers)):
            start = clock()
            net._forward(i, i)
            if sync is not None:
                sync()
            times.append(clock() - start)
        return times

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
            elif op == "layer_pass":
                send(replies, {"ok": True, "times": holder.layer_pass()})
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
